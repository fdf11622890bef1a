"""The sweep study: a validated grid (config), its budget, a runner and executors."""

from initsuite.studies.sweep.config import SweepConfig
from initsuite.studies.sweep.runner import sweep

__all__ = ["SweepConfig", "sweep"]

"""initsuite: a benchmarking harness for neural-network weight initialization.

>>> import initsuite
>>> initsuite.schemes.list("kaiming*")
['kaiming_normal', 'kaiming_uniform']
>>> res = initsuite.sweep(["xavier_uniform", "kaiming_normal"], ["tanh", "relu"],
...                       depths=[10, 100], widths=256, seeds=3)
>>> res.cells.head()
>>> runs = initsuite.train(["kaiming_normal", "xavier_normal"], "relu", depth=30).runs
>>> frame = initsuite.probe(my_model, inputs, scheme="kaiming_normal", backward=True)
>>> initsuite.compare.compare(res, initsuite.SweepResult.load("runs/old"), "final_std:10%").passed
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import activations, columns, compare, schemes
from .config import SweepConfig
from .errors import InitsuiteError
from .gains import gains
from .probe import apply, probe
from .results import SweepResult
from .sweep import sweep
from .training import TrainingResult, train

__all__ = [
    "InitsuiteError",
    "SweepConfig",
    "SweepResult",
    "TrainingResult",
    "__version__",
    "activations",
    "apply",
    "columns",
    "compare",
    "gains",
    "probe",
    "schemes",
    "sweep",
    "train",
]

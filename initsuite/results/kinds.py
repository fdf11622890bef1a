"""The kinds of results directory and their Result classes: ``kind`` (what meta.json names)
→ the :class:`~initsuite.results.base.Result` subclass that saves and loads it.

    >>> from initsuite.results.kinds import result_class
    >>> result_class("isometry").__name__
    'IsometryResult'

The report maps each kind to its planner beside this (:mod:`initsuite.report.kinds`). Never
imports torch.
"""

from __future__ import annotations

from initsuite.core.errors import InitsuiteError, unknown
from initsuite.results.base import Result
from initsuite.results.cmap import CMapResult
from initsuite.results.coordcheck import CoordCheckResult
from initsuite.results.frameworks import FrameworksResult
from initsuite.results.isometry import IsometryResult
from initsuite.results.kernel_shaping import KernelShapingResult
from initsuite.results.mutransfer import MuTransferResult
from initsuite.results.probe import ProbeResult
from initsuite.results.sweep import SweepResult
from initsuite.results.training import TrainingResult
from initsuite.results.tutorial import TutorialResult

__all__ = ["RESULTS", "result_class"]


def _by_kind(*classes: type[Result]) -> dict[str, type[Result]]:
    out: dict[str, type[Result]] = {}
    for cls in classes:
        if cls.kind in out:  # two classes would load one directory two ways
            raise InitsuiteError(f"kind {cls.kind!r} is registered twice: {out[cls.kind]}, {cls}")
        out[cls.kind] = cls
    return out


RESULTS: dict[str, type[Result]] = _by_kind(
    SweepResult, TrainingResult, ProbeResult, TutorialResult, IsometryResult, FrameworksResult,
    CoordCheckResult, MuTransferResult, CMapResult, KernelShapingResult,
)  # fmt: skip
"""Each kind of results directory (a key of :data:`initsuite.results.layout.LAYOUTS`) → its
Result class."""


def result_class(kind: str) -> type[Result]:
    """The Result class of the ``kind`` of results directory.

    Raises:
        InitsuiteError: no Result class has that kind.
    """
    if kind not in RESULTS:
        raise InitsuiteError(unknown("kind of results", kind, RESULTS))
    return RESULTS[kind]

"""Each kind of results directory → its report planner: what ``write_report`` dispatches
through.

A planner takes the directory and a sweep report's options
(:class:`~initsuite.report.sweep.ReportOptions`) and returns the report as a plan
(:class:`~initsuite.report.plan.ReportPlan`); a study written whole is loaded by its Result
class (:func:`initsuite.results.kinds.result_class`) and refuses a sweep's options. A kind
reported within a sweep's report (training, tutorial) has a planner that says so.

    >>> from initsuite.report.kinds import PLANNERS
    >>> print(*sorted(PLANNERS))
    cmap coordcheck frameworks isometry kernel_shaping mutransfer probe sweep training tutorial

Never imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from initsuite.core.errors import InitsuiteError
from initsuite.report.cmap import cmap_plan
from initsuite.report.coord_report import coordcheck_plan
from initsuite.report.frameworks import frameworks_plan
from initsuite.report.isometry import isometry_plan
from initsuite.report.kernel_shaping import kernel_shaping_plan
from initsuite.report.mutransfer import mutransfer_plan
from initsuite.report.plan import ReportPlan
from initsuite.report.probe_report import probe_plan
from initsuite.report.sweep import ReportOptions, plan_sweep
from initsuite.results import store
from initsuite.results.kinds import result_class
from initsuite.results.reading import read_meta

__all__ = ["PLANNERS", "Planner", "kind_of", "planner"]

Planner = Callable[[str | os.PathLike[str], ReportOptions], ReportPlan]
"""(the results directory, a sweep report's options) → the report's plan."""


def _study(kind: str, plan: Callable[[Any, str], ReportPlan]) -> Planner:
    """The planner of a study written whole: its Result loaded and planned by ``plan`` (the
    Result, the directory as given); a sweep's options refused first."""

    def planner(run_dir: str | os.PathLike[str], options: ReportOptions) -> ReportPlan:
        if options.extras():
            raise InitsuiteError(
                f"{str(run_dir)!r} holds {'an' if kind == 'isometry' else 'a'} {kind} study: a "
                "tutorial, training, comparison or benchmark file goes with a sweep's report"
            )
        if options.partial:
            raise InitsuiteError(f"{str(run_dir)!r} holds a {kind} study, written whole: "
                                 "--partial is for an unfinished sweep")  # fmt: skip
        return plan(result_class(kind).load(run_dir), str(run_dir))

    return planner


def _within_sweep(what: str) -> Planner:
    """The planner of a kind reported as a section of a sweep's report (``what``: the kind
    and how to include it): it refuses, saying so."""

    def planner(run_dir: str | os.PathLike[str], options: ReportOptions) -> ReportPlan:
        raise InitsuiteError(f"{str(run_dir)!r} is not a sweep but {what}")

    return planner


PLANNERS: dict[str, Planner] = {
    "sweep": plan_sweep,
    "isometry": _study("isometry", isometry_plan),
    "frameworks": _study("frameworks", frameworks_plan),
    "probe": _study("probe", lambda result, _: probe_plan(result)),
    "training": _within_sweep(
        "a training directory (initsuite train): include it in a sweep's report with "
        "`initsuite report SWEEP --training DIR`"
    ),
    "coordcheck": _study("coordcheck", coordcheck_plan),
    "mutransfer": _study("mutransfer", mutransfer_plan),
    "cmap": _study("cmap", cmap_plan),
    "kernel_shaping": _study("kernel_shaping", kernel_shaping_plan),
    "tutorial": _within_sweep(
        "a tutorial reproduction directory (initsuite reproduce tutorial): include it in a "
        "sweep's report with `initsuite report SWEEP --tutorial DIR`"
    ),
}
"""Each kind of results directory (a key of :data:`initsuite.results.kinds.RESULTS`) → its
report planner."""


def kind_of(run_dir: str | os.PathLike[str]) -> str | None:
    """The kind ``run_dir``'s meta.json names; None where it has no readable meta.json or
    names none (the sweep's loader then names the problem)."""
    try:
        meta = read_meta(Path(run_dir) / store.META)
    except InitsuiteError:
        return None
    kind = meta.get("kind")
    return kind if isinstance(kind, str) else None


def planner(kind: str | None) -> Planner:
    """The planner of ``kind``; a sweep's for a directory naming no kind or an unknown one
    (a sweep written before kinds were recorded; else the sweep's loader names the
    problem)."""
    return PLANNERS.get(kind or "sweep", plan_sweep)

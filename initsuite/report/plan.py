"""A report as a plan (its figures, each with the function that draws it, and its text) and
the one writer that puts any plan on disk: ``report.md`` and ``figures/*.png``, all or nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from initsuite.report.figures import save_figure
from initsuite.results import store
from initsuite.results.outputs import FIGURE_DIR, FIGURES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["REPORT_NAME", "PlannedFigure", "ReportPlan", "write_plan"]

REPORT_NAME = "report.md"


@dataclass(frozen=True)
class PlannedFigure:
    """A figure of a report: its name (``figures/<name>.png``) and what draws it."""

    name: str
    draw: Callable[[], Figure]


@dataclass(frozen=True)
class ReportPlan:
    """What a report holds: the figures to draw, in order, and the Markdown that shows them."""

    figures: Sequence[PlannedFigure]
    text: str


def write_plan(plan: ReportPlan, out_dir: str | os.PathLike[str]) -> Path:
    """Draw the plan's figures and write them with its text into ``out_dir``; the path of
    ``report.md``.

    Everything is drawn into a temporary directory inside ``out_dir`` and moved into place
    when all is done (:func:`initsuite.store.staged`), so a failure leaves ``out_dir`` as it
    was; the figures of an earlier report are replaced whole. An existing ``figures`` or
    ``report.md`` that initsuite did not write (a symbolic link, a foreign file) is refused.
    """
    owned = {FIGURE_DIR: FIGURES, REPORT_NAME: None}
    with store.staged(out_dir, owned) as tmp:
        for figure in plan.figures:
            save_figure(figure.draw(), tmp / FIGURE_DIR / f"{figure.name}.png")
        store.atomic_write_text(tmp / REPORT_NAME, plan.text)
    return Path(out_dir) / REPORT_NAME

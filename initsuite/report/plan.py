"""A report as a plan (its figures, each with the function that draws it, and its text) and
the one writer that puts any plan on disk: ``report.md`` and ``figures/*.png``, with
``report.html`` when asked (:mod:`initsuite.report.html`), all or nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from initsuite.report.figures import write_figure
from initsuite.report.html import check_html_dependencies, check_markdown, markdown_html
from initsuite.results import store
from initsuite.results.layout import FIGURE_DIR, FIGURES
from initsuite.results.outputs import check_output

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["HTML_NAME", "REPORT_NAME", "PlannedFigure", "ReportPlan", "plan_html", "write_plan"]

REPORT_NAME = "report.md"
HTML_NAME = "report.html"


@dataclass(frozen=True)
class PlannedFigure:
    """A figure of a report: its name (``figures/<name>.png``), what draws it, and what
    draws its interactive (plotly) version for ``report.html``, where it has one."""

    name: str
    draw: Callable[[], Figure]
    interactive: Callable[[], Any] | None = None


@dataclass(frozen=True)
class ReportPlan:
    """What a report holds: the figures to draw, in order, and the Markdown that shows them."""

    figures: Sequence[PlannedFigure]
    text: str


def plan_html(plan: ReportPlan, figure_dir: Path) -> str:
    """The plan as one HTML page: its Markdown converted, each figure interactive where the
    plan has an interactive version, else its PNG from ``figure_dir`` inlined."""
    interactive = {f.name: f.interactive for f in plan.figures if f.interactive is not None}
    return markdown_html(plan.text, figure_dir, interactive)


def write_plan(
    plan: ReportPlan,
    out_dir: str | os.PathLike[str],
    html: bool = False,
    home: str | os.PathLike[str] | None = None,
) -> Path:
    """Draw the plan's figures and write them with its text into ``out_dir``; the path of
    ``report.md``. With ``html``, also ``report.html``: the same text as one self-contained
    page (:func:`plan_html`); without it, an earlier ``report.html``
    is removed, as it would contradict the new ``report.md``. ``home``: the results
    directory reported; ``out_dir`` may be it, or a directory holding no results and not
    inside any (:func:`~initsuite.results.outputs.check_output`).

    Everything is drawn into a temporary directory inside ``out_dir`` and moved into place
    when all is done (:func:`initsuite.results.store.staged`), so a failure leaves ``out_dir`` as it
    was; the figures of an earlier report are replaced whole. An existing ``figures`` or
    ``report.md`` that initsuite did not write (a symbolic link, a foreign file) is refused.
    """
    check_output(out_dir, "append", home=home)  # before anything is drawn
    if html:  # plotly only where a figure is interactive
        if any(f.interactive is not None for f in plan.figures):
            check_html_dependencies()
        else:
            check_markdown()
    owned = {FIGURE_DIR: FIGURES, REPORT_NAME: None, HTML_NAME: None}
    with store.staged(out_dir, owned) as tmp:
        for figure in plan.figures:
            # into the report's staging directory, which staged() checked whole
            write_figure(figure.draw(), tmp / FIGURE_DIR / f"{figure.name}.png")
        store.atomic_write_text(tmp / REPORT_NAME, plan.text)
        if html:
            store.atomic_write_text(tmp / HTML_NAME, plan_html(plan, tmp / FIGURE_DIR))
    return Path(out_dir) / REPORT_NAME

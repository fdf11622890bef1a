"""The report of a sweep: its figures, its text, and what it may add (a tutorial
reproduction, a training study, an earlier sweep to compare with, benchmarks).

    >>> from initsuite.report.sweep import sweep_plan
    >>> sweep_plan("results/run1").figures[0].name  # doctest: +SKIP
    'std_vs_layer'

The planner of the kind ``"sweep"`` (:mod:`initsuite.report.kinds`). Reads the directories
through :mod:`initsuite.results` only and never imports torch.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from initsuite.core.errors import Arg, InitsuiteError
from initsuite.report import interactive
from initsuite.report.cell_figures import (
    divergence_heatmap,
    final_std_distribution,
    init_time_vs_width,
)
from initsuite.report.families import scheme_colors
from initsuite.report.layer_figures import std_vs_layer
from initsuite.report.markdown import label_archs, render
from initsuite.report.phase import cosine_vs_layer, phase_figure
from initsuite.report.plan import PlannedFigure, ReportPlan
from initsuite.report.selection import levels, phase_rows
from initsuite.report.training import TRAINING_FIGURES, loss_curves, steps_to_threshold
from initsuite.report.tutorial import TUTORIAL_FIGURE, load_tutorial, tutorial_std_vs_layer
from initsuite.report.verdict_figure import verdict_figures
from initsuite.results.benchmarks import DEFAULT_GATE
from initsuite.results.sweep import SweepResult, require_complete

if TYPE_CHECKING:
    from initsuite.results.comparison import Comparison

__all__ = ["PartialReportWarning", "ReportOptions", "plan_sweep", "sweep_plan"]


class PartialReportWarning(UserWarning):
    """A report written (``partial=True``) for a sweep that did not finish."""


@dataclass(frozen=True)
class ReportOptions:
    """What a sweep's report may add, as :func:`initsuite.report.write_report` takes it
    (there each is described); a report of another kind takes none."""

    tutorial_dir: str | os.PathLike[str] | None = None
    training_dir: str | os.PathLike[str] | None = None
    compare_dir: str | os.PathLike[str] | None = None
    partial: bool = False
    benchmarks: str | os.PathLike[str] | None = None
    benchmarks_previous: str | os.PathLike[str] | None = None
    benchmark_gate: str | None = DEFAULT_GATE

    def extras(self) -> bool:
        """Whether a directory or file to add is given (``partial`` aside)."""
        given = (self.tutorial_dir, self.training_dir, self.compare_dir, self.benchmarks,
                 self.benchmarks_previous)  # fmt: skip
        return any(x is not None for x in given)


def plan_sweep(run_dir: str | os.PathLike[str], options: ReportOptions) -> ReportPlan:
    """The report of the sweep in ``run_dir`` with what ``options`` add; the benchmark files
    are read and checked before the sweep."""
    bench = _benchmarks(options.benchmarks, options.benchmarks_previous, options.benchmark_gate)
    return sweep_plan(run_dir, options.tutorial_dir, options.training_dir, options.compare_dir,
                      options.partial, bench)  # fmt: skip


def sweep_plan(
    run_dir: str | os.PathLike[str],
    tutorial_dir: str | os.PathLike[str] | None = None,
    training_dir: str | os.PathLike[str] | None = None,
    compare_dir: str | os.PathLike[str] | None = None,
    partial: bool = False,
    benchmarks: str | None = None,
) -> ReportPlan:
    """The report of the sweep in ``run_dir``: the figures it has data for, and its text
    (arguments as :func:`initsuite.report.write_report`'s; ``benchmarks``: the "Benchmarks"
    section's Markdown, :func:`~initsuite.report.benchmarks.benchmarks_section`)."""
    raw = SweepResult.load(run_dir)
    note = _incomplete_note(run_dir, raw, partial)
    comparison = (_comparison(compare_dir, run_dir, raw, partial) if compare_dir is not None
                  else None)  # fmt: skip
    tutorial = load_tutorial(tutorial_dir) if tutorial_dir is not None else None
    training = _training(training_dir) if training_dir is not None else None
    result = label_archs(raw)
    colors = _report_colors(raw, training)
    figures = [*verdict_figures(raw), *_sweep_figures(result, raw, colors)]
    if tutorial is not None and not tutorial["layers"].empty:
        layers = tutorial["layers"]
        figures.append(PlannedFigure(TUTORIAL_FIGURE, lambda: tutorial_std_vs_layer(layers)))
    if training is not None:
        figures += _training_figures(training, colors)
    text = render(
        result,
        [f.name for f in figures],
        tutorial=None if tutorial is None else tutorial["tutorial"],
        tutorial_layers=None if tutorial is None else tutorial["layers"],
        training=training,
        title=f"initsuite report: {Path(run_dir).resolve().name}",
        comparison=comparison,
        benchmarks=benchmarks,
    )
    if note is not None:  # right under the title
        title, rest = text.split("\n", 1)
        text = f"{title}\n\n{note}{rest}"
    return ReportPlan(figures, text)


def _has(layers: pd.DataFrame, column: str) -> bool:
    return column in layers.columns and bool(layers[column].notna().any())


def _report_colors(raw: SweepResult, training: Any) -> dict[str, str]:
    """One colour per scheme for every figure of the report, from all the schemes it draws
    (the sweep's cells and timing, and the training study's)."""
    names = [raw.cells["scheme"], raw.timing["scheme"]]
    if training is not None:
        names.append(training.runs["scheme"])
    return scheme_colors(levels(pd.concat(names, ignore_index=True)))


def _sweep_figures(result: SweepResult, raw: SweepResult,
                   colors: dict[str, str]) -> list[PlannedFigure]:  # fmt: skip
    """The sweep's figures that have data to draw, in report order (``result``: the tables
    labelled by architecture, for the per-cell figures; ``raw``: as stored, for the per-layer
    figures, which draw each architecture as a line style, and the MLP's phase diagram)."""
    cells, timing = result.cells, result.timing
    # per-layer figures draw the architecture as line style: the stored, unlabelled table
    layers = raw.layers
    ran = cells[cells["error"].isna()]
    # the phase diagram is mean-field theory for the MLP: its cells only, by scheme name
    mlp_result = SweepResult(phase_rows(raw.cells), phase_rows(raw.layers), raw.timing,
                             raw.meta, raw.theory, raw.phase_points, raw.phase_grid)  # fmt: skip
    candidates: list[tuple[str, Any, bool]] = [
        ("std_vs_layer", lambda: std_vs_layer(layers, colors=colors), not layers.empty),
        ("divergence_heatmap", lambda: divergence_heatmap(cells), not ran.empty),
        ("final_std_distribution", lambda: final_std_distribution(cells), not ran.empty),
        ("init_time_vs_width", lambda: init_time_vs_width(timing, colors), not timing.empty),
        ("grad_std_vs_layer", lambda: std_vs_layer(layers, quantity="grad_std", colors=colors),
         _has(layers, "grad_std")),
        ("weight_grad_vs_layer",
         lambda: std_vs_layer(layers, quantity="weight_grad_norm", colors=colors),
         _has(layers, "weight_grad_norm")),
        ("cosine_vs_layer", lambda: cosine_vs_layer(layers, colors=colors),
         _has(layers, "cosine")),
        ("phase_diagram", lambda: phase_figure(mlp_result),
         not phase_rows(ran).empty and not raw.phase_grid.empty),
    ]  # fmt: skip
    lines = {
        "std_vs_layer": lambda: interactive.lines_vs_layer(layers, colors=colors),
        "grad_std_vs_layer": lambda: interactive.lines_vs_layer(layers, "grad_std",
                                                                colors=colors),
        "weight_grad_vs_layer": lambda: interactive.lines_vs_layer(layers, "weight_grad_norm",
                                                                   colors=colors),
        "cosine_vs_layer": lambda: interactive.cosine_lines(layers, colors=colors),
    }  # fmt: skip
    return [PlannedFigure(name, draw, lines.get(name))
            for name, draw, has_data in candidates if has_data]  # fmt: skip


def _training_figures(training: Any, colors: dict[str, str]) -> list[PlannedFigure]:
    """The training study's figures that have data to draw, in the report's ``colors``."""
    threshold = training.meta.get("config", {}).get("threshold")
    curves, runs = training.curves, training.runs
    figures = []
    if bool(curves["train_loss"].notna().any()):
        draw = lambda: loss_curves(curves, threshold, colors=colors)  # noqa: E731
        lines = lambda: interactive.loss_lines(curves, threshold, colors=colors)  # noqa: E731
        figures.append(PlannedFigure(TRAINING_FIGURES[0], draw, lines))
    if not runs.empty:
        figures.append(PlannedFigure(TRAINING_FIGURES[1], lambda: steps_to_threshold(runs, colors)))
    return figures


def _comparison(compare_dir: str | os.PathLike[str], run_dir: str | os.PathLike[str],
                raw: SweepResult, partial: bool) -> Comparison:  # fmt: skip
    from initsuite.results.comparison import compare

    # resolved: results/latest is a link that the next benchmark moves
    labels = (_where(compare_dir), _where(run_dir))
    return compare(SweepResult.load(compare_dir), raw, labels=labels, partial=partial)


def _benchmarks(
    path: str | os.PathLike[str] | None, previous: str | os.PathLike[str] | None, gate: str | None
) -> str | None:
    """The "Benchmarks" section's Markdown from the files (loaded and checked before any
    figure is drawn), or None without ``path``."""
    if path is None:
        if previous is not None:
            raise InitsuiteError(Arg("benchmarks_previous"), " needs ", Arg("benchmarks"),
                                 ": the run's own pytest-benchmark JSON")  # fmt: skip
        return None
    from initsuite.report.benchmarks import benchmarks_section
    from initsuite.results.benchmarks import BenchmarkGate, load_benchmarks

    parsed = BenchmarkGate.parse(gate) if gate is not None else None
    base = load_benchmarks(previous) if previous is not None else None
    return benchmarks_section(load_benchmarks(path), base, parsed)


def _training(training_dir: str | os.PathLike[str]) -> Any:
    from initsuite.results.training import TrainingResult

    return TrainingResult.load(training_dir)


def _where(path: str | os.PathLike[str]) -> str:
    """``path`` resolved, relative to the working directory when below it."""
    full = Path(path).resolve()
    try:
        return str(full.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(full)


def _incomplete_note(run_dir: str | os.PathLike[str], result: SweepResult,
                     partial: bool) -> str | None:  # fmt: skip
    """None for a finished sweep; for an unfinished one, refuse unless ``partial``, else warn
    and return the note that heads the report."""
    stored = require_complete(result, str(run_dir), partial, "report")
    if stored is None:
        return None
    warnings.warn(f"{str(run_dir)!r} holds an incomplete sweep ({stored}): the report covers "
                  "the stored cells only", PartialReportWarning, stacklevel=3)  # fmt: skip
    return (f"> **Incomplete sweep:** this report covers {stored} of the grid; the sweep did "
            "not finish (`initsuite sweep ... --resume` completes it).\n")  # fmt: skip

"""The report stage: figures and a Markdown report from a results directory.

    >>> from initsuite.report import write_report
    >>> write_report("results/run1", tutorial_dir="results/tutorial")  # doctest: +SKIP
    PosixPath('results/run1/report.md')

A report is a function of its directory: it reads stored tables and meta.json through
:mod:`initsuite.results` only, never the scheme registry, theory or torch, so it works where
a sweep's plugins are missing. seaborn and matplotlib are imported when a figure is drawn, not
when this package is imported.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from initsuite.core.errors import Arg, InitsuiteError
from initsuite.report import interactive
from initsuite.report.families import scheme_colors
from initsuite.report.figures import (
    divergence_heatmap,
    final_std_distribution,
    init_time_vs_width,
    levels,
    save_figure,
    std_vs_layer,
)
from initsuite.report.frameworks import frameworks_plan
from initsuite.report.isometry import isometry_plan, jacobian_spectra
from initsuite.report.markdown import label_archs, render, summary_table
from initsuite.report.phase import cosine_vs_layer, phase_figure, plot_phase_diagram
from initsuite.report.plan import REPORT_NAME, PlannedFigure, ReportPlan, write_plan
from initsuite.report.probe_report import write_probe_report
from initsuite.report.training import TRAINING_FIGURES, loss_curves, steps_to_threshold
from initsuite.report.tutorial import TUTORIAL_FIGURE, load_tutorial, tutorial_std_vs_layer
from initsuite.report.verdict_figure import verdict_figures
from initsuite.results import store
from initsuite.results.benchmarks import DEFAULT_GATE
from initsuite.results.frameworks import FrameworksResult
from initsuite.results.isometry import IsometryResult
from initsuite.results.reading import read_meta
from initsuite.results.sweep import SweepResult, require_complete

if TYPE_CHECKING:
    from initsuite.results.comparison import Comparison

__all__ = [
    "REPORT_NAME",
    "PartialReportWarning",
    "cosine_vs_layer",
    "divergence_heatmap",
    "final_std_distribution",
    "init_time_vs_width",
    "jacobian_spectra",
    "loss_curves",
    "phase_figure",
    "plot_phase_diagram",
    "render",
    "save_figure",
    "std_vs_layer",
    "steps_to_threshold",
    "summary_table",
    "sweep_plan",
    "tutorial_std_vs_layer",
    "write_report",
]


class PartialReportWarning(UserWarning):
    """A report written (``partial=True``) for a sweep that did not finish."""


# what a report of each other kind of results directory is made by
_OTHER_KINDS = {
    "training": "a training directory (initsuite train): include it in a sweep's report with "
    "`initsuite report SWEEP --training DIR`",
    "tutorial": "a tutorial reproduction directory (initsuite reproduce tutorial): include it "
    "in a sweep's report with `initsuite report SWEEP --tutorial DIR`",
}


def write_report(
    run_dir: str | os.PathLike[str],
    tutorial_dir: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    training_dir: str | os.PathLike[str] | None = None,
    compare_dir: str | os.PathLike[str] | None = None,
    partial: bool = False,
    html: bool = False,
    benchmarks: str | os.PathLike[str] | None = None,
    benchmarks_previous: str | os.PathLike[str] | None = None,
    benchmark_gate: str | None = DEFAULT_GATE,
) -> Path:
    """Write ``report.md`` and ``figures/*.png`` for the sweep, isometry or frameworks study,
    or the probe, in ``run_dir`` (and ``report.html`` with ``html``).

    Args:
        run_dir: a sweep's results directory (``initsuite sweep``, :meth:`SweepResult.save`),
            an isometry study's (``initsuite reproduce isometry``), a frameworks study's
            (``initsuite reproduce frameworks``) or a probe's (``initsuite probe``,
            ``initsuite reproduce zoo``: :func:`~initsuite.report.probe_report.write_probe_report`).
        tutorial_dir: a tutorial reproduction directory (``initsuite reproduce tutorial``);
            adds a "Tutorial reproduction" section to a sweep's report. Default: none.
        training_dir: a training study directory (``initsuite train``); adds a "Training"
            section with its loss curves and steps to threshold. Default: none.
        compare_dir: an earlier sweep of the same grid (e.g. the previous benchmark); adds a
            "Compared with" section: cells whose divergence layer or final std changed, cells
            in one run only, timing ratios (:func:`initsuite.compare`, no gates). Default: none.
        out_dir: where to write; default ``run_dir``. Written all or nothing
            (:func:`~initsuite.report.plan.write_plan`); an existing ``figures`` or
            ``report.md`` that initsuite did not write is refused.
        partial: report a sweep that did not finish (meta.json says ``"complete": false``),
            with a :class:`PartialReportWarning` and a note atop the report saying how many
            cells of the grid it covers; also compare with an unfinished ``compare_dir``.
            Default: refuse such a sweep.
        html: also write ``report.html``, the same report as one self-contained page with
            interactive figures and sortable, filterable tables
            (:func:`initsuite.report.plan.plan_html`; needs plotly). Default: Markdown only
            (an earlier ``report.html`` is removed).
        benchmarks: a pytest-benchmark JSON file (``--benchmark-json``; ``make bench`` writes
            ``RUN/benchmarks.json``); adds a "Benchmarks" section: each median over its group's
            reference. Default: none.
        benchmarks_previous: the previous run's JSON (``make bench``: the one in
            ``results/latest``); the section then shows this run over it per benchmark, rows
            past ``benchmark_gate`` marked. Needs ``benchmarks``. Default: none.
        benchmark_gate: pytest-benchmark's ``--benchmark-compare-fail`` syntax, e.g.
            ``median:25%`` (the default); None: no gate.

    Returns:
        The path of ``report.md``.

    Raises:
        InitsuiteError: if ``run_dir`` (or ``tutorial_dir``, ``training_dir``, ``compare_dir``)
            is not a readable results directory of the right kind, a benchmark file is not a
            pytest-benchmark run, the gate does not parse, is an unfinished sweep
            without ``partial``, if ``out_dir`` cannot be written, or the plotting libraries
            (or, with ``html``, plotly and python-markdown) are missing.
    """
    out = out_dir if out_dir is not None else run_dir
    kind = _kind(run_dir)
    if kind in ("isometry", "frameworks", "probe"):
        extras = (tutorial_dir, training_dir, compare_dir, benchmarks, benchmarks_previous)
        if any(x is not None for x in extras):
            raise InitsuiteError(
                f"{str(run_dir)!r} holds {'an' if kind == 'isometry' else 'a'} {kind} study: a "
                "tutorial, training, comparison or benchmark file goes with a sweep's report"
            )
        if partial:
            raise InitsuiteError(f"{str(run_dir)!r} holds a {kind} study, written whole: "
                                 "--partial is for an unfinished sweep")  # fmt: skip
        if kind == "probe":
            return write_probe_report(run_dir, out, html=html)
        if kind == "isometry":
            plan = isometry_plan(IsometryResult.load(run_dir), str(run_dir))
        else:
            plan = frameworks_plan(FrameworksResult.load(run_dir), str(run_dir))
        return write_plan(plan, out, html=html, home=run_dir)
    bench = _benchmarks(benchmarks, benchmarks_previous, benchmark_gate)
    plan = sweep_plan(run_dir, tutorial_dir, training_dir, compare_dir, partial, bench)
    return write_plan(plan, out, html=html, home=run_dir)


def sweep_plan(
    run_dir: str | os.PathLike[str],
    tutorial_dir: str | os.PathLike[str] | None = None,
    training_dir: str | os.PathLike[str] | None = None,
    compare_dir: str | os.PathLike[str] | None = None,
    partial: bool = False,
    benchmarks: str | None = None,
) -> ReportPlan:
    """The report of the sweep in ``run_dir``: the figures it has data for, and its text
    (arguments as :func:`write_report`'s; ``benchmarks``: the "Benchmarks" section's
    Markdown, :func:`~initsuite.report.benchmarks.benchmarks_section`)."""
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
    mlp = raw.cells["arch"] == "mlp"
    # the phase diagram is mean-field theory for the MLP: its cells only, by scheme name
    mlp_result = SweepResult(raw.cells[mlp], raw.layers[raw.layers["arch"] == "mlp"],
                             raw.timing, raw.meta, raw.theory, raw.phase_points,
                             raw.phase_grid)  # fmt: skip
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
         bool((ran["arch"] == "mlp").any()) and not raw.phase_grid.empty),
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


def _kind(run_dir: str | os.PathLike[str]) -> str | None:
    """The kind meta.json names; raise, naming the command that reports it, when ``run_dir``
    holds results reported elsewhere (None: no readable meta.json, the loader names the
    problem)."""
    try:
        meta = read_meta(Path(run_dir) / store.META)
    except InitsuiteError:
        return None
    kind = meta.get("kind")
    if isinstance(kind, str) and kind in _OTHER_KINDS:
        raise InitsuiteError(f"{str(run_dir)!r} is not a sweep but {_OTHER_KINDS[kind]}")
    return kind if isinstance(kind, str) else None


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

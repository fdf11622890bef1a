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
from pathlib import Path

from initsuite.report.cell_figures import (
    divergence_heatmap,
    final_std_distribution,
    init_time_vs_width,
)
from initsuite.report.cmap import network_cmap
from initsuite.report.figures import save_figure
from initsuite.report.isometry import jacobian_spectra
from initsuite.report.kinds import kind_of, planner
from initsuite.report.layer_figures import std_vs_layer
from initsuite.report.markdown import render, summary_table
from initsuite.report.phase import cosine_vs_layer, phase_figure, plot_phase_diagram
from initsuite.report.plan import REPORT_NAME, write_plan
from initsuite.report.sweep import PartialReportWarning, ReportOptions, sweep_plan
from initsuite.report.training import loss_curves, steps_to_threshold
from initsuite.report.tutorial import tutorial_std_vs_layer
from initsuite.results.benchmarks import DEFAULT_GATE

__all__ = [
    "REPORT_NAME",
    "PartialReportWarning",
    "cosine_vs_layer",
    "divergence_heatmap",
    "final_std_distribution",
    "init_time_vs_width",
    "jacobian_spectra",
    "loss_curves",
    "network_cmap",
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


def write_report(
    run_dir: str | os.PathLike[str],
    *,
    tutorial_dir: str | os.PathLike[str] | None = None,
    training_dir: str | os.PathLike[str] | None = None,
    compare_dir: str | os.PathLike[str] | None = None,
    partial: bool = False,
    html: bool = False,
    benchmarks: str | os.PathLike[str] | None = None,
    benchmarks_previous: str | os.PathLike[str] | None = None,
    benchmark_gate: str | None = DEFAULT_GATE,
    out_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Write ``report.md`` and ``figures/*.png`` for the sweep, isometry or frameworks study,
    or the probe, in ``run_dir`` (and ``report.html`` with ``html``): the planner of the kind
    its meta.json names (:data:`initsuite.report.kinds.PLANNERS`; a sweep's:
    :mod:`initsuite.report.sweep`) plans it, and the plan is written.

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
        out_dir: where to write; default ``run_dir``. Written all or nothing
            (:func:`~initsuite.report.plan.write_plan`); an existing ``figures`` or
            ``report.md`` that initsuite did not write is refused.

    Returns:
        The path of ``report.md``.

    Raises:
        InitsuiteError: if ``run_dir`` (or ``tutorial_dir``, ``training_dir``, ``compare_dir``)
            is not a readable results directory of the right kind, a benchmark file is not a
            pytest-benchmark run, the gate does not parse, is an unfinished sweep
            without ``partial``, if ``out_dir`` cannot be written, or the plotting libraries
            (or, with ``html``, plotly and python-markdown) are missing.
    """
    # long: the docstring documents each of the ten settings; the code is four lines
    out = out_dir if out_dir is not None else run_dir
    options = ReportOptions(tutorial_dir, training_dir, compare_dir, partial, benchmarks,
                            benchmarks_previous, benchmark_gate)  # fmt: skip
    plan = planner(kind_of(run_dir))(run_dir, options)  # initsuite.report.kinds.PLANNERS
    return write_plan(plan, out, html=html, home=run_dir)

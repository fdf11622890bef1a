"""The report stage: figures and a Markdown report from a saved sweep.

    >>> from initsuite.report import write_report
    >>> write_report("results/run1", tutorial_dir="results/tutorial")  # doctest: +SKIP
    PosixPath('results/run1/report.md')

Reads results through :mod:`initsuite.store` only; never imports torch. seaborn and matplotlib
are imported when a figure is drawn, not when this package is imported.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from initsuite.core.errors import InitsuiteError
from initsuite.report import markdown
from initsuite.report.figures import (
    cosine_vs_layer,
    divergence_heatmap,
    final_std_distribution,
    init_time_vs_width,
    jacobian_spectra,
    loss_curves,
    phase_diagram,
    save_figure,
    std_vs_layer,
    steps_to_threshold,
    tutorial_std_vs_layer,
)
from initsuite.report.markdown import render, summary_table
from initsuite.results import store
from initsuite.results.outputs import FIGURES
from initsuite.results.sweep import SweepResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "REPORT_NAME",
    "PartialReportWarning",
    "divergence_heatmap",
    "final_std_distribution",
    "init_time_vs_width",
    "jacobian_spectra",
    "loss_curves",
    "phase_diagram",
    "render",
    "save_figure",
    "std_vs_layer",
    "steps_to_threshold",
    "summary_table",
    "tutorial_std_vs_layer",
    "write_report",
]

REPORT_NAME = "report.md"


class PartialReportWarning(UserWarning):
    """A report written (``partial=True``) for a sweep that did not finish."""


# what a report of each other kind of results directory is made by
_OTHER_KINDS = {
    "training": "a training directory (initsuite train): include it in a sweep's report with "
    "`initsuite report SWEEP --training DIR`",
    "tutorial": "a tutorial reproduction directory (initsuite reproduce tutorial): include it "
    "in a sweep's report with `initsuite report SWEEP --tutorial DIR`",
    "probe": "a probe directory: `initsuite probe` writes its report.md itself (again from "
    "Python: initsuite.report.probe.write_probe_report(DIR))",
}

_TUTORIAL_COLUMNS = {
    "tutorial": (
        "experiment", "quantity", "tutorial", "expected", "measured_mean", "measured_sd",
        "measured_min", "measured_max", "seeds", "tolerance", "agree", "note",
    ),
    "layers": ("experiment", "seed", "layer", "std"),
}  # fmt: skip


def _load_tutorial(tutorial_dir: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    tables, _ = store.read(tutorial_dir, tuple(_TUTORIAL_COLUMNS))
    for name, cols in _TUTORIAL_COLUMNS.items():
        missing = [c for c in cols if c not in tables[name].columns]
        if missing:
            raise InitsuiteError(
                f"{name}.parquet in {str(tutorial_dir)!r} lacks columns {missing}: "
                "is it a tutorial reproduction directory?"
            )
    return tables


def _has_cosine(layers: pd.DataFrame) -> bool:
    return "cosine" in layers.columns and bool(layers["cosine"].notna().any())


def _has(layers: pd.DataFrame, column: str) -> bool:
    return column in layers.columns and bool(layers[column].notna().any())


def _isometry_figure() -> Figure:
    from initsuite.engine.jacobian import isometry_study

    return jacobian_spectra(isometry_study())


def _phase_figure(result: SweepResult) -> Figure:
    """The phase diagram of the sweep's activations with its schemes placed on it."""
    from initsuite.theory import phase

    config = result.meta.get("config", {})
    acts = list(dict.fromkeys(result.cells["activation"].astype(str)))
    width = int(result.cells["width"].max())
    bias = bool(config.get("bias", False))
    specs = list(dict.fromkeys(result.cells["scheme"].astype(str)))
    grid = pd.concat([phase.phase_diagram(a) for a in acts], ignore_index=True)
    points = pd.concat([phase.scheme_points(a, specs, width, bias) for a in acts],
                       ignore_index=True)  # fmt: skip
    # what the sweep saw at its deepest depth and largest width, per scheme and activation
    c = result.cells
    cells = c[(c["depth"] == c["depth"].max()) & (c["width"] == width) & c["error"].isna()]
    seen = cells.groupby(["scheme", "activation"], observed=True)["divergence_kind"].agg(
        lambda k: "none" if k.isna().all() else (
            str(k.dropna().iloc[0]) if k.notna().all() and k.nunique() == 1 else "mixed")
    )  # fmt: skip
    points["measured"] = [seen.get((s, a), "none") for s, a in
                          zip(points["scheme"], points["activation"], strict=True)]  # fmt: skip
    from initsuite.theory.tables import correlation_depth

    layers = result.layers
    deep = layers[(layers["depth"] == layers["depth"].max()) & (layers["width"] == width)]
    corr = correlation_depth(deep).groupby(["scheme", "activation"])["measured_depth"].median()
    pairs = zip(points["scheme"], points["activation"], strict=True)
    points["measured_depth"] = [corr.get((s, a), float("nan")) for s, a in pairs]
    return phase_diagram(grid, points)


def _where(path: str | os.PathLike[str]) -> str:
    """``path`` resolved, relative to the working directory when below it."""
    full = Path(path).resolve()
    try:
        return str(full.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(full)


def _check_kind(run_dir: str | os.PathLike[str]) -> None:
    """Raise, naming the command that reports it, when ``run_dir`` holds another kind of
    results than a sweep."""
    meta_path = Path(run_dir) / store.META
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # no readable meta.json: the loader names the problem
    kind = meta.get("kind") if isinstance(meta, dict) else None
    if isinstance(kind, str) and kind in _OTHER_KINDS:
        raise InitsuiteError(f"{str(run_dir)!r} is not a sweep but {_OTHER_KINDS[kind]}")


def _grid_cells(meta: dict[str, object]) -> int | None:
    """The number of cells of the sweep's grid, from its meta.json; None if not recorded."""
    cells = meta.get("cells")
    if isinstance(cells, int):
        return cells
    config = meta.get("config")
    axes = ("schemes", "activations", "depths", "widths", "seeds", "devices", "dtypes", "archs")
    if not isinstance(config, dict) or not all(isinstance(config.get(a), list) for a in axes):
        return None
    n = 1
    for a in axes:
        n *= len(config[a])
    return n


def _incomplete_note(run_dir: str | os.PathLike[str], result: SweepResult,
                     partial: bool) -> str | None:  # fmt: skip
    """None for a finished sweep; for an unfinished one, refuse unless ``partial``, else warn
    and return the note that heads the report."""
    if result.meta.get("complete", True) is not False:
        return None
    total = _grid_cells(result.meta)
    stored = f"{len(result.cells)} of {total if total is not None else '?'} cells"
    if not partial:
        raise InitsuiteError(
            f"{str(run_dir)!r} holds an incomplete sweep ({stored}): finish it with "
            "`initsuite sweep ... --resume`, or pass --partial (partial=True) to report what "
            "is stored"
        )
    warnings.warn(f"{str(run_dir)!r} holds an incomplete sweep ({stored}): the report covers "
                  "the stored cells only", PartialReportWarning, stacklevel=3)  # fmt: skip
    return (f"> **Incomplete sweep:** this report covers {stored} of the grid; the sweep did "
            "not finish (`initsuite sweep ... --resume` completes it).\n")  # fmt: skip


def write_report(
    run_dir: str | os.PathLike[str],
    tutorial_dir: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    training_dir: str | os.PathLike[str] | None = None,
    compare_dir: str | os.PathLike[str] | None = None,
    partial: bool = False,
) -> Path:
    """Write ``report.md`` and ``figures/*.png`` for the sweep saved in ``run_dir``.

    Args:
        run_dir: a results directory written by :meth:`SweepResult.save`.
        tutorial_dir: a tutorial reproduction directory (``initsuite reproduce tutorial``);
            adds a "Tutorial reproduction" section. Default: none.
        training_dir: a training study directory (``initsuite train``); adds a "Training"
            section with its loss curves and steps to threshold. Default: none.
        compare_dir: an earlier sweep of the same grid (e.g. the previous benchmark); adds a
            "Compared with" section: cells whose divergence layer or final std changed, cells
            in one run only, timing ratios (:func:`initsuite.compare.compare`, no gates).
            Default: none.
        out_dir: where to write; default ``run_dir``. The figures and report.md are drawn
            into a temporary directory inside it and moved into place when all are done, so
            a failure leaves it as it was; the figures of an earlier report are replaced
            whole. An existing ``figures`` or ``report.md`` that initsuite did not write (a
            symbolic link, a foreign file) is refused.
        partial: report a sweep that did not finish (meta.json says ``"complete": false``),
            with a :class:`PartialReportWarning` and a note atop the report saying how many
            cells of the grid it covers. Default: refuse such a sweep.

    Returns:
        The path of ``report.md``.

    Raises:
        InitsuiteError: if ``run_dir`` (or ``tutorial_dir``, ``training_dir``, ``compare_dir``)
            is not a readable results directory, is not a sweep, is an unfinished sweep
            without ``partial``, if ``out_dir`` cannot be written, or the plotting libraries
            are missing.
    """
    _check_kind(run_dir)
    raw = SweepResult.load(run_dir)
    note = _incomplete_note(run_dir, raw, partial)
    comparison = None
    if compare_dir is not None:
        from initsuite.results.comparison import compare

        # resolved: results/latest is a link that the next benchmark moves
        labels = (_where(compare_dir), _where(run_dir))
        comparison = compare(SweepResult.load(compare_dir), raw, labels=labels)
    result = markdown.label_archs(raw)
    # the phase diagram is mean-field theory for the MLP: its cells only, by scheme name
    mlp = raw.cells["arch"] == "mlp"
    mlp_result = SweepResult(raw.cells[mlp], raw.layers[raw.layers["arch"] == "mlp"],
                             raw.timing, raw.meta)  # fmt: skip
    tutorial = _load_tutorial(tutorial_dir) if tutorial_dir is not None else None
    training = None
    if training_dir is not None:
        from initsuite.results.training import TrainingResult

        training = TrainingResult.load(training_dir)
    out = out_dir if out_dir is not None else run_dir

    ran = result.cells[result.cells["error"].isna()]
    # (name, function, its table, whether there is anything to draw)
    plan: list[tuple[str, Callable[[pd.DataFrame], Figure], pd.DataFrame, bool]] = [
        ("std_vs_layer", std_vs_layer, result.layers, not result.layers.empty),
        ("divergence_heatmap", divergence_heatmap, result.cells, not ran.empty),
        ("final_std_distribution", final_std_distribution, result.cells, not ran.empty),
        ("init_time_vs_width", init_time_vs_width, result.timing, not result.timing.empty),
        (
            "grad_std_vs_layer",
            lambda df: std_vs_layer(df, quantity="grad_std"),
            result.layers,
            _has(result.layers, "grad_std"),
        ),
        (
            "weight_grad_vs_layer",
            lambda df: std_vs_layer(df, quantity="weight_grad_norm"),
            result.layers,
            _has(result.layers, "weight_grad_norm"),
        ),
        ("cosine_vs_layer", cosine_vs_layer, result.layers, _has_cosine(result.layers)),
        (
            "phase_diagram",
            lambda _: _phase_figure(mlp_result),
            result.cells,
            bool((ran["arch"] == "mlp").any()),
        ),
        ("jacobian_spectra", lambda _: _isometry_figure(), result.cells, not ran.empty),
    ]
    if tutorial is not None:
        layers = tutorial["layers"]
        plan.append((markdown.TUTORIAL_FIGURE, tutorial_std_vs_layer, layers, not layers.empty))
    if training is not None:
        threshold = training.meta.get("config", {}).get("threshold")
        curves, runs = training.curves, training.runs
        plan.append((markdown.TRAINING_FIGURES[0], lambda df: loss_curves(df, threshold),
                     curves, bool(curves["train_loss"].notna().any())))  # fmt: skip
        plan.append((markdown.TRAINING_FIGURES[1], steps_to_threshold, runs, not runs.empty))
    owned = {markdown.FIGURE_DIR: FIGURES, REPORT_NAME: None}
    with store.staged(out, owned) as tmp:
        written = []
        for name, make, data, has_data in plan:
            if has_data:
                save_figure(make(data), tmp / markdown.FIGURE_DIR / f"{name}.png")
                written.append(name)
        text = render(
            result,
            written,
            tutorial=None if tutorial is None else tutorial["tutorial"],
            tutorial_layers=None if tutorial is None else tutorial["layers"],
            training=training,
            title=f"initsuite report: {Path(run_dir).resolve().name}",
            comparison=comparison,
        )
        if note is not None:  # right under the title
            title, rest = text.split("\n", 1)
            text = f"{title}\n\n{note}{rest}"
        store.atomic_write_text(tmp / REPORT_NAME, text)
    return Path(out) / REPORT_NAME

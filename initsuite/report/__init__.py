"""The report stage: figures and a Markdown report from a saved sweep.

    >>> from initsuite.report import write_report
    >>> write_report("results/run1", tutorial_dir="results/tutorial")  # doctest: +SKIP
    PosixPath('results/run1/report.md')

Reads results through :mod:`initsuite.store` only; never imports torch. seaborn and matplotlib
are imported when a figure is drawn, not when this package is imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .. import store
from ..errors import InitsuiteError
from ..results import SweepResult
from . import markdown
from .figures import (
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
from .markdown import render, summary_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "REPORT_NAME",
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
    from ..jacobian import isometry_study

    return jacobian_spectra(isometry_study())


def _phase_figure(result: SweepResult) -> Figure:
    """The phase diagram of the sweep's activations with its schemes placed on it."""
    from .. import phase

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
    from ..theory import correlation_depth

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


def write_report(
    run_dir: str | os.PathLike[str],
    tutorial_dir: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    training_dir: str | os.PathLike[str] | None = None,
    compare_dir: str | os.PathLike[str] | None = None,
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
        out_dir: where to write; default ``run_dir``. Files are written atomically, and
            figures of an earlier report that this one does not draw are removed.

    Returns:
        The path of ``report.md``.

    Raises:
        InitsuiteError: if ``run_dir`` (or ``tutorial_dir``, ``training_dir``, ``compare_dir``)
            is not a readable results directory, or the plotting libraries are missing.
    """
    raw = SweepResult.load(run_dir)
    comparison = None
    if compare_dir is not None:
        from ..compare import compare

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
        from ..training import TrainingResult

        training = TrainingResult.load(training_dir)
    out = Path(out_dir if out_dir is not None else run_dir)
    fig_dir = out / markdown.FIGURE_DIR

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
    written = []
    for name, make, data, has_data in plan:
        if has_data:
            save_figure(make(data), fig_dir / f"{name}.png")
            written.append(name)
    # a figure left by an earlier report that this one does not draw would contradict it
    for name in [*markdown.CAPTIONED, markdown.TUTORIAL_FIGURE, *markdown.TRAINING_FIGURES]:
        if name not in written:
            (fig_dir / f"{name}.png").unlink(missing_ok=True)

    text = render(
        result,
        written,
        tutorial=None if tutorial is None else tutorial["tutorial"],
        tutorial_layers=None if tutorial is None else tutorial["layers"],
        training=training,
        title=f"initsuite report: {Path(run_dir).resolve().name}",
        comparison=comparison,
    )
    return store.atomic_write_text(out / REPORT_NAME, text)

"""The training study in a sweep's report: its loss curves, steps to threshold and section.

Takes a :class:`~initsuite.TrainingResult` (``initsuite train``); never imports torch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError
from initsuite.report.captions import figure_block
from initsuite.report.families import (
    family_figure,
    key_legend,
    panel_rows,
    row_legend,
    scheme_colors,
)
from initsuite.report.selection import levels, n_seeds
from initsuite.report.style import COL_WRAP, facets, md_table, md_text, need, new_figure, style
from initsuite.results.columns import TRAINING, label

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["TRAINING_FIGURES", "loss_curves", "steps_to_threshold", "training_section"]

TRAINING_FIGURES: tuple[str, str] = ("training_loss", "training_steps")
"""The training figures' names: the loss curves, the steps to threshold."""


def loss_curves(
    curves: pd.DataFrame,
    threshold: float | None = None,
    hue: str = "scheme",
    colors: dict[str, str] | None = None,
) -> Figure:
    """Full-train-set loss (log y) against step: one row of panels per scheme family (at
    most eight lines a panel, :mod:`initsuite.report.families`), one column per activation,
    one line per ``hue`` value (a scheme): the mean over seeds at each evaluated step, the
    band min to max. A run that diverged stops (× at its last evaluated loss). Dotted: chance
    level ln(classes) as the initial mean loss of a silent net would be; dashed:
    ``threshold``.

    Args:
        curves: the ``training`` table of ``initsuite train``.
        threshold: the loss the runs had to reach (drawn when given).
        hue: the column whose values are the lines (the frameworks study's: ``"law"``).
        colors: ``hue`` value → colour shared by a report's figures; default
            :func:`~initsuite.report.families.scheme_colors` of ``curves``' values.
    """
    need(curves, (hue, "activation", "seed", "step", "train_loss"), "training")
    ev = curves[curves["train_loss"].notna() & np.isfinite(curves["train_loss"])]
    if ev.empty:
        raise InitsuiteError("the training table has no evaluated steps to plot")
    schemes, acts = levels(curves[hue]), levels(curves["activation"])
    colors = colors if colors is not None else scheme_colors(schemes)
    rows = panel_rows(colors, schemes)
    g = ev.groupby(["activation", hue, "step"], observed=True)["train_loss"]
    band = g.agg(["mean", "min", "max"]).reset_index()
    last = int(curves["step"].max())
    ended = curves.groupby(["activation", hue, "seed"], observed=True)["step"].max()
    with style():
        from matplotlib.lines import Line2D

        fig, axes = family_figure(len(rows), len(acts), "optimiser step")
        for (i, row), (j, act) in itertools.product(enumerate(rows), enumerate(acts)):
            ax = axes[i, j]
            here = band[(band["activation"] == act) & band[hue].isin(list(row.schemes))]
            _loss_lines(ax, here, hue, colors, ended.loc[act], last)
            ax.axhline(math.log(10), color="0.35", ls=":", lw=1.0)
            if threshold is not None:
                ax.axhline(threshold, color="0.35", ls="--", lw=1.0)
            ax.set_yscale("log")
            ax.set_xlim(0, last)
            ax.set_title(f"{row.title} · {act}")
        for i, row in enumerate(rows):
            row_legend(axes[i, -1], row.schemes, colors)
        handles = [Line2D([], [], color="0.35", ls=":", label="chance, ln 10")]
        if threshold is not None:
            handles.append(Line2D([], [], color="0.35", ls="--", label=f"threshold {threshold}"))
        key_legend(fig, handles)
        fig.supylabel(f"{label('train_loss', TRAINING)}, log scale")
        depth, width = int(curves["depth"].iloc[0]), int(curves["width"].iloc[0])
        fig.suptitle(
            f"Training curves: depth {depth}, width {width}; mean over "
            f"{n_seeds(curves)} seeds, band min–max"
        )
    return fig


def _loss_lines(ax: Any, band: pd.DataFrame, hue: str, colors: dict[str, str],
                ended: pd.Series, last: int) -> None:  # fmt: skip
    """One panel's loss lines (mean over seeds, band min to max), × at a line whose every seed
    stopped before step ``last`` (``ended``: each (``hue`` value, seed)'s last step)."""
    for scheme, b in band.groupby(hue, observed=True):
        c = colors[scheme]
        ax.fill_between(b["step"], b["min"], b["max"], color=c, alpha=0.15, lw=0)
        ax.plot(b["step"], b["mean"], color=c, lw=1.6)
        if int(ended.loc[scheme].max()) < last:  # every seed stopped early
            ax.plot(b["step"].iloc[-1], b["mean"].iloc[-1], color=c, marker="x", ms=6)


def steps_to_threshold(runs: pd.DataFrame, colors: dict[str, str] | None = None) -> Figure:
    """Steps each scheme needed to reach the loss threshold, one panel per activation: a bar
    at the median over the seeds that reached it, a dot per seed; schemes with seeds that
    never reached it say how many did (``k/n``), and a scheme none of whose seeds did is
    marked "never" (a stalled net) or "diverged".

    Args:
        runs: the ``runs`` table of ``initsuite train``.
        colors: scheme → colour shared by a report's figures; default
            :func:`~initsuite.report.families.scheme_colors` of ``runs``' schemes.
    """
    need(runs, ("scheme", "activation", "seed", "steps", "steps_to_threshold", "reached",
                 "diverged"), "runs")  # fmt: skip
    schemes, acts = levels(runs["scheme"]), levels(runs["activation"])
    budget = int(runs["steps"].max())
    colors = colors if colors is not None else scheme_colors(schemes)
    with style():
        ncols = min(COL_WRAP, len(acts))
        fig = new_figure(4.2 * ncols, 0.42 * len(schemes) * math.ceil(len(acts) / ncols) + 1.6)
        axes = facets(fig, len(acts), ncols)
        for ax, act in zip(axes, acts, strict=True):
            sub = runs[runs["activation"] == act]
            for i, scheme in enumerate(schemes):
                r = sub[sub["scheme"] == scheme]
                hit = r["steps_to_threshold"].dropna().astype(float)
                if len(hit):
                    ax.barh(i, float(hit.median()), color=colors[scheme], alpha=0.55, height=0.6)
                    ax.plot(hit, [i] * len(hit), "o", color=colors[scheme], ms=4, mec="0.2",
                            mew=0.5)  # fmt: skip
                note = None
                if len(r) and len(hit) < len(r):
                    note = f"{len(hit)}/{len(r)} reached"
                    if not len(hit):
                        note = "diverged" if bool(r["diverged"].all()) else "never (stalled)"
                if note:
                    x = float(hit.median()) if len(hit) else 0.0
                    ax.text(x + budget * 0.02, i, note, va="center", fontsize=8, color="0.25")
            ax.set_yticks(range(len(schemes)), schemes)
            ax.set_ylim(len(schemes) - 0.5, -0.5)
            ax.set_xlim(0, budget * 1.05)
            ax.axvline(budget, color="0.35", ls=":", lw=1.0)
            ax.set_title(act)
            ax.yaxis.grid(False)
        fig.supxlabel(f"steps to reach the loss threshold (of {budget}; dotted: the budget)")
        fig.suptitle(f"Steps to threshold: bar = median over seeds that reached it, dots = "
                     f"seeds ({n_seeds(runs)})")  # fmt: skip
    return fig


def training_section(training: Any, figures: Sequence[str], number: int) -> str:
    """The "Training" section of a :class:`~initsuite.TrainingResult`; the figures listed in
    ``figures`` numbered from ``number + 1``."""
    cfg = training.meta.get("config", {})
    eval_every = md_text(cfg.get("eval_every", "None"))
    parts = [
        "## Training\n",
        _training_intro(cfg, training.meta.get("dataset", {})),
        md_table(_training_summary(training)) + "\n",
        "He et al. (2015): in a deep ReLU net without normalisation, Kaiming's variance "
        "2/fan_in keeps the signal (χ₁ = 1) and the net trains, while Xavier's 1/fan_in (gain "
        "1) halves the signal's second moment at every layer and PyTorch's default "
        "(1/(3·fan_in)) shrinks it faster: after L layers the output and the gradients of "
        "the first layers are 2^(-L/2) and smaller (3e-5 at L = 30), and SGD stalls at "
        "chance. Glorot & Bengio (2010): tanh trains from Xavier's init (with the tanh gain "
        "5/3, the variance-preserving choice).\n",
    ]
    captions = {
        TRAINING_FIGURES[0]: ("Training curves", (
            "One row of panels per scheme family, one column per activation. "
            "Loss on the whole training split (log scale) every "
            f"{eval_every} steps, mean over seeds, band min to max; dotted: chance "
            "(ln 10), dashed: the threshold. A flat line at chance is a net that does not "
            "learn at all (its output and gradients vanished at init).")),
        TRAINING_FIGURES[1]: ("Steps to threshold", (
            "Steps each scheme needed to bring the training loss to the threshold: bar at the "
            "median over the seeds that reached it, a dot per seed; `never (stalled)` marks a "
            "scheme none of whose seeds reached it within the budget.")),
    }  # fmt: skip
    for name in TRAINING_FIGURES:
        if name in figures:
            number += 1
            title, cap = captions[name]
            parts.append(figure_block(name, title, cap, number))
    return "\n".join(parts)


def _training_summary(training: Any) -> pd.DataFrame:
    """The section's table: per scheme and activation, runs that reached the threshold (of
    all), the median steps and the final loss and accuracy."""
    summary = training.summary()
    summary["reached"] = [f"{r}/{n}" for r, n in zip(summary["reached"], summary["runs"],
                                                     strict=True)]  # fmt: skip
    return summary.drop(columns=["runs"]).rename(columns={
        "reached": "reached threshold", "median_steps_to_threshold": "median steps",
        "mean_final_train_loss": "final train loss", "mean_final_test_accuracy":
        "final test accuracy",
    })  # fmt: skip


def _training_intro(cfg: dict[str, Any], data: dict[str, Any]) -> str:
    """The section's first paragraph: the net, the data and the optimiser as ``cfg`` (the
    study's stored configuration) and ``data`` (its dataset's description) record them."""

    def get(key: str, default: str = "None") -> str:  # a stored value as plain text
        return md_text(cfg.get(key, default))

    # "batch_size" in a directory written before the API named it batch everywhere
    batch = md_text(cfg.get("batch", cfg.get("batch_size", "None")))
    opt = get("optimizer", "?")
    if cfg.get("optimizer") == "sgd":
        opt = f"SGD with momentum {get('momentum')}"
    name, train, test = (md_text(data.get(k, "?")) for k in ("name", "train", "test"))
    layers = f"{get('depth')} {'' if cfg.get('bias') else 'bias-free '}Linear layers"
    return (
        f"Does the initialisation let the network learn? The MLP ({layers}, width "
        f"{get('width')}, the activation after all but the last) trained on {name} "
        f"({train} training and {test} test examples, {md_text(data.get('classes', '?'))} "
        f"classes, shipped with scikit-learn) for {get('steps')} steps of {opt}, learning rate "
        f"{get('lr')}, batches of {batch}, from each scheme with "
        f"{len(cfg.get('seeds', []))} seeds (the runs of one seed see the same batches). "
        f"*Reached threshold* counts runs whose full-train-set loss fell to "
        f"{get('threshold')} (chance: ln 10 ≈ 2.30), evaluated every "
        f"{get('eval_every')} steps; *median steps* is over those runs.\n"
    )  # fmt: skip

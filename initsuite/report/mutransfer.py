"""The μTransfer reproduction's tables, verdict and figure: the best learning rate of each
width (or depth) under each parametrization, how far it moves, and the loss against
log2(learning rate), a line per width, a panel per parametrization.

A run's loss is its training loss after the study's steps; the best learning rate of a width
is the one whose loss, averaged over seeds, is least (a diverged run's loss counts as +inf, so
a learning rate where any seed diverged is never the best). Each seed's own best gives the
spread.

Never imports torch; seaborn and matplotlib are imported when the figure is drawn.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError
from initsuite.report.captions import figure_block
from initsuite.report.markdown import run_lines
from initsuite.report.plan import PlannedFigure, ReportPlan
from initsuite.report.style import md_table, md_text, need, new_figure, outside_legend, style

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["BEST", "MUTRANSFER_FIGURES", "best_lrs", "loss_vs_lr", "lr_shifts", "mutransfer_plan",
           "mutransfer_verdict"]  # fmt: skip

MUTRANSFER_FIGURES: tuple[str, ...] = ("mutransfer_mlp", "mutransfer_transformer",
                                       "mutransfer_resmlp")  # fmt: skip
"""The figures a μTransfer report may draw: one per experiment
(:data:`initsuite.studies.mutransfer.EXPERIMENTS`)."""

BEST: tuple[str, ...] = (
    "parametrization", "model", "optimizer", "axis", "at", "value", "best_lr", "best_log2_lr",
    "best_loss", "seed_low_log2_lr", "seed_high_log2_lr", "seeds",
)  # fmt: skip
"""The columns of :func:`best_lrs`: ``value`` is the width (or depth) of the row, ``at`` the
other axis's value; the seed columns are the least and greatest of each seed's own best."""

_KEYS = ["parametrization", "model", "optimizer"]
_RUNS = (*_KEYS, "width", "depth", "lr", "seed", "diverged", "final_train_loss")


def _losses(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with ``loss``: the final training loss, +inf where the run diverged."""
    need(runs, _RUNS, "runs")
    bad = runs["diverged"].astype(bool) | ~np.isfinite(runs["final_train_loss"].astype(float))
    return runs.assign(loss=runs["final_train_loss"].astype(float).where(~bad, np.inf))


def _axis(runs: pd.DataFrame, axis: str | None) -> str:
    """The swept axis: ``width`` unless only depth varies (or as asked)."""
    if axis is None:
        axis = "depth" if runs["width"].nunique() < 2 <= runs["depth"].nunique() else "width"
    if axis not in ("width", "depth"):
        raise InitsuiteError(f"axis must be width or depth, got {axis!r}")
    return axis


def best_lrs(runs: pd.DataFrame, axis: str | None = None) -> pd.DataFrame:
    """The best learning rate of each parametrization × model × optimizer × value of ``axis``
    (× the other axis's value): the :data:`BEST` table, in the runs' order."""
    runs = _losses(runs)
    axis = _axis(runs, axis)
    other = "depth" if axis == "width" else "width"
    rows = []
    for key, g in runs.groupby([*_KEYS, other, axis], observed=True, sort=False):
        mean = g.groupby("lr", observed=True)["loss"].mean()
        if not np.isfinite(mean).any():
            continue  # every learning rate diverged: no best
        best = float(mean.idxmin())
        per_seed = [math.log2(float(s.loc[s["loss"].idxmin(), "lr"]))
                    for _, s in g.groupby("seed", observed=True)
                    if np.isfinite(s["loss"]).any()]  # fmt: skip
        rows.append((*key[:3], axis, key[3], key[4], best, math.log2(best), float(mean.min()),
                     min(per_seed), max(per_seed), len(per_seed)))  # fmt: skip
    return pd.DataFrame(rows, columns=list(BEST))


def lr_shifts(best: pd.DataFrame) -> pd.DataFrame:
    """How many octaves the best learning rate moves from the smallest value of the axis to
    the largest, per parametrization × model × optimizer × the other axis's value: columns
    ``start``, ``end`` (the axis's values), ``from_log2_lr``, ``to_log2_lr``, ``octaves`` and
    ``span`` (the largest minus the least best log2 lr over every value)."""
    need(best, BEST, "best")
    rows = []
    for key, g in best.groupby([*_KEYS, "axis", "at"], observed=True, sort=False):
        g = g.sort_values("value")
        first, last = g.iloc[0], g.iloc[-1]
        rows.append((*key, int(first["value"]), int(last["value"]), first["best_log2_lr"],
                     last["best_log2_lr"], last["best_log2_lr"] - first["best_log2_lr"],
                     g["best_log2_lr"].max() - g["best_log2_lr"].min()))  # fmt: skip
    return pd.DataFrame(rows, columns=[*_KEYS, "axis", "at", "start", "end", "from_log2_lr",
                                       "to_log2_lr", "octaves", "span"])  # fmt: skip


def mutransfer_verdict(best: pd.DataFrame) -> list[str]:
    """One Markdown sentence per parametrization × model × optimizer × the other axis's value:
    where the best learning rate goes as the axis grows, in octaves."""
    out = []
    for r in lr_shifts(best).itertuples():
        other = "depth" if r.axis == "width" else "width"
        away = f"ends where it started, {r.span:g} {_octaves(r.span)} off on the way"
        moves = ("stays put" if r.span == 0 else
                 f"moves {r.octaves:+g} {_octaves(r.octaves)}" if r.octaves else away)  # fmt: skip
        out.append(f"**{md_text(r.parametrization)}** ({md_text(r.model)}, "
                   f"{md_text(r.optimizer)}, {other} {r.at}): the best learning rate {moves} "
                   f"from {r.axis} {r.start} to {r.end} (2^{r.from_log2_lr:g} → "
                   f"2^{r.to_log2_lr:g}).")  # fmt: skip
    return out


def _octaves(n: float) -> str:
    return "octave" if abs(n) == 1 else "octaves"


def loss_vs_lr(runs: pd.DataFrame, axis: str | None = None) -> Figure:
    """Training loss (log) against log2(learning rate), a line per width (or depth), a panel
    per parametrization, each point the mean over seeds; a ring marks each line's best."""
    runs = _losses(runs)
    axis = _axis(runs, axis)
    other = "depth" if axis == "width" else "width"
    df = runs[runs[other] == runs[other].max()]
    mean = (df.groupby(["parametrization", axis, "lr"], observed=True, sort=False)["loss"]
            .mean().reset_index())  # fmt: skip
    mean = mean[np.isfinite(mean["loss"])]  # a learning rate where a seed diverged: no point
    params = list(dict.fromkeys(df["parametrization"]))
    values = sorted(mean[axis].unique())
    with style() as sns:
        colors = dict(zip(values, sns.color_palette("viridis", len(values)), strict=True))
        fig = new_figure(3.0 * len(params) + 1.4, 2.8)
        axes = fig.subplots(1, len(params), sharey=True, squeeze=False)[0]
        for ax, p in zip(axes, params, strict=True):
            for v in values:
                g = mean[(mean["parametrization"] == p) & (mean[axis] == v)].sort_values("lr")
                if g.empty:
                    continue
                x = np.log2(g["lr"].to_numpy())
                ax.plot(x, g["loss"], color=colors[v], marker="o", markersize=2.5)
                k = int(np.argmin(g["loss"].to_numpy()))
                ax.plot(x[k], g["loss"].iloc[k], "o", mfc="none", color=colors[v], markersize=8)
            ax.set_yscale("log")
            ax.set_title(str(p))
            ax.set_xlabel("log2(learning rate)")
        axes[0].set_ylabel("training loss")
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=colors[v], label=str(v)) for v in values]
        outside_legend(fig, handles, axis)
    return fig


def mutransfer_plan(result: Any, run_dir: str) -> ReportPlan:
    """The report of a μTransfer reproduction (a :class:`~initsuite.results.mutransfer.
    MuTransferResult`): the verdict of each experiment first, then its figure and its table
    of best learning rates."""
    runs, cfg = result.runs, result.meta.get("config", {}) or {}
    experiments = list(dict.fromkeys(runs["model"]))
    parts = [f"# initsuite μTransfer: {md_text(Path(run_dir).resolve().name)}\n", "## Verdict\n"]
    bests = {m: best_lrs(runs[runs["model"] == m]) for m in experiments}
    for m in experiments:
        parts += [f"- {line}" for line in mutransfer_verdict(bests[m])]
    parts.append("\nUnder the standard parametrization the best learning rate moves as the model "
                 "widens; under μP it stays put (Yang et al. 2022, Tensor Programs V), and over "
                 "depth under depth-μP's 1/√L branches (Yang et al. 2023; Bordelon et al. "
                 "2023). A width's best is the learning rate of least training loss, averaged "
                 "over seeds (a diverged seed counts as +inf).\n")  # fmt: skip
    figures = []
    for n, m in enumerate(experiments, 1):
        name = f"mutransfer_{m}"
        if name not in MUTRANSFER_FIGURES:
            raise InitsuiteError(f"{str(run_dir)!r} holds runs of model {m!r}, which the "
                                 "μTransfer study does not train")  # fmt: skip
        exp = (cfg.get("experiments") or {}).get(m, {})
        figures.append(PlannedFigure(name, functools.partial(loss_vs_lr, runs[runs["model"] == m])))
        best = bests[m]
        axis = str(best["axis"].iloc[0]) if len(best) else "width"
        title = f"{md_text(m)}: loss against learning rate"
        parts.append(f"## {md_text(m)}\n")
        parts.append(figure_block(name, title, _caption(m, exp, axis, cfg), n))
        parts.append(md_table(_best_table(best)) + "\n")
    parts.append("\n".join(run_lines(result.meta)) + "\n")
    return ReportPlan(figures, "\n".join(parts))


def _best_table(best: pd.DataFrame) -> pd.DataFrame:
    """The best learning rate of each width (or depth), with the seeds' own bests."""
    return pd.DataFrame({
        "parametrization": best["parametrization"], best["axis"].iloc[0]: best["value"],
        "best lr": best["best_log2_lr"].map(lambda v: f"2^{v:g}"),
        "seeds' best": [f"2^{a:g}" if a == b else f"2^{a:g} to 2^{b:g}" for a, b in
                        zip(best["seed_low_log2_lr"], best["seed_high_log2_lr"], strict=True)],
        "loss": best["best_loss"].map(lambda v: f"{v:.3g}"),
    }).reset_index(drop=True) if len(best) else pd.DataFrame()  # fmt: skip


def _caption(model: str, exp: Mapping[str, Any], axis: str, cfg: Mapping[str, Any]) -> str:
    task = {"digits": "scikit-learn's digits", "bigram": "a synthetic Markov-chain sequence "
            "task (next-token cross-entropy)"}.get(str(exp.get("task")), "its task")  # fmt: skip
    return (f"Training loss of {md_text(model)} on {task} after {md_text(exp.get('steps', '?'))} "
            f"{md_text(cfg.get('optimizer', 'adam'))} steps (batch "
            f"{md_text(exp.get('batch', '?'))}) against log2(learning rate), a line per "
            f"{axis}, a panel per parametrization, each point the mean over "
            f"{md_text(cfg.get('seeds', '?'))} seeds; a ring marks each line's best. Lines whose "
            "minima line up: the learning rate transfers.")  # fmt: skip

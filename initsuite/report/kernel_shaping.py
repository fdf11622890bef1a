"""The kernel-shaping reproduction's verdict, table and figure: which deep vanilla MLPs train
on digits with the study's optimiser, how many steps each took to reach the loss threshold
(over seeds), and their loss curves, a line per net, a panel per depth.

A run reaches the threshold at the first evaluated step whose full-train-set loss is at or
below it (``steps_to_threshold``, stored by the run); a diverged run never reaches it.

Never imports torch; seaborn and matplotlib are imported when the figure is drawn.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from initsuite.report.captions import figure_block
from initsuite.report.cmap import CMAP_FIGURE, cmap_section, network_cmap
from initsuite.report.markdown import run_lines
from initsuite.report.plan import PlannedFigure, ReportPlan
from initsuite.report.style import md_table, md_text, need, new_figure, outside_legend, style

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["KERNEL_SHAPING_FIGURE", "STEPS", "kernel_shaping_plan", "kernel_shaping_verdict",
           "loss_curves", "steps_to_threshold"]  # fmt: skip

KERNEL_SHAPING_FIGURE = "kernel_shaping_loss"
"""The figure of a kernel-shaping report: training loss against step."""
# a run may cross the threshold and rise again (an unstable learning rate): the verdict gives
# each net's final losses beside its steps to the threshold

STEPS: tuple[str, ...] = (
    "net", "depth", "seeds", "reached", "diverged", "median_steps", "min_steps", "max_steps",
    "final_train_loss", "min_final_train_loss", "max_final_train_loss", "final_test_accuracy",
)  # fmt: skip
"""The columns of :func:`steps_to_threshold`: per net and depth, how many seeds reached the
threshold (or diverged), the median, least and greatest steps of those that did, and the
final full-train loss (median, least, greatest over seeds that did not diverge) and the
median final test accuracy."""

_RUNS = ("net", "depth", "seed", "steps_to_threshold", "reached", "diverged", "final_train_loss",
         "final_test_accuracy")  # fmt: skip
_CURVES = ("net", "depth", "seed", "step", "train_loss")


def steps_to_threshold(runs: pd.DataFrame) -> pd.DataFrame:
    """The :data:`STEPS` table of ``runs`` (a ``runs.parquet``), one row per net × depth in
    the runs' order."""
    need(runs, _RUNS, "runs")
    rows = []
    for (net, depth), g in runs.groupby(["net", "depth"], observed=True, sort=False):
        hit = g.loc[g["reached"].astype(bool), "steps_to_threshold"].astype(float)
        final = g.loc[~g["diverged"].astype(bool), "final_train_loss"].astype(float)
        nan = float("nan")
        rows.append((net, int(depth), len(g), len(hit), int(g["diverged"].astype(bool).sum()),
                     float(hit.median()) if len(hit) else nan, hit.min(), hit.max(),
                     float(final.median()) if len(final) else nan, final.min(), final.max(),
                     float(g["final_test_accuracy"].astype(float).median())))  # fmt: skip
    return pd.DataFrame(rows, columns=list(STEPS))


def kernel_shaping_verdict(table: pd.DataFrame, cfg: Mapping[str, Any]) -> list[str]:
    """One Markdown sentence per depth: which nets reached the threshold in every seed, in
    some, in none (``table``: :func:`steps_to_threshold`'s; ``cfg``: the run's config)."""
    fit = cfg.get("fit", {}) or {}
    how = (f"{md_text(fit.get('optimizer', '?'))} (lr {md_text(fit.get('lr', '?'))}, "
           f"{md_text(fit.get('steps', '?'))} steps of batch "
           f"{md_text(fit.get('batch', '?'))})")  # fmt: skip
    out = []
    for depth, g in table.groupby("depth", sort=True):
        every = [f"**{md_text(r.net)}** ({_median(r.median_steps)} steps; {_final(r)})"
                 for r in g.itertuples() if r.reached == r.seeds]  # fmt: skip
        some = [f"**{md_text(r.net)}** ({r.reached} of {r.seeds} seeds; {_final(r)})"
                for r in g.itertuples() if 0 < r.reached < r.seeds]  # fmt: skip
        none = [f"**{md_text(r.net)}** ({_final(r)})"
                for r in g.itertuples() if r.reached == 0]  # fmt: skip
        parts = [f"in every seed for {', '.join(every)}" if every else "",
                 f"in some seeds for {', '.join(some)}" if some else "",
                 f"in no seed for {', '.join(none)}" if none else ""]  # fmt: skip
        out.append(f"Depth {depth}, {how}: the training loss reached "
                   f"{md_text(fit.get('threshold', '?'))} nats "
                   f"{'; '.join(p for p in parts if p)}.")  # fmt: skip
    return out


def _median(v: float) -> str:
    return f"median {v:g}" if np.isfinite(v) else "—"


def _final(r: Any) -> str:
    """The final training loss over seeds (a run may cross the threshold, then rise)."""
    if not np.isfinite(r.final_train_loss):
        return "every seed diverged"
    spread = (f"{r.min_final_train_loss:.3g}" if r.min_final_train_loss == r.max_final_train_loss
              else f"{r.min_final_train_loss:.3g} to {r.max_final_train_loss:.3g}")  # fmt: skip
    return f"final loss {spread}"


def loss_curves(curves: pd.DataFrame, threshold: float | None = None,
                labels: Mapping[str, str] | None = None) -> Figure:  # fmt: skip
    """Full-train-set loss (log) against step at the evaluated steps, a line per net (the
    median over seeds, a band from the least to the greatest seed), a panel per depth; a
    dashed line at ``threshold``."""
    need(curves, _CURVES, "curves")
    df = curves.dropna(subset=["train_loss"])
    nets, depths = list(dict.fromkeys(df["net"])), sorted(df["depth"].unique())
    with style() as sns:
        colors = dict(zip(nets, sns.color_palette("tab10", len(nets)), strict=True))
        fig = new_figure(3.2 * len(depths) + 2.6, 3.0)
        axes = fig.subplots(1, len(depths), sharey=True, squeeze=False)[0]
        for ax, depth in zip(axes, depths, strict=True):
            for net in nets:
                g = df[(df["net"] == net) & (df["depth"] == depth)]
                by = g.groupby("step")["train_loss"]
                if g.empty:
                    continue
                steps = np.asarray(by.median().index)
                ax.plot(steps, by.median().to_numpy(), color=colors[net], lw=1.4)
                ax.fill_between(steps, by.min().to_numpy(), by.max().to_numpy(),
                                color=colors[net], alpha=0.2, lw=0)  # fmt: skip
            if threshold is not None:
                ax.axhline(threshold, color="0.4", ls="--", lw=0.8)
            ax.set_yscale("log")
            ax.set_title(f"depth {depth}")
            ax.set_xlabel("step")
        axes[0].set_ylabel("training loss (full train set)")
        from matplotlib.lines import Line2D

        names = labels or {}
        handles = [Line2D([], [], color=colors[n], label=str(names.get(n, n))) for n in nets]
        outside_legend(fig, handles, "net")
    return fig


def kernel_shaping_plan(result: Any, run_dir: str) -> ReportPlan:
    """The report of a kernel-shaping reproduction (a :class:`~initsuite.results.
    kernel_shaping.KernelShapingResult`): the verdict first, then the loss curves and the
    steps to the threshold per net and depth."""
    cfg = result.meta.get("config", {}) or {}
    fit = cfg.get("fit", {}) or {}
    table = steps_to_threshold(result.runs)
    parts = [f"# initsuite kernel-shaping: {md_text(Path(run_dir).resolve().name)}\n",
             "## Verdict\n", *[f"- {line}" for line in kernel_shaping_verdict(table, cfg)],
             f"\nWhat was measured: deep MLPs without normalisation or skip connections (and a "
             f"residual baseline) trained on scikit-learn's digits with "
             f"{md_text(fit.get('optimizer', '?'))} at learning rate {md_text(fit.get('lr', '?'))}"
             f" over {md_text(cfg.get('seeds', '?'))} seeds, one learning rate for every net. "
             "Deep Kernel Shaping (Martens et al. 2021) and TAT (Zhang, Martens & Grosse 2022) "
             "report their best results with K-FAC, which was not run here; a net that does "
             "not reach the threshold here may with another optimiser, learning rate or more "
             "steps.\n"]  # fmt: skip
    threshold = fit.get("threshold")
    draw = functools.partial(loss_curves, result.curves, threshold, cfg.get("labels"))
    parts += ["## Loss curves\n", figure_block(KERNEL_SHAPING_FIGURE, "training loss against step",
              _caption(cfg), 1), "## Steps to the threshold\n", md_table(_shown(table)) + "\n",
              "## Nets\n", md_table(_nets(result.runs, cfg)) + "\n"]  # fmt: skip
    figures = [PlannedFigure(KERNEL_SHAPING_FIGURE, draw)]
    cmap = getattr(result, "cmap", None)
    if cmap is not None and not cmap.empty:
        shaping = result.meta.get("shaping") or []
        parts += ["## Why: the vanilla nets' c-maps at init, measured beside the theory\n",
                  _CMAP_INTRO, *cmap_section(cmap, cfg.get("cmap", {}) or {}, shaping, level=3,
                                             number=2)]  # fmt: skip
        figures.append(PlannedFigure(CMAP_FIGURE, functools.partial(network_cmap, cmap)))
    parts.append("\n".join(run_lines(result.meta)) + "\n")
    return ReportPlan(figures, "\n".join(parts))


_CMAP_INTRO = (
    "The same nets at init, before any step: the cosine of an input pair (each input at "
    "q = 1) after all their nonlinear layers, against the input cosine, over the same seeds "
    "and width, beside the activation's c-map composed over the depth (the mean-field "
    "theory). A net whose map sends every input cosine to one value sees every input alike "
    "and has no signal to train on.\n"
)


def _caption(cfg: Mapping[str, Any]) -> str:
    fit = cfg.get("fit", {}) or {}
    return (f"Loss over the whole training split every {md_text(fit.get('eval_every', '?'))} "
            f"steps, a line per net (the median over {md_text(cfg.get('seeds', '?'))} seeds; "
            f"the band spans the seeds), a panel per depth (Linear layers, width "
            f"{md_text(cfg.get('width', '?'))}); the dashed line is the threshold of "
            f"{md_text(fit.get('threshold', '?'))} nats.")  # fmt: skip


def _shown(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`steps_to_threshold`'s table as the report shows it."""
    if table.empty:
        return table

    def span(lo: float, hi: float) -> str:
        return "—" if not np.isfinite(lo) else f"{lo:.3g}" if lo == hi else f"{lo:.3g} to {hi:.3g}"

    return pd.DataFrame({
        "net": table["net"], "depth": table["depth"],
        "reached": [f"{r} of {s}" for r, s in zip(table["reached"], table["seeds"], strict=True)],
        "diverged": table["diverged"], "median steps": table["median_steps"],
        "seeds' steps": [span(a, b) for a, b in zip(table["min_steps"], table["max_steps"],
                                                     strict=True)],
        "final train loss": table["final_train_loss"],
        "seeds' final loss": [span(a, b) for a, b in zip(table["min_final_train_loss"],
                                                         table["max_final_train_loss"],
                                                         strict=True)],
        "test accuracy": table["final_test_accuracy"],
    })  # fmt: skip


def _nets(runs: pd.DataFrame, cfg: Mapping[str, Any]) -> pd.DataFrame:
    """Each net's architecture, activation (its solved spec at each depth), init and input."""
    labels = cfg.get("labels", {}) or {}
    first = runs.drop_duplicates(["net", "depth"])
    return pd.DataFrame({
        "net": first["net"], "depth": first["depth"],
        "what": [str(labels.get(n, "")) for n in first["net"]], "arch": first["arch"],
        "activation": first["activation"], "init": first["scheme"],
        "input": ["q = 1 per example" if n else "standardised" for n in first["normalized"]],
    }).reset_index(drop=True)  # fmt: skip

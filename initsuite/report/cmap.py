"""The c-map study's report: each net's c-map (output cosine against input cosine) per depth,
measured and predicted, as a figure and a table.

Reads a c-map study directory (:func:`initsuite.studies.cmap.cmap_study`, saved) through
:class:`~initsuite.results.cmap.CMapResult` only; never imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from initsuite.report.captions import figure_block
from initsuite.report.markdown import run_lines, shaping_section
from initsuite.report.plan import PlannedFigure, ReportPlan
from initsuite.report.selection import levels
from initsuite.report.style import (
    PANEL_H,
    PANEL_W,
    facets,
    md_table,
    md_text,
    need,
    new_figure,
    outside_legend,
    palette,
    style,
)
from initsuite.results.cmap import CMapResult
from initsuite.results.columns import CMAP, label

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["CMAP_FIGURE", "cmap_plan", "cmap_section", "cmap_summary", "cmap_table",
           "network_cmap"]  # fmt: skip

CMAP_FIGURE = "network_cmap"
_NET = ["activation", "scheme"]
_KEYS = [*_NET, "depth", "width", "input_cosine"]


def cmap_table(cmap: pd.DataFrame) -> pd.DataFrame:
    """Per net, depth, width and input cosine: the measured output cosine's mean, min and
    max over seeds beside the composed map's (one value: the theory has no seed)."""
    need(cmap, (*_KEYS, "output_cosine", "theory_output_cosine"), "cmap")
    g = cmap.groupby(_KEYS, observed=True, sort=True)
    return g.agg(mean=("output_cosine", "mean"), lo=("output_cosine", "min"),
                 hi=("output_cosine", "max"),
                 theory=("theory_output_cosine", "first")).reset_index()  # fmt: skip


def cmap_summary(cmap: pd.DataFrame) -> pd.DataFrame:
    """Per net, depth and width: the measured and predicted output cosine at input cosine 0
    (the nearest one sampled), the measured mean's largest gap to the prediction over the
    input cosines, and the output q measured (mean over seeds and cosines) and predicted."""
    table = cmap_table(cmap)
    q = cmap.groupby([*_NET, "depth", "width"], observed=True, sort=True).agg(
        q=("output_q", "mean"), theory_q=("theory_output_q", "first"))  # fmt: skip
    rows = []
    for key, g in table.groupby([*_NET, "depth", "width"], observed=True, sort=True):
        at0 = g.loc[(g["input_cosine"].abs()).idxmin()]
        rows.append({
            "activation": key[0], "scheme": key[1], "depth": key[2], "width": key[3],
            "c₀": at0["input_cosine"], "C(c₀)": at0["mean"], "theory C(c₀)": at0["theory"],
            "max |gap|": (g["mean"] - g["theory"]).abs().max(),
            "q": q.loc[key, "q"], "theory q": q.loc[key, "theory_q"],
        })  # fmt: skip
    return pd.DataFrame(rows)


def cmap_plan(result: CMapResult, run_dir: str) -> ReportPlan:
    """The report of a c-map study: its figure (when it holds rows) and text."""
    drawn = not result.cmap.empty
    figures = [PlannedFigure(CMAP_FIGURE, lambda: network_cmap(result.cmap))]
    return ReportPlan(figures if drawn else [], _render(result, run_dir, drawn))


def _render(result: CMapResult, run_dir: str, drawn: bool) -> str:
    cfg: Mapping[str, Any] = result.meta.get("config", {}) or {}
    parts = [
        f"# initsuite cmap report: {md_text(Path(run_dir).resolve().name)}\n",
        "\n".join(run_lines(result.meta)) + "\n",
        "## Figures\n",
    ]
    if not drawn:
        parts.append("No figures: the study holds no rows.\n")
    parts += cmap_section(result.cmap, cfg, result.meta.get("shaping") or [], level=2)
    return "\n".join(parts)


def cmap_section(cmap: pd.DataFrame, cfg: Mapping[str, Any], shaping: list[Any], *,
                 level: int, number: int = 1) -> list[str]:  # fmt: skip
    """The c-map figure's block, its summary table and the solved constants, as Markdown
    parts under headings of ``level`` (a report that draws :data:`CMAP_FIGURE` from ``cmap``;
    ``cfg``: the study's depths, widths and seeds; ``number``: the figure's in its report).
    Nothing when ``cmap`` has no rows."""
    if cmap.empty:
        return []
    head = "#" * level
    parts = [figure_block(CMAP_FIGURE, "The network's c-map", _caption(cfg), number),
             f"{head} Summary\n", md_table(cmap_summary(cmap)) + "\n", _SUMMARY]  # fmt: skip
    return parts + shaping_section(shaping, level=level)


_SUMMARY = (
    "One row per net, depth and width. C(c₀): the measured output cosine (mean over seeds) "
    "at the input cosine nearest 0 beside the composed c-map's; max |gap|: the largest "
    "distance between the two over the input cosines (finite width moves a cosine by about "
    "1/√width per layer at random, so the gap grows with depth at a fixed width); q: the "
    "output's mean square, measured and predicted (1 where the net keeps q = 1).\n"
)


def _caption(cfg: Mapping[str, Any]) -> str:
    depths = ", ".join(md_text(d) for d in cfg.get("depths", [])) or "?"
    widths = ", ".join(md_text(w) for w in cfg.get("widths", [])) or "?"
    return (
        "Output cosine of an input pair (each input at q = 1) after `depth` nonlinear layers "
        "of a bias-free MLP, against the input cosine: one panel per activation and scheme, "
        f"one colour per depth ({depths}; width {widths}). Points: measured, the mean over "
        f"{len(cfg.get('seeds', []))} seeds with their range; lines: the activation's c-map "
        "composed over the depth at the scheme's σ_w² (mean-field theory, exact as the "
        "width grows); dotted grey: the identity. ReLU with He's init sends every input "
        "cosine towards 1 (every input looks alike); DKS and TAT choose the activation's "
        "constants so that the whole network's map stays away from that (Martens et al. "
        "2021; Zhang, Martens & Grosse 2022)."
    )


def network_cmap(cmap: pd.DataFrame) -> Figure:
    """Output cosine against input cosine, one panel per (activation, scheme), one colour per
    depth (and width, where the study has several): measured means with their seed range,
    and the composed c-map as a line."""
    table = cmap_table(cmap)
    table["net"] = table["activation"].astype(str) + " · " + table["scheme"].astype(str)
    nets = levels(table["net"])
    many = table["width"].nunique() > 1
    table["curve"] = [f"depth {d}" + (f", width {w}" if many else "")
                      for d, w in zip(table["depth"], table["width"], strict=True)]  # fmt: skip
    order = table.sort_values(["depth", "width"])["curve"].drop_duplicates().tolist()
    with style() as sns:
        from matplotlib.lines import Line2D

        ncols = min(len(nets), 3)
        nrows = -(-len(nets) // ncols)
        fig = new_figure(PANEL_W * ncols + 2.4, PANEL_H * nrows + 0.8)
        axes = facets(fig, len(nets), ncols)
        colors = palette(sns, order)
        for ax, net in zip(axes, nets, strict=True):
            sub = table[table["net"] == net]
            ax.plot([-1, 1], [-1, 1], color="0.6", ls=":", lw=0.8)
            for curve, g in sub.groupby("curve", sort=False):
                g = g.sort_values("input_cosine")
                x, color = g["input_cosine"].to_numpy(), colors[curve]
                ax.plot(x, g["theory"].to_numpy(float), color=color, lw=1.3, gid="theory")
                err = [g["mean"] - g["lo"], g["hi"] - g["mean"]]
                ax.errorbar(x, g["mean"].to_numpy(float), yerr=err, fmt="o", ms=3.5, color=color,
                            capsize=2, lw=0.8)  # fmt: skip
            ax.set_title(str(net), fontsize=9)
            ax.set_xlim(-1.05, 1.05)
            ax.set_ylim(-1.05, 1.05)
        handles = [Line2D([], [], color=colors[c], lw=1.3, marker="o", ms=3.5, label=c)
                   for c in order]  # fmt: skip
        handles += [Line2D([], [], color="0.3", lw=1.3, label="composed c-map (theory)"),
                    Line2D([], [], color="0.3", lw=0, marker="o", ms=3.5,
                           label="measured (mean, range over seeds)")]  # fmt: skip
        outside_legend(fig, handles, None)
        fig.supxlabel(label("input_cosine", CMAP))
        fig.supylabel(label("output_cosine", CMAP))
        fig.suptitle("The network's c-map: output against input cosine, measured and predicted")
    return fig

"""The isometry study's report: its Jacobian spectra as a figure and a table.

Reads an isometry study directory (``initsuite reproduce isometry``) through
:class:`~initsuite.results.isometry.IsometryResult` only; never imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from initsuite.report.captions import figure_block
from initsuite.report.markdown import run_lines
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
from initsuite.results.isometry import IsometryResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["ISOMETRY_FIGURE", "isometry_plan", "jacobian_spectra", "spectra_table"]

ISOMETRY_FIGURE = "jacobian_spectra"
_ZERO = 1e-4  # singular values below this pile up at the figure's left edge


def isometry_plan(result: IsometryResult, run_dir: str) -> ReportPlan:
    """The report of an isometry study: its figure (when it holds spectra) and text."""
    drawn = not result.spectra.empty
    figures = [PlannedFigure(ISOMETRY_FIGURE, lambda: jacobian_spectra(result.spectra))]
    return ReportPlan(figures if drawn else [], _render(result, run_dir, drawn))


def spectra_table(spectra: pd.DataFrame) -> pd.DataFrame:
    """Per (scheme, activation, depth): the singular values pooled over seeds, the mean and
    variance of their squares (isometric: 1 and 0), the median, and the share below 1e-4."""
    g = spectra.assign(sv2=spectra["sv"].astype(float) ** 2).groupby(
        ["scheme", "activation", "depth"], observed=True, sort=True)  # fmt: skip
    out = g.agg(values=("sv", "size"), sv2_mean=("sv2", "mean"), sv2_var=("sv2", "var"),
                sv_median=("sv", "median")).reset_index()  # fmt: skip
    out["near zero"] = g["sv"].agg(lambda s: float((s < _ZERO).mean())).to_numpy()
    return out.rename(columns={"sv2_mean": "mean σ²", "sv2_var": "var σ²",
                               "sv_median": "median σ"})  # fmt: skip


def _render(result: IsometryResult, run_dir: str, drawn: bool) -> str:
    cfg: Mapping[str, Any] = result.meta.get("config", {}) or {}
    parts = [
        f"# initsuite isometry report: {md_text(Path(run_dir).resolve().name)}\n",
        "\n".join(run_lines(result.meta)) + "\n",
        "## Figures\n",
    ]
    if drawn:
        parts.append(figure_block(ISOMETRY_FIGURE, "Dynamical isometry", _caption(cfg), 1))
    else:
        parts.append("No figures: the study holds no singular values.\n")
    parts += [
        "## Spectra\n",
        md_table(spectra_table(result.spectra)) + "\n",
        "One row per scheme, activation and depth, the seeds' singular values σ pooled: the "
        "mean and variance of σ² (dynamical isometry is mean σ² ≈ 1 with var σ² ≈ 0), the "
        f"median σ, and the share of σ below {_ZERO:g} (directions the net loses).\n",
    ]
    return "\n".join(parts)


def _caption(cfg: Mapping[str, Any]) -> str:
    depths = " and ".join(md_text(d) for d in cfg.get("depths", [])) or "?"
    return (
        "Singular values of the input–output Jacobian J = W_L D_{L-1} ⋯ D_1 W_1 of the "
        f"tutorial's MLP at width {md_text(cfg.get('width', '?'))} "
        f"({len(cfg.get('seeds', []))} seeds, {md_text(cfg.get('dtype', 'float64'))}), for "
        f"orthogonal and Gaussian weights at each activation's gain, at depths {depths}. "
        "A net is dynamically isometric when the spectrum is a spike at 0 (all singular "
        "values 1): exactly so for orthogonal linear nets at any depth; Gaussian weights "
        "spread it, more with depth (variance of the squared singular values ≈ depth); ReLU "
        "zeroes about half the directions at every layer (exact zeros are not drawn; values "
        "below 1e-4 pile up at the left edge), "
        "so it is never isometric (Saxe et al. 2013, Pennington et al. 2017). A sweep's "
        "own spectra are summarised in its `jac_*` columns (`initsuite sweep --jacobian`)."
    )


def jacobian_spectra(spectra: pd.DataFrame) -> Figure:
    """Density of the Jacobian's singular values (log10 x), one panel per activation, one
    line per scheme and depth (colour: scheme; dashes: depth). Exact zeros (ReLU's dead
    directions) are counted in the caption, not drawn."""
    need(spectra, ("scheme", "activation", "depth", "sv"), "spectra")
    acts, schemes = levels(spectra["activation"]), levels(spectra["scheme"])
    depths = sorted(int(d) for d in spectra["depth"].unique())
    with style() as sns:
        from matplotlib.lines import Line2D

        fig = new_figure(PANEL_W * len(acts) + 2.6, PANEL_H + 0.8)
        axes = facets(fig, len(acts), len(acts))
        colors = palette(sns, schemes)
        styles = dict(zip(depths, ["-", "--", ":", "-."] * len(depths), strict=False))
        bins = np.linspace(-4, 2, 61)
        for ax, act in zip(axes, acts, strict=True):
            sub = spectra[spectra["activation"] == act]
            for (scheme, depth), g in sub.groupby(["scheme", "depth"], observed=True):
                sv = g["sv"].to_numpy()
                sv = np.log10(sv[sv > 1e-12 * max(sv.max(), 1e-300)])
                hist, edges = np.histogram(np.clip(sv, bins[0], bins[-1]), bins=bins,
                                           density=True)  # fmt: skip
                ax.plot(0.5 * (edges[1:] + edges[:-1]), hist, color=colors[scheme],
                        ls=styles[int(depth)], lw=1.4)  # fmt: skip
            ax.axvline(0.0, color="0.4", lw=0.8)
            ax.set_title(str(act))
        handles = [Line2D([], [], color=colors[s], lw=1.8, label=s) for s in schemes]
        handles += [Line2D([], [], color="0.3", ls=styles[d], lw=1.4, label=f"depth {d}")
                    for d in depths]  # fmt: skip
        outside_legend(fig, handles, None)
        fig.supxlabel("log10 singular value of the input–output Jacobian (0: isometric)")
        fig.supylabel("density")
        fig.suptitle("Dynamical isometry: Jacobian spectra, orthogonal vs Gaussian weights")
    return fig

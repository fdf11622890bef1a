"""Interactive (plotly) versions of a report's line figures, for ``report.html``.

Each function takes the same tidy table as its PNG twin and returns a plotly ``Figure``: one
trace per scheme (legend click toggles it in every panel), one panel per activation, hover
text naming scheme, activation, x and value, zoom by dragging. What is drawn matches the PNG:

* :func:`lines_vs_layer` ↔ :func:`~initsuite.report.layer_figures.std_vs_layer` (geometric mean
  over seeds at the deepest depth and the largest width, log y);
* :func:`cosine_lines` ↔ :func:`~initsuite.report.phase.cosine_vs_layer` (mean over seeds);
* :func:`loss_lines` ↔ :func:`~initsuite.report.training.loss_curves` (mean over seeds, log y).

plotly is imported when a figure is built, never when this module is imported; a missing
plotly is one clear error (:func:`check_plotly`).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError
from initsuite.report.families import check_colors, scheme_colors
from initsuite.report.selection import deepest, levels, pick_width, seed_band
from initsuite.report.style import need
from initsuite.results.columns import TRAINING, label

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

__all__ = ["check_plotly", "cosine_lines", "lines_vs_layer", "loss_lines"]

_COLUMNS = 3  # panels per row, as the PNG figures wrap
_PANEL_HEIGHT = 300  # pixels per row of panels

# the quantities of the layers table drawn against layer (labelled by the column schema)
_QUANTITIES = ("std", "grad_std", "weight_grad_norm")


def check_plotly() -> None:
    """Raise unless plotly imports, before any work is done."""
    try:
        import plotly  # noqa: F401
    except ImportError:
        raise InitsuiteError(
            "an interactive HTML report needs plotly: pip install 'initsuite[report]'"
        ) from None


def _label(value: object) -> str:
    """A stored value (a scheme's or an activation's name) as plotly text: plotly.js reads
    a subset of HTML in legend, hover and title text (``<b>``, ``<a href>``, ...) and turns
    entities back into characters, so the value is escaped to show as written."""
    return html.escape(str(value), quote=False)


def _panels(titles: Sequence[str], x_title: str, y_title: str, log_y: bool) -> Figure:
    """An empty figure of one panel per title (stored values: escaped here), wrapped in rows
    of :data:`_COLUMNS`."""
    from plotly.subplots import make_subplots

    n = max(len(titles), 1)
    cols = min(_COLUMNS, n)
    rows = math.ceil(n / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[_label(t) for t in titles],
                        shared_xaxes=False,
                        horizontal_spacing=0.06, vertical_spacing=0.12 / rows + 0.04)  # fmt: skip
    fig.update_layout(height=_PANEL_HEIGHT * rows + 120, hovermode="closest",
                      legend_title_text="scheme (click to toggle)", template="plotly_white",
                      margin={"l": 60, "r": 20, "t": 60, "b": 50})  # fmt: skip
    fig.update_xaxes(title_text=x_title, row=rows)
    fig.update_yaxes(type="log" if log_y else "linear", exponentformat="power")
    fig.update_yaxes(title_text=y_title, col=1)
    return fig


def _cell(i: int) -> dict[str, int]:
    return {"row": i // _COLUMNS + 1, "col": i % _COLUMNS + 1}


_DASHES = ["solid", "dash", "dashdot", "longdash", "longdashdot"]  # never "dot": theory's


def _add_lines(fig: Figure, frame: pd.DataFrame, panels: Sequence[Any], panel: str, hue: str,
               x: str, y: str, x_name: str, value: str,
               colors: dict[str, str] | None = None) -> None:  # fmt: skip
    """One trace per ``hue`` value (and architecture, as its dash, where ``frame`` has an
    ``arch`` column with several) per panel; the first panel's traces carry the legend, the
    rest share its group so a legend click toggles every panel. A ``theory`` column, where
    ``frame`` has one, is drawn dotted in the same colour and group. ``colors``: the
    report's colour of each ``hue`` value (default: :func:`scheme_colors` of those drawn),
    one a value, since a panel draws them all."""
    import plotly.graph_objects as go

    hues = levels(frame[hue])
    color = colors if colors is not None else scheme_colors([str(h) for h in hues])
    check_colors(color, [str(h) for h in hues])
    archs = levels(frame["arch"]) if "arch" in frame.columns else [None]
    dashes = dict(zip(archs, _DASHES * len(archs), strict=False))
    for i, key in enumerate(panels):
        here = frame[frame[panel] == key]
        for name in hues:
            for arch in archs:
                g = here[here[hue] == name]
                if arch is not None:
                    g = g[g["arch"] == arch]
                g = g.sort_values(x)
                if g.empty:
                    continue
                where = f"<br>arch: {_label(arch)}" if len(archs) > 1 else ""
                text = [f"{_label(hue)}: {_label(name)}<br>activation: {_label(key)}{where}"]
                text *= len(g)
                line = {"color": color[str(name)], "width": 1.8, "dash": dashes[arch]}
                fig.add_trace(
                    go.Scatter(x=g[x], y=g[y], mode="lines+markers", name=_label(name),
                               legendgroup=str(name), showlegend=i == 0 and arch == archs[0],
                               line=line, marker={"size": 4}, text=text,
                               hovertemplate=f"%{{text}}<br>{x_name}: %{{x}}<br>{value}: "
                               "%{y:.4g}<extra></extra>"),
                    **_cell(i),
                )  # fmt: skip
                if "theory" in g.columns and bool(g["theory"].notna().any()):
                    fig.add_trace(
                        go.Scatter(x=g[x], y=g["theory"], mode="lines",
                                   name=f"{_label(name)} (theory)", legendgroup=str(name),
                                   showlegend=False,
                                   line={"color": color[str(name)], "width": 1.0,
                                         "dash": "dot"},
                                   text=text,
                                   hovertemplate=f"%{{text}}<br>{x_name}: %{{x}}<br>mean-field "
                                   f"{value}: %{{y:.4g}}<extra></extra>"),
                        **_cell(i),
                    )  # fmt: skip
    if len(archs) > 1:  # the line styles' key, apart from the schemes
        for arch in archs:
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines",
                                     name=f"arch: {_label(arch)}",
                                     legendgroup="arch", line={"color": "#555",
                                     "dash": dashes[arch]}, hoverinfo="skip"),
                          **_cell(0))  # fmt: skip


def lines_vs_layer(layers: pd.DataFrame, quantity: str = "std", width: int | None = None,
                   colors: dict[str, str] | None = None) -> Figure:  # fmt: skip
    """A per-layer quantity (log y) vs layer, one panel per activation (and device, dtype
    pair where there are several), one trace per scheme: the geometric mean over seeds at
    the deepest depth and one width (default the largest), as
    :func:`~initsuite.report.layer_figures.std_vs_layer` draws it, with the mean-field
    ``theory_<quantity>`` dotted where the table has it (the PNG's min–max bands are not
    drawn: hover shows the values).

    Args:
        layers: the ``layers`` table of a sweep.
        quantity: ``"std"``, ``"grad_std"`` or ``"weight_grad_norm"``.
        width: the width to show; default the largest present.
        colors: the report's colour of each scheme (default:
            :func:`~initsuite.report.families.scheme_colors` of the table's schemes).
    """
    if quantity not in _QUANTITIES:
        raise InitsuiteError(f"unknown quantity {quantity!r} (choose from "
                             f"{', '.join(_QUANTITIES)})")  # fmt: skip
    need(layers, ("scheme", "activation", "depth", "width", "seed", "layer", quantity), "layers")
    check_plotly()
    w = pick_width(layers, width)
    df = deepest(layers)
    depth = int(df["depth"].max())
    df = df[df["width"] == w]
    keys = ["device", "dtype", "activation", "scheme", "layer"]
    if "arch" in df.columns:  # architectures are never pooled: each is its own dash
        keys = ["arch", *keys]
    band = seed_band(df, keys, quantity)
    column = f"theory_{quantity}"
    if column in df.columns and bool(df[column].notna().any()):  # the same for every seed
        theory = df.groupby(keys, observed=True)[column].first().rename("theory").reset_index()
        theory = theory[(theory["theory"] > 0) & np.isfinite(theory["theory"])]
        band = band.merge(theory, on=keys, how="left")
    several = band[["device", "dtype"]].drop_duplicates().shape[0] > 1
    band["panel"] = band["activation"].astype(str)
    if several:
        band["panel"] += " · " + band["device"].astype(str) + " " + band["dtype"].astype(str)
    panels = levels(band["panel"])
    name = label(quantity)
    fig = _panels(panels, "layer", f"{name} (geometric mean over seeds)", True)
    _add_lines(fig, band, panels, "panel", "scheme", "layer", "geo_mean", "layer", quantity,
               colors)  # fmt: skip
    fig.update_layout(title_text=f"{name} by layer: width {w}, depth {depth}")
    return fig


def cosine_lines(layers: pd.DataFrame, width: int | None = None,
                 colors: dict[str, str] | None = None) -> Figure:  # fmt: skip
    """The cosine of the input pair's pre-activations vs layer (mean over seeds), one panel
    per activation, one trace per scheme, as :func:`~initsuite.report.phase.cosine_vs_layer`
    draws it (deepest depth, one width, default the largest)."""
    need(layers, ("scheme", "activation", "depth", "width", "seed", "layer", "cosine"), "layers")
    check_plotly()
    w = pick_width(layers, width)
    df = deepest(layers)
    df = df[(df["width"] == w) & df["cosine"].notna()]
    depth = int(df["depth"].max()) if not df.empty else 1
    aggs = {"cosine": ("cosine", "mean")}
    if "theory_cosine" in df.columns:  # the mean-field c-map, the same for every seed
        aggs["theory"] = ("theory_cosine", "first")
    keys = ["activation", "scheme", "layer"]
    if "arch" in df.columns:  # architectures are never pooled: each is its own dash
        keys = ["arch", *keys]
    agg = df.groupby(keys, observed=True).agg(**aggs).reset_index()
    panels = levels(agg["activation"])
    fig = _panels(panels, "layer", f"{label('cosine')} (mean over seeds)", False)
    _add_lines(fig, agg, panels, "activation", "scheme", "layer", "cosine", "layer", "cosine",
               colors)  # fmt: skip
    fig.update_yaxes(range=[-1.05, 1.05])
    fig.update_layout(title_text=f"Correlation map at width {w}, depth {depth}")
    return fig


def loss_lines(curves: pd.DataFrame, threshold: float | None = None, hue: str = "scheme",
               colors: dict[str, str] | None = None) -> Figure:  # fmt: skip
    """Train loss (log y) against step, mean over seeds at each evaluated step, one panel
    per activation, one trace per ``hue`` value, as
    :func:`~initsuite.report.training.loss_curves` draws it; ``threshold`` as a dashed line.

    Args:
        curves: the ``training`` table of ``initsuite train``.
        threshold: the loss the runs had to reach (drawn when given).
        hue: the column whose values are the traces (the frameworks study's: ``"law"``).
        colors: the report's colour of each ``hue`` value (default:
            :func:`~initsuite.report.families.scheme_colors` of those values).
    """
    need(curves, (hue, "activation", "seed", "step", "train_loss"), "training")
    check_plotly()
    ev = curves[curves["train_loss"].notna() & np.isfinite(curves["train_loss"])]
    if ev.empty:
        raise InitsuiteError("the training table has no evaluated steps to plot")
    mean = ev.groupby(["activation", hue, "step"], observed=True)["train_loss"].mean()
    mean = mean.reset_index()
    panels = levels(mean["activation"])
    fig = _panels(panels, "optimiser step", f"{label('train_loss', TRAINING)} (mean over seeds)",
                  True)  # fmt: skip
    _add_lines(fig, mean, panels, "activation", hue, "step", "train_loss", "step", "loss", colors)
    if threshold is not None:
        for i in range(len(panels)):
            fig.add_hline(y=threshold, line_dash="dash", line_color="grey", **_cell(i))
    fig.update_layout(title_text="Training curves", legend_title_text=f"{hue} (click to toggle)")
    return fig

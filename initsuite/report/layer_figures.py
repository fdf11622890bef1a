"""A sweep's per-layer figure (:func:`std_vs_layer`): a quantity of the ``layers`` table vs
layer, one line per scheme and architecture, with the mean-field prediction beside it.

seaborn and matplotlib are imported inside the functions (:mod:`initsuite.report.style`), so
``import initsuite.report`` stays light. Values a log axis cannot show (0 from the ``zeros``
scheme or an underflow, NaN at an overflow) are dropped.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError, unknown
from initsuite.report.families import (
    MAX_LINES,
    arch_dashes,
    family_figure,
    key_handles,
    key_legend,
    panel_rows,
    row_legend,
    scheme_colors,
)
from initsuite.report.selection import (
    combos,
    deepest,
    levels,
    n_seeds,
    pick_width,
    seed_band,
    with_arch,
)
from initsuite.report.style import decade_ticks, need, style
from initsuite.results.columns import label

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["std_vs_layer"]


_PANEL_KEYS = ["device", "dtype", "activation"]  # what one panel shows: a column

# quantity -> (title, whether its signal runs backward); its y label is the column schema's
_QUANTITIES = {
    "std": ("Std by layer", False),
    "grad_std": ("Gradient std by layer", True),
    "weight_grad_norm": ("Weight-gradient norm by layer", True),
}


def std_vs_layer(layers: pd.DataFrame, width: int | None = None, quantity: str = "std",
                 colors: dict[str, str] | None = None) -> Figure:  # fmt: skip
    """A per-layer quantity (log y) vs layer; one row of panels per scheme family (at most
    eight schemes a panel, :mod:`initsuite.report.families`), one column per activation, one
    line per scheme and architecture (the architecture as line style).

    Uses the deepest depth only (shallower cells are its prefixes for the forward pass) and
    one width (default the largest). Lines are the geometric mean over seeds at each layer,
    taken over the seeds with a value there; bands span min to max over seeds; × marks where
    a line stops early because every seed diverged (its last layer for the forward ``std``,
    its first for the gradients, which run from the output down). Where the table has
    ``theory_<quantity>``, the mean-field prediction is drawn beside each line, thin and
    dotted in the same colour. With several (device, dtype) pairs, each gets its own columns.

    Args:
        layers: the ``layers`` table of a sweep (an ``arch`` column: one line style each).
        width: the width to show; default the largest present.
        quantity: ``"std"``, or with ``--backward`` ``"grad_std"`` or ``"weight_grad_norm"``.
        colors: scheme → colour shared by a report's figures; default
            :func:`~initsuite.report.families.scheme_colors` of ``layers``' schemes.
    """
    if quantity not in _QUANTITIES:
        raise InitsuiteError(unknown("quantity", quantity, list(_QUANTITIES)))
    (title, backward), name = _QUANTITIES[quantity], label(quantity)
    need(layers, ("scheme", "activation", "depth", "width", "seed", "layer", quantity),
          "layers")  # fmt: skip
    layers = with_arch(layers)
    colors = colors if colors is not None else scheme_colors(levels(layers["scheme"]))
    w = pick_width(layers, width)
    df = deepest(layers)
    depth = int(df["depth"].max())
    df = df[df["width"] == w]
    pairs, dashes = combos(df), arch_dashes(levels(df["arch"]))
    columns = [(p, a) for p in pairs for a in levels(df["activation"])]
    rows = panel_rows(colors, levels(df["scheme"]), MAX_LINES // len(dashes))  # scheme × arch
    band = seed_band(df, [*_PANEL_KEYS, "arch", "scheme", "layer"], quantity)
    theory = _per_layer_theory(df, f"theory_{quantity}")
    with style():
        fig, axes = family_figure(len(rows), len(columns), "layer")
        for (i, row), (j, ((device, dtype), act)) in itertools.product(
            enumerate(rows), enumerate(columns)
        ):
            ax, key = axes[i, j], (device, dtype, act)
            _draw_bands(ax, _panel(band, key, row.schemes), colors, dashes, depth, backward)
            if theory is not None:
                _draw_theory(ax, _panel(theory, key, row.schemes), f"theory_{quantity}", colors)
            ax.set_yscale("log")
            ax.set_xlim(0, depth)
            combo = "" if len(pairs) == 1 else f" · {device} {dtype}"
            ax.set_title(f"{row.title} · {act}{combo}")
        for row_axes in axes:  # y is shared within a row
            decade_ticks(list(row_axes))
        _row_legends(axes, rows, set(band["scheme"]), colors, backward)
        key_legend(fig, key_handles(dashes, theory is not None, "mean-field theory"))
        fig.supylabel(f"{name} (geometric mean over seeds, log scale)")
        combo = f", {pairs[0][0]} {pairs[0][1]}" if len(pairs) == 1 else ""
        fig.suptitle(
            f"{title} at width {w}, depth {depth}{combo}; band: min–max over {n_seeds(df)} seeds"
        )
    return fig


def _row_legends(axes: Any, rows: Sequence[Any], shown: set[str], colors: dict[str, str],
                 backward: bool) -> None:  # fmt: skip
    """Each row's legend of its schemes, one not ``shown`` (no value a log axis can draw)
    saying why."""
    hidden = "std 0: hidden" if not backward else "no gradient: hidden"
    for i, row in enumerate(rows):
        labels = {s: s if s in shown else f"{s} ({hidden})" for s in row.schemes}
        row_legend(axes[i, -1], row.schemes, colors, labels)


def _panel(df: pd.DataFrame, key: tuple[str, str, str], schemes: Sequence[str]) -> pd.DataFrame:
    """The rows of one panel: its (device, dtype, activation) and its row's schemes."""
    here = (df["device"] == key[0]) & (df["dtype"] == key[1]) & (df["activation"] == key[2])
    return df[here & df["scheme"].isin(list(schemes))]


def _per_layer_theory(df: pd.DataFrame, column: str) -> pd.DataFrame | None:
    """The positive finite values of the prediction ``column`` per (device, dtype, activation,
    arch, scheme, layer) (the same for every seed); None where the table has none."""
    if column not in df.columns or not df[column].notna().any():
        return None
    keys = [*_PANEL_KEYS, "arch", "scheme", "layer"]
    theory = df.groupby(keys, observed=True)[column].first().reset_index()
    return theory[(theory[column] > 0) & np.isfinite(theory[column])]


def _draw_theory(ax: Any, theory: pd.DataFrame, column: str, colors: dict[str, Any]) -> None:
    """One panel's predictions ``column``: thin dots in each scheme's colour, one line per
    scheme and arch."""
    for (scheme, _arch), g in theory.groupby(["scheme", "arch"], observed=True):
        ax.plot(g["layer"], g[column], color=colors[scheme], ls=":", lw=1.0, alpha=0.9)


def _draw_bands(ax: Any, band: pd.DataFrame, colors: dict[str, Any],
                dashes: dict[str, Any], depth: int, backward: bool) -> None:  # fmt: skip
    """One panel's lines (geometric mean over seeds; colour by scheme, dashes by arch), bands
    (min to max) and × where every seed stopped early (the last layer forward, the first
    backward)."""
    for (scheme, arch), g in band.groupby(["scheme", "arch"], observed=True):
        c, x, y = colors[scheme], g["layer"].to_numpy(), g["geo_mean"].to_numpy()
        ax.fill_between(x, g["lo"], g["hi"], color=c, alpha=0.15, lw=0)
        ax.plot(x, y, color=c, dashes=dashes[arch], lw=1.6)
        end = 0 if backward else -1
        if (x[0] > 1) if backward else (x[-1] < depth):
            ax.plot(x[end], y[end], color=c, marker="x", ms=6, mew=1.6, ls="")

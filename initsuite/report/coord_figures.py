"""The coordinate check's figure, in mup's layout: one panel per step, log-log, a line per
module of its coordinate against width (or depth), a row per parametrization. Lines are
coloured by the module's role, so that what scales alike reads alike; each line is the
geometric mean over seeds.

Never imports torch; seaborn and matplotlib are imported when the figure is drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError
from initsuite.report.style import DASHES, need, new_figure, outside_legend, palette, style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["LABELS", "coord_panels"]

LABELS = {
    "l1": "mean |output| (mup's l1)",
    "rms": "rms of the output",
    "delta_rms": "rms of the output's change since step 0",
}
"""The y label of each coordinate."""


def coord_panels(coords: pd.DataFrame, quantity: str = "l1", axis: str = "width") -> Figure:
    """``quantity`` of every module against ``axis`` (log-log): a row per parametrization, a
    column per step. ``delta_rms`` leaves out step 0 (where it is 0).

    Args:
        coords: the coordinate check's ``coords`` table.
        quantity: ``l1``, ``rms`` or ``delta_rms``.
        axis: ``width`` or ``depth`` (the other is taken at its largest value).
    """
    if quantity not in LABELS:
        raise InitsuiteError(f"quantity must be one of {', '.join(LABELS)}, got {quantity!r}")
    if axis not in ("width", "depth"):
        raise InitsuiteError(f"axis must be width or depth, got {axis!r}")
    need(coords, ("parametrization", "width", "depth", "seed", "step", "module", "role",
                  quantity), "coords")  # fmt: skip
    other = "depth" if axis == "width" else "width"
    df = coords[coords[other] == coords[other].max()]
    df = df[np.isfinite(df[quantity]) & (df[quantity] > 0)]
    if df[axis].nunique() < 2:
        raise InitsuiteError(f"a coordinate check against {axis} needs two {axis}s or more")
    keys = ["parametrization", "step", "role", "module", axis]
    logs = df.assign(log=np.log(df[quantity])).groupby(keys, observed=True, sort=False)["log"]
    mean = logs.mean().map(np.exp).rename(quantity).reset_index()  # geometric, over seeds
    params = list(dict.fromkeys(coords["parametrization"]))
    params = [p for p in params if p in set(mean["parametrization"])]
    steps = sorted(mean["step"].unique())
    roles = list(dict.fromkeys(mean["role"]))
    with style() as sns:
        colors = palette(sns, roles)
        fig = new_figure(2.4 * len(steps) + 1.6, 2.2 * len(params) + 0.4)
        axes = fig.subplots(len(params), len(steps), sharex=True, sharey="row", squeeze=False)
        for i, p in enumerate(params):
            for j, step in enumerate(steps):
                ax = axes[i, j]
                _lines(ax, mean[(mean["parametrization"] == p) & (mean["step"] == step)],
                       quantity, axis, colors)  # fmt: skip
                ax.set_xscale("log", base=2)
                ax.set_yscale("log")
                ax.set_title(f"{p}, step {step}")
                ax.set_xlabel(axis if i == len(params) - 1 else "")
                ax.set_ylabel(LABELS[quantity] if j == 0 else "")
            _a_decade_at_least(list(axes[i]))
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=colors[r], label=r) for r in roles]
        outside_legend(fig, handles, "role")
    return fig


def _a_decade_at_least(row: list[Axes]) -> None:
    """Widen a row's shared log y axis to one decade where its lines span less: noise about a
    flat coordinate reads as flat (as :func:`~initsuite.report.style.at_least_a_decade`)."""
    values = [np.asarray(line.get_ydata(), dtype=float) for ax in row for line in ax.lines]
    v = np.concatenate(values) if values else np.empty(0)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size and v.max() < 10 * v.min():
        mid = float(np.sqrt(v.min() * v.max()))
        row[0].set_ylim(mid / np.sqrt(10), mid * np.sqrt(10))


def _lines(ax: object, frame: pd.DataFrame, quantity: str, axis: str,
           colors: dict[str, object]) -> None:  # fmt: skip
    """A line per module, in its role's colour, dashes cycling within the role."""
    seen: dict[str, int] = {}
    for (role, _module), g in frame.groupby(["role", "module"], observed=True, sort=False):
        k = seen[role] = seen.get(role, -1) + 1
        g = g.sort_values(axis)
        style_k = {"dashes": DASHES[k % len(DASHES)], "marker": "o", "markersize": 2.5}
        ax.plot(g[axis], g[quantity], color=colors[role], linewidth=1.1, **style_k)  # type: ignore[attr-defined]

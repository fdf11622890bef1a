"""Report figures: each takes a tidy DataFrame and returns a matplotlib ``Figure``.

seaborn and matplotlib are imported inside the functions, so ``import initsuite.report`` stays
light. Figures are built as ``matplotlib.figure.Figure`` objects, never through pyplot, so no
backend is chosen and no window opens; styling goes through context managers only (no
``sns.set()``). Standard deviations are plotted on log axes; values that a log axis cannot
show (0 from the ``zeros`` scheme or an underflow, NaN at an overflow) are dropped.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import textwrap
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError, unknown
from initsuite.results import store

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "divergence_heatmap",
    "final_std_distribution",
    "init_time_vs_width",
    "loss_curves",
    "save_figure",
    "std_vs_layer",
    "steps_to_threshold",
    "tutorial_std_vs_layer",
]

_PANEL_W, _PANEL_H = 3.6, 2.8  # inches per facet
_COL_WRAP = 3
_CELL_COLUMNS = ("scheme", "activation", "depth", "width", "divergence_layer", "final_std", "error")
_NEVER = "#e6e6e6"  # background of heatmap cells where no run diverged
_DASHES: list[tuple[float, ...]] = [(), (5, 1.5), (1.5, 1.2), (4, 1.2, 1.2, 1.2), (8, 2)]


# --- data selection shared with the markdown captions ----------------------------------------


def levels(s: pd.Series) -> list[Any]:
    """Sorted distinct non-null values of ``s``: the one order every figure and table uses."""
    return sorted(s.dropna().unique().tolist())


def deepest(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of the deepest depth (a shallower cell is a prefix of it, so the rest repeat it)."""
    return df[df["depth"] == df["depth"].max()]


def ran(cells: pd.DataFrame) -> pd.DataFrame:
    """Cells that ran (no ``error``): failed cells have no statistics to aggregate."""
    return cells[cells["error"].isna()]


def pick_width(layers: pd.DataFrame, width: int | None) -> int:
    """``width`` checked against the data, or the largest width present when None."""
    widths = levels(layers["width"])
    if not widths:
        raise InitsuiteError("the layers table is empty: there is nothing to plot")
    if width is None:
        return int(widths[-1])
    if width not in widths:
        raise InitsuiteError(unknown("width", width, [str(w) for w in widths]))
    return int(width)


def combos(df: pd.DataFrame) -> list[tuple[str, str]]:
    """Distinct (device, dtype) pairs of ``df``, sorted."""
    pairs = df[["device", "dtype"]].drop_duplicates().itertuples(index=False)
    return sorted((str(d), str(t)) for d, t in pairs)


def seed_band(df: pd.DataFrame, keys: Sequence[str], column: str = "std") -> pd.DataFrame:
    """Geometric mean, min, max and count of positive finite ``column`` over seeds, per
    ``keys``."""
    ok = df[np.isfinite(df[column]) & (df[column] > 0)]
    log = ok.assign(log_std=np.log(ok[column].astype(float)))
    out = log.groupby(list(keys), observed=True, sort=True).agg(
        log_mean=("log_std", "mean"), lo=(column, "min"), hi=(column, "max"),
        n=(column, "size"),
    )  # fmt: skip
    out["geo_mean"] = np.exp(out.pop("log_mean"))
    return out.reset_index()


def diverged(cells: pd.DataFrame) -> pd.Series:
    """Boolean mask of cells that diverged within their depth."""
    return cells["divergence_layer"].notna().astype(bool)


# --- plumbing --------------------------------------------------------------------------------


@contextlib.contextmanager
def _style() -> Iterator[Any]:
    """seaborn, with the report's style active and seaborn's pandas-3 noise muted."""
    try:
        import matplotlib as mpl
        import seaborn as sns
    except ImportError as exc:
        raise InitsuiteError(
            f"figures need matplotlib and seaborn ({exc.name} is missing): "
            "pip install 'initsuite[report]'"
        ) from None
    rc: Any = {  # Any: matplotlib types the keys as a Literal of every rcParam
        "font.size": 9,
        "axes.titlesize": 9.5,
        "axes.labelsize": 9,
        "xtick.labelsize": 8,
        "ytick.labelsize": 8,
        "legend.fontsize": 8,
        "legend.title_fontsize": 8.5,
        "figure.titlesize": 11,
        "axes.titlelocation": "left",
    }
    with (
        warnings.catch_warnings(),
        sns.axes_style("whitegrid"),
        sns.plotting_context("notebook"),
        mpl.rc_context(rc),
    ):
        # seaborn 0.13.2 raises deprecation warnings under pandas 3 for some inputs (none seen
        # for the calls here with pandas 3.1); keep them from users, for seaborn's code only
        warnings.filterwarnings("ignore", category=FutureWarning, module="seaborn")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="seaborn")
        yield sns


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _palette(sns: Any, names: Sequence[str]) -> dict[str, Any]:
    colors = sns.color_palette("tab10" if len(names) <= 10 else "husl", len(names))
    return dict(zip(names, colors, strict=True))


def _grid(fig: Figure, n: int, ncols: int) -> list[Axes]:
    """``n`` facets filling ``ncols`` columns row by row, unused slots removed."""
    nrows = math.ceil(n / ncols)
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
    for ax in axes[n:]:
        fig.delaxes(ax)
    for ax in axes[:n]:
        ax.tick_params(labelbottom=True, labelleft=True)
    return list(axes[:n])


def _decade_ticks(axes: Sequence[Axes]) -> None:
    """Evenly strided powers of ten (at most nine) on log y axes spanning many decades.

    matplotlib's own choice there lands on odd decades (1e-39, 1e-26, ...); over a few decades
    its labelled minor ticks read better, so those axes are left alone.
    """
    from matplotlib.ticker import FixedLocator, NullLocator

    lo, hi = axes[0].get_ylim()
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    if b - a <= 8:
        return
    steps = (1, 2, 3, 5, 10, 20, 25, 50, 100, 1000)
    step = next(k for k in steps if b // k - math.ceil(a / k) + 1 <= 9)  # ticks in [a, b]
    ticks = 10.0 ** np.arange(math.ceil(a / step) * step, b + 1, step)
    for ax in axes:
        ax.yaxis.set_major_locator(FixedLocator(ticks.tolist()))
        ax.yaxis.set_minor_locator(NullLocator())


def _outside_legend(fig: Figure, handles: list[Any], title: str | None = None) -> None:
    fig.legend(handles=handles, loc="outside right center", title=title, frameon=False)


def _need(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InitsuiteError(f"{what} needs columns {missing}; got {list(df.columns)}")


def _n_seeds(df: pd.DataFrame) -> int:
    return int(df["seed"].nunique())


def _pooled(df: pd.DataFrame, keys: Sequence[str]) -> str:
    """``"widths × seeds"``, with devices and dtypes added when ``df`` holds several."""
    names = {"width": "widths", "seed": "seeds", "device": "devices", "dtype": "dtypes"}
    extra = [k for k in ("device", "dtype") if df[k].nunique() > 1]
    return " × ".join(names[k] for k in [*keys, *extra])


# --- figures ---------------------------------------------------------------------------------


# quantity -> (y label, title, whether its signal runs backward)
_QUANTITIES = {
    "std": ("post-activation std", "Std by layer", False),
    "grad_std": ("std of dLoss/d(layer output)", "Gradient std by layer", True),
    "weight_grad_norm": ("‖dLoss/dW‖ (Frobenius)", "Weight-gradient norm by layer", True),
}


def std_vs_layer(layers: pd.DataFrame, width: int | None = None, quantity: str = "std") -> Figure:
    """A per-layer quantity (log y) vs layer; one panel per activation, one line per scheme.

    Uses the deepest depth only (shallower cells are its prefixes for the forward pass) and
    one width (default the largest). Lines are the geometric mean over seeds at each layer,
    taken over the seeds with a value there; bands span min to max over seeds; × marks where
    a line stops early because every seed diverged (its last layer for the forward ``std``,
    its first for the gradients, which run from the output down). Where the table has
    ``theory_<quantity>``, the mean-field prediction is drawn beside each line, thin and
    dotted in the same colour. With several (device, dtype) pairs, each gets its own row of
    panels.

    Args:
        layers: the ``layers`` table of a sweep.
        width: the width to show; default the largest present.
        quantity: ``"std"``, or with ``--backward`` ``"grad_std"`` or ``"weight_grad_norm"``.
    """
    if quantity not in _QUANTITIES:
        raise InitsuiteError(unknown("quantity", quantity, list(_QUANTITIES)))
    label, title, backward = _QUANTITIES[quantity]
    _need(layers, ("scheme", "activation", "depth", "width", "seed", "layer", quantity),
          "layers")  # fmt: skip
    w = pick_width(layers, width)
    df = deepest(layers)
    depth = int(df["depth"].max())
    df = df[df["width"] == w]
    schemes, acts, pairs = levels(df["scheme"]), levels(df["activation"]), combos(df)
    band = seed_band(df, ["device", "dtype", "activation", "scheme", "layer"], quantity)
    keys = ["device", "dtype", "activation", "scheme", "layer"]
    theory = None
    tcol = f"theory_{quantity}"
    if tcol in df.columns and df[tcol].notna().any():
        # the prediction is the same for every seed; take it per layer
        theory = df.groupby(keys, observed=True)[tcol].first().reset_index()
        theory = theory[(theory[tcol] > 0) & np.isfinite(theory[tcol])]
    panels = [(p, a) for p in pairs for a in acts]
    with _style() as sns:
        from matplotlib.lines import Line2D

        ncols = min(_COL_WRAP, len(acts)) if len(pairs) == 1 else len(acts)
        nrows = math.ceil(len(panels) / ncols)
        fig = _figure(_PANEL_W * ncols + 2.4, _PANEL_H * nrows + 0.6)
        axes = _grid(fig, len(panels), ncols)
        colors = _palette(sns, schemes)
        dashes = dict(zip(schemes, _DASHES * len(schemes), strict=False))
        for ax, ((device, dtype), act) in zip(axes, panels, strict=True):
            sub = band[(band["device"] == device) & (band["dtype"] == dtype)]
            for scheme, g in sub[sub["activation"] == act].groupby("scheme", observed=True):
                c, x, y = colors[scheme], g["layer"].to_numpy(), g["geo_mean"].to_numpy()
                ax.fill_between(x, g["lo"], g["hi"], color=c, alpha=0.15, lw=0)
                ax.plot(x, y, color=c, dashes=dashes[scheme], lw=1.6)
                end = 0 if backward else -1
                if (x[0] > 1) if backward else (x[-1] < depth):
                    ax.plot(x[end], y[end], color=c, marker="x", ms=6, mew=1.6)
            if theory is not None:
                t = theory[(theory["device"] == device) & (theory["dtype"] == dtype)]
                for scheme, g in t[t["activation"] == act].groupby("scheme", observed=True):
                    ax.plot(g["layer"], g[tcol], color=colors[scheme], ls=":", lw=1.0,
                            alpha=0.9)  # fmt: skip
            ax.set_yscale("log")
            ax.set_xlim(0, depth)
            ax.set_title(f"{act}" if len(pairs) == 1 else f"{act} · {device} {dtype}")
        _decade_ticks(axes)
        shown = set(band["scheme"])
        hidden = "std 0: hidden" if not backward else "no gradient: hidden"
        handles = [
            Line2D([], [], color=colors[s], dashes=dashes[s], lw=1.8,
                   label=s if s in shown else f"{s} ({hidden})")
            for s in schemes
        ]  # fmt: skip
        handles.append(Line2D([], [], color="0.3", marker="x", ls="", label="all seeds stopped"))
        if theory is not None:
            handles.append(Line2D([], [], color="0.3", ls=":", lw=1.0, label="mean-field theory"))
        _outside_legend(fig, handles, "scheme")
        fig.supxlabel("layer")
        fig.supylabel(f"{label} (geometric mean over seeds, log scale)")
        combo = f", {pairs[0][0]} {pairs[0][1]}" if len(pairs) == 1 else ""
        fig.suptitle(
            f"{title} at width {w}, depth {depth}{combo}; band: min–max over {_n_seeds(df)} seeds"
        )
    return fig


def divergence_heatmap(cells: pd.DataFrame) -> Figure:
    """Two heatmaps of divergence: where signals blow up or die, and how often.

    Left: scheme × activation, median divergence layer over the runs that diverged, at the
    deepest depth, pooling widths and seeds (and devices, dtypes); ``k/n`` below the median when
    only k of n runs diverged; "—" on grey where none did. Right: depth × width, fraction of
    cells that diverged within their depth, pooling schemes, activations and seeds. Failed
    cells are left out of both.

    Args:
        cells: the ``cells`` table of a sweep.
    """
    _need(cells, _CELL_COLUMNS, "cells")
    ok = ran(cells)
    if ok.empty:
        raise InitsuiteError("no cell ran without error: there is nothing to plot")
    top = deepest(ok)
    depth = int(top["depth"].max())
    schemes, acts = levels(ok["scheme"]), levels(ok["activation"])
    depths, widths = levels(ok["depth"]), levels(ok["width"])

    med = np.full((len(schemes), len(acts)), np.nan)
    labels = np.full(med.shape, "", dtype=object)
    for (s, a), g in top.groupby(["scheme", "activation"], observed=True):
        div = g["divergence_layer"].dropna().astype(float)
        i, j = schemes.index(s), acts.index(a)
        if len(div):
            med[i, j] = div.median()
            text = f"{med[i, j]:.0f}" if med[i, j] == int(med[i, j]) else f"{med[i, j]:.1f}"
            labels[i, j] = text if len(div) == len(g) else f"{text}\n{len(div)}/{len(g)}"
    frac = (
        ok.assign(d=diverged(ok))
        .pivot_table(index="depth", columns="width", values="d", aggfunc="mean", observed=True)
        .reindex(index=depths, columns=widths)
        .to_numpy(dtype=float)
    )

    with _style() as sns:
        from matplotlib.ticker import PercentFormatter

        height = max(3.4, 0.42 * max(len(schemes), len(depths)) + 2.0)
        panel_l, panel_r = max(1.0 * len(acts), 3.2), max(0.9 * len(widths), 2.6)
        fig = _figure(panel_l + panel_r + 5.0, height)
        left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [panel_l, panel_r]})
        left.set_facecolor(_NEVER)
        sns.heatmap(
            med, ax=left, mask=np.isnan(med), annot=labels, fmt="", cmap="rocket",
            vmin=1, vmax=depth, linewidths=0.5, linecolor="white", xticklabels=acts,
            yticklabels=schemes, annot_kws={"fontsize": 8}, cbar_kws={"label": "layer"},
        )  # fmt: skip
        for i, j in zip(*np.nonzero(np.isnan(med)), strict=True):
            left.text(j + 0.5, i + 0.5, "—", ha="center", va="center", color="0.4", fontsize=11)
        left.set(xlabel="activation", ylabel="scheme")
        left.set_title(
            f"Median divergence layer at depth {depth}\nover diverged runs, "
            f"{_pooled(top, ['width', 'seed'])} pooled\n(k/n: k of n runs diverged; —: none did)"
        )
        sns.heatmap(
            frac, ax=right, annot=True, fmt=".0%", cmap="rocket_r", vmin=0, vmax=1,
            linewidths=0.5, linecolor="white", xticklabels=widths, yticklabels=depths,
            annot_kws={"fontsize": 8}, cbar_kws={"label": "fraction diverged"},
        )  # fmt: skip
        right.collections[0].colorbar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
        right.set(xlabel="width", ylabel="depth")
        counts = [(len(schemes), "schemes"), (len(acts), "activations"), (_n_seeds(ok), "seeds")]
        counts += [(ok[k].nunique(), f"{k}s") for k in ("device", "dtype") if ok[k].nunique() > 1]
        right.set_title(
            "Fraction of cells diverged\nwithin their depth, pooling\n"
            + " × ".join(f"{n} {what}" for n, what in counts)
        )
        for ax in (left, right):
            ax.grid(False)
            ax.tick_params(axis="y", rotation=0)
            ax.tick_params(axis="x", rotation=0 if len(ax.get_xticklabels()) <= 6 else 45)
    return fig


def final_std_distribution(cells: pd.DataFrame) -> Figure:
    """log10(final std) at the deepest depth per scheme, one colour per activation.

    One point per cell (seeds, widths, devices and dtypes pooled) among cells that neither
    diverged nor failed; the title says how many were left out. The dotted line marks the
    input's std (≈ 1).

    Args:
        cells: the ``cells`` table of a sweep.
    """
    _need(cells, _CELL_COLUMNS, "cells")
    top = deepest(cells)
    depth = int(top["depth"].max())
    schemes, acts = levels(top["scheme"]), levels(top["activation"])
    failed = int(top["error"].notna().sum())
    n_div = int((diverged(top) & top["error"].isna()).sum())
    keep = top[~diverged(top) & top["error"].isna()]
    keep = keep[np.isfinite(keep["final_std"]) & (keep["final_std"] > 0)]
    data = keep.astype({"scheme": object, "activation": object})  # plain str for seaborn
    data = data.assign(log10_final_std=np.log10(data["final_std"].astype(float)))
    with _style() as sns:
        from matplotlib.transforms import blended_transform_factory

        fig = _figure(7.5, max(3.0, 0.3 * len(schemes) * max(1.0, len(acts) / 2.5) + 1.4))
        ax = fig.subplots()
        if not data.empty:
            sns.stripplot(
                data=data, x="log10_final_std", y="scheme", hue="activation", order=schemes,
                hue_order=acts, dodge=True, jitter=0.15, size=4, alpha=0.85, ax=ax,
                palette="colorblind",
            )  # fmt: skip
            sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), frameon=False)
        ax.set_ylim(len(schemes) - 0.5, -0.5)
        ok = ran(top)
        n_ran = ok.groupby("scheme").size().reindex(schemes, fill_value=0)
        n_gone = diverged(ok).groupby(ok["scheme"]).sum().reindex(schemes, fill_value=0)
        ax.set_yticks(
            range(len(schemes)),
            [f"{s}\n{int(n_gone[s])}/{int(n_ran[s])} diverged" for s in schemes],
        )
        for i in range(1, len(schemes)):
            ax.axhline(i - 0.5, color="0.85", lw=0.8)
        present = set(data["scheme"])
        trans = blended_transform_factory(ax.transAxes, ax.transData)
        for i, s in enumerate(schemes):
            if s not in present:
                ax.text(0.02, i, "all diverged", transform=trans, va="center", color="0.4")
        ax.axvline(0, color="0.3", ls=":", lw=1)
        ax.set(xlabel="log10(final std)", ylabel="scheme")
        ax.xaxis.grid(True)
        ax.yaxis.grid(False)
        note = f"{n_div} diverged cells left out" + (f", {failed} failed" if failed else "")
        ax.set_title(
            f"Final std at depth {depth}: {len(data)} non-diverged cells, "
            f"{_pooled(top, ['seed', 'width'])} pooled\n({note}; dotted line: input std ≈ 1)"
        )
    return fig


def init_time_vs_width(timing: pd.DataFrame) -> Figure:
    """Median time to initialise one width×width weight (ms) vs width, log-log, per scheme.

    Error bars span the interquartile range of the timed repeats, centred on the median (the
    table stores the IQR's length, not its quartiles). One panel per (device, dtype).

    Args:
        timing: the ``timing`` table of a sweep.
    """
    _need(timing, ("scheme", "width", "device", "dtype", "init_ms", "init_ms_iqr"), "timing")
    if timing.empty:
        raise InitsuiteError("the timing table is empty (the sweep ran with timing=False)")
    schemes, pairs = levels(timing["scheme"]), combos(timing)
    with _style() as sns:
        from matplotlib.lines import Line2D
        from matplotlib.ticker import NullLocator

        n = len(pairs)
        fig = _figure(4.2 * min(_COL_WRAP, n) + 2.4, 3.4 * math.ceil(n / _COL_WRAP))
        axes = _grid(fig, n, min(_COL_WRAP, n))
        colors = _palette(sns, schemes)
        # spread schemes sideways a little so their error bars do not hide each other
        shift = {s: 10 ** (0.012 * (k - (len(schemes) - 1) / 2)) for k, s in enumerate(schemes)}
        for ax, (device, dtype) in zip(axes, pairs, strict=True):
            sub = timing[(timing["device"] == device) & (timing["dtype"] == dtype)]
            for s, g in sub.groupby("scheme", observed=True, sort=True):
                g = g.sort_values("width")
                x = g["width"].to_numpy(dtype=float) * shift[s]
                y = g["init_ms"].to_numpy(dtype=float)
                half = g["init_ms_iqr"].to_numpy(dtype=float) / 2
                lower = np.minimum(half, y * 0.999)  # a log axis cannot go to or below 0
                ax.errorbar(
                    x, y, yerr=[lower, half], color=colors[s], marker="o", ms=4, lw=1.3,
                    capsize=2.5, elinewidth=1,
                )  # fmt: skip
            ax.set_xscale("log")
            ax.set_yscale("log")
            ws = levels(sub["width"])
            ax.set_xticks(ws, [str(w) for w in ws])
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set(xlabel="width", ylabel="init time per weight, ms (median)")
            ax.set_title(f"{device}, {dtype}")
        handles = [Line2D([], [], color=colors[s], marker="o", lw=1.3, label=s) for s in schemes]
        _outside_legend(fig, handles, "scheme")
        fig.suptitle("Time to initialise one width × width weight; bars: IQR over repeats")
    return fig


def tutorial_std_vs_layer(tutorial_layers: pd.DataFrame) -> Figure:
    """Std (log y) vs layer for each tutorial experiment: geometric mean over seeds, min–max band,
    and the mean-field prediction dotted where the layers carry ``theory_std``.

    Args:
        tutorial_layers: the ``layers`` table of a tutorial reproduction (experiment, seed,
            layer, std, mean).
    """
    _need(tutorial_layers, ("experiment", "seed", "layer", "std"), "tutorial layers")
    exps = levels(tutorial_layers["experiment"])
    band = seed_band(tutorial_layers, ["experiment", "layer"])
    with _style() as sns:
        from matplotlib.lines import Line2D

        fig = _figure(7.8, 4.2)
        ax = fig.subplots()
        colors = _palette(sns, exps)
        bad = ~(np.isfinite(tutorial_layers["std"]) & (tutorial_layers["std"] > 0))
        stopped = set(tutorial_layers.loc[bad, "experiment"])
        for e, g in band.groupby("experiment", observed=True, sort=True):
            x, y = g["layer"].to_numpy(), g["geo_mean"].to_numpy()
            ax.fill_between(x, g["lo"], g["hi"], color=colors[e], alpha=0.18, lw=0)
            ax.plot(x, y, color=colors[e], lw=1.6)
            if e in stopped:
                ax.plot(x[-1], y[-1], color=colors[e], marker="x", ms=6, mew=1.6)
        if "theory_std" in tutorial_layers.columns:  # the mean-field prediction, dotted
            theory = tutorial_layers[tutorial_layers["theory_std"] > 0]
            for e, g in theory.groupby("experiment", observed=True, sort=True):
                t = g.groupby("layer")["theory_std"].first()
                ax.plot(t.index, t.to_numpy(), color=colors[e], ls=":", lw=1.0)
        ax.set_yscale("log")
        _decade_ticks([ax])
        ax.set(xlabel="layer (1-based)", ylabel="std (geometric mean over seeds, log scale)")
        shown = set(band["experiment"])
        handles = [
            Line2D([], [], color=colors[e], lw=2, label=e if e in shown else f"{e} (no data)")
            for e in exps
        ]
        if stopped:
            handles.append(
                Line2D([], [], color="0.3", marker="x", ls="", label="next std not finite or 0")
            )
        _outside_legend(fig, handles, "experiment")
        ax.set_title(
            f"Tutorial reproduction: std by layer; band = min–max over "
            f"{_n_seeds(tutorial_layers)} seeds"
        )
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically (legends kept: tight bbox), then close it."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)  # a no-op unless the caller made ``fig`` through pyplot
    return store.atomic_write_bytes(path, buf.getvalue())


_MEASURED_COLOR = {"none": "white", "overflow": "tomato", "underflow": "deepskyblue",
                   "mixed": "gold"}  # fmt: skip


def phase_diagram(grid: pd.DataFrame, points: pd.DataFrame | None = None) -> Figure:
    """The order–chaos phase diagram: depth scale ξ = 1/|ln χ₁| (log colour) over
    (σ_w², σ_b²), one panel per activation, the critical line χ₁ = 1 in black, and schemes as
    numbered points (keyed beside the panels) where they fall inside the plotted range. With a
    ``measured`` column in ``points`` (what a sweep saw at that scheme and activation:
    ``none``, ``overflow``, ``underflow`` or ``mixed``), the points are coloured by it; with
    ``measured_depth`` (:func:`initsuite.theory.correlation_depth`), that number of layers is
    written above each point, to compare with the colour's ξ.

    Args:
        grid: :func:`initsuite.phase.phase_diagram` tables (one or several activations).
        points: :func:`initsuite.phase.scheme_points` tables for the same activations.
    """
    _need(grid, ("activation", "sigma_w2", "sigma_b2", "chi1", "depth_scale"), "phase grid")
    acts = levels(grid["activation"])
    # one key per (σ_w², σ_b²) spot, naming every scheme there in any panel
    spots: dict[tuple[float, float], set[str]] = {}
    w_range = (grid["sigma_w2"].min(), grid["sigma_w2"].max())
    b_range = (grid["sigma_b2"].min(), grid["sigma_b2"].max())
    if points is not None and not points.empty:
        for sw, sb, name in zip(points["sigma_w2"], points["sigma_b2"], points["scheme"],
                                strict=True):  # fmt: skip
            if not (w_range[0] <= sw <= w_range[1] and b_range[0] <= sb <= b_range[1]):
                continue
            spots.setdefault((round(float(sw), 6), round(float(sb), 6)), set()).add(str(name))
    keyed = {spot: i for i, spot in enumerate(sorted(spots), start=1)}
    key_lines = [
        textwrap.fill(f"{keyed[(sw, sb)]}: σ_w²={sw:.3g}, σ_b²={sb:.2g}: "
                      + ", ".join(sorted(names)), width=64, subsequent_indent="    ")
        for (sw, sb), names in sorted(spots.items())
    ]  # fmt: skip
    with _style():
        ncols = min(_COL_WRAP, len(acts))
        nrows = math.ceil(len(acts) / ncols)
        fig = _figure(_PANEL_W * ncols + 3.6, _PANEL_H * nrows + 0.8)
        axes = _grid(fig, len(acts), ncols)
        mesh = None
        for ax, act in zip(axes, acts, strict=True):
            g = grid[grid["activation"] == act]
            w = np.unique(g["sigma_w2"].to_numpy())
            b = np.unique(g["sigma_b2"].to_numpy())
            xi = g.pivot_table(index="sigma_b2", columns="sigma_w2", values="depth_scale")
            xi_log = np.log10(np.clip(xi.to_numpy(dtype=float), 0.1, 1e4))
            chi = g.pivot_table(index="sigma_b2", columns="sigma_w2", values="chi1").to_numpy()
            mesh = ax.pcolormesh(w, b, xi_log, shading="nearest", cmap="magma", vmin=-1, vmax=3)
            if np.nanmin(chi) < 1 < np.nanmax(chi):
                ax.contour(w, b, chi, levels=[1.0], colors="black", linewidths=1.6)
            if points is not None and not points.empty:
                inside = (points["activation"] == act) & points["sigma_w2"].between(w[0], w[-1])
                p = points[inside & points["sigma_b2"].between(b[0], b[-1])]
                for (sw, sb), names in p.groupby(["sigma_w2", "sigma_b2"])["scheme"]:
                    spot = (round(float(sw), 6), round(float(sb), 6))
                    seen = set(p.loc[names.index, "measured"]) if "measured" in p else set()
                    face = _MEASURED_COLOR.get(seen.pop() if len(seen) == 1 else "mixed", "white")
                    ax.plot(sw, sb, marker="o", ms=9, color=face, mec="black", mew=0.8)
                    ax.annotate(str(keyed[spot]), (sw, sb), ha="center", va="center",
                                fontsize=6.5, color="black")  # fmt: skip
                    if "measured_depth" in p:
                        depth = p.loc[names.index, "measured_depth"].median()
                        if np.isfinite(depth):  # measured depth scale beside the colour's ξ
                            ax.annotate(f"{depth:.0f}", (sw, sb), xytext=(0, 8),
                                        textcoords="offset points", ha="center", fontsize=6.5,
                                        color="white", weight="bold")  # fmt: skip
            ax.set_xlim(w[0], w[-1])
            ax.set_ylim(b[0], b[-1])
            ax.set_title(str(act))
        assert mesh is not None  # one panel per activation, at least one activation
        cbar = fig.colorbar(mesh, ax=axes[-1], pad=0.03)
        cbar.set_label("ξ = 1/|ln χ₁| (layers, log10)")
        if key_lines:
            if points is not None and "measured" in points:
                key_lines += ["", "point colour: what the sweep measured at its deepest depth",
                              *(f"  {c}: {k}" for k, c in _MEASURED_COLOR.items())]  # fmt: skip
            fig.text(1.0, 0.5, "\n".join(key_lines), fontsize=7, va="center", ha="left",
                     family="monospace")  # fmt: skip
        fig.supxlabel("σ_w² (fan_in · Var W)")
        fig.supylabel("σ_b² (bias variance)")
        fig.suptitle("Order (χ₁ < 1, left of the black line) and chaos (χ₁ > 1, right)")
    return fig


def cosine_vs_layer(layers: pd.DataFrame, width: int | None = None) -> Figure:
    """The c-map: cosine of the input pair's pre-activations vs layer, one panel per
    activation, one line per scheme (mean over seeds, band min–max), with the mean-field
    ``theory_cosine`` dotted in the same colour. Deepest depth, one width (default largest).
    """
    _need(layers, ("scheme", "activation", "depth", "width", "seed", "layer", "cosine"), "layers")
    w = pick_width(layers, width)
    df = deepest(layers)
    df = df[(df["width"] == w) & df["cosine"].notna()]
    depth = int(df["depth"].max()) if not df.empty else 1
    schemes, acts = levels(df["scheme"]), levels(df["activation"])
    keys = ["activation", "scheme", "layer"]
    agg = df.groupby(keys, observed=True).agg(
        mean=("cosine", "mean"), lo=("cosine", "min"), hi=("cosine", "max"),
        theory=("theory_cosine", "first"),
    ).reset_index()  # fmt: skip
    with _style() as sns:
        from matplotlib.lines import Line2D

        ncols = min(_COL_WRAP, max(len(acts), 1))
        fig = _figure(_PANEL_W * ncols + 2.4, _PANEL_H * math.ceil(len(acts) / ncols) + 0.6)
        axes = _grid(fig, max(len(acts), 1), ncols)
        colors = _palette(sns, schemes)
        dashes = dict(zip(schemes, _DASHES * len(schemes), strict=False))
        for ax, act in zip(axes, acts, strict=False):
            for scheme, g in agg[agg["activation"] == act].groupby("scheme", observed=True):
                c = colors[scheme]
                ax.fill_between(g["layer"], g["lo"], g["hi"], color=c, alpha=0.12, lw=0)
                ax.plot(g["layer"], g["mean"], color=c, dashes=dashes[scheme], lw=1.5)
                ax.plot(g["layer"], g["theory"], color=c, ls=":", lw=1.0)
            ax.set_ylim(-1.05, 1.05)
            ax.set_xlim(0, depth)
            ax.set_title(str(act))
        handles = [Line2D([], [], color=colors[s], dashes=dashes[s], lw=1.8, label=s)
                   for s in schemes]  # fmt: skip
        handles.append(Line2D([], [], color="0.3", ls=":", lw=1.0, label="mean-field c-map"))
        _outside_legend(fig, handles, "scheme")
        fig.supxlabel("layer")
        fig.supylabel("cosine of the input pair's pre-activations")
        fig.suptitle(f"Correlation map at width {w}, depth {depth}; band: min–max over seeds")
    return fig


def jacobian_spectra(spectra: pd.DataFrame) -> Figure:
    """Density of the Jacobian's singular values (log10 x), one panel per activation, one
    line per scheme and depth (colour: scheme; dashes: depth). Exact zeros (ReLU's dead
    directions) are counted in the caption, not drawn."""
    _need(spectra, ("scheme", "activation", "depth", "sv"), "spectra")
    acts, schemes = levels(spectra["activation"]), levels(spectra["scheme"])
    depths = sorted(int(d) for d in spectra["depth"].unique())
    with _style() as sns:
        from matplotlib.lines import Line2D

        fig = _figure(_PANEL_W * len(acts) + 2.6, _PANEL_H + 0.8)
        axes = _grid(fig, len(acts), len(acts))
        colors = _palette(sns, schemes)
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
        _outside_legend(fig, handles, None)
        fig.supxlabel("log10 singular value of the input–output Jacobian (0: isometric)")
        fig.supylabel("density")
        fig.suptitle("Dynamical isometry: Jacobian spectra, orthogonal vs Gaussian weights")
    return fig


def loss_curves(curves: pd.DataFrame, threshold: float | None = None) -> Figure:
    """Full-train-set loss (log y) against step, one panel per activation, one line per
    scheme: the mean over seeds at each evaluated step, the band min to max. A run that
    diverged stops (× at its last evaluated loss). Dotted: chance level ln(classes) as the
    initial mean loss of a silent net would be; dashed: ``threshold``.

    Args:
        curves: the ``training`` table of ``initsuite train``.
        threshold: the loss the runs had to reach (drawn when given).
    """
    _need(curves, ("scheme", "activation", "seed", "step", "train_loss"), "training")
    ev = curves[curves["train_loss"].notna() & np.isfinite(curves["train_loss"])]
    if ev.empty:
        raise InitsuiteError("the training table has no evaluated steps to plot")
    schemes, acts = levels(curves["scheme"]), levels(curves["activation"])
    g = ev.groupby(["activation", "scheme", "step"], observed=True)["train_loss"]
    band = g.agg(["mean", "min", "max"]).reset_index()
    last = int(curves["step"].max())
    ended = curves.groupby(["activation", "scheme", "seed"], observed=True)["step"].max()
    with _style() as sns:
        from matplotlib.lines import Line2D

        ncols = min(_COL_WRAP, len(acts))
        fig = _figure(_PANEL_W * ncols + 2.6, _PANEL_H * math.ceil(len(acts) / ncols) + 0.6)
        axes = _grid(fig, len(acts), ncols)
        colors = _palette(sns, schemes)
        dashes = dict(zip(schemes, _DASHES * len(schemes), strict=False))
        for ax, act in zip(axes, acts, strict=True):
            for scheme, b in band[band["activation"] == act].groupby("scheme", observed=True):
                c = colors[scheme]
                ax.fill_between(b["step"], b["min"], b["max"], color=c, alpha=0.15, lw=0)
                ax.plot(b["step"], b["mean"], color=c, dashes=dashes[scheme], lw=1.6)
                if int(ended.loc[act, scheme].max()) < last:  # every seed stopped early
                    ax.plot(b["step"].iloc[-1], b["mean"].iloc[-1], color=c, marker="x", ms=6)
            ax.axhline(math.log(10), color="0.35", ls=":", lw=1.0)
            if threshold is not None:
                ax.axhline(threshold, color="0.35", ls="--", lw=1.0)
            ax.set_yscale("log")
            ax.set_xlim(0, last)
            ax.set_title(act)
        handles = [Line2D([], [], color=colors[s], dashes=dashes[s], lw=1.8, label=s)
                   for s in schemes]  # fmt: skip
        handles.append(Line2D([], [], color="0.35", ls=":", label="chance, ln 10"))
        if threshold is not None:
            handles.append(Line2D([], [], color="0.35", ls="--", label=f"threshold {threshold}"))
        _outside_legend(fig, handles, "scheme")
        fig.supxlabel("optimiser step")
        fig.supylabel("train loss (cross-entropy, log scale)")
        depth, width = int(curves["depth"].iloc[0]), int(curves["width"].iloc[0])
        fig.suptitle(
            f"Training curves: depth {depth}, width {width}; mean over "
            f"{_n_seeds(curves)} seeds, band min–max"
        )
    return fig


def steps_to_threshold(runs: pd.DataFrame) -> Figure:
    """Steps each scheme needed to reach the loss threshold, one panel per activation: a bar
    at the median over the seeds that reached it, a dot per seed; schemes with seeds that
    never reached it say how many did (``k/n``), and a scheme none of whose seeds did is
    marked "never" (a stalled net) or "diverged".

    Args:
        runs: the ``runs`` table of ``initsuite train``.
    """
    _need(runs, ("scheme", "activation", "seed", "steps", "steps_to_threshold", "reached",
                 "diverged"), "runs")  # fmt: skip
    schemes, acts = levels(runs["scheme"]), levels(runs["activation"])
    budget = int(runs["steps"].max())
    with _style() as sns:
        ncols = min(_COL_WRAP, len(acts))
        fig = _figure(4.2 * ncols, 0.42 * len(schemes) * math.ceil(len(acts) / ncols) + 1.6)
        axes = _grid(fig, len(acts), ncols)
        colors = _palette(sns, schemes)
        for ax, act in zip(axes, acts, strict=True):
            sub = runs[runs["activation"] == act]
            for i, scheme in enumerate(schemes):
                r = sub[sub["scheme"] == scheme]
                hit = r["steps_to_threshold"].dropna().astype(float)
                if len(hit):
                    ax.barh(i, float(hit.median()), color=colors[scheme], alpha=0.55, height=0.6)
                    ax.plot(hit, [i] * len(hit), "o", color=colors[scheme], ms=4, mec="0.2",
                            mew=0.5)  # fmt: skip
                label = None
                if len(r) and len(hit) < len(r):
                    label = f"{len(hit)}/{len(r)} reached"
                    if not len(hit):
                        label = "diverged" if bool(r["diverged"].all()) else "never (stalled)"
                if label:
                    x = float(hit.median()) if len(hit) else 0.0
                    ax.text(x + budget * 0.02, i, label, va="center", fontsize=8, color="0.25")
            ax.set_yticks(range(len(schemes)), schemes)
            ax.set_ylim(len(schemes) - 0.5, -0.5)
            ax.set_xlim(0, budget * 1.05)
            ax.axvline(budget, color="0.35", ls=":", lw=1.0)
            ax.set_title(act)
            ax.yaxis.grid(False)
        fig.supxlabel(f"steps to reach the loss threshold (of {budget}; dotted: the budget)")
        fig.suptitle(f"Steps to threshold: bar = median over seeds that reached it, dots = "
                     f"seeds ({_n_seeds(runs)})")  # fmt: skip
    return fig

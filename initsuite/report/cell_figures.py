"""A sweep's figures of its cells and its timing: where and how often signals diverge
(:func:`divergence_heatmap`), the final std of the cells that did not
(:func:`final_std_distribution`), and the time to initialise a weight
(:func:`init_time_vs_width`). Each takes a tidy DataFrame and returns a matplotlib ``Figure``.

seaborn and matplotlib are imported inside the functions (:mod:`initsuite.report.style`), so
``import initsuite.report`` stays light. Values a log axis cannot show are dropped.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError
from initsuite.report.families import family_figure, panel_rows, row_legend, scheme_colors
from initsuite.report.selection import combos, deepest, diverged, levels, n_seeds, pooled, ran
from initsuite.report.style import need, new_figure, style
from initsuite.results.columns import CELLS, TIMING, label

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["divergence_heatmap", "final_std_distribution", "init_time_vs_width"]

_CELL_COLUMNS = ("scheme", "activation", "depth", "width", "divergence_layer", "final_std", "error")
_NEVER = "#e6e6e6"  # background of heatmap cells where no run diverged


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
    need(cells, _CELL_COLUMNS, "cells")
    ok = ran(cells)
    if ok.empty:
        raise InitsuiteError("no cell ran without error: there is nothing to plot")
    top = deepest(ok)
    depth = int(top["depth"].max())
    schemes, acts = levels(ok["scheme"]), levels(ok["activation"])
    depths, widths = levels(ok["depth"]), levels(ok["width"])

    med, labels = _median_layers(top, schemes, acts)
    with style() as sns:
        height = max(3.4, 0.42 * max(len(schemes), len(depths)) + 2.0)
        panel_l, panel_r = max(1.0 * len(acts), 3.2), max(0.9 * len(widths), 2.6)
        fig = new_figure(panel_l + panel_r + 5.0, height)
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
            f"{pooled(top, ['width', 'seed'])} pooled\n(k/n: k of n runs diverged; —: none did)"
        )
        _fraction_diverged(sns, right, ok, depths, widths)
        for ax in (left, right):
            ax.grid(False)
            ax.tick_params(axis="y", rotation=0)
            ax.tick_params(axis="x", rotation=0 if len(ax.get_xticklabels()) <= 6 else 45)
    return fig


def _fraction_diverged(sns: Any, ax: Any, ok: pd.DataFrame, depths: list[Any],
                       widths: list[Any]) -> None:  # fmt: skip
    """The right panel of :func:`divergence_heatmap`: per depth (rows) and width (columns),
    the fraction of the cells ``ok`` (those that ran) that diverged within their depth."""
    from matplotlib.ticker import PercentFormatter

    frac = (
        ok.assign(d=diverged(ok))
        .pivot_table(index="depth", columns="width", values="d", aggfunc="mean", observed=True)
        .reindex(index=depths, columns=widths)
        .to_numpy(dtype=float)
    )
    sns.heatmap(
        frac, ax=ax, annot=True, fmt=".0%", cmap="rocket_r", vmin=0, vmax=1,
        linewidths=0.5, linecolor="white", xticklabels=widths, yticklabels=depths,
        annot_kws={"fontsize": 8}, cbar_kws={"label": "fraction diverged"},
    )  # fmt: skip
    ax.collections[0].colorbar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.set(xlabel="width", ylabel="depth")
    counts = [(ok["scheme"].nunique(), "schemes"), (ok["activation"].nunique(), "activations"),
              (n_seeds(ok), "seeds")]  # fmt: skip
    counts += [(ok[k].nunique(), f"{k}s") for k in ("device", "dtype") if ok[k].nunique() > 1]
    ax.set_title(
        "Fraction of cells diverged\nwithin their depth, pooling\n"
        + " × ".join(f"{n} {what}" for n, what in counts)
    )


def _median_layers(top: pd.DataFrame, schemes: list[Any],
                   acts: list[Any]) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Per scheme (rows) and activation (columns): the median divergence layer over the cells
    that diverged (NaN where none did), and its label (``k/n`` below when only k of n did)."""
    med = np.full((len(schemes), len(acts)), np.nan)
    labels = np.full(med.shape, "", dtype=object)
    for (s, a), g in top.groupby(["scheme", "activation"], observed=True):
        div = g["divergence_layer"].dropna().astype(float)
        i, j = schemes.index(s), acts.index(a)
        if len(div):
            med[i, j] = div.median()
            text = f"{med[i, j]:.0f}" if med[i, j] == int(med[i, j]) else f"{med[i, j]:.1f}"
            labels[i, j] = text if len(div) == len(g) else f"{text}\n{len(div)}/{len(g)}"
    return med, labels


@contextlib.contextmanager
def _seeded_jitter(seed: int = 0) -> Iterator[None]:
    """NumPy's global generator seeded while the block runs, then as it was: seaborn jitters
    strip plots from it, and a report drawn twice from one directory must come out the same."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def final_std_distribution(cells: pd.DataFrame) -> Figure:
    """log10(final std) at the deepest depth per scheme, one colour per activation.

    One point per cell (seeds, widths, devices and dtypes pooled) among cells that neither
    diverged nor failed; the title says how many were left out. The dotted line marks the
    input's std (≈ 1).

    Args:
        cells: the ``cells`` table of a sweep.
    """
    need(cells, _CELL_COLUMNS, "cells")
    top = deepest(cells)
    depth = int(top["depth"].max())
    schemes, acts = levels(top["scheme"]), levels(top["activation"])
    failed = int(top["error"].notna().sum())
    n_div = int((diverged(top) & top["error"].isna()).sum())
    keep = top[~diverged(top) & top["error"].isna()]
    keep = keep[np.isfinite(keep["final_std"]) & (keep["final_std"] > 0)]
    data = keep.astype({"scheme": object, "activation": object})  # plain str for seaborn
    data = data.assign(log10_final_std=np.log10(data["final_std"].astype(float)))
    with style() as sns:
        from matplotlib.transforms import blended_transform_factory

        fig = new_figure(7.5, max(3.0, 0.3 * len(schemes) * max(1.0, len(acts) / 2.5) + 1.4))
        ax = fig.subplots()
        if not data.empty:
            with _seeded_jitter():
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
        ax.set(xlabel=f"log10({label('final_std', CELLS)})", ylabel="scheme")
        ax.xaxis.grid(True)
        ax.yaxis.grid(False)
        note = f"{n_div} diverged cells left out" + (f", {failed} failed" if failed else "")
        ax.set_title(
            f"Final std at depth {depth}: {len(data)} non-diverged cells, "
            f"{pooled(top, ['seed', 'width'])} pooled\n({note}; dotted line: input std ≈ 1)"
        )
    return fig


def init_time_vs_width(timing: pd.DataFrame, colors: dict[str, str] | None = None) -> Figure:
    """Median time to initialise one width×width weight (ms) vs width, log-log, per scheme.

    Error bars span the interquartile range of the timed repeats, centred on the median (the
    table stores the IQR's length, not its quartiles). One row of panels per scheme family
    (:mod:`initsuite.report.families`), one column per (device, dtype).

    Args:
        timing: the ``timing`` table of a sweep.
        colors: scheme → colour shared by a report's figures; default
            :func:`~initsuite.report.families.scheme_colors` of ``timing``'s schemes.
    """
    need(timing, ("scheme", "width", "device", "dtype", "init_ms", "init_ms_iqr"), "timing")
    if timing.empty:
        raise InitsuiteError("the timing table is empty (the sweep ran with timing=False)")
    schemes, pairs = levels(timing["scheme"]), combos(timing)
    colors = colors if colors is not None else scheme_colors(schemes)
    rows = panel_rows(colors, schemes)
    with style():
        from matplotlib.ticker import NullLocator

        fig, axes = family_figure(len(rows), len(pairs), "width")
        for (i, row), (j, (device, dtype)) in itertools.product(enumerate(rows),
                                                               enumerate(pairs)):  # fmt: skip
            ax = axes[i, j]
            sub = timing[(timing["device"] == device) & (timing["dtype"] == dtype)]
            _time_lines(ax, sub[sub["scheme"].isin(list(row.schemes))], row.schemes, colors)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ws = levels(sub["width"])
            ax.set_xticks(ws, [str(w) for w in ws])
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_title(f"{row.title} · {device}, {dtype}")
        for i, row in enumerate(rows):
            row_legend(axes[i, -1], row.schemes, colors)
        fig.supylabel(f"{label('init_ms', TIMING)} (median)")
        fig.suptitle("Time to initialise one width × width weight; bars: IQR over repeats")
    return fig


def _time_lines(ax: Any, sub: pd.DataFrame, schemes: Sequence[str],
                colors: dict[str, str]) -> None:  # fmt: skip
    """One panel's timing lines, medians with IQR bars, one per scheme of ``schemes``."""
    # spread schemes sideways a little so their error bars do not hide each other
    shift = {s: 10 ** (0.012 * (k - (len(schemes) - 1) / 2)) for k, s in enumerate(schemes)}
    for s, g in sub.groupby("scheme", observed=True, sort=True):
        g = g.sort_values("width")
        x = g["width"].to_numpy(dtype=float) * shift[s]
        y = g["init_ms"].to_numpy(dtype=float)
        half = g["init_ms_iqr"].to_numpy(dtype=float) / 2
        lower = np.minimum(half, y * 0.999)  # a log axis cannot go to or below 0
        ax.errorbar(x, y, yerr=[lower, half], color=colors[s], marker="o", ms=4, lw=1.3,
                    capsize=2.5, elinewidth=1)  # fmt: skip

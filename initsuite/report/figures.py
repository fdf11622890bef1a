"""A sweep's figures: each takes a tidy DataFrame and returns a matplotlib ``Figure``.

seaborn and matplotlib are imported inside the functions (:mod:`initsuite.report.style`), so
``import initsuite.report`` stays light. Standard deviations are plotted on log axes; values
that a log axis cannot show (0 from the ``zeros`` scheme or an underflow, NaN at an overflow)
are dropped.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError, unknown
from initsuite.core.version import __version__
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
from initsuite.report.style import (
    decade_ticks,
    need,
    new_figure,
    style,
)
from initsuite.results import store
from initsuite.results.columns import CELLS, TIMING, label
from initsuite.results.layout import PNG_SOFTWARE
from initsuite.results.outputs import check_output

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "divergence_heatmap",
    "final_std_distribution",
    "init_time_vs_width",
    "save_figure",
    "std_vs_layer",
    "write_figure",
]

_CELL_COLUMNS = ("scheme", "activation", "depth", "width", "divergence_layer", "final_std", "error")
_NEVER = "#e6e6e6"  # background of heatmap cells where no run diverged


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


def n_seeds(df: pd.DataFrame) -> int:
    """The number of distinct seeds in ``df``."""
    return int(df["seed"].nunique())


def _pooled(df: pd.DataFrame, keys: Sequence[str]) -> str:
    """``"widths × seeds"``, with devices and dtypes added when ``df`` holds several."""
    names = {"width": "widths", "seed": "seeds", "device": "devices", "dtype": "dtypes"}
    extra = [k for k in ("device", "dtype") if df[k].nunique() > 1]
    return " × ".join(names[k] for k in [*keys, *extra])


# --- figures ---------------------------------------------------------------------------------


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
        hidden = "std 0: hidden" if not backward else "no gradient: hidden"
        shown = set(band["scheme"])
        for i, row in enumerate(rows):
            labels = {s: s if s in shown else f"{s} ({hidden})" for s in row.schemes}
            row_legend(axes[i, -1], row.schemes, colors, labels)
        key_legend(fig, key_handles(dashes, theory is not None, "mean-field theory"))
        fig.supylabel(f"{name} (geometric mean over seeds, log scale)")
        combo = f", {pairs[0][0]} {pairs[0][1]}" if len(pairs) == 1 else ""
        fig.suptitle(
            f"{title} at width {w}, depth {depth}{combo}; band: min–max over {n_seeds(df)} seeds"
        )
    return fig


_PANEL_KEYS = ["device", "dtype", "activation"]


def with_arch(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with an ``arch`` column (``"mlp"`` where a table from before archs has none)."""
    return df if "arch" in df.columns else df.assign(arch="mlp")


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
    frac = (
        ok.assign(d=diverged(ok))
        .pivot_table(index="depth", columns="width", values="d", aggfunc="mean", observed=True)
        .reindex(index=depths, columns=widths)
        .to_numpy(dtype=float)
    )
    with style() as sns:
        from matplotlib.ticker import PercentFormatter

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
            f"{_pooled(top, ['width', 'seed'])} pooled\n(k/n: k of n runs diverged; —: none did)"
        )
        sns.heatmap(
            frac, ax=right, annot=True, fmt=".0%", cmap="rocket_r", vmin=0, vmax=1,
            linewidths=0.5, linecolor="white", xticklabels=widths, yticklabels=depths,
            annot_kws={"fontsize": 8}, cbar_kws={"label": "fraction diverged"},
        )  # fmt: skip
        right.collections[0].colorbar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
        right.set(xlabel="width", ylabel="depth")
        counts = [(len(schemes), "schemes"), (len(acts), "activations"), (n_seeds(ok), "seeds")]
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
            f"{_pooled(top, ['seed', 'width'])} pooled\n({note}; dotted line: input std ≈ 1)"
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


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically, then close it; ``path`` passes the
    output check first (:func:`~initsuite.results.outputs.check_output`: an existing file is
    replaced only if initsuite wrote it, nothing goes inside a results directory)."""
    return write_figure(fig, check_png_name(check_output(path, "file")), dpi)


def check_png_name(path: str | os.PathLike[str]) -> str | os.PathLike[str]:
    """Return ``path``; raise unless it names a PNG (``.png``): a figure is written as PNG,
    and ``x.pdf`` holding PNG bytes would mislead every viewer."""
    if isinstance(path, (str, os.PathLike)) and not isinstance(os.fspath(path), bytes):
        suffix = Path(os.fspath(path)).suffix
        if suffix.lower() != ".png":
            raise InitsuiteError(
                f"figure path {os.fspath(path)!r} ends {suffix or 'with no suffix'!r}: a figure "
                "is written as PNG; name a file ending .png"
            )
    return path


def write_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically (legends kept: tight bbox), then close it;
    no output check (a report's staging directory is checked whole). The PNG's ``Software``
    text marks it as initsuite's (:func:`~initsuite.results.ownership.written_by_initsuite`)."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white",
                    metadata={"Software": f"{PNG_SOFTWARE} {__version__}"})  # fmt: skip
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)  # a no-op unless the caller made ``fig`` through pyplot
    return store.atomic_write_bytes(path, buf.getvalue())

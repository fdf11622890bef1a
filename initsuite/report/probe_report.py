"""The report of ``initsuite probe``: a figure, a summary per scheme and report.md.

    >>> from initsuite.report.probe_report import write_probe_report
    >>> write_probe_report("results/probe-resnet")  # doctest: +SKIP
    PosixPath('results/probe-resnet/report.md')

Reads the directory through :mod:`initsuite.store` only and never imports torch; seaborn and
matplotlib are imported when the figure is drawn.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from initsuite.core.errors import Arg, InitsuiteError
from initsuite.report.plan import PlannedFigure, ReportPlan, write_plan
from initsuite.report.style import (
    DASHES,
    decade_ticks,
    md_table,
    need,
    new_figure,
    outside_legend,
    palette,
    style,
)
from initsuite.results.outputs import FIGURE_DIR
from initsuite.results.probe import ProbeResult, probe_summary, schemes_in_order

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "BLOCKS_FIGURE",
    "PROBE_FIGURE",
    "block_table",
    "check_dependencies",
    "probe_blocks",
    "probe_std",
    "render_probe",
    "type_table",
    "write_probe_report",
]

PROBE_FIGURE = "probe_std"
BLOCKS_FIGURE = "probe_blocks"


# --- tables ----------------------------------------------------------------------------------


def type_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Median output std per module type (rows, in order of first call) and scheme
    (columns, in probe order), over the calls with a finite std."""
    ok = frame[np.isfinite(frame["std"].astype(float))]
    table = ok.pivot_table(index="type", columns="scheme", values="std", aggfunc="median",
                           observed=True)  # fmt: skip
    types = [t for t in dict.fromkeys(frame["type"]) if t in table.index]
    cols = [s for s in schemes_in_order(frame) if s in table.columns]
    table = table.loc[types, cols]
    table.columns.name = None
    return table.reset_index()


# --- figure ----------------------------------------------------------------------------------


def probe_std(frame: pd.DataFrame) -> Figure:
    """Std of each probed call's output (log y) against the call's position in execution
    order, one line per scheme; with gradients, a second panel of ``grad_std``. A dotted
    vertical line in a scheme's colour marks its first divergence (forward: the first call
    that overflowed or underflowed; backward: the first, walking back, whose gradient did).
    Grey bands mark the calls of modules a scheme re-drew. Values a log axis cannot show (NaN
    at an overflow, 0) are left out.

    Args:
        frame: the ``probe`` table (:data:`initsuite.columns.PROBE`).
    """
    need(frame, ("scheme", "call", "std", "grad_std", "divergence_kind",
                  "grad_divergence_kind"), "probe")  # fmt: skip
    if frame.empty:
        raise InitsuiteError("the probe table is empty: there is nothing to plot")
    schemes = schemes_in_order(frame)
    panels = [("std", "divergence_kind", "std of the module's output")]
    if bool(frame["grad_std"].notna().any()):
        panels.append(("grad_std", "grad_divergence_kind", "std of dLoss/d(output)"))
    last = int(frame["call"].max())
    # the calls of modules some scheme re-drew (Conv, Linear…): where the scale is set
    drawn = sorted(set(frame.loc[frame["reinitialised"].astype(bool), "call"].astype(int)))
    with style() as sns:
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch
        from matplotlib.ticker import MaxNLocator

        fig = new_figure(9.5, 2.9 * len(panels) + 0.7)
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False).ravel()
        colors = palette(sns, schemes)
        dashes = dict(zip(schemes, DASHES * len(schemes), strict=False))
        for ax, (col, kind_col, label) in zip(axes, panels, strict=True):
            for call in drawn:
                ax.axvspan(call - 0.5, call + 0.5, color="0.92", lw=0, zorder=0)
            plotted = _draw_calls(ax, frame, col, kind_col, colors, dashes)
            ax.set_ylabel(label)
            ax.set_xlim(0.5, last + 0.5)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if plotted:
                ax.set_yscale("log")
                decade_ticks([ax])
        axes[-1].set_xlabel("module call, in execution order")
        handles: list[Any] = [Line2D([], [], color=colors[s], dashes=dashes[s], lw=1.8,
                                     label=s) for s in schemes]  # fmt: skip
        if frame[["divergence_kind", "grad_divergence_kind"]].notna().any().any():
            handles.append(Line2D([], [], color="0.35", ls=":", label="first divergence"))
        if drawn:
            handles.append(Patch(color="0.92", label="re-drawn by the schemes"))
        outside_legend(fig, handles, "scheme")
        fig.suptitle("Std of each module's output, in execution order")
    return fig


def _draw_calls(ax: Any, frame: pd.DataFrame, col: str, kind_col: str, colors: dict[str, Any],
                dashes: dict[str, Any]) -> bool:  # fmt: skip
    """One panel's line per scheme of ``col`` by call (positive finite values only), and a
    dotted line at each call ``kind_col`` marks; whether any line was drawn."""
    plotted = False
    for scheme in schemes_in_order(frame):
        d = frame[frame["scheme"] == scheme].sort_values("call")
        values = d[col].astype(float)
        ok = d[np.isfinite(values) & (values > 0)]
        c = colors[scheme]
        if len(ok):
            ax.plot(ok["call"], ok[col], color=c, dashes=dashes[scheme], lw=1.4, marker="o",
                    ms=2.5)  # fmt: skip
            plotted = True
        for call in d.loc[d[kind_col].notna(), "call"]:
            ax.axvline(int(call), color=c, ls=":", lw=1.2)
    return plotted


def probe_blocks(blocks: pd.DataFrame) -> Figure:
    """The residual stream block by block, one line per scheme: the std of each block's
    output (log y) and the ratio of what the block added to the stream's std before it
    (symmetric log: linear below 10⁻³, so a block that adds nothing shows at 0); with
    gradients, a third panel of the gradient's std at each block's output.

    Args:
        blocks: the ``blocks`` table (:data:`initsuite.columns.PROBE_BLOCKS`).
    """
    need(blocks, ("scheme", "block", "stream_std", "update_ratio", "stream_grad_std"),
         "blocks")  # fmt: skip
    if blocks.empty:
        raise InitsuiteError("the blocks table is empty: there is nothing to plot")
    schemes = schemes_in_order(blocks)
    panels = [("stream_std", "std of the stream after the block", "log"),
              ("update_ratio", "std added / std before", "symlog")]  # fmt: skip
    if bool(blocks["stream_grad_std"].notna().any()):
        panels.append(("stream_grad_std", "std of dLoss/d(block output)", "log"))
    with style() as sns:
        from matplotlib.lines import Line2D
        from matplotlib.ticker import MaxNLocator

        fig = new_figure(8.5, 2.5 * len(panels) + 0.7)
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False).ravel()
        colors = palette(sns, schemes)
        dashes = dict(zip(schemes, DASHES * len(schemes), strict=False))
        for ax, (col, label, scale) in zip(axes, panels, strict=True):
            plotted = False
            for scheme in schemes:
                d = blocks[blocks["scheme"] == scheme].sort_values("block")
                v = d[col].astype(float)
                ok = d[np.isfinite(v) & ((v > 0) if scale == "log" else (v >= 0))]
                if len(ok):
                    ax.plot(ok["block"], ok[col], color=colors[scheme], dashes=dashes[scheme],
                            lw=1.4, marker="o", ms=3)  # fmt: skip
                    plotted = True
            ax.set_ylabel(label)
            if plotted and scale == "log":
                ax.set_yscale("log")
                decade_ticks([ax])
            elif plotted:
                ax.set_yscale("symlog", linthresh=1e-3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[-1].set_xlabel("residual block, in execution order")
        handles: list[Any] = [Line2D([], [], color=colors[s], dashes=dashes[s], lw=1.8,
                                     label=s) for s in schemes]  # fmt: skip
        outside_legend(fig, handles, "scheme")
        fig.suptitle("The residual stream, block by block")
    return fig


def block_table(blocks: pd.DataFrame) -> pd.DataFrame:
    """One row per scheme of the ``blocks`` table, in probe order: the blocks recorded, the
    stream's std after the first and the last block, the median and largest update ratio,
    and (with gradients) the gradient's std at the first block's output."""
    rows = []
    grads = bool(blocks["stream_grad_std"].notna().any())
    for scheme in schemes_in_order(blocks):
        d = blocks[blocks["scheme"] == scheme].sort_values("block", kind="stable")
        ratio = d["update_ratio"].astype(float)
        row = {"scheme": scheme, "blocks": len(d),
               "first stream std": float(d["stream_std"].iloc[0]),
               "last stream std": float(d["stream_std"].iloc[-1]),
               "median update ratio": float(ratio.median()),
               "largest update ratio": float(ratio.max())}  # fmt: skip
        if grads:
            row["first block grad std"] = float(d["stream_grad_std"].iloc[0])
        rows.append(row)
    return pd.DataFrame.from_records(rows)


def _blocks_caption(blocks: pd.DataFrame) -> str:
    text = (
        "One point per call of a known residual block (a transformer layer, a ResNet or "
        "ConvNeXt block: `initsuite.studies.blocks.KNOWN_BLOCKS`), in execution order, one "
        "line per scheme. Top: std (log scale) of the block's output, the residual stream "
        "after it. Next: std of what the block added (output − input) over the std of its "
        "input: how much each block changes the stream (0 when its branches output nothing, "
        "as under Fixup; the axis is linear below 10⁻³). A block whose output and input "
        "differ in shape (a downsampling block) has no point."
    )
    if bool(blocks["stream_grad_std"].notna().any()):
        text += (
            " Bottom: std of the gradient at each block's output, for the loss of the module "
            "figure (Σ R ⊙ y): how much of the output's gradient reaches the stream there."
        )
    return text


def _blocks_section(blocks: pd.DataFrame, figures: list[str], number: int) -> str:
    parts = ["## Residual blocks\n"]
    if BLOCKS_FIGURE in figures:
        parts.append(
            f"![The residual stream by block]({FIGURE_DIR}/{BLOCKS_FIGURE}.png)\n\n"
            f"*Figure {number}: The residual stream by block.* {_blocks_caption(blocks)}\n"
        )
    parts.append(md_table(block_table(blocks)) + "\n")
    parts.append(
        "One row per scheme (`blocks.parquet`, `initsuite.columns.PROBE_BLOCKS`). *update "
        "ratio*: std of what a block added over the stream's std before it; *first block "
        "grad std*: the gradient's std at the first block's output.\n"
    )
    return "\n".join(parts)


# --- report ----------------------------------------------------------------------------------


def check_dependencies() -> None:
    """Raise unless the report's libraries (matplotlib, seaborn, tabulate) import."""
    for name in ("matplotlib", "seaborn", "tabulate"):
        try:
            __import__(name)
        except ImportError:
            raise InitsuiteError(
                f"the probe report needs {name}: pip install 'initsuite[report]' (or pass ",
                Arg("report", False),
                ")",
            ) from None


def _run_section(frame: pd.DataFrame, meta: Mapping[str, Any]) -> str:
    cfg: Mapping[str, Any] = meta.get("config", {}) or {}
    model: Mapping[str, Any] = meta.get("model", {}) or {}
    env: Mapping[str, Any] = meta.get("environment", {}) or {}
    inp: Mapping[str, Any] = meta.get("input", {}) or {}
    schemes = ", ".join(f"`{s}`" for s in schemes_in_order(frame))
    lines = ["## Run", ""]
    if model:
        lines.append(
            f"- **Model:** `{model.get('type', '?')}` from `{cfg.get('factory', '?')}`, "
            f"{int(model.get('parameters', 0)):,} parameters, {model.get('probed_modules', '?')} "
            "probed modules"
        )
        src = model.get("source") or {}
        if src:
            lines.append(
                f"- **Built by:** {src.get('library')} {src.get('version', '?')} "
                f"from code and its shipped config, no download (`{src.get('spec')}`)"
            )
    if inp:
        shape = ",".join(str(n) for n in inp.get("shape", []))
        lines.append(f"- **Input:** one tensor of shape {shape}, {inp.get('values', '?')}")
    act = cfg.get("activation")
    lines.append(
        f"- **Schemes:** {schemes} (`as_built`: the model's own initialisation, as its "
        "library or factory built it; `default` in older directories)"
        + (f"; activation `{act}` for gain=auto" if act else "")
    )
    if cfg:
        lines.append(
            f"- **Mode:** {cfg.get('mode')}; **backward:** {'yes' if cfg.get('backward') else 'no'}"
            f"; **seed:** {cfg.get('seed')}; **device:** {cfg.get('device')}; **dtype:** "
            f"{cfg.get('dtype')}; **embeddings re-drawn:** "
            f"{'yes' if cfg.get('include_embeddings') else 'no'}"
        )
    if env:
        lines.append(
            f"- **Versions:** initsuite {env.get('initsuite', '?')}, torch "
            f"{env.get('torch', '?')}, Python {env.get('python', '?')}; "
            f"**date (UTC):** {env.get('utc_time', 'unknown')}; **git commit:** "
            f"{env.get('git_commit') or 'unknown'}"
        )
    if meta.get("command"):
        lines.append(f"- **Command:** `{meta['command']}`")
    return "\n".join(lines) + "\n"


def _caption(frame: pd.DataFrame) -> str:
    grads = bool(frame["grad_std"].notna().any())
    text = (
        "Std (log scale) of the output of every call of a probed module (leaf modules, and "
        "modules holding parameters of their own), in the order the calls returned, one line "
        "per scheme. A zig-zag is the model's structure: a Conv or Linear layer sets the "
        "scale, a norm layer resets it to about 1, an activation or pooling shrinks it; grey "
        "bands mark the calls of the modules the schemes re-drew. A dotted vertical line "
        "marks a scheme's first divergence (an inf/nan in the output, or a std below the "
        "dtype's smallest normal number)."
    )
    if grads:
        text += (
            " Bottom: std of the gradient reaching each call's output, for Loss = Σ R ⊙ y with "
            "R a fixed N(0, 1) tensor of the model output's shape (so the output's gradient "
            "has std ≈ 1 at the right edge, and the signal runs right to left); missing "
            "where an output does not reach y."
        )
    return text


def _where(call: Any, module: Any, kind: Any) -> str:
    """``"overflow at call 32 (31)"``, or — when there was none."""
    return "—" if pd.isna(call) else f"{kind} at call {int(call)} (`{module}`)"


def _summary_for_report(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`probe_summary` with each divergence in one readable column, and no gradient
    columns without a backward pass."""
    s = probe_summary(frame)
    out = s[["scheme", "calls", "modules", "reinitialised", "last_std"]].copy()
    out["first divergence"] = [
        _where(*r) for r in zip(s["divergence_call"], s["divergence_module"],
                                s["divergence_kind"], strict=True)]  # fmt: skip
    if bool(frame["grad_std"].notna().any()):
        out["first grad std"] = s["first_grad_std"]
        out["first grad divergence"] = [
            _where(*r) for r in zip(s["grad_divergence_call"], s["grad_divergence_module"],
                                    s["grad_divergence_kind"], strict=True)]  # fmt: skip
    return out.rename(columns={"last_std": "last std"})


def render_probe(frame: pd.DataFrame, meta: Mapping[str, Any], figures: list[str],
                 blocks: pd.DataFrame | None = None) -> str:  # fmt: skip
    """report.md's text for a probe table, its metadata and the figures drawn (and its
    ``blocks`` table, when not empty)."""
    cfg: Mapping[str, Any] = meta.get("config", {}) or {}
    title = cfg.get("factory") or (meta.get("model", {}) or {}).get("type") or "model"
    parts = [f"# initsuite probe: {title}\n", _run_section(frame, meta)]
    if PROBE_FIGURE in figures:
        parts.append("## Figure\n")
        parts.append(
            f"![Std by module call]({FIGURE_DIR}/{PROBE_FIGURE}.png)\n\n"
            f"*Figure 1: Std by module call.* {_caption(frame)}\n"
        )
    parts.append("## Summary\n")
    parts.append(md_table(_summary_for_report(frame)) + "\n")
    parts.append(
        "One row per scheme. *calls*: rows of the table (a module called twice has two); "
        "*reinitialised*: modules whose weight the scheme drew (Linear, Conv, ConvTranspose, "
        "MultiheadAttention, Hugging Face's Conv1D; biases, norms and embeddings keep the "
        "model's own values unless embeddings were asked for); "
        "*last std*: the std of the last call's output; *first divergence*: the first call whose "
        "output overflowed (inf/nan) or underflowed (std below the dtype's smallest normal "
        "number), — if none."
        + (
            " *first grad std*: the gradient at the first call's output, the end-to-end "
            "backward gain (R has std ≈ 1); *first grad divergence*: the first call, walking back "
            "from the output, whose gradient left the range."
            if bool(frame["grad_std"].notna().any())
            else ""
        )
        + "\n"
    )
    if blocks is not None and not blocks.empty:
        parts.append(_blocks_section(blocks, figures, 2 if PROBE_FIGURE in figures else 1))
    parts.append("## Median output std by module type\n")
    parts.append(md_table(type_table(frame)) + "\n")
    parts.append(
        "## How the numbers are made\n\n"
        "One forward pass (and, with backward, one backward pass) per scheme, each on a fresh "
        "model from the factory built with torch's global RNG seeded with the seed (so every "
        "scheme starts from the same factory draw), with forward hooks on the probed modules. "
        "A call's output is its tensor, or the first floating-point tensor of a tuple, list or "
        "dict (Hugging Face outputs included). Std (correction=1) and mean are over all of "
        "its elements, accumulated in float64 so they cannot overflow before the data does. "
        "Gradients come from tensor hooks registered as each call returns (so an in-place "
        "op after it does not change what is recorded); hooks are removed and buffers such "
        "as BatchNorm's running statistics restored afterwards. `probe.parquet` holds every "
        "row (`initsuite.columns.PROBE`).\n"
    )
    return "\n".join(parts)


def write_probe_report(
    run_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Write ``report.md``, ``figures/probe_std.png`` and, when the model has known residual
    blocks, ``figures/probe_blocks.png`` for the probe saved in ``run_dir``
    (default: into ``run_dir``), all or nothing: drawn into a temporary directory inside it
    and moved into place (:func:`initsuite.store.staged`; an existing ``figures`` or
    ``report.md`` initsuite did not write is refused).

    Returns:
        The path of ``report.md``.

    Raises:
        InitsuiteError: if ``run_dir`` is not a readable probe directory, ``out_dir`` cannot
            be written, or the plotting libraries are missing.
    """
    result = ProbeResult.load(run_dir)
    frame, meta, blocks = result.calls, result.meta, result.blocks
    figures = []
    if bool(np.isfinite(frame["std"].astype(float)).any()):
        figures.append(PlannedFigure(PROBE_FIGURE, lambda: probe_std(frame)))
    if bool(np.isfinite(blocks["stream_std"].astype(float)).any()):
        figures.append(PlannedFigure(BLOCKS_FIGURE, lambda: probe_blocks(blocks)))
    text = render_probe(frame, meta, [f.name for f in figures], blocks)
    return write_plan(ReportPlan(figures, text), out_dir if out_dir is not None else run_dir)

"""The report of ``initsuite probe``: report.md over the tables and figures of
:mod:`~initsuite.report.probe_tables` and :mod:`~initsuite.report.probe_figures`, for one
model or for several (``--vary``, the zoo study: the sections of
:mod:`~initsuite.report.probe_models`, opening with the verdict).

    >>> from initsuite.report.probe_report import write_probe_report
    >>> write_probe_report("results/probe-resnet")  # doctest: +SKIP
    PosixPath('results/probe-resnet/report.md')

Reads the directory through :mod:`initsuite.results` only and never imports torch; seaborn and
matplotlib are imported when the figure is drawn.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from initsuite.core.errors import Arg, InitsuiteError
from initsuite.report.captions import figure_block
from initsuite.report.plan import PlannedFigure, ReportPlan, write_plan
from initsuite.report.probe_figures import probe_blocks, probe_std
from initsuite.report.probe_models import models_figures, models_sections, verdict_section
from initsuite.report.probe_tables import block_table, type_table
from initsuite.report.style import md_code, md_table, md_text
from initsuite.results.probe import (
    ProbeResult,
    models_in_order,
    probe_summary,
    schemes_in_order,
    series,
)

__all__ = [
    "BLOCKS_FIGURE",
    "PROBE_FIGURE",
    "check_dependencies",
    "probe_plan",
    "render_probe",
    "write_probe_report",
]

PROBE_FIGURE = "probe_std"
BLOCKS_FIGURE = "probe_blocks"


def _labelled(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` whose ``scheme`` is each row's legend label: the scheme, with its autocast
    precision when the table holds several (the figures of one model draw one line per
    scheme and precision)."""
    return table.assign(scheme=series(table)) if len(table) else table


def _blocks_caption(blocks: pd.DataFrame) -> str:
    text = (
        "One point per call of a known residual block (a transformer layer, a ResNet or "
        "ConvNeXt block: `initsuite.engine.roles.KNOWN_BLOCKS`), in execution order, one "
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
        parts.append(figure_block(BLOCKS_FIGURE, "The residual stream by block",
                                  _blocks_caption(blocks), number))  # fmt: skip
    parts.append(md_table(block_table(blocks)) + "\n")
    parts.append(
        "One row per scheme (`blocks.parquet`, `initsuite.results.columns.PROBE_BLOCKS`). *update "
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
    schemes = ", ".join(md_code(s) for s in schemes_in_order(frame))
    models = models_in_order(frame)
    lines = ["## Run", ""]
    if len(models) > 1:
        lines.append(f"- **Models:** {len(models)} (see *Models* below)")
    elif model:
        lines.append(
            f"- **Model:** {md_code(model.get('type', '?'))} from "
            f"{md_code(cfg.get('factory', '?'))}, {int(model.get('parameters', 0)):,} parameters, "
            f"{md_text(model.get('probed_modules', '?'))} probed modules"
        )
        src = model.get("source") or {}
        if src:
            lines.append(
                f"- **Built by:** {md_text(src.get('library'))} {md_text(src.get('version', '?'))} "
                f"from code and its shipped config, no download ({md_code(src.get('spec'))})"
            )
    if inp and len(models) == 1:
        shape = ",".join(str(n) for n in inp.get("shape", []))
        lines.append(f"- **Input:** one tensor of shape {md_text(shape)}, "
                     f"{md_text(inp.get('values', '?'))}")  # fmt: skip
    act = cfg.get("activation")
    lines.append(
        f"- **Schemes:** {schemes} (`as_built`: the model's own initialisation, as its "
        "library or factory built it; `default` in older directories)"
        + (f"; activation {md_code(act)} for gain=auto" if act else "")
    )
    precisions = list(dict.fromkeys(frame["autocast"].dropna()))
    if precisions != ["float32"]:
        lines.append(
            "- **Precisions:** " + ", ".join(md_code(p) for p in precisions) + " (the forward "
            "pass under `torch.autocast`; `float32`: none); each model probed at each"
        )
    if cfg:
        lines.append(
            f"- **Mode:** {md_text(cfg.get('mode'))}; **backward:** "
            f"{'yes' if cfg.get('backward') else 'no'}; **seed:** {md_text(cfg.get('seed'))}; "
            f"**device:** {md_text(cfg.get('device'))}; **dtype:** {md_text(cfg.get('dtype'))}; "
            f"**embeddings re-drawn:** {'yes' if cfg.get('include_embeddings') else 'no'}"
        )
    if env:
        lines.append(
            f"- **Versions:** initsuite {md_text(env.get('initsuite', '?'))}, torch "
            f"{md_text(env.get('torch', '?'))}, Python {md_text(env.get('python', '?'))}; "
            f"**date (UTC):** {md_text(env.get('utc_time', 'unknown'))}; **git commit:** "
            f"{md_text(env.get('git_commit') or 'unknown')}"
        )
    if meta.get("command"):
        lines.append(f"- **Command:** {md_code(meta['command'])}")
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
    if bool(frame["zero_by"].notna().any() or frame["grad_zero_by"].notna().any()):
        text += (
            " A caret at a panel's foot marks a zero branch: an output (or gradient) exactly "
            "0 because a parameter is zero by design (a residual branch's last norm weight or "
            "multiplier), not an underflow."
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
    return "—" if pd.isna(call) else f"{md_text(kind)} at call {int(call)} ({md_code(module)})"


def _summary_for_report(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`probe_summary` with each divergence in one readable column, the model and
    precision only when there are several, and no gradient columns without a backward
    pass."""
    s = probe_summary(frame)
    keys = [c for c in ("model", "autocast") if s[c].nunique() > 1]
    out = s[[*keys, "scheme", "calls", "modules", "reinitialised", "last_std"]].copy()
    out["first divergence"] = [
        _where(*r) for r in zip(s["divergence_call"], s["divergence_module"],
                                s["divergence_kind"], strict=True)]  # fmt: skip
    if bool(frame["grad_std"].notna().any()):
        out["first grad std"] = s["first_grad_std"]
        out["first grad divergence"] = [
            _where(*r) for r in zip(s["grad_divergence_call"], s["grad_divergence_module"],
                                    s["grad_divergence_kind"], strict=True)]  # fmt: skip
    if bool(s["zero_by"].notna().any()):
        out["zero branches"] = [md_code(z) if pd.notna(z) else "—" for z in s["zero_by"]]
    return out.rename(columns={"last_std": "last std"})


def _summary_markdown(frame: pd.DataFrame) -> str:
    """The summary table in Markdown: its divergence columns are Markdown already."""
    table = _summary_for_report(frame)
    written = [c for c in ("first divergence", "first grad divergence", "zero branches")
               if c in table.columns]  # fmt: skip
    return md_table(table, markdown=written) + "\n"


def _one_model(frame: pd.DataFrame, figures: list[str], blocks: pd.DataFrame | None) -> list[str]:
    """The sections of a probe of one model: its calls, blocks and module types."""
    parts = []
    if PROBE_FIGURE in figures:
        parts += [
            "## Figure\n",
            figure_block(PROBE_FIGURE, "Std by module call", _caption(frame), 1),
        ]
    parts += ["## Summary\n", _summary_markdown(frame), _summary_note(frame)]
    if blocks is not None and not blocks.empty:
        parts.append(_blocks_section(_labelled(blocks), figures,
                                     2 if PROBE_FIGURE in figures else 1))  # fmt: skip
    parts += ["## Median output std by module type\n", md_table(type_table(frame)) + "\n"]
    return parts


def _summary_note(frame: pd.DataFrame) -> str:
    return (
        (
            "One row per scheme. "
            if frame["model"].nunique() == 1 and frame["autocast"].nunique() == 1
            else "One row per model, scheme and precision probed. "
        )
        + "*calls*: rows of the table (a module called twice has two); "
        "*reinitialised*: modules whose weight the scheme drew (Linear, Conv, ConvTranspose, "
        "MultiheadAttention, Hugging Face's Conv1D; biases, norms and embeddings keep the "
        "model's own values unless embeddings were asked for); "
        "*last std*: the std of the last call's output; *first divergence*: the first call whose "
        "output overflowed (inf/nan) or underflowed (std below the dtype's smallest normal "
        "number), — if none; a zero branch is neither."
        + (
            " *first grad std*: the gradient at the first call's output, the end-to-end "
            "backward gain (R has std ≈ 1); *first grad divergence*: the first call, walking back "
            "from the output, whose gradient left the range."
            if bool(frame["grad_std"].notna().any())
            else ""
        )
        + (
            " *zero branches*: the parameters that are zero by design (timm's "
            "`zero_init_last`, torchvision's `zero_init_residual`, Fixup, SkipInit, ReZero) "
            "behind the outputs and gradients that are exactly 0 (`zero_by`, `grad_zero_by`)."
            if bool(frame["zero_by"].notna().any() or frame["grad_zero_by"].notna().any())
            else ""
        )
        + "\n"
    )


def render_probe(frame: pd.DataFrame, meta: Mapping[str, Any], figures: list[str],
                 blocks: pd.DataFrame | None = None) -> str:  # fmt: skip
    """report.md's text for a probe table, its metadata and the figures drawn (and its
    ``blocks`` table, when not empty); a table of several models (``--vary``, the zoo study)
    gets the sections comparing them instead of the per-call ones."""
    cfg: Mapping[str, Any] = meta.get("config", {}) or {}
    title = cfg.get("factory") or (meta.get("model", {}) or {}).get("type") or "model"
    if meta.get("study"):
        title = f"the {meta['study']} study"
    parts = [f"# initsuite probe: {md_text(title)}\n"]
    if len(models_in_order(frame)) > 1:  # opens with the verdict, ends with the summary
        parts += [verdict_section(frame, meta, figures, blocks), _run_section(frame, meta),
                  *models_sections(frame, meta, figures, blocks), "## Summary\n",
                  _summary_markdown(frame), _summary_note(frame)]  # fmt: skip
    else:
        parts.append(_run_section(frame, meta))
        parts += _one_model(_labelled(frame), figures, blocks)
    parts.append(
        "## How the numbers are made\n\n"
        "One forward pass (and, with backward, one backward pass) per model, scheme and "
        "precision, each on a fresh model from the factory built with torch's global RNG "
        "seeded with the seed (so every scheme starts from the same factory draw), with "
        "forward hooks on the probed modules. "
        "A call's output is its tensor, or the first floating-point tensor of a tuple, list or "
        "dict (Hugging Face outputs included). Std (correction=1) and mean are over all of "
        "its elements, accumulated in float64 so they cannot overflow before the data does. "
        "Gradients come from tensor hooks registered as each call returns (so an in-place "
        "op after it does not change what is recorded); hooks are removed and buffers such "
        "as BatchNorm's running statistics restored afterwards. `probe.parquet` holds every "
        "row (`initsuite.results.columns.PROBE`).\n"
    )
    return "\n".join(parts)


def write_probe_report(
    run_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    html: bool = False,
) -> Path:
    """Write ``report.md`` and its figures for the probe saved in ``run_dir`` (default: into
    ``run_dir``): for one model ``figures/probe_std.png`` and, when it has known residual
    blocks, ``figures/probe_blocks.png``; for several (``--vary``, the zoo study) the scaling
    figure of each swept model and the stream and gradient by block, model by model. All or
    nothing: drawn into a temporary directory inside it and moved into place
    (:func:`initsuite.results.store.staged`; an existing ``figures`` or ``report.md`` initsuite did
    not write is refused). With ``html``, also ``report.html``
    (:func:`~initsuite.report.plan.write_plan`).

    Returns:
        The path of ``report.md``.

    Raises:
        InitsuiteError: if ``run_dir`` is not a readable probe directory, ``out_dir`` cannot
            be written, or the plotting libraries are missing.
    """
    out = out_dir if out_dir is not None else run_dir
    return write_plan(probe_plan(ProbeResult.load(run_dir)), out, html=html, home=run_dir)


def probe_plan(result: ProbeResult) -> ReportPlan:
    """The report of a probe: its figures (those it has data for) and its text."""
    frame, meta, blocks = result.calls, result.meta, result.blocks
    if len(models_in_order(frame)) > 1:
        figures = models_figures(result)
    else:
        figures = []
        if bool(np.isfinite(frame["std"].astype(float)).any()):
            figures.append(PlannedFigure(PROBE_FIGURE, lambda: probe_std(_labelled(frame))))
        if bool(np.isfinite(blocks["stream_std"].astype(float)).any()):
            figures.append(PlannedFigure(BLOCKS_FIGURE, lambda: probe_blocks(_labelled(blocks))))
    text = render_probe(frame, meta, [f.name for f in figures], blocks)
    return ReportPlan(figures, text)

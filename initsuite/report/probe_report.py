"""The report of ``initsuite probe``: report.md over the tables and figures of
:mod:`~initsuite.report.probe_tables` and :mod:`~initsuite.report.probe_figures`, for one
model or for several (``--vary``, the zoo study).

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
from initsuite.report.plan import PlannedFigure, ReportPlan, write_plan
from initsuite.report.probe_figures import (
    blocks_by_model,
    probe_blocks,
    probe_scaling,
    probe_std,
)
from initsuite.report.probe_tables import (
    GRAD_LOST,
    block_table,
    scaling_table,
    type_table,
    varied,
    verdict_table,
)
from initsuite.report.style import md_code, md_table, md_text
from initsuite.results import columns as C
from initsuite.results.outputs import FIGURE_DIR
from initsuite.results.probe import (
    ProbeResult,
    models_in_order,
    probe_summary,
    schemes_in_order,
    series,
)

__all__ = [
    "BLOCKS_FIGURE",
    "BLOCK_GRAD_FIGURE",
    "BLOCK_STD_FIGURE",
    "PROBE_FIGURE",
    "SCALING_FIGURE",
    "check_dependencies",
    "probe_plan",
    "render_probe",
    "write_probe_report",
]

PROBE_FIGURE = "probe_std"
BLOCKS_FIGURE = "probe_blocks"
# a directory of several models (--vary, the zoo study)
SCALING_FIGURE = "probe_scaling"
BLOCK_STD_FIGURE = "probe_blocks_std"
BLOCK_GRAD_FIGURE = "probe_blocks_grad"


def _labelled(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` whose ``scheme`` is each row's legend label: the scheme, with its autocast
    precision when the table holds several (the figures of one model draw one line per
    scheme and precision)."""
    return table.assign(scheme=series(table)) if len(table) else table


# --- tables ----------------------------------------------------------------------------------


# --- figure ----------------------------------------------------------------------------------


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
        parts.append(
            f"![The residual stream by block]({FIGURE_DIR}/{BLOCKS_FIGURE}.png)\n\n"
            f"*Figure {number}: The residual stream by block.* {_blocks_caption(blocks)}\n"
        )
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
    return out.rename(columns={"last_std": "last std"})


def _summary_markdown(frame: pd.DataFrame) -> str:
    """The summary table in Markdown: its divergence columns are Markdown already."""
    table = _summary_for_report(frame)
    written = [c for c in ("first divergence", "first grad divergence") if c in table.columns]
    return md_table(table, markdown=written) + "\n"


def _verdict_markdown(frame: pd.DataFrame) -> str:
    """The model × scheme verdict in Markdown: its scheme columns are Markdown already."""
    table = verdict_table(frame)
    written = [c for c in table.columns if c not in ("model", "autocast")]
    return md_table(table, markdown=written) + "\n"


def _figure(name: str, title: str, number: int, caption: str) -> str:
    return f"![{title}]({FIGURE_DIR}/{name}.png)\n\n*Figure {number}: {title}.* {caption}\n"


def _one_model(frame: pd.DataFrame, figures: list[str], blocks: pd.DataFrame | None) -> list[str]:
    """The sections of a probe of one model: its calls, blocks and module types."""
    parts = []
    if PROBE_FIGURE in figures:
        parts += ["## Figure\n", _figure(PROBE_FIGURE, "Std by module call", 1, _caption(frame))]
    parts += ["## Summary\n", _summary_markdown(frame), _summary_note(frame)]
    if blocks is not None and not blocks.empty:
        parts.append(_blocks_section(_labelled(blocks), figures,
                                     2 if PROBE_FIGURE in figures else 1))  # fmt: skip
    parts += ["## Median output std by module type\n", md_table(type_table(frame)) + "\n"]
    return parts


def _models_table(meta: Mapping[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    """One row per model probed: its spec, parameters and input (from ``meta["models"]``;
    the table's models alone for a directory without it), and the architecture it stands
    for where the study recorded one (the zoo's ``stands_for``)."""
    entries = {str(m.get("model")): m for m in meta.get("models", []) or []
               if isinstance(m, dict)}  # fmt: skip
    config = meta.get("config")
    listed = config.get("models", []) if isinstance(config, Mapping) else []
    stands = {str(e.get("spec")): str(e["stands_for"]) for e in listed or []
              if isinstance(e, Mapping) and e.get("stands_for")}  # fmt: skip
    rows = []
    for model in models_in_order(frame):
        m = entries.get(model, {})
        shape = ",".join(str(n) for n in m.get("input_shape", []))
        size = f"{int(m['parameters']):,}" if "parameters" in m else "?"
        inputs = f"{shape} ({m.get('input_values', '?')})" if shape else "?"
        row = {"model": md_code(model), "parameters": size, "input": md_text(inputs)}
        if stands:
            row["stands for"] = md_text(stands.get(str(m.get("base", model)), ""))
        rows.append(row)
    return pd.DataFrame.from_records(rows)


_SCALING_CAPTION = (
    "One column per swept model, against the varied key (log scale for positive numbers; "
    "strings and lists in the order swept), one line per scheme. "
    "Top: std of the residual stream after the last block (of the last module's output for "
    "a model without known blocks): a scheme that keeps it flat keeps the signal's scale "
    "with depth; one that grows like √L adds a fixed variance per block. Bottom: std of the "
    "gradient at the first block's output, for Loss = Σ R ⊙ y (R ~ N(0, 1)): how much of "
    "the output's gradient reaches the bottom of the network. GPT-2 draws its residual "
    "output projections (`c_proj`) at 0.02/√(2L) (`gpt2`, and Hugging Face's `as_built`) "
    "against plain N(0, 0.02) everywhere (`normal:std=0.02`)."
)


def _several_models(frame: pd.DataFrame, meta: Mapping[str, Any], figures: list[str],
                    blocks: pd.DataFrame | None) -> list[str]:  # fmt: skip
    """The sections of a probe of several models (``--vary``, the zoo study)."""
    number = 0
    parts = ["## Models\n", md_table(_models_table(meta, frame), markdown=True) + "\n"]
    if varied(meta):
        table = scaling_table(frame, blocks if blocks is not None else
                              C.frame(C.PROBE_BLOCKS, []), meta)  # fmt: skip
        parts.append("## Scaling with the varied key\n")
        if SCALING_FIGURE in figures:
            number += 1
            parts.append(_figure(SCALING_FIGURE, "Stream and gradient against the varied key",
                                 number, _SCALING_CAPTION))  # fmt: skip
        one_key = table["key"].nunique() == 1
        key = str(table["key"].iloc[0]) if len(table) and one_key else "value"
        dropped = ["model", *(["key"] if one_key else []),
                   *(["base"] if table["base"].nunique() == 1 else []),
                   *(["autocast"] if table["autocast"].nunique() == 1 else []),
                   *(c for c in ("first_block_grad_std", "first_grad_std")
                     if table[c].isna().all())]  # fmt: skip
        shown = table.drop(columns=dropped).rename(columns={"value": key})
        parts.append(md_table(shown) + "\n")
    if blocks is not None and not blocks.empty:
        parts.append("## The residual stream, model by model\n")
        for name, title, text in (
            (BLOCK_STD_FIGURE, "Std of the residual stream by block",
             "std (log scale) of each known block's output, the residual stream after it"),
            (BLOCK_GRAD_FIGURE, "Gradient by block",
             "std (log scale) of the gradient at each known block's output"),
        ):  # fmt: skip
            if name in figures:
                number += 1
                parts.append(_figure(name, title, number,
                                     f"One panel per model with known residual blocks, one "
                                     f"line per scheme: {text}, in execution order "
                                     f"(`blocks.parquet`)."))  # fmt: skip
    parts += [
        "## Which model × scheme diverges or loses its gradient\n",
        _verdict_markdown(frame),
        "*overflow* / *underflow*: the first module whose output held inf/nan or fell below "
        "the dtype's smallest normal number (*gradient …*: walking back from the output); "
        f"*gradient lost*: the gradient reaching the first module has std below "
        f"{GRAD_LOST:g}; *ok* shows that gradient's std (R has std ≈ 1).\n",
        "## Summary\n", _summary_markdown(frame), _summary_note(frame),
    ]  # fmt: skip
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


def render_probe(frame: pd.DataFrame, meta: Mapping[str, Any], figures: list[str],
                 blocks: pd.DataFrame | None = None) -> str:  # fmt: skip
    """report.md's text for a probe table, its metadata and the figures drawn (and its
    ``blocks`` table, when not empty); a table of several models (``--vary``, the zoo study)
    gets the sections comparing them instead of the per-call ones."""
    cfg: Mapping[str, Any] = meta.get("config", {}) or {}
    title = cfg.get("factory") or (meta.get("model", {}) or {}).get("type") or "model"
    if meta.get("study"):
        title = f"the {meta['study']} study"
    parts = [f"# initsuite probe: {md_text(title)}\n", _run_section(frame, meta)]
    if len(models_in_order(frame)) > 1:
        parts += _several_models(frame, meta, figures, blocks)
    else:
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
    figures = []
    has_blocks = bool(np.isfinite(blocks["stream_std"].astype(float)).any())
    if len(models_in_order(frame)) > 1:
        table = scaling_table(frame, blocks, meta)
        if len(table):
            figures.append(PlannedFigure(SCALING_FIGURE, lambda: probe_scaling(table)))
        if has_blocks:
            figures.append(PlannedFigure(BLOCK_STD_FIGURE, lambda: blocks_by_model(
                blocks, "stream_std", "std of the stream")))  # fmt: skip
        if bool(np.isfinite(blocks["stream_grad_std"].astype(float)).any()):
            figures.append(PlannedFigure(BLOCK_GRAD_FIGURE, lambda: blocks_by_model(
                blocks, "stream_grad_std", "std of dLoss/d(block output)")))  # fmt: skip
    else:
        if bool(np.isfinite(frame["std"].astype(float)).any()):
            figures.append(PlannedFigure(PROBE_FIGURE, lambda: probe_std(_labelled(frame))))
        if has_blocks:
            figures.append(PlannedFigure(BLOCKS_FIGURE, lambda: probe_blocks(_labelled(blocks))))
    text = render_probe(frame, meta, [f.name for f in figures], blocks)
    return ReportPlan(figures, text)

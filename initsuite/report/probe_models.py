"""The sections and figures of the report of a probe of several models (``initsuite probe
--vary``, the zoo study): the verdict (:mod:`~initsuite.report.probe_verdict`), the models,
how the stream and the gradient scale with the varied key, and the stream block by block,
model by model. :mod:`~initsuite.report.probe_report` puts them in the report.

Never imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from initsuite.report.captions import figure_block
from initsuite.report.plan import PlannedFigure
from initsuite.report.probe_figures import blocks_by_model, probe_scaling
from initsuite.report.probe_tables import scaling_table, varied
from initsuite.report.probe_verdict import (
    model_names,
    pass_table,
    probe_verdict_figure,
    probe_verdict_section,
    stands_for,
)
from initsuite.report.style import md_code, md_table, md_text
from initsuite.report.verdict import VERDICT_FIGURE
from initsuite.results import columns as C
from initsuite.results.probe import ProbeResult, models_in_order

__all__ = [
    "BLOCK_GRAD_FIGURE",
    "BLOCK_STD_FIGURE",
    "SCALING_FIGURE",
    "models_figures",
    "models_sections",
    "verdict_section",
]

SCALING_FIGURE = "probe_scaling"
BLOCK_STD_FIGURE = "probe_blocks_std"
BLOCK_GRAD_FIGURE = "probe_blocks_grad"

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


def models_figures(result: ProbeResult) -> list[PlannedFigure]:
    """The figures of a probe of several models that have data to draw, in report order:
    the verdict, the scaling with the varied key, the stream and gradient by block."""
    frame, meta, blocks = result.calls, result.meta, result.blocks
    figures = []
    verdict = pass_table(frame, blocks)
    if len(verdict):
        names = model_names(meta, models_in_order(frame))
        figures.append(PlannedFigure(VERDICT_FIGURE, lambda: probe_verdict_figure(verdict, names)))
    table = scaling_table(frame, blocks, meta)
    if len(table):
        figures.append(PlannedFigure(SCALING_FIGURE, lambda: probe_scaling(table)))
    for name, column in ((BLOCK_STD_FIGURE, "stream_std"), (BLOCK_GRAD_FIGURE, "stream_grad_std")):
        if bool(np.isfinite(blocks[column].astype(float)).any()):
            label = C.label(column, C.PROBE_BLOCKS)
            figures.append(PlannedFigure(name, partial(blocks_by_model, blocks, column, label)))
    return figures


def _models_table(meta: Mapping[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    """One row per model probed: its spec, parameters and input (from ``meta["models"]``;
    the table's models alone for a directory without it), and the architecture it stands
    for where the study recorded one (the zoo's ``stands_for``)."""
    entries = {str(m.get("model")): m for m in meta.get("models", []) or []
               if isinstance(m, dict)}  # fmt: skip
    stands = stands_for(meta)
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


def _stand_ins(meta: Mapping[str, Any]) -> list[str]:
    """The paragraph naming each model probed through a stand-in (the zoo's
    ``meta["stand_ins"]``: its library missing), or none."""
    swaps = [s for s in meta.get("stand_ins", []) or [] if isinstance(s, dict)]
    if not swaps:
        return []
    lines = [f"- {md_code(str(s.get('stand_in')))} in place of {md_code(str(s.get('model')))}: "
             f"{md_text(str(s.get('reason', '')))}" for s in swaps]  # fmt: skip
    return [
        "**Stand-ins.** These models were probed through a Hugging Face build of the same "
        "architecture, their own library missing where the study ran:\n",
        *lines,
        "",
    ]


def _scaling_section(frame: pd.DataFrame, meta: Mapping[str, Any], figures: list[str],
                     blocks: pd.DataFrame, number: int) -> list[str]:  # fmt: skip
    """The scaling with the varied key: its figure (number ``number``) and its table."""
    table = scaling_table(frame, blocks, meta)
    parts = ["## Scaling with the varied key\n"]
    if SCALING_FIGURE in figures:
        parts.append(figure_block(SCALING_FIGURE, "Stream and gradient against the varied key",
                                  _SCALING_CAPTION, number))  # fmt: skip
    one_key = table["key"].nunique() == 1
    key = str(table["key"].iloc[0]) if len(table) and one_key else "value"
    dropped = ["model", *(["key"] if one_key else []),
               *(["base"] if table["base"].nunique() == 1 else []),
               *(["autocast"] if table["autocast"].nunique() == 1 else []),
               *(c for c in ("first_block_grad_std", "first_grad_std")
                 if table[c].isna().all())]  # fmt: skip
    shown = table.drop(columns=dropped).rename(columns={"value": key})
    return [*parts, md_table(shown) + "\n"]


def verdict_section(frame: pd.DataFrame, meta: Mapping[str, Any], figures: list[str],
                    blocks: pd.DataFrame | None) -> str:  # fmt: skip
    """The verdict the report of several models opens with (with its figure where drawn)."""
    blocks = blocks if blocks is not None else C.frame(C.PROBE_BLOCKS, [])
    return probe_verdict_section(frame, meta, blocks, figure=VERDICT_FIGURE in figures)


def models_sections(frame: pd.DataFrame, meta: Mapping[str, Any], figures: list[str],
                    blocks: pd.DataFrame | None) -> list[str]:  # fmt: skip
    """The sections of a probe of several models (``--vary``, the zoo study) between its
    run and its summary: the models, the scaling with the varied key (for a sweep) and the
    residual stream model by model (``figures``: the names of those drawn; the verdict's,
    figure 1, opens the report: :func:`verdict_section`)."""
    blocks = blocks if blocks is not None else C.frame(C.PROBE_BLOCKS, [])
    number = 1 if VERDICT_FIGURE in figures else 0
    parts = ["## Models\n", *_stand_ins(meta),
             md_table(_models_table(meta, frame), markdown=True) + "\n"]  # fmt: skip
    if varied(meta):
        number += SCALING_FIGURE in figures
        parts += _scaling_section(frame, meta, figures, blocks, number)
    if not blocks.empty:
        parts.append("## The residual stream, model by model\n")
        for name, title, text in (
            (BLOCK_STD_FIGURE, "Std of the residual stream by block",
             "std (log scale) of each known block's output, the residual stream after it"),
            (BLOCK_GRAD_FIGURE, "Gradient by block",
             "std (log scale) of the gradient at each known block's output"),
        ):  # fmt: skip
            if name in figures:
                number += 1
                parts.append(figure_block(name, title,
                                          f"One panel per model with known residual blocks, one "
                                          f"line per scheme: {text}, in execution order "
                                          f"(`blocks.parquet`).", number))  # fmt: skip
    return parts

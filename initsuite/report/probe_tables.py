"""The tables of a probe's report, made from its stored tables before anything is drawn:
median output std by module type, the residual stream per scheme, and for a directory of
several models (``initsuite probe --vary``, the zoo study) how the stream and the gradient
scale with the varied key and which model × scheme diverges or loses its gradient.

Never imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from initsuite.report.style import md_code, md_text
from initsuite.results.probe import GROUP, probe_summary, schemes_in_order

__all__ = [
    "GRAD_LOST",
    "block_ends",
    "block_table",
    "scaling_table",
    "type_table",
    "varied",
    "verdict_table",
]

GRAD_LOST = 1e-6
"""A pass *loses its gradient* when the gradient reaching its first module has less than this
std: a millionth of the output's (whose gradient R has std ≈ 1)."""


def block_ends(blocks: pd.DataFrame) -> pd.DataFrame:
    """Per pass (:data:`GROUP`), the residual stream at both ends of its blocks: its std
    entering the first block (``first_stream_in``: what the block added over its ratio to
    it; the block's output where it added nothing or the ratio is unknown), after the last
    (``final_stream_std``) and the gradient's std at the first block's output
    (``first_block_grad_std``) and at the last's (``last_block_grad_std``)."""
    columns = [*GROUP, "first_stream_in", "final_stream_std", "first_block_grad_std",
               "last_block_grad_std"]  # fmt: skip
    if blocks.empty:
        return pd.DataFrame(columns=columns)
    ordered = blocks.sort_values("block", kind="stable")
    # head/tail, not first/last: those skip NaN, and a NaN (an overflow) is the answer
    g = ordered.groupby(list(GROUP), sort=False, observed=True)
    tail = g.tail(1).set_index(list(GROUP))
    last = tail["stream_std"]
    head = g.head(1).set_index(list(GROUP))
    # update_ratio = update_std / (the input's std): the input's std again
    entering = head["update_std"].astype(float) / head["update_ratio"].astype(float)
    known = np.isfinite(entering) & (entering > 0)
    first_in = entering.where(known, head["stream_std"].astype(float))
    out = pd.DataFrame({"first_stream_in": first_in, "final_stream_std": last,
                        "first_block_grad_std": head["stream_grad_std"],
                        "last_block_grad_std": tail["stream_grad_std"]})  # fmt: skip
    return out.reset_index()[columns]


def varied(meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The entries of ``meta["models"]`` that belong to a sweep (their base has at least two
    models that took values), in probe order; [] for a directory without one."""
    models = meta.get("models")
    if not isinstance(models, list):
        return []
    entries = [m for m in models if isinstance(m, dict) and m.get("values")]
    count = pd.Series([str(m.get("base")) for m in entries]).value_counts()
    return [m for m in entries if count.get(str(m.get("base")), 0) >= 2]


def scaling_table(calls: pd.DataFrame, blocks: pd.DataFrame,
                  meta: Mapping[str, Any]) -> pd.DataFrame:  # fmt: skip
    """One row per pass of a swept model: ``base``, ``key`` (the first varied key) and its
    ``value``, ``model``, ``scheme``, ``autocast``, the std of the residual stream after the
    last block (``final_stream_std``; NaN without known blocks), of the last call's output
    (``last_std``), of the gradient at the first block's output (``first_block_grad_std``)
    and at the first call's (``first_grad_std``: the input end of the network)."""
    columns = ["base", "key", "value", "model", "scheme", "autocast", "final_stream_std",
               "last_std", "first_block_grad_std", "first_grad_std"]  # fmt: skip
    entries = varied(meta)
    if not entries:
        return pd.DataFrame(columns=columns)
    summary = probe_summary(calls)
    ends = block_ends(blocks)
    rows = []
    for m in entries:
        key, value = next(iter(m["values"].items()))
        for _, s in summary[summary["model"] == m["model"]].iterrows():
            end = ends[(ends["model"] == s["model"]) & (ends["scheme"] == s["scheme"])
                       & (ends["autocast"] == s["autocast"])]  # fmt: skip
            rows.append({
                "base": str(m["base"]), "key": str(key), "value": value, "model": s["model"],
                "scheme": s["scheme"], "autocast": s["autocast"],
                "final_stream_std": float(end["final_stream_std"].iloc[0]) if len(end)
                else math.nan,
                "last_std": float(s["last_std"]),
                "first_block_grad_std": float(end["first_block_grad_std"].iloc[0]) if len(end)
                else math.nan,
                "first_grad_std": float(s["first_grad_std"]),
            })  # fmt: skip
    return pd.DataFrame.from_records(rows, columns=columns)


def _verdict(row: pd.Series) -> str:
    """One pass's outcome in Markdown: where it diverged forward or backward, whether its
    gradient was lost, or ok; and the parameters behind its zero branches, if any."""
    if pd.notna(row["divergence_kind"]):
        return f"{md_text(row['divergence_kind'])} at {md_code(row['divergence_module'])}"
    if pd.notna(row["grad_divergence_kind"]):
        return (f"gradient {md_text(row['grad_divergence_kind'])} at "
                f"{md_code(row['grad_divergence_module'])}")  # fmt: skip
    grad = float(row["first_grad_std"])
    zero = f"; zero branch: {md_code(row['zero_by'])}" if pd.notna(row["zero_by"]) else ""
    if math.isnan(grad):
        return f"ok{zero}"
    if grad < GRAD_LOST:
        return f"gradient lost ({grad:.1e}){zero}"
    return f"ok ({grad:.2g}){zero}"


def verdict_table(calls: pd.DataFrame, schemes: Sequence[str] | None = None) -> pd.DataFrame:
    """Model (and precision) rows × scheme columns: where each pass first overflowed or
    underflowed (forward, then backward), ``gradient lost`` when the gradient reaching the
    first module is below :data:`GRAD_LOST`, else ``ok`` with that gradient's std; ``—``
    where the model was not probed with the scheme (the zoo's ``gpt2`` for text models,
    ``lsuv`` for images). The scheme columns are Markdown (the module as a code span)."""
    summary = probe_summary(calls)
    if summary.empty:
        return pd.DataFrame(columns=["model"])
    summary = summary.assign(verdict=[_verdict(r) for _, r in summary.iterrows()])
    index = ["model", "autocast"] if summary["autocast"].nunique() > 1 else ["model"]
    table = summary.pivot(index=index, columns="scheme", values="verdict")
    order = list(schemes) if schemes is not None else list(dict.fromkeys(summary["scheme"]))
    rows = list(dict.fromkeys(summary[index].itertuples(index=False, name=None)))
    table = table.loc[[r if len(r) > 1 else r[0] for r in rows],
                      [s for s in order if s in table.columns]]  # fmt: skip
    table = table.fillna("—")
    table.columns.name = None
    return table.reset_index()


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

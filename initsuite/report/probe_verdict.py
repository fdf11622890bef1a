"""The verdict the report of several probed models (``initsuite probe --vary``, the zoo study)
opens with, as the sweep's does (:mod:`initsuite.report.verdict`): per model (and precision)
and scheme, whether the pass *keeps* the residual stream, *drifts* or *diverges*.

A pass *diverges* when a module's output overflowed or underflowed (forward), or its gradient
did (backward): where is the module. It *drifts* when the stream's std grew or shrank by
more than :data:`~initsuite.report.verdict_text.BAND` between the first block's input and the last
block's output (without known residual blocks: between the first and the last call's output),
when the gradient's std did between the last block's output and the first's (its own factor
across the blocks, not its size, which depends on the loss; without blocks: between the
last call's output and the first's), or when its gradient was lost (below
:data:`~initsuite.report.probe_tables.GRAD_LOST` at the first module). It *keeps* it
otherwise. A zero branch (an output or gradient exactly 0 because a parameter is zero by
design: :mod:`initsuite.studies.zero_branch`) is none of these: the sentences name those
parameters apart. Read off the stored ``probe`` and ``blocks`` tables alone: a figure of the
statuses (the sweep's grid, :func:`~initsuite.report.verdict_figure.status_figure`), one
sentence per model (with where ``as_built`` stands among the schemes), then the model ×
scheme table, folded in ``report.html``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from initsuite.core.spec import format_value
from initsuite.report.captions import figure_block
from initsuite.report.html import folded
from initsuite.report.probe_tables import GRAD_LOST, block_ends, verdict_table
from initsuite.report.style import md_code, md_table, md_text
from initsuite.report.verdict import VERDICT_FIGURE
from initsuite.report.verdict_figure import cell_label, status_figure
from initsuite.report.verdict_text import BAND, listed, times
from initsuite.results import columns as C
from initsuite.results.probe import GROUP, models_in_order, probe_summary, schemes_in_order

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "TABLE_TITLE",
    "model_names",
    "pass_table",
    "probe_verdict_figure",
    "probe_verdict_section",
    "probe_verdict_sentences",
    "stands_for",
    "verdict_grid",
]

TABLE_TITLE = "Which model × scheme diverges or loses its gradient"
"""The folded title of the model × scheme table under the verdict."""
_STREAM, _OUTPUT = "the residual stream", "the output's std"  # what a factor measures
DEFAULT = "as_built"  # the scheme column of a model's own init (initsuite.studies.probe.DEFAULT)


def pass_table(calls: pd.DataFrame, blocks: pd.DataFrame,
               band: tuple[float, float] = BAND) -> pd.DataFrame:  # fmt: skip
    """One row per pass (:data:`~initsuite.results.probe.GROUP`), in probe order.

    Columns: ``model``, ``scheme``, ``autocast``, ``status`` (keeps, drifts or diverges),
    ``factor`` (the stream's std after the last block over its std entering the first; the
    last call's output std over the first call's without known blocks), ``basis`` (which of
    the two, ``stream`` or ``output``), ``gradient`` (the gradient's std at the first call's
    output; R has std ≈ 1), ``grad_factor`` (the gradient's std at the first block's output
    over at the last's; the first call's over the last call's without known blocks; NaN
    without a backward pass), ``kind`` and ``module`` (the first divergence, forward before
    backward), ``direction`` (forward, backward for a divergence, a lost gradient or a
    gradient out of the band, else null) and ``zero_by`` (the zero-by-design parameters
    behind its zero branches: :func:`~initsuite.results.probe.zero_summary`).
    """
    summary = probe_summary(calls)
    columns = [*GROUP, "status", "factor", "basis", "gradient", "grad_factor", "kind", "module",
               "direction", "zero_by"]  # fmt: skip
    if summary.empty:
        return pd.DataFrame(columns=columns)
    ends = block_ends(blocks).set_index(list(GROUP))
    ordered = calls[calls["numel"].notna()].sort_values("call", kind="stable")
    first = ordered.groupby(list(GROUP), sort=False, observed=True)["std"].first()
    grads = ordered[ordered["grad_std"].notna()].groupby(list(GROUP), sort=False,
                                                         observed=True)["grad_std"]  # fmt: skip
    grad_factor = grads.first() / grads.last()
    lo, hi = band
    rows = []
    for _, s in summary.iterrows():
        key = tuple(s[k] for k in GROUP)
        row: dict[str, Any] = {k: s[k] for k in GROUP}
        if key in ends.index:
            e = ends.loc[key]
            row.update(
                basis="stream",
                factor=float(e["final_stream_std"] / e["first_stream_in"]),
                grad_factor=float(e["first_block_grad_std"] / e["last_block_grad_std"]),
            )
        else:
            row.update(basis="output", factor=float(s["last_std"] / first.get(key, np.nan)),
                       grad_factor=float(grad_factor.get(key, np.nan)))  # fmt: skip
        row.update(gradient=float(s["first_grad_std"]), kind=None, module=None, direction=None,
                   zero_by=s["zero_by"])  # fmt: skip
        if pd.notna(s["divergence_kind"]):
            row.update(status="diverges", kind=s["divergence_kind"],
                       module=s["divergence_module"], direction="forward")  # fmt: skip
        elif pd.notna(s["grad_divergence_kind"]):
            row.update(status="diverges", kind=s["grad_divergence_kind"],
                       module=s["grad_divergence_module"], direction="backward")  # fmt: skip
        elif row["gradient"] < GRAD_LOST:  # NaN without a backward pass: not lost
            row.update(status="drifts", direction="backward")
        elif not lo <= row["factor"] <= hi:
            row["status"] = "drifts"
        elif np.isfinite(row["grad_factor"]) and not lo <= row["grad_factor"] <= hi:
            row.update(status="drifts", direction="backward")
        else:
            row["status"] = "keeps"
        rows.append(row)
    return pd.DataFrame.from_records(rows, columns=columns)


def stands_for(meta: Mapping[str, Any]) -> dict[str, str]:
    """What each model spec of a study stands for, where it recorded that (the zoo's
    ``config["models"]``: ``{"hf:resnet": "ResNet-50 (timm:resnet50, …)"}``)."""
    config = meta.get("config")
    listed = config.get("models", []) if isinstance(config, Mapping) else []
    return {str(e.get("spec")): str(e["stands_for"]) for e in listed or []
            if isinstance(e, Mapping) and e.get("stands_for")}  # fmt: skip


def model_names(meta: Mapping[str, Any], models: list[str]) -> dict[str, str]:
    """A short name per model for the verdict's rows and sentences: a zoo model by what it
    stands for (``ResNet-50``), else by its spec; a swept model by the same (its source's
    name for a spec: ``hf:gpt2``) and the values it took (``hf:gpt2, n_layer=12``); the spec
    wherever two would read alike."""
    entries = {str(m.get("model")): m for m in meta.get("models", []) or []
               if isinstance(m, Mapping)}  # fmt: skip
    # what it stands for, its first words: "GPT-2 at width 256, over depth (…)" → "GPT-2 at
    # width 256"
    stands = {spec: re.split(r" \(|, ", text)[0] for spec, text in stands_for(meta).items()}
    names = {}
    for model in models:
        entry = entries.get(model, {})
        values = entry.get("values")
        base = str(entry.get("base", model))
        if isinstance(values, Mapping) and values:
            at = ",".join(f"{k}={format_value(v)}" for k, v in values.items())
            names[model] = f"{stands.get(base) or base.split(',')[0]}, {at}"
        else:
            names[model] = stands.get(base) or model
    counts = pd.Series(list(names.values())).value_counts()
    return {m: n if counts[n] == 1 else m for m, n in names.items()}


def _row_key(table: pd.DataFrame, names: Mapping[str, str]) -> pd.Series:
    """Each pass's row of the grid: its model's name, with its precision where several."""
    row = table["model"].map(lambda m: names.get(str(m), str(m))).astype(str)
    if table["autocast"].nunique() > 1:
        row = row + " · " + table["autocast"].astype(str)
    return row


def _short(module: object, width: int = 18) -> str:
    """A module's name for a cell: its last dotted parts that fit ``width`` (``…h.3.mlp``)."""
    parts, out = str(module).split("."), ""
    for part in reversed(parts):
        if out and len(part) + len(out) + 1 > width:
            return f"…{out}"
        out = f"{part}.{out}" if out else part
    return out


def _label(r: pd.Series) -> str:
    if r["status"] == "diverges":
        return cell_label("diverges", kind=r["kind"], where=_short(r["module"]),
                          backward=r["direction"] == "backward")  # fmt: skip
    if r["direction"] == "backward":  # the gradient lost, or out of the band
        lost = r["gradient"] < GRAD_LOST
        label = cell_label(r["status"], factor=r["gradient" if lost else "grad_factor"],
                           backward=True)  # fmt: skip
    else:
        label = cell_label(r["status"], factor=r["factor"])
    return f"{label}\n0 by design" if pd.notna(r["zero_by"]) else label


def verdict_grid(table: pd.DataFrame,
                 names: Mapping[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """The figure's status and label of each pass of ``table`` (:func:`pass_table`): frames
    of models (their ``names``, by precision where several) × schemes, in probe order;
    missing where a model was not probed with a scheme."""
    t = table.assign(row=_row_key(table, names), label=[_label(r) for _, r in table.iterrows()])
    rows, columns = list(dict.fromkeys(t["row"])), schemes_in_order(t)
    grid = t.set_index(["row", "scheme"])
    status, labels = (grid[c].unstack().reindex(rows, columns=columns) for c in ("status", "label"))
    return status, labels


def _xlabel(table: pd.DataFrame) -> str:
    """What the factors are, in the schema's words (:func:`initsuite.results.columns.label`)."""
    parts = []
    if (table["basis"] == "stream").any():
        stream = C.label("stream_std", C.PROBE_BLOCKS)
        parts.append(f"factor: {stream}, the last block over the first's input")
    if (table["basis"] == "output").any():
        output = C.label("std", C.PROBE)
        without = "without known blocks, " if parts else "factor: "
        parts.append(f"{without}{output}, the last call over the first")
    if ((table["status"] == "drifts") & (table["direction"] == "backward")).any():
        parts.append(
            f"∇: {C.label('grad_std', C.PROBE)}, the first block over the last "
            "(lost: at the first call)"
        )
    return "; ".join(parts)


def probe_verdict_figure(table: pd.DataFrame, names: Mapping[str, str]) -> Figure:
    """Models (by precision where several) as rows, schemes as columns, each pass coloured
    keeps, drifts or diverges (:data:`~initsuite.report.verdict_figure.STATUS_COLORS`) and
    labelled with its factor, its lost gradient's std (∇) or its divergence's kind and module.

    Args:
        table: :func:`pass_table`'s frame.
        names: each model's row name (:func:`model_names`).
    """
    status, labels = verdict_grid(table, names)
    return status_figure(status, labels, _xlabel(table))


# --- one sentence per model -------------------------------------------------------------------


def _span(values: pd.Series) -> str:
    """One factor, or the range of several (``×1.1 to ×3``)."""
    lo, hi = times(float(values.min())), times(float(values.max()))
    return lo if lo == hi else f"{lo} to {hi}"


def _outcome(r: pd.Series) -> tuple[str, str]:
    """What a pass says, as a clause's key: (verb, direction)."""
    if r["status"] == "keeps":
        return ("keep", "")
    if r["status"] == "drifts":
        if r["direction"] == "backward":
            if r["gradient"] < GRAD_LOST:
                return ("lose", "backward")
            return ("shrink" if r["grad_factor"] < 1 else "grow", "gradient")
        return ("shrink" if r["factor"] < 1 else "grow", "")
    kind = str(r["kind"])
    verb = kind if kind in C.DIVERGENCE_KINDS else f"diverge ({md_text(kind)})"
    return (verb, str(r["direction"]))


def _clause(key: tuple[str, str], rows: pd.DataFrame, what: str) -> str:
    """One outcome of one model: its schemes, its verb and its numbers."""
    plural = len(rows) > 1
    verb, *rest = key[0].split(" ", 1)
    if not plural:
        verb += "es" if verb.endswith(("sh", "ss")) else "s"
    head = f"{listed([md_text(s) for s in rows['scheme']])} {' '.join([verb, *rest])}"
    if key == ("keep", ""):
        grads = rows["grad_factor"][np.isfinite(rows["grad_factor"].astype(float))]
        both = f" and the gradient ({_span(grads)})" if len(grads) else ""
        return f"{head} {what} ({_span(rows['factor'])}){both}"
    if key[1] == "gradient":
        where = "block" if (rows["basis"] == "stream").all() else "call"
        return (f"{head} the gradient ({_span(rows['grad_factor'])} from the last {where} to "
                "the first)")  # fmt: skip
    if key[0] in ("grow", "shrink"):
        return f"{head} {what} ({_span(rows['factor'])})"
    if key[0] == "lose":
        return f"{head} the gradient ({_span(rows['gradient'])} at the first module)"
    where = ", ".join(md_code(m) for m in dict.fromkeys(rows["module"].astype(str)))
    return f"{head}{' backward' if key[1] == 'backward' else ''} (at {where})"


def _standing(g: pd.DataFrame) -> str | None:
    """Where ``as_built`` stands among the schemes of one model's passes ``g``; None
    without it or without other schemes."""
    if DEFAULT not in set(g["scheme"]) or g["scheme"].nunique() < 2:
        return None
    own = g[g["scheme"] == DEFAULT].iloc[0]
    keepers = [md_text(x) for x in g.loc[(g["status"] == "keeps") & (g["scheme"] != DEFAULT),
                                         "scheme"]]  # fmt: skip
    if own["status"] == "keeps" and len(keepers) == g["scheme"].nunique() - 1 > 1:
        return "as built it keeps both, as every scheme here does"
    if own["status"] == "keeps":
        others = (
            f"as {listed(keepers)} {'does' if len(keepers) == 1 else 'do'}" if keepers else "alone"
        )
        return f"as built it keeps both, {others}"
    status = "drifts" if own["status"] == "drifts" else "diverges"
    if keepers:
        verb = "keeps" if len(keepers) == 1 else "keep"
        return f"as built it {status}, where {listed(keepers)} {verb} both"
    return f"as built it {status}, and no scheme keeps both"


def _zero_sentence(g: pd.DataFrame) -> str | None:
    """The parameters that are zero by design in one model's passes, and under which schemes
    (``as_built`` first), as one clause; None if none."""
    zero = g[g["zero_by"].notna()]
    if zero.empty:
        return None
    parts = []
    for patterns, rows in zero.groupby("zero_by", sort=False):
        who = [("as built" if x == DEFAULT else f"under {md_text(x)}") for x in rows["scheme"]]
        names = ", ".join(md_code(p.strip()) for p in str(patterns).split(", "))
        parts.append(f"{names} = 0 {listed(who)}")
    return ("zero by design, each such branch starting at 0 (a zero branch, not an "
            f"underflow): {'; '.join(parts)}")  # fmt: skip


def probe_verdict_sentences(table: pd.DataFrame, names: Mapping[str, str]) -> list[str]:
    """One plain sentence (Markdown) per model (and precision) of ``table``
    (:func:`pass_table`): which schemes keep the residual stream (or the output's std) and
    the gradient and by what factors, which grow or shrink either and by how much, which lose
    the gradient, which diverge and at which module; where ``as_built`` stands among them;
    and which parameters are zero by design. ``names``: each model's (:func:`model_names`)."""
    out = []
    t = table.assign(row=_row_key(table, names))
    for row, g in t.groupby("row", sort=False):
        keys = [_outcome(r) for _, r in g.iterrows()]
        order = sorted(set(keys), key=lambda k: (k[0] != "keep", keys.index(k)))
        what = _STREAM if (g["basis"] == "stream").all() else _OUTPUT
        clauses = []
        for k in order:
            clauses.append(_clause(k, g[[x == k for x in keys]], what))
            what = "it"  # named once, in the first clause that names it
        extra = [x for x in (_standing(g), _zero_sentence(g)) if x]
        out.append(f"{md_text(row)}: {'; '.join(clauses)}."
                   + "".join(f" {x[0].upper()}{x[1:]}." for x in extra))  # fmt: skip
    return out


def _caption(table: pd.DataFrame, band: tuple[float, float]) -> str:
    rows = "model and precision" if table["autocast"].nunique() > 1 else "model"
    return (
        f"One row per {rows}, one column per scheme; green keeps, amber drifts, red diverges. "
        "A cell reads the factor by which the residual stream's std changed from the first "
        "block's input to the last block's output (without known residual blocks: the "
        f"output's std, from the first call's to the last's): within {band[0]:g}-{band[1]:g}× "
        "it keeps, outside it drifts. With a backward pass the gradient's std must stay in "
        "the band too, from the last block's output to the first's: ∇ and its factor where "
        "it does not, or ∇ and the gradient's std at the first call where the gradient was "
        f"lost (below {GRAD_LOST:g}; R has std ≈ 1): it drifts. Or the kind of the "
        "first divergence (an inf/nan, or a std below the dtype's smallest normal number) and "
        "the module's last dotted parts (∇: the gradient's, walking back from the output). "
        "*0 by design*: the pass has zero branches (outputs or gradients exactly 0 because a "
        "parameter is zero by design, e.g. timm's `zero_init_last`), which are not divergences."
    )


def probe_verdict_section(calls: pd.DataFrame, meta: Mapping[str, Any], blocks: pd.DataFrame,
                          figure: bool = False) -> str:  # fmt: skip
    """The opening section of the report of several models: the statuses at a glance (the
    figure, with ``figure``), one sentence per model, then the model × scheme table
    (:func:`~initsuite.report.probe_tables.verdict_table`), folded in ``report.html``."""
    table = pass_table(calls, blocks)
    lines = ["## Verdict\n"]
    if table.empty:
        return "\n".join([*lines, "No pass was recorded: nothing to judge.\n"])
    names = model_names(meta, models_in_order(calls))
    if figure:
        glance = _caption(table, BAND)
        lines.append(figure_block(VERDICT_FIGURE, "The verdict at a glance", glance, 1))
    lines.append("\n".join(f"- {s}" for s in probe_verdict_sentences(table, names)) + "\n")
    shown = verdict_table(calls)
    written = [c for c in shown.columns if c not in ("model", "autocast")]
    note = (
        "*overflow* / *underflow*: the first module whose output held inf/nan or fell below "
        "the dtype's smallest normal number (*gradient …*: walking back from the output); "
        f"*gradient lost*: the gradient reaching the first module has std below "
        f"{GRAD_LOST:g}; *ok* shows that gradient's std (R has std ≈ 1); *zero branch*: the "
        "parameters that are zero by design behind outputs or gradients that are exactly 0 "
        "(not an underflow)."
    )
    lines.append(folded(TABLE_TITLE, f"{md_table(shown, markdown=written)}\n\n{note}"))
    return "\n".join(lines)

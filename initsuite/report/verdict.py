"""The verdict a sweep's report opens with: which schemes keep each activation stable at depth.

Read off the stored ``cells`` table alone, at the deepest depth and largest width of each
architecture (where the mean-field picture holds best). A scheme *keeps* an activation when
none of those cells diverged and the medians over seeds stayed within :data:`BAND` of where
they started, forward (``final_std / input_std``) and, with ``--backward``, backward
(``input_grad_std``: the read-out R ~ N(0, 1) starts the gradient at std 1). It *diverges*
when a cell overflowed, underflowed or crossed a threshold, forward or backward; the verdict
gives where and how, beside the mean-field prediction's layer. It *drifts* otherwise: finite,
but out of the band. A tidy frame first (:func:`verdict_table`), then what the report shows
(:func:`verdict_section`): a figure of the statuses at a glance
(:func:`initsuite.report.verdict_figure.verdict_figure`), one sentence per activation
(:func:`~initsuite.report.verdict_text.verdict_sentences`), and the table, folded in
``report.html``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from initsuite.report.captions import figure_block
from initsuite.report.comparison import headline
from initsuite.report.html import folded
from initsuite.report.selection import with_arch
from initsuite.report.style import md_table
from initsuite.report.verdict_text import BAND, verdict_sentences

if TYPE_CHECKING:
    from initsuite.results.comparison import Comparison
    from initsuite.results.sweep import SweepResult

__all__ = ["STATUSES", "VERDICT_FIGURE", "verdict_section", "verdict_table"]

STATUSES = ("keeps", "drifts", "diverges", "failed")
VERDICT_FIGURE = "verdict"
"""The verdict's figure (``figures/verdict.png``): the statuses at a glance."""


def _has(df: pd.DataFrame, column: str) -> bool:
    return column in df.columns and bool(df[column].notna().any())


def _median_int(values: pd.Series) -> int | None:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return round(float(v.median())) if len(v) else None


def _kinds(values: pd.Series) -> str:
    seen = [str(k) for k in values.dropna().unique()]
    return "/".join(sorted(seen))


def _median(df: pd.DataFrame, column: str, per: pd.Series | None = None) -> float:
    """Median of ``column`` (divided by ``per``) over ``df``; NaN without the column."""
    if not _has(df, column):
        return math.nan
    values = df[column] if per is None else df[column] / per
    return float(values.median())


def verdict_table(cells: pd.DataFrame, band: tuple[float, float] = BAND) -> pd.DataFrame:
    """One row per (arch, activation, scheme) at its deepest depth and largest width, seeds,
    devices and dtypes pooled.

    Columns: ``arch``, ``activation``, ``scheme``, ``depth``, ``cells``, ``status`` (keeps,
    drifts, diverges or failed), ``signal`` and ``gradient`` (medians over the cells that ran
    of final_std / input_std and of input_grad_std: factors, 1 = unchanged; NaN without
    them), ``theory_signal`` and ``theory_gradient`` (the same from the mean-field
    predictions ``theory_final_std`` and ``theory_input_grad_std``), ``diverged`` (cells that
    did), ``layer`` and ``kind`` (median layer and kinds of
    the first divergence, forward before backward), ``theory_layer`` (the mean-field
    prediction's median divergence layer; NaN where it predicts none or has no theory) and
    ``direction`` (forward or backward).
    """
    cells = with_arch(cells)
    cells = cells.assign(arch=cells["arch"].astype(str))
    rows = [_verdict_row(key, g, band)
            for key, g in cells.groupby(["arch", "activation", "scheme"], observed=True,
                                        sort=True)]  # fmt: skip
    columns = ["arch", "activation", "scheme", "depth", "width", "cells", "status", "signal",
               "gradient", "theory_signal", "theory_gradient", "diverged", "layer", "kind",
               "theory_layer", "direction"]  # fmt: skip
    out = pd.DataFrame.from_records(rows, columns=columns)
    for c in ("layer", "theory_layer"):
        out[c] = out[c].astype("Int64")
    return out


def _verdict_row(key: tuple[Any, ...], g: pd.DataFrame,
                 band: tuple[float, float]) -> dict[str, object]:  # fmt: skip
    """The :func:`verdict_table` row of the cells ``g`` of one (arch, activation, scheme)."""
    lo, hi = band
    a, act, scheme = key
    g = g[g["depth"] == g["depth"].max()]
    g = g[g["width"] == g["width"].max()]  # where the mean-field picture holds best
    ok = g[g["error"].isna()] if "error" in g.columns else g
    row: dict[str, object] = {"arch": a, "activation": str(act), "scheme": str(scheme),
                              "depth": int(g["depth"].max()), "width": int(g["width"].max()),
                              "cells": len(g)}  # fmt: skip
    signal = ok["final_std"] / ok["input_std"]
    grad = ok["input_grad_std"] if _has(ok, "input_grad_std") else None
    fwd = ok["divergence_kind"].notna()
    bwd = fwd & False  # no backward pass: nothing diverged backward
    if _has(ok, "grad_divergence_kind"):
        bwd = ok["grad_divergence_kind"].notna()
    row["signal"] = float(signal.median()) if len(ok) else math.nan
    row["gradient"] = float(grad.median()) if grad is not None and len(ok) else math.nan
    row["theory_signal"] = _median(ok, "theory_final_std", ok["input_std"])
    row["theory_gradient"] = _median(ok, "theory_input_grad_std")
    row["diverged"] = int((fwd | bwd).sum())
    row.update(layer=None, kind=None, theory_layer=None, direction=None)
    if ok.empty:
        row["status"] = "failed"
    elif bool(fwd.any()):
        row.update(status="diverges", direction="forward",
                   layer=_median_int(ok.loc[fwd, "divergence_layer"]),
                   kind=_kinds(ok.loc[fwd, "divergence_kind"]))  # fmt: skip
        if _has(ok, "theory_divergence_layer"):
            row["theory_layer"] = _median_int(ok["theory_divergence_layer"])
    elif bool(bwd.any()):
        row.update(status="diverges", direction="backward",
                   layer=_median_int(ok.loc[bwd, "grad_divergence_layer"]),
                   kind=_kinds(ok.loc[bwd, "grad_divergence_kind"]))  # fmt: skip
    else:  # the medians over seeds: one unlucky seed does not make a scheme drift
        inside = lo <= row["signal"] <= hi  # type: ignore[operator]
        if grad is not None:
            inside = inside and lo <= row["gradient"] <= hi  # type: ignore[operator]
        row["status"] = "keeps" if inside else "drifts"
    return row


def _factor(x: float) -> str:
    if not np.isfinite(x):
        return "non-finite"
    return f"{x:.2g}×"


def _diverging(r: pd.Series, theory: bool) -> str:
    """``scheme: kind @layer`` (gradient: counted from the output), the share of cells when
    not all diverged, and the theory's layer where a prediction applies."""
    how = f"{r['kind']} @{r['layer']}"
    if r["direction"] == "backward":
        how = f"gradient {how}"
    if r["diverged"] != r["cells"]:
        how += f" in {r['diverged']}/{r['cells']}"
    applies = pd.notna(r["theory_layer"]) or bool(np.isfinite(r["theory_signal"]))
    if theory and r["direction"] == "forward" and applies:
        t = r["theory_layer"]
        how += " (theory: none)" if pd.isna(t) else f" (theory {t})"
    return f"{r['scheme']}: {how}"


def _drifting(r: pd.Series) -> str:
    """``scheme: signal[/gradient] factors``, the theory's in brackets where it applies."""
    pairs = [(r["signal"], r["theory_signal"])]
    if np.isfinite(r["gradient"]):
        pairs.append((r["gradient"], r["theory_gradient"]))
    measured = "/".join(_factor(m) for m, _ in pairs)
    predicted = [t for _, t in pairs]
    theory = ""
    if all(np.isfinite(t) for t in predicted):
        theory = " [" + "/".join(_factor(t) for t in predicted) + "]"
    return f"{r['scheme']}: {measured}{theory}"


def _row(keys: list[str], key: object, g: pd.DataFrame, has_theory: bool) -> dict[str, str]:
    """One line of the verdict: the schemes of one (arch,) activation by status."""
    values = key if isinstance(key, tuple) else (key,)
    row = {k: str(v) for k, v in zip(keys, values, strict=True)}
    by = {status: g[g["status"] == status] for status in STATUSES}
    row["keeps"] = ", ".join(by["keeps"]["scheme"]) or "none"
    diverging = [_diverging(r, has_theory) for _, r in by["diverges"].iterrows()]
    row["diverges"] = "; ".join(diverging) or "—"
    drifting = [_drifting(r) for _, r in by["drifts"].iterrows()]
    drifting += [f"{s} (failed)" for s in by["failed"]["scheme"]]
    row["drifts"] = "; ".join(drifting) or "—"
    return row


def verdict_section(result: SweepResult, comparison: Comparison | None = None,
                    band: tuple[float, float] = BAND, figure: bool = False) -> str:  # fmt: skip
    """The report's opening section: the statuses at a glance (the figure, with ``figure``:
    its definitions as its caption), one sentence per activation (and architecture), then
    the table (folded in ``report.html``): per activation, the schemes that keep the signal
    and gradients within ``band`` at the deepest depth, those that diverge (where and how,
    with the theory's layer) and those that drift; then what changed since the compared run."""
    table = verdict_table(result.cells, band)
    lo, hi = band
    backward = _has(result.cells, "input_grad_std")
    has_theory = _has(result.cells, "theory_divergence_layer")
    what = "signal and gradient" if backward else "signal"
    lines = ["## Verdict\n"]
    if table.empty:
        return "\n".join([*lines, "No cell ran: nothing to judge.\n"])
    several = table["arch"].nunique() > 1
    grids = sorted(set(zip(table["depth"], table["width"], strict=True)))
    at = "each architecture's deepest depth and largest width"
    if len(grids) == 1:
        at = f"depth {grids[0][0]} and width {grids[0][1]} (the deepest and widest cells)"
    measured = "final std / input std"
    if backward:
        measured += "; the gradient: std of dLoss/dx against the read-out's 1"
    reading = (
        f"At {at}, a scheme **keeps** an activation when its {what} std end within "
        f"{lo:g}-{hi:g}× of where they started (medians over seeds; {measured}). It "
        "**diverges** when a cell overflowed or underflowed (or crossed a threshold): at which "
        "layer (median over the cells that did; a gradient's counted from the input side "
        "like the forward's), and the mean-field prediction's layer where one applies. It "
        "**drifts** when it stayed finite but left the band: by how much"
        f"{' (signal/gradient)' if backward else ''}, the prediction's in brackets."
    )
    if figure:
        columns = "activation and architecture" if several else "activation"
        glance = (
            f"One row per scheme, one column per {columns}; green keeps, amber drifts, red "
            "diverges, grey failed with an error. A cell reads the factor of its std (∇: of its "
            "gradient, where only that left the band), or the kind and layer of its "
            "divergence. " + reading.replace("in brackets", "in the table below")
        )
        lines.append(figure_block(VERDICT_FIGURE, "The verdict at a glance", glance, 1))
    lines.append("\n".join(f"- {s}" for s in verdict_sentences(table, band)) + "\n")
    keys = ["arch", "activation"] if several else ["activation"]
    out_rows = [_row(keys, key, g, has_theory)
                for key, g in table.groupby(keys, sort=False, observed=True)]  # fmt: skip
    shown = pd.DataFrame.from_records(out_rows).rename(columns={
        "keeps": f"keep the {what} within {lo:g}-{hi:g}×",
        "diverges": "diverge: kind @layer (theory's layer)",
        "drifts": "drift: factor [theory's]",
    })  # fmt: skip
    body = md_table(shown) if figure else f"{reading}\n\n{md_table(shown)}"
    lines.append(folded("The verdict as a table", body))
    if comparison is not None:
        lines.append(f"Since the compared run: {headline(comparison)} (see *Compared with*).\n")
    return "\n".join(lines)

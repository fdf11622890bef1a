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
(:func:`verdict_sentences`), and the table, folded in ``report.html``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from initsuite.report.captions import figure_block
from initsuite.report.comparison import headline
from initsuite.report.families import namesake
from initsuite.report.html import folded
from initsuite.report.style import md_table, md_text

if TYPE_CHECKING:
    from initsuite.results.comparison import Comparison
    from initsuite.results.sweep import SweepResult

__all__ = [
    "BAND",
    "VERDICT_FIGURE",
    "times",
    "verdict_section",
    "verdict_sentences",
    "verdict_table",
]

BAND = (0.1, 10.0)
"""A cell keeps its signal when its std ends within this factor of where it started."""

STATUSES = ("keeps", "drifts", "diverges", "failed")
VERDICT_FIGURE = "verdict"
"""The verdict's figure (``figures/verdict.png``): the statuses at a glance."""
AGREES = 10.0
"""A drift is "as the theory predicts" when the measured factor is within this factor of the
mean-field one: the same order of magnitude (over depth, seeds scatter a product of many
random factors)."""


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
    arch = cells["arch"] if "arch" in cells.columns else pd.Series("mlp", index=cells.index)
    cells = cells.assign(arch=arch.astype(str))
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


# --- one sentence per activation --------------------------------------------------------------

_VERBS = {"keep": "keeps", "vanish": "vanishes", "grow": "grows", "overflow": "overflows",
          "underflow": "underflows", "explode": "explodes", "fail": "fails",
          "diverge": "diverges"}  # fmt: skip


def _listed(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _who(schemes: list[str], everyone: list[str]) -> tuple[str, bool]:
    """The subject naming ``schemes``, a group named once where all of the activation's
    schemes (``everyone``) of one namesake (:func:`~initsuite.report.families.namesake`, two or
    more) are in it; and whether it is plural."""
    groups: dict[str, list[str]] = {}
    for s in everyone:
        if (n := namesake(s)) is not None:
            groups.setdefault(n, []).append(s)
    whole = {n for n, members in groups.items()
             if len(members) > 1 and set(members) <= set(schemes)}  # fmt: skip
    names = [md_text(s) for s in schemes if namesake(s) not in whole]
    named = [md_text(n) for n in sorted(whole)]
    if named:
        group = f"the {_listed(named)} schemes"
        names = [group, *names]
    return _listed(names), len(names) > 1 or bool(named)


def times(x: float) -> str:
    """A factor as prose writes it, to two significant digits: ``×0.5``, ``×12``,
    ``×3.2e-31``, ``×1e6``."""
    if not np.isfinite(x):
        return "non-finite"
    if x == 0 or 0.01 <= abs(x) < 100:
        return f"×{x:.2g}"
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"×{mantissa.removesuffix('.0')}e{int(exponent)}"


def _span(values: list[Any], fmt: Callable[[Any], str]) -> str:
    """One value, or the range of several (``×1e-31`` / ``×1e-31 to ×4e-30``)."""
    lo, hi = fmt(min(values)), fmt(max(values))
    return lo if lo == hi else f"{lo} to {hi}"


def _out_of_band(r: pd.Series, band: tuple[float, float]) -> tuple[str, float, float]:
    """A drift's direction (vanish or grow, and where only the gradient left the band,
    ``backward``), the factor that left and the theory's for it."""
    lo, _ = band
    signal_in = bool(band[0] <= r["signal"] <= band[1])
    factor, theory = ((r["gradient"], r["theory_gradient"]) if signal_in
                      else (r["signal"], r["theory_signal"]))  # fmt: skip
    verb = "vanish" if factor < lo else "grow"
    return (f"{verb} backward" if signal_in else verb), float(factor), float(theory)


def _clause(key: tuple[str, ...], rows: pd.DataFrame, everyone: list[str], what: str,
            band: tuple[float, float]) -> str:  # fmt: skip
    """One outcome of one activation: its schemes, its verb and its numbers."""
    who, plural = _who(list(rows["scheme"]), everyone)
    verb, *rest = key[0].split(" ", 1)
    verb = verb if plural else _VERBS.get(verb, verb + "s")
    head = f"{who} {' '.join([verb, *rest])}"
    if key[0] == "keep":
        return f"{head} the {what}"
    if key[0] == "fail":
        return f"{head} with an error"
    if key[0].startswith(("vanish", "grow")):
        factors = [_out_of_band(r, band) for _, r in rows.iterrows()]
        measured = _span([f for _, f, _ in factors], times)
        theory = [t for _, _, t in factors]
        if not all(np.isfinite(t) and t > 0 for t in theory):
            return f"{head} ({measured})"
        agree = all(1 / AGREES <= f / t <= AGREES for _, f, t in factors)
        said = "as the theory predicts" if agree else f"theory {_span(theory, times)}"
        return f"{head} ({measured}, {said})"
    layers = [int(x) for x in rows["layer"].dropna()]
    where = f"at layer{'s' if len(set(layers)) > 1 else ''} {_span(layers, str)}" if layers else ""
    some = (rows["diverged"] < rows["cells"]).any()
    head = f"{head} in some seeds" if some else head
    predicted = [int(x) for x in rows["theory_layer"].dropna()]
    applies = bool(rows["theory_layer"].notna().any() or np.isfinite(rows["theory_signal"]).any())
    if key[1] == "forward" and applies:
        where += f", theory {_span(predicted, str)}" if predicted else ", theory none"
    return f"{head} ({where})" if where else head


def _outcome(r: pd.Series, band: tuple[float, float]) -> tuple[str, ...]:
    """What a verdict row says, as a clause's key: (verb phrase,) or, for a divergence,
    (verb phrase, direction)."""
    if r["status"] == "keeps":
        return ("keep",)
    if r["status"] == "failed":
        return ("fail",)
    if r["status"] == "drifts":
        return (_out_of_band(r, band)[0],)
    kind = str(r["kind"])
    verb = kind if kind in _VERBS else f"diverge ({md_text(str(kind))})"
    return (f"{verb} backward" if r["direction"] == "backward" else verb, str(r["direction"]))


def _by_magnitude(keys: list[tuple[str, ...]], g: pd.DataFrame,
                  band: tuple[float, float]) -> list[tuple[str, ...]]:  # fmt: skip
    """``keys`` with each drift's split where its factors (sorted) jump by more than
    :data:`AGREES`: one clause names schemes that drift alike, not ×1e-24 beside ×1e-10."""
    factors = [_out_of_band(r, band)[1] if k[0].startswith(("vanish", "grow")) else math.nan
               for k, (_, r) in zip(keys, g.iterrows(), strict=True)]  # fmt: skip
    out = list(keys)
    for verb in {k[0] for k, f in zip(keys, factors, strict=True) if np.isfinite(f)}:
        mine = sorted((f, i) for i, (k, f) in enumerate(zip(keys, factors, strict=True))
                      if k[0] == verb and np.isfinite(f))  # fmt: skip
        cluster, last = 0, mine[0][0]
        for f, i in mine:
            cluster += abs(f) > AGREES * abs(last)  # a jump of more than AGREES: a new clause
            out[i], last = (verb, str(cluster)), f
    return out


def verdict_sentences(table: pd.DataFrame, band: tuple[float, float] = BAND) -> list[str]:
    """One plain sentence (Markdown) per activation (and architecture) of ``table``
    (:func:`verdict_table`): which schemes keep the signal, which vanish or grow and by how
    much (as the theory predicts, or what it predicts), which diverge and where. A namesake's
    schemes (the Xavier schemes) are named once where all of them agree.

        >>> t = pd.DataFrame({"arch": "mlp", "activation": "relu", "depth": 200,
        ...     "scheme": ["kaiming_normal", "xavier_normal", "xavier_uniform"],
        ...     "status": ["keeps", "drifts", "drifts"], "signal": [0.9, 1e-31, 2e-31],
        ...     "theory_signal": [1.0, 8e-31, 8e-31], "gradient": np.nan,
        ...     "theory_gradient": np.nan})
        >>> print(*verdict_sentences(t)[0].split("; "), sep="\\n")
        relu at depth 200: kaiming_normal keeps the signal
        the Xavier schemes vanish (×1e-31 to ×2e-31, as the theory predicts).
    """
    backward = _has(table, "gradient")
    what = "signal and gradient" if backward else "signal"
    several = table["arch"].nunique() > 1
    out = []
    for (arch, act), g in table.groupby(["arch", "activation"], sort=False, observed=True):
        keys = _by_magnitude([_outcome(r, band) for _, r in g.iterrows()], g, band)
        order = sorted(set(keys), key=lambda k: (k[0] != "keep", k[0] == "fail", keys.index(k)))
        everyone = list(g["scheme"])
        clauses = [_clause(k, g[[x == k for x in keys]], everyone, what, band) for k in order]
        where = f"{md_text(act)} ({md_text(arch)})" if several else md_text(act)
        out.append(f"{where} at depth {int(g['depth'].max())}: {'; '.join(clauses)}.")
    return out

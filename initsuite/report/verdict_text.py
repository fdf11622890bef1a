"""The verdict in words: factors as prose writes them (:func:`times`) and one plain sentence
per activation (:func:`verdict_sentences`) from the tidy verdict
(:func:`initsuite.report.verdict.verdict_table`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from initsuite.report.families import namesake
from initsuite.report.style import md_text

__all__ = ["AGREES", "BAND", "listed", "times", "verdict_sentences"]

BAND = (0.1, 10.0)
"""A cell keeps its signal when its std ends within this factor of where it started."""
AGREES = 10.0
"""A drift is "as the theory predicts" when the measured factor is within this factor of the
mean-field one: the same order of magnitude (over depth, seeds scatter a product of many
random factors)."""

_VERBS = {"keep": "keeps", "vanish": "vanishes", "grow": "grows", "overflow": "overflows",
          "underflow": "underflows", "explode": "explodes", "fail": "fails",
          "diverge": "diverges"}  # fmt: skip


def listed(names: list[str]) -> str:
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
        group = f"the {listed(named)} schemes"
        names = [group, *names]
    return listed(names), len(names) > 1 or bool(named)


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
    backward = "gradient" in table.columns and bool(table["gradient"].notna().any())
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

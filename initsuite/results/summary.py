"""The summary of a sweep's cells: one row per group, the statistics a reader looks at first.

What ``initsuite sweep`` prints and the report's summary table; never imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from initsuite.results.columns import DIVERGENCE_KINDS

__all__ = ["SUMMARY_COLUMNS", "summarize"]

SUMMARY_COLUMNS = ("cells", "failed", "frac_diverged", "median_div_layer", "div_kinds",
                   "median_final_std", "median_growth")  # fmt: skip
"""The columns :func:`summarize` adds after the group keys."""


def summarize(cells: pd.DataFrame, by: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per group of cells: counts, how many diverged and where, median statistics.

    A failed cell (with an ``error``) has no statistics: it counts in ``failed`` only. An
    overflowed cell's ``final_std`` is NaN but its std grew without bound, so its median counts
    it as +inf: overflow raises the median instead of dropping out of it.

    Args:
        cells: a sweep's cells table (:data:`~initsuite.results.columns.CELLS`).
        by: the columns to group on, in order; default scheme, activation and depth, after
            arch when the table holds several (architectures are never pooled).

    Returns:
        One row per group, sorted: the ``by`` columns, then ``cells`` (count), ``failed``,
        ``frac_diverged`` (diverged within their depth / cells that ran), ``median_div_layer``
        (over diverged cells; NaN if none), ``div_kinds`` (comma-separated, in the order of
        :data:`~initsuite.results.columns.DIVERGENCE_KINDS`), ``median_final_std`` and
        ``median_growth`` (of ``growth_per_layer``), both over the cells that ran.
    """
    if by is None:
        by = ["scheme", "activation", "depth"]
        if cells["arch"].nunique() > 1:
            by = ["arch", *by]
    keys = list(by)
    rows = [
        {**dict(zip(keys, key, strict=True)), **_stats(g)}
        for key, g in cells.groupby(keys, observed=True, sort=True)
    ]
    return pd.DataFrame.from_records(rows, columns=[*keys, *SUMMARY_COLUMNS])


def _stats(g: pd.DataFrame) -> dict[str, object]:
    """The summary columns of one group of cells."""
    ok = g[g["error"].isna()]
    overflow = (ok["divergence_kind"] == "overflow").fillna(False).astype(bool)
    final = ok["final_std"].astype(float).where(~overflow, np.inf)
    seen = set(ok["divergence_kind"].dropna())
    return {
        "cells": len(g),
        "failed": len(g) - len(ok),
        "frac_diverged": float(ok["divergence_layer"].notna().mean()) if len(ok) else np.nan,
        "median_div_layer": ok["divergence_layer"].dropna().astype(float).median(),
        "div_kinds": ",".join(k for k in DIVERGENCE_KINDS if k in seen),
        "median_final_std": final.median() if len(ok) else np.nan,
        "median_growth": ok["growth_per_layer"].astype(float).median(),
    }

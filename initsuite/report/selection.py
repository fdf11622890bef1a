"""The data selection every sweep figure, caption and table shares: the one order of a
column's values (:func:`levels`), the rows a figure draws (the deepest depth, one width, the
cells that ran) and the geometric mean over seeds with its band (:func:`seed_band`). Never
imports torch or matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError, unknown
from initsuite.results.sweep import LEGACY_ARCH, PHASE_ARCH

__all__ = ["combos", "deepest", "diverged", "levels", "n_seeds", "pick_width", "pooled", "ran",
           "seed_band", "with_arch"]  # fmt: skip


def levels(s: pd.Series) -> list[Any]:
    """Sorted distinct non-null values of ``s``: the one order every figure and table uses."""
    return sorted(s.dropna().unique().tolist())


def deepest(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of the deepest depth (a shallower cell is a prefix of it, so the rest repeat it)."""
    return df[df["depth"] == df["depth"].max()]


def ran(cells: pd.DataFrame) -> pd.DataFrame:
    """Cells that ran (no ``error``): failed cells have no statistics to aggregate."""
    return cells[cells["error"].isna()]


def pick_width(layers: pd.DataFrame, width: int | None) -> int:
    """``width`` checked against the data, or the largest width present when None."""
    widths = levels(layers["width"])
    if not widths:
        raise InitsuiteError("the layers table is empty: there is nothing to plot")
    if width is None:
        return int(widths[-1])
    if width not in widths:
        raise InitsuiteError(unknown("width", width, [str(w) for w in widths]))
    return int(width)


def combos(df: pd.DataFrame) -> list[tuple[str, str]]:
    """Distinct (device, dtype) pairs of ``df``, sorted."""
    pairs = df[["device", "dtype"]].drop_duplicates().itertuples(index=False)
    return sorted((str(d), str(t)) for d, t in pairs)


def seed_band(df: pd.DataFrame, keys: Sequence[str], column: str = "std") -> pd.DataFrame:
    """Geometric mean, min, max and count of positive finite ``column`` over seeds, per
    ``keys``."""
    ok = df[np.isfinite(df[column]) & (df[column] > 0)]
    log = ok.assign(log_std=np.log(ok[column].astype(float)))
    out = log.groupby(list(keys), observed=True, sort=True).agg(
        log_mean=("log_std", "mean"), lo=(column, "min"), hi=(column, "max"),
        n=(column, "size"),
    )  # fmt: skip
    out["geo_mean"] = np.exp(out.pop("log_mean"))
    return out.reset_index()


def diverged(cells: pd.DataFrame) -> pd.Series:
    """Boolean mask of cells that diverged within their depth."""
    return cells["divergence_layer"].notna().astype(bool)


def n_seeds(df: pd.DataFrame) -> int:
    """The number of distinct seeds in ``df``."""
    return int(df["seed"].nunique())


def pooled(df: pd.DataFrame, keys: Sequence[str]) -> str:
    """``"widths × seeds"``, with devices and dtypes added when ``df`` holds several."""
    names = {"width": "widths", "seed": "seeds", "device": "devices", "dtype": "dtypes"}
    extra = [k for k in ("device", "dtype") if df[k].nunique() > 1]
    return " × ".join(names[k] for k in [*keys, *extra])


def with_arch(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with an ``arch`` column (:data:`~initsuite.results.sweep.LEGACY_ARCH` where a
    table from before archs has none)."""
    return df if "arch" in df.columns else df.assign(arch=LEGACY_ARCH)


def phase_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``df`` of the architecture the phase tables describe
    (:data:`~initsuite.results.sweep.PHASE_ARCH`)."""
    return df[with_arch(df)["arch"] == PHASE_ARCH]

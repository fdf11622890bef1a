"""Theory against measurement, read from a sweep's stored tables: the across-seed spread of
log(final std) beside its finite-width prediction, and the measured depth scale of the c-map.

Both are statistics of stored columns (the measured ones, the ``theory_*`` ones and the
``theory`` table's ``predicted_log_std_sd``), so a report computes them from a directory
alone. Never imports torch.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["correlation_depth", "spread"]

# sqrt(df / χ²_{0.05, df}): the upper 95% confidence limit of an sd over its estimate.
_SD_UPPER = {1: 15.95, 2: 4.41, 3: 2.92, 4: 2.37, 5: 2.09, 6: 1.92, 7: 1.80, 8: 1.71, 9: 1.65}
_KEYS = ["scheme", "activation", "depth", "width", "device", "dtype"]


def _keys(table: pd.DataFrame) -> list[str]:
    """The grouping keys, led by ``arch`` where the table has it: an MLP, a conv and a
    residual net of one scheme are three configurations, never pooled."""
    return ["arch", *_KEYS] if "arch" in table.columns else list(_KEYS)


def _sd_upper_factor(df: int) -> float:
    if df < 1:
        return math.nan
    return _SD_UPPER.get(df, 1 + 1.645 / math.sqrt(2 * df))


def _predicted(groups: pd.DataFrame, theory: pd.DataFrame) -> np.ndarray:
    """``predicted_log_std_sd`` of the ``theory`` table for each row of ``groups``, looked up
    by ([arch,] scheme, activation, depth, width); NaN where the table has none."""
    keys = ["scheme", "activation", "depth", "width"]
    if "arch" in groups.columns and "arch" in theory.columns:
        keys = ["arch", *keys]
    table = theory.drop_duplicates(keys).set_index(keys)["predicted_log_std_sd"]
    wanted = pd.MultiIndex.from_frame(groups[keys])
    return table.reindex(wanted).to_numpy(dtype=float)


def spread(cells: pd.DataFrame, theory: pd.DataFrame) -> pd.DataFrame:
    """Across-seed spread of log(final std) beside the mean-field value and its finite-width
    prediction, per (scheme, activation, depth, width, device, dtype) of the cells that did
    not diverge.

    ``expected_log_std`` is the mean-field value less the log-normal bias Var(log std);
    ``disagree`` flags rows whose mean measured log std is further from it than twice the
    spread (the prediction where known, :mod:`initsuite.theory.spread`, else the measured sd
    at its upper 95% confidence limit, which a handful of seeds needs), and further than
    ``2/width``: mean field is the infinite-width limit, and at width n its second moments
    carry corrections of order 1/n that no spread shows (one Gaussian layer alone biases the
    log of a mean square by −1/n, log std by −1/(2n)). A configuration whose seeds agree to
    1e-4 (orthogonal tanh nets) is not flagged for missing the mean-field value by 1e-3.

    Args:
        cells: a sweep's ``cells`` table.
        theory: its ``theory`` table (``predicted_log_std_sd`` per cell configuration).
    """
    ok = cells[cells["divergence_layer"].isna() & (cells["final_std"] > 0)].copy()
    ok["log_std"] = np.log(ok["final_std"].astype(float))
    ok["theory_log_std"] = np.log(ok["theory_final_std"].astype(float).where(
        ok["theory_final_std"] > 0))  # fmt: skip
    g = ok.groupby(_keys(ok), observed=True)
    out = pd.DataFrame({
        "seeds": g["log_std"].count(),
        "log_std_mean": g["log_std"].mean(),
        "log_std_sd": g["log_std"].std(ddof=1),
        "theory_log_std": g["theory_log_std"].first(),
    }).reset_index()  # fmt: skip
    out["predicted_log_std_sd"] = _predicted(out, theory)
    # Mean field predicts the mean square; for a log-normal std the mean of log std sits
    # below log(theory) by Var(log std).
    out["expected_log_std"] = out["theory_log_std"] - out["predicted_log_std_sd"].fillna(0) ** 2
    # Where no prediction is known, the measured sd stands in, at its upper 95% confidence
    # limit: an sd from three seeds can be a fifth of the true one.
    upper = out["log_std_sd"] * [_sd_upper_factor(int(k) - 1) for k in out["seeds"]]
    band = out["predicted_log_std_sd"].fillna(upper)
    band = np.maximum(band, 1.0 / out["width"].astype(float)).where(band.notna())
    gap = (out["log_std_mean"] - out["expected_log_std"]).abs()
    out["disagree"] = (gap > 2 * band) & band.notna() & out["theory_log_std"].notna()
    return out


def correlation_depth(layers: pd.DataFrame) -> pd.DataFrame:
    """Measured depth scale of the c-map per (scheme, activation, depth, width, device, dtype).

    The number of layers the seed-averaged cosine of the input pair takes to close 1 - 1/e of
    its gap to the mean-field fixed point c* (``theory_cosine`` at the last layer), to set
    beside ξ = 1/|ln χ₁|. NaN where the gap at layer 1 is under 0.02 (nothing to measure),
    where the gap never closes that far, or without a cosine.

    Args:
        layers: a sweep's ``layers`` table.
    """
    cols = [*_keys(layers), "c_star", "measured_depth"]
    if "cosine" not in layers.columns or layers["cosine"].isna().all():
        return pd.DataFrame(columns=cols)
    rows = []
    for key, g in layers.groupby(_keys(layers), observed=True):
        mean = g.groupby("layer")[["cosine", "theory_cosine"]].mean()
        c_star = float(mean["theory_cosine"].iloc[-1])
        gap = (mean["cosine"] - c_star).abs().to_numpy()
        measured = math.nan
        if math.isfinite(c_star) and len(gap) and gap[0] >= 0.02:
            closed = np.nonzero(gap <= gap[0] / math.e)[0]
            if len(closed):
                measured = float(mean.index[closed[0]] - 1)
        rows.append((*key, c_star, measured))
    return pd.DataFrame(rows, columns=cols)

"""Theory read against stored tables: the across-seed spread of log(final std) beside its
finite-width prediction, and the measured depth scale of the c-map.

These read a sweep's ``cells`` and ``layers`` DataFrames only: this module imports neither
torch nor the activation registry, so a report can use it on a directory alone.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["correlation_depth", "predicted_log_std_sd", "spread"]

# Var(log ‖z_L‖²) ≈ c · Σ_l 1/n_l for one input at finite width (Hanin & Rolnick 2018):
# c = 5 for ReLU nets at He's variance, c = 2 for linear nets (log of a χ²_n/n per layer).
# The log of a std is half the log of a mean square, so Var(log std) ≈ c · L / (4 n).
# Keyed by the activation names a stored table holds: a report has no registry to ask.
_SPREAD_C = {"relu": 5.0, "linear": 2.0}


def predicted_log_std_sd(activation: str, depth: int, width: int) -> float:
    """Predicted across-seed sd of log(final std) for one input (NaN where unknown)."""
    c = _SPREAD_C.get(activation.split(":")[0])
    return math.nan if c is None else math.sqrt(c * depth / (4 * width))


# sqrt(df / χ²_{0.05, df}): the upper 95% confidence limit of an sd over its estimate.
_SD_UPPER = {1: 15.95, 2: 4.41, 3: 2.92, 4: 2.37, 5: 2.09, 6: 1.92, 7: 1.80, 8: 1.71, 9: 1.65}


def _sd_upper_factor(df: int) -> float:
    if df < 1:
        return math.nan
    return _SD_UPPER.get(df, 1 + 1.645 / math.sqrt(2 * df))


def spread(cells: Any) -> Any:
    """Across-seed spread of log(final std) per (scheme, activation, depth, width, device,
    dtype) of the cells that did not diverge, beside the mean-field value and the
    finite-width prediction (``predicted_log_std_sd``, one input; a batch pools inputs, which
    narrows the spread of linear nets below it). ``expected_log_std`` is the mean-field value
    less the log-normal bias Var(log std); ``disagree`` flags cells whose mean measured log
    std is further from it than twice the spread (predicted where known, else the measured
    sd at its upper 95% confidence limit, which a handful of seeds needs)."""
    import pandas as pd

    keys = ["scheme", "activation", "depth", "width", "device", "dtype"]
    ok = cells[cells["divergence_layer"].isna() & (cells["final_std"] > 0)].copy()
    ok["log_std"] = np.log(ok["final_std"].astype(float))
    ok["theory_log_std"] = np.log(ok["theory_final_std"].astype(float).where(
        ok["theory_final_std"] > 0))  # fmt: skip
    g = ok.groupby(keys, observed=True)
    out = pd.DataFrame({
        "seeds": g["log_std"].count(),
        "log_std_mean": g["log_std"].mean(),
        "log_std_sd": g["log_std"].std(ddof=1),
        "theory_log_std": g["theory_log_std"].first(),
    }).reset_index()  # fmt: skip
    out["predicted_log_std_sd"] = [
        predicted_log_std_sd(str(a), int(d), int(w))
        for a, d, w in zip(out["activation"], out["depth"], out["width"], strict=True)
    ]
    # Mean field predicts the mean square; for a log-normal std the mean of log std sits
    # below log(theory) by Var(log std).
    out["expected_log_std"] = out["theory_log_std"] - out["predicted_log_std_sd"].fillna(0) ** 2
    # Where no prediction is known, the measured sd stands in, at its upper 95% confidence
    # limit: an sd from three seeds can be a fifth of the true one.
    upper = out["log_std_sd"] * [_sd_upper_factor(int(k) - 1) for k in out["seeds"]]
    band = out["predicted_log_std_sd"].fillna(upper)
    gap = (out["log_std_mean"] - out["expected_log_std"]).abs()
    out["disagree"] = (gap > 2 * band) & band.notna() & out["theory_log_std"].notna()
    return out


def correlation_depth(layers: Any) -> Any:
    """Measured depth scale of the c-map per (scheme, activation, depth, width, device, dtype):
    the number of layers the seed-averaged cosine of the input pair takes to close 1 - 1/e of
    its gap to the mean-field fixed point c* (``theory_cosine`` at the last layer), to set
    beside ξ = 1/|ln χ₁|. NaN where the gap at layer 1 is under 0.02 (nothing to measure),
    where the gap never closes that far, or without a cosine."""
    import pandas as pd

    keys = ["scheme", "activation", "depth", "width", "device", "dtype"]
    cols = ["scheme", "activation", "depth", "width", "device", "dtype", "c_star",
            "measured_depth"]  # fmt: skip
    if "cosine" not in layers.columns or layers["cosine"].isna().all():
        return pd.DataFrame(columns=cols)
    rows = []
    for key, g in layers.groupby(keys, observed=True):
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

"""The coordinate check's measured scaling: for each parametrization × role × step, the slope
of log(coordinate) against log(width) (or log(depth)), its spread over seeds, whether it is
stable, and the exponent the parametrization's analysis predicts beside it.

A role's coordinate at one width is the geometric mean, over the role's modules, of their
``rms`` (or ``delta_rms``): the modules of one role scale alike, and a mean of logs weighs a
small module's coordinate as much as a large one's. The slope is the least-squares slope of
its log against log(width) over the widths of one seed; the seeds give its spread.

Never imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError
from initsuite.report.style import md_text, need

__all__ = ["AXES", "BAND", "MAX_DISAGREEMENTS", "PHASES", "QUANTITIES", "SLOPES", "coord_slopes",
           "coord_verdict", "disagreements", "phase", "unstable"]  # fmt: skip

BAND = 0.1
"""The largest |slope| of a stable coordinate: under 2^0.1 ≈ 7% of change per doubling of
width (or depth). A slope is stable when its whole interval over seeds (mean ± 2 standard
errors) lies within ±BAND, and agrees with a prediction when the prediction lies within BAND
of that interval."""
AXES = ("width", "depth")
"""What a slope is taken against."""
QUANTITIES = ("rms", "delta_rms")
"""The coordinates whose slopes are fitted: the output's rms, and the rms of its change since
step 0 (not at step 0, where it is 0)."""
SLOPES: tuple[str, ...] = (
    "parametrization", "model", "optimizer", "axis", "at", "role", "step", "quantity", "slope",
    "slope_low", "slope_high", "slope_sd", "seeds", "points", "stable", "predicted", "agrees",
)  # fmt: skip
"""The columns of :func:`coord_slopes`: ``at`` is the other axis's value (the depth of a
width slope), ``slope`` the mean over seeds, ``slope_low``/``slope_high`` its interval,
``points`` the number of widths (or depths) fitted."""

MAX_DISAGREEMENTS = 6
"""The disagreements a verdict names, the furthest from their prediction first."""
PHASES = ("init", "trained")
"""Which prediction a step takes: ``init`` at step 0, ``trained`` after one step or more."""

_KEYS = ("parametrization", "model", "optimizer")


def phase(step: int) -> str:
    """The :data:`PHASES` entry of a step."""
    return PHASES[0] if step == 0 else PHASES[1]


def coord_slopes(coords: pd.DataFrame, axis: str = "width",
                 predicted: Mapping[tuple[str, str, str, str, str], float] | None = None,
                 ) -> pd.DataFrame:  # fmt: skip
    """The slopes of each role's coordinates against ``axis``, one row per parametrization ×
    model × optimizer × the other axis's value × role × step × quantity (:data:`SLOPES`).

    Args:
        coords: the coordinate check's ``coords`` table (columns parametrization, model,
            optimizer, width, depth, seed, step, module, role, rms, delta_rms).
        axis: ``"width"`` or ``"depth"``: at least two of its values are needed.
        predicted: the exponent each (parametrization, optimizer, role, quantity, phase) is
            predicted to have against ``axis`` (:func:`phase`; from what the run stored);
            missing ones are NaN.

    With several seeds the interval is the mean ± 2 standard errors of the seeds' slopes; with
    one seed it is the slope itself (no spread to measure: ``slope_sd`` is NaN).
    """
    need(coords, (*_KEYS, "width", "depth", "seed", "step", "module", "role", *QUANTITIES),
         "coords")  # fmt: skip
    if axis not in AXES:
        raise InitsuiteError(f"axis must be one of {', '.join(AXES)}, got {axis!r}")
    other = "depth" if axis == "width" else "width"
    long = coords.melt(id_vars=[*_KEYS, axis, other, "seed", "step", "module", "role"],
                       value_vars=list(QUANTITIES), var_name="quantity")  # fmt: skip
    long = long[np.isfinite(long["value"]) & (long["value"] > 0)]
    long = long.assign(log_value=np.log(long["value"]), log_axis=np.log(long[axis]))
    group = [*_KEYS, other, "role", "step", "quantity"]
    # the role's coordinate at each width: the geometric mean over its modules
    per_point = long.groupby([*group, "seed", axis], as_index=False, observed=True, sort=False).agg(
        log_value=("log_value", "mean"), log_axis=("log_axis", "first"))  # fmt: skip
    rows = []
    for key, g in per_point.groupby(group, observed=True, sort=False):  # the run's order
        slopes = [_slope(s["log_axis"].to_numpy(), s["log_value"].to_numpy())
                  for _, s in g.groupby("seed", observed=True)]  # fmt: skip
        slopes = [s for s in slopes if math.isfinite(s)]
        if not slopes:
            continue
        rows.append(_row(dict(zip(group, key, strict=True)), axis, other, slopes,
                         int(g[axis].nunique()), predicted))  # fmt: skip
    return pd.DataFrame(rows, columns=list(SLOPES))


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    """The least-squares slope of y on x; NaN under two distinct x."""
    if np.unique(x).size < 2:
        return math.nan
    xc = x - x.mean()
    return float(np.dot(xc, y - y.mean()) / np.dot(xc, xc))


def _row(key: dict[str, Any], axis: str, other: str, slopes: list[float], points: int,
         predicted: Mapping[tuple[str, str, str, str, str], float] | None,
         ) -> dict[str, object]:  # fmt: skip
    a = np.asarray(slopes)
    mean = float(a.mean())
    sd = float(a.std(ddof=1)) if a.size > 1 else math.nan
    half = 2 * sd / math.sqrt(a.size) if a.size > 1 else 0.0
    low, high = mean - half, mean + half
    want = math.nan
    if predicted is not None:
        at = (str(key["parametrization"]), str(key["optimizer"]), str(key["role"]),
              str(key["quantity"]), phase(int(key["step"])))  # fmt: skip
        want = float(predicted.get(at, math.nan))
    agrees = None if math.isnan(want) else bool(low - BAND <= want <= high + BAND)
    return {**{k: key[k] for k in _KEYS}, "axis": axis, "at": key[other], "role": key["role"],
            "step": key["step"], "quantity": key["quantity"], "slope": mean, "slope_low": low,
            "slope_high": high, "slope_sd": sd, "seeds": int(a.size), "points": points,
            "stable": bool(low >= -BAND and high <= BAND), "predicted": want,
            "agrees": agrees}  # fmt: skip


def unstable(slopes: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`coord_slopes` whose coordinate is not stable, steepest first."""
    out = slopes[~slopes["stable"].astype(bool)]
    return out.reindex(out["slope"].abs().sort_values(ascending=False).index)


def disagreements(slopes: pd.DataFrame) -> pd.DataFrame:
    """The rows whose measured slope disagrees with the predicted exponent (beyond
    :data:`BAND` of its interval); rows without a prediction are left out."""
    return slopes[slopes["agrees"].eq(False)]


def coord_verdict(slopes: pd.DataFrame) -> list[str]:
    """One Markdown sentence per parametrization × model × optimizer × the other axis's value,
    in the table's order: the roles whose coordinates are stable at every step, and each other
    role's steepest slope (its quantity, step, interval and prediction); then one sentence
    listing the slopes that disagree with their prediction."""
    need(slopes, SLOPES, "slopes")
    out = []
    keys = [*_KEYS, "axis", "at"]
    for key, g in slopes.groupby(keys, observed=True, sort=False):
        p, model, optimizer, axis, at = key
        other = "depth" if axis == "width" else "width"
        head = f"**{md_text(p)}** ({md_text(model)}, {md_text(optimizer)}, {other} {at})"
        roles = list(dict.fromkeys(g["role"]))
        stable = [r for r in roles if bool(g[g["role"] == r]["stable"].all())]
        moving = [_steepest(g[(g["role"] == r) & ~g["stable"].astype(bool)], axis)
                  for r in roles if r not in stable]  # fmt: skip
        parts = []
        if stable:
            parts.append(f"stable in {axis} at every step: {', '.join(map(md_text, stable))}")
        if moving:
            parts.append("; ".join(moving))
        out.append(f"{head}: {'; '.join(parts)}.")
    bad = disagreements(slopes)
    if len(bad):
        # the furthest first; the rest are in the slopes table
        bad = bad.assign(off=(bad["slope"] - bad["predicted"]).abs()).sort_values(
            "off", ascending=False, kind="stable")  # fmt: skip
        items = []
        keys = ["parametrization", "role", "quantity", "axis", "at", "predicted"]
        for (p, role, quantity, axis, at, want), g in bad.groupby(keys, sort=False):
            other = "depth" if axis == "width" else "width"
            lo, hi = g["slope"].min(), g["slope"].max()
            measured = f"{lo:+.2f}" if f"{lo:+.2f}" == f"{hi:+.2f}" else f"{lo:+.2f} to {hi:+.2f}"
            items.append(f"{md_text(p)} {md_text(role)} {quantity} against {axis} ({other} "
                         f"{at}, {_steps(g['step'].tolist())}): measured {measured}, predicted "
                         f"{want:+.2f}")  # fmt: skip
        more = len(items) - MAX_DISAGREEMENTS
        tail = f"; and {more} more (the slopes table has them all)" if more > 0 else ""
        out.append("Disagreements with the predicted exponents: "
                   + "; ".join(items[:MAX_DISAGREEMENTS]) + tail + ".")  # fmt: skip
    return out


def _steps(steps: list[int]) -> str:
    """``step 2`` or ``steps 1-3`` (``steps 1, 3`` where they are not consecutive)."""
    steps = sorted(set(steps))
    if len(steps) == 1:
        return f"step {steps[0]}"
    if steps == list(range(steps[0], steps[-1] + 1)):
        return f"steps {steps[0]}-{steps[-1]}"
    return "steps " + ", ".join(map(str, steps))


def _steepest(rows: pd.DataFrame, axis: str) -> str:
    """The steepest slope of one role's unstable rows, as a clause."""
    r = rows.loc[rows["slope"].abs().idxmax()]
    verb = "grows" if r["slope"] > 0 else "shrinks"
    low, high = f"{r['slope_low']:+.2f}", f"{r['slope_high']:+.2f}"
    spread = f" [{low}, {high}]" if low != high else ""  # one seed, or seeds that agree
    want = "" if math.isnan(r["predicted"]) else f", predicted {r['predicted']:+.2f}"
    return (f"{md_text(r['role'])} {verb} with {axis} ({r['quantity']} slope "
            f"{r['slope']:+.2f}{spread} at step {r['step']}{want})")  # fmt: skip

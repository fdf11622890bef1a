"""Gains for every registered activation, and what each one preserves.

The gain of an activation φ scales a weight std of 1/√fan_in. Different gains preserve
different things, and users compare them by eye; ``initsuite gains`` puts them side by side.
All expectations are over z ~ N(0, 1), in float64.

- ``torch_gain``: ``torch.nn.init.calculate_gain``, where torch has a value (a convention:
  5/3 for tanh, √2 for ReLU, 3/4 for SELU).
- ``variance_gain`` = 1/sqrt(E[φ(z)²]): keeps the pre-activation second moment q = 1 from
  layer to layer (q = 1 is a fixed point of the variance map). What ``gain=auto`` uses where
  torch has no value.
- ``std_ratio`` = std(z)/std(φ(z)): keeps the first layer's post-activation std equal to the
  input's (the tutorial measured ≈ 1.59 for tanh against torch's 5/3). Equals
  ``variance_gain`` for odd activations, not for ReLU (whose output has a mean).
- ``fixed_point``: what kind of fixed point a deep net with ``auto_gain`` settles at:
  ``attracting`` or ``repelling`` (by ``map_slope``), ``none: vanishes`` / ``none: explodes``,
  or ``any (scale-invariant)`` for a positively homogeneous φ (ReLU, leaky ReLU, linear):
  φ(a·x) = a·φ(x) makes the variance map q ↦ gain²·E[φ(z)²]·q, the identity at the auto
  gain, so every q is a fixed point and where a net stays depends on its input's scale.
- ``fixed_point_q``, ``fixed_point_std``: where a deep net with ``auto_gain`` settles: the
  fixed point q* of q ↦ gain²·E[φ(√q z)²] reached from q = 1, and the post-activation std
  there (tanh with 5/3 settles at std ≈ 0.65, the tutorial's number at layer 100). For a
  scale-invariant φ, the q a sweep's net keeps: its unit-variance input gives the first
  layer q₁ = gain² (ReLU: q = 2, std 0.8256 at every layer).
- ``map_slope``: the slope of the variance map at q*: below 1 the fixed point attracts (a
  deep net returns to it), above 1 it repels, and finite-width noise drives a deep net away
  from it (GELU at its variance gain: q = 1 is fixed but its std drifts up layer by layer).
- ``chi1`` = gain²·E[φ'(√q* z)²] at that fixed point: below 1 distinct inputs converge
  (ordered), above 1 they decorrelate (chaotic), 1 is the edge of chaos (Poole et al. 2016,
  Schoenholz et al. 2017).
"""

from __future__ import annotations

import math
from typing import Any

from initsuite import activations as _activations
from initsuite.theory.maps import chi1, fixed_point, moments

__all__ = ["gains"]


def gains() -> Any:
    """A DataFrame, one row per registered activation (see the module docstring)."""
    import pandas as pd

    rows = []
    for name in _activations.names():
        act = _activations.get(name)
        m1, m2 = moments(act, 1.0)
        torch_gain = act.torch_gain
        auto = act.gain
        scale_free = act.homogeneous and abs(auto**2 * m2 - 1.0) < 1e-12
        # a scale-invariant net keeps the q its input gives it: a sweep's N(0, 1) input
        q_star = auto**2 if scale_free else fixed_point(act, auto**2)
        finite = 0.0 < q_star < math.inf
        m1s, m2s = moments(act, q_star) if finite else (math.nan, math.nan)
        slope = math.nan
        if finite:  # central difference of q ↦ gain²·E[φ(√q z)²]; the map is smooth in q
            h = 1e-4 * q_star
            up, down = moments(act, q_star + h)[1], moments(act, q_star - h)[1]
            slope = auto**2 * (up - down) / (2 * h)
        rows.append(
            {
                "activation": name,
                "torch_gain": math.nan if torch_gain is None else torch_gain,
                "variance_gain": 1.0 / math.sqrt(m2),
                "std_ratio": 1.0 / math.sqrt(m2 - m1 * m1),
                "auto_gain": auto,
                "gain_source": act.gain_source,
                "fixed_point": _kind(scale_free, q_star, slope),
                "fixed_point_q": q_star,
                "fixed_point_std": math.sqrt(max(m2s - m1s * m1s, 0.0)) if finite else math.nan,
                "map_slope": slope,
                "chi1": chi1(act, auto**2, q_star) if finite else math.nan,
            }
        )
    return pd.DataFrame(rows)


def _kind(scale_free: bool, q_star: float, slope: float) -> str:
    """The ``fixed_point`` column: what kind of fixed point q* is."""
    if scale_free:
        return "any (scale-invariant)"
    if q_star == 0.0:
        return "none: vanishes"
    if q_star == math.inf:
        return "none: explodes"
    return "attracting" if slope < 1 else "repelling"

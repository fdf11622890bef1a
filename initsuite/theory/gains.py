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
- ``fixed_point_q``, ``fixed_point_std``: where a deep net with ``auto_gain`` settles: the
  fixed point q* of q ↦ gain²·E[φ(√q z)²] reached from q = 1, and the post-activation std
  there (tanh with 5/3 settles at std ≈ 0.65, the tutorial's number at layer 100).
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
from initsuite.theory.meanfield import _chi1 as _chi1_moment
from initsuite.theory.meanfield import _moments

__all__ = ["chi1", "fixed_point", "gains"]


def fixed_point(
    activation: str | _activations.Activation,
    sigma_w2: float,
    sigma_b2: float = 0.0,
    q0: float = 1.0,
    max_layers: int = 100_000,
) -> float:
    """The q* that q ↦ σ_w²·E[φ(√q z)²] + σ_b² reaches from ``q0`` (0 or inf if the signal
    vanishes or explodes; the last iterate if it has not settled after ``max_layers``)."""
    moments = _moments(_activations.get(activation))
    q = q0
    for _ in range(max_layers):
        q_next = sigma_w2 * moments(q)[1] + sigma_b2
        if not q_next < 1e300:
            return math.inf
        if q_next < 1e-300:
            return 0.0
        if abs(q_next - q) <= 1e-14 * q:
            return q_next
        q = q_next
    return q


def chi1(activation: str | _activations.Activation, sigma_w2: float, q: float) -> float:
    """σ_w²·E[φ'(√q z)²]: the factor by which a small perturbation (and the gradient)
    grows per layer at pre-activation second moment ``q``."""
    return sigma_w2 * _chi1_moment(_activations.get(activation))(q)


def gains() -> Any:
    """A DataFrame, one row per registered activation (see the module docstring)."""
    import pandas as pd

    rows = []
    for name in _activations.names():
        act = _activations.get(name)
        m1, m2 = _moments(act)(1.0)
        torch_gain = act.torch_gain
        auto = act.gain
        q_star = fixed_point(act, auto**2)
        finite = 0.0 < q_star < math.inf
        m1s, m2s = _moments(act)(q_star) if finite else (math.nan, math.nan)
        slope = math.nan
        if finite:  # central difference of q ↦ gain²·E[φ(√q z)²]; the map is smooth in q
            h = 1e-4 * q_star
            up, down = _moments(act)(q_star + h)[1], _moments(act)(q_star - h)[1]
            slope = auto**2 * (up - down) / (2 * h)
        rows.append(
            {
                "activation": name,
                "torch_gain": math.nan if torch_gain is None else torch_gain,
                "variance_gain": 1.0 / math.sqrt(m2),
                "std_ratio": 1.0 / math.sqrt(m2 - m1 * m1),
                "auto_gain": auto,
                "gain_source": act.gain_source,
                "fixed_point_q": q_star,
                "fixed_point_std": math.sqrt(max(m2s - m1s * m1s, 0.0)) if finite else math.nan,
                "map_slope": slope,
                "chi1": chi1(act, auto**2, q_star) if finite else math.nan,
            }
        )
    return pd.DataFrame(rows)

r"""The mean-field maps of a deep MLP (Poole et al. 2016; Schoenholz et al. 2017), vectorised.

For weights of variance σ_w²/fan_in and biases of variance σ_b², one layer maps the
pre-activation second moment q and the correlation c of two inputs by

    q ↦ σ_w²·E[φ(√q z)²] + σ_b²                       (the length map)
    c ↦ (σ_w²·E[φ(u)φ(v)] + σ_b²) / q_next             (the correlation map)
    χ₁ = σ_w²·E[φ′(√q z)²]                              (its slope at c = 1)

Every function broadcasts over numpy arrays of q, c, σ_w², σ_b² and returns a float for
scalar inputs. Expectations are the activation's closed forms where it has them, quadrature
in float64 otherwise (``initsuite.core.quadrature``). A scalar and a one-element array reduce
with the same dot product; a longer array reduces through a matrix product, whose last bits
can differ.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from initsuite import activations as _activations
from initsuite.core.quadrature import gaussian_expectation, hermite_rule

__all__ = [
    "chi1", "correlation_map", "fixed_point", "kernel", "length_map", "moments",
    "second_moment", "slope_moment",
]  # fmt: skip

Act = str | _activations.Activation

# q beyond this is "exploded" and below TINY "vanished": float64's range, with room for σ_w²·q
HUGE, TINY = 1e300, 1e-300
# The one stopping rule of a fixed-point iteration: a step moves q by at most RTOL·q.
RTOL = 1e-14


def _out(x: Any) -> Any:
    x = np.asarray(x, dtype=float)
    return float(x) if x.ndim == 0 else x


def _expect(closed: Any, f: Any, q: Any, order: int) -> Any:
    """closed(q) where the activation has the closed form, else E[f(√q z)] by quadrature."""
    return _out(closed(q)) if closed is not None else gaussian_expectation(f, q, order)


def moments(activation: Act, q: Any, order: int = 24) -> tuple[Any, Any]:
    """(E[φ(√q z)], E[φ(√q z)²]) for z ~ N(0, 1).

    Args:
        activation: an activation or its spec.
        q: pre-activation second moment(s), >= 0, any shape.
        order: Gauss–Legendre nodes per panel where quadrature is needed (24: ~1e-14;
            8: ~1e-9 for q ≲ 20, a third of the cost).
    """
    act = _activations.get(activation)
    return _expect(act.closed_forms.mean, act.apply, q, order), second_moment(act, q, order)


def second_moment(activation: Act, q: Any, order: int = 24) -> Any:
    """E[φ(√q z)²] for z ~ N(0, 1), alone (all the length map needs); see ``moments``."""
    act = _activations.get(activation)
    return _expect(act.closed_forms.second_moment, lambda z: act.apply(z) ** 2, q, order)


def slope_moment(activation: Act, q: Any) -> Any:
    """E[φ′(√q z)²] for z ~ N(0, 1); q >= 0, any shape."""
    act = _activations.get(activation)
    return _expect(act.closed_forms.slope_moment, lambda z: act.derivative(z) ** 2, q, 24)


def kernel(activation: Act, q: Any, c: Any) -> Any:
    """E[φ(u)φ(v)] for (u, v) centred normal with variances q and correlation c (clipped to
    [-1, 1]); q and c broadcast.

    The activation's closed form where it has one; else a 64×64 Gauss–Hermite product rule:
    ~1e-6·q for smooth φ (tanh, GELU, SiLU, ...), within ~2e-3·q for the kinked ELU and
    SELU, below the finite-width noise of a measured cosine (≈ 1/√width).
    """
    act = _activations.get(activation)
    if act.closed_forms.kernel is not None:
        return _out(act.closed_forms.kernel(q, c))
    x, w = hermite_rule()
    q, c = np.broadcast_arrays(np.asarray(q, dtype=float), np.asarray(c, dtype=float))
    c = np.clip(c, -1.0, 1.0)
    s = np.sqrt(np.maximum(1 - c * c, 0.0))[..., None, None]
    root = np.sqrt(q)
    fu = act.apply(root[..., None] * x)[..., :, None]
    fv = act.apply(root[..., None, None] * (c[..., None, None] * x[:, None] + s * x[None, :]))
    return _out(np.sum(np.outer(w, w) * fu * fv, axis=(-2, -1)))


def length_map(activation: Act, q: Any, sigma_w2: Any, sigma_b2: Any = 0.0, order: int = 24) -> Any:
    """q ↦ σ_w²·E[φ(√q z)²] + σ_b²: the next layer's pre-activation second moment."""
    return sigma_w2 * second_moment(activation, q, order) + sigma_b2


def correlation_map(
    activation: Act, q: Any, c: Any, sigma_w2: Any, sigma_b2: Any = 0.0
) -> tuple[Any, Any]:
    """(q, c) ↦ (q_next, c_next), c_next = (σ_w²·E[φ(u)φ(v)] + σ_b²) / q_next; NaN where
    q_next = 0.

    Args:
        q: both inputs' pre-activation second moment, >= 0.
        c: their correlation (cosine), in [-1, 1].
        sigma_w2, sigma_b2: σ_w² = fan_in·Var(W) and Var(b).
    """
    q_next = length_map(activation, q, sigma_w2, sigma_b2)
    cross = sigma_w2 * kernel(activation, q, c) + sigma_b2
    positive = np.asarray(q_next) > 0
    c_next = np.where(positive, cross / np.where(positive, q_next, 1.0), math.nan)
    return q_next, _out(c_next)


def chi1(activation: Act, sigma_w2: Any, q: Any) -> Any:
    """χ₁ = σ_w²·E[φ′(√q z)²]: the factor by which a small perturbation (and the gradient's
    second moment) grows per layer at pre-activation second moment q."""
    return sigma_w2 * slope_moment(activation, q)


def fixed_point(
    activation: Act,
    sigma_w2: Any,
    sigma_b2: Any = 0.0,
    q0: Any = 1.0,
    max_layers: int = 100_000,
    order: int = 24,
) -> Any:
    """q* of the length map, iterated from ``q0`` as a deep net would be, per point.

    A point stops once a step moves it by at most 1e-14·q (its last iterate is returned),
    at 0 once it falls below 1e-300 (the signal vanishes), or at inf once it reaches 1e300
    (it explodes); after ``max_layers`` steps its last iterate is returned.

    Args:
        activation: an activation or its spec.
        sigma_w2, sigma_b2: σ_w² = fan_in·Var(W) and Var(b), broadcast with ``q0``.
        q0: the input's second moment.
        max_layers: the most layers iterated.
        order: Gauss–Legendre nodes per panel of the quadrature (see ``moments``).
    """
    act = _activations.get(activation)
    q, w2, b2 = (np.array(a, dtype=float) for a in np.broadcast_arrays(q0, sigma_w2, sigma_b2))
    active = np.ones(q.shape, dtype=bool)
    for _ in range(max_layers):
        if active.all():  # the whole array (a scalar stays a scalar)
            q_old, q_next = q, np.asarray(length_map(act, q, w2, b2, order))
        else:  # only the points still moving
            q_old = q[active]
            q_next = np.asarray(length_map(act, q_old, w2[active], b2[active], order))
        settled = np.abs(q_next - q_old) <= RTOL * q_old
        q_next = np.where(~(q_next < HUGE), math.inf, np.where(q_next < TINY, 0.0, q_next))
        q[active] = q_next
        active[active] = ~settled & (q_next > 0) & (q_next < math.inf)
        if not active.any():
            break
    return _out(q)

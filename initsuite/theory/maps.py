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
    "chi1", "correlation_fixed_point", "correlation_map", "fixed_point", "kernel",
    "length_map", "length_slope", "moments", "pair_moment", "second_moment", "slope_kernel",
    "slope_moment",
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


def pair_moment(f: Any, g: Any, q: Any, c: Any, nodes: int = 64) -> Any:
    """E[f(u)g(v)] for (u, v) centred normal with variances q and correlation c (clipped to
    [-1, 1]), by a ``nodes`` × ``nodes`` Gauss–Hermite product rule; q and c broadcast.

    ~1e-6·q for smooth integrands at 64 nodes, within ~2e-3·q across a kink.
    """
    x, w = hermite_rule(nodes)
    q, c = np.broadcast_arrays(np.asarray(q, dtype=float), np.asarray(c, dtype=float))
    c = np.clip(c, -1.0, 1.0)
    s = np.sqrt(np.maximum(1 - c * c, 0.0))[..., None, None]
    root = np.sqrt(q)
    fu = f(root[..., None] * x)[..., :, None]
    gv = g(root[..., None, None] * (c[..., None, None] * x[:, None] + s * x[None, :]))
    return _out(np.sum(np.outer(w, w) * fu * gv, axis=(-2, -1)))


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
    return pair_moment(act.apply, act.apply, q, c)


def slope_kernel(activation: Act, q: Any, c: Any) -> Any:
    """E[φ′(u)φ′(v)] for (u, v) as in ``kernel``: σ_w² times it is the slope χ_c of the
    correlation map at c (Schoenholz et al. 2017). A 64×64 Gauss–Hermite product rule."""
    act = _activations.get(activation)
    return pair_moment(act.derivative, act.derivative, q, c)


def length_slope(activation: Act, q: Any, sigma_w2: Any, order: int = 24) -> Any:
    """χ_q = d/dq of the length map at q: σ_w²·E[z·φ(√q z)·φ′(√q z)]/√q (differentiating
    under the expectation), q > 0; the rate at which q approaches its fixed point."""
    act = _activations.get(activation)
    q = np.asarray(q, dtype=float)
    # E[x·φ(x)·φ′(x)] over x = √q·z is √q times the expectation above
    moment = gaussian_expectation(lambda x: x * act.apply(x) * act.derivative(x), q, order)
    return _out(sigma_w2 * np.asarray(moment) / q)


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


# Steps of the plain iteration before the root finder takes over: a point whose map contracts
# by 0.6 or better per step has settled to 1e-14 by then, as iterated.
WARM_LAYERS = 64


def fixed_point(
    activation: Act,
    sigma_w2: Any,
    sigma_b2: Any = 0.0,
    q0: Any = 1.0,
    max_layers: int | None = None,
    order: int = 24,
) -> Any:
    """q* = lim q_l of the length map q_{l+1} = f(q_l) from q_1 = ``q0``: where a deep net's
    pre-activation second moment settles, per point; 0 where it vanishes, inf where it
    explodes.

    The map is increasing in q, so its iterates move monotonically toward q*, the first root
    of g(q) = f(q) − q beyond ``q0`` in the direction of motion. Up to 64 steps of the
    iteration are taken first (a point stops once a step moves it by at most 1e-14·q); a
    point still moving (near the order–chaos transition, where f′(q*) → 1 and the
    iteration crawls) is bracketed by doubling its last step until g changes sign (or q
    passes 1e30 or 1e-30, beyond which a Lipschitz φ's map is linear: inf or 0), and the
    root is found by bisection to 1e-15 relative. A point whose bracket search meets a NaN
    falls back to the iteration, for up to 100 000 layers.

    Args:
        activation: an activation or its spec.
        sigma_w2, sigma_b2: σ_w² = fan_in·Var(W) and Var(b), broadcast with ``q0``.
        q0: the input's second moment.
        max_layers: None for the limit; a number for the iterate after at most that many
            layers (a net of that depth), by plain iteration.
        order: Gauss–Legendre nodes per panel of the quadrature (see ``moments``).
    """
    act = _activations.get(activation)
    q, w2, b2 = (np.array(a, dtype=float) for a in np.broadcast_arrays(q0, sigma_w2, sigma_b2))
    layers = WARM_LAYERS if max_layers is None else max_layers
    active, step = _iterate(act, q, w2, b2, np.ones(q.shape, dtype=bool), layers, order)
    if max_layers is None and active.any():
        lost = _solve(act, q, w2, b2, active, step, order)
        _iterate(act, q, w2, b2, lost, 100_000, order)
    return _out(q)


def _iterate(act: Any, q: np.ndarray, w2: np.ndarray, b2: np.ndarray, active: np.ndarray,
             layers: int, order: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Iterate the ``active`` points of ``q`` in place for up to ``layers`` steps; the points
    still moving and each point's last step f(q) − q."""
    step = np.zeros(q.shape)
    for _ in range(layers):
        if not active.any():
            break
        if active.all():  # the whole array (a scalar stays a scalar)
            q_old, q_next = q.copy(), np.asarray(length_map(act, q, w2, b2, order))
        else:  # only the points still moving
            q_old = q[active]
            q_next = np.asarray(length_map(act, q_old, w2[active], b2[active], order))
        settled = np.abs(q_next - q_old) <= RTOL * q_old
        step[active] = q_next - q_old
        q_next = np.where(~(q_next < HUGE), math.inf, np.where(q_next < TINY, 0.0, q_next))
        q[active] = q_next
        active[active] = ~settled & (q_next > 0) & (q_next < math.inf)
    return active, step


# Where the bracket search gives up: above 1e30 (below 1e-30) an activation that grows at
# most linearly (every registered one) has a length map in its linear regime, f(q) ≈ a·q + b,
# whose g = f(q) − q keeps its sign from there on: q explodes (vanishes).
_FAR = 1e30


def _solve(act: Any, q: np.ndarray, w2: np.ndarray, b2: np.ndarray, active: np.ndarray,
           step: np.ndarray, order: int) -> np.ndarray:  # fmt: skip
    """Solve g(q) = f(q) − q = 0 for the ``active`` points of ``q`` in place (see
    ``fixed_point``); the points whose bracket search met a NaN (left as they were)."""
    idx = np.flatnonzero(active)
    flat_q = q.reshape(-1)
    near, sign = flat_q[idx].copy(), np.sign(step.reshape(-1)[idx])
    w, b = w2.reshape(-1)[idx], b2.reshape(-1)[idx]

    def g(x: np.ndarray, k: np.ndarray) -> np.ndarray:
        return np.asarray(length_map(act, x, w[k], b[k], order)) - x

    # Bracket: `near` keeps g's sign (the iterates' side), `far` has the other sign.
    far = np.full(idx.shape, math.nan)
    result = np.full(idx.shape, math.nan)
    open_ = np.ones(idx.shape, dtype=bool)
    delta = step.reshape(-1)[idx]
    for _ in range(4096):
        k = np.flatnonzero(open_)
        if not k.size:
            break
        cand = near[k] + 2 * delta[k]
        down = cand <= near[k] / 16  # moving down past 0: shrink geometrically instead
        cand = np.where(down & (sign[k] < 0), near[k] / 16, cand)
        out = (cand >= _FAR) | (cand < 1 / _FAR)
        result[k[out]] = np.where(cand[out] >= _FAR, math.inf, 0.0)
        gk = g(cand, k)
        # a sign within float64's rounding of f(q) (~1e-16·q) is no evidence of a root:
        # at the critical point itself g(q) = O(q²) and q* = 0 is reached through it
        crossed = ~out & (np.sign(gk) != sign[k]) & (np.abs(gk) > 1e-15 * cand)
        bad = ~out & np.isnan(gk)
        far[k[crossed]] = cand[crossed]
        moving = ~out & ~crossed & ~bad
        delta[k[moving]] = cand[moving] - near[k[moving]]
        near[k[moving]] = cand[moving]
        open_[k[out | crossed | bad]] = False
        result[k[bad]] = math.nan
    lost = np.isnan(result) & np.isnan(far)
    # Bisection (geometric while the bracket spans more than a factor 4).
    live = ~np.isnan(far)
    for _ in range(400):
        k = np.flatnonzero(live)
        if not k.size:
            break
        lo, hi = np.minimum(near[k], far[k]), np.maximum(near[k], far[k])
        done = hi - lo <= 1e-15 * hi
        mid = np.where(hi > 4 * lo, np.sqrt(lo * hi), 0.5 * (lo + hi))
        gm = g(mid, k)
        same = np.sign(gm) == sign[k]
        near[k] = np.where(same & ~done, mid, near[k])
        far[k] = np.where(~same & ~done, mid, far[k])
        zero = gm == 0
        result[k[zero]] = mid[zero]
        result[k[done & ~zero]] = near[k[done & ~zero]]
        live[k[done | zero]] = False
    keep = ~lost
    flat_q[idx[keep]] = result[keep]
    mask = np.zeros(q.size, dtype=bool)
    mask[idx[lost]] = True
    return mask.reshape(q.shape)


def correlation_fixed_point(
    activation: Act, q: Any, sigma_w2: Any, sigma_b2: Any = 0.0, steps: int = 60
) -> Any:
    """The stable fixed point c* of the correlation map at a fixed point q* of the length map
    (c ↦ (σ_w²·E[φ(u)φ(v)] + σ_b²)/q*), per point; broadcasts.

    Where χ₁ <= 1 (ordered) c = 1 attracts and c* = 1. Where χ₁ > 1 (chaotic) c = 1 repels
    and c* < 1 is the root of h(c) = map(c) − c in [0, 1): h(0) >= 0 (for σ_b² >= 0 the map
    sends 0 to (σ_w²·E[φ]² + σ_b²)/q* >= 0) and h < 0 just below 1. Halving [0, 1) until a
    point with h < 0 is found keeps c = 1 (a root too) out of the bracket; the Illinois
    variant of regula falsi then solves to 1e-12 in c, within ``steps`` evaluations in all.
    q* must be the length map's fixed point, 0 < q* < inf.
    """
    act = _activations.get(activation)
    q, w2, b2 = (np.array(a, dtype=float) for a in np.broadcast_arrays(q, sigma_w2, sigma_b2))
    out = np.ones(q.shape)
    chaotic = np.asarray(chi1(act, w2, q)) > 1
    if chaotic.any():
        out[chaotic] = _correlation_root(act, q[chaotic], w2[chaotic], b2[chaotic], steps)
    return _out(out)


def _correlation_root(act: Any, q: np.ndarray, w2: np.ndarray, b2: np.ndarray,
                      steps: int) -> np.ndarray:  # fmt: skip
    """c* of chaotic points (see ``correlation_fixed_point``)."""

    def h(c: np.ndarray, k: np.ndarray) -> np.ndarray:
        return (w2[k] * np.asarray(kernel(act, q[k], c)) + b2[k]) / q[k] - c

    every = np.arange(q.size)
    lo, hi = np.zeros(q.size), np.ones(q.size)
    h_lo, h_hi = h(lo, every), np.zeros(q.size)
    # odd φ without bias: c* = 0 exactly (h(0) = 0 up to the rule's rounding, ~1e-13)
    done = np.abs(h_lo) <= 1e-12
    result = np.where(done, 0.0, np.nan)
    side = np.zeros(q.size)  # Illinois: which end moved last (+1 lo, −1 hi)
    for _ in range(steps):
        k = np.flatnonzero(~done)
        if not k.size:
            break
        open_ = h_hi[k] == 0  # no point with h < 0 yet: halve towards 1
        mid = np.where(open_, 0.5 * (lo[k] + hi[k]),
                       (lo[k] * h_hi[k] - hi[k] * h_lo[k]) / (h_hi[k] - h_lo[k]))  # fmt: skip
        hm = h(mid, k)
        up = hm > 0
        lo[k], hi[k] = np.where(up, mid, lo[k]), np.where(up, hi[k], mid)
        # Illinois: halve the stale end's value when the same end moves twice
        stale_hi = up & (side[k] > 0) & ~open_
        stale_lo = ~up & (side[k] < 0) & ~open_
        h_lo[k] = np.where(up, hm, h_lo[k])
        h_hi[k] = np.where(up, np.where(stale_hi, 0.5 * h_hi[k], h_hi[k]), hm)
        h_lo[k] = np.where(stale_lo, 0.5 * h_lo[k], h_lo[k])
        side[k] = np.where(up, 1.0, -1.0)
        settled = (hi[k] - lo[k] <= 1e-12) | (hm == 0)
        result[k[settled]] = mid[settled]
        done[k[settled]] = True
    left = ~done
    result[left] = 0.5 * (lo[left] + hi[left])
    return result

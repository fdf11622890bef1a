r"""The order–chaos phase diagram of a deep MLP (Poole et al. 2016, Schoenholz et al. 2017).

For weights of variance σ_w²/fan_in and biases of variance σ_b², the pre-activation second
moment settles at the fixed point q* of q ↦ σ_w²·E[φ(√q z)²] + σ_b², and

    χ₁ = σ_w² · E[φ'(√q* z)²]

decides the phase: χ₁ < 1 is *ordered* (distinct inputs become alike with depth, gradients
vanish), χ₁ > 1 *chaotic* (nearby inputs decorrelate, gradients explode), χ₁ = 1 is the
critical line (the edge of chaos), where signals travel deepest.

Three depth scales, in layers (Schoenholz et al. 2017, eqs. 6-9):

- ξ₁ = 1/|ln χ₁| (``depth_scale``): a perturbation of one input, and the gradient's second
  moment, shrink (ordered) or grow (chaotic) by e every ξ₁ layers.
- ξ_c = −1/ln χ_c (``xi_c``), χ_c = σ_w²·E[φ′(u₁)φ′(u₂)] at the correlation map's stable
  fixed point c* (``c_star``): how many layers the correlation of two inputs takes to close
  a factor e of its distance to c*. In the ordered phase c* = 1 and ξ_c = ξ₁; in the chaotic
  phase c* < 1 and χ_c ≠ χ₁ (tanh at σ_w² = 25/9, σ_b² = 0: c* = 0, ξ_c = 12.1, ξ₁ = 5.25).
- ξ_q = −1/ln χ_q (``xi_q``), χ_q the slope of the length map at q*: how fast q settles.

Where q* is 0 or inf (the signal vanishes or explodes) the scales are taken at c* = 1, as
limits at q = 1e-300 or 1e300.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from initsuite import activations as _activations
from initsuite import schemes as _schemes
from initsuite.core.bias import bias_law
from initsuite.core.errors import InitsuiteError
from initsuite.theory.maps import (
    HUGE,
    TINY,
    chi1,
    correlation_fixed_point,
    fixed_point,
    length_slope,
    slope_kernel,
)
from initsuite.theory.meanfield import weight_prior

__all__ = ["critical_sigma_w2", "phase_diagram", "scheme_points"]


def _table(act: _activations.Activation, sw2: np.ndarray, sb2: np.ndarray,
           iterations: int | None, order: int = 24) -> dict[str, np.ndarray]:  # fmt: skip
    """q*, χ₁ there, the depth scales and the phase of each (σ_w², σ_b²) point."""
    q = fixed_point(act, sw2, sb2, max_layers=iterations, order=order)
    # χ₁ of a vanishing (q* = 0) or exploding (q* = inf) point is its limit, taken at
    # q = 1e-300 or 1e300: at q = 0 itself autograd would see only the kink's one side
    qc = np.clip(q, TINY, HUGE)
    chi = chi1(act, sw2, qc)
    critical = np.abs(chi - 1) < 1e-9  # depth scales beyond 1e9 layers: unbounded
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = np.where(critical, np.inf, 1.0 / np.abs(np.log(chi)))
    phase = np.where(critical, "critical", np.where(chi < 1, "ordered", "chaotic"))
    finite = (q > 0) & (q < np.inf)
    c_star, chi_c = np.ones(q.shape), np.array(chi, dtype=float, copy=True).reshape(q.shape)
    chi_q = np.full(q.shape, np.nan)
    if finite.any():
        qf, wf, bf = q[finite], sw2[finite], sb2[finite]
        c_star[finite] = correlation_fixed_point(act, qf, wf, bf)
        below = c_star < 1  # the chaotic points: χ_c at c* < 1, which is not χ₁
        if below.any():
            chi_c[below] = sw2[below] * np.asarray(slope_kernel(act, q[below], c_star[below]))
        chi_q[finite] = length_slope(act, qf, wf, order)
    with np.errstate(divide="ignore", invalid="ignore"):
        # a vanishing or exploding point has no c* < 1 to approach: its ξ_c is ξ₁'s limit
        xi_c = np.where(finite & ~critical, np.where(chi_c < 1, -1.0 / np.log(chi_c), np.inf),
                        xi)  # fmt: skip
        xi_q = np.where(chi_q < 1, -1.0 / np.log(chi_q), np.where(np.isnan(chi_q), np.nan,
                                                                    np.inf))  # fmt: skip
    return {"sigma_w2": sw2, "sigma_b2": sb2, "q_star": q, "chi1": chi, "depth_scale": xi,
            "c_star": c_star, "chi_c": chi_c, "xi_c": xi_c, "chi_q": chi_q, "xi_q": xi_q,
            "phase": phase}  # fmt: skip


def _grid(name: str, values: Sequence[float] | np.ndarray) -> np.ndarray:
    """A 1-d grid of finite variances >= 0 (the fixed-point map takes their square roots)."""
    try:
        out = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError):
        raise InitsuiteError(f"{name} must be numbers, got {values!r}") from None
    if out.size == 0 or not (np.isfinite(out).all() and (out >= 0).all()):
        raise InitsuiteError(f"{name} must be finite numbers >= 0, got {values!r}")
    return out


def phase_diagram(
    activation: str | _activations.Activation,
    sigma_w2: Sequence[float] | np.ndarray | None = None,
    sigma_b2: Sequence[float] | np.ndarray | None = None,
    *,
    iterations: int | None = None,
) -> Any:
    """A tidy DataFrame over the (σ_w², σ_b²) grid: ``q_star``, ``chi1``, ``depth_scale``
    (ξ₁ = 1/|ln χ₁|), ``c_star``, ``chi_c``, ``xi_c``, ``chi_q``, ``xi_q`` (depth scales in
    layers; see the module docstring) and ``phase`` per grid point.

    Defaults: σ_w² from 0.05 to 4 (33 points), σ_b² from 0 to 0.5 (17 points). q* is the
    limit of the length map from q = 1 (``fixed_point``), or with ``iterations`` its
    iterate after that many layers.
    """
    import pandas as pd

    act = _activations.get(activation)
    w = np.linspace(0.05, 4.0, 33) if sigma_w2 is None else _grid("sigma_w2", sigma_w2)
    b = np.linspace(0.0, 0.5, 17) if sigma_b2 is None else _grid("sigma_b2", sigma_b2)
    ww, bb = np.meshgrid(w, b, indexing="ij")
    # 8 nodes per panel resolve φ(√q z) to ~1e-9 for q ≲ 20, a third of the cost of 24
    order = 8 if w.max() <= 20 and b.max() <= 1 else 24
    out = pd.DataFrame(_table(act, ww.ravel(), bb.ravel(), iterations, order))
    out.insert(0, "activation", act.spec)
    return out


def _chosen(specs: Iterable[str | _schemes.Scheme]) -> list[_schemes.Scheme]:
    """The schemes ``specs`` name (``all`` and wildcards expanded); Scheme objects as given."""
    out: list[_schemes.Scheme] = []
    for item in specs:
        if isinstance(item, _schemes.Scheme):
            out.append(item)
        else:
            out.extend(_schemes.get(spec) for spec in _schemes.expand([item]))
    return out


def scheme_points(
    activation: str | _activations.Activation,
    specs: Iterable[str | _schemes.Scheme] = ("all",),
    width: int = 256,
    bias: str | None = None,
    iterations: int | None = None,
) -> Any:
    """Where each scheme puts a width × width MLP with this activation: one row per scheme
    that mean-field theory applies to (centred, random), with its (σ_w², σ_b²), its phase
    and depth scales (the columns of ``phase_diagram``). ``bias``: the layers' bias law
    (:mod:`initsuite.core.bias`: None, ``"torch_default"`` or ``"zeros"``)."""
    import pandas as pd

    act = _activations.get(activation)
    bias = bias_law(bias)
    rows = []
    for scheme in _chosen(specs):
        prior = weight_prior(scheme, scheme.resolve(act), width, bias)
        if prior is not None and not math.isfinite(prior[0]):
            raise InitsuiteError(
                f"scheme {scheme.spec!r}: σ_w² = {prior[0]!r} at width {width} is beyond "
                "float64's range, so it has no phase"
            )
        if prior is not None:
            rows.append((scheme.spec, *prior))
    if not rows:
        return pd.DataFrame(columns=["activation", "scheme", "sigma_w2", "sigma_b2", "q_star",
                                     "chi1", "depth_scale", "c_star", "chi_c", "xi_c", "chi_q",
                                     "xi_q", "phase"])  # fmt: skip
    sw2 = np.array([r[1] for r in rows])
    sb2 = np.array([r[2] for r in rows])
    out = pd.DataFrame(_table(act, sw2, sb2, iterations))
    out.insert(0, "scheme", [r[0] for r in rows])
    out.insert(0, "activation", act.spec)
    return out


def critical_sigma_w2(activation: str | _activations.Activation, sigma_b2: float = 0.0) -> float:
    """σ_w² on the critical line χ₁ = 1 at this σ_b², NaN if χ₁ − 1 does not change sign
    between σ_w² = 1e-3 and 100.

    χ₁ at the fixed point q* (``fixed_point``: a root finder, exact near the transition
    where the iteration crawls) crosses 1 once along σ_w²; the crossing is bisected in
    log σ_w² to 1e-12 relative.
    """
    act = _activations.get(activation)
    (sigma_b2,) = _grid("sigma_b2", [sigma_b2])

    def above(sw2: float) -> bool:
        q = fixed_point(act, sw2, sigma_b2)
        return bool(chi1(act, sw2, min(max(q, TINY), HUGE)) > 1)

    lo, hi = 1e-3, 100.0
    lo_above = above(lo)
    if lo_above == above(hi):
        return math.nan
    while hi / lo > 1 + 1e-12:
        mid = math.sqrt(lo * hi)
        if above(mid) == lo_above:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)

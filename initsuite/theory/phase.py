r"""The order–chaos phase diagram of a deep MLP (Poole et al. 2016, Schoenholz et al. 2017).

For weights of variance σ_w²/fan_in and biases of variance σ_b², the pre-activation second
moment settles at the fixed point q* of q ↦ σ_w²·E[φ(√q z)²] + σ_b², and

    χ₁ = σ_w² · E[φ'(√q* z)²]

decides the phase: χ₁ < 1 is *ordered* (distinct inputs become alike with depth, gradients
vanish), χ₁ > 1 *chaotic* (nearby inputs decorrelate, gradients explode), χ₁ = 1 is the
critical line (the edge of chaos), where signals travel deepest. The depth scale
ξ = 1/|ln χ₁| is how many layers a perturbation takes to shrink (ordered) or grow (chaotic)
by a factor e; it diverges on the critical line.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from initsuite import activations as _activations
from initsuite import schemes as _schemes
from initsuite.core.errors import InitsuiteError
from initsuite.theory.maps import HUGE, TINY, chi1, fixed_point
from initsuite.theory.meanfield import weight_prior

__all__ = ["critical_sigma_w2", "phase_diagram", "scheme_points"]


def _table(act: _activations.Activation, sw2: np.ndarray, sb2: np.ndarray,
           iterations: int, order: int = 24) -> dict[str, np.ndarray]:  # fmt: skip
    """q*, χ₁ there, the depth scale and the phase of each (σ_w², σ_b²) point."""
    q = fixed_point(act, sw2, sb2, max_layers=iterations, order=order)
    # χ₁ of a vanishing (q* = 0) or exploding (q* = inf) point is its limit, taken at
    # q = 1e-300 or 1e300: at q = 0 itself autograd would see only the kink's one side
    chi = chi1(act, sw2, np.clip(q, TINY, HUGE))
    with np.errstate(divide="ignore"):
        xi = 1.0 / np.abs(np.log(chi))
    phase = np.where(np.abs(chi - 1) < 1e-9, "critical", np.where(chi < 1, "ordered", "chaotic"))
    return {"sigma_w2": sw2, "sigma_b2": sb2, "q_star": q, "chi1": chi, "depth_scale": xi,
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
    iterations: int = 300,
) -> Any:
    """A tidy DataFrame over the (σ_w², σ_b²) grid: ``q_star``, ``chi1``, ``depth_scale``
    (ξ = 1/|ln χ₁|, in layers) and ``phase`` per grid point.

    Defaults: σ_w² from 0.05 to 4 (33 points), σ_b² from 0 to 0.5 (17 points). The fixed
    point is iterated from q = 1 for at most ``iterations`` layers, as a deep net would be.
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


def scheme_points(
    activation: str | _activations.Activation,
    specs: Iterable[str] = ("all",),
    width: int = 256,
    bias: bool = False,
    iterations: int = 400,
) -> Any:
    """Where each scheme puts a width × width MLP with this activation: one row per scheme
    that mean-field theory applies to (centred, random), with its (σ_w², σ_b²) and phase."""
    import pandas as pd

    act = _activations.get(activation)
    rows = []
    for spec in _schemes.expand(list(specs)):
        scheme = _schemes.get(spec)
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
                                     "chi1", "depth_scale", "phase"])  # fmt: skip
    sw2 = np.array([r[1] for r in rows])
    sb2 = np.array([r[2] for r in rows])
    out = pd.DataFrame(_table(act, sw2, sb2, iterations))
    out.insert(0, "scheme", [r[0] for r in rows])
    out.insert(0, "activation", act.spec)
    return out


def critical_sigma_w2(activation: str | _activations.Activation, sigma_b2: float = 0.0) -> float:
    """σ_w² on the critical line χ₁ = 1 at this σ_b² (bisection on the ordered/chaotic
    boundary between σ_w² = 1e-3 and 100; NaN if χ₁ does not cross 1 there)."""
    act = _activations.get(activation)
    (sigma_b2,) = _grid("sigma_b2", [sigma_b2])

    def above(sw2: float) -> bool:
        chi = _table(act, np.array([sw2]), np.array([sigma_b2]), 1000)["chi1"][0]
        return bool(chi > 1)

    lo, hi = 1e-3, 100.0
    if above(lo) == above(hi):
        return math.nan
    lo_above = above(lo)
    for _ in range(36):  # the bracket's ratio 1e5 shrinks to 1 + 1e-9
        mid = math.sqrt(lo * hi)
        if above(mid) == lo_above:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)

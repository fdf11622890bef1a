"""The constants of kernel-shaping transforms (DKS, Martens et al. 2021; TAT, Zhang, Martens &
Grosse 2022), solved with initsuite's own quadrature.

A transformed activation is φ̂(x) = γ·(φ(α·x + β) + δ). For z ~ N(0, 1) and u = α·z + β, the
local maps of one layer at q = 1 are

    Q(1)   = E[φ̂(z)²]                      = 1 (fixes γ)
    Q′(1)  = E[φ̂(z)·φ̂′(z)·z]               (the local q-map slope)
    C(0)   = E[φ̂(z)]²                      (DKS: 0, so δ = -E[φ(u)])
    C′(1)  = E[φ̂′(z)²]                     (the local c-map slope)
    C″(1)  = E[φ̂″(z)²]                     (the local c-map curvature)

For a plain MLP of D nonlinear layers the network's c-map is the local one composed D times,
so C′_net(1) = C′(1)^D and C″_net(1) = D·C″(1) (when C′(1) = 1): DKS asks C′(1) = ζ^(1/D)
with Q′(1) = 1, TAT on a smooth φ asks C′(1) = 1, C″(1) = τ/D with Q′(1) = 1, and TAT on a
leaky ReLU picks the negative slope whose D-fold composed c-map has C(0) = η. The unknowns are
found as DeepMind's ``dks`` package finds them (``scipy.optimize.root``, method ``hybr``, from
the same starting points in the same order, then the same seeded random ones), so that where
several roots exist (±β for tanh) the same one is returned.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from initsuite.activations.registry import Activation
from initsuite.core.errors import InitsuiteError
from initsuite.core.quadrature import split_normal_rule

__all__ = ["Constants", "leaky_relu_cmap", "leaky_relu_reach", "solve_leaky_relu", "solve_smooth"]

# dks's starting points: each unknown's values tried first (their product, in this order),
# then seeded uniform draws in these ranges, 50 starts in all.
_ALWAYS_TRY = {"input_scale": (1.0, 0.1), "input_shift": (0.0, 1.0, -1.0),
               "output_shift": (0.0, 1.0, -1.0), "negative_slope": (0.0, 0.5)}  # fmt: skip
_LOW = {"input_scale": 0.0, "input_shift": -3.0, "output_shift": -3.0, "negative_slope": 0.0}
_HIGH = {"input_scale": 2.0, "input_shift": 3.0, "output_shift": 3.0, "negative_slope": 1.0}
_TRIES, _SEED = 50, 123


@dataclass(frozen=True)
class Constants:
    """φ̂(x) = γ·(φ(α·x + β) + δ), φ at ``negative_slope`` where it has one (leaky ReLU)."""

    alpha: float
    beta: float
    gamma: float
    delta: float
    negative_slope: float | None = None


def _derivatives(act: Activation, u: np.ndarray, order: int) -> list[np.ndarray]:
    """[φ(u), φ′(u), ..., φ^(order)(u)] by torch autograd in float64."""
    x = torch.from_numpy(u).requires_grad_()
    out = [act(x)]
    for k in range(order):
        y = out[-1]
        if not y.requires_grad:  # piecewise linear: the next derivative is 0
            out.append(torch.zeros_like(x))
            continue
        (g,) = torch.autograd.grad(y.sum(), x, create_graph=k + 1 < order, allow_unused=True)
        out.append(torch.zeros_like(x) if g is None else g)
    return [t.detach().numpy() for t in out]


def _starts(names: Sequence[str]) -> list[tuple[float, ...]]:
    fixed = list(itertools.product(*(_ALWAYS_TRY[n] for n in names)))
    rng = np.random.RandomState(_SEED)  # dks seeds numpy's global generator with the same
    drawn = [tuple(rng.uniform(_LOW[n], _HIGH[n]) for n in names)
             for _ in range(_TRIES - len(fixed))]  # fmt: skip
    return fixed + drawn


def _layer(base: Activation, p: dict[str, float], dks: bool) -> tuple[Constants, list[float]]:
    """The constants at unknowns ``p`` (γ from Q(1) = 1; δ from C(0) = 0 for DKS) and the
    local maps [Q′(1), C′(1), C″(1)] of the transformed activation."""
    alpha, beta = float(p.get("input_scale", 1.0)), float(p.get("input_shift", 0.0))
    slope = None if "negative_slope" not in p else float(p["negative_slope"])
    phi = base if slope is None else Activation(base.info, {"negative_slope": float(slope)})
    # φ kinks at u = 0, i.e. at z = -β/α: a panel edge there keeps the rule exact
    z, w = split_normal_rule(-beta / alpha if alpha else math.inf)
    f, d1, *d2 = _derivatives(phi, alpha * z + beta, 1 if dks else 2)
    delta = -float(f @ w) if dks else float(p["output_shift"])
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = float(1.0 / np.sqrt((f + delta) ** 2 @ w))
    q_slope = gamma**2 * alpha * float(((f + delta) * d1 * z) @ w)
    c_slope = (gamma * alpha) ** 2 * float(d1**2 @ w)
    c_curv = (gamma * alpha**2) ** 2 * float(d2[0] ** 2 @ w) if d2 else math.nan
    return Constants(alpha, beta, gamma, delta, slope), [q_slope, c_slope, c_curv]


def solve_smooth(base: Activation, method: str, local: float, owner: str) -> Constants:
    """α, β, γ, δ (and the negative slope of a leaky ReLU) meeting the local targets.

    Args:
        base: the activation to transform.
        method: ``"dks"`` (Q′(1) = 1, C(0) = 0, C′(1) = ``local``) or ``"tat"`` (Q′(1) = 1,
            C′(1) = 1, C″(1) = ``local``; solutions with α·γ >= 2 rejected, as dks does).
        local: the layer's target, ζ^(1/D) or τ/D.
        owner: what the error message names (the spec).

    Raises:
        InitsuiteError: no start reached a solution.
    """
    import scipy.optimize  # 0.7 s to import: only when a constant is solved

    dks = method == "dks"
    if base.name == "leaky_relu":
        names: tuple[str, ...] = ("negative_slope", "input_shift")
    else:
        names = ("input_scale", "input_shift") if dks else ("input_scale", "input_shift",
                                                             "output_shift")  # fmt: skip
    targets = [1.0, local] if dks else [1.0, 1.0, local]

    def residual(x: np.ndarray) -> np.ndarray:
        maps = _layer(base, dict(zip(names, x, strict=True)), dks)[1]
        return np.asarray(maps[: len(targets)]) - targets

    for start in _starts(names):
        with np.errstate(all="ignore"):
            sol = scipy.optimize.root(residual, np.asarray(start), method="hybr")
        if not sol.success:
            continue
        consts = _layer(base, dict(zip(names, sol.x, strict=True)), dks)[0]
        if dks or consts.alpha * consts.gamma < 2.0:  # dks's rule, on the root as found
            # u = α·z + β has the same law for -α: every condition holds for both roots, and
            # a positive α is the one dks's starts (all α > 0) usually reach
            return dataclasses.replace(consts, alpha=abs(consts.alpha))
    what = "C'(1)" if dks else "C''(1)"
    raise InitsuiteError(
        f"{owner}: no solution found (each layer's {what} = {local:.6g}, "
        f"from {_TRIES} starting points); try another target or activation"
    )


def leaky_relu_cmap(c: float, negative_slope: float) -> float:
    """The local c-map of a leaky ReLU scaled to Q(1) = 1 (the arc-cosine kernel)."""
    s = negative_slope
    arc = (math.sqrt(max(1.0 - c * c, 0.0)) + (math.pi - math.acos(c)) * c) / math.pi
    return ((1 - s) ** 2 * arc + 2 * s * c) / (1 + s * s)


def _composed_c0(negative_slope: float, depth: int) -> float:
    c = 0.0
    for _ in range(depth):
        c = leaky_relu_cmap(c, negative_slope)
    return c


def leaky_relu_reach(depth: int) -> float:
    """The largest network C(0) a leaky-ReLU chain of ``depth`` layers reaches (at negative
    slope 0, a ReLU chain): TAT's η must lie below it."""
    return _composed_c0(0.0, depth)


def solve_leaky_relu(eta: float, depth: int, on_fail: Callable[[float], str]) -> Constants:
    """The negative slope s whose ``depth``-fold composed c-map has C(0) = η, and γ =
    √(2 / (1 + s²)) for Q(1) = 1. ``on_fail(reach)`` words the refusal of an η out of reach."""
    import scipy.optimize

    reach = leaky_relu_reach(depth)
    if eta >= reach:
        raise InitsuiteError(on_fail(reach))
    # C(0) falls from `reach` at s = 0 to 0 at s = 1 (a linear chain)
    s = scipy.optimize.brentq(lambda a: _composed_c0(a, depth) - eta, 0.0, 1.0,
                              xtol=1e-15, rtol=4 * np.finfo(float).eps)  # fmt: skip
    return Constants(1.0, 0.0, math.sqrt(2.0 / (1.0 + s * s)), 0.0, float(s))

r"""Mean-field predictions for the conv and residual-MLP nets a sweep runs
(:mod:`initsuite.engine.archs`), in the frame of the MLP's (:mod:`initsuite.theory.meanfield`).

**Conv** (``conv:kernel=k,image=P``, same padding, stride 1). Weight entries of variance
σ_w²/fan_in (fan_in = c_in·k²) give each output pixel p a pre-activation second moment

    q_{l+1}(p) = σ_w² · Σ_t ω_t · E[φ(√q_l(p+t) z)²] + σ_b²,

summed over the kernel's taps t whose pixel p+t lies inside the image: the zero padding
contributes nothing, so border pixels see fewer taps. ω_t is the share of the kernel's
variance at tap t: 1/k² at every tap for i.i.d. kernels (the MLP's map with fan_in = c_in·k²
in the interior), 1 at the centre for delta-orthogonal kernels, which are the orthogonal
MLP at every pixel with no boundary effect (Xiao et al. 2018). On a small image the border
matters at every depth: a linear net with σ_w² = 1 keeps q = 1 in the MLP, but loses about
8% of its variance per layer on an 8×8 image with k = 3 (the top eigenvalue of the padded
averaging, ((1 + 2·cos(π/9))/3)² ≈ 0.921). The map is propagated pixel by pixel from the
N(0, 1) input (E[x²] = 1 everywhere), and the prediction is of the statistic the engine
measures, pooled over batch × channels × pixels: the pixels' mean of E[φ²] less the square of
their mean of E[φ].

**Residual MLP** (``resmlp:branch=m,scale=α``; Yang & Schoenholz 2017). h ← h + α·f(h),
f(h) = W_m φ(⋯ φ(W_1 φ(h))) (+ a bias per layer), so with fresh centred weights

    q_{l+1} = q_l + α² · q_m,   q_1^u = σ_{w,1}²·E[φ(√q_l z)²] + σ_b²,
    q_j^u = σ_{w,j}²·E[φ(√q_{j-1}^u z)²] + σ_b²,

each σ_{w,j}² from the scheme's variance at the weight's role
(:meth:`~initsuite.schemes.SchemeInfo.layer_variance`: Fixup's zero projections and scaled
branches, GPT-2's std²/N), α the architecture's or the scheme's (SkipInit and ReZero set it
to 0). Fixup, SkipInit, ReZero and ``scale=zero`` are exact identities at init: q stays 1.
h is centred and not squashed, so its std is √q.

Divergence follows :func:`~initsuite.theory.meanfield.cell_theory`'s rule: overflow when the
largest of the n values a layer computes (n = batch × width, × pixels for conv) exceeds the
dtype's largest finite value, underflow when the std falls below its smallest normal. A
residual block computes φ(h), the branch's pre-activations and h + α·f(h); the largest of
them counts (the branch only where α ≠ 0: with α = 0 the engine returns h itself).

Every function works in float64 numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from initsuite import activations as _activations
from initsuite.core.errors import InitsuiteError, unknown
from initsuite.schemes import TAPS, LayerContext
from initsuite.theory.maps import HUGE, moments, second_moment
from initsuite.theory.meanfield import CellTheory, first_divergence, weight_prior

__all__ = [
    "NetMoments", "conv_moments", "conv_prior", "conv_theory", "residual_scale",
    "resmlp_moments", "resmlp_priors", "resmlp_theory",
]  # fmt: skip

Prior = tuple[float, float]  # (σ_w², σ_b²)


@dataclass(frozen=True)
class NetMoments:
    """Predicted statistics of layers (conv) or blocks (resmlp) 1..depth (index 0 is 1):
    ``std`` of the values the engine measures; ``act_q`` and ``raw_q``, the largest second
    moment of a value the layer passes through φ and of one it keeps as it is (0: none),
    whose extremes over n draws set overflow. inf once q leaves float64's range."""

    std: tuple[float, ...]
    act_q: tuple[float, ...]
    raw_q: tuple[float, ...]


def _check_prior(sigma_w2: float, sigma_b2: float) -> None:
    for name, value in (("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2)):
        if not value >= 0:  # nan included
            raise InitsuiteError(f"{name} must be >= 0, got {value!r}")


def _tap_shares(kernel: int, taps: str) -> np.ndarray:
    """ω: the share of a k × k kernel's variance at each tap (summing to 1)."""
    if taps == "all":
        return np.full((kernel, kernel), 1.0 / kernel**2)
    if taps == "centre":
        shares = np.zeros((kernel, kernel))
        shares[kernel // 2, kernel // 2] = 1.0
        return shares
    raise InitsuiteError(unknown("taps", taps, TAPS))


def _spread(m2: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Σ_t ω_t · m2(p + t) over the taps inside the image (zero padding), at every pixel p:
    the cross-correlation a same-padded Conv2d applies."""
    k, size = shares.shape[0], m2.shape[0]
    padded = np.pad(m2, k // 2)
    out = np.zeros_like(m2)
    for i in range(k):
        for j in range(k):
            if shares[i, j]:
                out += shares[i, j] * padded[i : i + size, j : j + size]
    return out


def conv_moments(
    activation: str | _activations.Activation,
    sigma_w2: float,
    sigma_b2: float,
    depth: int,
    kernel: int,
    image: int,
    taps: str = "all",
) -> NetMoments:
    """Pooled post-activation std of conv layers 1..depth (see the module docstring).

    Args:
        activation: the activation after every conv.
        sigma_w2, sigma_b2: σ_w² = fan_in·Var(W) (fan_in = c_in·k²) and Var(b).
        depth: layers.
        kernel, image: the kernel's and the (square) image's side; padding kernel // 2.
        taps: ``"all"`` (i.i.d. kernels) or ``"centre"`` (delta-orthogonal).

    Memoised: it depends on these arguments only, which schemes of equal variance share.
    """
    act = _activations.get(activation)
    _check_prior(sigma_w2, sigma_b2)
    key = (act.spec, float(sigma_w2), float(sigma_b2), int(depth), int(kernel), int(image), taps)
    if key not in _CONV:
        if len(_CONV) > 1024:  # a long-lived process sweeping many grids: memory stays bounded
            _CONV.clear()
        _CONV[key] = _conv_moments(act, sigma_w2, sigma_b2, depth, kernel, image, taps)
    return _CONV[key]


_CONV: dict[tuple[Any, ...], NetMoments] = {}


def _conv_moments(
    act: _activations.Activation,
    sigma_w2: float,
    sigma_b2: float,
    depth: int,
    kernel: int,
    image: int,
    taps: str,
) -> NetMoments:
    shares = _tap_shares(kernel, taps)
    m2: np.ndarray = np.ones((image, image))  # E[x²] of the N(0, 1) input at every pixel
    std: list[float] = []
    peak: list[float] = []  # the largest pre-activation q: as the MLP's, φ's values count
    q_prev: np.ndarray | None = None
    for _ in range(depth):
        q = sigma_w2 * _spread(m2, shares) + sigma_b2
        if not (np.all(np.isfinite(q)) and q.max() <= HUGE):
            std += [math.inf] * (depth - len(std))
            peak += [math.inf] * (depth - len(peak))
            break
        if q_prev is not None and np.array_equal(q, q_prev):  # a fixed map: the rest repeat
            std += [std[-1]] * (depth - len(std))
            peak += [peak[-1]] * (depth - len(peak))
            break
        # symmetric pixels share their q: each distinct value is integrated once
        distinct, where = np.unique(q, return_inverse=True)
        m1, m2 = (np.asarray(m, dtype=float)[where].reshape(q.shape)
                  for m in moments(act, distinct))  # fmt: skip
        var = float(m2.mean() - m1.mean() ** 2)
        std.append(math.sqrt(max(var, 0.0)))
        peak.append(float(q.max()))
        q_prev = q
    return NetMoments(tuple(std), tuple(peak), (0.0,) * depth)


def resmlp_moments(
    activation: str | _activations.Activation,
    branch: Sequence[Sequence[Prior]],
    alpha: float,
) -> NetMoments:
    """Std of h after residual blocks 1..L (see the module docstring).

    Args:
        activation: φ in the branches.
        branch: per block, the (σ_w², σ_b²) of each of its m branch layers, in order.
        alpha: the branch multiplier α.
    """
    act = _activations.get(activation)
    q = 1.0  # E[x²] of the N(0, 1) input
    std: list[float] = []
    act_q: list[float] = []
    raw_q: list[float] = []
    for layers in branch:
        # φ(h) and the branch count only where α ≠ 0: with α = 0 the engine returns h itself
        top_act, top_raw = (q if alpha != 0.0 else 0.0), 0.0
        u = second_moment(act, q)
        for j, (w2, b2) in enumerate(layers, 1):
            _check_prior(w2, b2)
            qu = w2 * u + b2
            if alpha != 0.0:
                top_act = max(top_act, qu) if j < len(layers) else top_act
                top_raw = max(top_raw, qu)
            if j < len(layers) and math.isfinite(qu) and qu <= HUGE:
                u = second_moment(act, qu)
        q = q + alpha * alpha * qu if alpha != 0.0 else q
        top_raw = max(top_raw, q)
        if not (math.isfinite(top_raw) and top_raw <= HUGE and top_act <= HUGE):
            missing = len(branch) - len(std)
            std += [math.inf] * missing
            act_q += [math.inf] * missing
            raw_q += [math.inf] * missing
            break
        std.append(math.sqrt(q))
        act_q.append(top_act)
        raw_q.append(top_raw)
    return NetMoments(tuple(std), tuple(act_q), tuple(raw_q))


def _root(qs: Sequence[float]) -> np.ndarray:
    q = np.array(qs, dtype=float)
    finite = np.isfinite(q)
    return np.where(finite, np.sqrt(np.where(finite, q, 0.0)), math.inf)


def _theory(
    activation: _activations.Activation,
    net: NetMoments,
    n_values: int,
    finfo_max: float,
    finfo_tiny: float,
    sigma_w2: float,
    sigma_b2: float,
) -> CellTheory:
    """A :class:`CellTheory` of predicted stds and where they leave the dtype's range."""
    extreme = math.sqrt(2 * math.log(max(n_values, 2)))  # the largest of n N(0, 1) draws
    z = _root(net.act_q) * extreme
    finite = np.isfinite(z)
    zf = np.where(finite, z, 0.0)
    through = np.maximum(np.abs(activation.apply(zf)), np.abs(activation.apply(-zf)))
    peak = np.maximum(np.where(finite, through, math.inf), _root(net.raw_q) * extreme)
    div = first_divergence(peak, np.array(net.std), finfo_max, finfo_tiny)
    return CellTheory(list(net.std), div[0] if div else None, div[1] if div else None,
                      sigma_w2=sigma_w2, sigma_b2=sigma_b2)  # fmt: skip


def conv_prior(
    scheme: Any, params: dict[str, Any], width: int, kernel: int, bias: str | None
) -> Prior | None:
    """(σ_w², σ_b²) of a width → width k × k conv under ``scheme`` (fan_in = width·k²) and
    the bias law ``bias`` (:func:`~initsuite.theory.meanfield.bias_variance`), or None where
    mean-field theory does not apply."""
    return weight_prior(scheme, params, width, bias, shape=(width, width, kernel, kernel))


def conv_theory(
    activation: _activations.Activation,
    prior: Prior,
    depth: int,
    kernel: int,
    image: int,
    taps: str,
    n_values: int,
    finfo_max: float,
    finfo_tiny: float,
) -> CellTheory:
    """The prediction of a conv cell, layers 1..depth, from its (σ_w², σ_b²) (:func:`conv_prior`)
    and its scheme's ``taps``; ``n_values`` = batch × width × image² values per layer."""
    net = conv_moments(activation, *prior, depth, kernel, image, taps)
    return _theory(activation, net, n_values, finfo_max, finfo_tiny, *prior)


def resmlp_priors(
    scheme: Any, params: dict[str, Any], width: int, blocks: int, branch: int, bias: str | None
) -> list[list[Prior]] | None:
    """Per block, the (σ_w², σ_b²) of each branch layer, each at its own
    :class:`~initsuite.schemes.LayerContext` (the engine's); None where theory does not
    apply to one of them."""
    out: list[list[Prior]] = []
    for block in range(1, blocks + 1):
        layers: list[Prior] = []
        for j in range(1, branch + 1):
            ctx = LayerContext.resmlp(block, blocks, branch, j, width)
            prior = weight_prior(scheme, params, width, bias, context=ctx)
            if prior is None:
                return None
            layers.append(prior)
        out.append(layers)
    return out


def residual_scale(scheme: Any, alpha: float) -> float:
    """α of a residual net under ``scheme``: the value the scheme sets
    (``SchemeInfo.residual_scale``: SkipInit, ReZero), else the architecture's ``alpha``. As
    in the engine, only a scheme that takes a layer context sees α."""
    info = scheme.info
    if info.residual_scale is not None and "context" in info.uses:
        return float(info.residual_scale)
    return alpha


def resmlp_theory(
    activation: _activations.Activation,
    priors: Sequence[Sequence[Prior]],
    alpha: float,
    n_values: int,
    finfo_max: float,
    finfo_tiny: float,
) -> CellTheory:
    """The prediction of a resmlp cell from its branch layers' (σ_w², σ_b²)
    (:func:`resmlp_priors`) and α (:func:`residual_scale`); ``n_values`` = batch × width.
    Its ``sigma_w2`` and ``sigma_b2`` are the first branch layer's."""
    net = resmlp_moments(activation, priors, alpha)
    return _theory(activation, net, n_values, finfo_max, finfo_tiny, *priors[0][0])

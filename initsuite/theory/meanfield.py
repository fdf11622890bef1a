r"""Per-cell mean-field predictions for the MLP (Poole et al. 2016; Schoenholz et al. 2017).

Layer by layer from q_1 = σ_w²·E[x²] + σ_b²: the post-activation mean E[φ(√q_l z)] and std
sqrt(E[φ²] − E[φ]²), χ₁ and the c-map of an input pair, the divergence layer in a dtype, and
the backward pass. σ_w² = fan_in·Var(W) comes from the scheme's variance formula, so schemes
of equal variance get the same prediction; exact in the infinite-width limit. The maps are
``initsuite.theory.maps``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from initsuite import activations as _activations
from initsuite.core.bias import bias_law
from initsuite.core.errors import InitsuiteError
from initsuite.schemes import default_bias_variance
from initsuite.theory.maps import HUGE, chi1, correlation_map, moments

__all__ = [
    "CellTheory", "GradTheory", "LayerMoments", "bias_variance", "c_map", "c_maps", "cell_theory",
    "first_divergence", "grad_theory", "mlp_moments", "weight_prior",
]  # fmt: skip


@dataclass(frozen=True)
class LayerMoments:
    """Predicted moments of one layer (1-based ``layer``)."""

    layer: int
    q: float  # pre-activation second moment
    mean: float  # post-activation mean
    std: float  # post-activation std (mean subtracted)


def mlp_moments(
    activation: str | _activations.Activation,
    sigma_w2: float,
    depth: int,
    input_q: float = 1.0,
    sigma_b2: float = 0.0,
) -> list[LayerMoments]:
    """Predicted moments of layers 1..depth; ``inf`` once q leaves float64's range.

    Once q sits at a fixed point (to float64 precision) the remaining layers repeat it.
    """
    act = _activations.get(activation)
    for name, value in (("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2), ("input_q", input_q)):
        if not value >= 0:  # a negative second moment has no square root (nan included)
            raise InitsuiteError(f"{name} must be >= 0, got {value!r}")
    out: list[LayerMoments] = []
    q = sigma_w2 * input_q + sigma_b2
    for layer in range(1, depth + 1):
        if not math.isfinite(q) or q > HUGE:
            out.append(LayerMoments(layer, math.inf, math.nan, math.inf))
            continue
        m1, m2 = moments(act, q)
        out.append(LayerMoments(layer, q, m1, math.sqrt(max(m2 - m1 * m1, 0.0))))
        q_next = sigma_w2 * m2 + sigma_b2
        if q_next == q:  # a fixed point: every later layer is this one
            out.extend(LayerMoments(k, q, m1, out[-1].std) for k in range(layer + 1, depth + 1))
            break
        q = q_next
    return out


# σ_b² of each bias law (initsuite.core.bias) at a layer's fan_in.
_BIAS_VARIANCE = {"torch_default": default_bias_variance, "zeros": lambda fan_in: 0.0}


def bias_variance(bias: str | None, fan_in: int) -> float:
    """σ_b² of a layer's bias under the law ``bias`` (:mod:`initsuite.core.bias`): 0 for
    ``None`` (no bias) and ``"zeros"``, 1/(3·fan_in) for ``"torch_default"`` (nn.Linear's and
    nn.Conv2d's U(±1/√fan_in)); a bool or an unknown law raises."""
    law = bias_law(bias)
    return 0.0 if law is None else float(_BIAS_VARIANCE[law](fan_in))


def weight_prior(
    scheme: Any,
    params: dict[str, Any],
    width: int,
    bias: str | None,
    shape: tuple[int, ...] | None = None,
    context: Any = None,
) -> tuple[float, float] | None:
    """(σ_w², σ_b²) of a width × width Linear layer under ``scheme``, or None where
    mean-field theory does not apply (a deterministic or non-centred scheme).

    σ_w² = fan_in·Var(W). ``shape`` (default (width, width)) is the weight's, e.g. a conv
    kernel's (out, in, k, k) with fan_in = in·k²; ``context`` (a ``LayerContext``) where the
    weight sits, for schemes whose variance depends on it (Fixup, GPT-2). ``bias`` is the
    layers' bias law, σ_b² its :func:`bias_variance`.
    """
    shape = (width, width) if shape is None else tuple(shape)
    fan_in = math.prod(shape[1:])
    try:
        var = scheme.info.layer_variance(shape, context, **params)
    except OverflowError:  # gain**2 of a huge (valid, finite) gain: the variance is inf
        var = math.inf
    if var is None:
        return None
    if not var >= 0:  # a valid spec never gets here (its check ran); a broken variance_fn might
        raise InitsuiteError(
            f"scheme {scheme.spec!r}: its variance for shape {shape} is {var!r}, not >= 0"
        )
    mean = 0.0 if scheme.info.mean is None else scheme.info.mean(shape, **params)
    if mean != 0.0:  # a non-zero constant or mean: every unit gets the same input, no mean field
        return None
    return fan_in * var, bias_variance(bias, fan_in)


@dataclass(frozen=True)
class CellTheory:
    """The prediction for one cell configuration, layers 1..depth (index 0 is layer 1)."""

    std: list[float]
    divergence_layer: int | None
    divergence_kind: str | None
    cosine: list[float] | None = None  # the c-map from the input pair's cosine
    chi1: list[float] | None = None  # σ_w²·E[φ'(√q_l z)²] per layer
    q: list[float] | None = None  # pre-activation second moment per layer
    sigma_w2: float = math.nan
    sigma_b2: float = 0.0


def c_map(
    activation: str | _activations.Activation,
    sigma_w2: float,
    sigma_b2: float,
    depth: int,
    cosine: float,
) -> list[float]:
    """Cosine of two inputs' pre-activations at layers 1..depth (Poole et al. 2016): with
    inputs of q = 1 and cosine ``cosine``,
    c_{l+1} = (σ_w²·E[φ(u)φ(v)] + σ_b²) / q_{l+1}, (u, v) of variance q_l, correlation c_l.
    One column of :func:`c_maps`."""
    return [float(c) for c in c_maps(activation, sigma_w2, sigma_b2, depth, [cosine])[:, 0]]


def c_maps(
    activation: str | _activations.Activation,
    sigma_w2: float,
    sigma_b2: float,
    depth: int,
    cosines: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """:func:`c_map` of every input cosine at once: an array (depth, len(cosines)), row l-1
    the pre-activation cosine at layer l. Layer l is the activation's c-map composed l-1
    times (the first layer's pre-activations keep the inputs' cosine, up to the bias), with
    q moving by the length map beside it; from inputs at q = 1 through a q-preserving
    activation (DKS, TAT) and σ_w² = 1 (scaled orthogonal weights), C_φ composed l-1 times.
    A column that has settled (q fixed, c moving by at most 1e-15) repeats its value; one
    whose q or c leaves the finite range is NaN from there."""
    act = _activations.get(activation)
    c0 = np.asarray(cosines, dtype=float).reshape(-1)
    out = np.full((depth, c0.size), math.nan)
    q = sigma_w2 + sigma_b2
    # q = ∞ (an overflowing σ_w²) has no cosine: NaN, without numpy's ∞/∞ warning
    c = (sigma_w2 * c0 + sigma_b2) / q if 0 < q < math.inf else np.full(c0.size, math.nan)
    live = np.ones(c0.size, dtype=bool)  # the columns still moving
    for layer in range(depth):
        out[layer, live] = c[live]
        live &= np.isfinite(c)
        if not (math.isfinite(q) and 0 < q < HUGE) or not live.any():
            break
        q_next, c_next = correlation_map(act, q, c, sigma_w2, sigma_b2)
        q_next = float(np.asarray(q_next).reshape(-1)[0])  # q does not depend on c
        c_next = np.asarray(c_next, dtype=float).reshape(-1)
        # settled: the rest repeat it (1e-15 in c, not exact; kept so stored columns stay)
        settled = live & (q_next == q) & (np.abs(c_next - c) <= 1e-15)
        out[layer + 1 :, settled] = c_next[settled]
        live &= ~settled
        q, c = q_next, c_next
    return out


@dataclass(frozen=True)
class _Maps:
    moments: list[LayerMoments]
    chi1: list[float]
    cosine: list[float] | None


_MAPS: dict[tuple[str, float, float, int, float | None], _Maps] = {}


def _maps(
    activation: _activations.Activation,
    sigma_w2: float,
    sigma_b2: float,
    depth: int,
    pair_cosine: float | None,
) -> _Maps:
    """The variance map, χ₁ and c-map of layers 1..depth, memoised: they depend on the
    activation and (σ_w², σ_b²) only, which many schemes and widths share (Xavier, LeCun and
    orthogonal all have σ_w² = 1 on square layers, at every width)."""
    key = (activation.spec, float(sigma_w2), float(sigma_b2), int(depth), pair_cosine)
    if key in _MAPS:
        return _MAPS[key]
    layers = mlp_moments(activation, sigma_w2, depth, input_q=1.0, sigma_b2=sigma_b2)
    chis: list[float] = []
    for m in layers:
        if chis and m.q == layers[m.layer - 2].q:
            chis.append(chis[-1])  # a fixed point: same q, same χ₁
        elif math.isfinite(m.q) and m.q > 0:
            chis.append(chi1(activation, sigma_w2, m.q))
        else:
            chis.append(math.nan)
    cos = None
    if pair_cosine is not None:
        cos = c_map(activation, sigma_w2, sigma_b2, depth, pair_cosine)
    if len(_MAPS) > 4096:  # a long-lived process sweeping many grids: keep memory bounded
        _MAPS.clear()
    _MAPS[key] = _Maps(layers, chis, cos)
    return _MAPS[key]


def cell_theory(
    activation: _activations.Activation,
    sigma_w2: float,
    sigma_b2: float,
    depth: int,
    n_values: int,
    finfo_max: float,
    finfo_tiny: float,
    pair_cosine: float | None = None,
) -> CellTheory:
    """Predicted post-activation std per layer, and the first layer where the prediction
    leaves the dtype's normal range: ``overflow`` when the largest of ``n_values`` values,
    φ(±√q · sqrt(2 ln n_values)), exceeds ``finfo_max``; ``underflow`` when the std falls
    below ``finfo_tiny``."""
    maps = _maps(activation, sigma_w2, sigma_b2, depth, pair_cosine)
    extreme = math.sqrt(2 * math.log(max(n_values, 2)))
    f = activation.apply
    qs = np.array([m.q for m in maps.moments])
    stds = np.array([m.std for m in maps.moments])
    finite = np.isfinite(qs)
    z = np.sqrt(np.where(finite, qs, 0.0)) * extreme
    peak = np.maximum(np.abs(f(z)), np.abs(f(-z)))  # φ at ±z, every layer at once
    div = first_divergence(np.where(finite, peak, math.inf), stds, finfo_max, finfo_tiny)
    return CellTheory(
        list(stds), div[0] if div else None, div[1] if div else None, maps.cosine, maps.chi1,
        list(qs), sigma_w2, sigma_b2,
    )  # fmt: skip


def first_divergence(
    peak: np.ndarray, std: np.ndarray, finfo_max: float, finfo_tiny: float
) -> tuple[int, str] | None:
    """The first layer (1-based) whose predicted values leave a dtype's normal range, and
    how: ``overflow`` where the largest value ``peak`` exceeds ``finfo_max`` (or is not a
    number), ``underflow`` where the ``std`` falls below ``finfo_tiny``; None if none does."""
    with np.errstate(invalid="ignore"):
        over = ~(np.asarray(peak) <= finfo_max)
        under = np.asarray(std) < finfo_tiny
    for layer in range(len(over)):
        if over[layer]:
            return layer + 1, "overflow"
        if under[layer]:
            return layer + 1, "underflow"
    return None


@dataclass(frozen=True)
class GradTheory:
    """The mean-field backward pass of one cell (index 0 is layer 1)."""

    grad_std: list[float]  # of dLoss/dh_l
    weight_grad_norm: list[float]  # ‖dLoss/dW_l‖_F
    input_grad_std: float  # of dLoss/dx


def grad_theory(theory: CellTheory, depth: int, batch: int, width: int) -> GradTheory:
    r"""Mean-field gradients of the loss Σ R ⊙ h_depth (R ~ N(0, 1), so E[(dLoss/dh_depth)²]
    = 1) of a depth-``depth`` cell (Schoenholz et al. 2017, under the gradient independence
    assumption): each layer multiplies the gradient's second moment by its χ₁,

        E[(dLoss/dh_{l-1})²] = χ₁(q_l) · E[(dLoss/dh_l)²],   χ₁ = σ_w²·E[φ'(z_l)²],

    and dLoss/dW_l = Σ_b δ_b h_{l-1,b}ᵀ (δ = dLoss/dz_l) sums ``batch`` independent terms:
    E‖dLoss/dW_l‖² = batch · width² · E[(dLoss/dh_l)²] · E[φ'²] · E[h_{l-1}²], where
    E[φ'²] = χ₁/σ_w² and E[h_{l-1}²] = (q_l − σ_b²)/σ_w². Products are taken in logs, so
    a gradient beyond float64's range comes out inf or 0, not nan."""
    chi = list(theory.chi1 or [])[:depth]
    q = list(theory.q or [])[:depth]
    nan = [math.nan] * depth
    w2, b2 = theory.sigma_w2, theory.sigma_b2
    if len(chi) < depth or len(q) < depth or not (w2 > 0):
        return GradTheory(nan, list(nan), math.nan)

    def log(x: float) -> float:
        return math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)

    logs = [log(c) for c in chi]
    # log E[g_l²] = Σ_{k>l} log χ₁_k, l = depth .. 0
    log_g2 = [0.0] * (depth + 1)
    for layer in range(depth, 0, -1):
        log_g2[layer - 1] = log_g2[layer] + logs[layer - 1]
    grad = [_exp_half(v) for v in log_g2[1:]]
    norm = []
    for layer in range(1, depth + 1):
        c, ql = chi[layer - 1], q[layer - 1]
        h2 = (ql - b2) / w2
        if not (math.isfinite(ql) and h2 >= 0 and c >= 0):
            norm.append(math.nan)
            continue
        log_n2 = (math.log(batch) + 2 * math.log(width) + log_g2[layer] + log(c / w2)
                  + log(h2))  # fmt: skip
        norm.append(_exp_half(log_n2))
    return GradTheory(grad, norm, _exp_half(log_g2[0]))


def _exp_half(log_x2: float) -> float:
    """sqrt(exp(log_x2)), saturating to inf or 0 instead of raising."""
    if math.isnan(log_x2):
        return math.nan
    return math.exp(min(log_x2 / 2, 709.0)) if log_x2 < 1418 else math.inf

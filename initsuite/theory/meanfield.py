r"""Mean-field predictions for the MLP: the variance map of Poole et al. (2016).

For a net whose weights are centred with variance σ_w²/fan_in and whose biases have variance
σ_b², the pre-activation second moment of layer l+1 is

    q_{l+1} = σ_w² · E_z[φ(√q_l · z)²] + σ_b²,   z ~ N(0, 1),

with q_1 = σ_w² · E[x²] + σ_b² for the input x. The post-activation values of layer l have
mean E[φ(√q_l z)] and std sqrt(E[φ²] - E[φ]²). σ_w² = fan_in · Var(W) comes from the scheme's
own variance formula, so uniform, normal, truncated and orthogonal schemes of equal variance
get the same prediction. Exact in the infinite-width limit; at finite width the log of the
std wanders around it (the spread grows like depth / width). Expectations are closed forms for
linear and (leaky) ReLU, composite Gauss–Legendre quadrature in float64 otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from initsuite import activations as _activations
from initsuite.core.errors import InitsuiteError
from initsuite.core.quadrature import _rule
from initsuite.schemes import default_bias_variance

__all__ = [
    "CellTheory", "GradTheory", "LayerMoments", "c_map", "cell_theory", "correlation_depth",
    "grad_theory", "mlp_moments",
    "predicted_log_std_sd", "spread", "weight_prior",
]  # fmt: skip

_SQRT_2PI = math.sqrt(2 * math.pi)


@dataclass(frozen=True)
class LayerMoments:
    """Predicted moments of one layer (1-based ``layer``)."""

    layer: int
    q: float  # pre-activation second moment
    mean: float  # post-activation mean
    std: float  # post-activation std (mean subtracted)


def _moments(act: _activations.Activation) -> Callable[[float], tuple[float, float]]:
    """q ↦ (E[φ(√q z)], E[φ(√q z)²]), closed form where there is one."""
    if act.name == "linear":
        return lambda q: (0.0, q)
    if act.name in ("relu", "leaky_relu"):
        a = 0.0 if act.name == "relu" else float(act.params.get("negative_slope", 0.01))
        return lambda q: ((1 - a) * math.sqrt(q) / _SQRT_2PI, q * (1 + a * a) / 2)
    nodes, weights = _rule()
    f = act._numpy

    def quad(q: float) -> tuple[float, float]:
        v = f(math.sqrt(q) * nodes)
        return float(np.dot(weights, v)), float(np.dot(weights, v * v))

    return quad


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
    moments = _moments(act)
    out: list[LayerMoments] = []
    q = sigma_w2 * input_q + sigma_b2
    for layer in range(1, depth + 1):
        if not math.isfinite(q) or q > 1e300:
            out.append(LayerMoments(layer, math.inf, math.nan, math.inf))
            continue
        m1, m2 = moments(q)
        out.append(LayerMoments(layer, q, m1, math.sqrt(max(m2 - m1 * m1, 0.0))))
        q_next = sigma_w2 * m2 + sigma_b2
        if q_next == q:  # a fixed point: every later layer is this one
            out.extend(LayerMoments(k, q, m1, out[-1].std) for k in range(layer + 1, depth + 1))
            break
        q = q_next
    return out


def weight_prior(
    scheme: Any, params: dict[str, Any], width: int, bias: bool
) -> tuple[float, float] | None:
    """(σ_w², σ_b²) of a width × width Linear layer under ``scheme``, or None where
    mean-field theory does not apply (a deterministic or non-centred scheme).

    The bias, when present, is nn.Linear's default U(±1/√fan_in): σ_b² = 1/(3·fan_in).
    """
    shape = (width, width)
    try:
        var = scheme.info.variance(shape, **params)
    except OverflowError:  # gain**2 of a huge (valid, finite) gain: the variance is inf
        var = math.inf
    if var is None:
        return None
    if not var >= 0:  # a valid spec never gets here (its check ran); a broken variance_fn might
        raise InitsuiteError(
            f"scheme {scheme.spec!r}: its variance for shape {shape} is {var!r}, not >= 0"
        )
    mean = 0.0 if scheme.info.mean is None else scheme.info.mean(shape, **params)
    if mean != 0.0 and var > 0:
        return None
    if mean != 0.0:  # a non-zero constant: every unit gets the same input, no mean field
        return None
    return width * var, (default_bias_variance(width) if bias else 0.0)


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


@cache
def _hermite(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss–Hermite nodes and weights normalised to the N(0, 1) density."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return x, w / math.sqrt(2 * math.pi)


def _cross(act: _activations.Activation) -> Callable[[float, float], float]:
    """(q, c) ↦ E[φ(u)φ(v)] for (u, v) centred normal, variances q, correlation c.

    Closed forms for linear and (leaky) ReLU (the arc-cosine kernel, Cho & Saul 2009); a
    64×64 Gauss–Hermite product rule otherwise: ~1e-6·q for smooth φ (tanh, GELU, SiLU, ...),
    within ~2e-3·q for the kinked ELU and SELU, below the finite-width noise of a measured
    cosine (≈ 1/√width)."""
    if act.name == "linear":
        return lambda q, c: q * c
    if act.name in ("relu", "leaky_relu"):
        a = 0.0 if act.name == "relu" else float(act.params.get("negative_slope", 0.01))

        def k(q: float, c: float) -> float:  # E[relu(u)·relu(v)], the arc-cosine kernel
            c = min(max(c, -1.0), 1.0)
            return q / (2 * math.pi) * (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c)

        # φ(x) = relu(x) - a·relu(-x): E[φ(u)φ(v)] = (1 + a²)·k(c) - 2a·k(-c)
        return lambda q, c: (1 + a * a) * k(q, c) - 2 * a * k(q, -c)
    x, w = _hermite()
    f = act._numpy
    ww = np.outer(w, w)

    def quad(q: float, c: float) -> float:
        c = min(max(c, -1.0), 1.0)
        s = math.sqrt(max(1 - c * c, 0.0))
        u = math.sqrt(q) * x
        fu = f(u)[:, None]
        fv = f(math.sqrt(q) * (c * x[:, None] + s * x[None, :]))
        return float(np.sum(ww * fu * fv))

    return quad


def _chi1(act: _activations.Activation) -> Callable[[float], float]:
    """q ↦ E[φ'(√q z)²] (times σ_w² by the caller)."""
    if act.name == "linear":
        return lambda q: 1.0
    if act.name == "relu":
        return lambda q: 0.5
    import torch

    nodes, weights = _rule()

    def quad(q: float) -> float:
        z = torch.tensor(math.sqrt(q) * nodes, dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(act(z).sum(), z)
        return float(np.dot(weights, grad.numpy() ** 2))

    return quad


def c_map(
    activation: str | _activations.Activation,
    sigma_w2: float,
    sigma_b2: float,
    depth: int,
    cosine: float,
) -> list[float]:
    """Cosine of two inputs' pre-activations at layers 1..depth (Poole et al. 2016): with
    inputs of q = 1 and cosine ``cosine``,
    c_{l+1} = (σ_w²·E[φ(u)φ(v)] + σ_b²) / q_{l+1}, (u, v) of variance q_l, correlation c_l."""
    act = _activations.get(activation)
    cross, moments = _cross(act), _moments(act)
    q = sigma_w2 + sigma_b2
    c = (sigma_w2 * cosine + sigma_b2) / q if q > 0 else math.nan
    out: list[float] = []
    for _ in range(depth):
        out.append(c)
        if not (math.isfinite(q) and 0 < q < 1e300 and math.isfinite(c)):
            out.extend([math.nan] * (depth - len(out)))
            break
        q_next = sigma_w2 * moments(q)[1] + sigma_b2
        c_next = (sigma_w2 * cross(q, c) + sigma_b2) / q_next if q_next > 0 else math.nan
        if q_next == q and abs(c_next - c) <= 1e-15:
            out.extend([c_next] * (depth - len(out)))
            break
        q, c = q_next, c_next
    return out[:depth]


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
    chi = _chi1(activation)
    chi1: list[float] = []
    for m in layers:
        if chi1 and m.q == layers[m.layer - 2].q:
            chi1.append(chi1[-1])  # a fixed point: same q, same χ₁
        elif math.isfinite(m.q) and m.q > 0:
            chi1.append(sigma_w2 * chi(m.q))
        else:
            chi1.append(math.nan)
    cos = None
    if pair_cosine is not None:
        cos = c_map(activation, sigma_w2, sigma_b2, depth, pair_cosine)
    if len(_MAPS) > 4096:  # a long-lived process sweeping many grids: keep memory bounded
        _MAPS.clear()
    _MAPS[key] = _Maps(layers, chi1, cos)
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
    f = activation._numpy
    div: tuple[int, str] | None = None
    qs = np.array([m.q for m in maps.moments])
    stds = np.array([m.std for m in maps.moments])
    finite = np.isfinite(qs)
    z = np.sqrt(np.where(finite, qs, 0.0)) * extreme
    peak = np.maximum(np.abs(f(z)), np.abs(f(-z)))  # φ at ±z, every layer at once
    with np.errstate(invalid="ignore"):
        over = ~finite | ~(peak <= finfo_max)
        under = stds < finfo_tiny
    for layer in range(len(qs)):
        if over[layer]:
            div = (layer + 1, "overflow")
            break
        if under[layer]:
            div = (layer + 1, "underflow")
            break
    return CellTheory(
        list(stds), div[0] if div else None, div[1] if div else None, maps.cosine, maps.chi1,
        list(qs), sigma_w2, sigma_b2,
    )  # fmt: skip


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


# Var(log ‖z_L‖²) ≈ c · Σ_l 1/n_l for one input at finite width (Hanin & Rolnick 2018):
# c = 5 for ReLU nets at He's variance, c = 2 for linear nets (log of a χ²_n/n per layer).
# The log of a std is half the log of a mean square, so Var(log std) ≈ c · L / (4 n).
_SPREAD_C = {"relu": 5.0, "linear": 2.0}


def predicted_log_std_sd(activation: str, depth: int, width: int) -> float:
    """Predicted across-seed sd of log(final std) for one input (NaN where unknown)."""
    c = _SPREAD_C.get(activation.split(":")[0])
    return math.nan if c is None else math.sqrt(c * depth / (4 * width))


# sqrt(df / χ²_{0.05, df}): the upper 95% confidence limit of an sd over its estimate.
_SD_UPPER = {1: 15.95, 2: 4.41, 3: 2.92, 4: 2.37, 5: 2.09, 6: 1.92, 7: 1.80, 8: 1.71, 9: 1.65}


def _sd_upper_factor(df: int) -> float:
    if df < 1:
        return math.nan
    return _SD_UPPER.get(df, 1 + 1.645 / math.sqrt(2 * df))


def spread(cells: Any) -> Any:
    """Across-seed spread of log(final std) per (scheme, activation, depth, width, device,
    dtype) of the cells that did not diverge, beside the mean-field value and the
    finite-width prediction (``predicted_log_std_sd``, one input; a batch pools inputs, which
    narrows the spread of linear nets below it). ``expected_log_std`` is the mean-field value
    less the log-normal bias Var(log std); ``disagree`` flags cells whose mean measured log
    std is further from it than twice the spread (predicted where known, else the measured
    sd at its upper 95% confidence limit, which a handful of seeds needs)."""
    import pandas as pd

    keys = ["scheme", "activation", "depth", "width", "device", "dtype"]
    ok = cells[cells["divergence_layer"].isna() & (cells["final_std"] > 0)].copy()
    ok["log_std"] = np.log(ok["final_std"].astype(float))
    ok["theory_log_std"] = np.log(ok["theory_final_std"].astype(float).where(
        ok["theory_final_std"] > 0))  # fmt: skip
    g = ok.groupby(keys, observed=True)
    out = pd.DataFrame({
        "seeds": g["log_std"].count(),
        "log_std_mean": g["log_std"].mean(),
        "log_std_sd": g["log_std"].std(ddof=1),
        "theory_log_std": g["theory_log_std"].first(),
    }).reset_index()  # fmt: skip
    out["predicted_log_std_sd"] = [
        predicted_log_std_sd(str(a), int(d), int(w))
        for a, d, w in zip(out["activation"], out["depth"], out["width"], strict=True)
    ]
    # Mean field predicts the mean square; for a log-normal std the mean of log std sits
    # below log(theory) by Var(log std).
    out["expected_log_std"] = out["theory_log_std"] - out["predicted_log_std_sd"].fillna(0) ** 2
    # Where no prediction is known, the measured sd stands in, at its upper 95% confidence
    # limit: an sd from three seeds can be a fifth of the true one.
    upper = out["log_std_sd"] * [_sd_upper_factor(int(k) - 1) for k in out["seeds"]]
    band = out["predicted_log_std_sd"].fillna(upper)
    gap = (out["log_std_mean"] - out["expected_log_std"]).abs()
    out["disagree"] = (gap > 2 * band) & band.notna() & out["theory_log_std"].notna()
    return out


def correlation_depth(layers: Any) -> Any:
    """Measured depth scale of the c-map per (scheme, activation, depth, width, device, dtype):
    the number of layers the seed-averaged cosine of the input pair takes to close 1 - 1/e of
    its gap to the mean-field fixed point c* (``theory_cosine`` at the last layer), to set
    beside ξ = 1/|ln χ₁|. NaN where the gap at layer 1 is under 0.02 (nothing to measure),
    where the gap never closes that far, or without a cosine."""
    import pandas as pd

    keys = ["scheme", "activation", "depth", "width", "device", "dtype"]
    cols = ["scheme", "activation", "depth", "width", "device", "dtype", "c_star",
            "measured_depth"]  # fmt: skip
    if "cosine" not in layers.columns or layers["cosine"].isna().all():
        return pd.DataFrame(columns=cols)
    rows = []
    for key, g in layers.groupby(keys, observed=True):
        mean = g.groupby("layer")[["cosine", "theory_cosine"]].mean()
        c_star = float(mean["theory_cosine"].iloc[-1])
        gap = (mean["cosine"] - c_star).abs().to_numpy()
        measured = math.nan
        if math.isfinite(c_star) and len(gap) and gap[0] >= 0.02:
            closed = np.nonzero(gap <= gap[0] / math.e)[0]
            if len(closed):
                measured = float(mean.index[closed[0]] - 1)
        rows.append((*key, c_star, measured))
    return pd.DataFrame(rows, columns=cols)

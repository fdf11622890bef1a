r"""Built-in schemes: everything in ``torch.nn.init``, PyTorch's default layer init, LeCun.

Each function fills ``tensor`` in place and returns it, draws only from ``generator``, and
matches its ``torch.nn.init`` counterpart value for value given the same generator state
(tested), except ``sparse``, whose zero pattern torch draws from the global RNG.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from initsuite import activations as _activations
from initsuite.core.spec import AUTO
from initsuite.schemes.registry import TORCH_LINEAR_NAMES, SharedDraw, register

__all__ = ["calculate_gain", "fans", "haar_householder"]

Mode = Literal["fan_in", "fan_out"]
Gain = float | Literal["auto"]

_GLOROT = (
    "Glorot & Bengio (2010), Understanding the difficulty of training deep feedforward neural "
    "networks"
)
_HE = "He et al. (2015), Delving deep into rectifiers"
_LECUN = "LeCun et al. (1998), Efficient BackProp"
_SAXE = (
    "Saxe et al. (2013), Exact solutions to the nonlinear dynamics of learning in deep linear "
    "networks"
)
_MARTENS = "Martens (2010), Deep learning via Hessian-free optimization"
_STEWART = (
    "Stewart (1980), The efficient generation of random orthogonal matrices with an "
    "application to condition estimators"
)


def fans(shape: tuple[int, ...] | torch.Size) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape`` as torch computes them.

    ``shape[1]`` inputs and ``shape[0]`` outputs, each times the receptive field
    ``prod(shape[2:])`` (the convention of ``x @ W.T`` in Linear and of Conv kernels).
    """
    if len(shape) < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fan(shape: tuple[int, ...] | torch.Size, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of ['fan_in', 'fan_out']")
    fan_in, fan_out = fans(shape)
    return fan_in if mode == "fan_in" else fan_out


def _no_op(tensor: Tensor) -> bool:
    """True (with torch's warning) for a zero-element tensor, which kaiming_* leave alone."""
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return True
    return False


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """torch's ``calculate_gain`` where torch knows the name, else the activation's gain.

    ``nonlinearity`` may be any registered activation spec (``"gelu"``), whose gain is then
    the computed variance-preserving one.
    """
    if nonlinearity in TORCH_LINEAR_NAMES or nonlinearity in (
        "sigmoid", "tanh", "relu", "leaky_relu", "selu",
    ):  # fmt: skip
        return float(torch.nn.init.calculate_gain(nonlinearity, param))  # type: ignore[arg-type]
    return _activations.get(nonlinearity).gain


def _gain(gain: float | str) -> float:
    if gain == AUTO:  # resolved by Scheme.resolve before the function is called
        raise ValueError("gain=auto must be resolved against an activation first")
    return float(gain)


def _normal_shared(std: float) -> SharedDraw:
    """N(0, std²) as std · N(0, 1)."""
    return SharedDraw("normal", std)


def _uniform_shared(std: float) -> SharedDraw:
    """The zero-mean uniform of this std, U(±√3·std), as √3·std · U(-1, 1)."""
    return SharedDraw("uniform", math.sqrt(3.0) * std)


# -- parameter checks (run by Scheme.resolve before any draw; see register's ``check``) ----


def _at_least(name: str, value: float, low: float = 0.0) -> None:
    if not value >= low:
        raise ValueError(f"{name} must be >= {low:g}, got {value!r}")


def _below(a: float, b: float) -> None:
    if not a < b:
        raise ValueError(f"needs a < b, got a={a!r}, b={b!r}")
    if not math.isfinite(b - a):  # torch refuses a range wider than the largest double
        raise ValueError(f"b - a must be finite, got a={a!r}, b={b!r}")


def _check_gain(shape: tuple[int, ...] | None, gain: float) -> None:
    # a negative gain makes a negative std (torch raises) or an empty U(-a, a)
    _at_least("gain", gain)


def _check_trunc_normal(
    shape: tuple[int, ...] | None, mean: float, std: float, a: float, b: float
) -> None:
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std!r}")
    _below(a, b)
    # torch only warns that its values "may be incorrect" out here; refuse instead
    if not a - 2 * std <= mean <= b + 2 * std:
        raise ValueError(
            f"mean={mean!r} is more than 2 std from [a, b] = [{a!r}, {b!r}]: torch's sampler "
            "is inexact there"
        )
    kept = _truncation(mean, std, a, b)[3]
    if not kept > 1e-12:  # torch maps [a, b] to CDF values in double: the width must show
        raise ValueError(
            f"[a, b] = [{a!r}, {b!r}] keeps {kept:.3g} of N({mean!r}, {std!r}²)'s mass, "
            "too little for torch's sampler"
        )


def _check_dirac(shape: tuple[int, ...] | None, groups: int) -> None:
    _at_least("groups", groups, 1)
    if shape is not None and len(shape) >= 1 and shape[0] % groups:
        raise ValueError(f"dim 0 must be divisible by groups, got shape {shape}, groups={groups}")


def _check_kaiming(shape: tuple[int, ...] | None, a: float, mode: str, nonlinearity: str) -> None:
    try:  # torch's leaky_relu gain squares a: a huge slope overflows instead of giving ~0
        gain = calculate_gain(nonlinearity, a)
    except ArithmeticError:
        raise ValueError(f"the gain of {nonlinearity!r} with a={a!r} cannot be computed") from None
    if not (math.isfinite(gain) and gain >= 0):
        raise ValueError(f"the gain of {nonlinearity!r} with a={a!r} is {gain!r}")


def _check_sparse(shape: tuple[int, ...] | None, sparsity: float, std: float) -> None:
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity!r}")
    _at_least("std", std)


# -- plain distributions ---------------------------------------------------------------------


@register(
    family="uniform",
    variance="(b - a)² / 12",
    variance_fn=lambda shape, a=0.0, b=1.0: (b - a) ** 2 / 12,
    mean_fn=lambda shape, a=0.0, b=1.0: (a + b) / 2,
    paper="-",
    torch_fn="uniform_",
    shared=lambda shape, a=0.0, b=1.0: SharedDraw("uniform", (b - a) / 2, (a + b) / 2),
    check=lambda shape, a, b: _below(a, b),
)
def uniform(
    tensor: Tensor, a: float = 0.0, b: float = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Uniform U(a, b).

    Args:
        a: lower bound (default 0).
        b: upper bound (default 1).
    """
    with torch.no_grad():
        return tensor.uniform_(a, b, generator=generator)


@register(
    family="normal",
    variance="std²",
    variance_fn=lambda shape, mean=0.0, std=1.0: std**2,
    mean_fn=lambda shape, mean=0.0, std=1.0: mean,
    paper="-",
    torch_fn="normal_",
    shared=lambda shape, mean=0.0, std=1.0: SharedDraw("normal", std, mean),
    check=lambda shape, mean, std: _at_least("std", std),
)
def normal(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Normal N(mean, std²).

    Args:
        mean: mean (default 0).
        std: standard deviation (default 1).
    """
    with torch.no_grad():
        return tensor.normal_(mean, std, generator=generator)


def _truncation(mean: float, std: float, a: float, b: float) -> tuple[float, float, float, float]:
    """(α, β, φ(α) - φ(β), Z) of N(mean, std²) cut to [a, b]: standardised cut-offs, the
    density difference and the mass kept."""
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda x: math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    return alpha, beta, pdf(alpha) - pdf(beta), cdf(beta) - cdf(alpha)


def _trunc_normal_mean(
    shape: tuple[int, ...], mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0
) -> float:
    _, _, dpdf, z = _truncation(mean, std, a, b)
    return mean + std * dpdf / z


def _trunc_normal_variance(
    shape: tuple[int, ...], mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0
) -> float:
    alpha, beta, dpdf, z = _truncation(mean, std, a, b)
    pdf = lambda x: math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)  # noqa: E731
    return std**2 * (1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z - (dpdf / z) ** 2)


@register(
    family="truncated_normal",
    variance="std²·(1 + (αφ(α) - βφ(β))/Z - ((φ(α) - φ(β))/Z)²), α=(a-mean)/std, β=(b-mean)/std",
    variance_fn=_trunc_normal_variance,
    mean_fn=_trunc_normal_mean,
    paper="-",
    torch_fn="trunc_normal_",
    check=_check_trunc_normal,
)
def trunc_normal(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Normal N(mean, std²) truncated to [a, b] (absolute bounds, torch's convention).

    The cut-offs are values, not multiples of std: N(0, 1) cut at ±2 has std ≈ 0.88. torch's
    own sampler is used so that the values are torch's.

    Args:
        mean: mean of the untruncated normal (default 0).
        std: std of the untruncated normal (default 1).
        a: lower cut-off (default -2).
        b: upper cut-off (default 2).
    """
    if not a < b:
        raise ValueError(f"trunc_normal needs a < b, got a={a}, b={b}")
    return torch.nn.init.trunc_normal_(tensor, mean, std, a, b, generator=generator)


# -- deterministic ---------------------------------------------------------------------------


@register(family="constant", variance="0", variance_fn=lambda shape, val: 0.0,
          mean_fn=lambda shape, val: val,
          paper="-", torch_fn="constant_", example="constant:val=0.01")  # fmt: skip
def constant(tensor: Tensor, val: float, *, generator: torch.Generator | None = None) -> Tensor:
    r"""Every entry equal to ``val``.

    Args:
        val: the value (required).
    """
    with torch.no_grad():
        return tensor.fill_(val)


@register(family="constant", variance="0", variance_fn=lambda shape: 0.0,
          paper="-", torch_fn="zeros_")  # fmt: skip
def zeros(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    r"""All zeros: no symmetry breaking, the signal dies at the first layer."""
    with torch.no_grad():
        return tensor.zero_()


@register(family="constant", variance="0", variance_fn=lambda shape: 0.0,
          mean_fn=lambda shape: 1.0, paper="-", torch_fn="ones_")  # fmt: skip
def ones(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    r"""All ones."""
    with torch.no_grad():
        return tensor.fill_(1.0)


@register(family="identity", variance="0 (deterministic)", variance_fn=lambda shape: None,
          paper="-", min_rank=2, max_rank=2, torch_fn="eye_")  # fmt: skip
def eye(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    r"""The identity matrix (rectangular: ones on the main diagonal), for Linear weights."""
    if tensor.ndimension() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    with torch.no_grad():
        torch.eye(*tensor.shape, out=tensor, requires_grad=tensor.requires_grad)
    return tensor


@register(family="identity", variance="0 (deterministic)", variance_fn=lambda shape, groups=1: None,
          paper="-", min_rank=3, max_rank=5, torch_fn="dirac_", check=_check_dirac)  # fmt: skip
def dirac(tensor: Tensor, groups: int = 1, *, generator: torch.Generator | None = None) -> Tensor:
    r"""Dirac delta at the kernel centre (index ``k // 2``): Conv layers pass channels through.

    Args:
        groups: number of conv groups; each group preserves identity (default 1).
    """
    if tensor.ndimension() not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    if groups < 1 or tensor.size(0) % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    out_per_group = tensor.size(0) // groups
    n = min(out_per_group, tensor.size(1))
    centre = tuple(s // 2 for s in tensor.shape[2:])
    with torch.no_grad():
        tensor.zero_()
        for g in range(groups):
            for d in range(n):
                tensor[(g * out_per_group + d, d, *centre)] = 1
    return tensor


# -- variance scaling ------------------------------------------------------------------------


def _xavier_var(shape: tuple[int, ...], gain: float = 1.0) -> float:
    fan_in, fan_out = fans(shape)
    return gain**2 * 2.0 / (fan_in + fan_out)


def _xavier_std(shape: tuple[int, ...] | torch.Size, gain: Gain) -> float:
    fan_in, fan_out = fans(shape)
    return _gain(gain) * math.sqrt(2.0 / float(fan_in + fan_out))


@register(family="uniform", variance="gain² · 2 / (fan_in + fan_out)", variance_fn=_xavier_var,
          paper=_GLOROT, min_rank=2, torch_fn="xavier_uniform_",
          shared=lambda shape, gain=1.0: _uniform_shared(_xavier_std(shape, gain)),
          check=_check_gain)  # fmt: skip
def xavier_uniform(
    tensor: Tensor, gain: Gain = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Glorot uniform: U(-a, a), a = gain · sqrt(6 / (fan_in + fan_out)).

    Args:
        gain: scale factor, or ``auto`` for the following activation's gain (default 1).
    """
    std = _xavier_std(tensor.shape, gain)
    a = math.sqrt(3.0) * std
    with torch.no_grad():
        return tensor.uniform_(-a, a, generator=generator)


@register(family="normal", variance="gain² · 2 / (fan_in + fan_out)", variance_fn=_xavier_var,
          paper=_GLOROT, min_rank=2, torch_fn="xavier_normal_",
          shared=lambda shape, gain=1.0: _normal_shared(_xavier_std(shape, gain)),
          check=_check_gain)  # fmt: skip
def xavier_normal(
    tensor: Tensor, gain: Gain = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Glorot normal: N(0, std²), std = gain · sqrt(2 / (fan_in + fan_out)).

    Args:
        gain: scale factor, or ``auto`` for the following activation's gain (default 1).
    """
    std = _xavier_std(tensor.shape, gain)
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


def _kaiming_var(
    shape: tuple[int, ...], a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> float:
    return calculate_gain(nonlinearity, a) ** 2 / _fan(shape, mode)


def _kaiming_std(
    shape: tuple[int, ...] | torch.Size,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
) -> float:
    return calculate_gain(nonlinearity, a) / math.sqrt(_fan(shape, mode))


@register(family="uniform", variance="gain(nonlinearity, a)² / fan_mode",
          variance_fn=_kaiming_var, paper=_HE, min_rank=2, torch_fn="kaiming_uniform_",
          shared=lambda shape, **p: _uniform_shared(_kaiming_std(shape, **p)),
          check=_check_kaiming)  # fmt: skip
def kaiming_uniform(
    tensor: Tensor,
    a: float = 0.0,
    mode: Mode = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""He uniform: U(-bound, bound), bound = gain · sqrt(3 / fan_mode).

    Args:
        a: negative slope of the rectifier after this layer (``leaky_relu`` only; default 0).
        mode: ``fan_in`` (default) keeps the forward variance, ``fan_out`` the backward.
        nonlinearity: activation whose gain to use (default ``leaky_relu``, which with a=0 is
            ReLU's √2); any registered activation, or ``auto`` for the following one.
    """
    if _no_op(tensor):
        return tensor
    std = _kaiming_std(tensor.shape, a, mode, nonlinearity)
    bound = math.sqrt(3.0) * std
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


@register(family="normal", variance="gain(nonlinearity, a)² / fan_mode",
          variance_fn=_kaiming_var, paper=_HE, min_rank=2, torch_fn="kaiming_normal_",
          shared=lambda shape, **p: _normal_shared(_kaiming_std(shape, **p)),
          check=_check_kaiming)  # fmt: skip
def kaiming_normal(
    tensor: Tensor,
    a: float = 0.0,
    mode: Mode = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""He normal: N(0, std²), std = gain / sqrt(fan_mode).

    Args:
        a: negative slope of the rectifier after this layer (``leaky_relu`` only; default 0).
        mode: ``fan_in`` (default) keeps the forward variance, ``fan_out`` the backward.
        nonlinearity: activation whose gain to use (default ``leaky_relu``); any registered
            activation, or ``auto`` for the following one.
    """
    if _no_op(tensor):
        return tensor
    std = _kaiming_std(tensor.shape, a, mode, nonlinearity)
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


@register(family="uniform", variance="1 / (3 · fan_in)",
          variance_fn=lambda shape: 1.0 / (3 * fans(shape)[0]),
          paper="PyTorch nn.Linear / nn.Conv reset_parameters (kaiming_uniform, a=√5)",
          min_rank=2, torch_fn="kaiming_uniform_(a=√5)",
          shared=lambda shape: _uniform_shared(_kaiming_std(shape, math.sqrt(5.0))))  # fmt: skip
def torch_default(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    r"""PyTorch's default Linear/Conv weight init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    This is ``kaiming_uniform_(w, a=math.sqrt(5))``, computed the same way so the values match.
    """
    return kaiming_uniform(tensor, a=math.sqrt(5.0), generator=generator)


def _lecun_var(shape: tuple[int, ...], gain: float = 1.0) -> float:
    return gain**2 / fans(shape)[0]


def _lecun_std(shape: tuple[int, ...] | torch.Size, gain: Gain) -> float:
    return _gain(gain) / math.sqrt(fans(shape)[0])


@register(family="normal", variance="gain² / fan_in", variance_fn=_lecun_var,
          paper=_LECUN, min_rank=2,
          shared=lambda shape, gain=1.0: _normal_shared(_lecun_std(shape, gain)),
          check=_check_gain)  # fmt: skip
def lecun_normal(
    tensor: Tensor, gain: Gain = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""LeCun normal: N(0, gain² / fan_in).

    The plain normal of LeCun et al. (1998); JAX and Keras name a *truncated* normal so (see
    ``variance_scaling``). With gain 1 and SELU this is the self-normalising init.

    Args:
        gain: scale factor, or ``auto`` for the following activation's gain (default 1).
    """
    if _no_op(tensor):
        return tensor
    std = _lecun_std(tensor.shape, gain)
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


@register(family="uniform", variance="gain² / fan_in", variance_fn=_lecun_var,
          paper=_LECUN, min_rank=2,
          shared=lambda shape, gain=1.0: _uniform_shared(_lecun_std(shape, gain)),
          check=_check_gain)  # fmt: skip
def lecun_uniform(
    tensor: Tensor, gain: Gain = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""LeCun uniform: U(-a, a), a = gain · sqrt(3 / fan_in).

    Args:
        gain: scale factor, or ``auto`` for the following activation's gain (default 1).
    """
    if _no_op(tensor):
        return tensor
    bound = math.sqrt(3.0) * _lecun_std(tensor.shape, gain)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


# -- structured ------------------------------------------------------------------------------


def _orthogonal_var(shape: tuple[int, ...], gain: float = 1.0) -> float:
    rows = shape[0]
    cols = math.prod(shape[1:])
    return gain**2 / max(rows, cols)


def _orthogonal_shared(shape: tuple[int, ...], gain: Gain = 1.0) -> SharedDraw | None:
    # Square only: torch transposes wide matrices before the QR, which sweeps never need.
    if len(shape) == 2 and shape[0] == shape[1]:
        return SharedDraw("orthogonal", _gain(gain))
    return None


def _qr_haar(z: Tensor) -> Tensor:
    """torch's orthogonal_: Q of a QR of ``z`` with R's diagonal signs folded in."""
    q, r = torch.linalg.qr(z)
    return q * torch.diag(r, 0).sign()


def _householder_haar(z: Tensor) -> Tensor:
    a, tau, d = haar_householder(z)
    return torch.linalg.householder_product(a, tau) * d


def _fill_orthogonal(
    tensor: Tensor,
    gain: Gain,
    generator: torch.Generator | None,
    haar: Callable[[Tensor], Tensor],
) -> Tensor:
    """Fill ``tensor`` (trailing dimensions flattened) with ``gain · haar(Z)``, Z a tall
    N(0, 1) draw of the flattened shape (transposed when wide, as torch does); the
    factorisation runs in float32 for float16/bfloat16 tensors."""
    if tensor.ndimension() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.size(0)
    cols = tensor.numel() // rows
    with torch.no_grad():
        flat = tensor.new_empty((rows, cols)).normal_(0, 1, generator=generator)
        if flat.dtype in (torch.float16, torch.bfloat16):
            flat = flat.float()
        if rows < cols:
            flat.t_()
        q = haar(flat)
        if rows < cols:
            q.t_()
        tensor.view_as(q).copy_(q)
        tensor.mul_(_gain(gain))
    return tensor


@register(family="orthogonal", variance="gain² / max(rows, cols)", variance_fn=_orthogonal_var,
          paper=_SAXE, min_rank=2, torch_fn="orthogonal_",
          shared=_orthogonal_shared)  # fmt: skip
def orthogonal(
    tensor: Tensor, gain: Gain = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""A (semi-)orthogonal matrix times ``gain``; trailing dimensions are flattened.

    Q from the QR decomposition of a Gaussian matrix, with the signs of R's diagonal folded in
    so that Q is Haar-distributed (Mezzadri 2007). For float16/bfloat16 tensors the QR runs in
    float32 (torch's QR has no half-precision kernel) and the result is cast back.

    Args:
        gain: scale factor, or ``auto`` for the following activation's gain (default 1).
    """
    return _fill_orthogonal(tensor, gain, generator, _qr_haar)


def haar_householder(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Householder factors of a Haar-distributed Q, from a Gaussian ``z`` (m, n), m ≥ n.

    Reflection k maps the column ``z[k:, k]`` onto a multiple of e_k; unlike a QR, no
    reflection updates the columns after it, so this costs O(m·n), not O(m·n²). Returns
    ``(a, tau, d)`` with ``a``/``tau`` in LAPACK's ``geqrf`` layout (for
    ``torch.linalg.householder_product`` and ``torch.ormqr``) and signs ``d``, such that
    Q = H_0⋯H_{n-1}·diag(d) has Haar-distributed (uniform on the Stiefel manifold) columns:
    its first column is z[:, 0]/‖z[:, 0]‖ and the rest is Haar on the complement, recursively
    (Stewart 1980).
    """
    low = torch.tril(z, diagonal=-1)
    diag = torch.diagonal(z)
    tail2 = (low * low).sum(dim=0)
    s = torch.where(diag >= 0, 1.0, -1.0).to(z.dtype)
    u0 = diag + s * torch.sqrt(diag * diag + tail2)
    ok = u0 != 0  # a zero column (probability 0) leaves its reflection out
    safe = torch.where(ok, u0, torch.ones_like(u0))
    a = torch.where(ok, low / safe, torch.zeros_like(low))
    tau = torch.where(ok, 2 * safe * safe / (safe * safe + tail2), torch.zeros_like(u0))
    return a, tau, -s


def _orthogonal_householder_shared(shape: tuple[int, ...], gain: Gain = 1.0) -> SharedDraw | None:
    if len(shape) == 2 and shape[0] == shape[1]:
        return SharedDraw("householder", _gain(gain))
    return None


@register(family="orthogonal", variance="gain² / max(rows, cols)", variance_fn=_orthogonal_var,
          paper=_STEWART, min_rank=2, shared=_orthogonal_householder_shared)  # fmt: skip
def orthogonal_householder(
    tensor: Tensor, gain: Gain = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""A Haar (semi-)orthogonal matrix times ``gain``, from random Householder reflections.

    The same distribution as ``orthogonal`` from the same N(0, 1) draw, but other values:
    the reflections are built from the draw's columns directly instead of by a QR (see
    :func:`haar_householder`). In sweeps it is applied to the activations in O(batch·n²)
    per layer, with no O(n³) factorisation: the fast option for wide orthogonal sweeps.

    Args:
        gain: scale factor, or ``auto`` for the following activation's gain (default 1).
    """
    return _fill_orthogonal(tensor, gain, generator, _householder_haar)


def _sparse_var(shape: tuple[int, ...], sparsity: float = 0.9, std: float = 0.01) -> float:
    rows = shape[0]
    return (1 - math.ceil(sparsity * rows) / rows) * std**2


@register(family="sparse_normal", variance="(1 - ceil(sparsity·rows)/rows) · std²",
          variance_fn=_sparse_var, paper=_MARTENS,
          min_rank=2, max_rank=2, torch_fn="sparse_", check=_check_sparse)  # fmt: skip
def sparse(
    tensor: Tensor,
    sparsity: float = 0.9,
    std: float = 0.01,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""N(0, std²) with a fraction ``sparsity`` of each column set to zero.

    The non-zero values are torch's (same draw); the zero pattern comes from ``generator`` too,
    as one random permutation per column (torch's ``sparse_`` draws it from the global RNG, so
    same seed would not mean same numbers). torch has no default sparsity; initsuite uses 0.9.

    Args:
        sparsity: fraction of each column set to zero, in [0, 1] (default 0.9).
        std: std of the non-zero values (default 0.01).
    """
    if tensor.ndimension() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    rows, cols = tensor.shape
    num_zeros = math.ceil(sparsity * rows)
    with torch.no_grad():
        tensor.normal_(0, std, generator=generator)
        if num_zeros:
            # Ranks of iid uniforms form an independent uniform permutation per column.
            keys = torch.rand((rows, cols), generator=generator, device=tensor.device)
            # The num_zeros smallest keys of each column: a k-th value selection (O(rows)
            # per column, 5× faster than argsort at 1024²) gives the same set unless the
            # k-th key ties with another, which argsort then settles.
            kth = keys.kthvalue(num_zeros, dim=0, keepdim=True).values
            mask = keys <= kth
            if int(mask.sum()) == num_zeros * cols:
                tensor.masked_fill_(mask, 0.0)
            else:
                tensor.scatter_(0, keys.argsort(dim=0)[:num_zeros], 0.0)
    return tensor

r"""Schemes beyond ``torch.nn.init``: JAX/Keras variance scaling, delta-orthogonal, ZerO.

Each function fills ``tensor`` in place and returns it and draws only from ``generator``,
like the built-ins; the random ones reuse the built-ins' draws (``trunc_normal_``,
``orthogonal``) so that their values are torch's own given the generator state.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from initsuite.core.errors import InitsuiteError, unknown
from initsuite.schemes.builtin import (
    Gain,
    _gain,
    _no_op,
    _normal_shared,
    _uniform_shared,
    fans,
    orthogonal,
)
from initsuite.schemes.registry import SharedDraw, register

__all__ = ["TRUNCATED_NORMAL_STD", "sylvester_hadamard", "zero_matrix"]

ScalingMode = Literal["fan_in", "fan_out", "fan_avg"]
Distribution = Literal["truncated_normal", "normal", "uniform"]
MODES: tuple[str, ...] = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS: tuple[str, ...] = ("truncated_normal", "normal", "uniform")

TRUNCATED_NORMAL_STD = 0.87962566103423978
"""The std of N(0, 1) truncated to [-2, 2]: JAX's and Keras' constant, by which they divide
the std so that the truncated draw has the variance asked for."""

_KERAS = (
    "JAX jax.nn.initializers.variance_scaling / Keras VarianceScaling (after He et al. 2015, "
    "Glorot & Bengio 2010, LeCun et al. 1998)"
)
_XIAO = (
    "Xiao et al. (2018), Dynamical Isometry and a Mean Field Theory of CNNs: How to Train "
    "10,000-Layer Vanilla Convolutional Neural Networks"
)
_ZHAO = (
    "Zhao, Schäfer & Anandkumar (2021), ZerO Initialization: Initializing Neural Networks with "
    "only Zeros and Ones (TMLR 2022)"
)


# -- variance scaling (JAX / Keras) ------------------------------------------------------------


def _scaling_n(shape: tuple[int, ...] | torch.Size, mode: str) -> float:
    """The n of scale/n: fan_in, fan_out or their mean, fans as torch computes them."""
    fan_in, fan_out = fans(shape)
    if mode == "fan_in":
        return float(fan_in)
    elif mode == "fan_out":
        return float(fan_out)
    elif mode == "fan_avg":
        return (fan_in + fan_out) / 2.0
    else:
        raise InitsuiteError("scheme 'variance_scaling': " + unknown("mode", mode, MODES))


def _check_scaling(scale: float, mode: str, distribution: str) -> None:
    # Spec strings are checked against the Literal types when parsed; these checks are for
    # direct calls, and name the nearest valid choice.
    owner = "scheme 'variance_scaling': "
    if mode not in MODES:
        raise InitsuiteError(owner + unknown("mode", mode, MODES))
    if distribution not in DISTRIBUTIONS:
        raise InitsuiteError(owner + unknown("distribution", distribution, DISTRIBUTIONS))
    if not scale > 0:
        raise ValueError(f"variance_scaling needs scale > 0, got scale={scale}")


def _check_scale(shape: tuple[int, ...] | None, scale: float, **_: object) -> None:
    if not scale > 0:
        raise ValueError(f"needs scale > 0, got scale={scale!r}")


def _scaling_std(
    shape: tuple[int, ...] | torch.Size,
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
) -> float:
    """sqrt(scale / n), the std of the result, after checking every parameter."""
    _check_scaling(scale, mode, distribution)
    return math.sqrt(scale / _scaling_n(shape, mode))


def _scaling_var(
    shape: tuple[int, ...],
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
) -> float:
    return _scaling_std(shape, scale, mode, distribution) ** 2


def _scaling_shared(
    shape: tuple[int, ...],
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
) -> SharedDraw | None:
    std = _scaling_std(shape, scale, mode, distribution)
    if distribution == "normal":
        return _normal_shared(std)
    if distribution == "uniform":
        return _uniform_shared(std)
    return None  # a rejection sampler: not a scaling of one normal or uniform draw


_PHI_2 = 0.5 * (1.0 + math.erf(2.0 / math.sqrt(2.0)))  # Φ(2)


def standard_truncated_normal(like: Tensor, generator: torch.Generator | None) -> Tensor:
    """N(0, 1) cut at ±2, of ``like``'s shape, by inverse-CDF sampling as JAX draws it:
    z = √2 · erfinv(u), u ~ U(2Φ(-2) - 1, 2Φ(2) - 1): one uniform draw, where torch's
    ``trunc_normal_`` redraws the whole tensor until no value falls outside (about five
    draws for a million values). Computed in float32 (float64 for float64 tensors)."""
    work = torch.float64 if like.dtype == torch.float64 else torch.float32
    u = torch.empty(like.shape, dtype=work, device=like.device)
    u.uniform_(1.0 - 2 * _PHI_2, 2 * _PHI_2 - 1.0, generator=generator)
    return u.erfinv_().mul_(math.sqrt(2.0)).clamp_(-2.0, 2.0)


@register(
    family="truncated_normal | normal | uniform",
    variance="scale / n, n = fan_in | fan_out | (fan_in + fan_out)/2",
    variance_fn=_scaling_var,
    paper=_KERAS,
    min_rank=2,
    shared=_scaling_shared,
    check=_check_scale,
)
def variance_scaling(
    tensor: Tensor,
    scale: float = 1.0,
    mode: ScalingMode = "fan_in",
    distribution: Distribution = "truncated_normal",
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""JAX/Keras variance scaling: Var(W) = scale / n, whatever the distribution.

    n is ``fan_in``, ``fan_out`` or ``(fan_in + fan_out) / 2`` (``mode``), computed as torch
    does (``shape[1]`` resp. ``shape[0]`` times the receptive field ``prod(shape[2:])``; JAX's
    own fans read a kernel in HWIO layout, the same numbers for the same layer). With
    σ = sqrt(scale / n):

    * ``truncated_normal``: Z ~ N(0, 1) truncated to [-2, 2], times σ / 0.8796256610…, the
      std of that truncated Z, so the *result* has std σ and |W| <= 2σ / 0.8796…. Unlike
      ``trunc_normal``, whose cut-offs a, b are absolute values: its default N(0, 1) cut at
      ±2 has std ≈ 0.88, not 1. Z is drawn by inverse-CDF sampling, as JAX does
      (:func:`standard_truncated_normal`: one uniform draw, not torch's rejection rounds).
    * ``normal``: N(0, σ²).
    * ``uniform``: U(-limit, limit), limit = sqrt(3 · scale / n).

    scale 1 with fan_in is JAX's ``lecun_normal``/``lecun_uniform``, scale 2 with fan_in
    ``he_normal``/``he_uniform``, scale 1 with fan_avg ``glorot_normal``/``glorot_uniform``.

    Args:
        scale: the variance numerator, > 0 (default 1).
        mode: ``fan_in`` (default), ``fan_out`` or ``fan_avg``.
        distribution: ``truncated_normal`` (default), ``normal`` or ``uniform``.

    Example:
        >>> w = torch.empty(256, 128)
        >>> variance_scaling(w, 2.0, "fan_in", "truncated_normal",
        ...                  generator=torch.Generator().manual_seed(0))
    """
    if tensor.ndimension() < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
        )
    _check_scaling(scale, mode, distribution)
    if _no_op(tensor):  # fan 0: nothing to fill, and no std to compute
        return tensor
    std = _scaling_std(tensor.shape, scale, mode, distribution)
    with torch.no_grad():
        if distribution == "truncated_normal":
            return tensor.copy_(standard_truncated_normal(tensor, generator) * std
                                / TRUNCATED_NORMAL_STD)  # fmt: skip
        elif distribution == "normal":
            return tensor.normal_(0.0, std, generator=generator)
        elif distribution == "uniform":
            limit = math.sqrt(3.0) * std  # as kaiming_uniform computes its bound
            return tensor.uniform_(-limit, limit, generator=generator)
        else:  # _scaling_std has checked it
            raise AssertionError(distribution)


# -- structured, at the kernel's centre tap ----------------------------------------------------


def _check_conv(tensor: Tensor) -> tuple[slice | int, ...]:
    """The index of the centre tap (``k // 2`` along each spatial dimension) of a rank 3-5
    conv kernel: ``tensor[index]`` is the (out × in) matrix there."""
    if tensor.ndimension() not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    return (slice(None), slice(None), *(s // 2 for s in tensor.shape[2:]))


def _delta_orthogonal_var(shape: tuple[int, ...], gain: float = 1.0) -> float:
    out_c, in_c = shape[0], shape[1]
    return gain**2 * min(out_c, in_c) / (out_c * in_c * math.prod(shape[2:]))


@register(
    family="orthogonal",
    variance="gain² · min(out, in) / (out · in · K), K = prod(kernel)",
    variance_fn=_delta_orthogonal_var,
    paper=_XIAO,
    min_rank=3,
    max_rank=5,
)
def delta_orthogonal(
    tensor: Tensor, gain: Gain = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Delta-orthogonal conv kernel: ``gain`` × a Haar orthogonal matrix at the centre tap.

    W[:, :, c] = gain · Q with Q an (out × in) (semi-)orthogonal matrix drawn exactly as
    ``orthogonal`` draws one (same generator, same values), and zeros at every other tap; c is
    index ``k // 2`` along each spatial dimension, torch's ``dirac_`` convention (the centre
    for odd k). A stride-1 conv with "same" padding is then Q applied at every pixel: for
    out >= in (the paper's case) Q has orthonormal columns and, with gain 1, the layer
    preserves the norm of its input exactly, at any depth (dynamical isometry). For out < in
    Q has orthonormal rows (as ``orthogonal`` fills wide matrices), which is not an isometry.
    Each entry has E[W²] = gain² · min(out, in) / (out · in · K), K = prod(kernel).

    Args:
        gain: scale factor, or ``auto`` for the following activation's gain (default 1).

    Example:
        >>> conv = torch.nn.Conv2d(16, 16, 3, padding=1, bias=False)
        >>> delta_orthogonal(conv.weight, generator=torch.Generator().manual_seed(0))
    """
    centre = _check_conv(tensor)
    if tensor.numel() == 0:
        return tensor
    with torch.no_grad():
        q = orthogonal(tensor.new_empty(tensor.shape[:2]), _gain(gain), generator=generator)
        tensor.zero_()
        tensor[centre] = q
    return tensor


# -- ZerO ------------------------------------------------------------------------------------


def sylvester_hadamard(rows: int, cols: int, device: torch.device | str | None = None) -> Tensor:
    """The leading ``rows × cols`` block of Sylvester's ±1 Hadamard matrix, as int64.

    H_0 = [1], H_{m+1} = [[H_m, H_m], [H_m, -H_m]], so H_m = H_{m-q} ⊗ H_q; with
    2^q >= cols, every column index is below 2^q and H_{m-q}[:, 0] = 1, hence
    H_m[i, j] = H_q[i mod 2^q, j]: H_q is built by doubling and its rows repeated, without
    forming the 2^m × 2^m matrix.
    """
    h = torch.ones((1, 1), dtype=torch.int64, device=device)
    for _ in range(max(cols - 1, 0).bit_length()):
        h = torch.cat([torch.cat([h, h], dim=1), torch.cat([h, -h], dim=1)], dim=0)
    reps = -(-rows // h.shape[0])
    return h[:, :cols].repeat(reps, 1)[:rows]


def zero_matrix(rows: int, cols: int, device: torch.device | str | None = None) -> Tensor:
    """ZerO's (rows × cols) = (P × Q) matrix (Algorithm 1 of Zhao et al.), in float64.

    P <= Q: the partial identity I* (ones on the main diagonal, the identity when P == Q).
    P > Q: c · I*_{P×2^m} H_m I*_{2^m×Q} = c · H_m[:P, :Q], m = ceil(log2 P),
    c = 2^(-(m-1)/2), H_m Sylvester's ±1 Hadamard matrix of size 2^m.
    """
    if rows <= cols:
        return torch.eye(rows, cols, dtype=torch.float64, device=device)
    m = (rows - 1).bit_length()  # ceil(log2(rows)), exactly, for rows >= 1
    c = 2.0 ** (-(m - 1) / 2)
    return c * sylvester_hadamard(rows, cols, device).to(torch.float64)


@register(
    family="identity",
    variance="0 (deterministic)",
    variance_fn=lambda shape: None,
    paper=_ZHAO,
    min_rank=2,
    max_rank=5,
)
def zero(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    r"""ZerO: deterministic identity / Hadamard weights of only zeros and ones (up to c).

    For a weight (P, Q) = (out, in), Algorithm 1 of Zhao et al.:

    * P == Q: the identity I;
    * P < Q: the partial identity I* (ones on the main diagonal), which passes the first P
      inputs through;
    * P > Q: c · I*_{P×2^m} · H_m · I*_{2^m×Q} = c · H_m[:P, :Q], m = ceil(log2 P),
      c = 2^(-(m-1)/2), H_m the unnormalised (±1) Sylvester Hadamard matrix of size 2^m:
      every output gets a distinct ±c mix of the inputs, instead of I*'s zero rows.

    c is the paper's (Algorithm 1): the top 2^(m-1) rows of c · H_m have orthonormal columns
    when Q <= 2^(m-1). The authors' example code divides by 2^(m/2) instead (H_m / sqrt(2^m),
    orthonormal), 1/sqrt(2) times smaller. Conv kernels (rank 3-5, out × in × k...) get the
    same matrix at the centre tap, index ``k // 2`` along each spatial dimension, and zeros
    elsewhere (Algorithm 2, which states it for odd k). The generator is not used.

    Example:
        >>> zero(torch.empty(6, 4))  # 0.5 · the first 6 rows and 4 columns of H_3
    """
    if tensor.ndimension() not in (2, 3, 4, 5):
        raise ValueError("Only tensors with 2, 3, 4, or 5 dimensions are supported")
    rows, cols = tensor.shape[:2]
    with torch.no_grad():
        w = zero_matrix(rows, cols, tensor.device)
        if tensor.ndimension() == 2:
            return tensor.copy_(w)
        centre = _check_conv(tensor)
        tensor.zero_()
        tensor[centre] = w
    return tensor

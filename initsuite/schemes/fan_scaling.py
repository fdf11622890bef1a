r"""JAX's and Keras' variance scaling: Var = scale / n over a fan mode, drawn truncated normal,
normal or uniform (``variance_scaling``), and the helpers the framework presets share.

Each function fills ``tensor`` in place and returns it and draws only from ``generator``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from initsuite.core.errors import InitsuiteError, unknown
from initsuite.schemes.common import (
    fans,
    normal_shared,
    skip_empty,
    uniform_shared,
)
from initsuite.schemes.registry import SchemeInfo, SharedDraw, register

__all__ = [
    "DISTRIBUTIONS", "MODES", "TRUNCATED_NORMAL_STD", "scaling_n", "standard_truncated_normal",
    "variance_scaling", "variance_scaling_variance",
]  # fmt: skip

_KERAS = (
    "JAX jax.nn.initializers.variance_scaling / Keras VarianceScaling (after He et al. 2015, "
    "Glorot & Bengio 2010, LeCun et al. 1998)"
)

ScalingMode = Literal["fan_in", "fan_out", "fan_avg"]
Distribution = Literal["truncated_normal", "normal", "uniform"]
MODES: tuple[str, ...] = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS: tuple[str, ...] = ("truncated_normal", "normal", "uniform")

TRUNCATED_NORMAL_STD = 0.87962566103423978
"""The std of N(0, 1) truncated to [-2, 2]: JAX's and Keras' constant, by which they divide
the std so that the truncated draw has the variance asked for."""


# -- variance scaling (JAX / Keras) ------------------------------------------------------------


def scaling_n(shape: tuple[int, ...] | torch.Size, mode: str) -> float:
    """The n of scale/n: fan_in, fan_out, their mean (``fan_avg``) or, as JAX also offers,
    their geometric mean (``fan_geo_avg``); fans as torch computes them."""
    fan_in, fan_out = fans(shape)
    if mode == "fan_in":
        return float(fan_in)
    elif mode == "fan_out":
        return float(fan_out)
    elif mode == "fan_avg":
        return (fan_in + fan_out) / 2.0
    elif mode == "fan_geo_avg":
        return math.sqrt(fan_in * fan_out)
    else:
        raise InitsuiteError(
            "scheme 'variance_scaling': " + unknown("mode", mode, (*MODES, "fan_geo_avg"))
        )


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
    return math.sqrt(scale / scaling_n(shape, mode))


def variance_scaling_variance(
    shape: tuple[int, ...],
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
) -> float:
    """Var(W) of ``variance_scaling`` for a weight of ``shape``: scale / n."""
    return _scaling_std(shape, scale, mode, distribution) ** 2


def _scaling_shared(
    shape: tuple[int, ...],
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
) -> SharedDraw | None:
    std = _scaling_std(shape, scale, mode, distribution)
    if distribution == "normal":
        return normal_shared(std)
    if distribution == "uniform":
        return uniform_shared(std)
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


# long: its SchemeInfo and the docstring (the scheme's reference) are 50 of its lines
@register(
    SchemeInfo(
        family="truncated_normal | normal | uniform",
        variance_formula="scale / n, n = fan_in | fan_out | (fan_in + fan_out)/2",
        variance=variance_scaling_variance,
        paper=_KERAS,
        min_rank=2,
        shared=_scaling_shared,
        check=_check_scale,
    )
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
        >>> w = variance_scaling(w, 2.0, "fan_in", "truncated_normal",
        ...                      generator=torch.Generator().manual_seed(0))
        >>> round(w.var().item() * 128, 1)  # Var(W) · fan_in = scale
        2.0
    """
    if tensor.ndimension() < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
        )
    _check_scaling(scale, mode, distribution)
    if skip_empty(tensor):  # fan 0: nothing to fill, and no std to compute
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

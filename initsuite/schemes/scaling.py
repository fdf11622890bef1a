r"""Variance scaling: Glorot (xavier_*), He (kaiming_*), LeCun, JAX/Keras variance_scaling,
and PyTorch's default Linear/Conv init, weight (torch_default) and bias.

Each function fills ``tensor`` in place and returns it and draws only from ``generator``;
the torch.nn.init ones match their counterpart value for value given the same generator
state (tested).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from initsuite.core.errors import InitsuiteError, unknown
from initsuite.schemes.common import (
    Gain,
    Mode,
    calculate_gain,
    check_gain,
    fan,
    fans,
    gain_value,
    normal_shared,
    skip_empty,
    uniform_shared,
)
from initsuite.schemes.registry import SchemeInfo, SharedDraw, register

__all__ = [
    "TRUNCATED_NORMAL_STD", "default_bias_", "default_bias_bound", "default_bias_variance",
    "kaiming_normal", "kaiming_uniform", "lecun_normal", "lecun_uniform", "scaling_n",
    "standard_truncated_normal", "torch_default", "variance_scaling",
    "variance_scaling_variance", "xavier_normal",
    "xavier_uniform",
]  # fmt: skip

_GLOROT = (
    "Glorot & Bengio (2010), Understanding the difficulty of training deep feedforward neural "
    "networks"
)
_HE = "He et al. (2015), Delving deep into rectifiers"
_LECUN = "LeCun et al. (1998), Efficient BackProp"
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


def _check_kaiming(shape: tuple[int, ...] | None, a: float, mode: str, nonlinearity: str) -> None:
    try:  # torch's leaky_relu gain squares a: a huge slope overflows instead of giving ~0
        gain = calculate_gain(nonlinearity, a)
    except ArithmeticError:
        raise ValueError(f"the gain of {nonlinearity!r} with a={a!r} cannot be computed") from None
    if not (math.isfinite(gain) and gain >= 0):
        raise ValueError(f"the gain of {nonlinearity!r} with a={a!r} is {gain!r}")


# -- Glorot, He, LeCun and PyTorch's layer defaults ------------------------------------------


def _xavier_var(shape: tuple[int, ...], gain: float = 1.0) -> float:
    fan_in, fan_out = fans(shape)
    return gain**2 * 2.0 / (fan_in + fan_out)


def _xavier_std(shape: tuple[int, ...] | torch.Size, gain: Gain) -> float:
    fan_in, fan_out = fans(shape)
    return gain_value(gain) * math.sqrt(2.0 / float(fan_in + fan_out))


@register(SchemeInfo(
    family="uniform", variance_formula="gain² · 2 / (fan_in + fan_out)", variance=_xavier_var,
    paper=_GLOROT, min_rank=2, torch_fn="xavier_uniform_",
    shared=lambda shape, gain=1.0: uniform_shared(_xavier_std(shape, gain)),
    check=check_gain))  # fmt: skip
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


@register(SchemeInfo(
    family="normal", variance_formula="gain² · 2 / (fan_in + fan_out)", variance=_xavier_var,
    paper=_GLOROT, min_rank=2, torch_fn="xavier_normal_",
    shared=lambda shape, gain=1.0: normal_shared(_xavier_std(shape, gain)),
    check=check_gain))  # fmt: skip
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
    return calculate_gain(nonlinearity, a) ** 2 / fan(shape, mode)


def _kaiming_std(
    shape: tuple[int, ...] | torch.Size,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
) -> float:
    return calculate_gain(nonlinearity, a) / math.sqrt(fan(shape, mode))


@register(SchemeInfo(family="uniform", variance_formula="gain(nonlinearity, a)² / fan_mode",
          variance=_kaiming_var, paper=_HE, min_rank=2, torch_fn="kaiming_uniform_",
          shared=lambda shape, **p: uniform_shared(_kaiming_std(shape, **p)),
          check=_check_kaiming))  # fmt: skip
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
    if skip_empty(tensor):
        return tensor
    std = _kaiming_std(tensor.shape, a, mode, nonlinearity)
    bound = math.sqrt(3.0) * std
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


@register(SchemeInfo(family="normal", variance_formula="gain(nonlinearity, a)² / fan_mode",
          variance=_kaiming_var, paper=_HE, min_rank=2, torch_fn="kaiming_normal_",
          shared=lambda shape, **p: normal_shared(_kaiming_std(shape, **p)),
          check=_check_kaiming))  # fmt: skip
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
    if skip_empty(tensor):
        return tensor
    std = _kaiming_std(tensor.shape, a, mode, nonlinearity)
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


def default_bias_bound(fan_in: int) -> float:
    """The bound of nn.Linear's and nn.Conv*'s default bias, U(-bound, bound): 1/√fan_in
    (0 for fan_in 0, as torch's ``reset_parameters``)."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


def default_bias_variance(fan_in: int) -> float:
    """Var of nn.Linear's default bias U(±1/√fan_in): 1/(3·fan_in), σ_b² in mean-field theory
    (also the variance of the weight under ``torch_default``)."""
    return 1.0 / (3 * fan_in)


def default_bias_(bias: Tensor, fan_in: int, *, generator: torch.Generator | None = None) -> Tensor:
    """Fill ``bias`` in place as nn.Linear/nn.Conv* do: U(±1/√fan_in) (PyTorch's
    ``reset_parameters``), from ``generator``.

    Args:
        bias: the layer's bias, shape (out_features,).
        fan_in: the layer's fan_in (in_features, times the kernel size for convolutions).
    """
    bound = default_bias_bound(fan_in)
    with torch.no_grad():
        return bias.uniform_(-bound, bound, generator=generator)


@register(SchemeInfo(family="uniform", variance_formula="1 / (3 · fan_in)",
          variance=lambda shape: default_bias_variance(fans(shape)[0]),
          paper="PyTorch nn.Linear / nn.Conv reset_parameters (kaiming_uniform, a=√5)",
          min_rank=2, torch_fn="kaiming_uniform_(a=√5)",
          shared=lambda shape: uniform_shared(_kaiming_std(shape, math.sqrt(5.0)))))  # fmt: skip
def torch_default(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    r"""PyTorch's default Linear/Conv weight init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    This is ``kaiming_uniform_(w, a=math.sqrt(5))``, computed the same way so the values match.
    """
    return kaiming_uniform(tensor, a=math.sqrt(5.0), generator=generator)


def _lecun_var(shape: tuple[int, ...], gain: float = 1.0) -> float:
    return gain**2 / fans(shape)[0]


def _lecun_std(shape: tuple[int, ...] | torch.Size, gain: Gain) -> float:
    return gain_value(gain) / math.sqrt(fans(shape)[0])


@register(SchemeInfo(family="normal", variance_formula="gain² / fan_in", variance=_lecun_var,
          paper=_LECUN, min_rank=2,
          shared=lambda shape, gain=1.0: normal_shared(_lecun_std(shape, gain)),
          check=check_gain))  # fmt: skip
def lecun_normal(
    tensor: Tensor, gain: Gain = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""LeCun normal: N(0, gain² / fan_in).

    The plain normal of LeCun et al. (1998); JAX and Keras name a *truncated* normal so (see
    ``variance_scaling``). With gain 1 and SELU this is the self-normalising init.

    Args:
        gain: scale factor, or ``auto`` for the following activation's gain (default 1).
    """
    if skip_empty(tensor):
        return tensor
    std = _lecun_std(tensor.shape, gain)
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


@register(SchemeInfo(family="uniform", variance_formula="gain² / fan_in", variance=_lecun_var,
          paper=_LECUN, min_rank=2,
          shared=lambda shape, gain=1.0: uniform_shared(_lecun_std(shape, gain)),
          check=check_gain))  # fmt: skip
def lecun_uniform(
    tensor: Tensor, gain: Gain = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""LeCun uniform: U(-a, a), a = gain · sqrt(3 / fan_in).

    Args:
        gain: scale factor, or ``auto`` for the following activation's gain (default 1).
    """
    if skip_empty(tensor):
        return tensor
    bound = math.sqrt(3.0) * _lecun_std(tensor.shape, gain)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


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

r"""Variance scaling: Glorot (xavier_*), He (kaiming_*), LeCun, and PyTorch's default
Linear/Conv init, weight (torch_default) and bias (JAX/Keras variance_scaling is in
:mod:`~initsuite.schemes.fan_scaling`).

Each function fills ``tensor`` in place and returns it and draws only from ``generator``;
the torch.nn.init ones match their counterpart value for value given the same generator
state (tested).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

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
from initsuite.schemes.registry import SchemeInfo, register

__all__ = [
    "default_bias_", "default_bias_bound", "default_bias_variance", "kaiming_normal",
    "kaiming_uniform", "lecun_normal", "lecun_uniform", "torch_default", "xavier_normal",
    "xavier_uniform",
]  # fmt: skip

_GLOROT = (
    "Glorot & Bengio (2010), Understanding the difficulty of training deep feedforward neural "
    "networks"
)
_HE = "He et al. (2015), Delving deep into rectifiers"
_LECUN = "LeCun et al. (1998), Efficient BackProp"


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

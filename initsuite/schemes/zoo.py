r"""Framework-qualified schemes of the model zoos and older frameworks: ``timm:``, ``hf:``
(transformers), ``lua_torch:`` and ``flux:`` (Flux.jl), registered with their metadata as in
:mod:`~initsuite.schemes.frameworks`. transformers' and timm's are checked live; Lua Torch and
Flux.jl (not Python libraries) follow their source, linked in each scheme's ``source``, and are
marked ``"not checked live"``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from initsuite.schemes.common import check_gain, fans
from initsuite.schemes.frameworks import positive, qualified
from initsuite.schemes.plain import normal, trunc_normal, trunc_normal_variance
from initsuite.schemes.scaling import (
    lecun_normal,
    lecun_uniform,
    torch_default,
    variance_scaling,
    xavier_normal,
    xavier_uniform,
)

__all__: list[str] = []


# -- timm (checked live against timm.layers) ---------------------------------------------------


def _timm_trunc_normal(
    tensor: Tensor, mean: float = 0.0, std: float = 0.02, a: float = -2.0, b: float = 2.0, *,
    generator: torch.Generator | None = None,
) -> Tensor:  # fmt: skip
    r"""timm's trunc_normal_ with its models' std .02: cut at ABSOLUTE [a, b] = ±2 (torch's
    convention), so at std .02 practically uncut, Var ≈ std²."""
    return trunc_normal(tensor, mean, std, a, b, generator=generator)


def _timm_trunc_normal_tf(
    tensor: Tensor, mean: float = 0.0, std: float = 0.02, a: float = -2.0, b: float = 2.0, *,
    generator: torch.Generator | None = None,
) -> Tensor:  # fmt: skip
    r"""timm's trunc_normal_tf_: N(0, 1) cut at [a, b], then times std plus mean (TF/JAX
    style: the cut is in units of std, and the variance is std² · 0.7737, not std²)."""
    trunc_normal(tensor, 0.0, 1.0, a, b, generator=generator)
    with torch.no_grad():
        return tensor.mul_(std).add_(mean)


def _timm_lecun_normal(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    r"""timm's lecun_normal_: variance_scaling_, fan_in, truncated normal: Var = 1/fan_in."""
    return variance_scaling(tensor, 1.0, "fan_in", "truncated_normal", generator=generator)


def _check_timm(shape: tuple[int, ...] | None, mean: float, std: float, a: float, b: float) -> None:
    positive("std", std)
    if not a < b:
        raise ValueError(f"needs a < b, got a={a!r}, b={b!r}")


qualified("timm", "trunc_normal", family="truncated_normal", min_rank=1, check=_check_timm,
           variance="std²·Var(N(0,1) | [(a-mean)/std, (b-mean)/std]) ≈ std² at std .02",
           variance_fn=lambda shape, mean=0.0, std=0.02, a=-2.0, b=2.0:
               trunc_normal_variance(shape, mean, std, a, b),
           mean_fn=lambda shape, mean=0.0, std=0.02, a=-2.0, b=2.0: mean,
           )(_timm_trunc_normal)  # fmt: skip
qualified("timm", "trunc_normal_tf", family="truncated_normal", min_rank=1, check=_check_timm,
           variance="std² · Var(N(0,1) | [a, b])",
           variance_fn=lambda shape, mean=0.0, std=0.02, a=-2.0, b=2.0:
               std**2 * trunc_normal_variance(shape, 0.0, 1.0, a, b),
           mean_fn=lambda shape, mean=0.0, std=0.02, a=-2.0, b=2.0:
               mean)(_timm_trunc_normal_tf)  # fmt: skip
qualified("timm", "lecun_normal", family="truncated_normal", variance="1 / fan_in",
           variance_fn=lambda shape: 1.0 / fans(shape)[0])(_timm_lecun_normal)  # fmt: skip


# -- Hugging Face transformers -----------------------------------------------------------------


def _hf_normal(
    tensor: Tensor, initializer_range: float = 0.02, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""transformers' _init_weights (BERT, GPT-2): N(0, initializer_range²), 0.02 by default."""
    return normal(tensor, 0.0, initializer_range, generator=generator)


qualified("hf", "normal", family="normal", variance="initializer_range²", min_rank=1,
           variance_fn=lambda shape, initializer_range=0.02: initializer_range**2,
           check=lambda shape, initializer_range: positive("initializer_range",
                                                            initializer_range),
           )(_hf_normal)  # fmt: skip


# -- Lua Torch and Flux.jl (from their source, not checked live) -------------------------------


_SQRT2 = math.sqrt(2.0)  # Flux's default gain for kaiming_*


def _lua_default(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    r"""Lua Torch's nn.Linear/SpatialConvolution reset(): U(±1/√fan_in), Var = 1/(3·fan_in)."""
    return torch_default(tensor, generator=generator)


def _flux_glorot_uniform(
    tensor: Tensor, gain: float = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Flux's glorot_uniform (Dense's default): U(±gain·√(6/(fan_in + fan_out)))."""
    return xavier_uniform(tensor, gain, generator=generator)


def _flux_glorot_normal(
    tensor: Tensor, gain: float = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Flux's glorot_normal: N(0, gain² · 2/(fan_in + fan_out)), not truncated."""
    return xavier_normal(tensor, gain, generator=generator)


def _flux_kaiming_uniform(
    tensor: Tensor, gain: float = _SQRT2, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Flux's kaiming_uniform: U(±gain·√(3/fan_in)), gain √2 by default."""
    return lecun_uniform(tensor, gain, generator=generator)


def _flux_kaiming_normal(
    tensor: Tensor, gain: float = _SQRT2, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Flux's kaiming_normal: N(0, gain²/fan_in), not truncated, gain √2 by default."""
    return lecun_normal(tensor, gain, generator=generator)


qualified("lua_torch", "default", family="uniform", variance="1 / (3 · fan_in)",
           variance_fn=lambda shape: 1.0 / (3 * fans(shape)[0]))(_lua_default)  # fmt: skip
for _local, _fn, _family in (("glorot_uniform", _flux_glorot_uniform, "uniform"),
                             ("glorot_normal", _flux_glorot_normal, "normal")):  # fmt: skip
    qualified("flux", _local, family=_family, variance="gain² · 2 / (fan_in + fan_out)",
               variance_fn=lambda shape, gain=1.0: gain**2 * 2 / sum(fans(shape)),
               check=check_gain)(_fn)  # fmt: skip
for _local, _fn, _family in (("kaiming_uniform", _flux_kaiming_uniform, "uniform"),
                             ("kaiming_normal", _flux_kaiming_normal, "normal")):  # fmt: skip
    qualified("flux", _local, family=_family, variance="gain² / fan_in (gain √2)",
               variance_fn=lambda shape, gain=_SQRT2: gain**2 / fans(shape)[0],
               check=check_gain)(_fn)  # fmt: skip

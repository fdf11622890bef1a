r"""Framework-qualified schemes of the model zoos and older frameworks: ``timm:``, ``hf:``
(transformers), ``lua_torch:`` and ``flux:`` (Flux.jl), registered with their metadata as in
:mod:`~initsuite.schemes.frameworks`. transformers' and timm's are checked live; Lua Torch and
Flux.jl (not Python libraries) follow their source, linked in each scheme's ``source``, and are
marked ``"not checked live"``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import Tensor

from initsuite.schemes.common import check_gain, fans
from initsuite.schemes.fan_scaling import variance_scaling
from initsuite.schemes.frameworks import Alias, law, positive, qualified
from initsuite.schemes.plain import normal, trunc_normal, trunc_normal_variance
from initsuite.schemes.scaling import (
    lecun_normal,
    lecun_uniform,
    torch_default,
    xavier_normal,
    xavier_uniform,
)

__all__ = ["HF", "OLDER", "TIMM"]


# -- timm (checked live against timm.layers) ---------------------------------------------------


def _timm_trunc_normal_tf(
    tensor: Tensor, mean: float = 0.0, std: float = 0.02, a: float = -2.0, b: float = 2.0, *,
    generator: torch.Generator | None = None,
) -> Tensor:  # fmt: skip
    r"""timm's trunc_normal_tf_: N(0, 1) cut at [a, b], then times std plus mean (TF/JAX
    style: the cut is in units of std, and the variance is std² · 0.7737, not std²)."""
    trunc_normal(tensor, 0.0, 1.0, a, b, generator=generator)
    with torch.no_grad():
        return tensor.mul_(std).add_(mean)


def _check_timm(shape: tuple[int, ...] | None, mean: float, std: float, a: float, b: float) -> None:
    positive("std", std)
    if not a < b:
        raise ValueError(f"needs a < b, got a={a!r}, b={b!r}")


qualified("timm", "trunc_normal_tf", law(
    "truncated_normal", "std² · Var(N(0,1) | [a, b])",
    lambda shape, mean=0.0, std=0.02, a=-2.0, b=2.0:
        std**2 * trunc_normal_variance(shape, 0.0, 1.0, a, b),
    min_rank=1, check=_check_timm,
    mean=lambda shape, mean=0.0, std=0.02, a=-2.0, b=2.0: mean))(_timm_trunc_normal_tf)  # fmt: skip

TIMM: tuple[Alias, ...] = (
    Alias("timm", "trunc_normal", trunc_normal, "timm's trunc_normal_ with its models' std .02: "
          "cut at ABSOLUTE [a, b] = ±2 (torch's\n    convention), so at std .02 practically "
          "uncut, Var ≈ std².",
          law("truncated_normal",
              "std²·Var(N(0,1) | [(a-mean)/std, (b-mean)/std]) ≈ std² at std .02",
              lambda shape, mean=0.0, std=0.02, a=-2.0, b=2.0:
                  trunc_normal_variance(shape, mean, std, a, b),
              min_rank=1, check=_check_timm,
              mean=lambda shape, mean=0.0, std=0.02, a=-2.0, b=2.0: mean),
          {"mean": ("mean", 0.0), "std": ("std", 0.02), "a": ("a", -2.0), "b": ("b", 2.0)}),
    Alias("timm", "lecun_normal", variance_scaling, "timm's lecun_normal_: variance_scaling_, "
          "fan_in, truncated normal: Var = 1/fan_in.",
          law("truncated_normal", "1 / fan_in", lambda shape: 1.0 / fans(shape)[0]),
          fixed={"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal"}),
)  # fmt: skip


# -- Hugging Face transformers -----------------------------------------------------------------


HF = Alias(
    "hf", "normal", normal, "transformers' _init_weights (BERT, GPT-2): N(0, "
    "initializer_range²), 0.02 by default.",
    law("normal", "initializer_range²", lambda shape, initializer_range=0.02: initializer_range**2,
        min_rank=1, check=lambda shape, initializer_range: positive("initializer_range",
                                                                    initializer_range)),
    {"initializer_range": ("std", 0.02)}, {"mean": 0.0},
)  # fmt: skip


# -- Lua Torch and Flux.jl (from their source, not checked live) -------------------------------


_SQRT2 = math.sqrt(2.0)  # Flux's default gain for kaiming_*


_GLOROT = law(
    "uniform",
    "gain² · 2 / (fan_in + fan_out)",
    lambda shape, gain=1.0: gain**2 * 2 / sum(fans(shape)),
    check=check_gain,
)
_KAIMING = law(
    "uniform",
    "gain² / fan_in (gain √2)",
    lambda shape, gain=_SQRT2: gain**2 / fans(shape)[0],
    check=check_gain,
)
OLDER: tuple[Alias, ...] = (
    Alias("lua_torch", "default", torch_default, "Lua Torch's nn.Linear/SpatialConvolution "
          "reset(): U(±1/√fan_in), Var = 1/(3·fan_in).",
          law("uniform", "1 / (3 · fan_in)", lambda shape: 1.0 / (3 * fans(shape)[0]))),
    Alias("flux", "glorot_uniform", xavier_uniform, "Flux's glorot_uniform (Dense's default): "
          "U(±gain·√(6/(fan_in + fan_out))).", _GLOROT, {"gain": ("gain", 1.0)}),
    Alias("flux", "glorot_normal", xavier_normal, "Flux's glorot_normal: N(0, gain² · 2/(fan_in "
          "+ fan_out)), not truncated.", replace(_GLOROT, family="normal"),
          {"gain": ("gain", 1.0)}),
    Alias("flux", "kaiming_uniform", lecun_uniform, "Flux's kaiming_uniform: U(±gain·√(3/fan_in)),"
          " gain √2 by default.", _KAIMING, {"gain": ("gain", _SQRT2)}),
    Alias("flux", "kaiming_normal", lecun_normal, "Flux's kaiming_normal: N(0, gain²/fan_in), not "
          "truncated, gain √2 by default.", replace(_KAIMING, family="normal"),
          {"gain": ("gain", _SQRT2)}),
)  # fmt: skip
"""Lua Torch's and Flux.jl's initializers, from their source (not checked live)."""

for _alias in (*TIMM, HF, *OLDER):
    _alias.register()

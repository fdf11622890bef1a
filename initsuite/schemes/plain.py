r"""torch.nn.init's plain distributions and constants: uniform, normal, trunc_normal,
constant, zeros, ones.

Each function fills ``tensor`` in place and returns it, draws only from ``generator``, and
matches its ``torch.nn.init`` counterpart value for value given the same generator state
(tested).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from initsuite.schemes.common import at_least, below
from initsuite.schemes.registry import SchemeInfo, SharedDraw, register

__all__ = [
    "constant", "normal", "ones", "trunc_normal", "trunc_normal_mean", "trunc_normal_variance",
    "uniform", "zeros",
]  # fmt: skip


def _check_trunc_normal(
    shape: tuple[int, ...] | None, mean: float, std: float, a: float, b: float
) -> None:
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std!r}")
    below(a, b)
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


# -- plain distributions ---------------------------------------------------------------------


@register(
    SchemeInfo(
        family="uniform",
        variance_formula="(b - a)² / 12",
        variance=lambda shape, a=0.0, b=1.0: (b - a) ** 2 / 12,
        mean=lambda shape, a=0.0, b=1.0: (a + b) / 2,
        paper="-",
        torch_fn="uniform_",
        shared=lambda shape, a=0.0, b=1.0: SharedDraw("uniform", (b - a) / 2, (a + b) / 2),
        check=lambda shape, a, b: below(a, b),
    )
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
    SchemeInfo(
        family="normal",
        variance_formula="std²",
        variance=lambda shape, mean=0.0, std=1.0: std**2,
        mean=lambda shape, mean=0.0, std=1.0: mean,
        paper="-",
        torch_fn="normal_",
        shared=lambda shape, mean=0.0, std=1.0: SharedDraw("normal", std, mean),
        check=lambda shape, mean, std: at_least("std", std),
    )
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


def trunc_normal_mean(
    shape: tuple[int, ...], mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0
) -> float:
    """E[W] of N(mean, std²) cut to [a, b] (absolute cut-offs)."""
    _, _, dpdf, z = _truncation(mean, std, a, b)
    return mean + std * dpdf / z


def trunc_normal_variance(
    shape: tuple[int, ...], mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0
) -> float:
    """Var(W) of N(mean, std²) cut to [a, b] (absolute cut-offs)."""
    alpha, beta, dpdf, z = _truncation(mean, std, a, b)
    pdf = lambda x: math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)  # noqa: E731
    return std**2 * (1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z - (dpdf / z) ** 2)


@register(
    SchemeInfo(
        family="truncated_normal",
        variance_formula=(
            "std²·(1 + (αφ(α) - βφ(β))/Z - ((φ(α) - φ(β))/Z)²), α=(a-mean)/std, β=(b-mean)/std"
        ),
        variance=trunc_normal_variance,
        mean=trunc_normal_mean,
        paper="-",
        torch_fn="trunc_normal_",
        check=_check_trunc_normal,
    )
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


@register(SchemeInfo(family="constant", variance_formula="0", variance=lambda shape, val: 0.0,
          mean=lambda shape, val: val,
          paper="-", torch_fn="constant_", example="constant:val=0.01"))  # fmt: skip
def constant(tensor: Tensor, val: float, *, generator: torch.Generator | None = None) -> Tensor:
    r"""Every entry equal to ``val``.

    Args:
        val: the value (required).
    """
    with torch.no_grad():
        return tensor.fill_(val)


@register(SchemeInfo(family="constant", variance_formula="0", variance=lambda shape: 0.0,
          paper="-", torch_fn="zeros_"))  # fmt: skip
def zeros(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    r"""All zeros: no symmetry breaking, the signal dies at the first layer."""
    with torch.no_grad():
        return tensor.zero_()


@register(SchemeInfo(family="constant", variance_formula="0", variance=lambda shape: 0.0,
          mean=lambda shape: 1.0, paper="-", torch_fn="ones_"))  # fmt: skip
def ones(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    r"""All ones."""
    with torch.no_grad():
        return tensor.fill_(1.0)

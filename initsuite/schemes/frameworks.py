r"""Framework-qualified schemes: other frameworks' initializers in their own vocabulary.

``jax:he_normal``, ``flax:lecun_normal``, ``keras:glorot_uniform``, ``timm:trunc_normal``,
``hf:normal``, ``lua_torch:default``, ``flux:kaiming_uniform``... (the last four in
:mod:`~initsuite.schemes.zoo`, registered with :func:`qualified`). Each is a thin registration
over one of torch's or JAX's laws already here (:mod:`~initsuite.schemes.scaling`,
:mod:`~initsuite.schemes.plain`, :mod:`~initsuite.schemes.structured`) with the framework's
parameters, names and defaults, filling a weight in torch's layout ``(out, in, *kernel)``.

Fans. JAX and Flax kernels are ``(*kernel, in, out)``, Keras' Dense kernels ``(in, out)`` and
conv kernels ``(*kernel, in, out)``, Flux's ``(out, in)`` and ``(*kernel, in, out)``: each
framework's fan_in is the input axis times the receptive field, fan_out the output axis times
it, the same numbers torch computes from ``(out, in, *kernel)`` for the same layer. So every
scheme here computes its fans as torch does, and draws the same law as the framework would for
the corresponding layer. (An embedding table is a rank-2 tensor like any other here: which of
its axes a framework calls fan_in is a layer convention, not the initializer's.)

``checked`` in each scheme's metadata is the library version its law was last confirmed
against by ``tests/test_frameworks_live.py`` (variance, support and a two-sample KS test
against draws from the library itself), or ``"not checked live"`` for the frameworks that are
not Python libraries (Lua Torch, Flux.jl): those follow their documented source, linked in
``source``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor

from initsuite.core.checked import NOT_CHECKED_LIVE, checked, load
from initsuite.schemes.common import at_least
from initsuite.schemes.plain import normal, trunc_normal, trunc_normal_variance, uniform
from initsuite.schemes.registry import register
from initsuite.schemes.scaling import (
    scaling_n,
    variance_scaling,
    variance_scaling_variance,
)
from initsuite.schemes.structured import delta_orthogonal, eye, orthogonal

__all__ = [
    "CHECKED", "FRAMEWORKS", "LIBRARIES", "NOT_CHECKED_LIVE", "SOURCES", "positive", "qualified",
]  # fmt: skip

LIBRARIES: dict[str, str | None] = {
    "jax": "jax", "flax": "flax", "keras": "keras", "hf": "transformers", "timm": "timm",
    "lua_torch": None, "flux": None,
}  # fmt: skip
"""Per framework, the Python library its laws are compared with live (None: not installable
as a Python library, so the law follows the framework's source)."""

CHECKED: dict[str, str] = {
    fw: checked(lib) if lib else NOT_CHECKED_LIVE for fw, lib in LIBRARIES.items()
}
"""Per framework, the library version whose laws the live tests last confirmed (``"jax
0.10.2"``, from :mod:`initsuite.core.checked`'s record), or :data:`NOT_CHECKED_LIVE`. A newer
installed version is compared all the same; a run with ``INITSUITE_RECORD_CHECKED=1``
updates the record once its live tests pass."""

FRAMEWORKS: tuple[str, ...] = tuple(CHECKED)

_V = load()
SOURCES: dict[str, str] = {
    "jax": f"https://github.com/jax-ml/jax/blob/jax-v{_V['jax']}/jax/_src/nn/initializers.py",
    "flax": f"https://github.com/google/flax/blob/v{_V['flax']}/flax/linen/initializers.py",
    "keras": f"https://github.com/keras-team/keras/blob/v{_V['keras']}/keras/src/initializers/",
    "hf": f"https://github.com/huggingface/transformers/blob/v{_V['transformers']}/"
    "src/transformers/models/bert/modeling_bert.py",
    "timm": f"https://github.com/huggingface/pytorch-image-models/blob/v{_V['timm']}/timm/"
    "layers/weight_init.py",
    "lua_torch": "https://github.com/torch/nn/blob/master/Linear.lua",
    "flux": "https://github.com/FluxML/Flux.jl/blob/master/src/utils.jl",
}
"""Per framework, the source its laws follow (at the recorded version's tag where there is
one)."""

Fill = Callable[..., Tensor]


def qualified(
    framework: str,
    local: str,
    *,
    family: str,
    variance: str,
    variance_fn: Callable[..., float | None],
    min_rank: int = 2,
    max_rank: int | None = None,
    **extra: Any,
) -> Callable[[Fill], Fill]:
    """Decorator: register ``fn`` as ``framework:local`` with the framework's metadata
    (:data:`CHECKED`, :data:`SOURCES`); the other arguments are :func:`register`'s."""
    return register(
        f"{framework}:{local}", family=family, variance=variance, variance_fn=variance_fn,
        paper=f"{framework} {local} ({SOURCES[framework]})", min_rank=min_rank,
        max_rank=max_rank, framework=framework, checked=CHECKED[framework],
        source=SOURCES[framework], **extra,
    )  # fmt: skip


def positive(name: str, value: float) -> None:
    """Raise ValueError unless ``value > 0`` (NaN fails)."""
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


# -- variance scaling presets: JAX, Flax (which re-exports JAX's), Keras ----------------------

_PRESETS: dict[str, tuple[float, str, str]] = {
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
}
_N = {"fan_in": "fan_in", "fan_out": "fan_out", "fan_avg": "(fan_in + fan_out)/2"}


def _preset(framework: str, local: str, scale: float, mode: str, distribution: str) -> None:
    def fill(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        return variance_scaling(tensor, scale, mode, distribution, generator=generator)

    law = "N(0,1) cut at ±2, rescaled" if distribution == "truncated_normal" else distribution
    fill.__doc__ = f"{framework}'s {local}: variance scaling, {law}, Var = {scale:g} / {_N[mode]}."
    qualified(framework, local, family=distribution, variance=f"{scale:g} / {_N[mode]}",
               variance_fn=lambda shape: variance_scaling_variance(shape, scale, mode,
                                                                   distribution),
               )(fill)  # fmt: skip


for _fw in ("jax", "flax", "keras"):
    for _local, (_scale, _mode, _dist) in _PRESETS.items():
        _preset(_fw, _local, _scale, _mode, _dist)


# -- JAX and Flax: the rest of jax.nn.initializers -------------------------------------------

JaxMode = Literal["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]
JaxDistribution = Literal["truncated_normal", "normal", "uniform"]


def _jax_scaling(
    tensor: Tensor,
    scale: float,
    mode: JaxMode,
    distribution: JaxDistribution,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""JAX's variance_scaling: Var = scale / n, n = fan_in | fan_out | fan_avg | fan_geo_avg.

    ``fan_geo_avg`` (√(fan_in · fan_out)) is drawn as ``fan_avg`` with the scale that gives
    the same variance.
    """
    if mode != "fan_geo_avg" or 0 in tensor.shape or tensor.dim() < 2:
        return variance_scaling(tensor, scale, mode, distribution, generator=generator)
    rescale = scale * scaling_n(tensor.shape, "fan_avg") / scaling_n(tensor.shape, "fan_geo_avg")
    return variance_scaling(tensor, rescale, "fan_avg", distribution, generator=generator)


def _jax_normal(
    tensor: Tensor, stddev: float = 1e-2, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""JAX's normal: N(0, stddev²), stddev 0.01 by default."""
    return normal(tensor, 0.0, stddev, generator=generator)


def _jax_uniform(
    tensor: Tensor, scale: float = 1e-2, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""JAX's uniform: U[0, scale), not centred (torch's uniform_ is U(a, b))."""
    return uniform(tensor, 0.0, scale, generator=generator)


def _jax_truncated_normal(
    tensor: Tensor,
    stddev: float = 1e-2,
    lower: float = -2.0,
    upper: float = 2.0,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""JAX's truncated_normal: stddev · N(0, 1) cut to [lower, upper], not rescaled."""
    return trunc_normal(tensor, 0.0, stddev, lower * stddev, upper * stddev, generator=generator)


def _jax_orthogonal(
    tensor: Tensor, scale: float = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""JAX's orthogonal: scale · a Haar orthogonal matrix, the kernel flattened to 2-D."""
    return orthogonal(tensor, scale, generator=generator)


def _jax_delta_orthogonal(
    tensor: Tensor, scale: float = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""JAX's delta_orthogonal: scale · Haar orthogonal at the tap (k - 1)//2, zeros elsewhere."""
    return delta_orthogonal(tensor, scale, generator=generator)


def _zeros(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    r"""All zeros."""
    with torch.no_grad():
        return tensor.zero_()


def _ones(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    r"""All ones."""
    with torch.no_grad():
        return tensor.fill_(1.0)


def _check_scaling(shape: tuple[int, ...] | None, scale: float, **_: object) -> None:
    positive("scale", scale)


def _check_jax_trunc(shape: tuple[int, ...] | None, stddev: float, lower: float, upper: float
                     ) -> None:  # fmt: skip
    positive("stddev", stddev)
    if not lower < upper:
        raise ValueError(f"needs lower < upper, got lower={lower!r}, upper={upper!r}")


def _check_delta(shape: tuple[int, ...] | None, scale: float) -> None:
    if shape is not None and len(shape) >= 2 and shape[1] > shape[0]:
        raise ValueError(f"needs in_channels <= out_channels (JAX's rule), got shape {shape}")


def _orthogonal_var(shape: tuple[int, ...], scale: float = 1.0) -> float:
    rows = shape[0]
    cols = math.prod(shape[1:])
    return scale**2 / max(rows, cols)


def _register_jax(fw: str) -> None:
    q = lambda local, **kw: qualified(fw, local, **kw)  # noqa: E731
    q("variance_scaling", family="truncated_normal | normal | uniform",
      variance="scale / n, n = fan_in | fan_out | fan_avg | fan_geo_avg",
      variance_fn=lambda shape, scale, mode, distribution: scale / scaling_n(shape, mode),
      example=f"{fw}:variance_scaling:scale=2.0,mode=fan_in,distribution=truncated_normal",
      check=_check_scaling)(_jax_scaling)  # fmt: skip
    q("normal", family="normal", variance="stddev²", min_rank=1,
      variance_fn=lambda shape, stddev=1e-2: stddev**2,
      check=lambda shape, stddev: at_least("stddev", stddev))(_jax_normal)  # fmt: skip
    q("uniform", family="uniform", variance="scale² / 12", min_rank=1,
      variance_fn=lambda shape, scale=1e-2: scale**2 / 12,
      mean_fn=lambda shape, scale=1e-2: scale / 2,
      check=lambda shape, scale: positive("scale", scale))(_jax_uniform)  # fmt: skip
    q("truncated_normal", family="truncated_normal",
      variance="stddev² · Var(N(0,1) | [lower, upper])",
      min_rank=1, check=_check_jax_trunc,
      variance_fn=lambda shape, stddev=1e-2, lower=-2.0, upper=2.0: trunc_normal_variance(
          shape, 0.0, stddev, lower * stddev, upper * stddev))(_jax_truncated_normal)  # fmt: skip
    q("orthogonal", family="orthogonal", variance="scale² / max(rows, cols)",
      variance_fn=_orthogonal_var)(_jax_orthogonal)  # fmt: skip
    q("delta_orthogonal", family="orthogonal", variance="scale² / (out · K); needs in <= out",
      variance_fn=lambda shape, scale=1.0: scale**2 / (shape[0] * math.prod(shape[2:])),
      min_rank=3, max_rank=5, check=_check_delta, taps="centre")(_jax_delta_orthogonal)  # fmt: skip
    q("zeros", family="constant", variance="0", variance_fn=lambda shape: 0.0, min_rank=1)(_zeros)
    q("ones", family="constant", variance="0", variance_fn=lambda shape: 0.0, min_rank=1,
      mean_fn=lambda shape: 1.0)(_ones)  # fmt: skip


for _fw in ("jax", "flax"):
    _register_jax(_fw)


# -- Keras 3 -----------------------------------------------------------------------------------

KerasMode = Literal["fan_in", "fan_out", "fan_avg"]
KerasDistribution = Literal["truncated_normal", "untruncated_normal", "normal", "uniform"]
_KERAS_DIST = {"truncated_normal": "truncated_normal", "normal": "truncated_normal",
               "untruncated_normal": "normal", "uniform": "uniform"}  # fmt: skip


def _keras_dist(distribution: str) -> str:
    if distribution not in _KERAS_DIST:
        raise ValueError(f"distribution must be one of {', '.join(_KERAS_DIST)}, got "
                         f"{distribution!r}")  # fmt: skip
    return _KERAS_DIST[distribution]


def _keras_scaling(
    tensor: Tensor,
    scale: float = 1.0,
    mode: KerasMode = "fan_in",
    distribution: KerasDistribution = "truncated_normal",
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Keras' VarianceScaling: Var = scale / n; ``normal`` means truncated, as in Keras."""
    dist = _keras_dist(distribution)
    return variance_scaling(tensor, scale, mode, dist, generator=generator)


def _keras_random_normal(
    tensor: Tensor, mean: float = 0.0, stddev: float = 0.05, *,
    generator: torch.Generator | None = None,
) -> Tensor:  # fmt: skip
    r"""Keras' RandomNormal: N(mean, stddev²), stddev 0.05 by default."""
    return normal(tensor, mean, stddev, generator=generator)


def _keras_random_uniform(
    tensor: Tensor, minval: float = -0.05, maxval: float = 0.05, *,
    generator: torch.Generator | None = None,
) -> Tensor:  # fmt: skip
    r"""Keras' RandomUniform: U(minval, maxval), ±0.05 by default."""
    return uniform(tensor, minval, maxval, generator=generator)


def _keras_truncated_normal(
    tensor: Tensor, mean: float = 0.0, stddev: float = 0.05, *,
    generator: torch.Generator | None = None,
) -> Tensor:  # fmt: skip
    r"""Keras' TruncatedNormal: N(mean, stddev²) cut at mean ± 2·stddev, not rescaled."""
    return trunc_normal(tensor, mean, stddev, mean - 2 * stddev, mean + 2 * stddev,
                        generator=generator)  # fmt: skip


def _keras_orthogonal(
    tensor: Tensor, gain: float = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Keras' Orthogonal: gain · a Haar orthogonal matrix, the kernel flattened to 2-D."""
    return orthogonal(tensor, gain, generator=generator)


def _keras_identity(
    tensor: Tensor, gain: float = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Keras' Identity: gain · the (rectangular) identity matrix, Dense kernels only."""
    eye(tensor)
    with torch.no_grad():
        return tensor.mul_(gain)


def _keras_trunc_var(shape: tuple[int, ...], mean: float = 0.0, stddev: float = 0.05) -> float:
    return stddev**2 * trunc_normal_variance(shape, 0.0, 1.0, -2.0, 2.0)


_q = lambda local, **kw: qualified("keras", local, **kw)  # noqa: E731
_q("variance_scaling", family="truncated_normal | normal | uniform",
  variance="scale / n, n = fan_in | fan_out | (fan_in + fan_out)/2",
  variance_fn=lambda shape, scale=1.0, mode="fan_in", distribution="truncated_normal":
      variance_scaling_variance(shape, scale, mode, _keras_dist(distribution)),
  check=_check_scaling)(_keras_scaling)  # fmt: skip
_q("random_normal", family="normal", variance="stddev²", min_rank=1,
  variance_fn=lambda shape, mean=0.0, stddev=0.05: stddev**2,
  mean_fn=lambda shape, mean=0.0, stddev=0.05: mean,
  check=lambda shape, mean, stddev: positive("stddev", stddev))(_keras_random_normal)  # fmt: skip
_q("random_uniform", family="uniform", variance="(maxval - minval)² / 12", min_rank=1,
  variance_fn=lambda shape, minval=-0.05, maxval=0.05: (maxval - minval) ** 2 / 12,
  mean_fn=lambda shape, minval=-0.05, maxval=0.05: (minval + maxval) / 2,
  check=lambda shape, minval, maxval: positive("maxval - minval", maxval - minval),
  )(_keras_random_uniform)  # fmt: skip
_q("truncated_normal", family="truncated_normal", variance="stddev² · 0.7737 (cut at ±2 stddev)",
  min_rank=1, variance_fn=_keras_trunc_var,
  mean_fn=lambda shape, mean=0.0, stddev=0.05: mean,
  check=lambda shape, mean, stddev: positive("stddev", stddev),
  )(_keras_truncated_normal)  # fmt: skip
_q("orthogonal", family="orthogonal", variance="gain² / max(rows, cols)",
  variance_fn=lambda shape, gain=1.0: _orthogonal_var(shape, gain))(_keras_orthogonal)  # fmt: skip
_q("identity", family="identity", variance="0 (deterministic)",
   variance_fn=lambda shape, gain=1.0: None,
  min_rank=2, max_rank=2)(_keras_identity)  # fmt: skip
_q("zeros", family="constant", variance="0", variance_fn=lambda shape: 0.0, min_rank=1)(_zeros)
_q("ones", family="constant", variance="0", variance_fn=lambda shape: 0.0, min_rank=1,
  mean_fn=lambda shape: 1.0)(_ones)  # fmt: skip

r"""Framework-qualified schemes: other frameworks' initializers in their own vocabulary.

``jax:he_normal``, ``flax:lecun_normal``, ``keras:glorot_uniform``, ``timm:trunc_normal``,
``hf:normal``, ``lua_torch:default``, ``flux:kaiming_uniform``... (the last four in
:mod:`~initsuite.schemes.zoo`). Most are an :class:`Alias`, a row of data: one of torch's or
JAX's laws already here (:mod:`~initsuite.schemes.scaling`, :mod:`~initsuite.schemes.plain`,
:mod:`~initsuite.schemes.structured`, :mod:`~initsuite.schemes.fan_scaling`) under the
framework's parameter names and defaults (:data:`PRESETS`, :data:`JAX`, :data:`KERAS`). The
few whose law is the framework's own (JAX's ``fan_geo_avg``, a cut in units of the std) are a
function with its :class:`SchemeInfo`, registered with :func:`qualified`. Every one fills a
weight in torch's layout ``(out, in, *kernel)``.

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

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from torch import Tensor

from initsuite.core.checked import NOT_CHECKED_LIVE, checked, load
from initsuite.schemes.common import at_least
from initsuite.schemes.fan_scaling import scaling_n, variance_scaling, variance_scaling_variance
from initsuite.schemes.isometric import delta_orthogonal
from initsuite.schemes.plain import (
    normal,
    ones,
    trunc_normal,
    trunc_normal_variance,
    uniform,
    zeros,
)
from initsuite.schemes.registry import SchemeInfo, register
from initsuite.schemes.structured import eye, orthogonal

__all__ = [
    "CHECKED", "FRAMEWORKS", "JAX", "KERAS", "LIBRARIES", "NOT_CHECKED_LIVE", "PRESETS",
    "SOURCES", "Alias", "law", "positive", "qualified",
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


def qualified(framework: str, local: str, law: SchemeInfo) -> Callable[[Fill], Fill]:
    """Decorator: register ``fn`` as ``framework:local``, the scheme ``law`` declares, with
    the framework's metadata (:data:`CHECKED`, :data:`SOURCES`)."""
    return register(replace(law, name=f"{framework}:{local}", framework=framework,
                            paper=law.paper or f"{framework} {local} ({SOURCES[framework]})",
                            checked=CHECKED[framework], source=SOURCES[framework]))  # fmt: skip


def law(family: str, formula: str, variance: Callable[..., float | None], *, min_rank: int = 2,
        **more: Any) -> SchemeInfo:  # fmt: skip
    """The :class:`SchemeInfo` of a framework's law (its paper is the framework's source,
    filled in when it is registered); ``more`` are SchemeInfo's other fields."""
    return SchemeInfo(family=family, variance_formula=formula, variance=variance, paper="",
                      min_rank=min_rank, **more)  # fmt: skip


@dataclass(frozen=True)
class Alias:
    """A framework's initializer that draws one of the laws here under the framework's own
    parameter names and defaults: a row (name, target law, defaults, source), not a function.

    ``params`` maps each of the framework's parameters to the target's parameter it sets and
    the framework's default; ``fixed`` holds the target's parameters the framework fixes. The
    source is the framework's (:data:`SOURCES`), and ``doc`` the scheme table's summary.
    """

    framework: str
    local: str
    target: Fill
    doc: str
    law: SchemeInfo
    params: Mapping[str, tuple[str, float]] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def register(self) -> None:
        """Register ``framework:local``: the target drawn with the mapped parameters."""
        qualified(self.framework, self.local, self.law)(self.fill())

    def fill(self) -> Fill:
        """``fn(tensor, <the framework's parameters>, *, generator=None)``, the target."""
        return _alias_fill(self.target, dict(self.params), dict(self.fixed), self.doc)


def _alias_fill(target: Fill, params: dict[str, tuple[str, float]], fixed: dict[str, Any],
                doc: str) -> Fill:  # fmt: skip
    # Closes over the law alone (no name), so equal aliases of two frameworks are one fill.
    def fill(tensor: Tensor, *, generator: torch.Generator | None = None, **given: Any) -> Tensor:
        args = {**fixed, **{ours: default for ours, default in params.values()}}
        args.update({params[key][0]: value for key, value in given.items()})
        return target(tensor, **args, generator=generator)

    keyword = inspect.Parameter.KEYWORD_ONLY
    fill.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("tensor", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(k, keyword, default=d) for k, (_, d) in params.items()]
        + [inspect.Parameter("generator", keyword, default=None)]
    )
    fill.__annotations__ = {k: float for k in params}  # the framework's parameters are floats
    fill.__doc__ = doc
    return fill


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


_DOC_LAW = {"truncated_normal": "N(0,1) cut at ±2, rescaled", "uniform": "uniform"}


def _preset(framework: str, local: str, scale: float, mode: str, distribution: str) -> Alias:
    return Alias(
        framework, local, variance_scaling,
        f"{framework}'s {local}: variance scaling, {_DOC_LAW[distribution]}, "
        f"Var = {scale:g} / {_N[mode]}.",
        law(distribution, f"{scale:g} / {_N[mode]}",
            lambda shape: variance_scaling_variance(shape, scale, mode, distribution)),
        fixed={"scale": scale, "mode": mode, "distribution": distribution},
    )  # fmt: skip


PRESETS: tuple[Alias, ...] = tuple(
    _preset(fw, local, *row) for fw in ("jax", "flax", "keras") for local, row in _PRESETS.items()
)
"""JAX's, Flax's and Keras' named variance-scaling initializers: rows of one law."""


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


_ZEROS = law("constant", "0", lambda shape: 0.0, min_rank=1)
_ONES = law("constant", "0", lambda shape: 0.0, min_rank=1, mean=lambda shape: 1.0)


def _jax_aliases(fw: str) -> tuple[Alias, ...]:
    return (
        Alias(fw, "normal", normal, "JAX's normal: N(0, stddev²), stddev 0.01 by default.",
              law("normal", "stddev²", lambda shape, stddev=1e-2: stddev**2, min_rank=1,
                  check=lambda shape, stddev: at_least("stddev", stddev)),
              {"stddev": ("std", 1e-2)}, {"mean": 0.0}),
        Alias(fw, "uniform", uniform, "JAX's uniform: U[0, scale), not centred (torch's uniform_ "
              "is U(a, b)).",
              law("uniform", "scale² / 12", lambda shape, scale=1e-2: scale**2 / 12, min_rank=1,
                  mean=lambda shape, scale=1e-2: scale / 2,
                  check=lambda shape, scale: positive("scale", scale)),
              {"scale": ("b", 1e-2)}, {"a": 0.0}),
        Alias(fw, "orthogonal", orthogonal, "JAX's orthogonal: scale · a Haar orthogonal matrix, "
              "the kernel flattened to 2-D.",
              law("orthogonal", "scale² / max(rows, cols)", _orthogonal_var),
              {"scale": ("gain", 1.0)}),
        Alias(fw, "delta_orthogonal", delta_orthogonal, "JAX's delta_orthogonal: scale · Haar "
              "orthogonal at the tap (k - 1)//2, zeros elsewhere.",
              law("orthogonal", "scale² / (out · K); needs in <= out",
                  lambda shape, scale=1.0: scale**2 / (shape[0] * math.prod(shape[2:])),
                  min_rank=3, max_rank=5, check=_check_delta, taps="centre"),
              {"scale": ("gain", 1.0)}),
        Alias(fw, "zeros", zeros, "All zeros.", _ZEROS),
        Alias(fw, "ones", ones, "All ones.", _ONES),
    )  # fmt: skip


def _register_jax(fw: str) -> None:
    qualified(fw, "variance_scaling", law(
        "truncated_normal | normal | uniform",
        "scale / n, n = fan_in | fan_out | fan_avg | fan_geo_avg",
        lambda shape, scale, mode, distribution: scale / scaling_n(shape, mode),
        example=f"{fw}:variance_scaling:scale=2.0,mode=fan_in,distribution=truncated_normal",
        check=_check_scaling))(_jax_scaling)  # fmt: skip
    qualified(fw, "truncated_normal", law(
        "truncated_normal", "stddev² · Var(N(0,1) | [lower, upper])",
        lambda shape, stddev=1e-2, lower=-2.0, upper=2.0: trunc_normal_variance(
            shape, 0.0, stddev, lower * stddev, upper * stddev),
        min_rank=1, check=_check_jax_trunc))(_jax_truncated_normal)  # fmt: skip


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


def _keras_truncated_normal(
    tensor: Tensor, mean: float = 0.0, stddev: float = 0.05, *,
    generator: torch.Generator | None = None,
) -> Tensor:  # fmt: skip
    r"""Keras' TruncatedNormal: N(mean, stddev²) cut at mean ± 2·stddev, not rescaled."""
    return trunc_normal(tensor, mean, stddev, mean - 2 * stddev, mean + 2 * stddev,
                        generator=generator)  # fmt: skip


def _keras_identity(
    tensor: Tensor, gain: float = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Keras' Identity: gain · the (rectangular) identity matrix, Dense kernels only."""
    eye(tensor)
    with torch.no_grad():
        return tensor.mul_(gain)


def _keras_trunc_var(shape: tuple[int, ...], mean: float = 0.0, stddev: float = 0.05) -> float:
    return stddev**2 * trunc_normal_variance(shape, 0.0, 1.0, -2.0, 2.0)


_q = lambda local, law: qualified("keras", local, law)  # noqa: E731
_q("variance_scaling", law(
    "truncated_normal | normal | uniform",
    "scale / n, n = fan_in | fan_out | (fan_in + fan_out)/2",
    lambda shape, scale=1.0, mode="fan_in", distribution="truncated_normal":
        variance_scaling_variance(shape, scale, mode, _keras_dist(distribution)),
    check=_check_scaling))(_keras_scaling)  # fmt: skip
_q("truncated_normal", law(
    "truncated_normal", "stddev² · 0.7737 (cut at ±2 stddev)", _keras_trunc_var, min_rank=1,
    mean=lambda shape, mean=0.0, stddev=0.05: mean,
    check=lambda shape, mean, stddev: positive("stddev", stddev),
))(_keras_truncated_normal)  # fmt: skip
_q("identity", law("identity", "0 (deterministic)", lambda shape, gain=1.0: None, min_rank=2,
                   max_rank=2))(_keras_identity)  # fmt: skip

KERAS: tuple[Alias, ...] = (
    Alias("keras", "random_normal", normal, "Keras' RandomNormal: N(mean, stddev²), stddev 0.05 "
          "by default.",
          law("normal", "stddev²", lambda shape, mean=0.0, stddev=0.05: stddev**2, min_rank=1,
              mean=lambda shape, mean=0.0, stddev=0.05: mean,
              check=lambda shape, mean, stddev: positive("stddev", stddev)),
          {"mean": ("mean", 0.0), "stddev": ("std", 0.05)}),
    Alias("keras", "random_uniform", uniform, "Keras' RandomUniform: U(minval, maxval), ±0.05 by "
          "default.",
          law("uniform", "(maxval - minval)² / 12",
              lambda shape, minval=-0.05, maxval=0.05: (maxval - minval) ** 2 / 12, min_rank=1,
              mean=lambda shape, minval=-0.05, maxval=0.05: (minval + maxval) / 2,
              check=lambda shape, minval, maxval: positive("maxval - minval", maxval - minval)),
          {"minval": ("a", -0.05), "maxval": ("b", 0.05)}),
    Alias("keras", "orthogonal", orthogonal, "Keras' Orthogonal: gain · a Haar orthogonal "
          "matrix, the kernel flattened to 2-D.",
          law("orthogonal", "gain² / max(rows, cols)",
              lambda shape, gain=1.0: _orthogonal_var(shape, gain)),
          {"gain": ("gain", 1.0)}),
    Alias("keras", "zeros", zeros, "All zeros.", _ZEROS),
    Alias("keras", "ones", ones, "All ones.", _ONES),
)  # fmt: skip
"""Keras' initializers that are a law here under Keras' names."""

JAX: tuple[Alias, ...] = _jax_aliases("jax") + _jax_aliases("flax")
"""JAX's and Flax's (Flax re-exports JAX's) initializers that are a law here."""

for _fw in ("jax", "flax"):
    _register_jax(_fw)
for _alias in (*PRESETS, *JAX, *KERAS):
    _alias.register()

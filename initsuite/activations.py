"""Registry of activation functions, each with its gain.

The gain of an activation φ is the factor a weight std needs so that a layer followed by φ
keeps the second moment of its pre-activations: ``1 / sqrt(E[φ(z)²])`` for z ~ N(0, 1).
Where ``torch.nn.init.calculate_gain`` has a value (linear, sigmoid, tanh, relu, leaky_relu,
selu) that value is the activation's ``gain``; for the others (elu, gelu, silu, softplus, ...)
the gain is computed by quadrature. Both are listed by ``initsuite activations``.

    >>> from initsuite import activations
    >>> act = activations.get("leaky_relu:negative_slope=0.2")
    >>> round(act.gain, 4), act.gain_source
    (1.3868, 'torch')
"""

from __future__ import annotations

import builtins
import fnmatch
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from initsuite.core.errors import InitsuiteError, unknown
from initsuite.core.quadrature import gaussian_expectation
from initsuite.core.spec import Param, check_keys, format_spec, params_of, parse_spec

__all__ = ["Activation", "ActivationInfo", "get", "list", "names", "register", "table"]


@dataclass(frozen=True)
class ActivationInfo:
    """A registered activation: its function, formula and torch's gain rule (if any)."""

    name: str
    fn: Callable[..., Tensor]
    formula: str
    torch_gain: Callable[..., float] | None = None
    params: dict[str, Param] = field(default_factory=dict)


_REGISTRY: dict[str, ActivationInfo] = {}


def register(
    name: str, *, formula: str, torch_gain: Callable[..., float] | None = None
) -> Callable[[Callable[..., Tensor]], Callable[..., Tensor]]:
    """Decorator: register ``fn(x, **params) -> Tensor`` as activation ``name``.

    ``torch_gain(**params)`` returns ``torch.nn.init.calculate_gain``'s value where torch
    has one; without it the gain is computed.
    """

    def deco(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        if name in _REGISTRY:
            raise ValueError(f"activation {name!r} is already registered")
        _REGISTRY[name] = ActivationInfo(name, fn, formula, torch_gain, params_of(fn))
        return fn

    return deco


@dataclass(frozen=True)
class Activation:
    """An activation with its parameters bound; call it on a tensor."""

    info: ActivationInfo
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def spec(self) -> str:
        return format_spec(self.info.name, self.params)

    def __call__(self, x: Tensor) -> Tensor:
        return self.info.fn(x, **self.params)

    def __hash__(self) -> int:
        return hash(self.spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Activation) and other.spec == self.spec

    @property
    def torch_gain(self) -> float | None:
        """``torch.nn.init.calculate_gain``'s value, or None where torch has none."""
        if self.info.torch_gain is None:
            return None
        return float(self.info.torch_gain(**self.params))

    @cached_property
    def second_moment(self) -> float:
        """E[φ(z)²] for z ~ N(0, 1)."""
        return gaussian_expectation(lambda z: self._numpy(z) ** 2)

    @cached_property
    def computed_gain(self) -> float:
        """The variance-preserving gain 1/sqrt(E[φ(z)²]), z ~ N(0, 1)."""
        return 1.0 / math.sqrt(self.second_moment)

    @property
    def gain(self) -> float:
        """torch's gain where torch has one, else the computed one (what ``gain=auto`` uses)."""
        tg = self.torch_gain
        return tg if tg is not None else self.computed_gain

    @property
    def gain_source(self) -> str:
        return "torch" if self.info.torch_gain is not None else "computed"

    def _numpy(self, z: Any) -> Any:
        return self(torch.from_numpy(z)).numpy()


def get(spec: str | Activation) -> Activation:
    """The activation named by ``spec`` (``"tanh"``, ``"leaky_relu:negative_slope=0.2"``)."""
    if isinstance(spec, Activation):
        return spec
    name, raw = parse_spec(spec, kind="activation")
    info = _REGISTRY.get(name)
    if info is None:
        raise InitsuiteError(unknown("activation", name, sorted(_REGISTRY)))
    owner = f"activation {name!r}"
    check_keys(owner, raw, info.params)
    params = {k: info.params[k].convert(v, owner) for k, v in raw.items()}
    return Activation(info, params)


def names() -> builtins.list[str]:
    """Registered activation names, sorted."""
    return sorted(_REGISTRY)


def list(pattern: str = "*") -> Iterable[str]:
    """Registered names matching a shell-style wildcard pattern, sorted."""
    return [n for n in names() if fnmatch.fnmatchcase(n, pattern)]


def table() -> Any:
    """A DataFrame: one row per activation with its formula and gains."""
    import pandas as pd

    rows = []
    for n in names():
        act = get(n)
        rows.append(
            {
                "activation": n,
                "formula": act.info.formula,
                "params": ", ".join(f"{p.name}={p.default}" for p in act.info.params.values()),
                "torch_gain": act.torch_gain,
                "computed_gain": act.computed_gain,
                "gain": act.gain,
                "gain_source": act.gain_source,
            }
        )
    return pd.DataFrame(rows)


# -- built-ins ------------------------------------------------------------------------------


@register("linear", formula="x", torch_gain=lambda: 1.0)
def linear(x: Tensor) -> Tensor:
    return x


@register("tanh", formula="tanh(x)", torch_gain=lambda: 5.0 / 3)
def tanh(x: Tensor) -> Tensor:
    return torch.tanh(x)


@register("sigmoid", formula="1 / (1 + exp(-x))", torch_gain=lambda: 1.0)
def sigmoid(x: Tensor) -> Tensor:
    return torch.sigmoid(x)


@register("relu", formula="max(0, x)", torch_gain=lambda: math.sqrt(2.0))
def relu(x: Tensor) -> Tensor:
    return torch.relu(x)


@register(
    "leaky_relu",
    formula="max(0, x) + negative_slope·min(0, x)",
    torch_gain=lambda negative_slope=0.01: torch.nn.init.calculate_gain(
        "leaky_relu", negative_slope
    ),
)
def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return F.leaky_relu(x, negative_slope)


@register("selu", formula="λ·(max(0, x) + min(0, α(exp(x) - 1)))", torch_gain=lambda: 0.75)
def selu(x: Tensor) -> Tensor:
    return F.selu(x)


@register("elu", formula="max(0, x) + min(0, alpha·(exp(x) - 1))")
def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    return F.elu(x, alpha)


@register("gelu", formula="x·Φ(x)")
def gelu(x: Tensor) -> Tensor:
    return F.gelu(x)


@register("silu", formula="x·sigmoid(x)")
def silu(x: Tensor) -> Tensor:
    return F.silu(x)


@register("softplus", formula="log(1 + exp(x))")
def softplus(x: Tensor) -> Tensor:
    return F.softplus(x)


@register("mish", formula="x·tanh(softplus(x))")
def mish(x: Tensor) -> Tensor:
    return F.mish(x)

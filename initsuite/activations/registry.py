"""Registry of activation functions, each with its gain and its closed forms where known.

The gain of an activation φ is the factor a weight std needs so that a layer followed by φ
keeps the second moment of its pre-activations: ``1 / sqrt(E[φ(z)²])`` for z ~ N(0, 1).
Where ``torch.nn.init.calculate_gain`` has a value (linear, sigmoid, tanh, relu, leaky_relu,
selu) that value is the activation's ``gain``; for the others (elu, gelu, silu, softplus, ...)
the gain is computed by quadrature. Both are listed by ``initsuite activations``. Gaussian
expectations known in closed form (moments of φ and φ′ under N(0, q), the kernel
E[φ(u)φ(v)]) are registered with the activation (``ClosedForms``); the mean-field theory
asks the activation for them and falls back on quadrature.

    >>> from initsuite import activations
    >>> act = activations.get("leaky_relu:negative_slope=0.2")
    >>> round(act.gain, 4), act.gain_source
    (1.3868, 'torch')
"""

from __future__ import annotations

import builtins
import fnmatch
import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from initsuite.core.errors import InitsuiteError, unknown
from initsuite.core.quadrature import gaussian_expectation
from initsuite.core.spec import Param, check_keys, format_spec, params_of, parse_spec

__all__ = [
    "Activation", "ActivationInfo", "ClosedForms", "get", "list", "names", "register",
    "register_namespace", "table",
]  # fmt: skip


@dataclass(frozen=True)
class ClosedForms:
    """Gaussian expectations of φ in closed form, for z ~ N(0, 1); None where unknown.

    Each takes numpy arrays (or floats), broadcasts, and takes the activation's parameters
    as keywords. q is a variance (>= 0), c a correlation in [-1, 1].

    Args:
        mean: q ↦ E[φ(√q·z)].
        second_moment: q ↦ E[φ(√q·z)²].
        slope_moment: q ↦ E[φ′(√q·z)²].
        kernel: (q, c) ↦ E[φ(u)φ(v)] for (u, v) centred normal, variances q, correlation c.
    """

    mean: Callable[..., Any] | None = None
    second_moment: Callable[..., Any] | None = None
    slope_moment: Callable[..., Any] | None = None
    kernel: Callable[..., Any] | None = None

    def bind(self, **params: Any) -> ClosedForms:
        """The same forms with the activation's parameters filled in."""
        return ClosedForms(*(None if f is None else functools.partial(f, **params)
                             for f in (self.mean, self.second_moment, self.slope_moment,
                                       self.kernel)))  # fmt: skip


@dataclass(frozen=True)
class ActivationInfo:
    """A registered activation: its function, formula, torch's gain rule (if any) and its
    closed forms."""

    name: str
    fn: Callable[..., Tensor]
    formula: str
    torch_gain: Callable[..., float] | None = None
    params: dict[str, Param] = field(default_factory=dict)
    closed_forms: ClosedForms = field(default_factory=ClosedForms)
    homogeneous: bool = False  # φ(a·x) = a·φ(x) for every a > 0


_REGISTRY: dict[str, ActivationInfo] = {}


def register(
    name: str,
    *,
    formula: str,
    torch_gain: Callable[..., float] | None = None,
    closed_forms: ClosedForms | None = None,
    homogeneous: bool = False,
) -> Callable[[Callable[..., Tensor]], Callable[..., Tensor]]:
    """Decorator: register ``fn(x, **params) -> Tensor`` as activation ``name``.

    Args:
        formula: φ in words, for ``initsuite activations``.
        torch_gain: ``torch_gain(**params)`` returns ``torch.nn.init.calculate_gain``'s value
            where torch has one; without it the gain is computed.
        closed_forms: Gaussian expectations of φ known in closed form; the rest are
            computed by quadrature.
        homogeneous: φ is positively homogeneous, φ(a·x) = a·φ(x) for a > 0 (ReLU, leaky
            ReLU, linear): every q is then a fixed point of the variance map at the right
            σ_w², and where a net settles depends on its input's scale.
    """

    def deco(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        if name in _REGISTRY:
            raise ValueError(f"activation {name!r} is already registered")
        forms = closed_forms or ClosedForms()
        _REGISTRY[name] = ActivationInfo(name, fn, formula, torch_gain, params_of(fn), forms,
                                         homogeneous)  # fmt: skip
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
    def homogeneous(self) -> bool:
        """φ(a·x) = a·φ(x) for every a > 0 (see ``register``)."""
        return self.info.homogeneous

    @property
    def torch_gain(self) -> float | None:
        """``torch.nn.init.calculate_gain``'s value, or None where torch has none."""
        if self.info.torch_gain is None:
            return None
        return float(self.info.torch_gain(**self.params))

    @cached_property
    def closed_forms(self) -> ClosedForms:
        """This activation's closed forms, its parameters (defaults included) bound."""
        defaults = {k: p.default for k, p in self.info.params.items() if not p.required}
        return self.info.closed_forms.bind(**(defaults | self.params))

    @cached_property
    def second_moment(self) -> float:
        """E[φ(z)²] for z ~ N(0, 1), by quadrature."""
        return float(gaussian_expectation(lambda z: self.apply(z) ** 2))

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

    def apply(self, z: np.ndarray) -> np.ndarray:
        """φ elementwise on a float64 array (any shape)."""
        return self(torch.from_numpy(z)).numpy()

    def derivative(self, z: np.ndarray) -> np.ndarray:
        """φ′ elementwise on a float64 array (any shape), by autograd."""
        x = torch.from_numpy(z).requires_grad_()
        (grad,) = torch.autograd.grad(self(x).sum(), x)
        return grad.numpy()

    @property
    def needs_depth(self) -> bool:
        """True for a depth-dependent activation whose spec leaves the depth out
        (``"dks:tanh:zeta=1.5"``): bind it with :meth:`at_depth` before use."""
        return False

    def at_depth(self, depth: int) -> Activation:
        """This activation for a net of ``depth`` nonlinear layers: itself, unless its
        constants depend on the depth and its spec left it out."""
        return self


# Spec namespaces resolved by other modules ("dks:", "tat:"): prefix -> get(name, raw params).
# The shaping module fills it on import, so the registry needs no import of its own.
_NAMESPACES: dict[str, Callable[[str, dict[str, str]], Activation]] = {}


def register_namespace(prefix: str, resolve: Callable[[str, dict[str, str]], Activation]) -> None:
    """Make ``get`` pass specs ``"PREFIX:NAME:k=v"`` to ``resolve("PREFIX:NAME", {k: v})``."""
    if prefix in _NAMESPACES or prefix in _REGISTRY:
        raise ValueError(f"activation namespace {prefix!r} is already taken")
    _NAMESPACES[prefix] = resolve


def get(spec: str | Activation) -> Activation:
    """The activation named by ``spec`` (``"tanh"``, ``"leaky_relu:negative_slope=0.2"``,
    ``"dks:tanh:zeta=1.5,depth=50"``)."""
    if isinstance(spec, Activation):
        return spec
    name, raw = parse_spec(spec, kind="activation", namespaces=_NAMESPACES)
    prefix = name.partition(":")[0]
    if prefix in _NAMESPACES:
        return _NAMESPACES[prefix](name, raw)
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


# -- closed forms ---------------------------------------------------------------------------

_SQRT_2PI = math.sqrt(2 * math.pi)
# glibc's acos, elementwise: numpy's SIMD arccos differs from it in the last bits
_acos = np.vectorize(math.acos, otypes=[float])


def _arccos_kernel(q: Any, c: Any) -> Any:
    """E[relu(u)·relu(v)]: the arc-cosine kernel of degree 1 (Cho & Saul 2009)."""
    c = np.clip(c, -1.0, 1.0)
    return q / (2 * math.pi) * (np.sqrt(1 - c * c) + (math.pi - _acos(c)) * c)


def _rectifier_mean(q: Any, negative_slope: float = 0.0) -> Any:
    return (1 - float(negative_slope)) * np.sqrt(q) / _SQRT_2PI


def _rectifier_second_moment(q: Any, negative_slope: float = 0.0) -> Any:
    a = float(negative_slope)
    return q * (1 + a * a) / 2


def _rectifier_kernel(q: Any, c: Any, negative_slope: float = 0.0) -> Any:
    # φ(x) = relu(x) - a·relu(-x): E[φ(u)φ(v)] = (1 + a²)·k(c) - 2a·k(-c)
    a = float(negative_slope)
    return (1 + a * a) * _arccos_kernel(q, c) - 2 * a * _arccos_kernel(q, -np.asarray(c))


_LINEAR = ClosedForms(
    mean=lambda q: np.zeros(np.shape(q)),
    second_moment=lambda q: q,
    slope_moment=lambda q: np.ones(np.shape(q)),
    kernel=lambda q, c: q * c,
)
_LEAKY_RELU = ClosedForms(_rectifier_mean, _rectifier_second_moment, None, _rectifier_kernel)
_RELU = ClosedForms(
    _rectifier_mean,
    _rectifier_second_moment,
    slope_moment=lambda q: np.full(np.shape(q), 0.5),
    kernel=_rectifier_kernel,
)


# -- built-ins ------------------------------------------------------------------------------


@register("linear", formula="x", torch_gain=lambda: 1.0, closed_forms=_LINEAR, homogeneous=True)
def linear(x: Tensor) -> Tensor:
    return x


@register("tanh", formula="tanh(x)", torch_gain=lambda: 5.0 / 3)
def tanh(x: Tensor) -> Tensor:
    return torch.tanh(x)


@register("sigmoid", formula="1 / (1 + exp(-x))", torch_gain=lambda: 1.0)
def sigmoid(x: Tensor) -> Tensor:
    return torch.sigmoid(x)


@register("relu", formula="max(0, x)", torch_gain=lambda: math.sqrt(2.0), closed_forms=_RELU,
          homogeneous=True)  # fmt: skip
def relu(x: Tensor) -> Tensor:
    return torch.relu(x)


@register(
    "leaky_relu",
    formula="max(0, x) + negative_slope·min(0, x)",
    torch_gain=lambda negative_slope=0.01: torch.nn.init.calculate_gain(
        "leaky_relu", negative_slope
    ),
    closed_forms=_LEAKY_RELU,
    homogeneous=True,
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

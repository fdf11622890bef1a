"""Kernel-shaped activations as specs: ``"dks:tanh:zeta=1.5,depth=50"`` (Deep Kernel Shaping,
Martens et al. 2021), ``"tat:leaky_relu:eta=0.9,depth=50"`` and ``"tat:softplus:tau=0.3,depth=50"``
(Tailored Activation Transformations, Zhang, Martens & Grosse 2022).

Each is φ̂(x) = γ·(φ(α·x + β) + δ) (for TAT on a leaky ReLU: γ·leaky_relu(x, s)) with the
constants solved for a plain MLP of ``depth`` nonlinear layers (``shaping_solver``):

- ``dks:NAME:zeta=ζ``: Q(1) = 1, local q-slope 1, C(0) = 0, and the network's c-map slope at 1
  equal to ζ > 1 (each layer's C′(1) = ζ^(1/depth)).
- ``tat:leaky_relu:eta=η``: the network's C(0) = η in (0, 1) (each layer's γ = √(2/(1+s²))).
- ``tat:NAME:tau=τ``: Q(1) = 1, q-slope 1, C′(1) = 1, and the network's C″(1) = τ > 0.

Without ``depth`` the spec is valid but unbound (:attr:`ShapedActivation.needs_depth`): a sweep
binds it to each cell's depth, :meth:`ShapedActivation.at_depth` does it by hand.

    >>> from initsuite import activations
    >>> act = activations.get("dks:tanh:zeta=1.5,depth=50")
    >>> round(act.shaping.alpha, 4), round(act.gain, 6)
    (0.1284, 1.0)
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from torch import Tensor

from initsuite.activations import registry
from initsuite.activations.registry import Activation, ActivationInfo, ClosedForms
from initsuite.activations.shaping_solver import Constants, solve_leaky_relu, solve_smooth
from initsuite.core.errors import InitsuiteError, unknown
from initsuite.core.spec import Param, check_keys, format_spec, plain_int

__all__ = ["METHODS", "ShapedActivation", "Shaping", "resolve", "table"]

METHODS = ("dks", "tat")
# the target each (method, base) takes, and the range it must lie in
_TARGETS = {"zeta": "zeta > 1", "eta": "0 < eta < 1", "tau": "tau > 0"}


@dataclass(frozen=True)
class Shaping:
    """What a shaped activation is and its solved constants (None while unbound)."""

    method: str  # "dks" | "tat"
    base: str  # the transformed activation's name
    target: str  # "zeta" | "eta" | "tau"
    value: float
    depth: int | None
    alpha: float | None = None
    beta: float | None = None
    gamma: float | None = None
    delta: float | None = None
    negative_slope: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FIELDS = tuple(f.name for f in dataclasses.fields(Shaping))


@dataclass(frozen=True, eq=False)
class ShapedActivation(Activation):
    """A DKS or TAT transform of a registered activation; call it like any activation."""

    shaping: Shaping | None = None
    core: Activation | None = None  # φ with its solved parameters (the leaky ReLU's slope)

    def __call__(self, x: Tensor) -> Tensor:
        s, core = self.shaping, self.core
        if s is None or core is None or s.alpha is None:
            raise InitsuiteError(_unbound(self.spec))
        assert s.beta is not None and s.gamma is not None and s.delta is not None
        if s.alpha != 1.0 or s.beta != 0.0:
            x = x * s.alpha + s.beta
        y = core(x)
        return (y + s.delta if s.delta != 0.0 else y) * s.gamma

    @cached_property
    def computed_gain(self) -> float:
        """1/√E[φ̂(z)²]: 1 at every depth (Q(1) = 1 is one of the conditions solved), so an
        unbound spec has it too, and ``gain=auto`` resolves before the depth is known."""
        return 1.0 if self.needs_depth else 1.0 / self.second_moment**0.5

    @property
    def needs_depth(self) -> bool:
        return self.shaping is None or self.shaping.depth is None

    def at_depth(self, depth: int) -> Activation:
        """Bound to ``depth`` nonlinear layers where the spec left the depth out; else itself."""
        if not self.needs_depth:
            return self
        return resolve(self.name, {**self.params, "depth": depth})

    @cached_property
    def closed_forms(self) -> ClosedForms:
        """The leaky ReLU's forms scaled by γ (TAT's transform is homogeneous); none else."""
        s, core = self.shaping, self.core
        if core is None or s is None or s.gamma is None or s.beta or s.delta or s.alpha != 1.0:
            return ClosedForms()
        g, forms = s.gamma, core.closed_forms
        return ClosedForms(*(None if f is None else functools.partial(_scaled, f, g**k)
                             for f, k in ((forms.mean, 1), (forms.second_moment, 2),
                                          (forms.slope_moment, 2), (forms.kernel, 2))))  # fmt: skip


def table(specs: Iterable[str | Activation], depth: int | None = None) -> Any:
    """A DataFrame: one row per activation spec with its formula, gain and, for a dks: or
    tat: spec, its solved constants (an unbound spec is bound to ``depth``)."""
    import pandas as pd

    rows = []
    for spec in specs:
        act = registry.get(spec)
        if act.needs_depth and depth is not None:
            act = act.at_depth(depth)
        s = getattr(act, "shaping", None)
        if s is not None and s.alpha is None:
            raise InitsuiteError(_unbound(act.spec))
        rows.append({"activation": act.spec, "formula": act.info.formula, "gain": act.gain,
                     **(s.as_dict() if s is not None else dict.fromkeys(_FIELDS))})  # fmt: skip
    return pd.DataFrame(rows)


def _scaled(f: Any, factor: float, *args: Any) -> Any:
    return factor * f(*args)


def _unbound(spec: str) -> str:
    return (f"activation {spec!r} depends on the net's depth: give depth=D in its spec or "
            "bind it to one (.at_depth(D); initsuite activations --depth D)")  # fmt: skip


def _check_target(owner: str, key: str, value: float) -> None:
    ok = {"zeta": value > 1.0, "eta": 0.0 < value < 1.0, "tau": value > 0.0}[key]
    if not ok:
        raise InitsuiteError(f"{owner}: {key}={value} is out of range (need {_TARGETS[key]})")


def _depth(owner: str, value: Any) -> int:
    n = plain_int(value) if isinstance(value, str) else value
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise InitsuiteError(f"{owner}: depth={value} is not valid (need an integer >= 1: "
                             "the net's nonlinear layers)")  # fmt: skip
    return int(n)


def _target_key(method: str, base: str, owner: str) -> str:
    if base == "relu":  # dks warns against DKS on ReLU and refuses TAT on it
        why = "is ill-advised (dks warns against it)" if method == "dks" else (
            "is not supported (dks refuses it)")  # fmt: skip
        raise InitsuiteError(f"{owner}: {method.upper()} on plain relu {why}; use leaky_relu "
                             "instead, e.g. tat:leaky_relu:eta=0.9,depth=50")  # fmt: skip
    if method == "dks":
        return "zeta"
    return "eta" if base == "leaky_relu" else "tau"


def resolve(name: str, raw: dict[str, Any]) -> ShapedActivation:
    """The shaped activation ``name`` (``"dks:tanh"``) with parameters ``raw`` (strings from a
    spec, or values): the namespace hook of ``initsuite.activations.get``."""
    method, _, base_name = name.partition(":")
    if not base_name:
        example = "dks:tanh:zeta=1.5,depth=50" if method == "dks" else "tat:softplus:tau=0.3"
        raise InitsuiteError(f"activation {name!r} needs a base activation, e.g. {example!r}")
    if base_name not in registry.names():
        raise InitsuiteError(unknown(f"{method} base activation", base_name, registry.names()))
    owner = f"activation {name!r}"
    key = _target_key(method, base_name, owner)
    target = Param(key, float)
    check_keys(owner, raw, {key: target, "depth": Param("depth", int)})
    if key not in raw:
        raise InitsuiteError(f"{owner} needs its target {key}=... ({_TARGETS[key]})")
    value = target.convert(raw[key], owner)
    _check_target(owner, key, value)
    depth = None if raw.get("depth") is None else _depth(owner, raw["depth"])
    bound = {key: value} if depth is None else {key: value, "depth": depth}
    return _build(method, base_name, key, value, depth, format_spec(name, bound))


@functools.lru_cache(maxsize=256)
def _build(method: str, base_name: str, key: str, value: float, depth: int | None,
           spec: str) -> ShapedActivation:  # fmt: skip
    """Solved once per process and spec (a solve costs ~0.1 s)."""
    base = registry.get(base_name)
    name = f"{method}:{base_name}"
    bound: dict[str, Any] = {key: value} if depth is None else {key: value, "depth": depth}
    formula = "γ·leaky_relu(x, s)" if key == "eta" else f"γ·({base_name}(α·x + β) + δ)"
    info = ActivationInfo(name, _never, formula, params={k: Param(k, type(v)) for k, v in
                                                         bound.items()},
                          homogeneous=key == "eta")  # fmt: skip
    if depth is None:
        return ShapedActivation(info, bound, Shaping(method, base_name, key, value, None))
    c = _solve(method, base, key, value, depth, spec)
    core = (
        base
        if c.negative_slope is None
        else registry.get(format_spec(base_name, {"negative_slope": c.negative_slope}))
    )
    shaping = Shaping(method, base_name, key, value, depth, c.alpha, c.beta, c.gamma, c.delta,
                      c.negative_slope)  # fmt: skip
    return ShapedActivation(info, bound, shaping, core)


def _solve(method: str, base: Activation, key: str, value: float, depth: int,
           spec: str) -> Constants:  # fmt: skip
    if key == "eta":
        return solve_leaky_relu(value, depth, lambda reach: (
            f"activation {spec!r}: eta={value} is out of reach for {depth} leaky-ReLU layers "
            f"(need eta < {reach:.6g}, the C(0) of a ReLU chain that deep); lower eta or "
            "add layers"))  # fmt: skip
    local = value ** (1.0 / depth) if key == "zeta" else value / depth
    return solve_smooth(base, method, local, f"activation {spec!r}")


def _never(x: Tensor, **_: Any) -> Tensor:
    raise AssertionError("a ShapedActivation calls its own __call__")


for _method in METHODS:
    registry.register_namespace(_method, resolve)

"""Property-based fuzzing of spec strings (issue 12): random names, keys, values, unicode,
lengths and separators fed to every parser of specs.

The property: either an object whose invariants hold (its canonical spec parses back to
itself; a scheme resolves against a valid activation or says why not), or an
:class:`InitsuiteError` whose message is one line. Never another exception. The example
budget is fixed and derandomised (tests/conftest.py), a few seconds in all.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from initsuite import activations, schemes
from initsuite.core.errors import InitsuiteError
from initsuite.engine.archs import ARCH_NAMES, parse_arch
from initsuite.studies.sweep import budget
from initsuite.studies.sweep.config import SweepConfig
from initsuite.theory import meanfield as theory

T = TypeVar("T")

SCHEME_NAMES = schemes.names()
ACT_NAMES = activations.names()
PARAM_NAMES = sorted(
    {p for n in SCHEME_NAMES for p in schemes.info(n).params}
    | {p for n in ACT_NAMES for p in activations.get(n).info.params}
    | {"kernel", "image", "branch", "scale"}
)
WORDS = [
    "auto", "nan", "inf", "-inf", "NaN", "1e400", "-0.0", "1_000", "٣", "0x10", "1e-320",
    "fan_in", "fan_out", "fan_avg", "truncated_normal", "relu", "tanh", "leaky_relu", "linear",
    "elu:alpha=2", "true", "none", "normal", "orthogonal", "lsuv", "eye", "kaiming_normal",
    "normal:std=-1", "inv_sqrt_depth", "zero", "1", "3", "0", "-1", "2", "0.5", " ",
]  # fmt: skip

noise_names = st.one_of(
    st.sampled_from([*SCHEME_NAMES, *ACT_NAMES, *ARCH_NAMES, "all", "kaiming*", "default"]),
    st.text(max_size=12),
)
noise_keys = st.one_of(st.sampled_from(PARAM_NAMES), st.text(max_size=8))
noise_values = st.one_of(
    st.sampled_from(WORDS),
    st.floats().map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.text(max_size=10),
)


def _param_types(kind: str, name: str) -> dict[str, Any]:
    """A registered thing's parameters and their annotations (arch params: by hand)."""
    if kind == "scheme":
        return {k: p.annotation for k, p in schemes.info(name).params.items()}
    if kind == "activation":
        return {k: p.annotation for k, p in activations.get(name).info.params.items()}
    return {"conv": {"kernel": int, "image": int}, "resmlp": {"branch": int, "scale": str},
            "mlp": {}}[name]  # fmt: skip


def _alternatives(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for arg in typing.get_args(annotation) for a in _alternatives(arg)]
    return [annotation]


def _typed(annotation: Any) -> st.SearchStrategy[str]:
    """Values a parameter of this type takes, mostly in range, some at or past its edges."""
    out: list[st.SearchStrategy[str]] = [st.sampled_from(["auto", "nan", "inf", "1e400"])]
    for alt in _alternatives(annotation):
        if alt is float:
            out.append(st.floats(min_value=-3, max_value=3).map(lambda x: f"{x:.3g}"))
            out.append(st.sampled_from(["0", "1", "-1", "0.5", "2", "1e200", "-0.0", "1_0"]))
        elif alt is int:
            out.append(st.integers(min_value=-2, max_value=12).map(str))
        elif typing.get_origin(alt) is typing.Literal:
            choices = [str(c) for c in typing.get_args(alt)]
            out.append(st.sampled_from([*choices, *(c.upper() for c in choices)]))
        elif alt is str:
            out.append(st.sampled_from(["normal", "orthogonal", "kaiming_normal", "relu",
                                        "tanh", "lsuv", "eye", "normal:std=-1", "1",
                                        "inv_sqrt_depth", "zero", "nope"]))  # fmt: skip
    return st.one_of(*out)


@st.composite
def specs(draw: st.DrawFn) -> str:
    """A spec: mostly a registered name with some of its own parameters (typed values, some
    out of range), sometimes noise in the name, keys, values or separators, or random
    text."""
    mode = draw(st.integers(0, 9))
    if mode == 0:
        return draw(st.text(max_size=40))
    kind = draw(st.sampled_from(["scheme", "scheme", "activation", "arch"]))
    pool = {"scheme": SCHEME_NAMES, "activation": ACT_NAMES, "arch": list(ARCH_NAMES)}[kind]
    name = draw(st.sampled_from(pool))
    types = _param_types(kind, name)
    items = []
    for _ in range(draw(st.integers(0, len(types) + 1))):
        if types and draw(st.integers(0, 5)):
            key = draw(st.sampled_from(sorted(types)))
            value = draw(_typed(types[key]))
        else:
            key, value = draw(noise_keys), draw(noise_values)
        items.append(key + "=" + value)
    if mode == 1:
        name = draw(noise_names)
    colon, comma = ":", ","
    if mode == 2:
        colon = draw(st.sampled_from([":", " : ", "::", "", "="]))
        comma = draw(st.sampled_from([", ", ",,", ";", " "]))
    return name + (colon + comma.join(items) if items else "")


def _outcome(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """``fn(...)``, or None when it raised an InitsuiteError of one line."""
    try:
        return fn(*args, **kwargs)
    except InitsuiteError as exc:
        msg = str(exc)
        assert msg.strip(), "an empty message"
        assert len(msg.splitlines()) == 1, f"not one line: {msg!r}"
        return None


@settings(max_examples=300)
@given(specs())
def test_scheme_specs(spec: str) -> None:
    s = _outcome(schemes.get, spec)
    if s is None:
        return
    assert s.name in SCHEME_NAMES
    again = schemes.get(s.spec)
    assert again.spec == s.spec and again == s
    shape = (4, 4) if s.info.accepts_rank(2) else (4, 4, 3)
    for act in ("relu", "tanh", "leaky_relu:negative_slope=0.2"):
        resolved = _outcome(s.resolve, act)
        if resolved is None:
            continue
        assert set(resolved) <= set(s.info.params)
        assert "auto" not in (resolved.get("gain"), resolved.get("nonlinearity"))
        # a spec that passed validation draws (or fails its shape check, as one line) ...
        w = torch.empty(shape, dtype=torch.float64)
        gen = torch.Generator().manual_seed(0)
        out = _outcome(s, w, activation=act, generator=gen)
        assert out is None or out is w
        # ... and has a mean-field prediction, or none, never a domain error
        if len(shape) == 2 and out is not None:
            prior = _outcome(theory.weight_prior, s, resolved, 4, False)
            if prior is not None and math.isfinite(prior[0]):
                theory.mlp_moments(act, prior[0], 3, sigma_b2=prior[1])


@settings(max_examples=200)
@given(specs())
def test_activation_specs(spec: str) -> None:
    a = _outcome(activations.get, spec)
    if a is None:
        return
    assert activations.get(a.spec).spec == a.spec
    assert all(not isinstance(v, float) or math.isfinite(v) for v in a.params.values())
    s = schemes.get("xavier_normal:gain=auto")
    resolved = _outcome(s.resolve, a)  # a valid activation: resolves, or says why not
    if resolved is not None:
        assert isinstance(resolved["gain"], float)


@settings(max_examples=200)
@given(specs())
def test_arch_specs(spec: str) -> None:
    arch = _outcome(parse_arch, spec)
    if arch is None:
        return
    assert parse_arch(arch.spec) == arch
    assert arch.weight_rank in (2, 4)


@settings(max_examples=150)
@given(specs(), st.sampled_from(["relu", "tanh"]) | specs(),
       st.sampled_from(["mlp", "conv", "resmlp"]) | specs())  # fmt: skip
def test_sweep_config_from_specs(scheme: str, activation: str, arch: str) -> None:
    cfg = _outcome(SweepConfig.build, scheme, activation, 2, 4, archs=arch, timing=False)
    if cfg is None:
        return
    assert cfg.n_cells >= 1
    for spec in cfg.schemes:
        assert schemes.get(spec).spec == spec
    for spec in cfg.activations:
        assert activations.get(spec).spec == spec
    assert SweepConfig.from_dict(cfg.to_dict()) == cfg
    assert math.isfinite(budget.estimate(cfg).seconds)


# -- numbers in specs: plain ASCII syntax (issue 27, item 14) -------------------------------------

NUMERIC_PARAMS = sorted(
    [("scheme", n, k) for n in SCHEME_NAMES for k, p in schemes.info(n).params.items()
     if {float, int} & set(_alternatives(p.annotation))]
    + [("activation", n, k) for n in ACT_NAMES for k, p in activations.get(n).info.params.items()
       if {float, int} & set(_alternatives(p.annotation))]
    + [("arch", "conv", "kernel"), ("arch", "conv", "image"), ("arch", "resmlp", "branch")]
)  # fmt: skip
OTHER_DIGITS = st.characters(categories=["Nd"]).filter(lambda c: not c.isascii())


@st.composite
def odd_numbers(draw: st.DrawFn) -> str:
    """A number Python's float() reads but a spec refuses: ASCII digits with an underscore
    between two of them, or with some digits of another script (full-width, Arabic-Indic,
    Devanagari, ...); maybe signed, with a fraction or an exponent."""
    digits = list(draw(st.text(alphabet="0123456789", min_size=2, max_size=5)))
    if draw(st.booleans()):
        digits.insert(draw(st.integers(1, len(digits) - 1)), "_")
    else:
        for i in draw(st.sets(st.integers(0, len(digits) - 1), min_size=1)):
            digits[i] = draw(OTHER_DIGITS)
    sign = draw(st.sampled_from(["", "-", "+"]))
    tail = draw(st.sampled_from(["", ".5", "e1"]))
    return sign + "".join(digits) + tail


@given(st.sampled_from(NUMERIC_PARAMS), odd_numbers())
def test_numbers_in_specs_are_plain_ascii(target: tuple[str, str, str], text: str) -> None:
    """Every numeric parameter of every scheme, activation and arch refuses a number written
    with '_' or another script's digits (Python's float() reads "1_0" as 10 and "１" as 1),
    in one line naming the parameter and the value."""
    kind, name, key = target
    parse = {"scheme": schemes.get, "activation": activations.get, "arch": parse_arch}[kind]
    float(text)  # a number Python would have read
    try:
        parse(f"{name}:{key}={text}")
    except InitsuiteError as exc:
        msg = str(exc)
        assert len(msg.splitlines()) == 1 and key in msg and repr(text) in msg, msg
    else:
        raise AssertionError(f"{name}:{key}={text} was accepted")

"""Specs: a registry name with optional parameters, ``"kaiming_uniform:a=0.5,mode=fan_out"``.

Parameters are checked and converted against the target function's signature, so a bad value
fails when the spec is parsed, before any compute is spent.
"""

from __future__ import annotations

import inspect
import math
import numbers
import re
import types
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union

from initsuite.core.errors import InitsuiteError, did_you_mean

__all__ = [
    "AUTO", "Param", "check_keys", "format_spec", "format_value", "params_of", "parse_spec",
    "plain_float", "plain_int", "plain_number", "split_items", "split_specs",
]  # fmt: skip

AUTO = "auto"
"""The value of ``gain`` / ``nonlinearity`` meaning: the activation that follows the layer."""


def parse_spec(
    spec: str, kind: str = "scheme", namespaces: Collection[str] = ()
) -> tuple[str, dict[str, str]]:
    """Split ``"name:k=v,k=v"`` into the name and its raw string parameters.

    A name may be qualified by one of ``namespaces`` (a framework: ``"keras:he_normal"``).
    In ``"a:b..."`` with ``a`` a namespace, a segment ``b`` after the first ``:`` without
    ``=`` is part of the name, and parameters follow the next ``:``
    (``"jax:variance_scaling:scale=2,mode=fan_avg"``); any other spec parses as before.
    """
    if not isinstance(spec, str):
        raise InitsuiteError(f"a {kind} spec must be a string, got {type(spec).__name__}")
    name, sep, rest = spec.strip().partition(":")
    name = name.strip()
    if sep and name in namespaces:
        local, sep2, after = rest.partition(":")
        if "=" not in local:  # "keras:he_normal[:params]": the segment names the scheme
            name, sep, rest = f"{name}:{local.strip()}", sep2, after
            if name.endswith(":"):
                raise InitsuiteError(f"empty {kind} name after {name!r} in spec {spec!r}")
    if not name:
        raise InitsuiteError(f"empty {kind} name in spec {spec!r}")
    raw: dict[str, str] = {}
    if sep and not rest.strip():
        raise InitsuiteError(f"{kind} spec {spec!r} has ':' but no parameters (write k=v)")
    for item in rest.split(",") if rest.strip() else []:
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key or not value:
            raise InitsuiteError(
                f"{kind} spec {spec!r}: parameter {item.strip()!r} is not of the form key=value"
            )
        if key in raw:
            raise InitsuiteError(f"{kind} spec {spec!r}: parameter {key!r} given twice")
        raw[key] = value
    return name, raw


def split_specs(text: str) -> list[str]:
    """Split a comma list of specs; ``k=v`` items continue the previous spec's parameters.

    Example:
        >>> split_specs("kaiming_uniform:a=0.5,mode=fan_out,keras:he_normal")
        ['kaiming_uniform:a=0.5,mode=fan_out', 'keras:he_normal']
    """
    out: list[str] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        # continue only a spec that has parameters: "keras:he_normal" is a qualified name
        if "=" in token and ":" not in token and out and "=" in out[-1]:
            out[-1] += "," + token
        else:
            out.append(token)
    if not out:
        raise InitsuiteError(f"empty list {text!r}")
    return out


def split_items(text: str) -> list[str]:
    """``text`` split at the commas outside brackets, each item stripped: a list value
    (``depths=[2,2,2,2]``) stays one item.

        >>> split_items("hf:resnet,depths=[2,2,2,2],layer_type=basic")
        ['hf:resnet', 'depths=[2,2,2,2]', 'layer_type=basic']

    Raises:
        InitsuiteError: an unbalanced bracket.
    """
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                break
        elif ch == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    if depth != 0:
        raise InitsuiteError(f"{text!r}: unbalanced brackets; write a list value as "
                             "KEY=[V1,V2,...], e.g. depths=[2,2,2,2]")  # fmt: skip
    return [*items, text[start:].strip()]


def format_value(value: Any) -> str:
    """A value as a spec writes it: a list or tuple in brackets without spaces
    (``[2,2,2,2]``, what :func:`split_items` keeps whole), anything else as ``str``."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    return str(value)


def format_spec(name: str, params: Mapping[str, Any]) -> str:
    """The canonical spec string: the name, then the parameters in the order given."""
    if not params:
        return name
    return name + ":" + ",".join(f"{k}={_fmt(v)}" for k, v in params.items())


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


@dataclass(frozen=True)
class Param:
    """One keyword parameter of a registered function: its name, type and default."""

    name: str
    annotation: Any
    default: Any = inspect.Parameter.empty

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    def describe(self) -> str:
        """Human-readable type, e.g. ``float | 'auto'``."""
        return " | ".join(_describe(t) for t in _alternatives(self.annotation))

    def convert(self, value: Any, owner: str) -> Any:
        """Convert a spec string (or check a Python value) against the annotation."""
        alts = _alternatives(self.annotation)
        for alt in alts:
            ok, out = _try(alt, value)
            if ok:
                return out
        # nan and ±inf are refused here, once for every scheme and activation parameter
        why = ": it must be finite" if float in alts and _non_finite(value) else ""
        if (float in alts or int in alts) and _python_number(value):
            why = f": {_PLAIN}"
        raise InitsuiteError(
            f"{owner}: {self.name}={value!r} is not a valid value (expected {self.describe()}){why}"
        )


def params_of(fn: Callable[..., Any], skip: tuple[str, ...] = ()) -> dict[str, Param]:
    """The keyword parameters of ``fn`` after its first (the tensor), minus ``skip``."""
    hints = typing.get_type_hints(fn)
    sig = inspect.signature(fn)
    out: dict[str, Param] = {}
    for i, (name, p) in enumerate(sig.parameters.items()):
        if i == 0 or name in skip or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        out[name] = Param(name, hints.get(name, Any), p.default)
    return out


def check_keys(owner: str, given: Mapping[str, Any], params: Mapping[str, Param]) -> None:
    """Raise for a key ``params`` does not have, suggesting the nearest one."""
    for key in given:
        if key not in params:
            valid = ", ".join(params) or "none"
            hint = did_you_mean(key, params)
            tip = f"; did you mean {hint!r}?" if hint else ""
            raise InitsuiteError(f"{owner} has no parameter {key!r}{tip} (parameters: {valid})")


def _alternatives(annotation: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return tuple(a for arg in typing.get_args(annotation) for a in _alternatives(arg))
    return (annotation,)


def _describe(t: Any) -> str:
    if typing.get_origin(t) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(t))
    if t is type(None):
        return "none"
    return getattr(t, "__name__", str(t))


def _non_finite(value: Any) -> bool:
    """True for a nan or ±inf given as a number or a string."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return False
    return (
        isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isfinite(value)
    )


# Numbers in specs are written in plain ASCII decimal syntax. Python's int() and float() also
# read "1_0" as 10 and other scripts' digits ("１", "٣") as ASCII ones: a spec refuses those
# rather than misreading them.
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_FLOAT_TEXT = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)", re.IGNORECASE
)
_PLAIN = "write numbers in plain ASCII digits (no '_', no other scripts' digits)"


def plain_int(text: str) -> int | None:
    """``text`` (surrounding spaces aside) as an int if it is ASCII decimal digits with an
    optional sign, else None (``"1_0"``, ``"１"``, ``"0x10"``, ``"2.0"``)."""
    text = text.strip()
    return int(text) if _INT_TEXT.fullmatch(text) else None


def plain_float(text: str) -> float | None:
    """``text`` (surrounding spaces aside) as a float if it is written in plain ASCII decimal
    or exponent syntax (or ``nan``/``inf``, which callers refuse with their own message),
    else None (``"1_0"``, ``"１"``, ``"0x10"``)."""
    text = text.strip()
    return float(text) if _FLOAT_TEXT.fullmatch(text) else None


def plain_number(text: str) -> int | float | None:
    """``text`` as an int (:func:`plain_int`), else a float (:func:`plain_float`), else None
    when it is no number; raises for text only Python's int() or float() reads as one
    (``"1_0"``, ``"１"``) rather than reading it either way."""
    number: int | float | None = plain_int(text)
    number = plain_float(text) if number is None else number
    if number is None and _python_number(text):
        raise InitsuiteError(f"{text!r} is not a plain number: {_PLAIN}")
    return number


def _python_number(value: Any) -> bool:
    """True for a string Python's int() or float() reads but the plain syntax refuses."""
    if not isinstance(value, str) or plain_float(value) is not None:
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def _try(t: Any, value: Any) -> tuple[bool, Any]:
    if typing.get_origin(t) is Literal:
        choices = typing.get_args(t)
        text = value.strip().lower() if isinstance(value, str) else value
        return (True, text) if text in choices else (False, None)
    if t is bool:
        if isinstance(value, bool):
            return True, value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return True, value.lower() in _TRUE
        return False, None
    if t is int:
        if isinstance(value, bool):
            return False, None
        if isinstance(value, numbers.Integral):  # also NumPy's integer scalars
            return True, int(value)
        if isinstance(value, str):
            number = plain_int(value)
            return (False, None) if number is None else (True, number)
        return False, None
    if t is float:
        if isinstance(value, bool):
            return False, None
        if isinstance(value, numbers.Real):  # also NumPy's float32/int64 scalars
            out = float(value)
        elif isinstance(value, str):
            parsed = plain_float(value)
            if parsed is None:
                return False, None
            out = parsed
        else:
            return False, None
        return (True, out) if math.isfinite(out) else (False, None)
    if t is str:
        return (True, value) if isinstance(value, str) else (False, None)
    if t is type(None):
        is_none = value is None or (isinstance(value, str) and value.lower() == "none")
        return (True, None) if is_none else (False, None)
    if t is Any:
        return True, value
    return False, None

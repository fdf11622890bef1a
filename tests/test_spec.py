"""Unit tests of initsuite.core.spec: parsing, formatting, typed conversion, key checks."""

from __future__ import annotations

import inspect
from typing import Any, Literal

import pytest

from initsuite.core.errors import Arg, InitsuiteError, InitsuiteTypeError, did_you_mean, unknown
from initsuite.core.spec import (
    AUTO,
    Param,
    check_keys,
    format_spec,
    params_of,
    parse_spec,
    split_specs,
)

OWNER = "scheme 'test'"


def _single_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    return msg


# -- parse_spec / format_spec ----------------------------------------------------------------


def test_parse_name_only() -> None:
    assert parse_spec("xavier_uniform") == ("xavier_uniform", {})
    assert parse_spec("  xavier_uniform  ") == ("xavier_uniform", {})


def test_parse_params_keep_order_and_strip_spaces() -> None:
    name, raw = parse_spec(" kaiming_uniform : mode = fan_out , a=0.5 ")
    assert name == "kaiming_uniform"
    assert raw == {"mode": "fan_out", "a": "0.5"}
    assert list(raw) == ["mode", "a"]


def test_parse_value_may_contain_equals() -> None:
    # Only the first '=' separates key from value.
    assert parse_spec("x:k=a=b") == ("x", {"k": "a=b"})


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"a": 0.5, "mode": "fan_out"},
        {"gain": 1 / 3},
        {"std": 1e-300, "mean": -2.5},
        {"groups": 4, "flag": True},
        {"gain": AUTO},
    ],
)
def test_format_parse_round_trip(params: dict[str, Any]) -> None:
    spec = format_spec("name", params)
    name, raw = parse_spec(spec)
    assert name == "name"
    assert list(raw) == list(params)
    converted = {k: Param(k, type(v)).convert(raw[k], OWNER) for k, v in params.items()}
    assert converted == params  # floats are written with repr, so they come back identical
    assert format_spec(name, converted) == spec


def test_format_spec_is_canonical() -> None:
    assert format_spec("kaiming_uniform", {}) == "kaiming_uniform"
    assert format_spec("kaiming_uniform", {"a": 0.5, "mode": "fan_out"}) == (
        "kaiming_uniform:a=0.5,mode=fan_out"
    )
    assert format_spec("x", {"v": 0.1}) == "x:v=0.1"  # repr, not "%g" or a long expansion
    assert format_spec("x", {"v": float("inf")}) == "x:v=inf"


def test_parse_rejects_non_string() -> None:
    with pytest.raises(InitsuiteError, match="must be a string, got int"):
        parse_spec(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", ["", "   ", ":a=1"])
def test_parse_rejects_empty_name(spec: str) -> None:
    with pytest.raises(InitsuiteError, match="empty scheme name") as exc:
        parse_spec(spec)
    _single_line(exc)


@pytest.mark.parametrize("spec", ["x:", "x:  "])
def test_parse_rejects_colon_without_params(spec: str) -> None:
    with pytest.raises(InitsuiteError, match="has ':' but no parameters") as exc:
        parse_spec(spec)
    _single_line(exc)


@pytest.mark.parametrize(
    ("spec", "item"),
    [("x:gain", "gain"), ("x:gain=", "gain="), ("x:=1", "=1"), ("x:a=1,", ""), ("x:a=1,,b=2", "")],
)
def test_parse_rejects_item_without_key_value(spec: str, item: str) -> None:
    with pytest.raises(InitsuiteError) as exc:
        parse_spec(spec)
    assert f"parameter {item!r} is not of the form key=value" in _single_line(exc)


def test_parse_rejects_duplicate_key() -> None:
    with pytest.raises(InitsuiteError, match="parameter 'a' given twice"):
        parse_spec("x:a=1,b=2,a=3")


def test_parse_names_the_kind() -> None:
    with pytest.raises(InitsuiteError, match=r"^activation spec"):
        parse_spec("elu:", kind="activation")


# -- Param.convert ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.5", 0.5), (" -2 ", -2.0), ("1e-3", 1e-3), (3, 3.0), (0.25, 0.25)],
)
def test_float_accepts(value: Any, expected: float) -> None:
    out = Param("gain", float).convert(value, OWNER)
    assert out == expected
    assert type(out) is float


@pytest.mark.parametrize(
    "value",
    ["nan", "inf", "-inf", "NaN", float("nan"), float("inf"), True, False, "true", "", "x", None],
)
def test_float_rejects(value: Any) -> None:
    with pytest.raises(InitsuiteError) as exc:
        Param("gain", float).convert(value, OWNER)
    msg = _single_line(exc)
    assert msg.startswith(f"{OWNER}: gain={value!r} is not a valid value")
    assert "(expected float)" in msg


@pytest.mark.parametrize("value", ["1_0", "１", "٣", "2.５", "1_000.5", "1e1_0", "١٠"])
@pytest.mark.parametrize("kind", [float, int])
def test_numbers_are_plain_ascii_digits(value: str, kind: type) -> None:
    """Python's int() and float() read "1_0" as 10 and other scripts' digits as ASCII ones;
    a spec refuses them, naming the parameter and the value."""
    with pytest.raises(InitsuiteError) as exc:
        Param("std", kind).convert(value, OWNER)
    assert _single_line(exc) == (f"{OWNER}: std={value!r} is not a valid value (expected "
                                 f"{kind.__name__}): write numbers in plain ASCII digits (no "
                                 "'_', no other scripts' digits)")  # fmt: skip


@pytest.mark.parametrize(("value", "expected"), [("3", 3), (" 12 ", 12), ("-1", -1), (7, 7)])
def test_int_accepts(value: Any, expected: int) -> None:
    out = Param("groups", int).convert(value, OWNER)
    assert out == expected
    assert type(out) is int


@pytest.mark.parametrize("value", ["3.5", "1e3", "two", True, 2.0, None])
def test_int_rejects(value: Any) -> None:
    with pytest.raises(InitsuiteError, match=r"groups=.* \(expected int\)"):
        Param("groups", int).convert(value, OWNER)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("Yes", True), ("1", True), ("on", True), ("FALSE", False), ("no", False),
     ("0", False), ("off", False), (True, True), (False, False)],
)  # fmt: skip
def test_bool_accepts(value: Any, expected: bool) -> None:
    assert Param("flag", bool).convert(value, OWNER) is expected


@pytest.mark.parametrize("value", ["maybe", "2", 1, 0, None])
def test_bool_rejects(value: Any) -> None:
    with pytest.raises(InitsuiteError, match=r"\(expected bool\)"):
        Param("flag", bool).convert(value, OWNER)


def test_literal() -> None:
    mode = Param("mode", Literal["fan_in", "fan_out"])
    assert mode.convert("fan_out", OWNER) == "fan_out"
    assert mode.convert(" FAN_IN ", OWNER) == "fan_in"
    assert mode.describe() == "'fan_in' | 'fan_out'"
    with pytest.raises(InitsuiteError) as exc:
        mode.convert("fan_avg", OWNER)
    assert "mode='fan_avg' is not a valid value (expected 'fan_in' | 'fan_out')" in _single_line(
        exc
    )


def test_union_float_or_auto() -> None:
    gain = Param("gain", float | Literal["auto"], 1.0)
    assert gain.convert("1.5", OWNER) == 1.5
    assert gain.convert("auto", OWNER) == "auto"
    assert gain.convert("AUTO", OWNER) == "auto"
    assert gain.describe() == "float | 'auto'"
    with pytest.raises(InitsuiteError, match=r"expected float \| 'auto'"):
        gain.convert("banana", OWNER)


def test_union_with_none() -> None:
    std = Param("std", float | None, None)
    assert std.convert("none", OWNER) is None
    assert std.convert("None", OWNER) is None
    assert std.convert(None, OWNER) is None
    assert std.convert("0.1", OWNER) == 0.1
    assert std.describe() == "float | none"


def test_str_and_any() -> None:
    assert Param("nonlinearity", str).convert("relu", OWNER) == "relu"
    with pytest.raises(InitsuiteError):
        Param("nonlinearity", str).convert(1, OWNER)
    obj = object()
    assert Param("x", Any).convert(obj, OWNER) is obj


def test_unsupported_annotation_rejects() -> None:
    with pytest.raises(InitsuiteError, match=r"expected list"):
        Param("x", list).convert("[1]", OWNER)


def test_required() -> None:
    assert Param("val", float).required
    assert not Param("gain", float, 1.0).required
    assert Param("val", float).default is inspect.Parameter.empty


# -- params_of / check_keys ------------------------------------------------------------------


def _fn(
    tensor: Any,
    gain: float = 1.0,
    mode: Literal["fan_in", "fan_out"] = "fan_in",
    *,
    generator: Any = None,
    **kw: Any,
) -> None:
    """A registered-function shape: tensor first, keyword parameters after."""


def test_params_of() -> None:
    params = params_of(_fn, skip=("generator",))
    assert list(params) == ["gain", "mode"]  # not the tensor, not generator, not **kw
    assert params["gain"] == Param("gain", float, 1.0)
    assert params["mode"].annotation == Literal["fan_in", "fan_out"]
    assert "generator" in params_of(_fn)


def test_check_keys_accepts_known() -> None:
    check_keys(OWNER, {"gain": "1", "mode": "fan_in"}, params_of(_fn, skip=("generator",)))


def test_check_keys_suggests_nearest() -> None:
    with pytest.raises(InitsuiteError) as exc:
        check_keys(OWNER, {"gian": "1"}, params_of(_fn, skip=("generator",)))
    msg = _single_line(exc)
    assert msg == (
        "scheme 'test' has no parameter 'gian'; did you mean 'gain'? (parameters: gain, mode)"
    )


def test_check_keys_without_a_close_match() -> None:
    with pytest.raises(InitsuiteError) as exc:
        check_keys(OWNER, {"zzzzzz": "1"}, params_of(_fn, skip=("generator",)))
    msg = _single_line(exc)
    assert "did you mean" not in msg
    assert "(parameters: gain, mode)" in msg


def test_check_keys_when_there_are_no_parameters() -> None:
    with pytest.raises(InitsuiteError, match=r"\(parameters: none\)"):
        check_keys(OWNER, {"gain": "1"}, {})


# -- errors helpers --------------------------------------------------------------------------


def test_did_you_mean() -> None:
    choices = ["kaiming_normal", "kaiming_uniform", "xavier_normal"]
    assert did_you_mean("kaimng_normal", choices) == "kaiming_normal"
    assert did_you_mean("XAVIER_NORMAL", choices) == "xavier_normal"  # case-insensitive hit
    assert did_you_mean("qqqq", choices) is None


def test_unknown_message() -> None:
    assert unknown("mode", "fan", ["fan_in", "fan_out"]) == (
        "unknown mode 'fan'; did you mean 'fan_in'? (choose from fan_in, fan_out)"
    )
    assert unknown("scheme", "zzz", ["a"], listing="initsuite schemes") == (
        "unknown scheme 'zzz' (initsuite schemes lists all)"
    )


def test_initsuite_error_is_a_value_error() -> None:
    assert issubclass(InitsuiteError, ValueError)


def test_split_specs_keeps_parameters_with_their_scheme() -> None:
    assert split_specs("kaiming_uniform:a=0.5,mode=fan_out,xavier_normal") == [
        "kaiming_uniform:a=0.5,mode=fan_out",
        "xavier_normal",
    ]
    assert split_specs("a, b ,c") == ["a", "b", "c"]
    assert split_specs("a=1,b") == ["a=1", "b"]  # no spec before it to continue
    with pytest.raises(InitsuiteError, match="empty list ' , '"):
        split_specs(" , ")


# -- errors that name arguments ----------------------------------------------------------------


def test_an_error_names_arguments_as_python_spells_them() -> None:
    err = InitsuiteError("pass ", Arg("resume", True), " to continue, or a new ", Arg("out"))
    assert str(err) == "pass resume=True to continue, or a new out"
    assert err.args == ("pass resume=True to continue, or a new out",)
    assert err.arguments == ("resume", "out")
    assert str(Arg("shared", False)) == "shared=False" and str(Arg("seed", 3)) == "seed=3"


def test_an_error_renders_its_arguments_another_way() -> None:
    err = InitsuiteError("pass ", Arg("allow_large", True), " to run it")
    flag = err.render(lambda a: "--" + a.name.replace("_", "-"))
    assert flag == "pass --allow-large to run it"
    plain = InitsuiteError("no argument here")
    assert plain.render(lambda a: "never called") == "no argument here"
    assert plain.arguments == ()


def test_an_error_with_arguments_pickles_whole() -> None:
    """A Dask worker's error arrives pickled: its parts survive, its type too."""
    import pickle

    err = InitsuiteTypeError("bad ", Arg("backward"), ": not a bool")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is InitsuiteTypeError and back.parts == err.parts
    assert str(back) == "bad backward: not a bool"


def test_numpy_scalars_are_accepted_as_numbers() -> None:
    """Values from np.linspace / arrays (np.float32, np.float64, np.int64) are numbers."""
    import numpy as np

    from initsuite import schemes

    assert schemes.get("normal").with_params(std=np.float32(0.5)).params["std"] == 0.5
    assert schemes.get("normal").with_params(std=np.float64(0.25)).params["std"] == 0.25
    s = schemes.get("normal").with_params(mean=np.int64(2))
    assert s.params["mean"] == 2.0 and type(s.params["mean"]) is float
    assert type(schemes.get("dirac").with_params(groups=np.int64(2)).params["groups"]) is int

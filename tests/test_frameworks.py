"""Framework-qualified scheme names: the spec grammar, lookups, errors and the CLI (issue 15).

The draws themselves are compared with the frameworks in ``test_frameworks_live.py``.
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers import run_cli

from initsuite import schemes
from initsuite.core.errors import InitsuiteError
from initsuite.core.spec import parse_spec, split_specs

FW = ("jax", "keras")


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    return msg


# -- grammar ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("keras:he_normal", ("keras:he_normal", {})),
        ("jax:variance_scaling:scale=2,mode=fan_avg", ("jax:variance_scaling",
                                                        {"scale": "2", "mode": "fan_avg"})),
        (" keras : he_normal ", ("keras:he_normal", {})),
        # a namespace followed by parameters is a name with parameters, as before
        ("keras:scale=2", ("keras", {"scale": "2"})),
        # old specs parse exactly as before, namespaces or not
        ("kaiming_uniform:a=0.5", ("kaiming_uniform", {"a": "0.5"})),
        ("kaiming_uniform:a=0.5,mode=fan_out",
         ("kaiming_uniform", {"a": "0.5", "mode": "fan_out"})),
    ],
)  # fmt: skip
def test_parse_qualified_names(spec: str, expected: tuple[str, dict[str, str]]) -> None:
    assert parse_spec(spec, namespaces=FW) == expected


def test_without_namespaces_the_grammar_is_unchanged() -> None:
    with pytest.raises(InitsuiteError, match="parameter 'he_normal' is not of the form key=value"):
        parse_spec("keras:he_normal")
    with pytest.raises(InitsuiteError, match="parameter 'gain' is not of the form key=value"):
        parse_spec("xavier_uniform:gain", namespaces=FW)


@pytest.mark.parametrize(
    ("spec", "message"),
    [("keras:", "empty scheme name after 'keras:'"),
     ("keras:he_normal:", "has ':' but no parameters"),
     ("jax:variance_scaling:scale", "parameter 'scale' is not of the form key=value")],
)  # fmt: skip
def test_parse_malformed_qualified_specs(spec: str, message: str) -> None:
    with pytest.raises(InitsuiteError, match=message) as exc:
        parse_spec(spec, namespaces=FW)
    _one_line(exc)


def test_split_specs_with_qualified_names() -> None:
    text = (
        "keras:he_normal,kaiming_uniform:a=0.5,mode=fan_out,"
        "jax:variance_scaling:scale=2,mode=fan_avg,xavier_normal"
    )
    assert split_specs(text) == [
        "keras:he_normal",
        "kaiming_uniform:a=0.5,mode=fan_out",
        "jax:variance_scaling:scale=2,mode=fan_avg",
        "xavier_normal",
    ]  # fmt: skip
    # a qualified name without parameters is not continued by a k=v after it
    assert split_specs("keras:he_normal,mode=fan_out") == ["keras:he_normal", "mode=fan_out"]


def test_spec_round_trips() -> None:
    scheme = schemes.get("jax:variance_scaling:scale=2,mode=fan_avg,distribution=uniform")
    assert scheme.spec == "jax:variance_scaling:scale=2.0,mode=fan_avg,distribution=uniform"
    assert schemes.get(scheme.spec) == scheme
    assert schemes.get("keras:he_normal").spec == "keras:he_normal"


# -- registry --------------------------------------------------------------------------------


def test_patterns_keep_framework_and_torch_vocabularies_apart() -> None:
    assert schemes.list("*_normal") == ["kaiming_normal", "lecun_normal", "trunc_normal",
                                        "xavier_normal"]  # fmt: skip
    assert "keras:he_normal" in schemes.list("keras:*")
    assert all(n.startswith("keras:") for n in schemes.list("keras:*"))
    assert schemes.list("*:he_normal") == ["flax:he_normal", "jax:he_normal", "keras:he_normal"]
    assert set(schemes.list("*:*")) == {n for n in schemes.names() if ":" in n}
    assert schemes.list() == schemes.names()
    assert schemes.framework_names() == ["flax", "flux", "hf", "jax", "keras", "lua_torch", "timm"]


def test_all_is_torch_vocabulary_and_wildcards_reach_frameworks() -> None:
    assert not any(":" in schemes.get(s).name for s in schemes.expand("all"))
    assert "keras:he_normal" in schemes.expand("keras:*")
    assert "jax:variance_scaling:scale=2.0,mode=fan_in,distribution=truncated_normal" in (
        schemes.expand("jax:*")
    )  # the example spec sets the required parameters


def test_table_has_framework_metadata() -> None:
    table = schemes.table().set_index("scheme")
    assert table.loc["keras:he_normal", "framework"] == "keras"
    assert table.loc["keras:he_normal", "checked"].startswith("keras ")
    assert table.loc["timm:trunc_normal", "checked"].startswith("timm ")
    assert table.loc["flux:glorot_uniform", "checked"] == "not checked live"
    assert table.loc["kaiming_normal", "framework"] == "torch"
    assert table.loc["jax:he_normal", "var_x_fan_in"] == pytest.approx(2.0)
    assert table.loc["torch_default", "var_x_fan_in"] == pytest.approx(1 / 3, abs=1e-6)
    assert table.loc["hf:normal", "var_x_fan_in"] == pytest.approx(0.02**2 * 256)
    assert math.isnan(table.loc["xavier_uniform", "var_x_fan_in"]) is False


def test_a_framework_name_must_match_its_framework() -> None:
    for name in ("keras:test_mismatch", "test_unqualified"):  # jax's scheme, named otherwise
        with pytest.raises(ValueError, match="named 'framework:name'"):
            schemes.register(
                schemes.SchemeInfo(
                    name=name,
                    family="constant",
                    variance_formula="0",
                    variance=lambda shape: 0.0,
                    paper="-",
                    framework="jax",
                )
            )(lambda t, *, generator=None: t)
    assert "keras:test_mismatch" not in schemes.names()


# -- laws that differ under one name -----------------------------------------------------------


def test_same_name_different_laws() -> None:
    """torch's lecun_normal is a plain normal; JAX's and Keras' truncate at ±2 std and rescale;
    Keras reads distribution="normal" as truncated where JAX does not."""

    def spread(spec: str) -> float:
        w = schemes.get(spec)(torch.empty(512, 256, dtype=torch.float64),
                              generator=torch.Generator().manual_seed(0))  # fmt: skip
        return float(w.abs().max() * math.sqrt(256))  # max |w| in units of 1/√fan_in

    bound = 2 / 0.87962566103423978
    assert spread("lecun_normal") > 3.5  # N(0, 1/fan_in): 131072 draws reach ~4.4 σ
    for spec in ("jax:lecun_normal", "keras:lecun_normal", "timm:lecun_normal",
                 "keras:variance_scaling:distribution=normal"):  # fmt: skip
        assert spread(spec) <= bound + 1e-9, spec
    assert spread("jax:variance_scaling:scale=1,mode=fan_in,distribution=normal") > 3.5


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("keras:he_norml",
         "unknown keras scheme 'keras:he_norml'; did you mean 'keras:he_normal'?"),
        ("keras:kaiming_normal", "did you mean 'keras:he_normal'? (keras's name for it"),
        ("jax:xavier_uniform", "did you mean 'jax:glorot_uniform'?"),
        ("kers:he_normal", "unknown framework 'kers'; did you mean 'keras'?"),
        ("hf:normal:std=0.02", "scheme 'hf:normal' has no parameter 'std'"),
        ("keras:variance_scaling:distribution=gaussian", "distribution='gaussian' is not a valid"),
        ("jax:variance_scaling:scale=2", "needs parameter 'mode'"),
        ("jax:normal:stddev=-1", "stddev must be >= 0"),
    ],
)  # fmt: skip
def test_errors_are_one_line_with_the_nearest_name(spec: str, message: str) -> None:
    with pytest.raises(InitsuiteError) as exc:
        schemes.get(spec)(torch.empty(8, 4), generator=torch.Generator().manual_seed(0))
    assert message in _one_line(exc)
    assert exc.value.__cause__ is None


def test_cli_unknown_qualified_scheme_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["sweep", "--schemes", "keras:he_nrmal,kaiming_uniform:a=0.5,"
                              "mode=fan_out", "--out", "/nonexistent/never"], capsys)  # fmt: skip
    assert code == 2
    assert "did you mean 'keras:he_normal'?" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_schemes_lists_a_framework(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["schemes", "keras:*"], capsys)
    assert code == 0
    assert "keras:he_normal" in out and "kaiming_normal" not in out
    assert "keras 3" in out

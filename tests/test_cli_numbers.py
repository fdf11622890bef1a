"""Numbers on the command line are plain ASCII: every numeric flag, a gate's limit, a CUDA
device index and a model source's override refuse what Python's int() and float() would also
read ("1_0" as 10, "１０" and "٣" as ASCII digits), in one line."""

from __future__ import annotations

import argparse
import numbers
from collections.abc import Iterator

import pytest

from initsuite.cli import _build_parser
from initsuite.core.devices import check_device
from initsuite.core.errors import InitsuiteError
from initsuite.results.gates import parse_gates

# each is read as a number by int() or float(): an underscore, full-width and Arabic-Indic digits
NOT_PLAIN = ["1_0", "１０", "٣"]


def _is_number(value: object) -> bool:
    if isinstance(value, list):
        return bool(value) and all(_is_number(v) for v in value)
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _numeric_flags() -> Iterator[tuple[str, argparse.Action]]:
    """Every flag of every command whose type reads "10" as a number (or a list of numbers):
    found by what the type does, so a new flag with a bare ``type=int`` is found too."""
    _, commands = _build_parser()
    for name, parser in commands.items():
        for action in parser._actions:
            if action.type is None or not callable(action.type):
                continue
            try:
                value = action.type("10")
            except (argparse.ArgumentTypeError, TypeError, ValueError):
                continue
            if _is_number(value):
                yield name, action


NUMERIC = [(name, action.option_strings[0]) for name, action in _numeric_flags()]


def test_the_walk_finds_the_numeric_flags() -> None:
    # a walk that found nothing would pass the test below vacuously
    found = set(NUMERIC)
    assert {("sweep", "--depths"), ("sweep", "--batch"), ("sweep", "--pair-cosine"),
            ("train", "--lr"), ("train", "--steps"), ("probe", "--timeout"),
            ("probe", "--max-parameters"), ("probe", "--input-shape"), ("compare", "--top"),
            ("phase", "--width"), ("reproduce", "--train-steps")} <= found  # fmt: skip
    assert len(found) >= 25


@pytest.mark.parametrize(("command", "flag"), NUMERIC, ids=[f"{c} {f}" for c, f in NUMERIC])
def test_every_numeric_flag_refuses_what_is_not_plain_ascii(
    command: str, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, commands = _build_parser()
    for text in NOT_PLAIN:
        with pytest.raises(SystemExit) as exc:
            commands[command].parse_args([flag, text])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert f"argument {flag}" in err and repr(text) in err and "plain ASCII" in err, err


@pytest.mark.parametrize("gate", ["final_std:１０%", "divergence_layer:٣", "init_ms:1_0%"])
def test_a_gate_limit_is_plain_ascii(gate: str) -> None:
    with pytest.raises(InitsuiteError, match="the limit must be"):
        parse_gates(gate)


@pytest.mark.parametrize("device", ["cuda:１", "cuda:٣", "cuda:1_0"])
def test_a_cuda_index_is_plain_ascii(device: str) -> None:
    # unknown on any machine, rather than read as cuda:1 where CUDA is there
    with pytest.raises(InitsuiteError, match="unknown device"):
        check_device(device)


@pytest.mark.parametrize("text", NOT_PLAIN)
def test_a_model_source_override_is_plain_ascii(text: str) -> None:
    from initsuite.studies import sources

    # refused before the library is imported, rather than read as 10 or 3
    with pytest.raises(InitsuiteError, match="not a plain number"):
        sources.parse(f"hf:gpt2,n_layer={text}")
    with pytest.raises(InitsuiteError, match="not a plain number"):
        sources.parse_vary([f"n_layer=6,{text}"])
    assert sources.parse_vary(["n_layer=6,1e1", "act=gelu"]) == (
        ("n_layer", (6, 10.0)), ("act", ("gelu",)))  # fmt: skip

"""Issue 12, trust at the edges: bad argument types of apply/probe (16), user code that exits
or hangs under ``initsuite probe`` (19), a plugin that fails after registering (20), scheme
patterns (21) and a comparison with no cells in common (22)."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import FakeEntryPoint, module_on_path, patch_entry_points, run_cli
from torch import Tensor, nn

import initsuite
from initsuite import schemes
from initsuite.core.errors import InitsuiteError, InitsuiteTypeError
from initsuite.engine.reinit import apply
from initsuite.report.comparison import compare_text
from initsuite.results.comparison import compare
from initsuite.schemes import registry
from initsuite.studies.probe import probe
from initsuite.studies.probe_factory import probe_factory
from initsuite.studies.user_code import deadline


def _one_line_error(code: int, err: str) -> str:
    """The single stderr line of a bad-input exit."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("initsuite") and ": error: " in lines[0], lines[0]
    return lines[0]


# --- 16: apply / probe argument types ----------------------------------------------------------

Call = Callable[[nn.Module], object]
X = torch.ones(2, 4)

BAD_TYPES: list[tuple[Call, str]] = [
    (lambda m: apply(m, "kaiming_normal", generator=5), "generator must be a torch.Generator"),  # type: ignore[arg-type]
    (lambda m: apply(m, "kaiming_normal", generator="a"), "generator must be a torch.Generator"),  # type: ignore[arg-type]
    (lambda m: apply(m, 5), "scheme must be a spec string or a Scheme"),  # type: ignore[arg-type]
    (lambda m: apply(m, "kaiming_normal", activation=5), "activation must be"),  # type: ignore[arg-type]
    (lambda m: apply(m, "kaiming_normal", include_embeddings="yes"),  # type: ignore[arg-type]
     "include_embeddings must be True or False"),
    (lambda m: apply(m, "kaiming_normal", inputs=3), "inputs must be"),  # type: ignore[arg-type]
    (lambda m: apply(nn.Linear, "kaiming_normal"), "needs a torch.nn.Module"),  # type: ignore[arg-type]
    (lambda m: probe(m, X, scheme=5), "scheme must be a spec string or a Scheme"),  # type: ignore[arg-type]
    (lambda m: probe(m, X, scheme="normal", activation=[1]), "activation must be"),  # type: ignore[arg-type]
    (lambda m: probe(m, X, seed=1.0), "seed must be"),  # type: ignore[arg-type]
    (lambda m: probe(m, X, seed="0"), "seed must be"),  # type: ignore[arg-type]
    (lambda m: probe(m, X, backward="no"), "backward must be True or False"),  # type: ignore[arg-type]
    (lambda m: probe(m, X, scheme="normal", include_embeddings=1),  # type: ignore[arg-type]
     "include_embeddings must be True or False"),
    (lambda m: probe(m, "x"), "inputs must be"),  # type: ignore[arg-type]
    (lambda m: probe(object(), X), "needs a torch.nn.Module"),  # type: ignore[arg-type]
]  # fmt: skip


@pytest.mark.parametrize(("call", "needle"), BAD_TYPES, ids=[
    "apply-generator-int", "apply-generator-str", "apply-scheme-int", "apply-activation-int",
    "apply-include-embeddings-str", "apply-inputs-int", "apply-class-not-instance",
    "probe-scheme-int", "probe-activation-list", "probe-seed-float", "probe-seed-str",
    "probe-backward-str", "probe-include-embeddings-int", "probe-inputs-str",
    "probe-not-a-module"])  # fmt: skip
def test_bad_argument_types_raise_a_type_error_before_touching_the_model(
    call: Call, needle: str
) -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(InitsuiteTypeError, match=needle) as exc:
        call(model)
    assert isinstance(exc.value, TypeError) and isinstance(exc.value, ValueError)
    assert "\n" not in str(exc.value) and exc.value.__cause__ is None
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_a_good_generator_still_draws() -> None:
    model = nn.Linear(4, 4)
    assert apply(model, "kaiming_normal", generator=torch.Generator().manual_seed(1)) == [
        "weight"]  # fmt: skip


# --- 19: probe factories that exit or hang ---------------------------------------------------

FACTORIES = "initsuite_trust_misc_factories"
FACTORY_SOURCE = """
import sys
import time

from torch import nn


def exits():
    sys.exit(3)


def exits_none():
    raise SystemExit


class _Exits(nn.Linear):
    def forward(self, x):
        sys.exit(4)


def forward_exits():
    return _Exits(4, 4)


def hangs():
    time.sleep(60)
    return nn.Linear(4, 4)


class _Spins(nn.Linear):
    def forward(self, x):
        while True:
            try:
                time.sleep(0.01)
            except Exception:  # user code that swallows errors cannot swallow the timeout
                pass


def forward_hangs():
    return _Spins(4, 4)


def interrupted():
    raise KeyboardInterrupt


def fine():
    return nn.Sequential(nn.Linear(4, 4), nn.Tanh())
"""


@pytest.fixture
def factories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    yield from module_on_path(tmp_path, monkeypatch, FACTORIES, FACTORY_SOURCE)


def _probe_cli(args: list[str], tmp_path: Path,
               capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:  # fmt: skip
    runs = tmp_path / "runs"
    runs.mkdir(exist_ok=True)
    return run_cli(["probe", *args, "--input-shape", "2,4", "--out", str(runs / "o"),
                    "--quiet", "--no-report"], capsys)  # fmt: skip


@pytest.mark.parametrize(
    ("factory", "needles"),
    [
        ("exits", ["factory 'initsuite_trust_misc_factories:exits'", "sys.exit(3)"]),
        ("exits_none", ["factory 'initsuite_trust_misc_factories:exits_none'", "sys.exit()"]),
        ("forward_exits", ["the model from 'initsuite_trust_misc_factories:forward_exits'",
                           "sys.exit(4)"]),
    ],
)  # fmt: skip
def test_user_code_calling_sys_exit_is_named_exit_2_nothing_written(
    factory: str, needles: list[str], factories: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    line = _one_line_error(*_probe_cli([f"{FACTORIES}:{factory}"], tmp_path, capsys)[::2])
    for needle in needles:
        assert needle in line, line
    assert list((tmp_path / "runs").iterdir()) == []


def test_keyboard_interrupt_in_user_code_is_not_swallowed(
    factories: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _probe_cli([f"{FACTORIES}:interrupted"], tmp_path, capsys)
    assert code == 130 and "interrupted" in err


@pytest.mark.parametrize("factory", ["hangs", "forward_hangs"])
def test_a_hanging_factory_or_forward_is_timed_out(
    factory: str, factories: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = signal.getsignal(signal.SIGALRM)
    started = time.monotonic()
    code, _, err = _probe_cli([f"{FACTORIES}:{factory}", "--timeout", "0.3"], tmp_path, capsys)
    line = _one_line_error(code, err)
    assert time.monotonic() - started < 10
    assert f"'{FACTORIES}:{factory}' did not finish within 0.3 s" in line, line
    assert "raise timeout" in line
    assert list((tmp_path / "runs").iterdir()) == []
    assert signal.getsignal(signal.SIGALRM) == handler  # put back, and no timer left
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_timeout_restores_the_previous_handler_and_timer() -> None:
    fired: list[int] = []

    def handler(signum: int, frame: object) -> None:
        fired.append(signum)

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.6)
        with deadline(5.0, "nothing"):
            pass
        assert signal.getsignal(signal.SIGALRM) is handler
        remaining = signal.getitimer(signal.ITIMER_REAL)[0]
        assert 0 < remaining <= 0.6
        time.sleep(0.8)
        assert fired == [signal.SIGALRM]  # the caller's alarm still went off
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_timeout_in_the_api_and_its_validation(factories: Path) -> None:
    with pytest.raises(InitsuiteError, match=r"did not finish within 0\.2 s"):
        probe_factory(f"{FACTORIES}:hangs", (2, 4), timeout=0.2)
    result = probe_factory(f"{FACTORIES}:fine", (2, 4), timeout=30)
    assert len(result.calls) == 2  # Linear and Tanh
    assert "timeout" not in result.meta["config"]
    for bad in (0, -1, float("nan"), float("inf"), "5", True):
        with pytest.raises(InitsuiteError, match="timeout must be"):
            probe_factory(f"{FACTORIES}:fine", (2, 4), timeout=bad)  # type: ignore[arg-type]


def test_a_timeout_that_expires_at_once_is_one_line(
    factories: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 27: ``--timeout 1e-9`` fired before the block was entered, and the internal
    alarm exception escaped as a traceback."""
    handler = signal.getsignal(signal.SIGALRM)
    for _ in range(3):  # the alarm is due as soon as it is armed, every time
        with pytest.raises(InitsuiteError, match=r"did not finish within 1e-09 s"):
            probe_factory(f"{FACTORIES}:fine", (2, 4), timeout=1e-9)
    code, _, err = _probe_cli([f"{FACTORIES}:fine", "--timeout", "1e-9"], tmp_path, capsys)
    assert "did not finish within 1e-09 s" in _one_line_error(code, err)
    assert list((tmp_path / "runs").iterdir()) == []
    assert signal.getsignal(signal.SIGALRM) == handler
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_timeout_outside_the_main_thread_is_unavailable() -> None:
    import threading

    caught: list[BaseException] = []

    def run() -> None:
        try:
            with deadline(1.0, "x"):
                pass
        except BaseException as exc:  # handed to the main thread
            caught.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert len(caught) == 1 and isinstance(caught[0], InitsuiteError)
    assert "unavailable" in str(caught[0])


def test_cli_timeout_flag_bad_values(
    factories: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for bad in ("0", "-2", "nan", "soon"):
        code, _, err = _probe_cli([f"{FACTORIES}:fine", "--timeout", bad], tmp_path, capsys)
        assert code == 2 and "timeout" in err, err
        assert len(err.strip().splitlines()) == 1
    code, _, err = _probe_cli([f"{FACTORIES}:fine", "--timeout", "none"], tmp_path, capsys)
    assert code == 0, err


# --- 20: a plugin that registers, then raises ------------------------------------------------


PLUGIN = "test_trust_plugin_scheme"


@pytest.fixture
def broken_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An entry point whose module registers a scheme, then raises while importing."""

    def load() -> Any:
        @schemes.register(schemes.SchemeInfo(name=PLUGIN, family="constant", variance_formula="0",
                          variance=lambda shape: 0.0, paper="-"))  # fmt: skip
        def plugin_scheme(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
            """A scheme from a plugin that fails after registering it."""
            with torch.no_grad():
                return tensor.zero_()

        raise RuntimeError("plugin config missing")

    patch_entry_points(monkeypatch, FakeEntryPoint("halfway", "halfway_pkg.schemes",
                                                   schemes.ENTRY_POINT_GROUP, load))  # fmt: skip
    before = set(registry._REGISTRY)
    yield
    for name in set(registry._REGISTRY) - before:
        del registry._REGISTRY[name]


def test_a_failed_plugin_is_rolled_back_and_named_on_every_lookup(broken_plugin: None) -> None:
    for lookup in (schemes.names, lambda: schemes.get("normal"), lambda: schemes.info(PLUGIN)):
        with pytest.raises(InitsuiteError) as exc:
            lookup()
        msg = str(exc.value)
        assert "could not load scheme plugin 'halfway' (halfway_pkg.schemes)" in msg, msg
        assert "plugin config missing" in msg and "already registered" not in msg, msg
        assert PLUGIN not in registry._REGISTRY  # rolled back


def test_cli_names_the_failed_plugin_twice(
    broken_plugin: None, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        line = _one_line_error(*run_cli(["schemes"], capsys)[::2])
        assert "plugin config missing" in line and "already registered" not in line


def test_a_plugin_exiting_on_import_is_named_and_rolled_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def load() -> Any:
        schemes.register(
            schemes.SchemeInfo(
                name=PLUGIN,
                family="constant",
                variance_formula="0",
                variance=lambda s: 0.0,
                paper="-",
            )
        )(lambda t, *, generator=None: t)
        sys.exit(5)

    patch_entry_points(
        monkeypatch, FakeEntryPoint("exiting", "exiting_pkg", schemes.ENTRY_POINT_GROUP, load)
    )
    with pytest.raises(InitsuiteError, match=r"plugin 'exiting'.*sys\.exit\(5\)"):
        schemes.names()
    assert PLUGIN not in registry._REGISTRY


# --- 21: scheme patterns ---------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["[", "kaiming[", "[!", "", "x[]"])
def test_a_malformed_pattern_is_an_error(pattern: str) -> None:
    with pytest.raises(InitsuiteError, match="pattern"):
        schemes.list(pattern)


def test_list_pattern_of_the_wrong_type() -> None:
    with pytest.raises(InitsuiteTypeError, match="pattern must be a string"):
        schemes.list(3)  # type: ignore[arg-type]


def test_valid_patterns_still_match() -> None:
    assert schemes.list("kaiming*") == ["kaiming_normal", "kaiming_uniform"]
    assert schemes.list("[]x]avier_normal") == ["xavier_normal"]  # ']' first in a set: literal
    assert schemes.list("foo*") == []
    assert "normal" in schemes.list("[nm]ormal")


def test_cli_schemes_malformed_pattern_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for pattern in ("[", ""):
        line = _one_line_error(*run_cli(["schemes", pattern], capsys)[::2])
        assert "pattern" in line


def test_cli_schemes_no_match_is_exit_1_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(["schemes", "foo*"], capsys)
    assert code == 1 and out == ""
    assert err.strip() == "initsuite: no scheme matches 'foo*' (initsuite schemes lists all)"
    code, out, err = run_cli(["schemes", "foo*", "--json"], capsys)
    assert code == 1 and json.loads(out) == [] and "no scheme matches" in err
    code, out, err = run_cli(["schemes", "kaiming*"], capsys)
    assert code == 0 and "kaiming_uniform" in out and err == ""


# --- 22: compare with no cells in common -----------------------------------------------------

TINY: dict[str, Any] = dict(activations=["linear"], depths=[2], widths=[4], seeds=1,
                            timing_repeats=1, progress=False)  # fmt: skip


@pytest.fixture(scope="module")
def disjoint(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two one-cell sweeps of different schemes, in memory and on disk."""
    runs = {"a": initsuite.sweep(schemes=["normal"], **TINY),
            "b": initsuite.sweep(schemes=["zeros"], **TINY)}  # fmt: skip
    root = tmp_path_factory.mktemp("disjoint")
    for name, r in runs.items():
        r.save(root / name)
    return {**runs, "dirs": {name: str(root / name) for name in runs}}


def test_no_cells_in_common_fails_any_gates_unless_missing_allows(
    disjoint: dict[str, Any],
) -> None:
    a, b = disjoint["a"], disjoint["b"]
    cmp = compare(a, b, gates="final_std:10%")
    assert not cmp.passed
    assert list(cmp.failures["gate"]) == ["cells_in_common"]
    assert any("no cells in common" in n for n in cmp.notes)
    table = cmp.gate_table().set_index("gate")
    assert table.loc["cells_in_common", "result"] == "FAIL"
    assert "no cells in common" in compare_text(cmp)
    assert cmp.to_dict()["passed"] is False
    # an explicit missing gate decides: wide enough passes, too narrow fails (as missing)
    assert compare(a, b, gates="final_std:10%,missing:1").passed
    narrow = compare(a, b, gates="missing:0")
    assert list(narrow.failures["gate"]) == ["missing:0"]
    # without gates nothing fails, but the fact is said
    plain = compare(a, b)
    assert plain.passed and any("no cells in common" in n for n in plain.notes)
    assert "no cells in common" in compare_text(plain)
    # cells in common: no note, no implicit failure
    same = compare(a, a, gates="final_std:10%")
    assert same.passed and not any("in common" in n for n in same.notes)


def test_cli_compare_no_cells_in_common(
    disjoint: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    d = disjoint["dirs"]
    code, out, err = run_cli(["compare", d["a"], d["b"], "--fail", "final_std:10%"], capsys)
    assert code == 1, err
    assert "no cells in common" in out and "cells_in_common" in out
    code, out, _ = run_cli(["compare", d["a"], d["b"], "--fail", "missing:1"], capsys)
    assert code == 0 and "no cells in common" in out
    code, out, _ = run_cli(["compare", d["a"], d["b"]], capsys)
    assert code == 0 and "no cells in common" in out
    code, out, _ = run_cli(["compare", d["a"], d["b"], "--json", "--fail", "final_std:1%"],
                           capsys)  # fmt: skip
    doc = json.loads(out)
    assert code == 1 and doc["passed"] is False
    assert any("no cells in common" in n for n in doc["notes"])


# --- found by the CLI fuzzing ----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["schemes", "kai\nming["], ["schemes", "—out", "\x85"], ["sweep", "--schemes", "a\u2028b",
     "--depths", "1", "--widths", "2", "--out", "o"], ["phase", "--activation", "relu",
     "--schemes", ""], ["sweep", "--schemes", "normal", "--dtypes", "", "--out", "o"]],
    ids=["newline-in-pattern", "nel-as-argument", "line-separator-in-spec",
         "phase-empty-schemes", "empty-dtypes"],
)  # fmt: skip
def test_errors_stay_one_line_and_write_nothing(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    _one_line_error(*run_cli(args, capsys)[::2])
    assert list(tmp_path.iterdir()) == []


def test_cli_default_timeout_only_where_available(
    factories: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """No SIGALRM (Windows): the default is no limit, an explicit --timeout is an error."""
    from initsuite.studies import probe_factory as pf
    from initsuite.studies import user_code

    seen: list[float | None] = []
    real = pf.run_probe

    def spy(cfg: Any, progress: bool | None = None, timeout: float | None = None) -> Any:
        seen.append(timeout)
        return real(cfg, progress=progress, timeout=timeout)

    def probe_cli(*extra: str, out: str) -> tuple[int, str, str]:
        return run_cli(["probe", f"{FACTORIES}:fine", "--input-shape", "2,4", *extra, "--out",
                        str(tmp_path / out), "--quiet", "--no-report"], capsys)  # fmt: skip

    monkeypatch.setattr(pf, "run_probe", spy)
    assert probe_cli(out="o1")[0] == 0
    monkeypatch.setattr(user_code, "timeout_available", lambda: False)
    code, _, err = probe_cli(out="o2")
    assert code == 0, err
    assert seen == [600.0, None]
    line = _one_line_error(*probe_cli("--timeout", "5", out="o3")[::2])
    assert "timeout is unavailable" in line and not (tmp_path / "o3").exists()

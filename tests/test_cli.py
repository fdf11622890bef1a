"""The command line: bad input gives one line and exit 2 with nothing written; good input
writes complete results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_cli

from initsuite.core.errors import Arg, InitsuiteError
from initsuite.results import columns as C
from initsuite.results.sweep import SweepResult

SMALL = ["--activations", "linear,relu", "--depths", "3,6", "--widths", "16", "--seeds", "2",
         "--timing-repeats", "1", "--quiet"]  # fmt: skip


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--schemes", "kaimng_normal"], ["unknown scheme", "'kaiming_normal'"]),
        (["--schemes", "xavier_uniform", "--activations", "tahn"], ["'tanh'"]),
        (["--schemes", "xavier_uniform", "--dtypes", "float8"], ["unknown dtype", "float16"]),
        (["--schemes", "xavier_uniform", "--devices", "gpu"], ["unknown device", "cuda"]),
        (["--schemes", "xavier_uniform", "--depths", "0"], ["depths must be >= 1"]),
        (["--schemes", "xavier_uniform", "--widths", "0"], ["widths must be >= 1"]),
        (["--schemes", "xavier_uniform", "--batch", "0"], ["batch must be >= 1"]),
        (["--schemes", "xavier_uniform", "--seeds", "0"], ["seeds must be >= 1"]),
        (["--schemes", "xavier_uniform:gain=banana"], ["gain='banana'"]),
        (["--schemes", "xavier_uniform:gian=1"], ["'gain'"]),
        (["--schemes", "dirac"], ["does not apply"]),
        (["--schemes", "xavier_uniform", "--depths", "ten"], ["--depths", "integers"]),
    ],
    ids=[
        "unknown-scheme", "unknown-activation", "unknown-dtype", "unknown-device", "zero-depth",
        "zero-width", "zero-batch", "zero-seeds", "bad-param-value", "unknown-param",
        "conv-only-scheme", "non-integer-depth",
    ],
)  # fmt: skip
def test_bad_sweep_input_is_one_line_exit_2_and_writes_nothing(
    args: list[str], needles: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    base = ["sweep", "--out", str(out), "--quiet"]
    code, _, err = run_cli(base + args, capsys)
    assert_one_line_error(code, err, *needles)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_unavailable_cuda_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    code, _, err = run_cli(
        ["sweep", "--schemes", "normal", "--devices", "cuda:7", "--out", str(tmp_path / "o")],
        capsys,
    )
    assert_one_line_error(code, err, "'cuda:7'", "not available")
    assert not (tmp_path / "o").exists()


def test_sweep_writes_tables_and_meta(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code, _, err = run_cli(
        ["sweep", "--schemes", "kaiming_uniform:a=0.5,mode=fan_out,normal", "--out", str(out),
         *SMALL], capsys)  # fmt: skip
    assert code == 0, err
    # written in chunks as the sweep goes (initsuite.results.chunks)
    assert sorted(p.name for p in out.iterdir()) == ["chunks", "meta.json", "theory"]
    cells = SweepResult.load(out).cells
    assert list(cells.columns) == list(C.CELLS)
    # 2 schemes × 2 activations × 2 depths × 1 width × 2 seeds
    assert len(cells) == 16
    assert set(cells["scheme"]) == {"kaiming_uniform:a=0.5,mode=fan_out", "normal"}
    meta = json.loads((out / "meta.json").read_text())
    assert "command" in meta
    env = meta["environment"]
    for key in ("initsuite", "torch", "python", "cpu", "torch_threads", "git_commit", "utc_time"):
        assert key in env
    assert meta["config"]["depths"] == [3, 6]
    # no temporary directories left beside the results
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_existing_results_are_not_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert run_cli(["sweep", "--schemes", "normal", "--out", str(out), *SMALL], capsys)[0] == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, _, err = run_cli(["sweep", "--schemes", "zeros", "--out", str(out), *SMALL], capsys)
    assert_one_line_error(code, err, "holds a sweep", "--resume", "--overwrite")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    code, _, _ = run_cli(
        ["sweep", "--schemes", "zeros", "--out", str(out), "--overwrite", *SMALL], capsys
    )
    assert code == 0
    assert set(SweepResult.load(out).cells["scheme"]) == {"zeros"}


def test_all_expands_to_every_linear_scheme(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from initsuite import schemes

    out = tmp_path / "run"
    code, _, err = run_cli(
        ["sweep", "--schemes", "all", "--out", str(out), "--no-timing", *SMALL], capsys
    )
    assert code == 0, err
    cells = SweepResult.load(out).cells
    names = {s.split(":")[0] for s in cells["scheme"]}
    # "all" is torch's vocabulary: framework-qualified schemes ("keras:*") are swept by name
    meant = {n for n in schemes.list("*") if schemes.info(n).archs in (None, ("mlp",))}
    assert names == {n for n in meant if schemes.info(n).accepts_rank(2)}
    assert {"fixup", "lsuv"}.isdisjoint(names)  # residual-only, and swept by name
    assert cells["error"].isna().all()


def test_no_shared_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    for flag, shared in (([], True), (["--no-shared"], False)):
        out = tmp_path / f"run{shared}"
        code, _, err = run_cli(
            ["sweep", "--schemes", "kaiming_normal,xavier_normal", "--out", str(out),
             "--no-timing", *flag, *SMALL], capsys,
        )  # fmt: skip
        assert code == 0, err
        assert json.loads((out / "meta.json").read_text())["config"]["shared"] is shared


def test_pair_cosine_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for value, expect_nan in (("0.3", False), ("none", True)):
        out = tmp_path / f"run{value}"
        code, _, err = run_cli(
            ["sweep", "--schemes", "orthogonal", "--out", str(out), "--no-timing",
             "--pair-cosine", value, *SMALL], capsys,
        )  # fmt: skip
        assert code == 0, err
        layers = SweepResult.load(out).layers
        assert layers["cosine"].isna().all() == expect_nan
    code, _, err = run_cli(["sweep", "--schemes", "normal", "--out", str(tmp_path / "x"),
                            "--pair-cosine", "1.5", *SMALL], capsys)  # fmt: skip
    assert code == 2 and "pair_cosine" in err and not (tmp_path / "x").exists()


def test_schemes_listing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["schemes", "kaiming*"], capsys)
    assert code == 0
    assert "kaiming_normal" in out and "kaiming_uniform" in out and "xavier" not in out
    code, out, _ = run_cli(["schemes", "--json"], capsys)
    rows = json.loads(out)
    assert {r["scheme"] for r in rows} >= {"xavier_uniform", "torch_default", "lecun_normal"}
    assert {"family", "variance", "ranks", "paper", "torch"} <= set(rows[0])


def test_activations_listing_says_where_gains_come_from(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(["activations", "--json"], capsys)
    assert code == 0
    rows = {r["activation"]: r for r in json.loads(out)}
    assert rows["tanh"]["gain_source"] == "torch"
    assert rows["gelu"]["gain_source"] == "computed"


def test_report_on_missing_dir_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["report", str(tmp_path / "nope")], capsys)
    assert_one_line_error(code, err, "nope")


def test_python_dash_m_works_and_errors_without_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    ok = subprocess.run(
        [sys.executable, "-m", "initsuite", "schemes", "xavier*"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert ok.returncode == 0 and "xavier_uniform" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "initsuite", "sweep", "--schemes", "kaimng_normal",
         "--out", str(tmp_path / "o")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "Traceback" not in bad.stderr
    assert not (tmp_path / "o").exists()


def test_errors_name_arguments_as_the_commands_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An argument in a library error prints as the flag the command has, else as in Python."""
    from initsuite.results import gates
    from initsuite.studies.sweep.config import SweepConfig

    def refuse(*args: object, **kwargs: object) -> None:
        raise InitsuiteError("a ", Arg("allow_large", True), ", b ", Arg("shared", False),
                             ", c ", Arg("timing_repeats", 3), ", d ", Arg("out"), ", e ",
                             Arg("no_such_flag", 1), ", f ", Arg("jacobian", False))  # fmt: skip

    monkeypatch.setattr(SweepConfig, "build", refuse)
    code, _, err = run_cli(["sweep", "--schemes", "normal", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and err == (
        "initsuite: error: a --allow-large, b --no-shared, c --timing-repeats 3, d --out, "
        "e no_such_flag=1, f jacobian=False\n"
    )
    monkeypatch.setattr(gates, "parse_gates", refuse)  # compare has --out, not --allow-large
    code, _, err = run_cli(["compare", "a", "b", "--fail", "x"], capsys)
    assert code == 2 and err.startswith("initsuite: error: a allow_large=True, b shared=False")
    assert ", d --out, " in err

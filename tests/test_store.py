"""Tests of results on disk: round trips, refusing to overwrite, atomic replacement,
interrupted writes, damaged or incomplete directories, and that storage never needs torch."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import initsuite
from initsuite.core.errors import InitsuiteError
from initsuite.results import store
from initsuite.results.layout import LAYOUTS
from initsuite.results.sweep import SweepResult

PACKAGE = Path(initsuite.__file__).resolve().parent
TABLES = ("cells", "layers", "timing")
FILES = (*(f"{t}.parquet" for t in LAYOUTS["sweep"]), "meta.json")  # the theory tables too


@pytest.fixture(scope="module")
def result() -> SweepResult:
    """A small sweep with diverged cells (zeros → underflow), so the nullable columns hold
    both values and nulls, plus one error row."""
    res = initsuite.sweep(
        ["normal", "zeros"], ["relu", "tanh"], [2, 3], 8, seeds=2, timing_repeats=1
    )
    res.cells.loc[0, "error"] = "RuntimeError: made up for the round trip"
    div = res.cells["divergence_layer"]
    assert div.notna().any() and div.isna().any()
    return res


@pytest.fixture(scope="module")
def other() -> SweepResult:
    return initsuite.sweep("kaiming_normal", "relu", 2, 4, timing=False)


def _snapshot(path: Path) -> dict[str, tuple[bytes, int]]:
    return {f.name: (f.read_bytes(), f.stat().st_mtime_ns) for f in sorted(path.iterdir())}


def _siblings(path: Path) -> list[str]:
    """Everything next to ``path`` except ``path`` itself (temporaries would show up here)."""
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


def _assert_same(a: SweepResult, b: SweepResult) -> None:
    for t in TABLES:
        pd.testing.assert_frame_equal(getattr(a, t), getattr(b, t), check_exact=True)
    assert a.meta == b.meta


# -- round trip --------------------------------------------------------------------------------


def test_round_trip_preserves_values_and_dtypes(result: SweepResult, tmp_path: Path) -> None:
    out = tmp_path / "runs" / "first"  # parents are created
    assert result.save(out) == out
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    loaded = SweepResult.load(out)
    _assert_same(loaded, result)
    for t, cols in zip(TABLES, (initsuite.results.columns.CELLS, initsuite.results.columns.LAYERS,
                                initsuite.results.columns.TIMING), strict=True):  # fmt: skip
        df = getattr(loaded, t)
        assert tuple(df.columns) == cols
        assert df.dtypes.equals(getattr(result, t).dtypes)
    assert pd.isna(loaded.cells["divergence_layer"]).any()
    assert loaded.cells.loc[0, "error"] == "RuntimeError: made up for the round trip"
    assert json.loads((out / "meta.json").read_text()) == result.meta
    assert _siblings(out) == []


def test_save_into_empty_existing_dir(result: SweepResult, tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    result.save(out)
    _assert_same(SweepResult.load(out), result)
    assert _siblings(out) == []


# -- never overwrite by accident ---------------------------------------------------------------


def test_existing_results_are_not_overwritten(
    result: SweepResult, other: SweepResult, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result.save(out)
    (out / "notes.txt").write_text("mine")
    before = _snapshot(out)
    with pytest.raises(InitsuiteError, match="already holds results") as info:
        other.save(out)
    assert str(out) in str(info.value) and "overwrite" in str(info.value)
    assert _snapshot(out) == before
    assert _siblings(out) == []


def test_output_path_that_is_a_file(result: SweepResult, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.write_text("not a directory")
    with pytest.raises(InitsuiteError, match="not a directory"):
        result.save(out, overwrite=True)
    assert out.read_text() == "not a directory"


def test_overwrite_replaces_whole_directory(
    result: SweepResult, other: SweepResult, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    result.save(out)
    # a stale report of the old results goes too (a foreign file would be refused:
    # tests/test_trust_files.py)
    (out / "report.md").write_text("# initsuite report: stale")
    (out / "figures").mkdir()
    (out / "figures" / "std_vs_layer.png").write_bytes(b"stale")
    other.save(out, overwrite=True)
    _assert_same(SweepResult.load(out), other)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)  # the old dir is gone
    assert _siblings(out) == []  # no .run.tmp-* / .run.old-* left behind


# -- interrupted writes ------------------------------------------------------------------------


@pytest.fixture
def interrupt_second_table(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """Arm: ``DataFrame.to_parquet`` raises KeyboardInterrupt on its second call (Ctrl-C in
    the middle of a save). Returns the paths it was called with."""

    def arm() -> list[str]:
        calls: list[str] = []
        real = pd.DataFrame.to_parquet

        def to_parquet(self: pd.DataFrame, path: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(str(path))
            if len(calls) == 2:
                raise KeyboardInterrupt
            return real(self, path, *args, **kwargs)

        monkeypatch.setattr(pd.DataFrame, "to_parquet", to_parquet)
        return calls

    return arm


def test_interrupted_overwrite_keeps_previous_results(
    result: SweepResult,
    other: SweepResult,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    interrupt_second_table: Callable[[], list[str]],
) -> None:
    out = tmp_path / "run"
    result.save(out)
    before = _snapshot(out)
    calls = interrupt_second_table()
    with pytest.raises(KeyboardInterrupt):
        other.save(out, overwrite=True)
    monkeypatch.undo()
    assert len(calls) == 2  # it was the second table that was cut off
    assert _snapshot(out) == before
    _assert_same(SweepResult.load(out), result)
    assert _siblings(out) == []


def test_interrupted_first_write_leaves_nothing(
    result: SweepResult, tmp_path: Path, interrupt_second_table: Callable[[], list[str]]
) -> None:
    out = tmp_path / "run"
    calls = interrupt_second_table()
    with pytest.raises(KeyboardInterrupt):
        result.save(out)
    assert len(calls) == 2
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


# -- damaged or incomplete directories --------------------------------------------------------


@pytest.mark.parametrize("table", TABLES)
def test_truncated_parquet_names_the_file(result: SweepResult, tmp_path: Path, table: str):
    out = tmp_path / "run"
    result.save(out)
    f = out / f"{table}.parquet"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(InitsuiteError) as info:
        SweepResult.load(out)
    msg = str(info.value)
    assert str(f) in msg and "\n" not in msg
    assert info.value.__cause__ is None


def test_garbage_parquet_names_the_file(result: SweepResult, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result.save(out)
    f = out / "layers.parquet"
    f.write_bytes(b"PAR1" + b"\x00not parquet at all" * 10)
    with pytest.raises(InitsuiteError, match=r"layers\.parquet"):
        SweepResult.load(out)


@pytest.mark.parametrize("name", [f"{t}.parquet" for t in TABLES])
def test_missing_table_names_the_file(result: SweepResult, tmp_path: Path, name: str) -> None:
    out = tmp_path / "run"
    result.save(out)
    (out / name).unlink()
    with pytest.raises(InitsuiteError) as info:
        SweepResult.load(out)
    assert str(out / name) in str(info.value) and "missing" in str(info.value)


def test_missing_meta_names_the_file(result: SweepResult, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result.save(out)
    (out / "meta.json").unlink()
    with pytest.raises(InitsuiteError, match=r"meta\.json"):
        SweepResult.load(out)


def test_corrupt_meta_names_the_file(result: SweepResult, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result.save(out)
    (out / "meta.json").write_text('{"kind": "sweep", ')
    with pytest.raises(InitsuiteError, match=r"meta\.json") as info:
        SweepResult.load(out)
    assert "\n" not in str(info.value)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(InitsuiteError, match="no results directory"):
        SweepResult.load(tmp_path / "nowhere")


def test_table_lacking_a_column(result: SweepResult, tmp_path: Path) -> None:
    out = tmp_path / "run"
    tables = {
        "cells": result.cells.drop(columns="final_std"),
        "layers": result.layers,
        "timing": result.timing,
    }
    store.write(out, tables, result.meta)
    with pytest.raises(InitsuiteError, match=r"cells\.parquet") as info:
        SweepResult.load(out)
    assert "final_std" in str(info.value)


# -- atomic_write_text -------------------------------------------------------------------------


def test_atomic_write_text_replaces_content(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "report.md"
    store.atomic_write_text(target, "first\n")
    assert target.read_text() == "first\n"
    with open(target, encoding="utf-8") as held:  # a reader that opened the old file ...
        store.atomic_write_text(target, "second ünïcode\n")
        # ... still reads the old content whole: the new file was renamed into place, the old
        # one was never truncated or rewritten in place.
        assert held.read() == "first\n"
    assert target.read_text(encoding="utf-8") == "second ünïcode\n"
    assert list(target.parent.iterdir()) == [target]


def test_atomic_write_text_failure_keeps_old_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.md"
    store.atomic_write_text(target, "old\n")

    def fail(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        store.atomic_write_text(target, "new\n")
    monkeypatch.undo()
    assert target.read_text() == "old\n"
    assert list(tmp_path.iterdir()) == [target]  # the temporary file was removed


# -- no torch in storage -----------------------------------------------------------------------


def test_storage_loads_and_works_with_torch_blocked(tmp_path: Path) -> None:
    """With ``import torch`` made to fail, save and load every Result class."""
    code = f"""
import sys
sys.modules["torch"] = None  # any "import torch" now raises ImportError
from initsuite.results import columns as C, store
from initsuite.results.probe import ProbeResult
from initsuite.results.sweep import SweepResult
from initsuite.results.training import TrainingResult
from initsuite.results.tutorial import TutorialResult
root = {str(tmp_path)!r}
for cls, tables in ((SweepResult, (C.CELLS, C.LAYERS, C.TIMING)),
                    (TrainingResult, (C.TRAINING, C.TRAINING_RUNS)), (ProbeResult, (C.PROBE,)),
                    (TutorialResult, (C.TUTORIAL, C.TUTORIAL_LAYERS))):
    res = cls(*(C.frame(cols, []) for cols in tables), {{"kind": cls.__name__}})
    back = cls.load(res.save(root + "/" + cls.__name__))
    assert back.meta == {{"kind": cls.__name__}}, back.meta
    assert list(vars(back).values())[0].columns.tolist() == list(tables[0])
assert sys.modules["torch"] is None
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_stored_tables_reach_arrow_as_memory_arrow_owns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading a run and resuming its chunks hand arrow only its own buffers, never a Python
    file object: arrow's scanner releases its source on a thread of its own, and a Python
    object released there while the interpreter exits aborts the process after its work
    (one run in about 50 of the child above did, "terminate called without an active
    exception")."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sources: list[object] = []
    read_table = pq.read_table

    def spy(source: object, *args: Any, **kwargs: Any) -> Any:
        sources.append(source)
        return read_table(source, *args, **kwargs)

    grid = dict(schemes="kaiming_normal", activations="tanh", depths=[2, 3], widths=[4, 6],
                timing=False)  # fmt: skip
    out = tmp_path / "run"
    initsuite.sweep(**grid, out_dir=out)
    monkeypatch.setattr(pq, "read_table", spy)
    initsuite.sweep(**grid, out_dir=out, resume=True)  # reads every chunk's tables
    SweepResult.load(out)
    assert len(sources) >= 4
    for source in sources:
        assert isinstance(source, pa.NativeFile), type(source)
        assert not isinstance(source, pa.PythonFile), type(source)


# -- bias laws: directories written before they had names ------------------------------------


def _set_bias(path: Path, value: object) -> None:
    meta = json.loads((path / "meta.json").read_text())
    meta["config"]["bias"] = value
    (path / "meta.json").write_text(json.dumps(meta))


def test_a_sweep_stored_with_bias_true_loads_as_torch_default(tmp_path: Path) -> None:
    """Sweeps stored ``"bias": true`` (nn.Linear's default bias) before laws had names: they
    load with the law's name, resume (same cell keys) and compare equal to a new sweep."""
    grid = dict(schemes="kaiming_normal", activations="tanh", depths=[2, 3], widths=4,
                timing=False, bias="torch_default")  # fmt: skip
    new = initsuite.sweep(**grid)
    assert new.meta["config"]["bias"] == "torch_default" and new.cells["bias"].all()
    whole = new.save(tmp_path / "whole")
    initsuite.sweep(**grid, out_dir=tmp_path / "chunked")
    for path in (whole, tmp_path / "chunked"):
        _set_bias(path, True)
        old = SweepResult.load(path)
        assert old.meta["config"]["bias"] == "torch_default"
        assert initsuite.compare(old, new, gates="final_std:0%,divergence_layer:0,missing:0").passed
    resumed = initsuite.sweep(**grid, out_dir=tmp_path / "chunked", resume=True)
    assert resumed.meta["resumed_cells"] == len(new.cells)
    _set_bias(whole, False)  # now contradicts its cells and its fingerprint (issue 27)
    with pytest.raises(InitsuiteError, match=r"config\.bias = null but a fingerprint with bias"):
        SweepResult.load(whole)
    plain = initsuite.sweep(**{**grid, "bias": None}).save(tmp_path / "plain")
    _set_bias(plain, False)
    assert SweepResult.load(plain).meta["config"]["bias"] is None


@pytest.mark.parametrize(
    ("bias", "message"),
    [
        (True, "bias must name its law ('torch_default', None), got True; did you mean "
               "bias='torch_default'?"),
        ("zeros", "sweep does not draw bias 'zeros' (choose from 'torch_default', None)"),
        ("torch-default", "unknown bias law 'torch-default'; did you mean 'torch_default'?"),
    ],
)  # fmt: skip
def test_a_sweep_refuses_a_bias_that_names_no_law_it_draws(bias: object, message: str) -> None:
    with pytest.raises(InitsuiteError) as info:
        initsuite.sweep("normal", "relu", 2, 4, timing=False, bias=bias)  # type: ignore[arg-type]
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_cli_sweep_bias_flag_names_the_torch_default(tmp_path: Path, capsys) -> None:
    from initsuite.cli import main

    base = ["sweep", "--schemes", "normal", "--depths", "2", "--widths", "4", "--no-timing",
            "--quiet"]  # fmt: skip
    assert main([*base, "--bias", "--out", str(tmp_path / "a")]) == 0
    assert SweepResult.load(tmp_path / "a").meta["config"]["bias"] == "torch_default"
    assert main([*base, "--bias", "zeros", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "sweep does not draw bias 'zeros'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()


def test_results_get_ordinary_permissions(result: SweepResult, tmp_path: Path) -> None:
    """Temporary files are created 0600; the published ones follow the umask like open()."""
    mask = os.umask(0o022)
    try:
        out = result.save(tmp_path / "run")
        store.atomic_write_text(tmp_path / "note.txt", "hi")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    for f in out.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f.name
    assert stat.S_IMODE((tmp_path / "note.txt").stat().st_mode) == 0o644


def test_results_from_before_the_theory_columns_still_load(
    result: SweepResult, tmp_path: Path
) -> None:
    """A directory written before the optional columns existed loads with them empty."""
    import pyarrow  # noqa: F401 - parquet engine

    out = result.save(tmp_path / "old")
    cells = pd.read_parquet(out / "cells.parquet").drop(columns=["theory_chi1", "jac_sv2_mean"])
    cells.to_parquet(out / "cells.parquet", index=False)
    layers = pd.read_parquet(out / "layers.parquet").drop(columns=["cosine", "theory_std"])
    layers.to_parquet(out / "layers.parquet", index=False)
    back = SweepResult.load(out)
    assert back.cells["theory_chi1"].isna().all() and back.cells["jac_sv2_mean"].isna().all()
    assert back.layers["cosine"].isna().all() and back.layers["theory_std"].isna().all()
    dropped = ["theory_chi1", "jac_sv2_mean"]
    pd.testing.assert_frame_equal(back.cells.drop(columns=dropped),
                                  result.cells.drop(columns=dropped))  # fmt: skip
    # a core column is still required
    cells.drop(columns=["final_std"]).to_parquet(out / "cells.parquet", index=False)
    with pytest.raises(InitsuiteError, match="final_std"):
        SweepResult.load(out)


def test_the_git_commit_is_read_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sweep's meta.json records the commit; git runs for the first only (the code
    running is what was imported, so the commit read then still describes it)."""
    from initsuite.core import env

    calls: list[list[str]] = []
    real = subprocess.run

    def fake_run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if cmd[0] != "git":  # platform's own calls (uname -p)
            return real(cmd, **kwargs)
        calls.append(cmd)
        out = "0123abc\n" if cmd[1] == "rev-parse" else " M initsuite/cli.py\n"
        return subprocess.CompletedProcess(cmd, 0, stdout=out, stderr="")

    monkeypatch.setattr(env.subprocess, "run", fake_run)
    env._git_commit.cache_clear()
    try:
        metas = [env.environment() for _ in range(3)]
    finally:
        env._git_commit.cache_clear()  # later tests read the real commit again
    assert [c[1] for c in calls] == ["rev-parse", "status"]  # git ran for the first only
    assert [m["git_commit"] for m in metas] == ["0123abc-dirty"] * 3

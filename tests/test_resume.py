"""Append-only results directories: chunks, --resume, kills, concurrent writers, damage, and
the Dask executor. Each claim is checked against a clean run of the same grid."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import initsuite
from initsuite.cli import main
from initsuite.core.errors import InitsuiteError
from initsuite.results import chunks

# shallow (each group is quick), but six groups: a kill lands between chunks, a resume skips
# some and runs others, two writers and two Dask workers share out the rest
GRID = dict(schemes=["kaiming_normal", "normal", "orthogonal", "torch_default"],
            activations=["relu", "tanh"], depths=[3, 8], widths=[16, 32, 48], seeds=2,
            timing=False)  # fmt: skip
CLI_GRID = ["--schemes", "kaiming_normal,normal,orthogonal,torch_default", "--activations",
            "relu,tanh", "--depths", "3,8", "--widths", "16,32,48", "--seeds", "2",
            "--no-timing", "--quiet"]  # fmt: skip
N_GROUPS = 3 * 2  # widths × seeds


@pytest.fixture(scope="module")
def clean() -> initsuite.SweepResult:
    return initsuite.sweep(**GRID)


def assert_same_tables(a: initsuite.SweepResult, b: initsuite.SweepResult) -> None:
    pd.testing.assert_frame_equal(a.cells, b.cells)
    pd.testing.assert_frame_equal(a.layers, b.layers)


def _run_cli(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "initsuite", "sweep", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def test_a_chunked_run_equals_an_in_memory_run(clean, tmp_path: Path) -> None:
    res = initsuite.sweep(**GRID, out_dir=tmp_path / "run")
    assert_same_tables(res, clean)
    assert len(list((tmp_path / "run" / chunks.CHUNKS).iterdir())) == N_GROUPS
    assert res.cells["cell_key"].is_unique
    assert json.loads((tmp_path / "run" / "meta.json").read_text())["complete"] is True


def test_resume_computes_only_what_is_missing(clean, tmp_path: Path) -> None:
    out = tmp_path / "run"
    initsuite.sweep(**GRID, out_dir=out)
    gone = sorted((out / chunks.CHUNKS).iterdir())[:2]
    for d in gone:
        for f in d.iterdir():
            f.unlink()
        d.rmdir()
    res = initsuite.sweep(**GRID, out_dir=out, resume=True)
    assert_same_tables(res, clean)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["resumed_cells"] == clean.cells.shape[0] * (N_GROUPS - 2) // N_GROUPS
    # a resume with nothing left to do computes nothing and changes nothing
    before = sorted(p.name for p in (out / chunks.CHUNKS).iterdir())
    again = initsuite.sweep(**GRID, out_dir=out, resume=True)
    assert_same_tables(again, clean)
    assert sorted(p.name for p in (out / chunks.CHUNKS).iterdir()) == before


def test_a_killed_sweep_resumes_to_the_clean_tables(clean, tmp_path: Path) -> None:
    """Kill the CLI process (SIGKILL: no cleanup at all) once it has stored a first chunk,
    then resume: the same tables as a clean run, no duplicates, nothing lost."""
    out = tmp_path / "run"
    proc = _run_cli([*CLI_GRID, "--out", str(out)])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        root = out / chunks.CHUNKS
        if root.is_dir() and any(not p.name.startswith(".") for p in root.iterdir()):
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=120)
    stored = [p for p in (out / chunks.CHUNKS).iterdir() if not p.name.startswith(".")]
    assert 1 <= len(stored) <= N_GROUPS
    partial = initsuite.SweepResult.load(out)  # a partial directory reads cleanly
    assert partial.cells["cell_key"].is_unique
    code = main(["sweep", *CLI_GRID, "--out", str(out), "--resume"])
    assert code == 0
    assert_same_tables(initsuite.SweepResult.load(out), clean)


def test_ctrl_c_stops_a_sweep_that_then_resumes_to_the_clean_tables(
    clean, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real SIGINT (Ctrl-C) to the process running the CLI, just after its first chunk
    is stored: exit 130 and one line saying to resume; the resume gives the clean tables."""
    out = tmp_path / "run"
    real = chunks.write_chunk

    def write_then_ctrl_c(*args: Any, **kwargs: Any) -> bool:
        written = real(*args, **kwargs)
        if (out / chunks.CHUNKS).is_dir():  # the first cells' chunk (the theory's came first)
            signal.raise_signal(signal.SIGINT)
        return written

    monkeypatch.setattr(chunks, "write_chunk", write_then_ctrl_c)
    # Python's own handler, as in `initsuite sweep` run from a shell (a test runner's worker
    # may have replaced it)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = main(["sweep", *CLI_GRID, "--out", str(out)])
    finally:
        signal.signal(signal.SIGINT, previous)
        monkeypatch.undo()
    assert code == 130
    stored = [p for p in (out / chunks.CHUNKS).iterdir() if not p.name.startswith(".")]
    assert len(stored) == 1
    partial = initsuite.SweepResult.load(out)
    assert partial.meta["complete"] is False and partial.cells["cell_key"].is_unique
    assert len(partial.cells) == len(clean.cells) // N_GROUPS
    assert main(["sweep", *CLI_GRID, "--out", str(out), "--resume"]) == 0
    assert_same_tables(initsuite.SweepResult.load(out), clean)


def test_two_concurrent_writers_leave_a_consistent_store(clean, tmp_path: Path) -> None:
    """Two resumes of one grown grid at once: a second process, and this one once the other
    has started (its meta.json names the grown grid); they race for the same chunks."""
    out = tmp_path / "run"
    out.mkdir()
    main(["sweep", *CLI_GRID, "--depths", "3", "--widths", "16", "--out", str(out)])
    proc = _run_cli([*CLI_GRID, "--out", str(out), "--resume"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if json.loads((out / "meta.json").read_text())["complete"] is False:
            break  # the other writer has started the grown grid
        time.sleep(0.005)
    assert proc.poll() is None, "the other writer finished before this one started"
    assert main(["sweep", *CLI_GRID, "--out", str(out), "--resume"]) == 0
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    res = initsuite.SweepResult.load(out)
    assert_same_tables(res, clean)
    assert not res.cells.duplicated(list(initsuite.results.columns.CELL_KEYS)).any()


def test_damaged_and_foreign_files_are_named(tmp_path: Path) -> None:
    out = tmp_path / "run"
    initsuite.sweep(**{**GRID, "widths": [16], "seeds": 1}, out_dir=out)
    (chunk,) = list((out / chunks.CHUNKS).iterdir())
    (chunk / "cells.parquet").write_bytes(b"not parquet")
    with pytest.raises(InitsuiteError, match=r"cells\.parquet.*not a readable parquet"):
        initsuite.SweepResult.load(out)
    (chunk / "cells.parquet").unlink()
    with pytest.raises(InitsuiteError, match=r"lacks \['cells'\]"):
        initsuite.SweepResult.load(out)
    chunk.rename(chunk.with_name("notes"))
    with pytest.raises(InitsuiteError, match=r"notes.*not a chunk written by initsuite"):
        initsuite.SweepResult.load(out)
    # and through the CLI: one line, exit 2
    code = main(["report", str(out)])
    assert code == 2


def test_a_leftover_temporary_chunk_is_ignored(clean, tmp_path: Path) -> None:
    out = tmp_path / "run"
    initsuite.sweep(**GRID, out_dir=out)
    tmp = out / chunks.CHUNKS / ".tmp-0123-abc"  # a writer killed mid-write
    tmp.mkdir()
    (tmp / "cells.parquet").write_bytes(b"half a file")
    res = initsuite.SweepResult.load(out)
    assert len(res.cells) == len(clean.cells) and res.cells["cell_key"].is_unique
    assert_same_tables(res, clean)
    fingerprint = json.dumps(res.meta["fingerprint"])
    assert chunks.stored_keys(out, fingerprint) == set(clean.cells["cell_key"])


def test_resume_refuses_other_settings_and_plain_reruns_refuse_to_mix(tmp_path: Path) -> None:
    out = tmp_path / "run"
    small = ["--schemes", "kaiming_normal", "--depths", "3", "--widths", "8", "--no-timing",
             "--quiet", "--out", str(out)]  # fmt: skip
    assert main(["sweep", *small]) == 0
    assert main(["sweep", *small, "--resume", "--pair-cosine", "0.9"]) == 2  # other settings
    assert main(["sweep", *small]) == 2  # no --resume: refuses to mix into it
    assert main(["sweep", *small, "--resume", "--overwrite"]) == 2


def test_cells_are_keyed_by_configuration_and_versions(tmp_path: Path) -> None:
    a = initsuite.sweep("kaiming_normal", "relu", 3, 8, timing=False)
    b = initsuite.sweep("kaiming_normal", "relu", 3, 8, timing=False, pair_cosine=0.9)
    c = initsuite.sweep("kaiming_normal", "relu", 3, 8, timing=False)
    assert a.cells["cell_key"].iloc[0] == c.cells["cell_key"].iloc[0]
    assert a.cells["cell_key"].iloc[0] != b.cells["cell_key"].iloc[0]


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[Any]:
    """One local cluster (two worker processes) for the module's Dask tests: starting one,
    and importing torch in each worker, is most of what a Dask test costs."""
    pytest.importorskip("dask.distributed")
    from initsuite.studies.sweep.executors import DaskExecutor

    with DaskExecutor(workers=2) as ex:
        yield ex


def test_dask_local_cluster_sweep_equals_the_local_one(
    clean, dask_cluster: Any, tmp_path: Path
) -> None:
    ex = dask_cluster
    res = initsuite.sweep(**GRID, out_dir=tmp_path / "run", executor=ex)
    assert_same_tables(res, clean)
    root = tmp_path / "run" / chunks.CHUNKS
    names = sorted(p.name for p in root.iterdir())
    assert len(names) == N_GROUPS  # one chunk per group, written by the workers
    # resume through the cluster after losing a chunk: only it is recomputed, same name
    victim = root / names[0]
    kept = {n: (root / n / "cells.parquet").stat().st_mtime_ns for n in names[1:]}
    for f in victim.iterdir():
        f.unlink()
    victim.rmdir()
    res = initsuite.sweep(**GRID, out_dir=tmp_path / "run", executor=ex, resume=True)
    assert_same_tables(res, clean)
    assert sorted(p.name for p in root.iterdir()) == names
    assert {n: (root / n / "cells.parquet").stat().st_mtime_ns for n in names[1:]} == kept


def test_cli_dask_executor(dask_cluster: Any, tmp_path: Path) -> None:
    """--executor dask with --scheduler: the CLI's sweep runs on that cluster's workers (the
    local cluster of no --scheduler is DaskExecutor's default, as dask_cluster starts it)."""
    out = tmp_path / "run"
    address = dask_cluster.client.scheduler.address
    code = main(["sweep", *CLI_GRID, "--widths", "16", "--executor", "dask", "--scheduler",
                 address, "--out", str(out)])  # fmt: skip
    assert code == 0
    assert len(initsuite.SweepResult.load(out).cells) == 4 * 2 * 2 * 2
    assert main(["sweep", *CLI_GRID, "--scheduler", "tcp://x:1", "--out",
                 str(tmp_path / "b")]) == 2  # fmt: skip


def test_unreachable_scheduler_is_one_clear_error() -> None:
    pytest.importorskip("dask.distributed")
    from initsuite.studies.sweep.executors import DaskExecutor

    with pytest.raises(InitsuiteError, match="cannot reach the Dask scheduler"):
        DaskExecutor("tcp://127.0.0.1:9", timeout="1s")


@pytest.mark.parametrize(
    ("address", "why"),
    [("not a url", "missing port number"), ("tcp://host", "missing port number"),
     ("host:abc", "invalid literal"), ("foo://h:1", "unknown address scheme 'foo'"),
     (":8786", "names no host"), ("tcp://h:99999", "names port 99999, outside 1 to 65535")],
)  # fmt: skip
def test_a_malformed_scheduler_address_is_refused_before_connecting(
    address: str, why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One line naming --scheduler and the forms Dask takes, exit 2, nothing written (Dask's
    own ValueError escaped as a traceback, exit 1); the forms the scheduler prints pass."""
    pytest.importorskip("dask.distributed")
    from initsuite.studies.sweep.executors import _check_address

    out = tmp_path / "o"
    code = main(["sweep", *CLI_GRID, "--executor", "dask", "--scheduler", address,
                 "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"initsuite: error: --scheduler {address!r} ") and why in err, err
    assert "tcp://HOST:PORT or HOST:PORT" in err and not out.exists()
    for valid in ("tcp://10.0.0.5:8786", "10.0.0.5:8786", "tcp://[::1]:8786", "tls://h:1",
                  "ws://h:1"):  # fmt: skip
        _check_address(valid)


def test_a_grown_grid_stores_only_the_new_cells(tmp_path: Path) -> None:
    """Resuming with more schemes recomputes the groups they join but stores only the new
    cells: the old ones keep their first rows, and the directory holds each cell once."""
    out = tmp_path / "run"
    small = {**GRID, "schemes": ["kaiming_normal"], "widths": [16], "seeds": 1}
    first = initsuite.sweep(**small, out_dir=out)
    grown = initsuite.sweep(**{**small, "schemes": ["kaiming_normal", "orthogonal"]}, out_dir=out,
                            resume=True)  # fmt: skip
    root = out / chunks.CHUNKS
    per_chunk = [len(pd.read_parquet(d / "cells.parquet")) for d in root.iterdir()]
    assert sorted(per_chunk) == [len(first.cells)] * 2  # the new chunk: orthogonal's cells only
    old = grown.cells[grown.cells["scheme"] == "kaiming_normal"].reset_index(drop=True)
    pd.testing.assert_frame_equal(old, first.cells)
    assert not grown.layers.duplicated([*initsuite.results.columns.CELL_KEYS, "layer"]).any()


def test_a_resume_that_grows_the_grid_times_what_is_new(tmp_path: Path) -> None:
    """A resume that adds a scheme and a width times them (the init_ms gates and the timing
    figure read every scheme and width of meta.json's grid); what was timed keeps its rows,
    and a resume with nothing new times nothing."""
    out = tmp_path / "run"
    small = {**GRID, "schemes": ["kaiming_normal"], "activations": ["tanh"], "depths": [3],
             "widths": [16], "seeds": 1, "timing": True, "timing_repeats": 1}  # fmt: skip
    grown = {**small, "schemes": ["kaiming_normal", "orthogonal"], "widths": [16, 32]}
    first = initsuite.sweep(**small, out_dir=out)
    res = initsuite.sweep(**grown, out_dir=out, resume=True)
    assert res.meta["config"]["timing"] is True
    keys = set(zip(res.timing["scheme"], res.timing["width"], strict=True))
    assert keys == {(s, w) for s in grown["schemes"] for w in grown["widths"]}
    old = res.timing[(res.timing["scheme"] == "kaiming_normal") & (res.timing["width"] == 16)]
    pd.testing.assert_frame_equal(old.reset_index(drop=True), first.timing)
    stored = sorted(p.name for p in (out / chunks.CHUNKS).iterdir())
    again = initsuite.sweep(**grown, out_dir=out, resume=True)
    assert sorted(p.name for p in (out / chunks.CHUNKS).iterdir()) == stored
    pd.testing.assert_frame_equal(again.timing, res.timing)


def test_resume_and_executor_need_a_directory() -> None:
    with pytest.raises(InitsuiteError, match="give out_dir="):
        initsuite.sweep("kaiming_normal", "relu", 3, 8, timing=False, resume=True)
    with pytest.raises(InitsuiteError, match="needs an output directory"):
        initsuite.sweep("kaiming_normal", "relu", 3, 8, timing=False, executor=object())


# -- meta.json and the theory tables: written once per state change ----------------------------


@pytest.fixture
def meta_writes(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Every meta.json written (parsed), in order."""
    from initsuite.results import store

    written: list[dict] = []
    real = store.atomic_write_text

    def spy(path: Any, text: str) -> Any:
        if Path(path).name == "meta.json":
            written.append(json.loads(text))
        return real(path, text)

    monkeypatch.setattr(store, "atomic_write_text", spy)
    return written


def test_meta_json_is_written_once_per_state_change(
    tmp_path: Path, meta_writes: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started (incomplete, naming its theory chunk) and finished: twice for a sweep, from the
    CLI too (its command recorded in both); a resume of the same grid only finishes it."""
    out = tmp_path / "run"
    small = ["--schemes", "kaiming_normal", "--activations", "relu", "--depths", "3",
             "--widths", "8", "--no-timing", "--quiet", "--out", str(out)]  # fmt: skip
    assert main(["sweep", *small]) == 0
    assert [m["complete"] for m in meta_writes] == [False, True]
    started, finished = meta_writes
    assert started["theory_chunk"] == finished["theory_chunk"]
    assert started["command"] == finished["command"] == " ".join(["initsuite", "sweep", *small])
    assert "environment" in finished and "environment" not in started
    assert json.loads((out / "meta.json").read_text()) == finished
    meta_writes.clear()
    assert main(["sweep", *small, "--resume"]) == 0
    assert [m["complete"] for m in meta_writes] == [True]


def test_a_resume_that_grows_the_grid_stores_the_theory_of_the_new_grid(
    tmp_path: Path, meta_writes: list[dict]
) -> None:
    """The phase points depend on the whole grid (its schemes, its largest width): a grown
    grid gets a new theory chunk, named by a new meta.json before any of its cells run, and
    the directory then reads as a fresh sweep of the grown grid would."""
    out = tmp_path / "run"
    small = {**GRID, "schemes": ["kaiming_normal"], "widths": [16], "seeds": 1}
    grown = {**small, "schemes": ["kaiming_normal", "orthogonal"], "widths": [16, 32]}
    first = initsuite.sweep(**small, out_dir=out)
    meta_writes.clear()
    res = initsuite.sweep(**grown, out_dir=out, resume=True)
    fresh = initsuite.sweep(**grown)
    for name in ("theory", "phase_points", "phase_grid"):
        pd.testing.assert_frame_equal(getattr(res, name), getattr(fresh, name), check_exact=True)
    assert [m["complete"] for m in meta_writes] == [False, True]
    assert meta_writes[0]["theory_chunk"] != first.meta["theory_chunk"]
    theory = sorted(p.name for p in (out / chunks.THEORY_DIR).iterdir())
    assert theory == sorted([first.meta["theory_chunk"], res.meta["theory_chunk"]])
    assert set(res.phase_points["width"]) == {32}


def test_a_sweep_killed_before_its_theory_chunk_resumes(
    clean, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between its first meta.json and its theory chunk: the directory reads as an
    unfinished sweep without theory tables, and a resume stores them and every cell."""
    out = tmp_path / "run"

    class Killed(BaseException):
        pass

    def killed(*args: Any, **kwargs: Any) -> None:
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(chunks, "write_chunk", killed)
        with pytest.raises(Killed):
            initsuite.sweep(**GRID, out_dir=out)
    assert sorted(p.name for p in out.iterdir()) == ["meta.json"]
    half = initsuite.SweepResult.load(out)
    assert half.meta["complete"] is False and half.cells.empty and half.phase_grid.empty
    res = initsuite.sweep(**GRID, out_dir=out, resume=True)
    assert_same_tables(res, clean)
    pd.testing.assert_frame_equal(res.phase_points, clean.phase_points, check_exact=True)
    # a finished sweep whose theory chunk went missing is damaged, and says so
    (out / chunks.THEORY_DIR / res.meta["theory_chunk"] / "theory.parquet").unlink()
    with pytest.raises(InitsuiteError, match="lacks"):
        initsuite.SweepResult.load(out)
    shutil.rmtree(out / chunks.THEORY_DIR / res.meta["theory_chunk"])
    with pytest.raises(InitsuiteError, match=r"names the theory chunk .* a chunk is missing"):
        initsuite.SweepResult.load(out)

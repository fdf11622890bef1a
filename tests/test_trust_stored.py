"""Trust in stored data (issue 27, items 9, 11, 13 and 17, and the stored-data messages): a
chunk must belong to its sweep, every stored value must fit the schema and the grid meta.json
describes, compare refuses an unfinished sweep as report does, no stored file hangs a reader,
and a directory of another kind is named as such. Each test damages a copy of a tiny stored
sweep the way a careless or hostile user would; the clean load is the truth."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from helpers import load_error, run_cli

import initsuite
from initsuite.core.errors import InitsuiteError
from initsuite.results import chunks
from initsuite.results.grid import CONFIG
from initsuite.results.reading import MAX_JSON_BYTES, MAX_JSON_DEPTH
from initsuite.results.sweep import SweepResult
from initsuite.studies.sweep.config import SweepConfig

# two groups (widths 4 and 8): two chunks of two schemes × two depths
SMALL: dict[str, Any] = dict(schemes=["kaiming_normal", "normal"], activations=["relu"],
                             depths=[2, 3], widths=[4, 8], seeds=1, timing=False)  # fmt: skip
N_CELLS = 8


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete chunked sweep, written once; tests damage copies of it."""
    out = tmp_path_factory.mktemp("stored") / "run"
    initsuite.sweep(**SMALL, out_dir=out)
    return out


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same grid run with bias and a draw of its own per scheme (issue 27, item 9)."""
    out = tmp_path_factory.mktemp("other") / "run"
    initsuite.sweep(**SMALL, bias="torch_default", shared=False, out_dir=out)
    return out


@pytest.fixture
def run_dir(stored: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(stored, tmp_path / "run"))


@pytest.fixture(scope="module")
def stored_whole(stored: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same sweep written whole (``save()``)."""
    return SweepResult.load(stored).save(tmp_path_factory.mktemp("whole") / "run")


@pytest.fixture
def whole(stored_whole: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(stored_whole, tmp_path / "whole"))


def _chunk(run: Path, i: int = 0) -> Path:
    return sorted((run / chunks.CHUNKS).iterdir())[i]


def _meta(run: Path) -> dict[str, Any]:
    return json.loads((run / "meta.json").read_text())


def _write_meta(run: Path, meta: dict[str, Any]) -> None:
    (run / "meta.json").write_text(json.dumps(meta))


def _edit_chunk(entry: Path, table: str, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    """Change a chunk's table and recompute its manifest to match, as a careful forger
    would: the checksum no longer tells."""
    f = entry / f"{table}.parquet"
    df = change(pd.read_parquet(f))
    df.to_parquet(f, index=False)
    manifest = json.loads((entry / chunks.MANIFEST).read_text())
    columns = {str(c): str(d) for c, d in df.dtypes.items()}
    digest = hashlib.sha256(f.read_bytes()).hexdigest()
    manifest["tables"][table] = {"rows": len(df), "sha256": digest, "columns": columns}
    if table == "cells":
        manifest["cell_keys"] = sorted(df["cell_key"].astype(str))
    (entry / chunks.MANIFEST).write_text(json.dumps(manifest))


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(root.rglob("*"))}  # fmt: skip


def _cli_refuses(args: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    code, out, err = run_cli(args, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- item 9: a chunk must prove it belongs to its sweep -----------------------------------------


def test_every_manifest_carries_the_fingerprint_of_its_sweep(stored: Path) -> None:
    fingerprint = _meta(stored)["fingerprint"]
    entries = [*(stored / chunks.CHUNKS).iterdir(), *(stored / chunks.THEORY_DIR).iterdir()]
    assert len(entries) == 3
    for entry in entries:
        manifest = json.loads((entry / chunks.MANIFEST).read_text())
        assert manifest["format"] == 2 and manifest["fingerprint"] == fingerprint


def test_a_chunk_copied_from_another_sweep_is_refused(
    run_dir: Path, other: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The audit's case: a chunk of the same grid run with --bias --no-shared, copied into a
    complete sweep, loaded as complete with the other run's numbers."""
    foreign = _chunk(other)
    shutil.copytree(foreign, run_dir / chunks.CHUNKS / foreign.name)
    msg = load_error(run_dir)
    assert f"chunk {str(run_dir / chunks.CHUNKS / foreign.name)!r}" in msg
    assert "bias=true" in msg and "bias=false" in msg and "another sweep" in msg
    before = _snapshot(run_dir)
    for args in (["report", str(run_dir), "--out", str(tmp_path / "rep")],
                 ["compare", str(run_dir), str(run_dir)]):  # fmt: skip
        _cli_refuses(args, capsys, foreign.name, "another sweep")
    with pytest.raises(InitsuiteError, match="another sweep"):  # resume neither
        initsuite.sweep(**SMALL, out_dir=run_dir, resume=True)
    assert _snapshot(run_dir) == before and not (tmp_path / "rep").exists()


def test_two_chunks_holding_one_cell_with_different_values_are_refused(run_dir: Path) -> None:
    twin = run_dir / chunks.CHUNKS / ("f" * 24)
    shutil.copytree(_chunk(run_dir), twin)
    # an exact copy is what two overlapping writers leave: the cells load once
    loaded = SweepResult.load(run_dir)
    assert len(loaded.cells) == N_CELLS and loaded.cells["cell_key"].is_unique
    _edit_chunk(twin, "cells", lambda df: df.assign(final_std=df["final_std"] * 3))
    msg = load_error(run_dir)
    assert "with different values" in msg and str(twin / "cells.parquet") in msg


def test_a_manifest_of_format_1_is_refused_as_older(run_dir: Path) -> None:
    f = _chunk(run_dir) / chunks.MANIFEST
    manifest = json.loads(f.read_text())
    del manifest["fingerprint"]
    f.write_text(json.dumps({**manifest, "format": 1}))
    msg = load_error(run_dir)
    assert str(f) in msg and "format 1" in msg and "older initsuite" in msg


# -- item 13: stored values checked against the schema and the grid meta.json describes ----------

CHUNK_EDITS: dict[str, tuple[str, Callable[[pd.DataFrame], pd.DataFrame], str]] = {
    "depth_outside_grid": ("cells", lambda df: df.assign(depth=df["depth"] + 10),
                           "which the grid of"),
    "duplicated_row": ("cells", lambda df: pd.concat(
        [df, df.iloc[:1].assign(final_std=df["final_std"].iloc[0] * 2)]), "holds two rows of"),
    "negative_std": ("cells", lambda df: df.assign(final_std=-5.0),
                     "'final_std'"),
    "negative_layer_std": ("layers", lambda df: df.assign(std=df["std"].where(df.index != 1, -1.0)),
                           "'std'"),
    "layer_past_depth": ("layers", lambda df: df.assign(layer=df["layer"] + 5), "layer"),
    "extra_column": ("cells", lambda df: df.assign(planted=1.0), "'planted'"),
}  # fmt: skip


@pytest.mark.parametrize("edit", sorted(CHUNK_EDITS))
def test_an_edited_chunk_with_a_recomputed_manifest_is_refused(run_dir: Path, edit: str) -> None:
    table, change, needle = CHUNK_EDITS[edit]
    _edit_chunk(_chunk(run_dir), table, change)
    msg = load_error(run_dir)
    assert str(_chunk(run_dir) / f"{table}.parquet") in msg and needle in msg


@pytest.mark.parametrize("edit", ["depth_outside_grid", "duplicated_row", "negative_std"])
def test_a_table_written_whole_is_checked_alike(whole: Path, edit: str) -> None:
    table, change, needle = CHUNK_EDITS[edit]
    f = whole / f"{table}.parquet"
    change(pd.read_parquet(f)).to_parquet(f, index=False)
    msg = load_error(whole)
    assert str(f) in msg and needle in msg


META_EDITS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "other_schemes": (lambda m: m["config"].update(schemes=["orthogonal", "lecun_normal"]),
                      "which the grid of"),
    "other_depths": (lambda m: m["config"].update(depths=[5, 6]), "depth 2"),
    "more_schemes": (lambda m: m["config"].update(schemes=["kaiming_normal", "normal", "x"]),
                     "its config's grid 12"),
    "widths_a_string": (lambda m: m["config"].update(widths="16"), "config.widths"),
    "depths_strings": (lambda m: m["config"].update(depths=["2", "3"]), "config.depths"),
    "depth_twice": (lambda m: m["config"].update(depths=[2, 2]), "config.depths"),
    "shared_a_string": (lambda m: m["config"].update(shared="yes"), "config.shared"),
    "no_bias_said_of_bias": (lambda m: m["config"].update(bias="torch_default"),
                             "config.bias"),
    "config_a_string": (lambda m: m.update(config="oops"), "config = \"oops\""),
    "environment_a_list": (lambda m: m.update(environment=[1]), "environment = [1]"),
    "cpu_a_number": (lambda m: m["environment"].update(cpu=5), "environment.cpu = 5"),
    "gpus_strings": (lambda m: m["environment"].update(gpus=["x"]), "environment.gpus[0]"),
}  # fmt: skip


@pytest.mark.parametrize("edit", sorted(META_EDITS))
def test_a_meta_json_that_contradicts_its_data_or_types_is_refused(
    run_dir: Path, edit: str
) -> None:
    change, needle = META_EDITS[edit]
    meta = _meta(run_dir)
    change(meta)
    _write_meta(run_dir, meta)
    msg = load_error(run_dir)
    assert str(run_dir / "meta.json") in msg and needle in msg


def test_a_grid_listing_what_no_stored_cell_has_is_refused_written_whole(whole: Path) -> None:
    """Written whole (a subset of cells may be saved through the API), a complete sweep's
    configuration must still name only what its cells ran."""
    meta = _meta(whole)
    meta["config"]["depths"] = [2, 3, 4]
    meta["cells"] = 12
    _write_meta(whole, meta)
    msg = load_error(whole)
    assert "lists depths [4], which no cell" in msg and str(whole / "cells.parquet") in msg


@pytest.mark.parametrize("edit", ["other_schemes", "cpu_a_number", "config_a_string"])
def test_report_and_compare_refuse_bad_meta_in_one_line(
    run_dir: Path, stored: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: str
) -> None:
    meta = _meta(run_dir)
    META_EDITS[edit][0](meta)
    _write_meta(run_dir, meta)
    _cli_refuses(["report", str(run_dir), "--out", str(tmp_path / "rep")], capsys, "meta.json")
    _cli_refuses(["compare", str(stored), str(run_dir)], capsys, "meta.json")
    assert not (tmp_path / "rep").exists()


def test_the_stored_configuration_is_what_sweep_config_writes() -> None:
    """The reader's schema of meta.json's config (results.grid) and the writer
    (SweepConfig.to_dict) name the same keys."""
    cfg = SweepConfig.build(**SMALL)
    assert set(cfg.to_dict()) == set(CONFIG)


# -- item 11: compare refuses an unfinished sweep as report does -------------------------------


@pytest.fixture
def unfinished(run_dir: Path) -> Path:
    """What a sweep killed after its first of two chunks leaves."""
    _write_meta(run_dir, {**_meta(run_dir), "complete": False})
    shutil.rmtree(_chunk(run_dir, 1))
    return run_dir


def test_compare_refuses_an_unfinished_sweep_without_partial(
    stored: Path, unfinished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp.md"
    gates = "final_std:10%,divergence_layer:0"
    for pair in ([str(stored), str(unfinished)], [str(unfinished), str(stored)]):
        _cli_refuses(["compare", *pair, "--fail", gates, "--out", str(out)], capsys,
                     "incomplete sweep (4 of 8 cells)", "--partial")  # fmt: skip
    assert not out.exists()
    _cli_refuses(["report", str(stored), "--compare", str(unfinished), "--out",
                  str(tmp_path / "rep")], capsys, "incomplete sweep", "--partial")  # fmt: skip
    base, part = SweepResult.load(stored), SweepResult.load(unfinished)
    with pytest.raises(InitsuiteError, match=r"incomplete sweep .*pass partial=True"):
        initsuite.compare(base, part, gates=gates)


def test_compare_with_partial_says_so_and_missing_decides(
    stored: Path, unfinished: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(["compare", str(stored), str(unfinished), "--fail",
                            "final_std:10%,divergence_layer:0", "--partial"], capsys)  # fmt: skip
    assert code == 0 and "incomplete sweep (4 of 8 cells)" in out
    code, _, _ = run_cli(["compare", str(stored), str(unfinished), "--fail", "missing:0",
                          "--partial"], capsys)  # fmt: skip
    assert code == 1


# -- item 17: only regular files are read, JSON within a size and a depth ------------------------


class _Hung(BaseException):
    """A read that did not return (the failure before the fix)."""


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    def hung(*_: Any) -> None:
        raise _Hung(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _zero(path: Path) -> None:
    path.unlink()
    path.symlink_to("/dev/zero")


SPECIAL: dict[str, tuple[Callable[[Path], Path], Callable[[Path], None], str]] = {
    "meta_fifo": (lambda run: run / "meta.json", _fifo, "a FIFO"),
    "chunk_cells_fifo": (lambda run: _chunk(run) / "cells.parquet", _fifo, "a FIFO"),
    "manifest_fifo": (lambda run: _chunk(run) / chunks.MANIFEST, _fifo, "a FIFO"),
    "chunk_layers_zero": (lambda run: _chunk(run) / "layers.parquet", _zero,
                          "a character device"),
}  # fmt: skip


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("case", sorted(SPECIAL))
def test_a_fifo_or_device_in_place_of_a_stored_file_is_refused_not_read(
    run_dir: Path, stored: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    where, plant, what = SPECIAL[case]
    target = where(run_dir)
    plant(target)
    with _deadline(20):
        said = _cli_refuses(["report", str(run_dir), "--out", str(tmp_path / "rep")], capsys,
                            repr(str(target)), what)  # fmt: skip
        assert "not a regular file" in said
        said = _cli_refuses(["compare", str(stored), str(run_dir)], capsys)
        assert repr(str(target)) in said


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_table_written_whole_linked_to_a_device_is_refused(whole: Path) -> None:
    _zero(whole / "layers.parquet")
    with _deadline(20):
        assert "a character device" in load_error(whole)


def test_an_oversized_meta_json_is_refused_unread(run_dir: Path) -> None:
    with open(run_dir / "meta.json", "r+b") as fh:  # sparse: no disk spent
        fh.truncate(MAX_JSON_BYTES + 1)
    assert "more than the" in load_error(run_dir)


DEEP = "[" * 200_000 + "]" * 200_000


@pytest.mark.parametrize("file", ["meta.json", "manifest.json"])
def test_json_nested_200000_deep_is_refused_in_one_line(
    run_dir: Path, stored: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str
) -> None:
    target = run_dir / "meta.json" if file == "meta.json" else _chunk(run_dir) / file
    target.write_text(DEEP)
    for args in (["report", str(run_dir), "--out", str(tmp_path / "rep")],
                 ["compare", str(stored), str(run_dir)]):  # fmt: skip
        assert "nests" in _cli_refuses(args, capsys, repr(str(target)))


def test_json_nested_just_past_the_limit_is_refused(run_dir: Path) -> None:
    meta = _meta(run_dir)
    deep: Any = 1
    for _ in range(MAX_JSON_DEPTH):
        deep = [deep]
    _write_meta(run_dir, {**meta, "note": deep})
    assert "nests" in load_error(run_dir)


# -- misleading messages: a directory of another kind says what it is ----------------------------


def test_compare_with_a_probe_directory_says_it_is_a_probe(
    stored: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probe = initsuite.probe(torch.nn.Linear(4, 4), torch.randn(2, 4)).save(tmp_path / "probe")
    for pair in ([str(stored), str(probe)], [str(probe), str(stored)]):
        line = _cli_refuses(["compare", *pair], capsys, "holds a probe", "not a sweep")
        assert "not a complete run" not in line


def test_a_sweep_given_as_the_tutorial_says_it_is_a_sweep(
    stored: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _cli_refuses(["report", str(stored), "--tutorial", str(stored), "--out",
                         str(tmp_path / "rep")], capsys, "holds a sweep",
                        "not a tutorial reproduction")  # fmt: skip
    assert "not a complete run" not in line

"""Trust at the edges of the store (issue 12): every stored table is checked on load (column
schema, chunk manifests, meta.json's cell count), ``--resume`` continues only what it can
(same settings, a grid that contains the stored one) and every state a killed sweep leaves.
Each test names the error path it covers; a clean run of the same grid is the truth."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers import load_error, run_cli

import initsuite
from initsuite.cli import main
from initsuite.core.errors import InitsuiteError, InitsuiteTypeError
from initsuite.results import chunks, store
from initsuite.results.sweep import SweepResult

SMALL: dict[str, Any] = dict(schemes=["kaiming_normal", "normal"], activations=["relu"],
                             depths=[2, 3], widths=[4, 8], seeds=1, timing=False)  # fmt: skip
CLI_SMALL = ["sweep", "--schemes", "kaiming_normal,normal", "--activations", "relu", "--depths",
             "2,3", "--widths", "4,8", "--no-timing", "--quiet"]  # fmt: skip
N_CELLS = 2 * 1 * 2 * 2


@pytest.fixture(scope="module")
def clean() -> SweepResult:
    return initsuite.sweep(**SMALL)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete chunked sweep, written once; tests damage copies of it."""
    out = tmp_path_factory.mktemp("stored") / "run"
    initsuite.sweep(**SMALL, out_dir=out)
    return out


@pytest.fixture
def run_dir(stored: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(stored, tmp_path / "run"))


def _chunk(run: Path, i: int = 0) -> Path:
    return sorted((run / chunks.CHUNKS).iterdir())[i]


def _rewrite(f: Path, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    change(pd.read_parquet(f)).to_parquet(f, index=False)


def _meta(run: Path) -> dict[str, Any]:
    return json.loads((run / "meta.json").read_text())


def _set_meta(run: Path, **changes: Any) -> None:
    (run / "meta.json").write_text(json.dumps({**_meta(run), **changes}))


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(root.rglob("*"))}  # fmt: skip


def _same(a: SweepResult, b: SweepResult) -> None:
    pd.testing.assert_frame_equal(a.cells, b.cells)
    pd.testing.assert_frame_equal(a.layers, b.layers)


# -- item 7: every chunk has a manifest, checked on load -------------------------------------


def test_every_chunk_carries_a_manifest_of_what_it_holds(stored: Path) -> None:
    for entry in (stored / chunks.CHUNKS).iterdir():
        manifest = json.loads((entry / chunks.MANIFEST).read_text())
        for table in chunks.TABLES:
            df = pd.read_parquet(entry / f"{table}.parquet")
            listed = manifest["tables"][table]
            assert listed["rows"] == len(df)
            assert list(listed["columns"]) == list(df.columns)
        keys = pd.read_parquet(entry / "cells.parquet")["cell_key"]
        assert manifest["cell_keys"] == sorted(keys)
    assert _meta(stored)["cells"] == N_CELLS and _meta(stored)["complete"] is True


@pytest.mark.parametrize("table", ["cells", "layers"])
def test_a_chunk_table_emptied_is_refused_not_loaded_smaller(run_dir: Path, table: str) -> None:
    f = _chunk(run_dir) / f"{table}.parquet"
    _rewrite(f, lambda df: df.iloc[:0])
    msg = load_error(run_dir)
    assert str(f) in msg and "0 rows" in msg and "manifest.json" in msg


def test_a_value_changed_in_place_is_refused_by_the_checksum(run_dir: Path) -> None:
    f = _chunk(run_dir) / "cells.parquet"
    _rewrite(f, lambda df: df.assign(final_std=df["final_std"] * 2))
    assert str(f) in load_error(run_dir)


def test_a_missing_chunk_of_a_complete_sweep_is_refused(run_dir: Path, clean) -> None:
    shutil.rmtree(_chunk(run_dir))
    msg = load_error(run_dir)
    assert "complete sweep of 8 cells" in msg and "holds 4" in msg
    # the same directory, not yet complete (a killed run): the stored cells load, each once
    _set_meta(run_dir, complete=False)
    part = SweepResult.load(run_dir)
    assert len(part.cells) == N_CELLS // 2
    assert set(part.cells["cell_key"]) < set(clean.cells["cell_key"])


def test_more_cells_than_meta_describes_are_refused(run_dir: Path) -> None:
    _set_meta(run_dir, cells=N_CELLS - 1)
    assert "says the sweep has 7 cells, its config's grid 8" in load_error(run_dir)


@pytest.mark.parametrize(
    "meta",
    [
        {"kind": "sweep"},
        {"kind": "sweep", "cells": "8", "complete": True},
        {"kind": "probe", "cells": 8, "complete": True},
    ],
)
def test_a_meta_json_without_the_cell_count_is_refused(run_dir: Path, meta) -> None:
    (run_dir / "meta.json").write_text(json.dumps(meta))
    assert str(run_dir / "meta.json") in load_error(run_dir)


def test_a_chunk_without_manifest_is_named_as_older(run_dir: Path) -> None:
    (_chunk(run_dir) / chunks.MANIFEST).unlink()
    msg = load_error(run_dir)
    assert str(_chunk(run_dir)) in msg and "no manifest.json" in msg and "older" in msg


@pytest.mark.parametrize("text", ["garbage{", "[]", '{"format": 1}'])
def test_a_damaged_manifest_is_named(run_dir: Path, text: str) -> None:
    (_chunk(run_dir) / chunks.MANIFEST).write_text(text)
    assert str(_chunk(run_dir) / chunks.MANIFEST) in load_error(run_dir)


def test_a_manifest_with_another_row_count_is_refused(run_dir: Path) -> None:
    f = _chunk(run_dir) / chunks.MANIFEST
    manifest = json.loads(f.read_text())
    manifest["tables"]["layers"]["rows"] += 1
    f.write_text(json.dumps(manifest))
    assert "layers.parquet" in load_error(run_dir)


def test_nothing_committed_holds_chunks_without_manifests() -> None:
    """The check above refuses manifest-less chunks; none is shipped (reference results
    hold reports only), so nothing the project stores stops loading. What ``make bench``
    writes under results/runs (ignored by git, never shipped) is not the project's."""
    root = Path(__file__).resolve().parents[1]
    runs = root / "results" / "runs"
    found = [p for d in ("results", "tests") for p in (root / d).rglob(chunks.CHUNKS)
             if runs not in p.parents]  # fmt: skip
    assert found == []


# -- item 6 and 13: the column schema, on chunks and on directories written whole -----------


@pytest.mark.parametrize(("table", "column"), [("cells", "scheme"), ("cells", "final_std"),
                                               ("layers", "std"), ("layers", "layer")])  # fmt: skip
def test_a_renamed_column_is_refused_naming_file_and_column(
    run_dir: Path, table: str, column: str
) -> None:
    f = _chunk(run_dir) / f"{table}.parquet"
    _rewrite(f, lambda df: df.rename(columns={column: f"{column}_renamed"}))
    msg = load_error(run_dir)
    assert str(f) in msg and repr(column) in msg and f"{column}_renamed" in msg


def _odd_first(values: list[Any], odd: Any) -> list[Any]:
    return [odd, *values[1:]]


# a whole column retyped (parquet stores one type per column), with an odd value first
RETYPED: dict[str, tuple[Callable[[pd.Series], list[Any]], str]] = {
    "depth": (lambda s: _odd_first([str(v) for v in s], "5x"), "'5x'"),
    "final_std": (lambda s: _odd_first([str(v) for v in s], "big"), "'big'"),
    "scheme": (lambda s: _odd_first(list(range(len(s))), 3), "holds 3 "),
    "bias": (lambda s: _odd_first(["yes"] * len(s), "yes"), "'yes'"),
    "divergence_layer": (lambda s: _odd_first([1.0] * len(s), 2.5), "2.5"),
}


@pytest.mark.parametrize("column", sorted(RETYPED))
def test_a_mistyped_value_is_refused_not_coerced(run_dir: Path, column: str) -> None:
    f = _chunk(run_dir) / "cells.parquet"
    build, shown = RETYPED[column]
    _rewrite(f, lambda df: df.assign(**{column: build(df[column])}))
    msg = load_error(run_dir)
    assert str(f) in msg and repr(column) in msg and shown in msg


def test_a_null_key_is_refused(run_dir: Path) -> None:
    f = _chunk(run_dir) / "layers.parquet"
    _rewrite(f, lambda df: df.assign(activation=df["activation"].where(df.index != 2, None)))
    msg = load_error(run_dir)
    assert str(f) in msg and "'activation'" in msg and "row 2" in msg


def test_a_table_written_whole_is_checked_alike(clean: SweepResult, tmp_path: Path) -> None:
    out = clean.save(tmp_path / "whole")
    cells = clean.cells.assign(depth=[str(d) if i else "5x"
                                      for i, d in enumerate(clean.cells["depth"])])  # fmt: skip
    cells.to_parquet(out / "cells.parquet", index=False)
    msg = load_error(out)
    assert str(out / "cells.parquet") in msg and "'depth'" in msg and "'5x'" in msg


def test_integral_values_of_another_width_still_load(clean: SweepResult, tmp_path: Path) -> None:
    """Lossless differences (int32 depths, nullable layers stored as float) are not damage."""
    out = clean.save(tmp_path / "whole")
    cells = clean.cells.astype({"depth": "int32", "divergence_layer": "float64"})
    cells.to_parquet(out / "cells.parquet", index=False)
    loaded = SweepResult.load(out)
    assert str(loaded.cells["depth"].dtype) == str(clean.cells["depth"].dtype)
    _same(loaded, clean)


BAD = {
    "renamed": lambda run: _rewrite(_chunk(run) / "cells.parquet",
                                    lambda df: df.rename(columns={"scheme": "sch"})),
    "meta_list": lambda run: (run / "meta.json").write_text("[]"),
    "depth_5x": lambda run: _rewrite(_chunk(run) / "cells.parquet",
                                     lambda df: df.assign(depth=df["depth"].astype(str) + "x")),
}  # fmt: skip


@pytest.mark.parametrize("damage", sorted(BAD))
def test_report_and_compare_on_bad_stored_data_print_one_line(
    run_dir: Path, stored: Path, tmp_path: Path, capsys, damage: str
) -> None:
    BAD[damage](run_dir)
    before = _snapshot(run_dir)
    code, out, err = run_cli(["report", str(run_dir), "--out", str(tmp_path / "rep")], capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert str(run_dir) in err and out == ""
    assert not (tmp_path / "rep").exists() and _snapshot(run_dir) == before
    code, _, err = run_cli(["report", str(run_dir)], capsys)  # into the run directory
    assert code == 2 and _snapshot(run_dir) == before
    code, _, err = run_cli(["compare", str(stored), str(run_dir)], capsys)
    assert code == 2 and err.count("\n") == 1 and str(run_dir) in err


# -- item 16: load functions refuse what is not a path ---------------------------------------


@pytest.mark.parametrize("bad", [42, None, 3.5, b"run", ["run"]])
def test_load_functions_refuse_a_non_path(bad: Any) -> None:
    from initsuite.results.probe import ProbeResult
    from initsuite.results.training import TrainingResult
    from initsuite.results.tutorial import TutorialResult

    for load in (SweepResult.load, TrainingResult.load, ProbeResult.load, TutorialResult.load,
                 lambda p: store.read(p, ())):  # fmt: skip
        with pytest.raises(InitsuiteTypeError, match="must be a path") as info:
            load(bad)
        assert isinstance(info.value, TypeError) and type(bad).__name__ in str(info.value)
    with pytest.raises(InitsuiteError, match="empty path"):
        SweepResult.load("")


# -- items 4 and 5: resume continues only the same settings and a grid containing the stored


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"schemes": ["orthogonal"]}, r"schemes \['kaiming_normal', 'normal'\] not in this one"),
        ({"depths": [3, 4]}, r"depths \[2\] not in this one"),
        ({"widths": [8]}, r"widths \[4\] not in this one"),
        ({"seeds": [1]}, r"seeds \[0\] not in this one"),
        ({"batch": 32}, r"batch=16, this one has batch=32"),
        ({"bias": "torch_default"}, r"bias=False, this one has bias=True"),
    ],
)
def test_resume_refuses_another_grid_naming_the_first_difference(
    run_dir: Path, change: dict[str, Any], named: str
) -> None:
    before = _snapshot(run_dir)
    with pytest.raises(InitsuiteError, match=named):
        initsuite.sweep(**{**SMALL, **change}, out_dir=run_dir, resume=True)
    assert _snapshot(run_dir) == before


def test_resume_of_another_grid_through_the_cli(run_dir: Path, capsys) -> None:
    before = _snapshot(run_dir)
    args = [*CLI_SMALL, "--schemes", "orthogonal", "--out", str(run_dir), "--resume"]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "schemes ['kaiming_normal', 'normal'] not in this one" in err
    assert _snapshot(run_dir) == before
    assert _meta(run_dir)["config"]["schemes"] == ["kaiming_normal", "normal"]


def test_a_grown_grid_resume_rewrites_meta_for_the_new_grid(run_dir: Path, monkeypatch) -> None:
    grown = {**SMALL, "schemes": ["kaiming_normal", "normal", "orthogonal"]}

    def killed(*args: Any, **kwargs: Any) -> bool:
        raise KeyboardInterrupt

    # killed before its first new chunk: meta.json already describes the grown grid, not
    # complete, and what is stored loads
    monkeypatch.setattr(chunks, "write_chunk", killed)
    with pytest.raises(KeyboardInterrupt):
        initsuite.sweep(**grown, out_dir=run_dir, resume=True)
    monkeypatch.undo()
    meta = _meta(run_dir)
    assert meta["config"]["schemes"] == grown["schemes"]
    assert (meta["cells"], meta["complete"]) == (N_CELLS * 3 // 2, False)
    assert len(SweepResult.load(run_dir).cells) == N_CELLS
    # the old, smaller grid is no longer what the directory holds
    with pytest.raises(InitsuiteError, match=r"schemes \['orthogonal'\] not in this one"):
        initsuite.sweep(**SMALL, out_dir=run_dir, resume=True)
    res = initsuite.sweep(**grown, out_dir=run_dir, resume=True)
    meta = _meta(run_dir)
    assert (meta["cells"], meta["complete"]) == (len(res.cells), True) == (12, True)
    _same(res, initsuite.sweep(**grown))


@pytest.mark.parametrize(
    "fingerprint", [None, "bias=False", [], {"bias": False}, {"anything": 1}], ids=repr
)
def test_resume_refuses_a_missing_or_malformed_fingerprint(run_dir: Path, fingerprint) -> None:
    meta = _meta(run_dir)
    if fingerprint is None:
        del meta["fingerprint"]
    else:
        meta["fingerprint"] = fingerprint
    (run_dir / "meta.json").write_text(json.dumps(meta))
    before = _snapshot(run_dir)
    with pytest.raises(InitsuiteError, match="fingerprint") as info:
        initsuite.sweep(**{**SMALL, "bias": "torch_default"}, out_dir=run_dir, resume=True)
    assert str(run_dir / "meta.json") in str(info.value)
    assert _snapshot(run_dir) == before


def test_bias_resume_without_fingerprint_replaces_nothing(run_dir: Path, capsys) -> None:
    """The audit's case: a meta.json without its fingerprint and ``--bias --resume``."""
    meta = _meta(run_dir)
    del meta["fingerprint"]
    (run_dir / "meta.json").write_text(json.dumps(meta))
    shutil.rmtree(_chunk(run_dir))
    _set_meta(run_dir, complete=False)
    before = _snapshot(run_dir)
    code, _, err = run_cli([*CLI_SMALL, "--bias", "--out", str(run_dir), "--resume"], capsys)
    assert code == 2 and "has no fingerprint" in err
    assert _snapshot(run_dir) == before


# -- item 17: resume says what the directory really is ---------------------------------------


def test_resume_on_a_directory_without_a_sweep_says_so(tmp_path: Path, capsys) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "thesis.tex").write_text("x")
    code, _, err = run_cli([*CLI_SMALL, "--out", str(plain), "--resume"], capsys)
    assert code == 2 and f"{str(plain)!r} holds no initsuite sweep (no meta.json)" in err
    assert "whole" not in err
    assert [p.name for p in plain.iterdir()] == ["thesis.tex"]


def test_resume_on_a_directory_written_whole_says_so(clean, tmp_path: Path, capsys) -> None:
    out = clean.save(tmp_path / "whole")
    before = _snapshot(out)
    code, _, err = run_cli([*CLI_SMALL, "--out", str(out), "--resume"], capsys)
    assert code == 2 and "written whole, by save()" in err
    assert "cannot be resumed" in err and _snapshot(out) == before


# -- item 12: every state a kill leaves resumes ----------------------------------------------


def _state_meta_only(run: Path) -> None:
    shutil.rmtree(run / chunks.CHUNKS)
    _set_meta(run, complete=False)


def _state_meta_tmp_only(run: Path) -> None:
    text = (run / "meta.json").read_text()
    shutil.rmtree(run)
    run.mkdir()
    (run / ".meta.json.k1ll3d_x").write_text(text[:20])  # atomic_write_text killed mid-write


def _state_some_chunks(run: Path) -> None:
    _set_meta(run, complete=False)
    victim = _chunk(run)
    victim.rename(victim.with_name(f".tmp-{victim.name}-x"))  # a chunk killed before rename


STATES: dict[str, Callable[[Path], None]] = {
    "absent": shutil.rmtree,
    "empty": lambda run: (shutil.rmtree(run), run.mkdir()),
    "meta_tmp_only": _state_meta_tmp_only,
    "meta_only": _state_meta_only,
    "some_chunks": _state_some_chunks,
    "all_chunks_meta_not_rewritten": lambda run: _set_meta(run, complete=False),
}  # fmt: skip


@pytest.mark.parametrize("state", sorted(STATES))
def test_every_state_a_kill_leaves_resumes(run_dir: Path, clean, capsys, state: str) -> None:
    STATES[state](run_dir)
    code, _, err = run_cli([*CLI_SMALL, "--out", str(run_dir), "--resume"], capsys)
    assert code == 0, err
    _same(SweepResult.load(run_dir), clean)
    assert _meta(run_dir)["complete"] is True


def test_a_plain_rerun_into_a_killed_sweep_says_pass_resume(run_dir: Path, capsys) -> None:
    _state_meta_only(run_dir)
    before = _snapshot(run_dir)
    code, _, err = run_cli([*CLI_SMALL, "--out", str(run_dir)], capsys)
    assert code == 2 and "holds a sweep: pass --resume" in err
    assert _snapshot(run_dir) == before
    with pytest.raises(InitsuiteError, match="pass resume=True"):
        initsuite.sweep(**SMALL, out_dir=run_dir)


def test_a_plain_rerun_into_an_emptied_killed_sweep_starts_it(run_dir: Path, clean) -> None:
    _state_meta_tmp_only(run_dir)
    code = main([*CLI_SMALL, "--out", str(run_dir)])
    assert code == 0
    _same(SweepResult.load(run_dir), clean)


@pytest.mark.parametrize("point", ["meta_tmp_written", "meta_published", "first_chunk"])
def test_two_resume_writers_on_a_new_directory_both_succeed(
    tmp_path: Path, clean, monkeypatch, point: str
) -> None:
    """Writer B runs whole at a point of writer A's start (interleaved deterministically, not
    by timing); then A goes on. Both succeed and the store holds the clean tables once."""
    out = tmp_path / "run"
    seen: list[SweepResult] = []
    started: list[bool] = []

    def writer_b() -> None:
        if not started:  # once; its own writes pass through the patched functions too
            started.append(True)
            seen.append(initsuite.sweep(**SMALL, out_dir=out, resume=True))

    real_replace, real_write_text, real_chunk = store.os.replace, store.atomic_write_text, \
        chunks.write_chunk  # fmt: skip
    if point == "meta_tmp_written":

        def replace(src: Any, dst: Any) -> None:
            writer_b()
            real_replace(src, dst)

        monkeypatch.setattr(store.os, "replace", replace)
    elif point == "meta_published":

        def write_text(path: Any, text: str) -> Path:
            done = real_write_text(path, text)
            writer_b()
            return done

        monkeypatch.setattr(store, "atomic_write_text", write_text)
    elif point == "first_chunk":

        def write_chunk(*args: Any) -> bool:
            writer_b()
            return real_chunk(*args)

        monkeypatch.setattr(chunks, "write_chunk", write_chunk)
    else:
        raise AssertionError(point)
    first = initsuite.sweep(**SMALL, out_dir=out, resume=True)
    monkeypatch.undo()
    assert len(seen) == 1
    _same(first, clean)
    _same(seen[0], clean)
    _same(SweepResult.load(out), clean)
    assert _meta(out)["complete"] is True
    assert len(list((out / chunks.CHUNKS).iterdir())) == 2

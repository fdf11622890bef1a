"""Fault injection and stored-table fuzzing for chunked sweeps (issue 12).

A kill is injected at every write step of a sweep (the k-th call of any function that
creates, writes or publishes a file raises, and nothing is cleaned up, as after kill -9), for
every k until a run completes; ``--resume`` must then give the clean run's tables, and no file
outside the target may change. Hypothesis damages copies of a small stored sweep at random:
loading either returns the clean cells or raises one line naming a path."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import initsuite
from initsuite.cli import main
from initsuite.core.errors import InitsuiteError
from initsuite.results import chunks
from initsuite.results.columns import CELL_KEYS
from initsuite.results.sweep import SweepResult

SMALL: dict[str, Any] = dict(schemes=["kaiming_normal", "normal"], activations=["relu"],
                             depths=[2, 3], widths=[4, 8], seeds=1, timing=False)  # fmt: skip
CLI = ["sweep", "--schemes", "kaiming_normal,normal", "--activations", "relu", "--depths",
       "2,3", "--widths", "4,8", "--no-timing", "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def clean() -> SweepResult:
    return initsuite.sweep(**SMALL)


def _same(a: SweepResult, b: SweepResult) -> None:
    pd.testing.assert_frame_equal(a.cells, b.cells)
    pd.testing.assert_frame_equal(a.layers, b.layers)


# -- a kill at every write step ---------------------------------------------------------------


class Killed(BaseException):
    """Not an Exception: no handler of the code under test catches it, as with kill -9."""


# every call that creates, writes or publishes something on disk
WRITES: list[tuple[Any, str]] = [(os, "mkdir"), (os, "rename"), (os, "replace"),
                                 (pd.DataFrame, "to_parquet"), (Path, "write_text")]  # fmt: skip
# cleanup a killed process never runs
CLEANUP: list[tuple[Any, str]] = [(shutil, "rmtree"), (os, "unlink")]


@contextlib.contextmanager
def kill_at(k: int) -> Iterator[list[str]]:
    """Raise Killed at the k-th write step; from then on nothing is removed."""
    steps: list[str] = []
    killed: list[bool] = []
    with pytest.MonkeyPatch.context() as mp:
        for owner, name in WRITES:
            real = getattr(owner, name)

            def step(*args: Any, _real: Callable[..., Any] = real, _name: str = name,
                     **kwargs: Any) -> Any:  # fmt: skip
                if _name == "mkdir" and os.path.lexists(args[0]):
                    return _real(*args, **kwargs)  # changes nothing: not a step
                steps.append(_name)
                if len(steps) == k:
                    killed.append(True)
                    raise Killed(_name)
                return _real(*args, **kwargs)

            mp.setattr(owner, name, step)
        for owner, name in CLEANUP:
            real = getattr(owner, name)

            def cleanup(*args: Any, _real: Callable[..., Any] = real, **kwargs: Any) -> Any:
                return None if killed else _real(*args, **kwargs)

            mp.setattr(owner, name, cleanup)
        yield steps


def _snapshot(root: Path, skip: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p): (p.read_bytes() if p.is_file() else b"", p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if skip not in (p, *p.parents)}  # fmt: skip


def test_a_kill_at_every_write_step_resumes_to_the_clean_tables(clean, tmp_path: Path) -> None:
    """States covered on the way: no directory, an empty one, only meta.json's temporary,
    meta.json and no chunk, temporary chunk directories, some chunks, all chunks before
    meta.json says complete, and the CLI's last meta.json rewrite."""
    neighbour = tmp_path / "neighbour"
    neighbour.mkdir()
    (neighbour / "thesis.tex").write_text("mine")
    (tmp_path / "notes.txt").write_text("mine too")
    before = _snapshot(tmp_path, skip=tmp_path / "runs")
    kills = 0
    for k in range(1, 200):
        out = tmp_path / "runs" / f"k{k}"
        with kill_at(k) as steps:
            try:
                main([*CLI, "--out", str(out)])
            except Killed:
                kills += 1
            else:
                break
        assert len(steps) == k  # it died at step k, and nothing wrote after it
        res = initsuite.sweep(**SMALL, out_dir=out, resume=True)  # the library's --resume
        _same(res, clean)
        meta = json.loads((out / "meta.json").read_text())
        assert meta["complete"] is True and meta["cells"] == len(clean.cells)
        stored = [p.name for p in (out / chunks.CHUNKS).iterdir()]
        assert len([n for n in stored if not n.startswith(".")]) == 2, (k, stored)
        assert _snapshot(tmp_path, skip=tmp_path / "runs") == before
    else:
        raise AssertionError("the sweep never completed")
    assert kills == len(steps) >= 12  # a kill at every step of the complete run
    _same(SweepResult.load(out), clean)
    assert main([*CLI, "--out", str(out), "--resume"]) == 0  # and the CLI's, with nothing left
    _same(SweepResult.load(out), clean)


# -- hypothesis: random damage to a stored sweep ---------------------------------------------


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SweepResult]:
    """A small stored sweep with all three tables (timing too), made once."""
    out = tmp_path_factory.mktemp("pristine") / "run"
    return out, initsuite.sweep(**{**SMALL, "timing": True, "timing_repeats": 1}, out_dir=out)


def _tables(run: Path) -> list[Path]:
    return sorted(p for p in (run / chunks.CHUNKS).glob("*/*.parquet"))


def _rewrite_table(f: Path, r: int, change: Callable[[pd.DataFrame, int], pd.DataFrame]) -> None:
    if not f.is_file():
        return  # deleted by an earlier damage
    try:
        df = pd.read_parquet(f)
    except Exception:  # truncated or zeroed by an earlier damage: already unreadable
        return
    if len(df):
        change(df, r).to_parquet(f, index=False)


def _retype(df: pd.DataFrame, r: int) -> pd.DataFrame:
    c = df.columns[r % len(df.columns)]
    if pd.api.types.is_string_dtype(df[c]):
        return df.assign(**{c: list(range(len(df)))})
    return df.assign(**{c: df[c].astype(str)})


def _odd_value(df: pd.DataFrame, r: int) -> pd.DataFrame:
    """One value of another type: the column becomes strings, one of them not a number."""
    c = df.columns[r % len(df.columns)]
    values = [str(v) for v in df[c]]
    values[r % len(values)] = "5x"
    return df.assign(**{c: values})


def _same_type_value(df: pd.DataFrame, r: int) -> pd.DataFrame:
    floats = [c for c in df.columns if df[c].dtype == "float64"]
    if not floats:
        return df
    c, i = floats[r % len(floats)], r % len(df)
    return df.assign(**{c: [v * 2 + 1 if j == i else v for j, v in enumerate(df[c])]})


def _null_key(df: pd.DataFrame, r: int) -> pd.DataFrame:
    keys = [c for c in df.columns if c in CELL_KEYS and pd.api.types.is_string_dtype(df[c])]
    if not keys:
        return df
    c = keys[r % len(keys)]
    return df.assign(**{c: df[c].where(df.index != r % len(df), None)})


TABLE_CHANGES: dict[str, Callable[[pd.DataFrame, int], pd.DataFrame]] = {
    "rename_column": lambda df, r: df.rename(
        columns=lambda c: f"{c}_renamed" if c == df.columns[r % len(df.columns)] else c
    ),
    "drop_column": lambda df, r: df.drop(columns=df.columns[r % len(df.columns)]),
    "retype_column": _retype,
    "drop_rows": lambda df, r: df.drop(index=df.index[: 1 + r % len(df)]),
    "duplicate_rows": lambda df, r: pd.concat([df, df.iloc[[r % len(df)]]]),
    "odd_value": _odd_value,
    "same_type_value": _same_type_value,
    "null_key": _null_key,
}


def _shift(by: int) -> Callable[[Any], Any]:
    return lambda v: v + by if isinstance(v, int) else v


META_CHANGES: dict[str, tuple[str, list[Any]]] = {
    "meta_cells": ("cells", [_shift(-1), _shift(1), None, "8", -1]),
    "meta_complete": ("complete", [True, None, "yes", 1]),
    "meta_incomplete": ("complete", [False]),  # a killed run: fewer cells may load
    "meta_kind": ("kind", ["probe", None]),
}


def _mutate(run: Path, kind: str, r: int) -> None:
    """Apply one damage of ``kind`` to ``run``, its target picked by ``r``."""
    tables = _tables(run)
    f = tables[r % len(tables)] if tables else run / "gone.parquet"
    entries = sorted(p for p in (run / chunks.CHUNKS).iterdir()
                     if p.is_dir() and not p.name.startswith("."))  # fmt: skip
    entry = entries[r % len(entries)] if entries else None
    meta_path = run / "meta.json"
    if kind in TABLE_CHANGES:
        _rewrite_table(f, r, TABLE_CHANGES[kind])
    elif kind == "truncate" and f.is_file():
        f.write_bytes(f.read_bytes()[: r % max(1, f.stat().st_size)])
    elif kind == "zero" and f.is_file():
        f.write_bytes(b"")
    elif kind == "delete_table":
        f.unlink(missing_ok=True)
    elif kind == "delete_chunk" and entry is not None:
        shutil.rmtree(entry)
    elif kind == "delete_manifest" and entry is not None:
        (entry / chunks.MANIFEST).unlink(missing_ok=True)
    elif kind == "corrupt_manifest" and entry is not None:
        (entry / chunks.MANIFEST).write_text(["{", "[]", '{"format": 1}', "null"][r % 4])
    elif kind == "delete_meta":
        meta_path.unlink(missing_ok=True)
    elif kind == "corrupt_meta":
        meta_path.write_text(["{", "[]", '"sweep"', '{"kind": "sweep"}'][r % 4])
    elif kind in META_CHANGES and meta_path.is_file():
        with contextlib.suppress(ValueError, TypeError):  # meta.json damaged already
            meta = dict(json.loads(meta_path.read_text()))
            field, values = META_CHANGES[kind]
            value = values[r % len(values)]
            meta[field] = value(meta.get(field)) if callable(value) else value
            meta_path.write_text(json.dumps(meta))
    elif kind == "foreign_file":
        where = [run, run / chunks.CHUNKS, entry or run][r % 3]
        (where / ["notes.txt", "x.parquet", ".hidden"][(r // 3) % 3]).write_text("foreign")
    elif kind in ("delete_chunk", "delete_manifest", "corrupt_manifest", "truncate", "zero",
                  *META_CHANGES):  # fmt: skip
        pass  # nothing left to damage
    else:
        raise AssertionError(kind)


KINDS = sorted([*TABLE_CHANGES, *META_CHANGES, "truncate", "zero", "delete_table",
                "delete_chunk", "delete_manifest", "corrupt_manifest", "delete_meta",
                "corrupt_meta", "foreign_file"])  # fmt: skip


def _check_loaded(res: SweepResult, run: Path, clean: SweepResult) -> None:
    """The invariants of a table that loaded: keys never null, each cell once and equal to
    the clean run's, and all of them when meta.json says the sweep is complete."""
    meta = json.loads((run / "meta.json").read_text())
    assert not res.cells[[*CELL_KEYS, "cell_key"]].isna().any().any()
    assert not res.layers[[*CELL_KEYS, "layer"]].isna().any().any()
    assert res.cells["cell_key"].is_unique
    keys = set(res.cells["cell_key"])
    truth = clean.cells[clean.cells["cell_key"].isin(keys)].reset_index(drop=True)
    pd.testing.assert_frame_equal(res.cells, truth)
    layer_truth = clean.layers.merge(res.cells[list(CELL_KEYS)], on=list(CELL_KEYS))
    pd.testing.assert_frame_equal(res.layers, layer_truth)
    assert len(keys) <= meta["cells"]
    if meta["complete"]:
        assert len(keys) == meta["cells"] == len(clean.cells)


@given(st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 10_000)), min_size=1,
                max_size=3))  # fmt: skip
def test_damaged_stores_load_whole_or_raise_one_line_naming_a_path(
    pristine: tuple[Path, SweepResult], damage: list[tuple[str, int]]
) -> None:
    stored, clean = pristine
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(shutil.copytree(stored, Path(tmp) / "run"))
        for kind, r in damage:
            _mutate(run, kind, r)
        try:
            res = SweepResult.load(run)
        except InitsuiteError as exc:
            msg = str(exc)
            assert "\n" not in msg and str(run) in msg, msg
            return
        _check_loaded(res, run, clean)

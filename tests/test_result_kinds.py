"""The kind registry: every kind of results directory has a Result class (the one generic save
and load of :class:`initsuite.results.base.Result`) and a report planner, and a round trip
through them returns what was saved."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import initsuite
from initsuite.core.errors import InitsuiteError
from initsuite.report import kinds as report_kinds
from initsuite.report import write_report
from initsuite.report.plan import ReportPlan
from initsuite.results import columns as C
from initsuite.results.base import Result
from initsuite.results.kinds import RESULTS, result_class
from initsuite.results.layout import LAYOUTS
from initsuite.results.sweep import SweepResult

# a value of each dtype, for a one-row table of any schema
_VALUE = {"string": "x", "int64": 1, "Int64": 1, "float64": 0.5, "bool": True, "boolean": True}


def _one_row(columns: tuple[str, ...]) -> pd.DataFrame:
    return C.frame(columns, [{name: _VALUE[dtype] for name, dtype, _ in C.describe(columns)}])


def test_every_kind_has_a_result_class_and_a_report_planner() -> None:
    assert set(RESULTS) == set(LAYOUTS) == set(report_kinds.PLANNERS)
    for kind, cls in RESULTS.items():
        assert issubclass(cls, Result) and cls.kind == kind and result_class(kind) is cls
        assert tuple(t.name for t in cls.tables) == LAYOUTS[kind], kind
        fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        assert {t.field for t in cls.tables} | {"meta"} <= fields, kind
        assert cls.save is Result.save, kind  # one save for every kind
    assert initsuite.Result is Result and initsuite.result_class is result_class


def test_an_unknown_kind_is_named_with_the_nearest() -> None:
    with pytest.raises(InitsuiteError, match=r"unknown kind of results 'sweeep'; did you mean "
                       r"'sweep'\? \(choose from sweep, "):  # fmt: skip
        result_class("sweeep")


@pytest.mark.parametrize("kind", [k for k in LAYOUTS if k != "sweep"])
def test_round_trip_through_the_generic_save_and_load(kind: str, tmp_path: Path) -> None:
    cls = result_class(kind)
    assert cls.load.__func__ is Result.load.__func__  # type: ignore[attr-defined]
    tables = {t.field: _one_row(t.columns) for t in cls.tables}
    meta: dict[str, Any] = {"kind": kind, "note": "round trip"}
    cls(meta=meta, **tables).save(tmp_path / "run")  # type: ignore[call-arg]
    on_disk = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert on_disk == sorted(["meta.json", *(f"{name}.parquet" for name in LAYOUTS[kind])])
    back = cls.load(tmp_path / "run")
    assert back.meta == meta
    for t in cls.tables:
        pd.testing.assert_frame_equal(getattr(back, t.field), tables[t.field])


def test_an_optional_table_written_only_with_rows_loads_empty(tmp_path: Path) -> None:
    probe = result_class("probe")
    calls = _one_row(C.PROBE)
    probe(calls, {"kind": "probe"}).save(tmp_path / "run")  # type: ignore[call-arg]
    assert not (tmp_path / "run" / "blocks.parquet").exists()
    back = probe.load(tmp_path / "run")
    assert back.blocks.empty and list(back.blocks.columns) == list(C.PROBE_BLOCKS)


def test_a_sweep_round_trips_through_the_generic_save(small_sweep_dir: Path,
                                                      tmp_path: Path) -> None:  # fmt: skip
    first = SweepResult.load(small_sweep_dir)
    first.save(tmp_path / "copy")
    back = SweepResult.load(tmp_path / "copy")
    assert back.meta == first.meta
    for t in SweepResult.tables:
        pd.testing.assert_frame_equal(getattr(back, t.field), getattr(first, t.field))


def test_write_report_dispatches_through_the_planners(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    iso = result_class("isometry")
    iso(_one_row(C.SPECTRA), {"kind": "isometry"}).save(tmp_path / "run")  # type: ignore[call-arg]
    seen = []

    def planner(run_dir: Any, options: Any) -> ReportPlan:
        seen.append(result_class("isometry").load(run_dir))
        return ReportPlan([], "# initsuite report: planned\n")

    monkeypatch.setitem(report_kinds.PLANNERS, "isometry", planner)
    out = write_report(tmp_path / "run")
    assert out.read_text() == "# initsuite report: planned\n" and len(seen) == 1

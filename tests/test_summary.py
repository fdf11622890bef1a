"""The one summary of a sweep's cells (initsuite.results.summary), checked against counts and
medians written out by hand, and what ``initsuite sweep`` prints from it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import run_cli

import initsuite
from initsuite.results import columns as C
from initsuite.results.summary import SUMMARY_COLUMNS, summarize

KEY = {"arch": "mlp", "width": 8, "batch": 4, "device": "cpu", "dtype": "float32",
       "bias": False, "input_std": 1.0}  # fmt: skip


def _cell(scheme: str, depth: int, seed: int, **stats: Any) -> dict[str, Any]:
    base = {"scheme": scheme, "activation": "relu", "depth": depth, "seed": seed,
            "final_std": 1.0, "growth_per_layer": 1.0}  # fmt: skip
    return {**KEY, **base, **stats}


@pytest.fixture
def cells() -> pd.DataFrame:
    """Scheme "a": one overflow, one explode, one failed cell, one fine; "b": all fine."""
    rows = [
        _cell("a", 10, 0, final_std=math.nan, growth_per_layer=9.0, divergence_layer=4,
              divergence_kind="overflow"),
        _cell("a", 10, 1, final_std=50.0, growth_per_layer=2.0, divergence_layer=7,
              divergence_kind="explode"),
        _cell("a", 10, 2, final_std=math.nan, growth_per_layer=math.nan, error="boom"),
        _cell("a", 10, 3, final_std=3.0, growth_per_layer=1.5),
        _cell("b", 10, 0, final_std=0.5), _cell("b", 10, 1, final_std=0.7),
        _cell("b", 20, 0, final_std=0.25),
    ]  # fmt: skip
    return C.frame(C.CELLS, rows)


def test_summary_counts_failed_apart_and_overflow_as_infinite(cells: pd.DataFrame) -> None:
    s = summarize(cells).set_index(["scheme", "depth"])
    a = s.loc[("a", 10)]
    assert (a["cells"], a["failed"]) == (4, 1)
    assert a["frac_diverged"] == pytest.approx(2 / 3)  # of the 3 cells that ran
    assert a["median_div_layer"] == 5.5  # median of layers 4 and 7
    assert a["div_kinds"] == "overflow,explode"  # in DIVERGENCE_KINDS' order
    # ran: overflow (+inf), 50, 3 -> the median is 50; a raw median would give 26.5
    assert a["median_final_std"] == 50.0
    assert a["median_growth"] == 2.0  # 9, 2, 1.5
    b10, b20 = s.loc[("b", 10)], s.loc[("b", 20)]
    assert (b10["cells"], b10["failed"], b10["frac_diverged"]) == (2, 0, 0.0)
    assert b10["median_final_std"] == 0.6 and math.isnan(b10["median_div_layer"])
    assert b10["div_kinds"] == "" and b20["median_final_std"] == 0.25


def test_summary_of_a_group_that_all_failed_has_no_statistics(cells: pd.DataFrame) -> None:
    failed = cells[cells["error"].notna()]
    row = summarize(failed).iloc[0]
    assert (row["cells"], row["failed"]) == (1, 1)
    assert math.isnan(row["frac_diverged"]) and math.isnan(row["median_final_std"])


def test_summary_groups_by_arch_when_there_are_several(cells: pd.DataFrame) -> None:
    assert list(summarize(cells).columns) == ["scheme", "activation", "depth", *SUMMARY_COLUMNS]
    two = cells.assign(arch=np.where(cells["seed"] == 0, "mlp", "resmlp"))
    s = summarize(two)
    assert list(s.columns[:4]) == ["arch", "scheme", "activation", "depth"]
    assert s["cells"].sum() == len(cells) and len(s) == 5
    by = summarize(cells, by=["scheme"])
    assert list(by["scheme"]) == ["a", "b"] and list(by["cells"]) == [4, 3]
    assert summarize(cells.iloc[:0]).empty


def test_sweep_result_summary_is_the_summary() -> None:
    res = initsuite.sweep(["normal:std=3", "xavier_uniform"], ["linear", "tanh"], [3, 60], 8,
                          seeds=2, timing=False)  # fmt: skip
    pd.testing.assert_frame_equal(res.summary(), summarize(res.cells), check_exact=True)
    over = res.cells["divergence_kind"] == "overflow"
    assert over.any()  # normal:std=3 at width 8 overflows float32 within 60 layers
    row = (
        res.summary()
        .set_index(["scheme", "activation", "depth"])
        .loc[("normal:std=3.0", "linear", 60)]
    )
    assert row["median_final_std"] == math.inf and row["div_kinds"] == "overflow"


def test_sweep_prints_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code, printed, _ = run_cli(["sweep", "--schemes", "normal:std=3", "--activations", "linear",
                                "--depths", "60", "--widths", "8", "--no-timing", "--out",
                                str(out)], capsys)  # fmt: skip
    assert code == 0
    header, row = printed.splitlines()[:2]
    assert header.split() == ["scheme", "activation", "depth", *SUMMARY_COLUMNS]
    assert row.split()[-3:-1] == ["overflow", "inf"]  # kinds, median final std

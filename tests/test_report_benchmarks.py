"""The report's "Benchmarks" section: pytest-benchmark JSON loaded and checked, ratios to each
group's reference and to the previous run against values computed by hand here, the gate
against pytest-benchmark's own rule, the section's text and its HTML escaping."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from helpers import run_cli

from initsuite.core.errors import InitsuiteError
from initsuite.report.benchmarks import benchmarks_section
from initsuite.report.html import markdown_html
from initsuite.results import columns as C
from initsuite.results.benchmarks import (
    BenchmarkGate,
    compare_benchmarks,
    load_benchmarks,
    parse_benchmarks,
    reference_ratios,
)

SCHEMES = "bench/test_bench_schemes.py"


def bench(group: str | None, name: str, median: float, reference: bool | None = None,
          path: str = SCHEMES) -> dict[str, Any]:  # fmt: skip
    """One benchmark as pytest-benchmark 5 writes it (``--benchmark-json``, no data)."""
    extra: dict[str, Any] = {"rounds": 5}
    if reference is not None:
        extra["reference"] = reference
    return {
        "group": group, "name": name, "fullname": f"{path}::{name}", "params": None,
        "param": None, "extra_info": extra,
        "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": 5,
                    "max_time": 1.0, "min_time": 5e-06, "warmup": False},
        "stats": {"min": median * 0.9, "max": median * 1.2, "mean": median * 1.01,
                  "stddev": median * 0.05, "rounds": 5, "median": median,
                  "iqr": median * 0.1, "q1": median * 0.95, "q3": median * 1.05,
                  "iqr_outliers": 0, "stddev_outliers": 1, "outliers": "1;0",
                  "ld15iqr": median * 0.9, "hd15iqr": median * 1.2, "ops": 1 / (median * 1.01),
                  "total": median * 5.05, "iterations": 1},
    }  # fmt: skip


def run_json(benchmarks: list[dict[str, Any]], torch: str = "2.13.0") -> dict[str, Any]:
    return {
        "machine_info": {"node": "box", "python_version": "3.11.9", "system": "Linux",
                         "cpu": {"brand_raw": "AMD EPYC"},
                         "initsuite": {"version": "0.1.0", "torch": torch, "torch_threads": 2,
                                       "bench_device": "cpu", "bench_quick": False}},
        "commit_info": {"id": "0123456789abcdef", "dirty": False, "branch": "main"},
        "benchmarks": benchmarks,
        "datetime": "2026-12-07T10:00:00.000000+00:00",
        "version": "5.3.1",
    }  # fmt: skip


def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# this run: a group with one reference, a group with two (a floor and a plain loop)
NEW = [
    bench("init 8x8", "test_baseline[8x8]", 2.0, True),
    bench("init 8x8", "test_scheme[8x8-orthogonal]", 3.0, False),
    bench("init 8x8", "test_scheme[8x8-zeros]", 1.0, False),
    bench("sweep", "test_baseline_floor", 4.0, True, "bench/test_bench_sweep.py"),
    bench("sweep", "test_baseline_tutorial_loop", 40.0, True, "bench/test_bench_sweep.py"),
    bench("sweep", "test_sweep", 6.0, False, "bench/test_bench_sweep.py"),
]
# the previous run: baseline 2.0 -> 2.0, orthogonal 2.5 -> 3.0 (+20 %), zeros 0.5 -> 1.0
# (+100 %), sweep 6.0 -> 6.0; floor and loop absent; one benchmark of its own
OLD = [
    bench("init 8x8", "test_baseline[8x8]", 2.0, True),
    bench("init 8x8", "test_scheme[8x8-orthogonal]", 2.5, False),
    bench("init 8x8", "test_scheme[8x8-zeros]", 0.5, False),
    bench("sweep", "test_sweep", 6.0, False, "bench/test_bench_sweep.py"),
    bench("init 8x8", "test_scheme[8x8-gone]", 1.0, False),
]


def test_load_gives_the_tidy_table(tmp_path: Path) -> None:
    run = load_benchmarks(write(tmp_path, "new.json", run_json(NEW)))
    t = run.table
    assert tuple(t.columns) == C.BENCHMARKS
    assert list(t["name"])[:2] == ["test_baseline[8x8]", "test_scheme[8x8-orthogonal]"]
    assert t["median_s"].tolist() == [2.0, 3.0, 1.0, 4.0, 40.0, 6.0]
    assert t["reference"].tolist() == [True, False, False, True, True, False]
    assert t["rounds"].tolist() == [5] * 6
    assert run.commit["id"] == "0123456789abcdef" and run.version == "5.3.1"


def test_reference_ratios_against_hand_computed_values(tmp_path: Path) -> None:
    r = reference_ratios(load_benchmarks(write(tmp_path, "new.json", run_json(NEW))).table)
    assert tuple(r.columns) == C.BENCHMARK_RATIOS
    got = list(zip(r["reference_name"], r["name"], r["ratio"], strict=True))
    assert got == [  # the reference first, then the others fastest first; once per reference
        ("test_baseline[8x8]", "test_baseline[8x8]", 1.0),
        ("test_baseline[8x8]", "test_scheme[8x8-zeros]", 0.5),  # 1 / 2
        ("test_baseline[8x8]", "test_scheme[8x8-orthogonal]", 1.5),  # 3 / 2
        ("test_baseline_floor", "test_baseline_floor", 1.0),
        ("test_baseline_floor", "test_sweep", 1.5),  # 6 / 4
        ("test_baseline_tutorial_loop", "test_baseline_tutorial_loop", 1.0),
        ("test_baseline_tutorial_loop", "test_sweep", 0.15),  # 6 / 40
    ]


def test_a_file_without_reference_flags_takes_the_name_that_sorts_first() -> None:
    rows = [bench("g", "test_scheme[b]", 3.0), bench("g", "test_baseline", 2.0),
            bench(None, "test_other", 1.0)]  # fmt: skip
    run = parse_benchmarks(run_json(rows), "old.json")
    assert run.table["reference"].tolist() == [False, True, True]
    r = reference_ratios(run.table)
    assert r.loc[r["name"] == "test_scheme[b]", "ratio"].item() == 1.5


def test_compare_against_the_previous_run_and_the_gate(tmp_path: Path) -> None:
    new = load_benchmarks(write(tmp_path, "new.json", run_json(NEW)))
    old = load_benchmarks(write(tmp_path, "old.json", run_json(OLD)))
    c = compare_benchmarks(old, new, BenchmarkGate.parse("median:25%")).set_index("name")
    assert list(c.index) == [*(b["name"] for b in NEW), "test_scheme[8x8-gone]"]
    assert c.at["test_scheme[8x8-orthogonal]", "median_ratio"] == pytest.approx(1.2)
    assert c.at["test_scheme[8x8-orthogonal]", "gate_value"] == pytest.approx(20.0)
    assert c.at["test_scheme[8x8-orthogonal]", "fails"] == ""  # 20 % is within 25 %
    assert c.at["test_scheme[8x8-zeros]", "median_ratio"] == pytest.approx(2.0)
    assert c.at["test_scheme[8x8-zeros]", "fails"] == "median:25%"  # 100 % is not
    assert c.at["test_baseline[8x8]", "median_ratio"] == 1.0
    assert (c.loc[["test_baseline_floor", "test_scheme[8x8-gone]"], "fails"] == "").all()
    assert math.isnan(c.at["test_baseline_floor", "median_ratio"])  # this run only
    assert math.isnan(c.at["test_scheme[8x8-gone]", "new_median_s"])  # the previous only
    faster = compare_benchmarks(new, old, BenchmarkGate.parse("median:0%")).set_index("name")
    assert faster.at["test_scheme[8x8-zeros]", "fails"] == ""  # a speed-up never fails


@pytest.mark.parametrize("gate", ["median:25%", "median:0%", "min:5%", "median:0.6", "iqr:0.01"])
def test_the_gate_flags_what_pytest_benchmark_flags(tmp_path: Path, gate: str) -> None:
    utils = pytest.importorskip("pytest_benchmark.utils")
    check = utils.parse_compare_fail(gate)
    new = load_benchmarks(write(tmp_path, "new.json", run_json(NEW)))
    old = load_benchmarks(write(tmp_path, "old.json", run_json(OLD)))
    c = compare_benchmarks(old, new, BenchmarkGate.parse(gate)).set_index("fullname")
    stats = {b["fullname"]: b["stats"] for b in OLD}
    for b in NEW:
        if b["fullname"] in stats:
            theirs = bool(check.fails(b["stats"], stats[b["fullname"]]))
            assert (c.at[b["fullname"], "fails"] != "") == theirs, b["name"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [("median:2.5%", "expected STAT:P%"), ("mediam:25%", "did you mean 'median'"),
     ("median", "expected STAT:P%"), ("median:-1%", "expected STAT:P%")],
)  # fmt: skip
def test_a_bad_gate_is_refused(text: str, needle: str) -> None:
    with pytest.raises(InitsuiteError, match=needle):
        BenchmarkGate.parse(text)


def test_section_text(tmp_path: Path) -> None:
    new = load_benchmarks(write(tmp_path, "new.json", run_json(NEW, torch="2.14.1")))
    old = load_benchmarks(write(tmp_path, "old.json", run_json(OLD)))
    text = benchmarks_section(new, old, BenchmarkGate.parse("median:25%"))
    assert text.startswith("## Benchmarks\n")
    assert "### Against each group's reference" in text
    verdict = "### Against the previous run: gate `median:25%` FAILED (1 of 4 benchmarks slower)"
    assert verdict in text
    lines = text.splitlines()
    zeros = [ln for ln in lines if "`test_scheme[8x8-zeros]`" in ln and "**slower**" in ln]
    assert len(zeros) == 1
    cells = [c.strip() for c in zeros[0].strip("|").split("|")]
    assert cells[2:6] == ["500", "1e+03", "2", "100"]  # ms before and now, × previous, change %
    first_row = next(ln for ln in lines if ln.startswith("| `init") and "previous" not in ln)
    assert "`test_baseline[8x8]`" in first_row  # the ratios table leads with the reference
    assert "- 2 benchmarks in this run only" in text and "- 1 in the previous run only" in text
    assert "machine differs: `torch: 2.13.0 → 2.14.1`" in text
    passed = benchmarks_section(new, old, BenchmarkGate.parse("median:150%"))
    assert "gate `median:150%` passed (4 benchmarks)" in passed
    assert not [ln for ln in passed.splitlines() if ln.startswith("|") and "**slower**" in ln]
    alone = benchmarks_section(new)
    assert "No previous run to compare with." in alone and "Against the previous" not in alone


def test_names_from_the_files_are_escaped_in_the_html_page(tmp_path: Path) -> None:
    evil = ["<script>alert(1)</script>", "[x](javascript:alert(1))", "a`b|c<img src=x>"]
    rows = [bench("<b>g</b>", "test_baseline", 1.0, True),
            *(bench("<b>g</b>", n, 2.0, False) for n in evil)]  # fmt: skip
    run = load_benchmarks(write(tmp_path, "new.json", run_json(rows)))
    page = markdown_html("# initsuite report: x\n\n" + benchmarks_section(run, run))
    assert "<script>alert" not in page and "<b>g</b>" not in page and "<img src=x" not in page
    assert 'href="javascript' not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;g&lt;/b&gt;" in page


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "is not JSON"),
        (json.dumps([1, 2]), "the top level is a list"),
        (json.dumps({**run_json(NEW), "benchmarks": None}), "'benchmarks' is missing"),
        (json.dumps(run_json([{**NEW[0], "stats": {**NEW[0]["stats"], "median": "fast"}}])),
         "benchmarks[0].stats.median is 'fast'"),
        (json.dumps(run_json([NEW[0], {**NEW[1], "stats": {**NEW[1]["stats"], "rounds": 0}}])),
         "benchmarks[1].stats.rounds is 0"),
        (json.dumps(run_json([NEW[0], NEW[0]])), "appears twice"),
        (json.dumps(run_json([{**NEW[0], "name": 3}])), "benchmarks[0].name"),
        ('{"benchmarks": [], "median": NaN}', "'machine_info' is missing"),
    ],
)  # fmt: skip
def test_a_malformed_file_is_refused_in_one_line(tmp_path: Path, content: str,
                                                  needle: str) -> None:  # fmt: skip
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InitsuiteError) as info:
        load_benchmarks(path)
    message = str(info.value)
    assert needle in message and str(path) in message and "\n" not in message


def test_a_nan_median_is_refused(tmp_path: Path) -> None:
    data = json.dumps(run_json([NEW[0]])).replace('"median": 2.0', '"median": NaN')
    with pytest.raises(InitsuiteError, match=r"stats\.median is nan, not a finite number"):
        parse_benchmarks(json.loads(data), "x.json")


def test_cli_refuses_a_bad_benchmark_file_before_reading_the_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path, "bad.json", {"benchmarks": []})
    code, _, err = run_cli(["report", str(tmp_path / "no-sweep"), "--benchmarks", str(bad)], capsys)
    assert code == 2 and str(bad) in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["report", str(tmp_path), "--benchmarks-previous", str(bad)], capsys)
    assert code == 2 and "--benchmarks-previous needs --benchmarks" in err
    good = write(tmp_path, "new.json", run_json(NEW))
    code, _, err = run_cli(["report", str(tmp_path), "--benchmarks", str(good),
                            "--benchmark-gate", "median:2.5%"], capsys)  # fmt: skip
    assert code == 2 and "benchmark gate 'median:2.5%'" in err

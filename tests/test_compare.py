"""Comparing two runs: cells lined up on their key, each kind of change detected, gates
that fail exactly when exceeded, the CLI's exit codes, --json, --out and the report section."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import run_cli

import initsuite
from initsuite.core.errors import InitsuiteError
from initsuite.report import render
from initsuite.report.comparison import compare_document, compare_section, compare_text
from initsuite.results import columns as C
from initsuite.results.comparison import compare
from initsuite.results.gates import Gate, Violations, parse_gates

# normal+linear at width 64 grows 8× per layer and overflows float32 at layer 42 (final std
# NaN), zeros underflows at layer 1 (final std 0): both edge cases of a ratio are in the grid.
GRID: dict[str, Any] = dict(schemes=["normal", "kaiming_normal", "zeros"],
                            activations=["linear", "relu"], depths=[5, 50], widths=[64],
                            seeds=2, timing_repeats=1)  # fmt: skip
N_CELLS = 3 * 2 * 2 * 2

STD_CELL = {"scheme": "kaiming_normal", "activation": "relu", "depth": 5, "seed": 0}
DIV_CELL = {"scheme": "normal", "activation": "linear", "depth": 50, "seed": 0}
DROPPED = {"scheme": "normal", "activation": "relu", "depth": 5, "seed": 1}
SLOW_ROW = {"scheme": "kaiming_normal"}
FAST_ROW = {"scheme": "zeros"}


def where(df: pd.DataFrame, **key: Any) -> pd.Series:
    mask = pd.Series(True, index=df.index)
    for k, v in key.items():
        mask &= df[k] == v
    return mask.to_numpy(bool)


def one(df: pd.DataFrame, **key: Any) -> pd.Series:
    rows = df[where(df, **key)]
    assert len(rows) == 1, (key, len(rows))
    return rows.iloc[0]


def edited(result: initsuite.SweepResult, cells: pd.DataFrame | None = None,
           timing: pd.DataFrame | None = None) -> initsuite.SweepResult:  # fmt: skip
    return initsuite.SweepResult(
        result.cells if cells is None else cells.reset_index(drop=True), result.layers,
        result.timing if timing is None else timing, result.meta,
    )  # fmt: skip


@pytest.fixture(scope="module")
def base() -> initsuite.SweepResult:
    return initsuite.sweep(**GRID, progress=False)


@pytest.fixture(scope="module")
def again() -> initsuite.SweepResult:
    return initsuite.sweep(**GRID, progress=False)


@pytest.fixture(scope="module")
def modified(base: initsuite.SweepResult) -> initsuite.SweepResult:
    """base with one final std 15% up, one divergence layer 1 later, a cell dropped, one
    timing row's init 1.5× slower and another's forward 2× faster."""
    cells = base.cells.copy()
    cells.loc[where(cells, **STD_CELL), "final_std"] *= 1.15
    div = where(cells, **DIV_CELL)
    assert cells.loc[div, "divergence_layer"].iloc[0] == 42  # the overflow described above
    cells.loc[div, "divergence_layer"] = 43
    cells = cells[~where(cells, **DROPPED)]
    timing = base.timing.copy()
    timing.loc[where(timing, **SLOW_ROW), "init_ms"] *= 1.5
    timing.loc[where(timing, **FAST_ROW), "forward_ms"] *= 0.5
    return edited(base, cells, timing)


@pytest.fixture(scope="module")
def dirs(
    base: initsuite.SweepResult, again: initsuite.SweepResult, modified: initsuite.SweepResult,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:  # fmt: skip
    root = tmp_path_factory.mktemp("runs")
    for name, r in (("base", base), ("again", again), ("modified", modified)):
        r.save(root / name)
    return {name: str(root / name) for name in ("base", "again", "modified")}


# --- the API ---------------------------------------------------------------------------------


def test_the_same_grid_twice_is_unchanged_and_passes_the_tightest_gates(
    base: initsuite.SweepResult, again: initsuite.SweepResult
) -> None:
    cmp = compare(
        base, again, gates="final_std:0%,growth_per_layer:0%,divergence_layer:0,missing:0"
    )
    assert cmp.passed and cmp.failures.empty
    assert cmp.counts() == {"same": N_CELLS, "changed": 0, "only_base": 0, "only_new": 0}
    assert list(cmp.cells.columns) == list(C.COMPARE_CELLS)
    assert list(cmp.timing.columns) == list(C.COMPARE_TIMING)
    # both NaN (overflowed at the same layer) and both zero are no change
    overflow = one(cmp.cells, **DIV_CELL)
    assert math.isnan(overflow["base_final_std"]) and math.isnan(overflow["new_final_std"])
    assert overflow["status"] == "same" and overflow["divergence_shift"] == 0
    zeros = cmp.cells[cmp.cells["scheme"] == "zeros"]
    assert (zeros["base_final_std"] == 0).all() and (zeros["final_std_ratio"] == 1).all()
    finite = cmp.cells["base_final_std"].notna()
    assert (cmp.cells.loc[finite, "final_std_ratio"] == 1).all()


def test_each_change_is_detected(
    base: initsuite.SweepResult, modified: initsuite.SweepResult
) -> None:
    cmp = compare(base, modified)
    assert cmp.passed  # no gates: changes are reported, nothing fails
    assert cmp.counts() == {"same": N_CELLS - 3, "changed": 2, "only_base": 1, "only_new": 0}
    std = one(cmp.cells, **STD_CELL)
    assert std["status"] == "changed" and std["final_std_ratio"] == pytest.approx(1.15)
    div = one(cmp.cells, **DIV_CELL)
    assert (div["status"], div["base_divergence_layer"], div["new_divergence_layer"],
            div["divergence_shift"]) == ("changed", 42, 43, 1)  # fmt: skip
    dropped = one(cmp.cells, **DROPPED)
    assert dropped["status"] == "only_base" and pd.isna(dropped["new_final_std"])
    assert one(cmp.timing, **SLOW_ROW)["init_ms_ratio"] == pytest.approx(1.5)
    assert one(cmp.timing, **FAST_ROW)["forward_ms_ratio"] == pytest.approx(0.5)
    # the largest changes: the divergence shift outranks a 15% std change
    top = cmp.largest_changes(5)
    assert list(top["scheme"]) == ["normal", "kaiming_normal"]
    assert cmp.only("base").to_dict("records") == [
        {"arch": "mlp", "scheme": "normal", "activation": "relu", "cells": 1}
    ]


def test_gates_fail_exactly_on_the_changes_that_exceed_them(
    base: initsuite.SweepResult, modified: initsuite.SweepResult
) -> None:
    gates = "final_std:10%,divergence_layer:0,init_ms:20%,forward_ms:20%,missing:0"
    cmp = compare(base, modified, gates=gates)
    assert not cmp.passed
    f = cmp.failures.set_index("gate")
    # forward_ms:20% is absent: a 2× speed-up is no failure
    assert sorted(f.index) == ["divergence_layer:0", "final_std:10%", "init_ms:20%",
                               "missing:0"]  # fmt: skip
    assert f.loc["final_std:10%", "value"] == pytest.approx(1.15)
    assert f.loc["final_std:10%", "limit"] == pytest.approx(1.1)
    assert "scheme=kaiming_normal activation=relu depth=5" in f.loc["final_std:10%", "key"]
    assert (f.loc["divergence_layer:0", "base"], f.loc["divergence_layer:0", "new"]) == (42, 43)
    assert f.loc["init_ms:20%", "value"] == pytest.approx(1.5)
    assert f.loc["missing:0", "value"] == 1
    assert one(cmp.cells, **STD_CELL)["fails"] == "final_std:10%"
    assert one(cmp.timing, **SLOW_ROW)["fails"] == "init_ms:20%"
    # wider gates let the same changes through
    loose = "final_std:20%,divergence_layer:1,init_ms:60%,forward_ms:0%,missing:1"
    assert compare(base, modified, gates=loose).passed


def test_cells_only_in_the_new_run_never_fail(
    base: initsuite.SweepResult, modified: initsuite.SweepResult
) -> None:
    cmp = compare(modified, base, gates="missing:0")  # base holds a cell modified lacks
    assert cmp.passed and cmp.counts()["only_new"] == 1


@pytest.mark.parametrize(
    ("old", "new", "limit", "fails"),
    [
        (1.0, 1.1, "10%", False),  # on the band's edge
        (1.0, 1.1001, "10%", True),
        (1.0, 1 / 1.1, "10%", False),
        (1.0, 0.9, "10%", True),  # the band is symmetric in the ratio: 1/1.1 ≈ 0.909
        (0.0, 0.0, "0%", False),  # zeros stay zeros
        (0.0, 1e-30, "1000%", True),  # ratio inf
        (1.0, 0.0, "1000%", True),  # ratio 0
        (math.nan, math.nan, "0%", False),  # diverged both times
        (1.0, math.nan, "1000%", True),  # diverged in one run only
        (math.nan, 1.0, "1000%", True),
        (math.inf, math.inf, "0%", False),
        (math.nan, math.inf, "1000%", True),
    ],
)  # fmt: skip
def test_final_std_band(
    base: initsuite.SweepResult, old: float, new: float, limit: str, fails: bool
) -> None:
    def set_std(value: float) -> initsuite.SweepResult:
        cells = base.cells.copy()
        cells.loc[where(cells, **STD_CELL), "final_std"] = value
        return edited(base, cells)

    cmp = compare(set_std(old), set_std(new), gates={"final_std": limit})
    assert cmp.passed is not fails
    changed = not (old == new or (math.isnan(old) and math.isnan(new)))
    assert (one(cmp.cells, **STD_CELL)["status"] == "changed") is changed


@pytest.mark.parametrize(
    ("old", "new", "limit", "fails"),
    [(None, None, 0, False), (None, 7, 10, True), (7, None, 10, True), (7, 9, 2, False),
     (7, 9, 1, True), (9, 7, 1, True)],
    ids=["neither", "appears", "vanishes", "moved-within", "moved-beyond", "moved-earlier"],
)  # fmt: skip
def test_divergence_layer_gate(
    base: initsuite.SweepResult, old: int | None, new: int | None, limit: int, fails: bool
) -> None:
    def set_layer(value: int | None) -> initsuite.SweepResult:
        cells = base.cells.copy()
        cells.loc[where(cells, **STD_CELL), "divergence_layer"] = value
        return edited(base, cells)

    cmp = compare(set_layer(old), set_layer(new), gates={"divergence_layer": limit})
    assert cmp.passed is not fails


def test_a_run_without_timing_compares_its_cells(
    base: initsuite.SweepResult, modified: initsuite.SweepResult
) -> None:
    no_timing = edited(modified, timing=C.frame(C.TIMING, []))
    cmp = compare(base, no_timing, gates="init_ms:0%,forward_ms:0%")
    assert cmp.passed and cmp.timing["new_init_ms"].isna().all()
    assert cmp.timing_ratios().empty


def test_duplicate_cell_keys_are_an_error(base: initsuite.SweepResult) -> None:
    twice = edited(base, pd.concat([base.cells, base.cells.iloc[:1]]))
    with pytest.raises(InitsuiteError, match="new run's cells has 2 rows sharing their key"):
        compare(base, twice)


# --- gates -----------------------------------------------------------------------------------


def test_parse_gates() -> None:
    gates = parse_gates("final_std:10%, divergence_layer:0,init_ms:12.5%,missing:3")
    assert gates == {
        "final_std": Gate("final_std", 0.1),
        "divergence_layer": Gate("divergence_layer", 0),
        "init_ms": Gate("init_ms", 0.125),
        "missing": Gate("missing", 3),
    }
    assert [str(g) for g in gates.values()] == [
        "final_std:10%", "divergence_layer:0", "init_ms:12.5%", "missing:3",
    ]  # fmt: skip
    assert gates["final_std"].bound == pytest.approx(1.1)


def test_each_gate_evaluates_itself(
    base: initsuite.SweepResult, modified: initsuite.SweepResult
) -> None:
    """A gate finds its failing rows on the lined-up tables, independently of compare()."""
    cmp = compare(base, modified)  # no gates: fails is empty everywhere
    cells, timing = cmp.cells, cmp.timing
    found = Gate.parse("final_std:10%").evaluate(cells, timing)
    assert isinstance(found, Violations) and found.table == "cells"
    assert list(found.rows) == list(np.flatnonzero(where(cells, **STD_CELL)))
    row = found.failures.iloc[0]
    assert row["value"] == pytest.approx(1.15) and row["limit"] == pytest.approx(1.1)
    assert row["key"].startswith("arch=mlp scheme=kaiming_normal activation=relu depth=5 ")
    assert Gate.parse("final_std:20%").evaluate(cells, timing).rows.size == 0
    moved = Gate.parse("divergence_layer:0").evaluate(cells, timing)
    assert list(moved.rows) == list(np.flatnonzero(where(cells, **DIV_CELL)))
    assert moved.failures["value"].tolist() == [1.0]  # 42 → 43
    slow = Gate.parse("init_ms:20%").evaluate(cells, timing)
    assert slow.table == "timing"
    assert list(slow.rows) == list(np.flatnonzero(where(timing, **SLOW_ROW)))
    missing = Gate.parse("missing:0").evaluate(cells, timing)
    assert list(missing.rows) == list(np.flatnonzero(where(cells, **DROPPED)))
    assert missing.failures["value"].tolist() == [1.0]
    assert Gate.parse("missing:1").evaluate(cells, timing).rows.size == 0


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("final_sdt:10%", ["unknown gate metric 'final_sdt'", "did you mean 'final_std'?"]),
        ("init:20%", ["unknown gate metric", "init_ms"]),
        ("final_std", ["must be a percentage", "final_std:10%"]),
        ("final_std:", ["must be a percentage"]),
        ("final_std:10", ["must be a percentage"]),
        ("final_std:ten%", ["must be a percentage"]),
        ("final_std:-5%", ["must be a percentage"]),
        ("divergence_layer:1.5", ["whole number of layers", "divergence_layer:0"]),
        ("divergence_layer:10%", ["whole number of layers"]),
        ("missing:x", ["whole number of cells"]),
        ("final_std:10%,final_std:5%", ["'final_std' given twice"]),
        (" , ", ["no gates"]),
    ],
    ids=["typo", "prefix", "no-limit", "empty-limit", "bare-number", "not-a-number", "negative",
         "fractional-layers", "percent-layers", "bad-count", "twice", "empty"],
)  # fmt: skip
def test_malformed_gates_are_one_clear_error(text: str, needles: list[str]) -> None:
    with pytest.raises(InitsuiteError) as info:
        parse_gates(text)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_mapping_gates(base: initsuite.SweepResult, modified: initsuite.SweepResult) -> None:
    cmp = compare(base, modified, gates={"final_std": "10%", "divergence_layer": 0})
    assert sorted(cmp.failures["metric"]) == ["divergence_layer", "final_std"]
    assert compare(base, modified, gates=parse_gates("final_std:20%")).passed
    # 0.1 could mean 10% or 0.1%: a percentage must be written as one
    with pytest.raises(InitsuiteError, match="percentage"):
        compare(base, modified, gates={"final_std": 0.1})  # type: ignore[dict-item]
    with pytest.raises(InitsuiteError, match="did you mean 'forward_ms'"):
        compare(base, modified, gates={"forward": "10%"})


# --- the command line ------------------------------------------------------------------------


def test_cli_same_runs_exit_0(dirs: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["compare", dirs["base"], dirs["again"], "--fail",
                              "final_std:0%,divergence_layer:0,missing:0"], capsys)  # fmt: skip
    assert code == 0, err
    assert f"{N_CELLS} same, 0 changed" in out and "gates: passed" in out


@pytest.mark.parametrize(
    ("gates", "code"),
    [(None, 0), ("final_std:10%", 1), ("final_std:20%", 0), ("divergence_layer:0", 1),
     ("final_std:20%,divergence_layer:0", 1), ("init_ms:20%", 1), ("forward_ms:20%", 0),
     ("missing:0", 1), ("missing:1", 0)],
)  # fmt: skip
def test_cli_exit_code_follows_the_gates(
    gates: str | None, code: int, dirs: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["compare", dirs["base"], dirs["modified"]] + (["--fail", gates] if gates else [])
    got, out, err = run_cli(args, capsys)
    assert got == code, err
    assert err == ""
    assert "2 changed" in out and "1 only in base" in out
    if code:
        assert "FAILED" in out


def test_cli_json(dirs: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["compare", dirs["base"], dirs["modified"], "--json", "--fail",
                            "final_std:10%,init_ms:20%"], capsys)  # fmt: skip
    assert code == 1
    doc = json.loads(out)  # strict JSON: NaN would not parse with parse_constant refusing it
    json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert doc["passed"] is False and doc["gates"] == ["final_std:10%", "init_ms:20%"]
    assert doc["counts"] == {"same": N_CELLS - 3, "changed": 2, "only_base": 1, "only_new": 0}
    assert sorted(f["gate"] for f in doc["failures"]) == ["final_std:10%", "init_ms:20%"]
    assert {c["status"] for c in doc["cells"]} == {"changed", "only_base"}
    assert len(doc["timing"]) == 3


def test_cli_out_writes_markdown(
    dirs: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "compare.md"
    code, _, err = run_cli(["compare", dirs["base"], dirs["modified"], "--out", str(out),
                            "--fail", "final_std:10%"], capsys)  # fmt: skip
    assert code == 1, err
    text = out.read_text()
    assert text.startswith("# initsuite compare:")
    assert "## Largest changes (2 of 2; ratio = new/base)" in text
    assert "## Only in base (1 cell)" in text and "## Slowest timing rows (3 shown)" in text
    assert "## Timing ratios" in text and "## Gates: FAILED (1 violations)" in text
    assert "| kaiming_normal |" in text


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--fail", "final_sdt:10%"], ["did you mean 'final_std'?"]),
        (["--fail", "divergence_layer:1.5"], ["whole number"]),
        (["--top", "-1"], ["--top"]),
    ],
)
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(
    args: list[str], needles: list[str], dirs: dict[str, str], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "compare.md"
    code, stdout, err = run_cli(["compare", dirs["base"], dirs["modified"], "--out", str(out),
                                 *args], capsys)  # fmt: skip
    assert code == 2 and stdout == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_cli_missing_run_is_exit_2(
    dirs: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["compare", str(tmp_path / "nope"), dirs["base"]], capsys)
    assert code == 2 and "nope" in err and len(err.strip().splitlines()) == 1


def test_cli_output_is_the_renderers(
    dirs: dict[str, str], base: initsuite.SweepResult, modified: initsuite.SweepResult,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """The command prints compare_text, and its layout is the one CI scripts read."""
    args = ["compare", dirs["base"], dirs["modified"], "--fail", "final_std:10%,missing:0",
            "--top", "1"]  # fmt: skip
    code, out, _ = run_cli(args, capsys)
    cmp = compare(base, modified, gates="final_std:10%,missing:0", labels=(dirs["base"],
                  dirs["modified"]))  # fmt: skip
    assert code == 1 and out == compare_text(cmp, top=1) + "\n"
    lines = out.splitlines()
    assert lines[0] == f"initsuite compare: {dirs['base']} (base) -> {dirs['modified']} (new)"
    assert lines[1].startswith(f"{N_CELLS} cells in base, {N_CELLS - 1} in new: ")
    heads = [lines[i + 1] for i, line in enumerate(lines) if line == ""]  # after a blank line
    assert heads == [
        "largest changes (1 of 2; ratio = new/base):", "only in base (1 cell):",
        "timing ratios (new/base median ms; > 1 is slower):", "slowest timing rows (3 shown):",
        "gates: FAILED (2 violations)",
    ]  # fmt: skip
    assert lines[-3].split() == ["gate", "violations", "worst", "result"]
    assert lines[-2].split() == ["final_std:10%", "1", "1.15", "FAIL"]
    assert lines[-1].split() == ["missing:0", "1", "1", "FAIL"]


def test_text_and_markdown_show_the_same_sections(
    base: initsuite.SweepResult, modified: initsuite.SweepResult
) -> None:
    cmp = compare(base, modified, gates="final_std:20%")
    text, doc = compare_text(cmp), compare_document(cmp)
    titles = ["largest changes (2 of 2; ratio = new/base)", "only in base (1 cell)",
              "timing ratios (new/base median ms; > 1 is slower)",
              "slowest timing rows (3 shown)", "gates: passed"]  # fmt: skip
    for title in titles:
        assert f"\n{title}" in text
        assert f"\n## {title[0].upper()}{title[1:]}\n" in doc
        assert f"\n### {title[0].upper()}{title[1:]}\n" in compare_section(cmp)
    assert "Changed cells: those failing a gate first" in doc  # captions: Markdown only
    assert "Changed cells" not in text
    no_timing = compare(edited(base, timing=base.timing.iloc[:0]), modified)
    assert "\ntiming: no timing row is in both runs" in compare_text(no_timing)
    assert "## Timing: no timing row is in both runs" in compare_document(no_timing)


@pytest.mark.parametrize("top", [-1, 1.5, True])
def test_renderers_refuse_a_bad_top(
    top: Any, base: initsuite.SweepResult, modified: initsuite.SweepResult
) -> None:
    cmp = compare(base, modified)
    for render_ in (compare_text, compare_document, compare_section):
        with pytest.raises(InitsuiteError, match=r"^top must be"):
            render_(cmp, top=top)


# --- the report ------------------------------------------------------------------------------


def test_report_section(base: initsuite.SweepResult, modified: initsuite.SweepResult) -> None:
    cmp = compare(base, modified, labels=("results/old", "results/new"))
    text = render(modified, comparison=cmp)
    section = text[text.index("## Compared with `results/old`") :]
    assert f"{N_CELLS - 1} in new: {N_CELLS - 3} same, 2 changed" in section
    assert "### Largest changes" in section and "### Only in base (1 cell)" in section
    assert "### Timing ratios" in section and "### Gates" not in section
    changes = section[section.index("### Largest changes") :]
    changes = changes[: changes.index("\n### ", 1)]  # not the timing ratios, which may hold 43
    rows = [ln for ln in changes.splitlines() if ln.startswith("| normal ") and "43" in ln]
    assert len(rows) == 1  # the shifted divergence: 42 → 43
    assert "## Compared with" not in render(modified)


def test_report_cli_with_compare(
    dirs: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], fast_figures: None
) -> None:
    code, _, err = run_cli(["report", dirs["modified"], "--compare", dirs["base"], "--out",
                              str(tmp_path / "rep")], capsys)  # fmt: skip
    assert code == 0, err
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "## Compared with `" in text and "2 changed" in text
    # the report before the comparison is the same as without it
    assert text.index("## Timing") < text.index("## Compared with")


def test_ratio_helper_never_warns() -> None:
    # pytest turns warnings into errors (pyproject): 0/0, x/0 and inf/inf must be silent
    from initsuite.results.gates import ratio as _ratio

    b = np.array([0.0, 0.0, 1.0, np.inf, np.nan, 2.0])
    n = np.array([0.0, 3.0, 0.0, np.inf, 1.0, 1.0])
    got = _ratio(b, n)
    np.testing.assert_array_equal(got, [1.0, np.inf, 0.0, np.nan, np.nan, 0.5])


def test_gradient_gates() -> None:
    """With --backward: a 20% change of one cell's input gradient std and a moved gradient
    divergence are changes, and fail input_grad_std:10% and grad_divergence_layer:0; the
    same sweep twice passes both at 0."""
    # normal:std=100 at width 32 (a gain of about 570 a layer) overflows the gradient within
    # a few layers: narrow and shallow, and still a gradient divergence to move
    kw = dict(activations="tanh", depths=[5, 10], widths=32, seeds=1, timing=False,
              backward=True)  # fmt: skip
    a = initsuite.sweep(["kaiming_normal", "normal:std=100.0"], **kw)
    b = initsuite.sweep(["kaiming_normal", "normal:std=100.0"], **kw)
    assert compare(a, b, gates="input_grad_std:0%,grad_divergence_layer:0").passed
    cells = a.cells.copy()
    k = one(cells, scheme="kaiming_normal", depth=5).name
    cells.loc[k, "input_grad_std"] *= 1.2
    div = cells.index[cells["grad_divergence_layer"].notna()][0]  # normal:std=100, 5 layers
    cells.loc[div, "grad_divergence_layer"] += 1
    c = compare(a, edited(a, cells), gates="input_grad_std:10%,grad_divergence_layer:0")
    assert not c.passed
    assert set(c.failures["metric"]) == {"input_grad_std", "grad_divergence_layer"}
    assert (c.cells["status"] == "changed").sum() == 2
    assert compare(a, edited(a, cells), gates="input_grad_std:25%").passed

"""The measured numbers of the README and the docs are those of one dated run: every marked
span equals what ``make reference`` writes from results/reference/figures.json
(initsuite.report.prose), so a number edited by hand, or a figures.json the prose has not
followed, fails here."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from initsuite.core.errors import InitsuiteError
from initsuite.report import prose

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "results" / "reference" / "figures.json"
# what make reference rewrites (the Makefile's FIGURE_PAGES)
PAGES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "docs" / "guides").glob("*.md")),
]


def _figures() -> dict:
    return json.loads(FIGURES.read_text(encoding="utf-8"))


def test_the_prose_quotes_the_dated_run() -> None:
    problems = prose.check(PAGES, _figures())
    assert not problems, "\n".join(
        [
            "the prose and results/reference/figures.json disagree (make reference rewrites it):",
            *problems,
        ]
    )


def test_the_readme_and_the_pages_quote_their_measured_figures() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    quoted = {m.group("name") for m in prose.MARK.finditer(text)}
    for name in (
        "machine",
        "date",
        "step.total",
        "tests.count",
        "tests.time",
        "study.cells",
        "train.relu.kaiming_normal.accuracy",
        "bench.default_sweep_vs_floor_with_work",
        "bench.loop_vs_default_sweep",
    ):
        assert name in quoted, f"README.md no longer quotes {name} from the dated run"
    assert "12.5×" not in text  # a best-of-several figure no run of make bench measures


def test_only_pages_make_reference_rewrites_carry_markers() -> None:
    marked = {
        p
        for p in [
            *ROOT.glob("*.md"),
            *(ROOT / "docs").rglob("*.md"),
            *(ROOT / "bench").glob("*.md"),
        ]
        if prose.MARK.search(p.read_text(encoding="utf-8"))
    }
    assert marked <= set(PAGES), f"markers outside FIGURE_PAGES: {sorted(marked - set(PAGES))}"


def test_a_figure_the_run_lacks_reads_pending() -> None:
    figures = _figures()
    pending_tests = figures.get("tests") is None
    shown = prose.texts(figures)["tests.count"]
    assert (shown == prose.PENDING) == pending_tests


def test_check_fails_on_a_number_edited_by_hand(tmp_path: Path) -> None:
    copy = tmp_path / "README.md"
    shutil.copy(ROOT / "README.md", copy)
    figures = _figures()
    want = prose.texts(figures)["train.relu.kaiming_normal.accuracy"]
    span = f"<!-- fig:train.relu.kaiming_normal.accuracy -->{want}<!-- /fig -->"
    text = copy.read_text(encoding="utf-8")
    assert span in text
    copy.write_text(text.replace(span, span.replace(want, "0.92")), encoding="utf-8")
    problems = prose.check([copy], figures)
    assert len(problems) == 1 and "train.relu.kaiming_normal.accuracy" in problems[0]
    assert "'0.92'" in problems[0] and repr(want) in problems[0]
    cmd = [sys.executable, "-m", "initsuite.report.prose"]
    done = subprocess.run(
        [*cmd, "--check", str(FIGURES), str(copy)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and "train.relu.kaiming_normal.accuracy" in done.stderr
    fixed = subprocess.run([*cmd, str(FIGURES), str(copy)], timeout=60)  # make reference's step
    assert fixed.returncode == 0
    assert copy.read_text(encoding="utf-8") == text


def test_check_fails_when_the_figures_change_without_the_prose() -> None:
    figures = _figures()
    figures["study"] = {**(figures.get("study") or {}), "cells": 1}
    problems = prose.check([ROOT / "README.md"], figures)
    assert problems and all("study.cells" in p for p in problems)


def test_an_unknown_figure_is_an_error_with_the_nearest_name() -> None:
    text = "<!-- fig:study.cell -->5040<!-- /fig -->"
    with pytest.raises(InitsuiteError, match=r"unknown figure .study\.cell.; did you mean"):
        prose.fill(text, _figures(), "page.md")


def test_texts_format_a_complete_run() -> None:
    figures = {
        "date": "2026-12-01T07:47:03+00:00",
        "machine": {"cpu": "Test CPU", "cpu_count": 2, "torch": "2.13.0+cpu"},
        "steps": {"set-up": 139.4, "total": 865.2},
        "study": {"cells": 5040, "sweep_seconds": 159.095},
        "tutorial": None,
        "training": {
            "relu.xavier_normal": {
                "runs": 3,
                "reached": 0,
                "median_steps": None,
                "test_accuracy": 0.10123,
            }
        },
        "benchmarks": {
            "count": 242,
            "ratios": {"sweep_vs_floor": 1.254},
            "deep_rss_mb": None,
            "init": {"256x256": {"orthogonal": 6.21}},
        },
        "tests": {"tests": 1659, "skipped": 3, "seconds": 125.4},
        "environment": {"lock": "requirements/lock-x86_64.txt", "venv_mb": 7192,
                        "import_torch_s": 1.412, "torch": "2.14.1+cu130"},
    }  # fmt: skip
    t = prose.texts(figures)
    assert (t["env.venv_gb"], t["env.import_torch"]) == ("7.0 GB", "1.41 s")
    assert prose.texts({})["env.venv_gb"] == prose.PENDING
    assert t["machine"] == "Test CPU, 2 logical cores, torch 2.13.0+cpu"
    assert (t["date"], t["step.set-up"], t["step.total"]) == (
        "2026-12-01",
        "2 min 19 s",
        "14 min 25 s",
    )
    assert (t["step.study"], t["bench.loop_vs_sweep"]) == (prose.PENDING, prose.PENDING)
    assert t["bench.sweep_vs_floor"] == "1.25×" and t["bench.count"] == "242"
    assert t["train.relu.xavier_normal.accuracy"] == "0.101"
    assert t["train.relu.xavier_normal.steps"] == prose.PENDING
    assert (t["tests.count"], t["tests.time"]) == ("1659", "2 min 5 s")
    assert "| `orthogonal` | 6.21× |" in t["bench.init_table"]
    # the tutorial's rows are not stored: any name under it is pending, not unknown
    page = "<!-- fig:tutorial.n_0_1_linear.mean -->32<!-- /fig -->"
    assert prose.fill(page, figures) == page.replace(">32<", f">{prose.PENDING}<")


def test_figures_json_replaces_only_a_figures_record(tmp_path: Path) -> None:
    from initsuite.results import figures as F

    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    with pytest.raises(InitsuiteError, match="not a figures record"):
        F.write(_figures(), notes)
    assert notes.read_text() == "my notes\n"
    record = tmp_path / "figures.json"
    F.write(_figures(), record)  # a new file, then its own record again
    F.write({**_figures(), "run": "again"}, record)
    assert json.loads(record.read_text())["run"] == "again"

"""The figures the README and the docs quote, read from one stored ``make bench`` run.

:func:`collect` reads a run directory (``results/latest``) and returns one JSON-able record:
the machine and date of the run, ``make bench``'s step times (``steps.json``), the default
study's size and sweep time, the tutorial's claims, the training study's accuracies, the
benchmark suite's ratios (``benchmarks.json``) and ``make test``'s count and time
(``tests.xml``, pytest's JUnit XML) and what the locked environment costs (``environment.json``:
its size on disk, ``import torch``'s time). What the run lacks is ``None`` in the record and named,
with the reason, under ``"pending"``: nothing is typed in. ``make reference`` writes it to
``results/reference/figures.json`` (:func:`write`), and :mod:`initsuite.report.prose` puts it
into the prose. Never imports torch::

    python -m initsuite.results.figures results/latest results/reference/figures.json
"""

from __future__ import annotations

import json
import os
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from initsuite.core.errors import InitsuiteError, run_module
from initsuite.results.benchmarks import BenchmarkRun, load_benchmarks
from initsuite.results.layout import META
from initsuite.results.outputs import check_output
from initsuite.results.steps import read_steps, step_seconds

__all__ = ["BENCH_RATIOS", "SCHEMA", "collect", "main", "slug", "write"]

SCHEMA = 1
BENCH_JSON = "benchmarks.json"
TESTS_XML = "tests.xml"
STEPS_JSON = "steps.json"
ENV_JSON = "environment.json"

# (name, numerator, denominator): medians of the issue-3 grid's group ("sweep 288 cells"),
# as bench/conftest.py divides them; the plain loop is a long reference (make bench BENCH_ARGS=)
BENCH_RATIOS: tuple[tuple[str, str, str], ...] = (
    ("loop_vs_default_sweep", "test_baseline_tutorial_loop", "test_default_sweep"),
    ("loop_vs_sweep", "test_baseline_tutorial_loop", "test_sweep"),
    ("sweep_vs_floor", "test_sweep", "test_baseline_floor"),
    ("default_sweep_vs_floor_with_work", "test_default_sweep", "test_baseline_floor_with_work"),
)


def slug(text: str) -> str:
    """A figure name's part from a spec or label: ``xavier_normal:gain=auto`` ->
    ``xavier_normal_gain_auto``."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InitsuiteError(f"cannot read {str(path)!r}: {exc}") from None


def _study(run: Path, pending: dict[str, str]) -> tuple[dict[str, Any] | None, dict | None]:
    meta_path = run / "study" / META
    if not meta_path.is_file():
        pending["study"] = f"no {meta_path}"
        return None, None
    meta = _json(meta_path)
    env = meta.get("environment") or {}
    machine = {k: env.get(k) for k in ("cpu", "cpu_count", "torch", "torch_threads", "python")}
    study = {"cells": meta.get("cells"), "sweep_seconds": meta.get("sweep_seconds"),
             "utc_time": env.get("utc_time")}  # fmt: skip
    return machine, study


def _tutorial(run: Path, pending: dict[str, str]) -> dict[str, Any] | None:
    from initsuite.results.tutorial import TutorialResult

    if not (run / "tutorial" / META).is_file():
        pending["tutorial"] = f"no {run / 'tutorial' / META}"
        return None
    claims = TutorialResult.load(run / "tutorial").claims
    measured = {slug(str(r.experiment)): {"mean": float(r.measured_mean),
                                          "sd": float(r.measured_sd), "seeds": int(r.seeds)}
                for r in claims.itertuples()}  # fmt: skip
    return {"claims": len(claims), "agree": int(claims["agree"].sum()), "measured": measured}


def _training(run: Path, pending: dict[str, str]) -> dict[str, Any] | None:
    from initsuite.results.training import TrainingResult

    if not (run / "training" / META).is_file():
        pending["training"] = f"no {run / 'training' / META}"
        return None
    out: dict[str, Any] = {}
    for r in TrainingResult.load(run / "training").summary().itertuples():
        steps = r.median_steps_to_threshold
        out[f"{slug(str(r.activation))}.{slug(str(r.scheme))}"] = {
            "runs": int(r.runs), "reached": int(r.reached),
            "median_steps": None if pd.isna(steps) else float(steps),  # none reached
            "test_accuracy": float(r.mean_final_test_accuracy),
        }  # fmt: skip
    return out


def _benchmarks(run: Path, pending: dict[str, str]) -> dict[str, Any] | None:
    path = run / BENCH_JSON
    if not path.is_file():
        pending["benchmarks"] = f"no {path} (make bench's suite step writes it)"
        return None
    bench = load_benchmarks(path)  # checked: a malformed file is one line naming it
    rows = bench.table.assign(base=bench.table["name"].str.partition("[")[0])
    plain = rows[~rows["name"].str.contains("[", regex=False)]
    ratios: dict[str, float | None] = {}
    for name, top, bottom in BENCH_RATIOS:
        num, den = (plain.loc[plain["base"] == n, "median_s"] for n in (top, bottom))
        ratios[name] = None if num.empty or den.empty else round(num.iloc[0] / den.iloc[0], 3)
        if ratios[name] is None:
            pending[f"benchmarks.{name}"] = f"{top} or {bottom} not in {path}"
    deep = [bench.extra[f].get("peak_rss_mb") for f in rows.loc[rows["group"] == "deep sweep",
                                                                  "fullname"]]  # fmt: skip
    if not deep:
        pending["benchmarks.deep_rss_mb"] = "the deep sweep is a long reference: BENCH_ARGS="
    return {"count": len(rows), "ratios": ratios, "init": _init_ratios(bench),
            "deep_rss_mb": deep[0] if deep else None}  # fmt: skip


def _init_ratios(bench: BenchmarkRun) -> dict[str, dict[str, float]]:
    """Each scheme's median ÷ ``test_baseline``'s (``normal_``), per "init RxC" group."""
    init: dict[str, dict[str, float]] = {}
    t = bench.table
    for group in sorted(g for g in set(t["group"]) if g.startswith("init ")):
        rows = t[t["group"] == group]
        ref = rows.loc[rows["name"].str.startswith("test_baseline"), "median_s"]
        if ref.empty or not ref.iloc[0]:
            continue
        init[group.removeprefix("init ")] = {
            bench.extra[r.fullname]["scheme"]: round(r.median_s / ref.iloc[0], 3)
            for r in rows.itertuples()
            if not r.name.startswith("test_baseline") and "scheme" in bench.extra[r.fullname]
        }
    return init


def _tests(run: Path, pending: dict[str, str]) -> dict[str, Any] | None:
    path = run / TESTS_XML
    if not path.is_file():
        pending["tests"] = f"no {path}: PYTEST_ADDOPTS=--junitxml={path} make test writes it"
        return None
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise InitsuiteError(f"cannot read {str(path)!r}: {exc}") from None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    if not suites:
        raise InitsuiteError(f"{str(path)!r} holds no <testsuite>: not pytest's JUnit XML")

    def total(key: str) -> int:
        return sum(int(s.get(key, 0)) for s in suites)

    return {"tests": total("tests"), "failures": total("failures"), "errors": total("errors"),
            "skipped": total("skipped"), "seconds": round(sum(float(s.get("time", 0))
                                                              for s in suites), 3),
            "utc_time": suites[0].get("timestamp")}  # fmt: skip


def _environment(run: Path, pending: dict[str, str]) -> dict[str, Any] | None:
    """What the locked environment cost (``environment.json``, bench/env_cost.py): its size on
    disk and the time of ``import torch``."""
    path = run / ENV_JSON
    if not path.is_file():
        pending["environment"] = f"no {path} (make bench writes it)"
        return None
    env = _json(path)
    keys = ("lock", "venv_mb", "import_torch_s", "torch")
    if not isinstance(env, dict) or any(k not in env for k in keys):
        raise InitsuiteError(f"{str(path)!r}: expected the keys {', '.join(keys)}")
    return {k: env[k] for k in keys}


def collect(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The figures of the stored run ``run_dir`` (a link such as ``results/latest`` is
    followed, and the run's own name recorded); what it lacks is None and listed in
    ``"pending"`` with the reason.

    Raises:
        InitsuiteError: ``run_dir`` is not a directory, or a file in it is unreadable.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise InitsuiteError(f"run directory {str(run_dir)!r} does not exist: run make bench")
    pending: dict[str, str] = {}
    machine, study = _study(run, pending)
    steps = read_steps(run / STEPS_JSON)
    if not steps:
        pending["steps"] = f"no {run / STEPS_JSON} (make bench writes it)"
    return {
        "schema": SCHEMA,
        "run": run.resolve().name,
        "date": (study or {}).get("utc_time"),
        "machine": machine,
        "steps": step_seconds(steps) or None,
        "study": study,
        "tutorial": _tutorial(run, pending),
        "training": _training(run, pending),
        "benchmarks": _benchmarks(run, pending),
        "tests": _tests(run, pending),
        "environment": _environment(run, pending),
        "pending": pending,
    }


def write(figures: dict[str, Any], out: str | os.PathLike[str]) -> Path:
    """Write ``figures`` as JSON to ``out`` atomically, through the output check."""
    from initsuite.results.store import atomic_write_text

    target = check_output(out, "update")
    if target.exists() and not _is_record(target):
        raise InitsuiteError(
            f"{str(target)!r} exists and is not a figures record initsuite wrote (a JSON object "
            f"with schema {SCHEMA}): move it away or name a new file"
        )
    return atomic_write_text(target, json.dumps(figures, indent=1, sort_keys=True) + "\n")


def _is_record(path: Path) -> bool:
    """Whether ``path`` holds a figures record (what :func:`write` may replace)."""
    if path.is_symlink() or not path.is_file():  # a FIFO would block the read
        return False
    try:
        record = _json(path)
    except InitsuiteError:
        return False
    return isinstance(record, dict) and record.get("schema") == SCHEMA and "pending" in record


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m initsuite.results.figures RUN_DIR OUT``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m initsuite.results.figures RUN_DIR OUT", file=sys.stderr)
        return 2
    figures = collect(args[0])
    write(figures, args[1])
    for what, why in figures["pending"].items():
        print(f"pending: {what}: {why}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_module(main, "initsuite.results.figures")

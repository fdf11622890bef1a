"""make bench's step timer and the figures of one stored run (initsuite.results.steps,
initsuite.results.figures), on a tiny run directory made here: what it holds is read, what it
lacks is pending with its reason, and nothing else is invented."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from initsuite.core.errors import InitsuiteError
from initsuite.results import columns as C
from initsuite.results import figures as F
from initsuite.results import steps as S
from initsuite.results.training import TrainingResult
from initsuite.results.tutorial import TutorialResult

ENV = {
    "cpu": "Test CPU 9000",
    "cpu_count": 2,
    "torch": "2.13.0+cpu",
    "torch_threads": 2,
    "python": "3.11.7",
    "utc_time": "2026-12-01T07:47:03+00:00",
}


def _training(out: Path) -> None:
    runs = []
    for scheme, reached, acc in (("kaiming_normal", True, 0.9), ("xavier_normal", False, 0.1)):
        for seed, a in ((0, acc - 0.01), (1, acc + 0.01)):
            runs.append(
                {
                    "scheme": scheme,
                    "activation": "relu",
                    "depth": 30,
                    "width": 128,
                    "seed": seed,
                    "steps": 400,
                    "steps_to_threshold": 190 if reached else None,
                    "reached": reached,
                    "diverged": False,
                    "diverged_step": None,
                    "initial_train_loss": 2.3,
                    "final_train_loss": 0.1 if reached else 2.3,
                    "final_train_accuracy": a,
                    "final_test_accuracy": a,
                }
            )
    curves = C.frame(C.TRAINING, [])
    TrainingResult(curves, C.frame(C.TRAINING_RUNS, runs), {"kind": "training"}).save(out)


def _tutorial(out: Path) -> None:
    claims = [
        {
            "experiment": "N(0,1), linear",
            "scheme": "normal",
            "activation": "linear",
            "dtype": "float32",
            "quantity": "divergence_layer",
            "tutorial": "nan at 31",
            "expected": 32.0,
            "expected_source": "tutorial",
            "measured_mean": 32.0,
            "measured_sd": 0.0,
            "measured_min": 32.0,
            "measured_max": 32.0,
            "seeds": 10,
            "tolerance": 1.0,
            "agree": True,
            "note": "",
        },
        {
            "experiment": "Xavier (gain 1), ReLU",
            "scheme": "xavier_uniform",
            "activation": "relu",
            "dtype": "float32",
            "quantity": "growth_per_layer",
            "tutorial": "halves",
            "expected": 0.706,
            "expected_source": "theory",
            "measured_mean": 0.70312,
            "measured_sd": 0.0042,
            "measured_min": 0.696,
            "measured_max": 0.711,
            "seeds": 10,
            "tolerance": 0.0126,
            "agree": False,
            "note": "",
        },
    ]
    layers = C.frame(C.TUTORIAL_LAYERS, [])
    TutorialResult(C.frame(C.TUTORIAL, claims), layers, {"kind": "tutorial"}).save(out)


def _bench(name: str, group: str, median: float, **extra: object) -> dict:
    """A benchmark as pytest-benchmark's JSON holds it."""
    stats = {s: median for s in ("min", "max", "mean", "median")}
    stats.update(stddev=0.0, iqr=0.0, ops=1 / median, rounds=3)
    return {"name": name, "fullname": f"bench/test_x.py::{name}", "group": group,
            "stats": stats, "extra_info": extra}  # fmt: skip


def _run(tmp_path: Path, *, long_refs: bool = True) -> Path:
    run = tmp_path / "runs" / "20261201T074703Z"
    (run / "study").mkdir(parents=True)
    meta = {"kind": "sweep", "cells": 5040, "sweep_seconds": 159.095, "environment": ENV}
    (run / "study" / "meta.json").write_text(json.dumps(meta))
    S.record(run / "steps.json", "set-up", 139.2)
    S.record(run / "steps.json", "training", 78.0)
    S.record(run / "steps.json", "training", 27.4)  # the report: the same step, added up
    S.record(run / "steps.json", "total", 865.0)
    _training(run / "training")
    _tutorial(run / "tutorial")
    grid = "sweep 288 cells"
    rows = [
        _bench("test_baseline_floor", grid, 0.8),
        _bench("test_sweep", grid, 1.0),
        _bench("test_baseline_floor_with_work", grid, 1.5),
        _bench("test_default_sweep", grid, 2.0),
        _bench("test_baseline[256x256]", "init 256x256", 0.2, scheme="baseline:normal_"),
        _bench("test_scheme[256x256-orthogonal]", "init 256x256", 1.3, scheme="orthogonal"),
    ]
    if long_refs:
        rows += [
            _bench("test_baseline_tutorial_loop", grid, 14.0),
            _bench("test_deep_sweep_memory", "deep sweep", 34.0, peak_rss_mb=323.4),
        ]
    (run / "benchmarks.json").write_text(json.dumps({
        "machine_info": {}, "commit_info": {}, "benchmarks": rows,
        "datetime": "2026-12-01T08:00:00", "version": "5.3.1"}))  # fmt: skip
    (run / "tests.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" '
        'failures="0" skipped="3" tests="1659" time="125.4" timestamp="2026-12-01T08:10:00">'
        "</testsuite></testsuites>"
    )
    (run / "environment.json").write_text(json.dumps(
        {"lock": "requirements/lock-x86_64.txt", "venv_mb": 7192, "import_torch_s": 1.412,
         "torch": "2.14.1+cu130"}))  # fmt: skip
    latest = tmp_path / "latest"
    latest.symlink_to(run, target_is_directory=True)
    return latest


def test_collect_reads_every_figure_of_a_run(tmp_path: Path) -> None:
    fig = F.collect(_run(tmp_path))
    assert fig["run"] == "20261201T074703Z"  # the link's target, not "latest"
    assert fig["date"] == ENV["utc_time"]
    assert fig["machine"]["cpu"] == "Test CPU 9000" and fig["machine"]["cpu_count"] == 2
    assert fig["steps"] == {"set-up": 139.2, "training": 105.4, "total": 865.0}
    assert fig["study"]["cells"] == 5040
    assert fig["tutorial"]["claims"] == 2 and fig["tutorial"]["agree"] == 1
    assert fig["tutorial"]["measured"]["xavier_gain_1_relu"]["mean"] == pytest.approx(0.70312)
    kaiming = fig["training"]["relu.kaiming_normal"]
    assert kaiming == {
        "runs": 2,
        "reached": 2,
        "median_steps": 190.0,
        "test_accuracy": pytest.approx(0.9),
    }
    assert fig["training"]["relu.xavier_normal"]["median_steps"] is None  # none reached
    ratios = fig["benchmarks"]["ratios"]
    assert ratios == {
        "loop_vs_default_sweep": 7.0,
        "loop_vs_sweep": 14.0,
        "sweep_vs_floor": 1.25,
        "default_sweep_vs_floor_with_work": 1.333,
    }
    assert fig["benchmarks"]["init"] == {"256x256": {"orthogonal": 6.5}}
    assert fig["benchmarks"]["deep_rss_mb"] == 323.4
    assert fig["tests"] == {
        "tests": 1659,
        "failures": 0,
        "errors": 0,
        "skipped": 3,
        "seconds": 125.4,
        "utc_time": "2026-12-01T08:10:00",
    }
    assert fig["environment"] == {"lock": "requirements/lock-x86_64.txt", "venv_mb": 7192,
                                  "import_torch_s": 1.412, "torch": "2.14.1+cu130"}  # fmt: skip
    assert fig["pending"] == {}


def test_what_the_run_lacks_is_pending_with_its_reason(tmp_path: Path) -> None:
    run = _run(tmp_path, long_refs=False)
    (run / "tests.xml").unlink()
    (run / "steps.json").unlink()
    (run / "environment.json").unlink()
    fig = F.collect(run)
    assert fig["tests"] is None and fig["steps"] is None and fig["environment"] is None
    assert fig["benchmarks"]["ratios"]["loop_vs_sweep"] is None
    assert fig["benchmarks"]["ratios"]["sweep_vs_floor"] == 1.25  # measured without the loop
    assert set(fig["pending"]) == {
        "tests",
        "steps",
        "environment",
        "benchmarks.loop_vs_default_sweep",
        "benchmarks.loop_vs_sweep",
        "benchmarks.deep_rss_mb",
    }
    assert "--junitxml" in fig["pending"]["tests"]


def test_collect_refuses_a_missing_run_and_a_broken_file(tmp_path: Path) -> None:
    with pytest.raises(InitsuiteError, match="run make bench"):
        F.collect(tmp_path / "nope")
    run = _run(tmp_path)
    (run / "tests.xml").write_text("<testsuites><testsuite")
    with pytest.raises(InitsuiteError, match=r"tests\.xml"):
        F.collect(run)
    run = _run(tmp_path / "other")
    (run / "benchmarks.json").write_text('{"benchmarks": [{"name": "test_sweep"}]}')
    with pytest.raises(InitsuiteError, match=r"benchmarks\.json"):
        F.collect(run)


def test_write_is_atomic_json_and_refuses_a_directory(tmp_path: Path) -> None:
    fig = F.collect(_run(tmp_path))
    out = F.write(fig, tmp_path / "reference" / "figures.json")
    assert json.loads(out.read_text()) == json.loads(json.dumps(fig))
    assert [p.name for p in out.parent.iterdir()] == ["figures.json"]  # no temporary left
    with pytest.raises(InitsuiteError, match="is a directory"):
        F.write(fig, tmp_path / "reference")


def test_steps_cli_times_a_command_and_passes_its_exit_status_on(tmp_path: Path) -> None:
    path = tmp_path / "steps.json"
    cmd = [sys.executable, "-m", "initsuite.results.steps", str(path)]
    ok = subprocess.run([*cmd, "study", "--", sys.executable, "-c", "pass"], timeout=60)
    bad = subprocess.run(
        [*cmd, "zoo", "--", sys.executable, "-c", "raise SystemExit(3)"], timeout=60
    )
    since = subprocess.run([*cmd, "total", "--since", "0"], timeout=60)
    assert (ok.returncode, bad.returncode, since.returncode) == (0, 3, 0)
    records = S.read_steps(path)
    assert [(r["step"], r["rc"]) for r in records] == [("study", 0), ("zoo", 3), ("total", 0)]
    assert 0 < records[0]["seconds"] < 60 and records[2]["seconds"] > 1e9  # since the epoch


def test_steps_refuse_an_unknown_step_and_a_foreign_file(tmp_path: Path) -> None:
    with pytest.raises(InitsuiteError, match="unknown step 'stduy'"):
        S.record(tmp_path / "steps.json", "stduy", 1.0)
    (tmp_path / "steps.json").write_text('{"steps": [{"step": "x"}]}')
    with pytest.raises(InitsuiteError, match="is not a steps file"):
        S.read_steps(tmp_path / "steps.json")

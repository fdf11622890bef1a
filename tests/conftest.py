"""Test-suite settings: hypothesis runs a fixed, derandomised example budget (same examples in
every run, CI or not), with no per-example deadline (the first torch call warms up). Keras, where
a test checks initsuite against it, runs on its torch backend (no TensorFlow is installed).

Torch threads: ``INITSUITE_TEST_THREADS`` where set (``make test-portable``: 2), else one per
pytest-xdist worker (``make test`` runs a worker per core), else torch's own default; child
processes inherit the setting. Two OpenMP threads on a core that is busy elsewhere wait for
each other: a 6×6 QR took 15 ms instead of 8 µs on the project's machine under load.

With ``INITSUITE_NO_SKIPS=1`` (CI) a skipped test fails unless it is marked ``cuda``: a missing
browser or library must not pass unseen."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

os.environ.setdefault("KERAS_BACKEND", "torch")

pytest_plugins = ("live_record", "pytester")

_threads = os.environ.get("INITSUITE_TEST_THREADS") or (
    "1" if os.environ.get("PYTEST_XDIST_WORKER") else None
)
if _threads:
    torch.set_num_threads(int(_threads))
    # and the same for the processes the tests start (CLI runs, kills, memory peaks)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = _threads

settings.register_profile(
    "initsuite",
    derandomize=True,
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("initsuite")


@pytest.fixture
def fast_figures(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every figure function returns nothing and the report writer saves a stub PNG: for tests
    of a report's files and text (drawing the figures takes seconds; test_report.py covers
    them)."""
    import initsuite.report as R
    import initsuite.report.probe_report as RP
    from initsuite.report import plan
    from initsuite.results import store

    def stub_save(fig: object, path: str | os.PathLike[str]) -> Path:
        return store.atomic_write_bytes(path, b"\x89PNG stub")

    for name in ("std_vs_layer", "divergence_heatmap", "final_std_distribution",
                 "init_time_vs_width", "cosine_vs_layer", "phase_figure",
                 "tutorial_std_vs_layer", "loss_curves", "steps_to_threshold"):  # fmt: skip
        monkeypatch.setattr(R, name, lambda *a, **k: None)
    monkeypatch.setattr(plan, "write_figure", stub_save)
    monkeypatch.setattr(RP, "probe_std", lambda *a, **k: None)
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if (
        report.skipped
        and os.environ.get("INITSUITE_NO_SKIPS") == "1"
        and item.get_closest_marker("cuda") is None
    ):
        report.outcome = "failed"
        report.longrepr = f"skipped where CI allows no skip but CUDA's: {report.longrepr}"


# --- session fixtures: stored results that tests read and never change ---------------------


@pytest.fixture(scope="session")
def small_sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smallest sweep that gets a full report (one scheme, ReLU, depth 2, width 4: five
    small figures), stored once per session, for the claims about the files a report writes
    whatever its figures show. Read-only: write reports elsewhere (``out_dir``)."""
    import initsuite

    out = tmp_path_factory.mktemp("small_sweep") / "run"
    initsuite.sweep("kaiming_normal", "relu", 2, 4, timing=False).save(out)
    return out

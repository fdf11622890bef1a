"""pytest-benchmark setup for initsuite: machine info, the device and size options, timing.

Run from the repository root (pyproject's ``testpaths`` keeps ``make test`` away from here):

    pytest bench --benchmark-autosave --benchmark-storage=results/benchmarks
    pytest bench --bench-quick                       # smoke run, small shapes, a few seconds
    pytest bench --bench-device=cuda                 # skipped cleanly where there is no GPU
    pytest bench --bench-threads=1                   # steadier on a busy shared machine

Every benchmark group holds a reference (the raw RNG fill, or the plain tutorial loop) whose
test name sorts first (``--benchmark-sort=name``), recorded in its ``extra_info["reference"]``;
the ratio of each median to that reference is printed at the end
(:func:`initsuite.results.benchmarks.reference_ratios`, which the report's "Benchmarks"
section uses too), since ratios survive a noisy shared machine far better than absolute times
do. ``--bench-report-regressions`` turns a ``--benchmark-compare-fail`` regression into a
report, leaving the exit status to the tests (``make bench``).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
import pytest
import torch
from pytest_benchmark.logger import PytestBenchmarkWarning
from pytest_benchmark.session import PerformanceRegression

import initsuite
from initsuite.core.devices import check_device
from initsuite.core.env import environment
from initsuite.core.errors import InitsuiteError
from initsuite.engine.timing import synchronize
from initsuite.results.benchmarks import REFERENCE_KEY, reference_ratios

# Shapes (rows, cols) of the weights timed in test_bench_schemes.py.
FULL_SHAPES: tuple[tuple[int, int], ...] = ((256, 256), (1024, 1024), (4096, 1024))
QUICK_SHAPES: tuple[tuple[int, int], ...] = ((64, 64), (256, 256))

# Each benchmark runs rounds until about this many seconds of timed work (one untimed call
# estimates how many). 0.4 s: the 222 scheme timings took 131 s at 0.8 s on a slow day of
# the 2-core machine, a large share of make bench's 15 minutes; at 0.4 s each median still
# pools at least 3 rounds (hundreds for the fast schemes).
FULL_BUDGET_S = 0.4
QUICK_BUDGET_S = 0.05
# At least 3 rounds, so that a median exists for the 0.2-2 s calls (orthogonal and sparse at
# 4096x1024, whole sweeps); at most 1000, past which the median no longer moves.
MIN_ROUNDS, MAX_ROUNDS = 3, 1000

_DEVICE_KEY = pytest.StashKey[tuple[str, str | None]]()  # (device, reason it is unavailable)
_RESULTS_KEY = pytest.StashKey[list["Timed"]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("initsuite-bench", "initsuite benchmarks")
    group.addoption(
        "--bench-device",
        default="cpu",
        help="device to time on: cpu, cuda, cuda:N or mps (default cpu); benchmarks are "
        "skipped when the device is valid but not available here",
    )
    group.addoption(
        "--bench-threads",
        type=int,
        default=None,
        help="torch.set_num_threads for this run (default: leave torch's choice, which is "
        "recorded); 1 steadies multi-threaded kernels such as QR on a busy shared machine",
    )
    group.addoption(
        "--bench-quick",
        action="store_true",
        default=False,
        help="smoke run: small shapes, a small sweep, few rounds",
    )
    group.addoption(
        "--bench-report-regressions",
        action="store_true",
        default=False,
        help="a --benchmark-compare-fail regression is reported and the run goes on: the exit "
        "status is the tests' alone (make bench)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # pyproject turns warnings into errors. pytest-benchmark warns (in its own, later,
    # pytest_configure) when --benchmark-compare finds no saved run or a saved run made with
    # other machine_info (another torch, say): comparing across those is a legitimate use, so
    # show these warnings instead of crashing with INTERNALERROR. The first filter covers the
    # configure phase now under way, the ini line the phases after it.
    warnings.filterwarnings("default", category=PytestBenchmarkWarning)
    config.addinivalue_line(
        "filterwarnings", "default::pytest_benchmark.logger.PytestBenchmarkWarning"
    )
    text = str(config.getoption("bench_device", "cpu"))
    try:
        device, reason = check_device(text), None
    except InitsuiteError as exc:
        # A well-formed accelerator name that this machine lacks skips; anything else is a typo.
        try:
            known = torch.device(text.strip().lower()).type in ("cuda", "mps")
        except RuntimeError:
            known = False
        if not known:
            raise pytest.UsageError(f"--bench-device: {exc}") from None
        device, reason = text.strip().lower(), str(exc)
    config.stash[_DEVICE_KEY] = (device, reason)
    threads = config.getoption("bench_threads", None)
    if threads is not None:
        if threads < 1:
            raise pytest.UsageError(f"--bench-threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    config.stash[_RESULTS_KEY] = []


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Add what decides these timings besides OS and Python: torch, threads, CPU, GPU, device.

    Only values that stay the same from run to run on one machine go here: pytest-benchmark
    warns when a compared run's machine_info differs.
    """
    device, reason = config.stash.get(_DEVICE_KEY, ("cpu", None))
    env = environment()  # initsuite's own run metadata, so both report the same CPU name
    cuda = torch.cuda.is_available()
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    machine_info["initsuite"] = {
        "version": initsuite.__version__,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "torch_threads": torch.get_num_threads(),
        "cpu_model": env["cpu"],
        "cpu_count": env["cpu_count"],
        "cuda_available": cuda,
        "gpus": gpus,
        "bench_device": device if reason is None else f"{device} (unavailable)",
        "bench_quick": bool(config.getoption("bench_quick")),
    }


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "shape" in metafunc.fixturenames:
        shapes = QUICK_SHAPES if metafunc.config.getoption("bench_quick") else FULL_SHAPES
        # Module scope makes pytest run one shape's tests together, baseline first, so the
        # reference and the schemes it divides are timed under the same machine conditions.
        ids = [f"{r}x{c}" for r, c in shapes]
        metafunc.parametrize("shape", shapes, ids=ids, scope="module")


@pytest.fixture(scope="session")
def quick(pytestconfig: pytest.Config) -> bool:
    """True under ``--bench-quick``."""
    return bool(pytestconfig.getoption("bench_quick"))


@pytest.fixture(scope="session")
def device(pytestconfig: pytest.Config) -> torch.device:
    """The ``--bench-device``; skips every benchmark that uses it when it is not available."""
    name, reason = pytestconfig.stash[_DEVICE_KEY]
    if reason is not None:
        pytest.skip(reason)
    return torch.device(name)


@dataclass
class Timed:
    """One benchmark's median, kept for the ratio summary."""

    group: str
    name: str
    median_s: float
    reference: bool


class Runner:
    """Runs ``fn`` under ``benchmark.pedantic`` with as many rounds as the time budget allows."""

    def __init__(self, benchmark: Any, device: torch.device, budget_s: float, sink: list[Timed]):
        self.benchmark = benchmark
        self.device = device
        self.budget_s = budget_s
        self._sink = sink

    def __call__(self, fn: Callable[[], object], *, reference: bool = False) -> None:
        device = self.device

        def timed() -> None:
            fn()
            synchronize(device)  # the work queued on a GPU is part of the call

        # One untimed call, to warm up and to estimate the cost of a round.
        synchronize(device)
        t0 = time.perf_counter()
        timed()
        estimate = time.perf_counter() - t0
        rounds = max(MIN_ROUNDS, min(MAX_ROUNDS, math.ceil(self.budget_s / max(estimate, 1e-7))))
        # A second warm-up round only where it is cheap: for the slow calls the call above has
        # warmed up, and another would cost as much as a round.
        warmup = 1 if estimate < 0.1 * self.budget_s else 0
        self.benchmark.extra_info["rounds"] = rounds
        self.benchmark.extra_info[REFERENCE_KEY] = reference  # the report's ratios read it
        self.benchmark.pedantic(timed, rounds=rounds, warmup_rounds=warmup, iterations=1)
        stats = getattr(self.benchmark, "stats", None)  # None under --benchmark-disable
        if stats is not None:
            group, name = self.benchmark.group or "", self.benchmark.name
            self._sink.append(Timed(group, name, stats.stats.median, reference))


@pytest.fixture
def run_timed(
    benchmark: Any, device: torch.device, quick: bool, pytestconfig: pytest.Config
) -> Runner:
    """``run_timed(fn, reference=False)``: time ``fn`` (synchronised on GPUs) and record it.

    ``reference=True`` marks the row the others in its group are divided by in the summary.
    """
    budget = QUICK_BUDGET_S if quick else FULL_BUDGET_S
    return Runner(benchmark, device, budget, pytestconfig.stash[_RESULTS_KEY])


@pytest.hookimpl(wrapper=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> Any:
    """pytest-benchmark's table (and its regression check), then the ratios to each group's
    reference."""
    tr = terminalreporter
    try:
        outcome = yield
    except PerformanceRegression:
        if not config.getoption("bench_report_regressions"):
            raise
        tr.write_sep("!", "benchmark gate failed (listed above): reported, the exit status "
                     "is the tests' (--bench-report-regressions)", red=True)  # fmt: skip
        outcome = None
    _ratio_summary(tr, config.stash.get(_RESULTS_KEY, []))
    return outcome


def _ratio_summary(tr: Any, results: list[Timed]) -> None:
    if not results:
        return
    table = pd.DataFrame([asdict(r) for r in results], columns=["group", "name", "median_s",
                                                                "reference"])  # fmt: skip
    tr.write_sep("-", "median / median of the group's reference (lower is faster)")
    for (group, ref), rows in reference_ratios(table).groupby(["group", "reference_name"],
                                                              sort=False):  # fmt: skip
        ref_ms = float(rows["reference_median_s"].iloc[0]) * 1e3
        tr.write_line(f"{group}  (reference {ref}: {ref_ms:.3g} ms)")
        for name, r in zip(rows["name"], rows["ratio"], strict=True):
            tr.write_line(f"    {r:8.2f}x  {name}")

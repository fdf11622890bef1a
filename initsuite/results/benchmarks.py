"""pytest-benchmark runs as tidy tables: the suite's JSON loaded and checked, each benchmark
over its group's reference, and one run over the previous one under a gate.

    >>> from initsuite.results.benchmarks import load_benchmarks, reference_ratios
    >>> run = load_benchmarks("results/latest/benchmarks.json")  # doctest: +SKIP
    >>> reference_ratios(run.table)  # doctest: +SKIP

The suite in ``bench/`` gives every group a reference (the raw RNG fill, a floor, a plain
loop), recorded as ``extra_info["reference"]``; :func:`reference_ratios` divides each median
by it, the figure that survives a noisy shared machine. ``bench/conftest.py`` prints that
table at the end of a run and the report's "Benchmarks" section shows it. Gates take
pytest-benchmark's syntax and rule (``--benchmark-compare-fail=median:25%``), so one
``BENCH_GATE`` serves both. Never imports torch.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError, unknown
from initsuite.results import columns as C
from initsuite.results.gates import ratio

__all__ = [
    "DEFAULT_GATE", "REFERENCE_KEY", "STATS", "BenchmarkGate", "BenchmarkRun",
    "compare_benchmarks", "load_benchmarks", "machine_changes", "parse_benchmarks",
    "reference_ratios",
]  # fmt: skip

Stat = Literal["min", "max", "mean", "stddev", "median", "iqr"]
STATS: tuple[str, ...] = ("min", "max", "mean", "stddev", "median", "iqr")
"""The statistics a gate can bound (pytest-benchmark's ``--benchmark-compare-fail`` fields)."""
DEFAULT_GATE = "median:25%"
"""The gate of ``make bench`` (its ``BENCH_GATE``) and of ``initsuite report --benchmarks``."""
REFERENCE_KEY = "reference"
"""The ``extra_info`` key ``bench/conftest.py`` sets on each benchmark: true for its group's
reference. A file without it anywhere (written before the suite recorded it) takes the row
whose name sorts first in each group, the suite's naming rule (``test_baseline*``)."""

# pytest-benchmark's own pattern for --benchmark-compare-fail (pytest_benchmark.utils)
_GATE = re.compile(
    r"^(?P<stat>\w+):((?P<percent>[0-9]+)%|(?P<seconds>[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?))$"
)
_TOP = {"machine_info": dict, "commit_info": dict, "benchmarks": list, "datetime": str,
        "version": str}  # fmt: skip


# --- loading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkRun:
    """One pytest-benchmark run: its benchmarks (:data:`~initsuite.results.columns.BENCHMARKS`,
    in the file's order), the machine and commit it recorded, when, which file it is, and each
    benchmark's ``extra_info`` by ``fullname`` (a scheme's name, a peak RSS...)."""

    source: str
    table: pd.DataFrame
    machine: Mapping[str, Any]
    commit: Mapping[str, Any]
    datetime: str
    version: str
    extra: Mapping[str, Mapping[str, Any]]


def load_benchmarks(path: str | os.PathLike[str]) -> BenchmarkRun:
    """Read a pytest-benchmark JSON file (``--benchmark-json`` or a saved run).

    Raises:
        InitsuiteError: one line naming the file, when it cannot be read, is not JSON, or does
            not hold what pytest-benchmark writes (:func:`parse_benchmarks`).
    """
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InitsuiteError(f"cannot read benchmark file {where!r}: {why}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InitsuiteError(f"benchmark file {where!r} is not JSON: {exc}") from None
    return parse_benchmarks(data, where)


def parse_benchmarks(data: object, where: str) -> BenchmarkRun:
    """A run from pytest-benchmark's JSON object; ``where`` names it in errors."""

    def bad(what: str) -> InitsuiteError:
        return InitsuiteError(f"benchmark file {where!r} is not a pytest-benchmark run: {what}")

    if not isinstance(data, dict):
        raise bad(f"the top level is a {type(data).__name__}, not an object")
    for key, kind in _TOP.items():
        if not isinstance(data.get(key), kind):
            raise bad(f"{key!r} is missing or not a {kind.__name__}")
    records, seen = [], set()
    for i, bench in enumerate(data["benchmarks"]):
        record = _benchmark(bench, f"benchmarks[{i}]", bad)
        if record["fullname"] in seen:
            raise bad(f"benchmarks[{i}]: {record['fullname']!r} appears twice")
        seen.add(record["fullname"])
        records.append(record)
    extra = {r["fullname"]: r.pop("extra") for r in records}
    if not any(REFERENCE_KEY in e for e in extra.values()):
        firsts: dict[str, str] = {}
        for r in records:  # the name that sorts first in each group
            firsts[r["group"]] = min(firsts.get(r["group"], r["name"]), r["name"])
        for r in records:
            r["reference"] = r["name"] == firsts[r["group"]]
    return BenchmarkRun(where, C.frame(C.BENCHMARKS, records), data["machine_info"],
                        data["commit_info"], data["datetime"], data["version"], extra)  # fmt: skip


def _benchmark(bench: object, at: str, bad: Any) -> dict[str, Any]:
    """One benchmark's row, checked: names are strings, times finite and >= 0."""
    if not isinstance(bench, dict):
        raise bad(f"{at} is not an object")
    group = bench.get("group")
    if group is not None and not isinstance(group, str):
        raise bad(f"{at}.group is {group!r}, not a string or null")
    for key in ("name", "fullname"):
        if not isinstance(bench.get(key), str) or not bench[key]:
            raise bad(f"{at}.{key} is missing or not a non-empty string")
    stats, extra = bench.get("stats"), bench.get("extra_info", {})
    if not isinstance(stats, dict):
        raise bad(f"{at}.stats is missing or not an object")
    if not isinstance(extra, dict):
        raise bad(f"{at}.extra_info is not an object")
    row: dict[str, Any] = {"group": group or "", "name": bench["name"],
                           "fullname": bench["fullname"], "extra": extra}  # fmt: skip
    for stat in (*STATS, "ops"):
        v = stats.get(stat)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise bad(f"{at}.stats.{stat} is {v!r}, not a finite number >= 0")
        row[stat if stat == "ops" else f"{stat}_s"] = float(v)
    rounds = stats.get("rounds")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise bad(f"{at}.stats.rounds is {rounds!r}, not a whole number >= 1")
    row["rounds"] = rounds
    flag = extra.get(REFERENCE_KEY, False)
    if not isinstance(flag, bool):
        raise bad(f"{at}.extra_info.{REFERENCE_KEY} is {flag!r}, not true or false")
    row["reference"] = flag
    return row


# --- each benchmark over its group's reference -------------------------------------------------


def reference_ratios(table: pd.DataFrame) -> pd.DataFrame:
    """Each median over its group's reference median (below 1 is faster).

    Args:
        table: one row per benchmark with at least ``group``, ``name``, ``median_s`` and
            ``reference`` (a :attr:`BenchmarkRun.table`, or the records of a running suite).

    Returns:
        :data:`~initsuite.results.columns.BENCHMARK_RATIOS`: per group (in order of first
        appearance) and per reference row, the reference itself (ratio 1), then the group's
        other non-reference rows from fastest to slowest. A group without a reference has no
        rows.
    """
    missing = [c for c in ("group", "name", "median_s", "reference") if c not in table.columns]
    if missing:
        raise InitsuiteError(f"benchmark ratios need columns {missing}; got {list(table.columns)}")
    out = []
    for _, rows in table.groupby("group", sort=False):
        is_ref = rows["reference"].to_numpy(bool)
        others = rows[~is_ref].sort_values("median_s", kind="stable")
        for _, ref in rows[is_ref].iterrows():
            shown = pd.concat([rows.loc[[ref.name]], others])
            medians = shown["median_s"].to_numpy(float)
            out.append(pd.DataFrame({
                "group": shown["group"].to_numpy(object), "reference_name": ref["name"],
                "name": shown["name"].to_numpy(object), "median_s": medians,
                "reference_median_s": float(ref["median_s"]),
                "ratio": ratio(np.full(len(medians), float(ref["median_s"])), medians),
            }))  # fmt: skip
    if not out:
        return C.frame(C.BENCHMARK_RATIOS, [])
    return C.coerce(pd.concat(out, ignore_index=True), C.BENCHMARK_RATIOS)


# --- one run over another -----------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkGate:
    """pytest-benchmark's regression gate: ``stat`` of the new run exceeds the base's by more
    than ``limit`` percent (``median:25%``) or ``limit`` seconds (``median:0.001``). Slower
    only: a speed-up never fails. A base of 0 fails any percentage, as in pytest-benchmark.

    Example:
        >>> BenchmarkGate.parse("median:25%")
        BenchmarkGate(stat='median', limit=25.0, unit='%')
    """

    stat: Stat
    limit: float
    unit: Literal["%", "s"] = "%"

    def __post_init__(self) -> None:
        if self.stat not in STATS:
            raise InitsuiteError(unknown("benchmark gate statistic", self.stat, STATS))
        if self.unit not in ("%", "s"):
            raise InitsuiteError(f"benchmark gate unit {self.unit!r}: choose from %, s")
        if not (math.isfinite(self.limit) and self.limit >= 0):
            raise InitsuiteError(f"benchmark gate limit must be >= 0, got {self.limit!r}")
        if self.unit == "%" and self.limit != int(self.limit):
            raise InitsuiteError(
                f"benchmark gate limit {self.limit!r}%: pytest-benchmark takes whole percents"
            )

    def __str__(self) -> str:
        limit = f"{int(self.limit)}%" if self.unit == "%" else f"{self.limit:g}"
        return f"{self.stat}:{limit}"

    @classmethod
    def parse(cls, text: str) -> BenchmarkGate:
        """A gate from pytest-benchmark's ``--benchmark-compare-fail`` syntax."""
        match = _GATE.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise InitsuiteError(
                f"benchmark gate {text!r}: expected STAT:P% or STAT:SECONDS with STAT one of "
                f"{', '.join(STATS)}, e.g. {DEFAULT_GATE} (pytest-benchmark's syntax)"
            )
        stat = match["stat"]
        if stat not in STATS:
            raise InitsuiteError(unknown("benchmark gate statistic", stat, STATS))
        if match["percent"] is not None:
            return cls(stat, float(match["percent"]), "%")  # type: ignore[arg-type]
        return cls(stat, float(match["seconds"]), "s")  # type: ignore[arg-type]

    def change(self, base: np.ndarray, new: np.ndarray) -> np.ndarray:
        """What the gate bounds: the change in percent (inf from a base of 0) or seconds."""
        if self.unit == "s":
            return new - base
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(base == 0, np.inf, new / base * 100 - 100)


def compare_benchmarks(base: BenchmarkRun, new: BenchmarkRun,
                       gate: BenchmarkGate | None = None) -> pd.DataFrame:  # fmt: skip
    """This run over the previous one, per benchmark (matched on ``fullname``, as
    pytest-benchmark does).

    Returns:
        :data:`~initsuite.results.columns.BENCHMARK_CHANGES`: the new run's benchmarks in its
        order, then those of the base alone; ``median_ratio`` new / base; ``gate_value`` and
        ``fails`` (the gate's text where it fails, else empty) where both runs have the row
        and a gate is given.
    """
    b = base.table.set_index("fullname")
    n = new.table.set_index("fullname")
    keys = [*n.index, *(k for k in b.index if k not in n.index)]
    side = {k: (n if k in n.index else b) for k in keys}
    stat = f"{gate.stat}_s" if gate is not None else "median_s"

    def values(t: pd.DataFrame, col: str) -> np.ndarray:
        return t[col].reindex(keys).to_numpy(float)

    b_med, n_med = values(b, "median_s"), values(n, "median_s")
    both = ~np.isnan(b_med) & ~np.isnan(n_med)
    value = np.full(len(keys), np.nan)
    if gate is not None:
        value[both] = gate.change(values(b, stat)[both], values(n, stat)[both])
    fails = [str(gate) if gate is not None and v > gate.limit else "" for v in value]
    return C.frame(C.BENCHMARK_CHANGES, (
        {"group": side[k].at[k, "group"], "name": side[k].at[k, "name"], "fullname": k,
         "base_median_s": b_med[i], "new_median_s": n_med[i],
         "median_ratio": ratio(b_med[i : i + 1], n_med[i : i + 1])[0],
         "gate_value": value[i], "fails": fails[i]}
        for i, k in enumerate(keys)
    ))  # fmt: skip


def machine_changes(base: BenchmarkRun, new: BenchmarkRun) -> list[str]:
    """What differs between the machines of two runs that moves timings (``python_version``,
    ``cpu`` brand and the suite's own record: torch, threads, CPU, device, quick), as
    ``key: base → new``."""

    def facts(run: BenchmarkRun) -> dict[str, str]:
        info = run.machine
        cpu = info.get("cpu")
        out = {"python": info.get("python_version"),
               "cpu": cpu.get("brand_raw") if isinstance(cpu, dict) else None}  # fmt: skip
        ours = info.get("initsuite")
        if isinstance(ours, dict):
            out.update({k: v for k, v in ours.items() if k != "version"})
        return {k: str(v) for k, v in out.items() if v is not None}

    a, b = facts(base), facts(new)
    return [f"{k}: {a.get(k, '—')} → {b.get(k, '—')}" for k in dict.fromkeys([*a, *b])
            if a.get(k) != b.get(k)]  # fmt: skip

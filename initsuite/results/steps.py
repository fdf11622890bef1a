"""A run's step times: ``make bench`` times each of its steps into ``steps.json``.

Each step is one command run under the timer, or the time since a moment the Makefile noted
(its set-up and its total); every call appends one record and rewrites the file atomically.
A step that several commands make up (a study and its report) is several records of one name:
:func:`step_seconds` adds them up. Never imports torch::

    python -m initsuite.results.steps RUN/steps.json study -- initsuite sweep ... --out RUN/study
    python -m initsuite.results.steps RUN/steps.json set-up --since 1764575223.5

A failed command is recorded with its exit status, and the timer exits with that status, so
``make`` stops (or goes on, for a ``-`` line) as it would without the timer.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from initsuite.core.errors import InitsuiteError, run_module, unknown
from initsuite.results.outputs import check_output

__all__ = ["STEPS", "main", "read_steps", "record", "step_seconds"]

STEPS: tuple[str, ...] = (
    "set-up", "study", "compare", "tutorial", "training", "dynamics", "isometry",
    "frameworks", "archs", "zoo", "coordcheck", "mutransfer", "kernel-shaping",
    "benchmarks", "report", "total",
)  # fmt: skip
"""The steps of ``make bench``, in its order: ``set-up`` is the virtual environment (nothing
when it exists), each study its run and report, ``benchmarks`` the pytest-benchmark suite,
``report`` the default study's report (after the suite, whose ratios it shows), ``total`` the
whole of ``make bench``."""


def _check_step(name: str) -> None:
    if name not in STEPS:
        raise InitsuiteError(unknown("step", name, STEPS))


def read_steps(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of ``path`` in the order they were written; [] when it does not exist.

    Raises:
        InitsuiteError: the file is not a steps file (not JSON, or not a list of records with
            a known step and a number of seconds).
    """
    p = Path(path)
    if not p.exists():
        return []
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InitsuiteError(f"{str(p)!r} is not a readable steps file: {exc}") from None
    records = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(records, list) or not all(
        isinstance(r, dict) and r.get("step") in STEPS
        and isinstance(r.get("seconds"), (int, float))
        for r in records
    ):  # fmt: skip
        raise InitsuiteError(
            f'{str(p)!r} is not a steps file: expected {{"steps": [{{"step": one of '
            f'{", ".join(STEPS)}, "seconds": a number, ...}}]}}'
        )
    return records


def record(path: str | os.PathLike[str], step: str, seconds: float, rc: int = 0) -> Path:
    """Append one record (``step``, ``seconds``, exit status ``rc``, UTC time) to ``path``,
    written atomically through the output check; return the path."""
    from initsuite.results.store import atomic_write_text  # pandas: only once the step ran

    _check_step(step)
    target = check_output(path, "update")
    records = read_steps(target)
    records.append({
        "step": step, "seconds": round(seconds, 3), "rc": rc,
        "utc_time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    })  # fmt: skip
    atomic_write_text(target, json.dumps({"steps": records}, indent=1) + "\n")
    return target


def step_seconds(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Seconds per step, the records of one name added up, in :data:`STEPS` order."""
    total: dict[str, float] = {}
    for r in records:
        total[r["step"]] = total.get(r["step"], 0.0) + float(r["seconds"])
    return {s: round(total[s], 3) for s in STEPS if s in total}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m initsuite.results.steps FILE STEP (-- COMMAND... | --since EPOCH)``."""
    args = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, command = args[:cut], args[cut + 1 :]
    parser = argparse.ArgumentParser(prog="python -m initsuite.results.steps",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("file")
    parser.add_argument("step", choices=STEPS)
    parser.add_argument("--since", type=float, help="a time.time() to count from, no command")
    ns = parser.parse_args(args)
    if (ns.since is None) == (not command):
        parser.error("give either -- COMMAND... or --since EPOCH")
    check_output(ns.file, "update")  # before the command: a bad path costs no compute
    if ns.since is not None:
        record(ns.file, ns.step, time.time() - ns.since)
        return 0
    started = time.perf_counter()
    rc = subprocess.run(command, check=False).returncode
    record(ns.file, ns.step, time.perf_counter() - started, rc)
    return rc


if __name__ == "__main__":
    run_module(main, "initsuite.results.steps")

"""The measured numbers of the README and the docs, written from ``figures.json``.

Every measured figure in the prose sits between markers that name it::

    test accuracy <!-- fig:train.relu.kaiming_normal.accuracy -->0.896<!-- /fig -->

:func:`fill` rewrites each marked span from the figures of one run
(:func:`initsuite.results.figures.collect`), :func:`check` lists the spans that differ from
what :func:`fill` would write; ``make reference`` runs the first, ``tests/test_docs_figures.py``
the second, so a number edited by hand, or a figures.json the prose has not followed, fails.
A figure the run did not measure reads :data:`PENDING`. Never imports torch::

    python -m initsuite.report.prose results/reference/figures.json README.md docs/*.md
    python -m initsuite.report.prose --check results/reference/figures.json README.md docs/*.md
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from initsuite.core.errors import InitsuiteError, did_you_mean, run_module
from initsuite.results.figures import BENCH_RATIOS
from initsuite.results.steps import STEPS

__all__ = ["MARK", "PENDING", "check", "fill", "main", "texts"]

PENDING = "—"
"""What a marked span reads while the dated run has not measured its figure."""
# a span may hold lines (a table) but no other comment: an unclosed marker never swallows the next
MARK = re.compile(
    r"<!-- fig:(?P<name>[a-z][a-z0-9_.-]*) -->(?P<text>(?:(?!<!--).)*?)<!-- /fig -->", re.S
)
# sections whose figure names come from the run's own rows: while pending, any name under them
# reads PENDING (the names are known once the run has them)
_ROW_SECTIONS = {"tutorial": "tutorial", "train": "training"}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return PENDING
    s = round(seconds)
    return f"{s} s" if s < 60 else f"{s // 60} min {s % 60} s"


def _num(value: float | None, fmt: str, unit: str = "") -> str:
    return PENDING if value is None else f"{value:{fmt}}{unit}"


def _init_table(init: Mapping[str, Mapping[str, float]] | None) -> str:
    """Each scheme's init time ÷ ``normal_``'s, one column per weight shape."""
    if not init:
        return f"\n\n{PENDING} (no benchmark run stored)\n\n"
    shapes = list(init)
    schemes = sorted({s for per in init.values() for s in per})
    lines = [f"| scheme | {' | '.join(shapes)} |", "|---" * (len(shapes) + 1) + "|"]
    for s in schemes:
        cells = [_num(init[shape].get(s), ".2f", "×") for shape in shapes]
        lines.append(f"| `{s}` | {' | '.join(cells)} |")
    return "\n\n" + "\n".join(lines) + "\n\n"


def _machine(m: Mapping[str, Any] | None) -> dict[str, str]:
    m = m or {}
    cpu = m.get("cpu") or PENDING
    cores = str(m["cpu_count"]) if m.get("cpu_count") else PENDING
    torch = m.get("torch") or PENDING
    return {
        "cpu": cpu,
        "cores": cores,
        "torch": torch,
        "machine": f"{cpu}, {cores} logical cores, torch {torch}" if m else PENDING,
    }


def texts(figures: Mapping[str, Any]) -> dict[str, str]:
    """Every figure's name and the text the prose shows for it (:data:`PENDING` where the
    run did not measure it)."""
    out: dict[str, str] = {"date": (figures.get("date") or PENDING)[:10],
                           **_machine(figures.get("machine"))}  # fmt: skip
    steps = figures.get("steps") or {}
    out.update({f"step.{s}": _duration(steps.get(s)) for s in STEPS})
    study = figures.get("study") or {}
    out["study.cells"] = _num(study.get("cells"), "d")
    out["study.sweep_time"] = _duration(study.get("sweep_seconds"))
    tut = figures.get("tutorial")
    if tut is not None:
        out["tutorial.claims"], out["tutorial.agree"] = str(tut["claims"]), str(tut["agree"])
        for name, m in tut["measured"].items():
            out[f"tutorial.{name}.mean"] = f"{m['mean']:.3g}"
            out[f"tutorial.{name}.sd"] = f"{m['sd']:.2g}"
            out[f"tutorial.{name}.seeds"] = str(m["seeds"])
    for name, r in (figures.get("training") or {}).items():
        out[f"train.{name}.accuracy"] = f"{r['test_accuracy']:.3g}"
        out[f"train.{name}.reached"] = f"{r['reached']}/{r['runs']}"
        out[f"train.{name}.steps"] = _num(r["median_steps"], ".0f")
    bench = figures.get("benchmarks") or {}
    ratios = bench.get("ratios") or {}
    out["bench.count"] = _num(bench.get("count"), "d")
    out.update({f"bench.{n}": _num(ratios.get(n), ".2f", "×") for n, _, _ in BENCH_RATIOS})
    out["bench.deep_rss_mb"] = _num(bench.get("deep_rss_mb"), ".0f", " MB")
    out["bench.init_table"] = _init_table(bench.get("init"))
    tests = figures.get("tests") or {}
    out["tests.count"] = _num(tests.get("tests"), "d")
    out["tests.skipped"] = _num(tests.get("skipped"), "d")
    out["tests.time"] = _duration(tests.get("seconds"))
    env = figures.get("environment") or {}
    out["env.lock"] = env.get("lock") or PENDING
    out["env.venv_gb"] = _num(None if env.get("venv_mb") is None else env["venv_mb"] / 1024,
                              ".1f", " GB")  # fmt: skip
    out["env.import_torch"] = _num(env.get("import_torch_s"), ".2f", " s")
    out["env.torch"] = env.get("torch") or PENDING
    return out


def _text(name: str, known: Mapping[str, str], figures: Mapping[str, Any], where: str) -> str:
    if name in known:
        return known[name]
    section = _ROW_SECTIONS.get(name.split(".")[0])
    if section is not None and figures.get(section) is None:
        return PENDING
    near = did_you_mean(name, known)
    hint = f"; did you mean {near!r}?" if near else ""
    raise InitsuiteError(
        f"{where}: unknown figure {name!r}{hint} (initsuite.report.prose.texts lists them)"
    )


def fill(text: str, figures: Mapping[str, Any], where: str = "<text>") -> str:
    """``text`` with every marked span rewritten from ``figures``.

    Raises:
        InitsuiteError: a marker names a figure the run does not have.
    """
    known = texts(figures)

    def one(m: re.Match[str]) -> str:
        name = m.group("name")
        return f"<!-- fig:{name} -->{_text(name, known, figures, where)}<!-- /fig -->"

    return MARK.sub(one, text)


def check(paths: Iterable[str | os.PathLike[str]], figures: Mapping[str, Any]) -> list[str]:
    """One line per marked span of ``paths`` that differs from what :func:`fill` writes:
    file, line, figure, what the prose says and what the run says. [] when all agree."""
    problems = []
    for path in map(Path, paths):
        text = path.read_text(encoding="utf-8")
        known = texts(figures)
        for m in MARK.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            want = _text(m.group("name"), known, figures, f"{path}:{line}")
            if m.group("text") != want:
                problems.append(f"{path}:{line}: {m.group('name')}: the prose says "
                                f"{m.group('text')!r}, the run {want!r}")  # fmt: skip
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m initsuite.report.prose [--check] FIGURES_JSON FILE...``"""
    from initsuite.results.store import atomic_write_text, check_output

    args = list(sys.argv[1:] if argv is None else argv)
    checking = "--check" in args
    args = [a for a in args if a != "--check"]
    if len(args) < 2:
        print(f"usage: python -m initsuite.report.prose [--check] FIGURES_JSON FILE...\n"
              f"{__doc__.splitlines()[0]}", file=sys.stderr)  # fmt: skip
        return 2
    figures = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    if checking:
        problems = check(args[1:], figures)
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    changed = {}  # every page filled before any is written: an unknown figure changes none
    for path in args[1:]:
        old = Path(path).read_text(encoding="utf-8")
        new = fill(old, figures, path)
        if new != old:
            changed[check_output(path, "update")] = new
    for target, text in changed.items():
        atomic_write_text(target, text)
    return 0


if __name__ == "__main__":
    run_module(main, "initsuite.report.prose")

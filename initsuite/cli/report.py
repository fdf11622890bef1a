"""``initsuite report`` and ``initsuite compare``: what a results directory holds, written as a
report, or lined up against another."""

from __future__ import annotations

import argparse
import json
import sys

from initsuite.cli.common import AddParser, check_output_flags, int_arg

__all__ = ["add_compare", "add_report"]


def add_report(add_parser: AddParser) -> None:
    r = add_parser("report", help="write report.md and figures for a results directory")
    r.add_argument("dir", help="results directory: a sweep, a probe, a coordinate check, or "
                   "'initsuite reproduce isometry/frameworks/zoo'")  # fmt: skip
    r.add_argument("--tutorial", default=None, help="a 'reproduce tutorial' directory to include")
    r.add_argument("--training", default=None, help="an 'initsuite train' directory to include")
    r.add_argument("--compare", default=None, metavar="BASE",
                   help="an earlier sweep to compare with (a 'Compared with' section)")  # fmt: skip
    r.add_argument("--out", default=None, help="where to write (default: DIR)")
    r.add_argument("--partial", action="store_true",
                   help="report a sweep that did not finish (a note says how much)")  # fmt: skip
    r.add_argument("--html", action="store_true",
                   help="also write report.html: one self-contained page, interactive figures, "
                   "sortable tables (needs plotly)")  # fmt: skip
    r.add_argument("--benchmarks", default=None, metavar="FILE.json",
                   help="a pytest-benchmark JSON file (make bench: RUN/benchmarks.json): a "
                   "'Benchmarks' section, each median over its group's reference")  # fmt: skip
    r.add_argument("--benchmarks-previous", default=None, metavar="FILE.json",
                   help="the previous run's JSON: this run over it per benchmark, rows past "
                   "--benchmark-gate marked")  # fmt: skip
    r.add_argument("--benchmark-gate", default=None, metavar="GATE",
                   help="in pytest-benchmark's --benchmark-compare-fail syntax (default "
                   "median:25%%; 'none': no gate)")  # fmt: skip
    r.set_defaults(run=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> None:
    import warnings

    from initsuite.report import PartialReportWarning, write_report

    gate: dict[str, str | None] = {}  # absent: the API's default gate; "none": no gate
    if args.benchmark_gate is not None:
        gate["benchmark_gate"] = None if args.benchmark_gate == "none" else args.benchmark_gate
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PartialReportWarning)
        path = write_report(args.dir, tutorial_dir=args.tutorial, training_dir=args.training,
                            compare_dir=args.compare, out_dir=args.out,
                            partial=args.partial, html=args.html, benchmarks=args.benchmarks,
                            benchmarks_previous=args.benchmarks_previous, **gate)  # fmt: skip
    for w in caught:  # ours as one line; any other warning as Python would show it
        if issubclass(w.category, PartialReportWarning):
            print(f"initsuite: warning: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    print(f"wrote {path}" + (f" and {path.with_name('report.html')}" if args.html else ""))


def add_compare(add_parser: AddParser) -> None:
    c = add_parser("compare", help="line up the cells of two sweeps: what changed, and "
                       "regression gates for CI")  # fmt: skip
    c.add_argument("base", help="results directory compared against (e.g. the previous run)")
    c.add_argument("new", help="results directory under test")
    c.add_argument("--fail", default=None, metavar="GATES",
                   help="exit 1 when a gate is exceeded, e.g. final_std:10%%,divergence_layer:0,"
                   "init_ms:20%%; metrics: final_std, growth_per_layer (band on new/base), "
                   "divergence_layer (layers moved), init_ms, forward_ms (slower only), "
                   "missing (base cells absent from new)")  # fmt: skip
    c.add_argument("--partial", action="store_true",
                   help="compare a sweep that did not finish (a note says how much; the cells "
                   "it lacks fail only a missing:N gate)")  # fmt: skip
    c.add_argument(
        "--top", type=int_arg, default=10, help="changed cells to list (10; also in --out)"
    )
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.add_argument("--out", default=None, metavar="FILE.md",
                   help="also write the comparison as Markdown")  # fmt: skip
    c.add_argument("--html", default=None, metavar="FILE.html",
                   help="also write the comparison as one self-contained HTML page (sortable "
                   "tables)")  # fmt: skip
    c.set_defaults(run=_cmd_compare)


def _cmd_compare(args: argparse.Namespace) -> int:
    from initsuite.report.comparison import (
        check_tabulate,
        check_top,
        compare_document,
        compare_page,
        compare_text,
    )
    from initsuite.results import store
    from initsuite.results.comparison import compare
    from initsuite.results.gates import parse_gates
    from initsuite.results.sweep import SweepResult

    gates = parse_gates(args.fail) if args.fail is not None else None
    check_top(args.top)
    if args.out is not None or args.html is not None:
        check_tabulate()
    if args.html is not None:
        from initsuite.report.html import check_markdown

        check_markdown()
    check_output_flags(out=(args.out, "file"), html=(args.html, "file"))
    result = compare(SweepResult.load(args.base), SweepResult.load(args.new), gates=gates,
                     labels=(args.base, args.new), partial=args.partial)  # fmt: skip
    if args.out is not None:
        store.atomic_write_text(args.out, compare_document(result, top=args.top))
    if args.html is not None:
        store.atomic_write_text(args.html, compare_page(result, top=args.top))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(compare_text(result, top=args.top))
        written = [p for p in (args.out, args.html) if p is not None]
        if written:
            print(f"\nwrote {' and '.join(written)}")
    return 0 if result.passed else 1

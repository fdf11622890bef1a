"""The report's "Benchmarks" section: a pytest-benchmark run's medians over each group's
reference, and over the previous run's medians under a gate (tables from
:mod:`initsuite.results.benchmarks`; this module only renders them). Every name read from
the files is shown as a code span (:func:`~initsuite.report.style.md_code`), so nothing in
it acts as Markdown or HTML on the page. Never imports torch.
"""

from __future__ import annotations

import pandas as pd

from initsuite.report.style import md_code, md_table
from initsuite.results.benchmarks import (
    BenchmarkGate,
    BenchmarkRun,
    compare_benchmarks,
    machine_changes,
    reference_ratios,
)

__all__ = ["benchmarks_section", "change_rows", "ratio_rows"]

_RATIOS = (
    "Each benchmark's median over its group's reference median, the figure to trust on a "
    "shared machine (absolute times move with the load; ratios much less). A reference is the "
    "work no engine can avoid or the plain loop a user would write; a group with several "
    "references lists its rows once per reference. Below 1 is faster than the reference."
)
_CHANGES = (
    "This run's median over the previous run's, per benchmark matched on its full name; above "
    "1 is slower. *Change* is what the gate bounds (its statistic's change in percent, or in "
    "seconds for a gate in seconds); "
    "a benchmark past the gate is marked **slower**. Rows past the gate come first, then the "
    "largest ratios. Timings of two runs compare only on the same, equally loaded machine: "
    "rerun before reading a single slow benchmark as a regression."
)


def _code_column(s: pd.Series) -> list[str]:
    return [md_code(v if v else "(none)") for v in s.astype(str)]


def ratio_rows(run: BenchmarkRun) -> pd.DataFrame:
    """:func:`~initsuite.results.benchmarks.reference_ratios` with readable headers."""
    r = reference_ratios(run.table)
    return pd.DataFrame({
        "group": _code_column(r["group"]), "reference": _code_column(r["reference_name"]),
        "benchmark": _code_column(r["name"]), "median ms": r["median_s"].to_numpy(float) * 1e3,
        "× reference": r["ratio"].to_numpy(float),
    })  # fmt: skip


def change_rows(changes: pd.DataFrame, gate: BenchmarkGate | None = None,
                top: int = 15) -> pd.DataFrame:  # fmt: skip
    """The rows of :func:`~initsuite.results.benchmarks.compare_benchmarks` a reader needs:
    every row past the gate, then the ``top`` largest ratios of the rest; readable headers
    (``gate``: the one the table was computed with, which names the *change* column)."""
    both = changes[changes["median_ratio"].notna()]
    failing = both[both["fails"] != ""].sort_values("gate_value", ascending=False)
    rest = both[both["fails"] == ""].sort_values("median_ratio", ascending=False).head(top)
    shown = pd.concat([failing, rest])
    return pd.DataFrame({
        "group": _code_column(shown["group"]), "benchmark": _code_column(shown["name"]),
        "previous ms": shown["base_median_s"].to_numpy(float) * 1e3,
        "this run ms": shown["new_median_s"].to_numpy(float) * 1e3,
        "× previous": shown["median_ratio"].to_numpy(float),
        _change_header(gate): shown["gate_value"].to_numpy(float),
        "gate": ["**slower**" if f else "" for f in shown["fails"]],
    })  # fmt: skip


def _change_header(gate: BenchmarkGate | None) -> str:
    if gate is None:
        return "change"
    return f"{gate.stat} change {'%' if gate.unit == '%' else 's'}"


def _run_line(label: str, run: BenchmarkRun) -> str:
    commit = run.commit.get("id")
    info = run.machine.get("initsuite")
    ours = info if isinstance(info, dict) else {}
    facts = [f"{len(run.table)} benchmarks", f"UTC {md_code(run.datetime)}",
             f"git {md_code(str(commit)[:12]) if commit else 'unknown'}"]  # fmt: skip
    facts += [f"{k} {md_code(ours[k])}" for k in ("torch", "torch_threads", "bench_device")
              if k in ours]  # fmt: skip
    return f"- **{label}:** {md_code(run.source)} ({', '.join(facts)})"


def benchmarks_section(run: BenchmarkRun, previous: BenchmarkRun | None = None,
                       gate: BenchmarkGate | None = None, top: int = 15) -> str:  # fmt: skip
    """The "Benchmarks" section (level-2 heading) of ``run``, against ``previous`` when given,
    rows past ``gate`` marked; ``top``: rows within the gate to list (the largest ratios)."""
    parts = ["## Benchmarks\n", _run_line("This run", run)]
    if previous is not None:
        parts.append(_run_line("Previous run", previous))
    parts.append("")
    ratios = ratio_rows(run)
    parts.append("### Against each group's reference\n")
    if ratios.empty:
        parts.append("No group of this run has a reference row.\n")
    else:
        parts += [md_table(ratios, markdown=True) + "\n", _RATIOS + "\n"]
    if previous is None:
        parts.append("No previous run to compare with.\n")
        return "\n".join(parts)
    changes = compare_benchmarks(previous, run, gate)
    n_fail = int((changes["fails"] != "").sum())
    n_both = int(changes["median_ratio"].notna().sum())
    if gate is None:
        verdict = "no gate"
    elif n_fail:
        verdict = f"gate {md_code(gate)} FAILED ({n_fail} of {n_both} benchmarks slower)"
    else:
        verdict = f"gate {md_code(gate)} passed ({n_both} benchmarks)"
    parts.append(f"### Against the previous run: {verdict}\n")
    only_new = int(changes["base_median_s"].isna().sum())
    only_base = int(changes["new_median_s"].isna().sum())
    notes = [f"{only_new} benchmarks in this run only" if only_new else "",
             f"{only_base} in the previous run only" if only_base else ""]  # fmt: skip
    notes += [f"machine differs: {md_code(c)}" for c in machine_changes(previous, run)]
    parts += [f"- {n}" for n in notes if n]
    rows = change_rows(changes, gate, top)
    if rows.empty:
        parts.append("\nNo benchmark is in both runs.\n")
    else:
        parts += ["", md_table(rows, markdown=True) + "\n", _CHANGES + "\n"]
    return "\n".join(parts)

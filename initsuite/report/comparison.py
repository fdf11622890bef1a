"""A comparison of two runs (:mod:`initsuite.compare`) as Markdown: the report's "Compared with"
section and the file ``initsuite compare --out`` writes. Never imports torch or seaborn."""

from __future__ import annotations

from typing import Literal

from initsuite.core.errors import InitsuiteError
from initsuite.report.style import md_table as _md
from initsuite.results.comparison import (
    Comparison,
    change_table,
    gate_table,
    headline,
    slowest_table,
)

__all__ = ["check_tabulate", "compare_document", "compare_section"]


def check_tabulate() -> None:
    """Raise unless tabulate (pandas' Markdown tables) imports, before any work is done."""
    try:
        import tabulate  # noqa: F401
    except ImportError:
        raise InitsuiteError(
            "Markdown output needs tabulate: pip install 'initsuite[report]'"
        ) from None


def _commit(commit: str | None) -> str:
    return f"`{commit[:12]}`" if commit else "unknown"


def _body(cmp: Comparison, level: int, top: int) -> list[str]:
    """The sections below the heading: counts, changes, one-run cells, timing, gates."""
    h = "#" * level
    base, new = cmp.labels
    parts = [
        f"Base `{base}` (git {_commit(cmp.commits[0])}) against `{new}` (git "
        f"{_commit(cmp.commits[1])}), cells matched on their key (arch, scheme, activation, "
        f"depth, width, batch, seed, device, dtype). {headline(cmp)}.\n"
    ]
    parts += [f"- {note}" for note in cmp.notes]
    if cmp.notes:
        parts.append("")
    changed = cmp.counts()["changed"]
    if changed and top:
        parts += [
            f"{h} Largest changes\n",
            _md(change_table(cmp, top)) + "\n",
            f"{min(top, changed)} of {changed} changed cells: those failing a gate first, then "
            "by how far the divergence layer moved (*div*: the first layer that left the "
            "range, — for none) and by the final std ratio new / base (— where a side is not "
            "finite, e.g. after an overflow).\n",
        ]
    sides: tuple[Literal["base", "new"], ...] = ("base", "new")
    for side in sides:
        only = cmp.only(side)
        if not only.empty:
            parts += [f"{h} Cells only in {side} ({int(only['cells'].sum())})\n",
                      _md(only) + "\n"]  # fmt: skip
    ratios = cmp.timing_ratios()
    if not ratios.empty:
        parts += [
            f"{h} Timing ratios\n",
            _md(ratios) + "\n",
            "New / base median milliseconds per timing row (scheme and width), summarised per "
            "device and dtype; above 1 is slower. Timings of two runs compare only on the "
            "same idle machine. The slowest rows:\n",
            _md(slowest_table(cmp, 5)) + "\n",
        ]
    if cmp.gates:
        verdict = "passed" if cmp.passed else f"**failed** ({len(cmp.failures)} violations)"
        parts += [f"{h} Gates: {verdict}\n", _md(gate_table(cmp)) + "\n",
                  "*Worst* is the most extreme failing value: a ratio new / base, layers "
                  "moved, or the number of base cells missing from the new run.\n"]  # fmt: skip
    return parts


def compare_section(cmp: Comparison, top: int = 10) -> str:
    """The report's "Compared with BASE" section (level-2 heading)."""
    return "\n".join([f"## Compared with `{cmp.labels[0]}`\n", *_body(cmp, 3, top)])


def compare_document(cmp: Comparison, top: int = 10) -> str:
    """A stand-alone Markdown file for ``initsuite compare --out``."""
    base, new = cmp.labels
    return "\n".join([f"# initsuite compare: `{base}` → `{new}`\n", *_body(cmp, 2, top)])

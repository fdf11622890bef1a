"""A comparison of two runs (:class:`~initsuite.results.comparison.Comparison`), rendered once:
as plain text (``initsuite compare``) or as Markdown (the file ``initsuite compare --out``
writes, and the report's "Compared with" section). Never imports torch or seaborn."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from initsuite.core.errors import Arg, InitsuiteError, InitsuiteTypeError
from initsuite.report.style import md_code, md_table, md_text
from initsuite.results import columns as C
from initsuite.results.comparison import Comparison

__all__ = [
    "change_table", "check_tabulate", "check_top", "compare_document", "compare_page",
    "compare_section", "compare_text", "headline", "slowest_table",
]  # fmt: skip


def check_tabulate() -> None:
    """Raise unless tabulate (pandas' Markdown tables) imports, before any work is done."""
    try:
        import tabulate  # noqa: F401
    except ImportError:
        raise InitsuiteError(
            "Markdown output needs tabulate: pip install 'initsuite[report]'"
        ) from None


# --- tables for readers ----------------------------------------------------------------------


def _shown_keys(cells: pd.DataFrame) -> list[str]:
    """The cell keys worth a column: scheme, activation, depth, and any other that varies."""
    always = ("scheme", "activation", "depth")
    return [k for k in C.CELL_KEYS if k in always or cells[k].nunique(dropna=True) > 1]


def change_table(cmp: Comparison, n: int = 10) -> pd.DataFrame:
    """:meth:`Comparison.largest_changes` with the columns a reader needs."""
    top = cmp.largest_changes(n)
    cols = [*_shown_keys(cmp.cells), "base_divergence_layer", "new_divergence_layer",
            "base_final_std", "new_final_std", "final_std_ratio", "fails"]  # fmt: skip
    names = {"base_divergence_layer": "base div", "new_divergence_layer": "new div",
             "base_final_std": "base final std", "new_final_std": "new final std",
             "final_std_ratio": "ratio"}  # fmt: skip
    return top[cols].rename(columns=names)


def slowest_table(cmp: Comparison, n: int = 5) -> pd.DataFrame:
    """:meth:`Comparison.slowest` with readable headers."""
    names = {"base_init_ms": "base init ms", "new_init_ms": "new init ms",
             "init_ms_ratio": "init ratio", "base_forward_ms": "base fwd ms",
             "new_forward_ms": "new fwd ms", "forward_ms_ratio": "fwd ratio"}  # fmt: skip
    return cmp.slowest(n).rename(columns=names)


def headline(cmp: Comparison) -> str:
    """One sentence of counts."""
    c = cmp.counts()
    n_base = c["same"] + c["changed"] + c["only_base"]
    n_new = c["same"] + c["changed"] + c["only_new"]
    return (
        f"{n_base} cells in base, {n_new} in new: {c['same']} same, {c['changed']} changed "
        f"(divergence layer moved, error appeared or vanished, or final std / growth beyond "
        f"rtol {cmp.rtol:g}), {c['only_base']} only in base, {c['only_new']} only in new"
    )


# --- the sections, once ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Section:
    """One part of a comparison: ``title (detail)`` or ``title: verdict``, a table, and a
    caption on how to read it (Markdown only: the terminal stays terse)."""

    title: str
    detail: str = ""
    verdict: str = ""
    table: pd.DataFrame | None = None
    caption: str = ""


_CHANGES = (
    "Changed cells: those failing a gate first, then by how far the divergence layer moved "
    "(*div*: the first layer that left the range, — for none) and by the final std ratio "
    "new / base (— where a side is not finite, e.g. after an overflow)."
)
_TIMING = (
    "New / base median milliseconds per timing row (scheme and width), summarised per device "
    "and dtype; above 1 is slower. Timings of two runs compare only on the same idle machine."
)
_WORST = (
    "*Worst* is the most extreme failing value: a ratio new / base, layers moved, or the "
    "number of base cells missing from the new run."
)


def _sections(cmp: Comparison, top: int) -> list[_Section]:
    """Counts aside, what a comparison shows: the largest changes, cells in one run only,
    timing ratios and the gates' verdict."""
    out = []
    changed = cmp.counts()["changed"]
    if changed and top:
        detail = f"{min(top, changed)} of {changed}; ratio = new/base"
        out.append(_Section("largest changes", detail, table=change_table(cmp, top),
                            caption=_CHANGES))  # fmt: skip
    sides: tuple[Literal["base", "new"], ...] = ("base", "new")
    for side in sides:
        only = cmp.only(side)
        if not only.empty:
            n = int(only["cells"].sum())
            out.append(_Section(f"only in {side}", f"{n} cell{'' if n == 1 else 's'}", table=only))
    ratios = cmp.timing_ratios()
    if not ratios.empty:
        slowest = slowest_table(cmp, 5)
        out += [_Section("timing ratios", "new/base median ms; > 1 is slower", table=ratios,
                         caption=_TIMING),
                _Section("slowest timing rows", f"{len(slowest)} shown",
                         table=slowest)]  # fmt: skip
    elif not cmp.timing.empty:
        out.append(_Section("timing", verdict="no timing row is in both runs"))
    if cmp.gates:
        verdict = "passed" if cmp.passed else f"FAILED ({len(cmp.failures)} violations)"
        out.append(_Section("gates", verdict=verdict, table=cmp.gate_table(), caption=_WORST))
    return out


# --- plain text ------------------------------------------------------------------------------


def _text_table(df: pd.DataFrame) -> str:
    options = ("display.width", 200, "display.max_colwidth", 50, "display.max_rows", None,
               "display.float_format", "{:.4g}".format)  # fmt: skip
    with pd.option_context(*options):
        return df.to_string(index=False)


def compare_text(cmp: Comparison, top: int = 10) -> str:
    """The comparison as plain text, what ``initsuite compare`` prints; ``top``: changed
    cells to list (>= 0)."""
    check_top(top)
    base, new = cmp.labels
    parts = [f"initsuite compare: {base} (base) -> {new} (new)", headline(cmp)]
    parts += [f"note: {n}" for n in cmp.notes]
    for s in _sections(cmp, top):
        parts.append(f"\n{s.title}: {s.verdict}" if s.verdict else f"\n{s.title} ({s.detail}):")
        if s.table is not None:
            parts.append(_text_table(s.table))
    return "\n".join(parts)


# --- Markdown --------------------------------------------------------------------------------


def _commit(commit: str | None) -> str:
    return md_code(commit[:12]) if commit else "unknown"


def _markdown(cmp: Comparison, level: int, top: int) -> list[str]:
    """The parts below the title: the runs and counts, notes, then a heading of ``level``
    per section."""
    check_top(top)
    base, new = cmp.labels
    parts = [
        f"Base {md_code(base)} (git {_commit(cmp.commits[0])}) against {md_code(new)} (git "
        f"{_commit(cmp.commits[1])}), cells matched on their key (arch, scheme, activation, "
        f"depth, width, batch, seed, device, dtype). {headline(cmp)}.\n"
    ]
    parts += [f"- {md_text(note)}" for note in cmp.notes]
    if cmp.notes:
        parts.append("")
    for s in _sections(cmp, top):
        heading = s.title[0].upper() + s.title[1:]
        heading += f": {s.verdict}" if s.verdict else f" ({s.detail})"
        parts.append(f"{'#' * level} {heading}\n")
        if s.table is not None:
            parts.append(md_table(s.table) + "\n")
        if s.caption:
            parts.append(s.caption + "\n")
    return parts


def compare_section(cmp: Comparison, top: int = 10) -> str:
    """The report's "Compared with BASE" section (level-2 heading)."""
    return "\n".join([f"## Compared with {md_code(cmp.labels[0])}\n", *_markdown(cmp, 3, top)])


def compare_document(cmp: Comparison, top: int = 10) -> str:
    """A stand-alone Markdown file, what ``initsuite compare --out`` writes."""
    base, new = cmp.labels
    title = f"# initsuite compare: {md_code(base)} → {md_code(new)}\n"
    return "\n".join([title, *_markdown(cmp, 2, top)])


def compare_page(cmp: Comparison, top: int = 10) -> str:
    """:func:`compare_document` as one self-contained HTML page with sortable, filterable
    tables, what ``initsuite compare --html`` writes."""
    from initsuite.report.html import markdown_html

    return markdown_html(compare_document(cmp, top))


def check_top(top: object) -> None:
    """Raise unless ``top`` (changed cells to list) is an integer >= 0."""
    if isinstance(top, bool) or not isinstance(top, int):
        raise InitsuiteTypeError(Arg("top"), f" must be an integer >= 0, got {top!r}")
    if top < 0:
        raise InitsuiteError(Arg("top"), f" must be >= 0, got {top}")

"""Framework conventions as a Markdown report section.

:func:`conventions_section` renders :func:`initsuite.conventions`'s table (or
:func:`~initsuite.schemes.convention_table.diff`'s) as a section: reads the frame only, never
imports torch or the registry.
"""

from __future__ import annotations

import pandas as pd

from initsuite.report.style import md_table, md_text

__all__ = ["conventions_page", "conventions_section"]

_SHOWN = ("convention", "layer", "parameter", "law", "distribution", "variance_fan_in",
          "variance", "truncation", "checked")  # fmt: skip


def conventions_section(table: pd.DataFrame, title: str = "Framework conventions") -> str:
    """``table`` (from ``initsuite.conventions()`` or its ``diff``) as a Markdown section:
    a heading (``title``, plain text), how to read it, and the table (a diff is shown whole).

    Example::

        >>> print(conventions_section(initsuite.conventions("flax", layer="linear")))
        ## Framework conventions
        ...
        | flax | linear | weight | variance_scaling:scale=1,mode=fan_in,... | ...
        | flax | linear | bias | zeros | ...
    """
    shown = [c for c in _SHOWN if c in table.columns]
    body = table[shown] if "convention" in table.columns else table
    return (
        f"## {md_text(title)}\n\n"
        "Each row: the law a framework gives one parameter of one layer type, written as an "
        "initsuite scheme spec in torch's layout. `variance_fan_in` is σ²·fan_in of a square "
        "layer where it scales as 1/fan_in; `variance` is σ² where it is a fixed number; — "
        "where undefined. `fan_uniform` is U(±1/√fan) with the fan of the layer's weight; an "
        "empty law means the framework has no such parameter.\n\n"
        f"{md_table(body.reset_index(drop=True))}\n"
    )


def conventions_page(table: pd.DataFrame, title: str = "Framework conventions") -> str:
    """:func:`conventions_section` as one self-contained HTML page with a sortable, filterable
    table, what ``initsuite conventions --html`` writes."""
    from initsuite.report.html import markdown_html

    return markdown_html(f"# initsuite conventions\n\n{conventions_section(table, title)}")

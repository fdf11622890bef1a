"""Property-based fuzzing of the pages (issue 27): any text stored in a field a page shows (a
directory's name, a meta.json field, a scheme's or a module's name) reads on the page exactly as
written, as text, in each place the report puts such a string: the title, a line of the Run
list, a table's header and cell, and a code span. Nothing in it makes a tag, an attribute, a
link, emphasis or a new table column (:func:`helpers.foreign_markup`).

The example budget is small and fixed (derandomised, tests/conftest.py), so the suite's time
budget holds.
"""

from __future__ import annotations

import html
import re

import pandas as pd
import pytest
from helpers import foreign_markup
from hypothesis import given, settings
from hypothesis import strategies as st

from initsuite.report.html import PAGE_SCRIPTS, markdown_html
from initsuite.report.markdown import run_lines
from initsuite.report.style import md_code, md_table, md_text

pytest.importorskip("markdown")
pytest.importorskip("tabulate")


def _read(fragment: str) -> str:
    """An element's text as a reader sees it: tags removed, entities read, white space (which
    the Markdown turns line breaks and control characters into) collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]*>", "", fragment)).split())


def _shown(text: str) -> str:
    return " ".join(re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", " ", text).split())


@settings(max_examples=30)
@given(st.text(max_size=30))
def test_any_stored_text_reads_as_written(text: str) -> None:
    table = pd.DataFrame({text: [text], "code": [md_code(text)]})
    markdown = "\n".join([
        f"# initsuite report: {md_text(text)}", "",
        *run_lines({"environment": {"cpu": text, "platform": text}}), "",
        md_table(table, markdown=["code"]),
    ])  # fmt: skip
    page = markdown_html(markdown)
    assert foreign_markup(page, PAGE_SCRIPTS) == []
    want = _shown(text)
    heading = re.search(r"<h1>(.*?)</h1>", page, re.DOTALL)
    assert heading is not None and _read(heading.group(1)) == _shown(f"initsuite report: {text}")
    items = re.findall(r"<li>(.*?)</li>", page, re.DOTALL)
    assert _read(items[2]).startswith(_shown(f"CPU: {text};"))
    assert _read(items[4]) == _shown(f"Platform: {text}")
    cells = [_read(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", page, re.DOTALL)]
    assert cells == [want, "code", want, want]  # one row, the two columns: nothing split

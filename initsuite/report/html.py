"""A report's Markdown as one self-contained, interactive HTML page (``report.html``; a plan
becomes one through :func:`initsuite.report.plan.plan_html`, which imports this module, never
the reverse).

The page is the plan's own Markdown converted to HTML (python-markdown, ``tables`` and
``fenced_code``), so it has exactly the sections, tables and figures of ``report.md``. Each
figure ``![title](figures/NAME.png)`` becomes the figure's interactive plotly version where
the plan has one (:attr:`PlannedFigure.interactive`: toggle schemes in the legend, hover for
values, drag to zoom), else the PNG inlined as base64. Every script is inlined (plotly's
bundle once, before the first figure), every table gets a filter box and sortable headers
(:data:`_TABLE_SCRIPT`, no library), and nothing is fetched when the page is viewed.

No script but these and plotly's runs in a page, whoever wrote the directory: the Markdown
quotes every stored string as text or code (:func:`~initsuite.report.style.md_text`,
:func:`~initsuite.report.style.md_code`, :func:`~initsuite.report.style.md_table`), the
conversion passes no raw HTML and no ``javascript:`` link, and plotly's labels are escaped
(:mod:`initsuite.report.interactive`).

A block of the Markdown between the lines :func:`folded` writes is shown whole in
``report.md`` (the lines are HTML comments, which a Markdown viewer hides) and folded on the
page: a ``<details>`` element this module writes around the block's own conversion, its summary
escaped. The lines are matched whole, and no stored string reaches a line's start unescaped,
so a stored string cannot open or close one.

    >>> from initsuite.report.html import markdown_html
    >>> markdown_html("# initsuite report: demo\\n\\n| a |\\n|---|\\n| 1 |\\n")[:15]
    '<!DOCTYPE html>'
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from initsuite.core.errors import InitsuiteError
from initsuite.results.layout import HTML_MARK

__all__ = ["PAGE_SCRIPTS", "check_html_dependencies", "check_markdown", "folded", "markdown_html"]

_EXTENSIONS = ["tables", "fenced_code", "sane_lists"]
# an image python-markdown wrote, alone in its paragraph or not
_IMG = re.compile(r'(<p>)?<img alt="([^"]*)" src="([^"]*)"\s*/?>(</p>)?')
_FIGURE_SRC = re.compile(r"(?:\./)?figures/([a-z0-9_]+)\.png")
_H1 = re.compile(r"<h1[^>]*>(.*?)</h1>", re.DOTALL)
# a folded block (folded()): its opening line (the summary), its Markdown, its closing line
_FOLD = re.compile(r"^<!-- fold: ([^\n]*?) -->\n(.*?)^<!-- /fold -->$", re.MULTILINE | re.DOTALL)

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1200px;
margin:0 auto;padding:1rem 2rem;line-height:1.5;color:#1b1b1b}
h1,h2,h3{line-height:1.25}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.3rem 0 1rem;font-size:.88rem}
th,td{border:1px solid #ccc;padding:.2rem .5rem}th{background:#f3f3f3;cursor:pointer;
user-select:none;position:sticky;top:0}th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}tr:nth-child(even) td{background:#fafafa}
details.folded{margin:.5rem 0 1rem}details.folded>summary{cursor:pointer;color:#444}
input.table-filter{margin-top:.6rem;padding:.2rem .4rem;width:18rem;font-size:.85rem}
figure.report-figure{margin:1rem 0}figure.report-figure img{max-width:100%}
code{background:#f4f4f4;padding:0 .2rem;border-radius:3px}pre{background:#f4f4f4;
padding:.6rem;overflow-x:auto}blockquote{border-left:4px solid #ccc;margin:0;padding:0 1rem}
#initsuite-errors{display:none}
"""

# records script errors in the page itself (a browser test reads them from the DOM)
_ERROR_SCRIPT = """
window.initsuiteErrors = [];
window.addEventListener("error", function (e) {
  window.initsuiteErrors.push(String(e.message || e));
  var box = document.getElementById("initsuite-errors");
  if (box) { box.textContent = window.initsuiteErrors.join("\\n");
             box.setAttribute("data-count", window.initsuiteErrors.length); }
});
"""

# every table: a text filter above it, and headers that sort its rows when clicked
_TABLE_SCRIPT = """
(function () {
  function key(cell) {
    var t = cell.textContent.trim(), n = parseFloat(t.replace(/[,\\u2212]/g, function (c) {
      return c === "," ? "" : "-"; }));
    return isNaN(n) || !/^[-+\\u2212]?[0-9.,]+(e[-+]?[0-9]+)?/i.test(t) ? [1, t.toLowerCase()]
                                                                        : [0, n];
  }
  function sortBy(table, col, th) {
    var body = table.tBodies[0]; if (!body) return;
    var up = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) {
      c.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", up ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col] || a), y = key(b.cells[col] || b);
      var c = x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0);
      return up ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  function filterBox(table) {
    var box = document.createElement("input");
    box.type = "search"; box.className = "table-filter";
    box.placeholder = "filter rows\\u2026"; box.setAttribute("aria-label", "filter table rows");
    box.addEventListener("input", function () {
      var q = box.value.trim().toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0] ? table.tBodies[0].rows : [], function (r) {
        r.style.display = !q || r.textContent.toLowerCase().indexOf(q) >= 0 ? "" : "none";
      });
    });
    table.parentNode.insertBefore(box, table);
  }
  Array.prototype.forEach.call(document.querySelectorAll("table"), function (table) {
    filterBox(table);
    if (!table.tHead) return;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.title = "click to sort"; th.addEventListener("click", function () {
        sortBy(table, col, th); });
    });
  });
})();
"""


PAGE_SCRIPTS: tuple[str, ...] = (_ERROR_SCRIPT, _TABLE_SCRIPT)
"""The scripts of every page: no other script runs in one, but plotly's figures."""


def check_markdown() -> None:
    """Raise unless python-markdown imports (a page without interactive figures)."""
    try:
        import markdown  # noqa: F401
    except ImportError:
        raise InitsuiteError(
            "an HTML report needs python-markdown: pip install 'initsuite[report]'"
        ) from None


def check_html_dependencies() -> None:
    """Raise unless python-markdown and plotly import, before any work is done."""
    from initsuite.report.interactive import check_plotly

    check_markdown()
    check_plotly()


def markdown_html(text: str, figure_dir: Path | None = None,
                  interactive: Mapping[str, Any] | None = None) -> str:  # fmt: skip
    """Markdown that initsuite wrote (``report.md``, ``compare.md``) as one self-contained
    HTML page; a tag in the Markdown is shown as text (:func:`_convert`).

    Args:
        text: the Markdown; its first line (``# title``) titles the page.
        figure_dir: where ``figures/NAME.png`` are read from, to inline; default none (a
            figure becomes its title and a note).
        interactive: figure name → a function returning its plotly figure; drawn instead of
            the PNG.
    """
    body = _folds(text)
    state = {"plotly": False}

    def figure(match: re.Match[str]) -> str:
        alt, src = html.unescape(match.group(2)), html.unescape(match.group(3))
        inner = _figure(alt, src, figure_dir, interactive or {}, state)
        if match.group(1) and match.group(4):  # alone in its paragraph: a block of its own
            return inner
        return f"{match.group(1) or ''}{inner}{match.group(4) or ''}"

    body = _IMG.sub(figure, body)
    heading = _H1.search(body)  # the title as the page shows it: its text, tags removed
    title = html.unescape(re.sub(r"<[^>]*>", "", heading.group(1))).strip() if heading else ""
    return (
        f'{HTML_MARK} -->\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title or 'initsuite report')}</title>\n<style>{_STYLE}</style>\n"
        f"<script>{_ERROR_SCRIPT}</script>\n</head>\n<body>\n"
        '<pre id="initsuite-errors" data-count="0"></pre>\n'
        f"{body}\n<script>{_TABLE_SCRIPT}</script>\n</body>\n</html>\n"
    )


def folded(summary: str, markdown: str) -> str:
    """``markdown`` (a block of a report's own Markdown) shown whole in ``report.md`` and
    folded under ``summary`` (plain text, one line) in ``report.html``.

        >>> print(folded("The table", "| a |\\n|---|\\n| 1 |"))
        <!-- fold: The table -->
        <BLANKLINE>
        | a |
        |---|
        | 1 |
        <BLANKLINE>
        <!-- /fold -->
        <BLANKLINE>
    """
    if "\n" in summary or "--" in summary:  # it would end the comment or the line
        raise InitsuiteError(f"a folded block's summary is one line without '--': {summary!r}")
    return f"<!-- fold: {summary} -->\n\n{markdown.strip()}\n\n<!-- /fold -->\n"


def _folds(text: str) -> str:
    """``text`` as HTML (:func:`_convert`), each block :func:`folded` wrote in a
    ``<details>`` element: its summary escaped, its Markdown converted on its own."""
    parts, start = [], 0
    for match in _FOLD.finditer(text):
        parts.append(_convert(text[start : match.start()]))
        summary = html.escape(match.group(1))
        parts.append(f'<details class="folded">\n<summary>{summary}</summary>\n'
                     f"{_convert(match.group(2))}\n</details>")  # fmt: skip
        start = match.end()
    parts.append(_convert(text[start:]))
    return "\n".join(p for p in parts if p)


def _convert(text: str) -> str:
    """``text`` as HTML by python-markdown, with no raw HTML: a tag written in the Markdown
    (or in a stored string it quotes) is shown as text, never parsed, and a link or image
    whose URL is not plain (:func:`_safe_url`) loses it. A pipe in a code span in a table
    cell is escaped in the Markdown (:func:`~initsuite.report.style.md_table`), as GitHub
    reads it; python-markdown would show the backslash."""
    import markdown
    from markdown.treeprocessors import Treeprocessor

    class SafeUrls(Treeprocessor):
        def run(self, root: Any) -> None:
            _drop_unsafe_urls(root)
            for cell in (*root.iter("td"), *root.iter("th")):  # GitHub's escape, read as it
                for code in cell.iter("code"):
                    code.text = (code.text or "").replace("\\|", "|")

    md = markdown.Markdown(extensions=_EXTENSIONS, output_format="html")
    md.preprocessors.deregister("html_block")  # a block of raw HTML
    md.inlinePatterns.deregister("html")  # an inline tag, comment or processing instruction
    md.treeprocessors.register(SafeUrls(md), "initsuite_safe_urls", -10)  # after unescaping
    return md.convert(text)


# a URL's scheme, read as a browser does: after entities are decoded and control characters
# and spaces (which browsers drop from URLs) removed
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_LINK_SCHEMES = ("http", "https", "mailto")


def _safe_url(url: str, image: bool) -> bool:
    """Whether a link (an image's source with ``image``) may keep ``url``: a relative URL
    (``figures/x.png``, ``#section``), and for a link also http(s) and mailto; never
    ``javascript:``, ``data:`` or another scheme, nor an image from another host."""
    plain = re.sub(r"[\x00-\x20\x7f]", "", html.unescape(url))
    found = _SCHEME.match(plain)
    if found is not None:
        return not image and found.group(1).lower() in _LINK_SCHEMES
    return not (image and plain.startswith(("//", "\\\\", "/\\", "\\/")))


def _drop_unsafe_urls(root: Any) -> None:
    """Remove every unsafe URL (:func:`_safe_url`) from the element tree ``root``."""
    for el in root.iter():
        if el.tag == "a" and not _safe_url(el.get("href", ""), image=False):
            el.attrib.pop("href", None)
        if el.tag == "img":  # alt and src only (the figure pattern reads them)
            src = el.get("src", "")
            alt = el.get("alt", "")
            el.attrib.clear()
            el.set("alt", alt)
            el.set("src", src if _safe_url(src, image=True) else "")


def _figure(alt: str, src: str, figure_dir: Path | None, interactive: Mapping[str, Any],
            state: dict[str, bool]) -> str:  # fmt: skip
    """The HTML of one figure (its caption is the report's own paragraph below it):
    interactive, an inlined PNG, or (never a link out of the page) its title and why it is
    missing."""
    match = _FIGURE_SRC.fullmatch(src)
    name = match.group(1) if match else None
    if name is not None and name in interactive:
        fig = interactive[name]()
        div = fig.to_html(full_html=False, include_plotlyjs=not state["plotly"],
                          div_id=f"figure-{name}",
                          config={"displaylogo": False, "responsive": True})  # fmt: skip
        state["plotly"] = True
        return f'<figure class="report-figure interactive" id="{name}">{div}</figure>'
    png = figure_dir / f"{name}.png" if figure_dir is not None and name is not None else None
    if png is not None and png.is_file():
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        return (f'<figure class="report-figure" id="{name}"><img alt="{html.escape(alt)}" '
                f'src="data:image/png;base64,{data}"></figure>')  # fmt: skip
    return (f'<figure class="report-figure missing"><em>{html.escape(alt)}</em> '
            f"(figure {html.escape(src)} not found)</figure>")  # fmt: skip

"""A report plan as one self-contained, interactive HTML page (``report.html``).

The page is the plan's own Markdown converted to HTML (python-markdown, ``tables`` and
``fenced_code``), so it has exactly the sections, tables and figures of ``report.md``. Each
figure ``![title](figures/NAME.png)`` becomes the figure's interactive plotly version where
the plan has one (:attr:`PlannedFigure.interactive`: toggle schemes in the legend, hover for
values, drag to zoom), else the PNG inlined as base64. Every script is inlined (plotly's
bundle once, before the first figure), every table gets a filter box and sortable headers
(:data:`_TABLE_SCRIPT`, no library), and nothing is fetched when the page is viewed.

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
from initsuite.report.plan import ReportPlan
from initsuite.results.outputs import HTML_MARK

__all__ = ["check_html_dependencies", "check_markdown", "markdown_html", "plan_html"]

_EXTENSIONS = ["tables", "fenced_code", "sane_lists"]
# an image python-markdown wrote, alone in its paragraph or not
_IMG = re.compile(r'(<p>)?<img alt="([^"]*)" src="([^"]*)"\s*/?>(</p>)?')
_FIGURE_SRC = re.compile(r"(?:\./)?figures/([a-z0-9_]+)\.png")

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1200px;
margin:0 auto;padding:1rem 2rem;line-height:1.5;color:#1b1b1b}
h1,h2,h3{line-height:1.25}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.3rem 0 1rem;font-size:.88rem}
th,td{border:1px solid #ccc;padding:.2rem .5rem}th{background:#f3f3f3;cursor:pointer;
user-select:none;position:sticky;top:0}th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}tr:nth-child(even) td{background:#fafafa}
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


def plan_html(plan: ReportPlan, figure_dir: Path) -> str:
    """The plan as one HTML page: its Markdown converted, each figure interactive where the
    plan has an interactive version, else its PNG from ``figure_dir`` inlined."""
    interactive = {f.name: f.interactive for f in plan.figures if f.interactive is not None}
    return markdown_html(plan.text, figure_dir, interactive)


def markdown_html(text: str, figure_dir: Path | None = None,
                  interactive: Mapping[str, Any] | None = None) -> str:  # fmt: skip
    """Markdown that initsuite wrote (``report.md``, ``compare.md``) as one self-contained
    HTML page.

    Args:
        text: the Markdown; its first line (``# title``) titles the page.
        figure_dir: where ``figures/NAME.png`` are read from, to inline; default none (a
            figure becomes its title and a note).
        interactive: figure name → a function returning its plotly figure; drawn instead of
            the PNG.
    """
    import markdown

    body = markdown.markdown(text, extensions=_EXTENSIONS, output_format="html")
    state = {"plotly": False}

    def figure(match: re.Match[str]) -> str:
        alt, src = html.unescape(match.group(2)), html.unescape(match.group(3))
        inner = _figure(alt, src, figure_dir, interactive or {}, state)
        if match.group(1) and match.group(4):  # alone in its paragraph: a block of its own
            return inner
        return f"{match.group(1) or ''}{inner}{match.group(4) or ''}"

    body = _IMG.sub(figure, body)
    title = text.lstrip().split("\n", 1)[0].lstrip("# ").replace("`", "").strip()
    return (
        f'{HTML_MARK} -->\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title or 'initsuite report')}</title>\n<style>{_STYLE}</style>\n"
        f"<script>{_ERROR_SCRIPT}</script>\n</head>\n<body>\n"
        '<pre id="initsuite-errors" data-count="0"></pre>\n'
        f"{body}\n<script>{_TABLE_SCRIPT}</script>\n</body>\n</html>\n"
    )


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

"""report.html (initsuite report --html): one self-contained page with the sections, tables
and figures of report.md, interactive line figures and sortable, filterable tables.

The first tests read the file as text (no browser); the last open it in headless Chromium
(``chromium``, ``chromium-browser`` or ``google-chrome``) and skip, saying so, where none is
installed.
"""

from __future__ import annotations

import contextlib
import html
import io
import itertools
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch

import initsuite
from initsuite.cli import main
from initsuite.core.errors import InitsuiteError
from initsuite.report import write_report
from initsuite.report.interactive import cosine_lines, lines_vs_layer, loss_lines
from tests.helpers import dump_dom, run_cli

pytest.importorskip("plotly")
pytest.importorskip("markdown")

SCHEMES = ["kaiming_normal", "xavier_normal", "orthogonal"]
ACTIVATIONS = ["tanh", "relu"]
LINE_FIGURES = ("std_vs_layer", "grad_std_vs_layer", "weight_grad_vs_layer", "cosine_vs_layer",
                "training_loss")  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small sweep with gradients and the input pair, and a small training study."""
    root = tmp_path_factory.mktemp("html")
    initsuite.sweep(SCHEMES, ACTIVATIONS, 6, 16, seeds=2, backward=True, timing=False).save(
        root / "run"
    )
    initsuite.train(SCHEMES[:2], "relu", depth=4, width=16, seeds=[0], steps=20, eval_every=5,
                    threshold=0.5).save(str(root / "train"))  # fmt: skip
    return root / "run"


@pytest.fixture(scope="module")
def cli_page(run_dir: Path) -> tuple[int, str, Path]:
    """``initsuite report RUN --training TRAIN --html``, once per module: (exit code, what it
    printed, the page)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["report", str(run_dir), "--training", str(run_dir.parent / "train"),
                     "--html"])  # fmt: skip
    return code, printed.getvalue(), run_dir / "report.html"


@pytest.fixture(scope="module")
def page(cli_page: tuple[int, str, Path]) -> Path:
    code, _, path = cli_page
    assert code == 0
    return path


class _Outline(HTMLParser):
    """The text of every heading, and the number of tables, of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.tables = 0
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if re.fullmatch(r"h[1-6]", tag):
            self._in = tag
            self.headings.append("")
        elif tag == "table":
            self.tables += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self.headings[-1] += data


def _md_headings(text: str) -> list[str]:
    """The headings of Markdown ``text`` as a browser shows them (no code or emphasis marks),
    skipping fenced code blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            out.append(re.sub(r"[`*]", "", line.lstrip("#").strip()))
    return out


def _md_tables(text: str) -> int:
    """Pipe tables of Markdown ``text``: a row followed by a delimiter row."""
    lines = text.splitlines()
    delimiter = re.compile(r"\|(\s*:?-+:?\s*\|)+")
    return sum(1 for a, b in itertools.pairwise(lines)
               if a.startswith("|") and delimiter.fullmatch(b.strip()))  # fmt: skip


# --- the file itself ------------------------------------------------------------------------


def test_the_page_is_self_contained(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>\n<!-- initsuite report")
    assert not re.search(r"<script[^>]*\bsrc=", text), "every script is inlined"
    assert not re.search(r"<link\b", text), "no external stylesheet or font"
    assert 'src="http' not in text and "src='http" not in text
    assert text.count("plotly.js v") == 1  # the bundle's banner: inlined, once
    assert text.count("window.PlotlyConfig") == 1


def test_every_section_table_and_figure_of_the_markdown_is_in_the_page(page: Path) -> None:
    md = (page.parent / "report.md").read_text(encoding="utf-8")
    text = page.read_text(encoding="utf-8")
    outline = _Outline()
    outline.feed(text)
    shown = [html.unescape(h).strip() for h in outline.headings]
    for heading in _md_headings(md):
        assert heading in shown, heading
    assert outline.tables == _md_tables(md) > 0
    figures = re.findall(r"\]\(figures/([a-z0-9_]+)\.png\)", md)
    assert set(LINE_FIGURES) <= set(figures)
    for name in figures:
        assert f'id="{name}"' in text, name
        if name in LINE_FIGURES:  # interactive, not the PNG
            assert f'id="figure-{name}"' in text, name
        else:
            assert re.search(rf'id="{name}"><img alt="[^"]*" src="data:image/png;base64,', text)


def test_the_verdict_table_is_folded_in_the_page_and_whole_in_the_markdown(page: Path) -> None:
    md = (page.parent / "report.md").read_text(encoding="utf-8")
    verdict_md = md.split("## Verdict\n")[1].split("\n## ")[0]
    assert "](figures/verdict.png)" in verdict_md
    assert len(re.findall(r"^- (tanh|relu) at depth 6: ", verdict_md, re.MULTILINE)) == 2
    assert "| relu" in verdict_md and "| tanh" in verdict_md  # the table, in report.md
    text = page.read_text(encoding="utf-8")
    verdict = text.split(">Verdict</h2>")[1].split("<h2")[0]
    assert 'id="verdict"><img alt="The verdict at a glance"' in verdict
    folded = re.search(r'<details class="folded">\n<summary>The verdict as a table</summary>\n'
                       r"(.*?)</details>", verdict, re.DOTALL)  # fmt: skip
    assert folded is not None and "<table>" in folded.group(1)
    assert verdict.count("<table>") == 1  # the one table is the folded one
    assert verdict.index('id="verdict"') < verdict.index("<li>relu") < folded.start()


def test_writing_markdown_only_removes_an_earlier_page(
    small_sweep_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    write_report(small_sweep_dir, out_dir=out, html=True)
    assert (out / "report.html").is_file()
    write_report(small_sweep_dir, out_dir=out)
    assert not (out / "report.html").exists()  # it would contradict the new report.md


def test_a_report_html_initsuite_did_not_write_is_refused(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("<html>mine</html>")
    with pytest.raises(InitsuiteError, match="not written by initsuite"):
        write_report(run_dir, out_dir=out, html=True)
    assert (out / "report.html").read_text() == "<html>mine</html>"


def test_a_missing_plotly_is_one_line_and_writes_nothing(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setitem(sys.modules, "plotly", None)  # import plotly raises ImportError
    out = tmp_path / "out"
    with pytest.raises(InitsuiteError, match=r"pip install 'initsuite\[report\]'"):
        write_report(run_dir, out_dir=out, html=True)
    assert not (out / "report.md").exists()
    code, _, err = run_cli(["report", str(run_dir), "--out", str(out), "--html"], capsys)
    assert code != 0
    assert err.strip().count("\n") == 0 and "plotly" in err and "Traceback" not in err


def test_the_cli_writes_the_page(cli_page: tuple[int, str, Path]) -> None:
    """The page every test here reads is the CLI's (``initsuite report --html``)."""
    code, stdout, path = cli_page
    assert code == 0 and f"and {path}" in stdout
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_compare_html_writes_the_comparison_as_a_page(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target, md = tmp_path / "compare.html", tmp_path / "compare.md"
    code, stdout, _ = run_cli(["compare", str(run_dir), str(run_dir), "--html", str(target),
                               "--out", str(md)], capsys)  # fmt: skip
    assert code == 0 and str(target) in stdout
    text = target.read_text(encoding="utf-8")
    assert "<h1>initsuite compare" in text and "<script src" not in text
    assert text.count("<table") == _md_tables(md.read_text(encoding="utf-8"))


def test_conventions_html_writes_the_table_as_a_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "conventions.html"
    code, stdout, _ = run_cli(["conventions", "torch", "--html", str(target)], capsys)
    assert code == 0 and f"wrote {target}" in stdout
    text = target.read_text(encoding="utf-8")
    assert text.count("<table") == 1 and "<script src" not in text
    assert re.search(r"<td[^>]*>torch</td>", text)


def test_a_probe_report_gets_a_page_too(tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Linear(8, 4))
    initsuite.probe(model, torch.randn(4, 8), scheme="kaiming_normal").save(tmp_path / "p")
    write_report(tmp_path / "p", html=True)
    text = (tmp_path / "p" / "report.html").read_text(encoding="utf-8")
    md = (tmp_path / "p" / "report.md").read_text(encoding="utf-8")
    for name in re.findall(r"\]\(figures/([a-z0-9_]+)\.png\)", md):
        assert f'id="{name}"><img' in text  # no interactive version: the PNG inlined
    assert text.count("<table") == _md_tables(md)


# --- the interactive figures ---------------------------------------------------------------


def test_std_lines_are_the_geometric_mean_over_seeds_one_trace_per_scheme(run_dir: Path) -> None:
    layers = initsuite.SweepResult.load(run_dir).layers
    fig = lines_vs_layer(layers)
    measured = [t for t in fig.data if not t.name.endswith("(theory)")]
    assert len(measured) == len(SCHEMES) * len(ACTIVATIONS)
    # one legend entry per scheme; the other panels' traces share its group (toggle together)
    assert sorted(t.name for t in fig.data if t.showlegend) == sorted(SCHEMES)
    assert {t.legendgroup for t in fig.data} == set(SCHEMES)
    trace = next(t for t in measured if t.name == "orthogonal" and "tanh" in t.text[0])
    rows = layers[(layers["scheme"] == "orthogonal") & (layers["activation"] == "tanh")]
    expect = rows.groupby("layer")["std"].apply(lambda s: float(np.exp(np.log(s).mean())))
    np.testing.assert_allclose(trace.y, expect.loc[list(trace.x)].to_numpy(), rtol=1e-12)
    assert "scheme: orthogonal" in trace.text[0] and "activation: tanh" in trace.text[0]
    assert "layer" in trace.hovertemplate and fig.layout.yaxis.type == "log"


def test_architectures_are_dashes_and_schemes_keep_the_reports_colours() -> None:
    """Two archs: each scheme is one legend entry (no "scheme @ arch"), drawn in the colour
    the report gives it, with one dash per arch and a key of the dashes; the two archs'
    lines are not pooled."""
    from initsuite.report.families import scheme_colors

    res = initsuite.sweep(["kaiming_normal", "orthogonal"], "relu", 4, 16, seeds=2,
                          archs=["mlp", "resmlp"], timing=False, progress=False)  # fmt: skip
    colors = scheme_colors(["kaiming_normal", "orthogonal"])
    fig = lines_vs_layer(res.layers, colors=colors)
    measured = [t for t in fig.data if t.legendgroup != "arch" and "(theory)" not in t.name]
    assert len(measured) == 2 * 2  # scheme × arch, never pooled
    assert not any(" @ " in t.name for t in fig.data)
    assert sorted(t.name for t in measured if t.showlegend) == ["kaiming_normal", "orthogonal"]
    dashes = {t.text[0].split("arch: ")[1]: t.line.dash for t in measured}
    assert len(set(dashes.values())) == 2 and "dot" not in dashes.values()
    keys = [t for t in fig.data if t.legendgroup == "arch"]
    assert sorted(t.name for t in keys) == sorted(f"arch: {a}" for a in dashes)
    cosine = cosine_lines(res.layers, colors=colors).data  # the MLP's: resmlp has no pair
    for t in [*measured, *cosine]:
        assert t.line.color == colors[t.name.removesuffix(" (theory)")]
    std = lines_vs_layer(res.layers)
    mlp = next(t for t in std.data if t.name == "orthogonal" and "arch: mlp" in (t.text or [""])[0])
    rows = res.layers[(res.layers["scheme"] == "orthogonal") & (res.layers["arch"] == "mlp")]
    expect = rows.groupby("layer")["std"].apply(lambda s: float(np.exp(np.log(s).mean())))
    np.testing.assert_allclose(mlp.y, expect.loc[list(mlp.x)].to_numpy(), rtol=1e-12)


def test_gradient_cosine_and_loss_lines(run_dir: Path) -> None:
    layers = initsuite.SweepResult.load(run_dir).layers
    grad = lines_vs_layer(layers, "grad_std").data
    assert sum(t.showlegend for t in grad) == len(SCHEMES)
    cos = cosine_lines(layers)
    assert all(-1 <= y <= 1 for t in cos.data for y in t.y)
    # the mean-field c-map beside each measured line, toggled with it
    assert {t.legendgroup for t in cos.data if t.name.endswith("(theory)")} == set(SCHEMES)
    curves = initsuite.TrainingResult.load(run_dir.parent / "train").curves
    loss = loss_lines(curves, threshold=0.5)
    assert {t.name for t in loss.data} == set(SCHEMES[:2])
    laws = loss_lines(curves.rename(columns={"scheme": "law"}), hue="law")  # frameworks study
    assert {t.legendgroup for t in laws.data} == set(SCHEMES[:2])
    with pytest.raises(InitsuiteError, match="unknown quantity"):
        lines_vs_layer(layers, "cosines")


# --- in a browser ----------------------------------------------------------------------------


_PROBE = """<script>
window.addEventListener("load", function () {
  var out = {}, table = document.querySelectorAll("table")[0];
  var cells = function () { return Array.prototype.map.call(table.tBodies[0].rows,
    function (r) { return r.cells[0].textContent.trim(); }); };
  table.tHead.rows[0].cells[0].click(); out.up = cells();
  table.tHead.rows[0].cells[0].click(); out.down = cells();
  var box = table.previousElementSibling; box.value = out.up[0];
  box.dispatchEvent(new Event("input"));
  out.shown = Array.prototype.filter.call(table.tBodies[0].rows,
    function (r) { return r.style.display !== "none"; }).length;
  out.rows = table.tBodies[0].rows.length;
  var pre = document.createElement("pre"); pre.id = "probe-out";
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
});
</script>"""


@pytest.fixture(scope="module")
def probed_dom(page: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The page's DOM in headless Chromium, loaded once for the browser checks, with _PROBE
    added: after the page's own scripts ran, it sorts and filters the first table and writes
    what it saw into ``<pre id="probe-out">`` (it adds no table, and an error of its own would
    only count against the page)."""
    probed = tmp_path_factory.mktemp("browser") / "probed.html"
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", f"{_PROBE}</body>"))
    return dump_dom(probed)


def test_the_page_runs_in_a_browser_without_errors(page: Path, probed_dom: str) -> None:
    dom = probed_dom
    errors = re.search(r'<pre id="initsuite-errors" data-count="(\d+)">([^<]*)</pre>', dom)
    assert errors is not None and errors.group(1) == "0", errors and errors.group(2)
    for name in LINE_FIGURES:  # each interactive figure drew its SVG
        div = re.search(rf'<div id="figure-{name}" class="plotly-graph-div js-plotly-plot"', dom)
        assert div is not None, name
        following = dom[div.end() : div.end() + 20000]
        assert 'class="main-svg"' in following, name
    text = page.read_text(encoding="utf-8")
    assert dom.count("<table") == text.count("<table")
    assert dom.count('class="table-filter"') == text.count("<table")


def test_tables_sort_and_filter_in_a_browser(probed_dom: str) -> None:
    import json

    found = re.search(r'<pre id="probe-out">([^<]*)</pre>', probed_dom)
    assert found is not None
    out = json.loads(html.unescape(found.group(1)))
    assert out["up"] == sorted(out["up"], key=str.lower)
    assert out["down"] == out["up"][::-1]
    assert 1 <= out["shown"] < out["rows"]  # the filter hid the rows without the text

"""Stored script injection (issue 27, items 1-4): a results directory someone else wrote must
be safe to open as a page.

Payloads are planted in every stored string a page shows: the directories' names, meta.json's
environment (cpu, platform, versions, git commit, date, GPUs), a sweep's configuration values
and scheme names (in memory: the loader checks the stored ones against the grid), a probed
model's class and module names, and a conventions table. Every page kind is then written (a
sweep's and a probe's ``report --html``, ``compare --html``, a conventions page) and checked
twice: by parsing (:func:`helpers.foreign_markup`: no tag, event handler, URL or script that
initsuite did not write, and each payload shown as text) and in headless Chromium, with an
``alert`` hook, that no payload ran. The stored directories are copies of
``small_sweep_dir``, built once per module; figures are stubbed (their PNGs carry no text).
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import io
import json
import math
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import dump_dom, foreign_markup, stub_figures
from torch import nn

import initsuite
from initsuite.cli import main
from initsuite.report.conventions import conventions_page
from initsuite.report.html import PAGE_SCRIPTS, markdown_html
from initsuite.report.interactive import cosine_lines, lines_vs_layer
from initsuite.report.markdown import render
from initsuite.results.sweep import SweepResult

pytest.importorskip("plotly")
pytest.importorskip("markdown")

PWNED = "window.__pwned=1"
SCRIPT = f"<script>{PWNED}</script>"
IMG = f'<img src=x onerror="{PWNED}">'
TICK = f"`<img src=x onerror={PWNED}>`"  # leaves a one-backtick code span
CLOSE = f"</script><script>{PWNED}</script>"  # leaves plotly's <script> of JSON
LINK = f"[here](javascript:{PWNED}) *a* | _b_ \\ #"  # Markdown: link, emphasis, cell break
PAYLOADS = (SCRIPT, IMG, TICK, CLOSE, LINK)
# a directory's name holds no "/", a module's name no "."
DIR_A, DIR_B = f"a{TICK}", f"b{IMG}{LINK.replace('|', '')}"
MODULE = "m`<img src=x onerror=__pwned=1>`"


def _plant(meta_path: Path, values: dict[str, str]) -> None:
    """meta.json's free-text environment fields set to payloads (its ``gpus`` too)."""
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    env = meta["environment"]
    env.update(cpu=values["cpu"], platform=values["platform"], git_commit=values["commit"],
               utc_time=values["time"], torch=values["torch"], python=values["python"],
               gpus=[{"name": values["gpu"], "device": values["time"]}])  # fmt: skip
    meta_path.write_text(json.dumps(meta), encoding="utf-8")


def _run(args: list[str]) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(args) == 0


def _payload_model() -> nn.Module:
    """A tiny model whose class, a submodule's class and a submodule's name are payloads; the
    submodule overflows, so the report names it as the first divergence."""
    act = type(SCRIPT, (nn.Module,), {"forward": lambda self, x: x * math.inf})
    model = type(CLOSE, (nn.Sequential,), {})(nn.Linear(8, 8))
    model.add_module(MODULE, act())
    model.add_module("out", nn.Linear(8, 4))
    return model


def _payload_sweep(small_sweep_dir: Path) -> str:
    """A sweep's report page, written in memory from its stored tables with the scheme named
    by a payload, payloads in its configuration values and title, and its interactive
    figures drawn (their legend, hover and panel texts carry the scheme's name)."""
    r = SweepResult.load(small_sweep_dir)

    def named(df: pd.DataFrame) -> pd.DataFrame:
        if "scheme" not in df.columns:
            return df
        return df.assign(scheme=df["scheme"].astype(str).replace("kaiming_normal", CLOSE))

    tables = {f.name: named(getattr(r, f.name)) for f in dataclasses.fields(r)
              if isinstance(getattr(r, f.name), pd.DataFrame)}  # fmt: skip
    config = {**r.meta["config"], "schemes": [CLOSE], "explode_at": IMG, "vanish_at": LINK,
              "pair_cosine": SCRIPT, "batch": TICK, "bias": SCRIPT}  # fmt: skip
    r = dataclasses.replace(r, meta={**r.meta, "config": config}, **tables)
    figures = ["std_vs_layer", "cosine_vs_layer"]
    lines: dict[str, Callable[[], object]] = {
        "std_vs_layer": lambda: lines_vs_layer(r.layers),
        "cosine_vs_layer": lambda: cosine_lines(r.layers),
    }
    return markdown_html(render(r, figures, title=f"initsuite report: {IMG}"), None, lines)


@pytest.fixture(scope="module")
def pages(small_sweep_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every page kind, written once from payload-laden stored data: name → page."""
    root = tmp_path_factory.mktemp("payloads")
    a, b = root / DIR_A, root / DIR_B
    for run, order in ((a, PAYLOADS), (b, PAYLOADS[::-1])):
        shutil.copytree(small_sweep_dir, run)
        keys = ("cpu", "platform", "commit", "time", "torch", "python", "gpu")
        _plant(run / "meta.json", dict(zip(keys, (*order, *order), strict=False)))
    pages = {"report": a / "report.html", "compare": root / "compare.html",
             "probe": root / "probe" / "report.html", "conventions": root / "conventions.html",
             "payload sweep": root / "payload_sweep.html"}  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        stub_figures(mp)
        _run(["report", str(a), "--html"])
        _run(["compare", str(a), str(b), "--out", str(root / "compare.md"),
              "--html", str(pages["compare"])])  # fmt: skip
        initsuite.probe(_payload_model(), torch.randn(4, 8), scheme="kaiming_normal",
                        backward=True).save(root / "probe")  # fmt: skip
        _run(["report", str(root / "probe"), "--html"])
    table = initsuite.conventions("torch", layer="linear")
    table.loc[0, "law"], table.loc[1, "convention"], table.loc[0, "truncation"] = CLOSE, TICK, LINK
    pages["conventions"].write_text(conventions_page(table, IMG), encoding="utf-8")
    pages["payload sweep"].write_text(_payload_sweep(small_sweep_dir), encoding="utf-8")
    return pages


def _text(page: str) -> str:
    """What a page shows as text: its tags removed, entities read."""
    body = page.split("<body>", 1)[1]
    body = re.sub(r"<script.*?</script>", "", body, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]*>", "", body))


# what each page must show as text: the payloads it was given
SHOWN = {
    "report": (*PAYLOADS, DIR_A),
    "compare": (SCRIPT, IMG, DIR_A, DIR_B),  # the notes shorten the environment's values
    "probe": (SCRIPT, CLOSE, MODULE),
    "conventions": (IMG, CLOSE, TICK, LINK),
    "payload sweep": PAYLOADS,
}


@pytest.mark.parametrize("kind", list(SHOWN))
def test_stored_strings_show_as_text_never_as_markup(kind: str, pages: dict[str, Path]) -> None:
    page = pages[kind].read_text(encoding="utf-8")
    assert foreign_markup(page, PAGE_SCRIPTS) == []
    shown = _text(page)
    for payload in SHOWN[kind]:
        assert payload in shown, (kind, payload)


def test_a_backtick_in_a_name_stays_in_its_code_span(pages: dict[str, Path]) -> None:
    """compare.md quotes each directory as one code span (a longer fence), so the page shows
    the whole name as code, its title too."""
    page = pages["compare"].read_text(encoding="utf-8")
    codes = [html.unescape(c) for c in re.findall(r"<code>(.*?)</code>", page)]
    assert any(c.endswith(DIR_A) for c in codes) and any(c.endswith(DIR_B) for c in codes)
    title = html.unescape(re.search(r"<title>(.*?)</title>", page).group(1))  # type: ignore[union-attr]
    assert DIR_A in title and DIR_B in title


def test_plotly_labels_carry_the_scheme_escaped() -> None:
    """plotly.js reads HTML in legend and hover text: a scheme's name reaches it escaped."""
    layers = pd.DataFrame({"scheme": SCRIPT, "activation": IMG, "depth": 2, "width": 4,
                           "seed": 0, "layer": [1, 2], "std": [1.0, 0.5], "device": "cpu",
                           "dtype": "float32"})  # fmt: skip
    fig = lines_vs_layer(layers)
    assert {t.name for t in fig.data} == {html.escape(SCRIPT, quote=False)}
    assert "<script>" not in fig.data[0].text[0] and "<img" not in str(fig.layout.annotations)


# the alert hook, first in the page, and the probe, last: it reports to the harness page what
# ran, the page's own script errors and plotly's legend texts, once the page's images have
# failed to load
_HOOK = "<script>window.alert = function () { window.__pwned = 'alert'; };</script>"
_REPORT = """<script>
window.addEventListener("load", function () { setTimeout(function () {
  parent.postMessage({name: document.body.getAttribute("data-name"),
                      pwned: String(window.__pwned),
                      errors: (window.initsuiteErrors || []).length,
                      legend: Array.prototype.map.call(document.querySelectorAll(".legendtext"),
                                                       function (t) { return t.textContent; })},
                     "*");
}, 500); });
</script>"""
_HARNESS = """<!DOCTYPE html><html><body><pre id="seen">{}</pre>
<script>
var seen = {};
window.addEventListener("message", function (e) {
  seen[e.data.name] = e.data;
  document.getElementById("seen").textContent = JSON.stringify(seen);
});
</script>
FRAMES</body></html>"""


def test_no_stored_payload_runs_in_a_browser(pages: dict[str, Path],
                                             tmp_path: Path) -> None:  # fmt: skip
    """Every page in one headless Chromium, each in a frame of a harness page that collects
    what ran; a control page with a live payload proves that the check sees one."""
    live = markdown_html("# control\n").replace("</body>", f"{IMG}</body>")
    frames = []
    for name, text in [*((k, p.read_text(encoding="utf-8")) for k, p in pages.items()),
                       ("control", live)]:  # fmt: skip
        copy = tmp_path / f"{name.replace(' ', '_')}.html"
        text = text.replace("<head>", f"<head>{_HOOK}", 1)
        text = text.replace("<body>", f'<body data-name="{name}">', 1)
        copy.write_text(text.replace("</body>", f"{_REPORT}</body>"), encoding="utf-8")
        frames.append(f'<iframe src="{copy.name}"></iframe>')
    harness = tmp_path / "harness.html"
    harness.write_text(_HARNESS.replace("FRAMES", "\n".join(frames)), encoding="utf-8")
    found = re.search(r'<pre id="seen">([^<]*)</pre>', dump_dom(harness))
    assert found is not None
    seen = json.loads(html.unescape(found.group(1)))
    assert seen.pop("control")["pwned"] == "1"  # the check sees a payload that ran
    assert set(seen) == set(pages)
    for name, what in seen.items():
        assert (what["name"], what["pwned"], what["errors"]) == (name, "undefined", 0), what
    assert CLOSE in seen["payload sweep"]["legend"]  # plotly shows the escaped name as written


def test_a_fold_opens_only_where_initsuite_wrote_one() -> None:
    """A folded block's summary is escaped, and a stored string that spells the lines which
    fold a block (quoted by md_text or md_code) opens none."""
    from initsuite.report.html import folded
    from initsuite.report.style import md_code, md_text

    page = markdown_html(folded(f"a {SCRIPT}", "| a |\n|---|\n| 1 |"))
    assert f"<summary>a {html.escape(SCRIPT)}</summary>" in page and SCRIPT not in page
    forged = "<!-- fold: x -->\n\n| a |\n|---|\n| 1 |\n\n<!-- /fold -->"
    for quoted in (md_text(forged), md_code(forged)):
        page = markdown_html(f"# t\n\n{quoted}\n")
        assert "<details" not in page and "<summary" not in page
    with pytest.raises(initsuite.InitsuiteError, match="summary"):
        folded("a --> b", "x")

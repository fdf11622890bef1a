"""The report of a probe of several models (issue 16): the depth-scaling table and figure (the
GPT-2 1/√(2L) rule against plain N(0, 0.02)), the stream and gradient by block model by model,
and the table of which model × scheme diverges or loses its gradient."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from initsuite.report.html import markdown_html
from initsuite.report.probe_models import BLOCK_GRAD_FIGURE, BLOCK_STD_FIGURE, SCALING_FIGURE
from initsuite.report.probe_report import (
    PROBE_FIGURE,
    probe_plan,
    render_probe,
    write_probe_report,
)
from initsuite.report.probe_tables import GRAD_LOST, scaling_table, verdict_table
from initsuite.report.probe_verdict import (
    TABLE_TITLE,
    model_names,
    pass_table,
    probe_verdict_figure,
    probe_verdict_sentences,
)
from initsuite.report.verdict import VERDICT_FIGURE
from initsuite.report.verdict_figure import STATUS_COLORS
from initsuite.report.verdict_text import times
from initsuite.results import columns as C
from initsuite.results.probe import ProbeResult, probe_summary

BASE = "hf:gpt2,n_embd=32,n_head=2,vocab_size=100,n_positions=16"


def _calls(passes: list[dict[str, Any]]) -> pd.DataFrame:
    """A probe table of two calls per pass (``passes``: model, scheme, autocast and what
    to set on the calls: std, grad_std, divergence kinds)."""
    rows = []
    for p in passes:
        for call in (1, 2):
            rows.append({c: None for c in C.PROBE} | {
                "model": p["model"], "scheme": p["scheme"], "seed": 0,
                "autocast": p.get("autocast", "float32"), "call": call, "module": f"m{call}",
                "type": "Linear", "reinitialised": True, "numel": 8, "std": p.get("std", 1.0),
                "grad_std": p.get("grad", 1.0) if call == 1 else 1.0,
                "divergence_kind": p.get("kind") if call == 2 else None,
                "grad_divergence_kind": p.get("grad_kind") if call == 1 else None,
            })  # fmt: skip
    return C.frame(C.PROBE, rows)


def _blocks(model: str, scheme: str, stream: list[float], grads: list[float]) -> pd.DataFrame:
    rows = [{"model": model, "scheme": scheme, "seed": 0, "autocast": "float32", "block": k,
             "module": f"h.{k - 1}", "type": "GPT2Block", "stream_std": s, "update_std": 0.1,
             "update_ratio": 0.1, "stream_grad_std": g}
            for k, (s, g) in enumerate(zip(stream, grads, strict=True), start=1)]  # fmt: skip
    return C.frame(C.PROBE_BLOCKS, rows)


def _meta(*depths: int) -> dict[str, Any]:
    return {"models": [{"model": f"{BASE},n_layer={n}", "base": BASE, "values": {"n_layer": n},
                        "input_shape": [2, 16], "parameters": 1000 * n}
                       for n in depths]}  # fmt: skip


def test_scaling_table_reads_the_last_blocks_stream_and_the_first_blocks_gradient() -> None:
    models = [f"{BASE},n_layer={n}" for n in (2, 3)]
    calls = _calls([{"model": m, "scheme": "gpt2"} for m in models])
    blocks = pd.concat([_blocks(models[0], "gpt2", [1.0, 2.0], [5.0, 4.0]),
                        # an overflow at the last block: NaN is the answer, not block 2's 3.0
                        _blocks(models[1], "gpt2", [1.0, 3.0, math.nan], [math.nan, 7.0, 6.0])],
                       ignore_index=True)  # fmt: skip
    table = scaling_table(calls, blocks, _meta(2, 3))
    assert list(table["value"]) == [2, 3] and set(table["key"]) == {"n_layer"}
    assert table["final_stream_std"].iloc[0] == 2.0
    assert math.isnan(table["final_stream_std"].iloc[1])
    assert table["first_block_grad_std"].iloc[0] == 5.0
    assert math.isnan(table["first_block_grad_std"].iloc[1])
    # no sweep in meta: nothing to scale
    assert scaling_table(calls, blocks, {"models": _meta(2)["models"]}).empty


def test_verdict_table_names_each_divergence_and_a_lost_gradient() -> None:
    calls = _calls([
        {"model": "a", "scheme": "s1"},
        {"model": "a", "scheme": "s2", "kind": "overflow"},
        {"model": "b", "scheme": "s1", "grad_kind": "underflow"},
        {"model": "b", "scheme": "s2", "grad": GRAD_LOST / 10},
    ])  # fmt: skip
    table = verdict_table(calls).set_index("model")
    assert table.loc["a", "s1"] == "ok (1)"
    assert table.loc["a", "s2"] == "overflow at `m2`"
    assert table.loc["b", "s1"] == "gradient underflow at `m1`"
    assert table.loc["b", "s2"].startswith("gradient lost (1.0e-07")
    assert list(table.columns) == ["s1", "s2"]


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    from initsuite.studies.probe_factory import probe_factory

    result = probe_factory(BASE, schemes=["gpt2", "normal:std=0.02"],
                           vary={"n_layer": [2, 8]}, backward=True, progress=False)  # fmt: skip
    return result.save(tmp_path_factory.mktemp("sweep") / "gpt2")


def test_gpt2_rule_keeps_the_stream_flat_where_plain_normal_grows_with_depth(
    sweep_dir: Path,
) -> None:
    r = ProbeResult.load(sweep_dir)
    t = scaling_table(r.calls, r.blocks, r.meta).set_index(["scheme", "value"])
    growth = {s: t.loc[(s, 8), "final_stream_std"] / t.loc[(s, 2), "final_stream_std"]
              for s in ("as_built", "gpt2", "normal:std=0.02")}  # fmt: skip
    # N(0, 0.02) everywhere adds a fixed variance per block; c_proj at 0.02/√(2L) does not
    assert growth["normal:std=0.02"] > 1.3
    assert growth["gpt2"] < 1.15 and growth["as_built"] < 1.15


def test_report_of_a_sweep_draws_the_scaling_and_per_model_figures(sweep_dir: Path) -> None:
    pytest.importorskip("seaborn")
    report = write_probe_report(sweep_dir).read_text()
    figures = sweep_dir / "figures"
    for name in (SCALING_FIGURE, BLOCK_STD_FIGURE, BLOCK_GRAD_FIGURE):
        assert (figures / f"{name}.png").stat().st_size > 10_000
        assert f"figures/{name}.png" in report
    assert not (figures / f"{PROBE_FIGURE}.png").exists()  # per call: one model only
    assert "<!-- fold: Which model × scheme diverges or loses its gradient -->" in report
    for n in (2, 8):
        assert f"`{BASE},n_layer={n}`" in report
    assert re.search(r"\|\s*n_layer\s*\|\s*scheme\s*\|", report)  # the scaling table
    # initsuite knows its own figures: writing the report again replaces them
    assert write_probe_report(sweep_dir).read_text() == report


# --- the verdict at a glance (issue 28, item 9) ----------------------------------------------


def _grid(fig: Any) -> tuple[list[str], list[str], Any, dict[tuple[int, int], str]]:
    """A verdict figure's rows, columns, cell colours and cell texts (by row and column)."""
    ax = fig.axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    columns = [t.get_text() for t in ax.get_xticklabels()]
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
             for t in ax.texts}  # fmt: skip
    return rows, columns, ax.images[0].get_array(), texts


def _assert_figure_shows(table: pd.DataFrame, names: dict[str, str], fig: Any) -> None:
    """Each pass of ``table`` (pass_table) in its cell: its status's colour, and its
    divergence's kind and module, its lost gradient or its factor."""
    from matplotlib.colors import to_rgb

    rows, columns, rgb, texts = _grid(fig)
    assert rows == [names[m] for m in dict.fromkeys(table["model"])]
    assert columns == list(dict.fromkeys(table["scheme"]))
    assert len(texts) == len(table) == len(rows) * len(columns)
    for _, r in table.iterrows():
        i, j = rows.index(names[r["model"]]), columns.index(r["scheme"])
        np.testing.assert_allclose(rgb[i, j], to_rgb(STATUS_COLORS[r["status"]]))
        if r["status"] == "diverges":
            arrow = "∇ " if r["direction"] == "backward" else ""
            assert texts[i, j] == f"{arrow}{r['kind']} @{r['module']}"
        elif r["direction"] == "backward":  # the gradient lost, or out of the band
            lost = r["gradient"] < GRAD_LOST
            assert texts[i, j] == f"∇ {times(r['gradient' if lost else 'grad_factor'])}"
        else:
            assert texts[i, j] == times(r["factor"])


def test_report_of_a_sweep_opens_with_the_verdict_figure_sentences_and_folded_table(
    sweep_dir: Path,
) -> None:
    r = ProbeResult.load(sweep_dir)
    plan = probe_plan(r)
    assert plan.figures[0].name == VERDICT_FIGURE
    text = plan.text
    assert next(line for line in text.splitlines() if line.startswith("## ")) == "## Verdict"
    verdict = text.split("## Verdict\n", 1)[1].split("\n## ", 1)[0]
    assert verdict.lstrip().startswith(f"![The verdict at a glance](figures/{VERDICT_FIGURE}.png)")
    assert text.index(f"{VERDICT_FIGURE}.png") < text.index(f"{SCALING_FIGURE}.png")
    # one sentence per model, every scheme named in it
    table = pass_table(r.calls, r.blocks)
    names = model_names(r.meta, list(dict.fromkeys(r.calls["model"])))
    assert list(names.values()) == ["hf:gpt2, n_layer=2", "hf:gpt2, n_layer=8"]
    sentences = [line[2:] for line in verdict.splitlines() if line.startswith("- ")]
    assert sentences == probe_verdict_sentences(table, names)
    for sentence, name in zip(sentences, names.values(), strict=True):
        assert sentence.startswith(f"{name}: ") and sentence.endswith(".")
        for scheme in ("as_built", "gpt2", "normal:std=0.02"):
            assert scheme in sentence
    # the model × scheme table whole in the Markdown, folded in report.html
    folded = verdict.split(f"<!-- fold: {TABLE_TITLE} -->\n", 1)[1].split("<!-- /fold -->")[0]
    for model in names:
        assert re.search(rf"\|\s*{re.escape(model)}\s*\|\s*ok \(", folded)
    page = markdown_html(text)
    assert f"<summary>{TABLE_TITLE}</summary>" in page
    # the statuses against the stored tables: no divergence here; the stream's factor is
    # the last block's output over the first block's input (update / its ratio to it)
    summary = probe_summary(r.calls).set_index(["model", "scheme"])
    for _, p in table.iterrows():
        assert pd.isna(summary.loc[(p["model"], p["scheme"]), "divergence_kind"])
        b = r.blocks[(r.blocks["model"] == p["model"]) & (r.blocks["scheme"] == p["scheme"])]
        b = b.sort_values("block")
        entering = b["update_std"].iloc[0] / b["update_ratio"].iloc[0]
        np.testing.assert_allclose(p["factor"], b["stream_std"].iloc[-1] / entering, rtol=1e-12)
        assert p["status"] == ("keeps" if 0.1 <= p["factor"] <= 10 else "drifts")
    assert set(table.loc[table["scheme"] == "gpt2", "status"]) == {"keeps"}
    _assert_figure_shows(table, names, plan.figures[0].draw())


def test_verdict_of_every_status_reads_in_cells_and_sentences_escaped() -> None:
    """Without known blocks the factor is the output's std (last call over first); a pass
    diverges forward or backward at its module, drifts where its gradient was lost or its
    std left the band; stored names reach the page escaped."""
    hostile = "c<img src=x onerror=alert(1)>"
    calls = _calls([
        {"model": "a", "scheme": "s1"},
        {"model": "a", "scheme": "s2", "kind": "overflow"},
        {"model": "b", "scheme": "s1", "grad_kind": "underflow"},
        {"model": "b", "scheme": "s2", "grad": GRAD_LOST / 10},
        {"model": hostile, "scheme": "s1"},
        {"model": hostile, "scheme": "s2"},
    ])  # fmt: skip
    last = calls["call"] == 2
    calls.loc[last & (calls["model"] == hostile), "std"] = [50.0, 1e-3]
    calls.loc[last & (calls["model"] == "a") & (calls["scheme"] == "s2"), "module"] = "x.<b>"
    table = pass_table(calls, C.frame(C.PROBE_BLOCKS, []))
    assert list(table["status"]) == ["keeps", "diverges", "diverges", "drifts", "drifts",
                                     "drifts"]  # fmt: skip
    assert list(table["basis"]) == ["output"] * 6
    names = model_names({}, ["a", "b", hostile])
    assert probe_verdict_sentences(table, names)[:2] == [
        "a: s1 keeps the output's std (×1) and the gradient (×1); s2 overflows (at `x.<b>`).",
        "b: s1 underflows backward (at `m1`); s2 loses the gradient (×1e-7 at the first module).",
    ]
    assert probe_verdict_sentences(table, names)[2].endswith(
        ": s1 grows the output's std (×50); s2 shrinks it (×1e-3)."
    )
    _assert_figure_shows(table, names, probe_verdict_figure(table, names))
    page = markdown_html(render_probe(calls, {}, [VERDICT_FIGURE], C.frame(C.PROBE_BLOCKS, [])))
    assert "<img src=x" not in page and "<b>" not in page
    assert "c&lt;img src=x onerror=alert(1)&gt;" in page

"""The report of a probe of several models (issue 16): the depth-scaling table and figure (the
GPT-2 1/√(2L) rule against plain N(0, 0.02)), the stream and gradient by block model by model,
and the table of which model × scheme diverges or loses its gradient."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from initsuite.report.probe_models import BLOCK_GRAD_FIGURE, BLOCK_STD_FIGURE, SCALING_FIGURE
from initsuite.report.probe_report import PROBE_FIGURE, write_probe_report
from initsuite.report.probe_tables import GRAD_LOST, scaling_table, verdict_table
from initsuite.results import columns as C
from initsuite.results.probe import ProbeResult

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

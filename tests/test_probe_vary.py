"""Sweeps of a real architecture and several precisions in one probe (issue 16): ``--vary``
grids of a source's overrides and ``--autocasts`` passes, one tidy table keyed by
``model``, ``scheme`` and ``autocast``; older directories (one model, no autocast) still load.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from initsuite.core.errors import InitsuiteError
from initsuite.results import columns as C
from initsuite.results.probe import ProbeResult, probe_summary
from initsuite.studies import sources
from initsuite.studies.probe_factory import ProbeConfig, probe_factory
from tests.helpers import run_cli

pytest.importorskip("transformers")

BASE = "hf:gpt2,n_embd=32,n_head=2,vocab_size=100,n_positions=16"


def _sweep(**kw: object) -> ProbeResult:
    args = {"schemes": ("normal:std=0.02",), "vary": {"n_layer": [1, 3]}, "backward": True}
    return probe_factory(BASE, **{**args, **kw}, progress=False)  # type: ignore[arg-type]


def assert_same_measurements(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_a_depth_sweep_is_one_table_of_every_model_and_scheme() -> None:
    result = _sweep()
    models = [f"{BASE},n_layer=1", f"{BASE},n_layer=3"]
    assert list(dict.fromkeys(result.calls["model"])) == models
    summary = result.summary()
    assert list(zip(summary["model"], summary["scheme"], strict=True)) == [
        (models[0], "as_built"), (models[0], "normal:std=0.02"),
        (models[1], "as_built"), (models[1], "normal:std=0.02"),
    ]  # fmt: skip
    # each model has as many GPT2Block rows as layers, per scheme
    per = result.blocks.groupby(["model", "scheme"]).size()
    assert per[(models[0], "as_built")] == 1 and per[(models[1], "normal:std=0.02")] == 3
    entries = result.meta["models"]
    assert [m["model"] for m in entries] == models
    assert [m["values"] for m in entries] == [{"n_layer": 1}, {"n_layer": 3}]
    assert all(m["base"] == BASE for m in entries)
    assert entries[0]["parameters"] < entries[1]["parameters"]
    assert result.meta["config"]["vary"] == {"n_layer": [1, 3]}


def test_each_variant_measures_what_a_probe_of_it_alone_measures() -> None:
    swept = _sweep()
    alone = probe_factory(f"{BASE},n_layer=3", schemes=["normal:std=0.02"], backward=True,
                          progress=False)  # fmt: skip
    rows = swept.calls[swept.calls["model"] == f"{BASE},n_layer=3"]
    assert_same_measurements(rows, alone.calls)
    blocks = swept.blocks[swept.blocks["model"] == f"{BASE},n_layer=3"]
    assert_same_measurements(blocks, alone.blocks)


def test_autocast_passes_sit_beside_float32_in_one_table() -> None:
    result = probe_factory(f"{BASE},n_layer=2", schemes=["xavier_normal"],
                           autocasts=["float32", "bfloat16"], progress=False)  # fmt: skip
    calls = result.calls
    assert set(calls["autocast"]) == {"float32", "bfloat16"}
    plain = probe_factory(f"{BASE},n_layer=2", schemes=["xavier_normal"], progress=False)
    assert_same_measurements(calls[calls["autocast"] == "float32"], plain.calls)
    half = calls[calls["autocast"] == "bfloat16"]
    # GPT-2's Conv1D is an addmm, which CPU autocast runs in bfloat16
    assert (half.loc[half["type"] == "Conv1D", "dtype"] == "bfloat16").all()
    assert (calls.loc[calls["autocast"] == "float32", "dtype"] == "float32").all()
    assert len(result.summary()) == 4  # 2 schemes × 2 precisions


def test_a_sweep_round_trips_through_its_directory(tmp_path: Path) -> None:
    result = _sweep(autocasts=("float32", "bfloat16"))
    back = ProbeResult.load(result.save(tmp_path / "sweep"))
    assert_same_measurements(back.calls, result.calls)
    assert_same_measurements(back.blocks, result.blocks)
    assert back.meta["models"] == result.meta["models"]


def test_a_directory_from_before_models_and_autocast_loads_as_one_float32_model(
    tmp_path: Path,
) -> None:
    result = probe_factory(f"{BASE},n_layer=1", progress=False)
    out = result.save(tmp_path / "old")
    for name in ("probe", "blocks"):
        table = pd.read_parquet(out / f"{name}.parquet")
        table.drop(columns=["model", "autocast"]).to_parquet(out / f"{name}.parquet")
    back = ProbeResult.load(out)
    assert (back.calls["model"] == f"{BASE},n_layer=1").all()  # the factory it recorded
    assert (back.calls["autocast"] == "float32").all() and len(back.blocks) == 1
    assert (back.blocks["model"] == f"{BASE},n_layer=1").all()
    # partly null is damage, not an old directory
    table = pd.read_parquet(out / "probe.parquet")
    table["model"] = pd.Series(["m"] + [None] * (len(table) - 1), dtype="string")
    table.to_parquet(out / "probe.parquet")
    with pytest.raises(InitsuiteError, match=r"probe\.parquet' has a null 'model', a key"):
        ProbeResult.load(out)


def test_summary_keeps_precisions_and_models_apart() -> None:
    rows = [{c: None for c in C.PROBE} | {"model": m, "scheme": "s", "seed": 0, "autocast": a,
             "call": 1, "module": "(root)", "type": "M", "reinitialised": False, "std": v}
            for m, a, v in (("a", "float32", 1.0), ("a", "bfloat16", 2.0),
                            ("b", "float32", 3.0))]  # fmt: skip
    table = C.frame(C.PROBE, rows)
    table["numel"] = 4
    s = probe_summary(table)
    assert list(zip(s["model"], s["autocast"], s["last_std"], strict=True)) == [
        ("a", "float32", 1.0), ("a", "bfloat16", 2.0), ("b", "float32", 3.0),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("vary", "needle"),
    [
        (["n_layers=1,2"], "GPT2Config has no key 'n_layers'; did you mean 'n_layer'?"),
        (["n_layer"], "--vary 'n_layer' is not KEY=V1,V2,..., e.g. n_layer=6,12,24"),
        (["n_layer=1,"], "is not KEY=V1,V2,..."),
        (["n_layer=1,1"], "--vary n_layer=1,1 repeats a value"),
        (["n_layer=1", "n_layer=2"], "--vary 'n_layer' is given twice"),
        (["n_layer=1.5"], "n_layer must be an int (its default is 12), got 1.5"),
    ],
)
def test_a_bad_vary_is_one_line_before_any_model_is_built(vary: list[str], needle: str) -> None:
    with pytest.raises(InitsuiteError) as info:
        ProbeConfig(BASE, vary=vary)  # type: ignore[arg-type]  # parsed in __post_init__
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_vary_needs_a_model_by_name_and_is_size_checked_per_variant() -> None:
    with pytest.raises(InitsuiteError, match=r"vary needs a model by name .*has none"):
        ProbeConfig("tests.helpers:mlp", input_shape=(2, 8), vary=["n_layer=1,2"])  # type: ignore[arg-type]
    small = sources.parse(f"{BASE},n_layer=1").parameters
    with pytest.raises(InitsuiteError, match=r"n_layer=8 has .* more than the limit"):
        ProbeConfig(BASE, vary=["n_layer=1,8"], max_parameters=small + 1)  # type: ignore[arg-type]


def test_an_unknown_precision_names_the_nearest() -> None:
    with pytest.raises(InitsuiteError, match="unknown autocast precision 'bfloat'; did you mean "
                                             "'bfloat16'"):  # fmt: skip
        ProbeConfig(BASE, autocasts=("float32", "bfloat"))


def test_cli_vary_and_autocasts_write_one_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p"
    code, _, err = run_cli(["probe", BASE, "--vary", "n_layer=1,2", "--autocasts",
                                 "float32,bfloat16", "--schemes", "gpt2", "--backward",
                                 "--no-report", "--out", str(out)], capsys)  # fmt: skip
    assert code == 0, err
    calls = ProbeResult.load(out).calls
    assert calls.groupby(["model", "scheme", "autocast"]).ngroups == 2 * 2 * 2
    code, _, err = run_cli(["probe", BASE, "--vary", "n_layr=1,2", "--out",
                            str(tmp_path / "bad")], capsys)  # fmt: skip
    assert code == 2 and "no key 'n_layr'; did you mean 'n_layer'" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()
    # --dtypes: the flag's old name, kept for one release
    code, _, err = run_cli(["probe", BASE, "--dtypes", "float8", "--out",
                            str(tmp_path / "bad")], capsys)  # fmt: skip
    assert code == 2 and "unknown autocast precision 'float8'" in err
    assert not (tmp_path / "bad").exists()


def test_a_forward_that_raises_names_the_model_scheme_and_module(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p"
    # ids past the vocabulary: GPT-2's token embedding raises
    code, _, err = run_cli(["probe", f"{BASE},n_layer=1", "--tokens", "1000", "--schemes",
                            "gpt2", "--out", str(out)], capsys)  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"the model from '{BASE},n_layer=1' failed on an input of shape 2,16" in err
    assert "scheme 'as_built') in module 'wte' (Embedding): IndexError" in err
    assert not out.exists()

"""Tests of ``initsuite.studies.sweep.runner`` as a whole: table schemas, the grid,
reproducibility, timing, metadata, the theory tables, and one named test per kind of bad input.

The numbers inside the cells are checked against a plain reference in ``test_engine.py``.
"""

from __future__ import annotations

import datetime as dt
import importlib
import itertools
import json
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
import torch
from helpers import count_parses

import initsuite
from initsuite.core.errors import InitsuiteError
from initsuite.results import columns as C
from initsuite.studies.sweep.config import SweepConfig

sweep_module = importlib.import_module("initsuite.studies.sweep.runner")
mlp_engine = importlib.import_module("initsuite.engine.mlp")

# The schemas, as the project's spec declares them (a change here is a change of file format).
CELLS_SCHEMA = {
    "arch": "string", "scheme": "string", "activation": "string", "depth": "int64",
    "width": "int64", "batch": "int64", "seed": "int64", "device": "string",
    "dtype": "string", "bias": "bool", "input_std": "float64", "divergence_layer": "Int64",
    "divergence_kind": "string", "final_std": "float64", "growth_per_layer": "float64",
    "error": "string", "theory_final_std": "float64", "theory_divergence_layer": "Int64",
    "theory_divergence_kind": "string", "theory_growth_per_layer": "float64",
    "theory_chi1": "float64", "jac_sv2_mean": "float64", "jac_sv2_var": "float64",
    "jac_sv_max": "float64", "jac_sv_min": "float64", "jac_condition": "float64",
    "input_grad_std": "float64", "theory_input_grad_std": "float64",
    "weight_grad_ratio": "float64", "grad_divergence_layer": "Int64",
    "grad_divergence_kind": "string", "cell_key": "string",
}  # fmt: skip
LAYERS_SCHEMA = {
    "arch": "string", "scheme": "string", "activation": "string", "depth": "int64",
    "width": "int64", "batch": "int64", "seed": "int64", "device": "string",
    "dtype": "string", "layer": "int64", "std": "float64", "mean": "float64",
    "theory_std": "float64", "cosine": "float64", "theory_cosine": "float64",
    "grad_std": "float64", "weight_grad_norm": "float64", "theory_grad_std": "float64",
    "theory_weight_grad_norm": "float64",
}  # fmt: skip
TIMING_SCHEMA = {
    "scheme": "string", "width": "int64", "device": "string", "dtype": "string",
    "init_ms": "float64", "init_ms_iqr": "float64", "forward_ms": "float64",
    "forward_ms_iqr": "float64", "repeats": "int64",
}  # fmt: skip

GRID: dict[str, Any] = dict(
    schemes=["kaiming_normal", "normal:std=3.0"],  # ReLU after normal:std=3 overflows float16
    activations=["tanh", "relu"],
    depths=[2, 6],
    widths=[8, 24],
    seeds=2,
    dtypes=["float32", "float16"],
)


@pytest.fixture(scope="module")
def result() -> initsuite.SweepResult:
    return initsuite.sweep(**GRID, timing_repeats=2)


def _assert_schema(df: pd.DataFrame, schema: dict[str, str]) -> None:
    assert list(df.columns) == list(schema)
    for col, dtype in schema.items():
        assert df[col].dtype == pd.api.types.pandas_dtype(dtype), (col, df[col].dtype)


# -- schemas and the grid ----------------------------------------------------------------------


def test_declared_columns_are_the_spec() -> None:
    assert tuple(CELLS_SCHEMA) == initsuite.results.columns.CELLS
    assert tuple(LAYERS_SCHEMA) == initsuite.results.columns.LAYERS
    assert tuple(TIMING_SCHEMA) == initsuite.results.columns.TIMING
    declared = {
        name: dtype
        for cols in (
            initsuite.results.columns.CELLS,
            initsuite.results.columns.LAYERS,
            initsuite.results.columns.TIMING,
        )
        for name, dtype, _ in initsuite.results.columns.describe(cols)
    }
    assert declared == {**CELLS_SCHEMA, **LAYERS_SCHEMA, **TIMING_SCHEMA}


def test_table_schemas(result: initsuite.SweepResult) -> None:
    _assert_schema(result.cells, CELLS_SCHEMA)
    _assert_schema(result.layers, LAYERS_SCHEMA)
    _assert_schema(result.timing, TIMING_SCHEMA)


def test_empty_tables_keep_their_schema() -> None:
    res = initsuite.sweep("normal", "relu", 1, 4, timing=False)
    assert len(res.timing) == 0
    _assert_schema(res.timing, TIMING_SCHEMA)


def test_one_cell_per_grid_point(result: initsuite.SweepResult) -> None:
    cells = result.cells
    expected = set(
        itertools.product(
            GRID["schemes"], GRID["activations"], GRID["depths"], GRID["widths"], [0, 1],
            ["cpu"], GRID["dtypes"],
        )
    )  # fmt: skip
    keys = ["scheme", "activation", "depth", "width", "seed", "device", "dtype"]
    got = [tuple(r) for r in cells[keys].itertuples(index=False)]
    assert len(got) == 2 * 2 * 2 * 2 * 2 * 1 * 2 == len(expected)
    assert set(got) == expected
    assert (cells["arch"] == "mlp").all() and (cells["batch"] == 16).all()
    assert (~cells["bias"]).all() and cells["error"].isna().all()
    assert result.meta["cells"] == len(cells)


def test_layer_rows_per_cell(result: initsuite.SweepResult) -> None:
    keys = list(initsuite.results.columns.CELL_KEYS)
    layers = {k: sorted(g["layer"]) for k, g in result.layers.groupby(keys)}
    assert len(layers) == len(result.cells)
    cut_short = 0
    for cell in result.cells.to_dict("records"):
        div = cell["divergence_layer"]
        expected = cell["depth"] if pd.isna(div) else min(cell["depth"], div)
        cut_short += expected < cell["depth"]
        assert layers[tuple(cell[k] for k in keys)] == list(range(1, expected + 1)), cell
    assert cut_short > 0  # some cells stop early (float16 overflow), so both cases ran


def test_same_seed_same_tables(result: initsuite.SweepResult) -> None:
    again = initsuite.sweep(**GRID, timing_repeats=2)
    pd.testing.assert_frame_equal(again.cells, result.cells, check_exact=True)
    pd.testing.assert_frame_equal(again.layers, result.layers, check_exact=True)
    key = list(initsuite.results.columns.TIMING_KEYS)
    pd.testing.assert_frame_equal(again.timing[key], result.timing[key])


def test_different_seeds_differ() -> None:
    kw = dict(schemes="kaiming_normal", activations="tanh", depths=3, widths=16, timing=False)
    a = initsuite.sweep(seeds=[0], **kw)
    b = initsuite.sweep(seeds=[1], **kw)
    assert a.cells["input_std"][0] != b.cells["input_std"][0]
    assert (a.layers["std"].to_numpy() != b.layers["std"].to_numpy()).all()


def test_single_values_are_accepted_for_lists() -> None:
    single = initsuite.sweep(
        "normal", "relu", 3, 8, seeds=[4], devices="cpu", dtypes="float64", timing=False
    )
    lists = initsuite.sweep(
        ["normal"], ["relu"], [3], [8], seeds=[4], devices=["cpu"], dtypes=["float64"],
        timing=False,
    )  # fmt: skip
    pd.testing.assert_frame_equal(single.cells, lists.cells)
    pd.testing.assert_frame_equal(single.layers, lists.layers)
    assert single.meta["config"] == lists.meta["config"]
    assert single.meta["config"]["dtypes"] == ["float64"]


def test_seed_count_means_seeds_from_zero() -> None:
    res = initsuite.sweep("normal", "relu", 1, 4, seeds=3, timing=False)
    assert res.cells["seed"].tolist() == [0, 1, 2]
    assert res.meta["config"]["seeds"] == [0, 1, 2]
    explicit = initsuite.sweep("normal", "relu", 1, 4, seeds=[0, 1, 2], timing=False)
    pd.testing.assert_frame_equal(res.cells, explicit.cells)


def test_explicit_seed_list() -> None:
    res = initsuite.sweep("normal", "relu", 1, 4, seeds=[9, 4], timing=False)
    assert sorted(res.cells["seed"]) == [4, 9]
    assert res.meta["config"]["seeds"] == [9, 4]
    # A cell's numbers depend on its own seed only, not on the others in the list.
    alone = initsuite.sweep("normal", "relu", 1, 4, seeds=[4], timing=False)
    four = res.cells[res.cells.seed == 4].reset_index(drop=True)
    pd.testing.assert_frame_equal(four, alone.cells)


# -- timing and metadata -----------------------------------------------------------------------


def test_timing_rows(result: initsuite.SweepResult) -> None:
    t = result.timing
    keys = list(initsuite.results.columns.TIMING_KEYS)
    expected = set(itertools.product(GRID["schemes"], GRID["widths"], ["cpu"], GRID["dtypes"]))
    assert len(t) == len(expected)
    assert set(map(tuple, t[keys].itertuples(index=False))) == expected
    # Only signs: magnitudes depend on the machine and its load.
    assert (t["init_ms"] > 0).all() and (t["forward_ms"] > 0).all()
    assert (t["init_ms_iqr"] >= 0).all() and (t["forward_ms_iqr"] >= 0).all()
    assert (t["repeats"] == 2).all()


def test_meta_has_config_and_environment(result: initsuite.SweepResult) -> None:
    meta = result.meta
    json.dumps(meta)  # JSON-able as it is
    cfg = meta["config"]
    assert cfg["schemes"] == GRID["schemes"] and cfg["activations"] == GRID["activations"]
    assert cfg["depths"] == GRID["depths"] and cfg["widths"] == GRID["widths"]
    assert cfg["seeds"] == [0, 1] and cfg["dtypes"] == GRID["dtypes"]
    assert cfg["devices"] == ["cpu"] and cfg["batch"] == 16 and cfg["archs"] == ["mlp"]
    assert cfg["bias"] is None and cfg["timing_repeats"] == 2
    env = meta["environment"]
    assert env["torch"] == torch.__version__
    assert env["initsuite"] == initsuite.__version__
    assert "git_commit" in env  # None outside a git checkout with commits
    assert env["argv"] == list(sys.argv)
    when = dt.datetime.fromisoformat(env["utc_time"])
    assert when.utcoffset() == dt.timedelta(0)
    assert abs(dt.datetime.now(dt.timezone.utc) - when) < dt.timedelta(hours=1)
    assert meta["sweep_seconds"] >= 0 and meta["timing_seconds"] >= 0


# -- bad input: one named test each ------------------------------------------------------------


@pytest.fixture
def no_compute(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Bad input must fail before any cell runs."""

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cell ran although the input was bad")

    monkeypatch.setattr(mlp_engine, "run_stream", fail)
    monkeypatch.setattr(sweep_module, "time_layer", fail)
    yield


def _bad(**overrides: Any) -> str:
    kwargs: dict[str, Any] = dict(
        schemes="normal", activations="relu", depths=2, widths=8, timing=False
    )
    kwargs.update(overrides)
    with pytest.raises(InitsuiteError) as info:
        initsuite.sweep(**kwargs)
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    assert "\n" not in msg and msg.strip() == msg and msg
    assert info.value.__cause__ is None  # one line, no chain
    return msg


def test_unknown_scheme(no_compute: None) -> None:
    msg = _bad(schemes=["normal", "kaimng_normal"])
    assert "'kaimng_normal'" in msg and "did you mean 'kaiming_normal'" in msg


def test_unknown_activation(no_compute: None) -> None:
    msg = _bad(activations="tahn")
    assert "'tahn'" in msg and "did you mean 'tanh'" in msg


def test_unknown_dtype(no_compute: None) -> None:
    msg = _bad(dtypes="float8")
    assert "'float8'" in msg
    for name in ("float64", "float32", "bfloat16", "float16"):
        assert name in msg


def test_dtype_alias_fp16_accepted() -> None:
    res = initsuite.sweep("normal", "relu", 1, 4, dtypes="fp16", timing=False)
    assert res.cells["dtype"].tolist() == ["float16"]
    assert res.meta["config"]["dtypes"] == ["float16"]


def test_unknown_device(no_compute: None) -> None:
    msg = _bad(devices="gpu")
    assert "'gpu'" in msg and "cuda" in msg and "cpu" in msg


@pytest.mark.skipif(torch.cuda.device_count() > 7, reason="this machine has a cuda:7")
def test_unavailable_device(no_compute: None) -> None:
    msg = _bad(devices=["cpu", "cuda:7"])
    assert "'cuda:7'" in msg and "not available" in msg


def test_depth_zero(no_compute: None) -> None:
    msg = _bad(depths=[3, 0])
    assert "depths" in msg and "0" in msg


def test_negative_width(no_compute: None) -> None:
    msg = _bad(widths=-1)
    assert "widths" in msg and "-1" in msg


def test_batch_zero(no_compute: None) -> None:
    msg = _bad(batch=0)
    assert "batch" in msg and "0" in msg


def test_seeds_zero(no_compute: None) -> None:
    msg = _bad(seeds=0)
    assert "seeds" in msg and "0" in msg


def test_bad_scheme_parameter_value(no_compute: None) -> None:
    msg = _bad(schemes="xavier_uniform:gain=banana")
    assert "gain" in msg and "banana" in msg and "auto" in msg


def test_unknown_scheme_parameter(no_compute: None) -> None:
    msg = _bad(schemes="xavier_uniform:gian=1")
    assert "'gian'" in msg and "did you mean 'gain'" in msg


def test_conv_only_scheme_in_mlp_sweep(no_compute: None) -> None:
    msg = _bad(schemes=["normal", "dirac"])
    assert "'dirac'" in msg and "mlp" in msg and "rank" in msg


def test_gain_auto_is_fine_in_a_sweep() -> None:
    cfg = SweepConfig.build("xavier_uniform:gain=auto", ["tanh", "relu"], 2, 8, timing=False)
    assert cfg.schemes == ("xavier_uniform:gain=auto",)
    res = initsuite.sweep("xavier_uniform:gain=auto", ["tanh", "relu"], 2, 8, timing=False)
    assert res.cells["error"].isna().all() and len(res.cells) == 2


def test_vanish_at_not_below_explode_at(no_compute: None) -> None:
    msg = _bad(explode_at=2.0, vanish_at=2.0)
    assert "vanish_at" in msg and "explode_at" in msg
    _bad(explode_at=2.0, vanish_at=3.0)


# -- the theory tables, stored once from the configuration ------------------------------------


def test_the_theory_tables_hold_what_the_report_draws(tmp_path) -> None:
    """Per (arch, scheme, activation, depth, width): whether mean-field theory applies
    (centred random schemes in an MLP) and σ_w², σ_b² there; the phase points and grid are
    theory's own numbers, bit for bit; stored and in-memory sweeps hold the same tables."""
    from initsuite.theory import phase

    kw: dict[str, Any] = dict(activations=["relu", "tanh"], depths=[2, 5], widths=[8, 16],
                              archs=["mlp", "resmlp:scale=1"], bias="torch_default",
                              timing=False)  # fmt: skip
    schemes = ["kaiming_normal", "uniform", "eye"]
    res = initsuite.sweep(schemes, **kw)
    th = res.theory
    assert len(th) == 2 * 3 * 2 * 2 * 2 and not th.duplicated(list(C.THEORY_KEYS)).any()
    applies = th[th["mean_field"]]
    # uniform is U(0, 1) (not centred), eye deterministic: no mean field (MLP or resmlp)
    assert set(applies["scheme"]) == {"kaiming_normal"}
    assert set(applies["arch"]) == {"mlp", "resmlp:branch=2,scale=1"}
    # He: gain √2, Var W = 2 / fan_in (to rounding); the bias U(±1/√fan_in)
    assert applies["sigma_w2"].tolist() == pytest.approx([2.0] * len(applies), rel=1e-15)
    assert applies["sigma_b2"].tolist() == pytest.approx((1 / (3 * applies["width"])).tolist())
    assert th.loc[~th["mean_field"], ["sigma_w2", "sigma_b2"]].isna().all().all()
    # every layer has a bias, so the log std is no random walk: no spread is predicted
    assert th["predicted_log_std_sd"].isna().all()
    # the theory columns of the cells are there exactly where the table says theory applies
    cells = res.cells.merge(th, on=["arch", "scheme", "activation", "depth", "width"])
    assert (cells["theory_final_std"].notna() == cells["mean_field"]).all()
    for act in ("relu", "tanh"):
        points = res.phase_points[res.phase_points["activation"] == act]
        live = phase.scheme_points(act, schemes, 16, "torch_default")
        assert points["scheme"].tolist() == live["scheme"].tolist() == ["kaiming_normal"]
        assert (points["width"] == 16).all()
        for c in ("sigma_w2", "sigma_b2", "q_star", "chi1", "depth_scale"):
            assert points[c].tolist() == live[c].tolist(), c
        grid = res.phase_grid[res.phase_grid["activation"] == act].reset_index(drop=True)
        want = phase.phase_diagram(act)
        for c in ("sigma_w2", "sigma_b2", "q_star", "chi1", "depth_scale"):
            assert grid[c].tolist() == want[c].tolist(), c
    stored = initsuite.sweep(schemes, **kw, out_dir=tmp_path / "run")
    for name in ("theory", "phase_points", "phase_grid"):
        pd.testing.assert_frame_equal(getattr(stored, name), getattr(res, name), check_exact=True)
        _assert_schema(
            getattr(res, name), {c: t for c, t, _ in C.describe(getattr(C, name.upper()))}
        )


def test_a_sweep_without_an_mlp_has_no_phase_tables() -> None:
    res = initsuite.sweep("kaiming_normal", "relu", 2, 8, archs="resmlp:scale=1", timing=False)
    assert res.phase_points.empty and res.phase_grid.empty
    assert len(res.theory) == 1 and res.theory["mean_field"].all()  # resmlp's own mean field


def test_a_scheme_with_no_finite_variance_is_left_off_the_phase_diagram() -> None:
    """N(0, 1e200): σ_w² overflows float64, so it has no phase (the report used to fail)."""
    res = initsuite.sweep(["normal:std=1e200", "kaiming_normal"], "tanh", 2, 8, timing=False)
    assert res.phase_points["scheme"].tolist() == ["kaiming_normal"]


def test_a_sweep_resolves_each_spec_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Specs are parsed at the boundary, once each: below it the sweep (cells, theory,
    budget, timing, phase points) passes Scheme, Activation and Arch objects."""
    parsed = count_parses(monkeypatch)
    initsuite.sweep(schemes=["xavier_uniform:gain=auto", "kaiming_normal"],
                    activations=["tanh", "relu"], depths=[2, 3], widths=[4, 8], seeds=2,
                    archs=["mlp", "conv:kernel=3,image=4"], timing_repeats=1,
                    progress=False)  # fmt: skip
    assert parsed == Counter({
        ("scheme", "xavier_uniform:gain=auto"): 1, ("scheme", "kaiming_normal"): 1,
        ("activation", "tanh"): 1, ("activation", "relu"): 1,
        ("arch", "mlp"): 1, ("arch", "conv:kernel=3,image=4"): 1,
    })  # fmt: skip

"""Theory against measurement from stored tables (initsuite.results.agreement): the spread of
log final std over seeds beside its finite-width prediction (initsuite.theory.spread), and the
measured c-map depth."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

import initsuite
from initsuite.results.agreement import correlation_depth, spread
from initsuite.theory.spread import GAUSSIAN, predicted_log_std_sd


def test_relu_spread_over_seeds_matches_hanin_rolnick() -> None:
    """He-initialised ReLU, depth 100, width 256, 16 seeds: sd of log final std ≈
    sqrt(5·100/(4·256)) = 0.70 for one input (Hanin & Rolnick 2018), a little less for the
    sweep's batch of 16 (its inputs correlate within a few ReLU layers). An sd from 16 draws
    has relative error ≈ 1/sqrt(2·15) = 18%; 3 of those: ±55%."""
    res = initsuite.sweep("kaiming_normal", "relu", 100, 256, seeds=16, timing=False)
    row = spread(res.cells, res.theory).iloc[0]
    assert row["seeds"] == 16
    assert row["predicted_log_std_sd"] == predicted_log_std_sd("relu", 100, 256, GAUSSIAN, 16)
    assert 0.9 < row["predicted_log_std_sd"] / math.sqrt(5 * 100 / (4 * 256)) < 1
    assert 0.45 < row["log_std_sd"] / row["predicted_log_std_sd"] < 1.55
    assert not row["disagree"]
    # the final std varies several-fold between seeds: one seed's number means little
    assert res.cells["final_std"].max() / res.cells["final_std"].min() > 3


def test_spread_flags_a_wrong_prediction() -> None:
    res = initsuite.sweep("kaiming_normal", ["relu", "tanh"], 30, 128, seeds=6, timing=False)
    cells = res.cells.copy()
    assert not spread(cells, res.theory)["disagree"].any()
    cells["theory_final_std"] *= 3  # a σ_w² off by 9×: far outside any finite-width spread
    assert spread(cells, res.theory)["disagree"].all()


def test_correlation_depth_is_measured_from_the_c_map() -> None:
    """Chaotic tanh (5/3) pulls the pair's cosine from 0.5 towards c* = 0 within tens of
    layers, at the rate of the correlation map's slope there: ξ_c = −1/ln χ_c ≈ 12.1, not
    ξ₁ = 1/ln χ₁ ≈ 5.25 (Schoenholz et al. 2017). One pair per seed carries ±1/√512 ≈ 0.04
    of noise per layer on a gap of 0.5 that shrinks by e every ~12 layers: two seeds measure
    8-19 layers (the mean-field c-map itself takes 13): checked within a factor 2 of ξ_c."""
    from initsuite.theory.phase import phase_diagram

    res = initsuite.sweep("xavier_uniform:gain=auto", ["tanh", "linear"], 60, 512, seeds=2,
                          timing=False)  # fmt: skip
    d = correlation_depth(res.layers).set_index("activation")
    point = phase_diagram("tanh", [25 / 9], [0.0]).iloc[0]
    measured = d.loc["tanh", "measured_depth"]
    assert point["xi_c"] / 2 <= measured <= point["xi_c"] * 2
    assert abs(d.loc["tanh", "c_star"]) < 0.05
    assert np.isnan(d.loc["linear", "measured_depth"])  # linear nets keep the cosine: no gap
    none = initsuite.sweep("kaiming_normal", "relu", 5, 32, pair_cosine=None, timing=False)
    assert correlation_depth(none.layers).empty


def test_spread_reads_the_prediction_from_the_theory_table() -> None:
    """The prediction comes from the stored ``theory`` table, not from theory at report time:
    one row per (scheme, activation, depth, width), NaN where the table has none."""
    res = initsuite.sweep(["kaiming_normal", "xavier_normal"], ["relu", "tanh"], [4, 12],
                          [16, 32], seeds=3, timing=False)  # fmt: skip
    table = spread(res.cells, res.theory)
    for row in table.itertuples(index=False):
        want = predicted_log_std_sd(
            row.activation, int(row.depth), int(row.width), GAUSSIAN, 16
        )  # both schemes draw Gaussian weights
        assert (math.isnan(want) and math.isnan(row.predicted_log_std_sd)) or (
            row.predicted_log_std_sd == want
        )
    assert table.loc[table["activation"] == "relu", "predicted_log_std_sd"].notna().all()
    assert table.loc[table["activation"] == "tanh", "predicted_log_std_sd"].isna().all()
    changed = res.theory.assign(predicted_log_std_sd=res.theory["predicted_log_std_sd"] * 2)
    doubled = spread(res.cells, changed)
    pd.testing.assert_series_equal(doubled["predicted_log_std_sd"],
                                   table["predicted_log_std_sd"] * 2)  # fmt: skip
    none = spread(res.cells, res.theory.iloc[0:0])
    assert none["predicted_log_std_sd"].isna().all()
    pd.testing.assert_series_equal(none["log_std_sd"], table["log_std_sd"])

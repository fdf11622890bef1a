"""The tutorial's numbers, reproduced over seeds, with tolerances from theory or seed spread."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

import initsuite
from initsuite.core.errors import InitsuiteError
from initsuite.results import columns as C
from initsuite.results.tutorial import TutorialResult
from initsuite.studies.tutorial import EXPERIMENTS, tutorial_study


@pytest.fixture(scope="module")
def result() -> TutorialResult:
    # Four seeds: enough for a spread (sd), small enough to keep the suite fast.
    return tutorial_study(seeds=4, progress=False)


@pytest.fixture(scope="module")
def claims(result: TutorialResult) -> pd.DataFrame:
    return result.claims.set_index("experiment")


def test_every_experiment_is_reported_and_agrees(claims) -> None:
    assert list(claims.index) == [e.name for e in EXPERIMENTS]
    bad = claims[~claims["agree"]]
    assert bad.empty, bad[["expected", "measured_mean", "measured_sd", "tolerance"]]


def test_overflow_layers_match_theory(claims) -> None:
    # std grows ×16 per layer (√256); the largest of batch×width = 4096 N(0, s²) values is
    # 3-5 s. float32 and bfloat16 (max ≈ 3.4e38 = 2^128) first hold inf at 16^L·4 > 2^128,
    # i.e. L = 32; float16 (max 65504) at 16^L > 65504/4, i.e. L = 4.
    for name, dtype_max in [("N(0,1), linear", 2.0**128), ("N(0,1), linear, bfloat16", 2.0**128),
                            ("N(0,1), linear, float16", 65504.0)]:  # fmt: skip
        expected = math.ceil(math.log(dtype_max / 4, 16))
        row = claims.loc[name]
        assert row["measured_min"] == row["measured_max"] == expected


def test_xavier_tanh_std_near_065(claims) -> None:
    # Mean-field fixed point for σ_w² = (5/3)²: post-activation std 0.6514. The spread over
    # seeds at width 256 is about 0.006, so 4 seeds put the mean within ±0.02 (3 sd).
    for name in (
        "manual Xavier uniform, tanh gain",
        "xavier_uniform_, gain=calculate_gain('tanh')",
    ):
        assert abs(claims.loc[name, "measured_mean"] - 0.6514) < 0.02


def test_relu_xavier_halves_variance_and_kaiming_keeps_it(claims) -> None:
    # Per-layer std ratio: 1/√2 for Xavier (variance halves); ≈1 for Kaiming. At width 256
    # the log-std random walk moves the 100-layer geometric mean by < 0.02 (sd ≈ 0.005-0.008).
    assert abs(claims.loc["Xavier (gain 1), ReLU", "measured_mean"] - 1 / math.sqrt(2)) < 0.02
    assert abs(claims.loc["Kaiming (He), ReLU", "measured_mean"] - 1.0) < 0.03


def test_empirical_tanh_gain(claims) -> None:
    # 1/sqrt(E[tanh(z)²]) = 1.5925; 10^6 samples per seed give sd ≈ 6e-4.
    assert abs(claims.loc["empirical tanh gain", "measured_mean"] - 1.5925) < 0.003
    assert claims.loc["empirical tanh gain", "measured_mean"] < 5 / 3 - 0.05


def test_tutorial_layers_table(result: TutorialResult) -> None:
    lay = result.layers
    assert tuple(lay.columns) == C.TUTORIAL_LAYERS
    assert tuple(result.claims.columns) == C.TUTORIAL
    # the overflowing net stops at its divergence layer
    n01 = lay[(lay["experiment"] == "N(0,1), linear") & (lay["seed"] == 0)]
    assert n01["layer"].max() == 32
    assert set(C.LAYERS) >= {"layer", "std", "mean"}


@pytest.mark.parametrize("seeds", [1, [7], [3, 3]])
def test_seeds_must_allow_a_spread(seeds: object) -> None:
    with pytest.raises(InitsuiteError, match="seeds must be at least 2 seeds"):
        tutorial_study(seeds=seeds)  # type: ignore[arg-type]


def test_save_and_load_round_trip(result: TutorialResult, tmp_path: Path) -> None:
    back = TutorialResult.load(result.save(tmp_path / "tut"))
    pd.testing.assert_frame_equal(back.claims, result.claims, check_exact=True)
    pd.testing.assert_frame_equal(back.layers, result.layers, check_exact=True)
    assert back.meta["kind"] == "tutorial" and back.meta["config"]["bias"] is None
    assert back.meta["config"]["seeds"] == [0, 1, 2, 3]


def test_a_directory_written_with_plain_string_columns_still_loads(
    result: TutorialResult, tmp_path: Path
) -> None:
    """Tutorial directories written before the column schema stored strings as objects."""
    out = result.save(tmp_path / "old")
    pd.read_parquet(out / "tutorial.parquet").astype(object).to_parquet(out / "tutorial.parquet")
    pd.testing.assert_frame_equal(TutorialResult.load(out).claims, result.claims)


def test_loading_refuses_a_damaged_table_or_another_kind(
    result: TutorialResult, tmp_path: Path
) -> None:
    out = result.save(tmp_path / "bad")
    claims = pd.read_parquet(out / "tutorial.parquet")
    claims.assign(agree=["yes"] * len(claims)).to_parquet(out / "tutorial.parquet")
    with pytest.raises(InitsuiteError, match=r"column 'agree' of .*tutorial\.parquet.* 'yes'"):
        TutorialResult.load(out)
    sweep = initsuite.sweep("normal", "relu", 2, 4, timing=False).save(tmp_path / "sweep")
    with pytest.raises(InitsuiteError, match=r"holds a sweep \(initsuite sweep\), not a "
                       r"tutorial reproduction \(initsuite reproduce tutorial\)"):  # fmt: skip
        TutorialResult.load(sweep)

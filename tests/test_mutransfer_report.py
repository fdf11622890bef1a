"""The μTransfer report on run tables made here: losses whose best learning rate is known,
moving one octave per doubling of width under sp and staying under mup."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from initsuite.core.errors import InitsuiteError
from initsuite.report.mutransfer import best_lrs, loss_vs_lr, lr_shifts, mutransfer_verdict


def _runs(seeds: int = 2, diverge_above: float = -3.0) -> pd.DataFrame:
    """Loss (log2 lr − best)² + 0.1, best = −6 − log2(width / 64) under sp and −6 under mup;
    seed 1 of width 256 under mup prefers one octave more; above 2^-3 every run diverges."""
    rows = []
    for p in ("sp", "mup"):
        for width in (64, 128, 256, 512):
            best = -6 - math.log2(width / 64) if p == "sp" else -6
            for k in range(-12, -1):
                for seed in range(seeds):
                    shift = 1 if (p, width, seed) == ("mup", 256, 1) else 0
                    bad = k > diverge_above
                    loss = math.nan if bad else (k - best - shift) ** 2 + 0.1
                    rows.append(("mlp", p, "adam", width, 3, 2.0**k, seed, 100, bad, loss, loss))
    cols = ["model", "parametrization", "optimizer", "width", "depth", "lr", "seed", "steps",
            "diverged", "final_train_loss", "final_test_loss"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def test_the_best_learning_rate_of_each_width_and_its_seed_spread() -> None:
    best = best_lrs(_runs())
    sp = best[best["parametrization"] == "sp"]
    assert sp["best_log2_lr"].tolist() == [-6, -7, -8, -9]
    assert sp["value"].tolist() == [64, 128, 256, 512] and set(sp["axis"]) == {"width"}
    mup = best[best["parametrization"] == "mup"].set_index("value")
    assert mup["best_log2_lr"].tolist() == [-6, -6, -6, -6]  # seed 1's shift: mean still -6
    assert (mup.loc[256, "seed_low_log2_lr"], mup.loc[256, "seed_high_log2_lr"]) == (-6, -5)
    assert mup.loc[64, "best_loss"] == pytest.approx(0.1)


def test_shifts_and_the_verdict_say_how_far_the_best_moves() -> None:
    shifts = lr_shifts(best_lrs(_runs())).set_index("parametrization")
    assert shifts.loc["sp", "octaves"] == -3 and shifts.loc["sp", "span"] == 3
    assert shifts.loc["mup", "octaves"] == 0 and shifts.loc["mup", "span"] == 0
    lines = mutransfer_verdict(best_lrs(_runs()))
    assert lines == [
        "**sp** (mlp, adam, depth 3): the best learning rate moves -3 octaves from width 64 "
        "to 512 (2^-6 → 2^-9).",
        "**mup** (mlp, adam, depth 3): the best learning rate stays put from width 64 to 512 "
        "(2^-6 → 2^-6).",
    ]


def test_diverged_runs_are_never_the_best_and_depth_is_an_axis() -> None:
    runs = _runs(seeds=1, diverge_above=-8.0)  # sp's best at width 64 and 128 diverge now
    best = best_lrs(runs)
    assert best[best["parametrization"] == "sp"]["best_log2_lr"].tolist() == [-8, -8, -8, -9]
    deep = runs.assign(depth=runs["width"] // 32, width=64)
    by_depth = best_lrs(deep)
    assert set(by_depth["axis"]) == {"depth"} and by_depth["value"].tolist()[:4] == [2, 4, 8, 16]
    with pytest.raises(InitsuiteError, match="axis must be width or depth, got 'lr'"):
        best_lrs(runs, axis="lr")
    with pytest.raises(InitsuiteError, match=r"runs needs columns \['final_train_loss'\]"):
        best_lrs(runs.drop(columns="final_train_loss"))


def test_the_figure_draws_a_line_per_width_in_a_panel_per_parametrization() -> None:
    fig = loss_vs_lr(_runs())
    axes = fig.get_axes()
    assert [a.get_title(loc="left") for a in axes] == ["sp", "mup"]
    lines = [ln for ln in axes[0].lines if ln.get_linestyle() != "None"]
    assert len(lines) == 4  # one per width, the best's ring apart
    x = np.asarray(lines[0].get_xdata())
    assert x.tolist() == list(range(-12, -2))  # 2^-2 and above diverged: left out


def test_a_learning_rate_where_one_seed_diverged_is_never_the_best() -> None:
    """The mean over seeds counts a diverged seed as +inf (pandas' mean would skip its NaN)."""
    runs = _runs()
    hit = (runs["parametrization"] == "sp") & (runs["width"] == 64) & (runs["lr"] == 2.0**-6)
    runs.loc[hit & (runs["seed"] == 1), ["diverged", "final_train_loss"]] = [True, math.nan]
    best = best_lrs(runs).set_index(["parametrization", "value"])
    assert best.loc[("sp", 64), "best_log2_lr"] in (-7, -5)
    low, high = best.loc[("sp", 64), ["seed_low_log2_lr", "seed_high_log2_lr"]]
    assert -6 in (low, high) and low != high  # seed 0 alone still prefers it

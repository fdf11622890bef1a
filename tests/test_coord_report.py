"""The coordinate check's measured slopes and figure, on coords tables made here whose
exponents are known: power laws in width and depth, with and without noise across seeds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from initsuite.core.errors import InitsuiteError
from initsuite.report.coord_figures import coord_panels
from initsuite.report.coord_tables import (
    BAND,
    coord_slopes,
    coord_verdict,
    disagreements,
    unstable,
)

# (parametrization, role) -> exponent of rms in width; delta_rms = rms / 10 after step 0
EXPONENTS = {("sp", "hidden"): 0.5, ("sp", "output"): 1.0, ("mup", "hidden"): 0.0,
             ("mup", "output"): 0.0}  # fmt: skip
MODULES = (("fc1", "hidden", 2.0), ("fc2", "hidden", 5.0), ("out", "output", 0.3))


def _coords(noise: float = 0.0, seeds: int = 2, depth_exponent: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for (p, role), e in EXPONENTS.items():
        for w in (64, 128, 256, 512):
            for depth in (2, 8):
                for seed in range(seeds):
                    for step in (0, 1, 2):
                        for module, r, scale in MODULES:
                            if r != role:
                                continue
                            rms = scale * w**e * depth**depth_exponent
                            rms *= math.exp(rng.normal(0, noise)) if noise else 1.0
                            rows.append({
                                "parametrization": p, "model": "mlp", "optimizer": "adam",
                                "width": w, "depth": depth, "seed": seed, "step": step,
                                "module": module, "role": role, "l1": 0.8 * rms, "rms": rms,
                                "delta_rms": 0.0 if step == 0 else rms / 10, "loss": 1.0,
                            })  # fmt: skip
    return pd.DataFrame(rows)


def test_slopes_recover_the_exponents_of_power_laws() -> None:
    """Noise-free power laws: each role's slope is its exponent (the geometric mean over
    modules of different scales keeps it), delta_rms has no step 0, every seed agrees."""
    s = coord_slopes(_coords())
    assert set(s["at"]) == {2, 8} and set(s["points"]) == {4}
    for (p, role), e in EXPONENTS.items():
        rows = s[(s["parametrization"] == p) & (s["role"] == role)]
        np.testing.assert_allclose(rows["slope"], e, atol=1e-12)
        np.testing.assert_allclose(rows["slope_sd"], 0, atol=1e-12)
        assert set(rows[rows["quantity"] == "delta_rms"]["step"]) == {1, 2}
        assert set(rows[rows["quantity"] == "rms"]["step"]) == {0, 1, 2}
        assert rows["stable"].tolist() == [e == 0] * len(rows)
    assert set(unstable(s)["parametrization"]) == {"sp"}
    assert unstable(s)["slope"].iloc[0] == pytest.approx(1.0)  # steepest first


def test_slopes_against_depth_and_the_seed_interval() -> None:
    """Against depth (two depths): the depth exponent; with noise the interval is the mean ± 2
    standard errors of the seeds' slopes, and a flat coordinate whose interval passes BAND is
    not called stable."""
    s = coord_slopes(_coords(depth_exponent=0.25), axis="depth")
    np.testing.assert_allclose(s["slope"], 0.25, atol=1e-12)
    assert set(s["at"]) == {64, 128, 256, 512} and not s["stable"].any()
    noisy = coord_slopes(_coords(noise=0.3, seeds=3))
    row = noisy.iloc[0]
    half = 2 * row["slope_sd"] / math.sqrt(3)
    assert row["slope_low"] == pytest.approx(row["slope"] - half)
    assert row["slope_high"] == pytest.approx(row["slope"] + half)
    mup = noisy[noisy["parametrization"] == "mup"]
    wide = mup[(mup["slope_high"] > BAND) | (mup["slope_low"] < -BAND)]
    assert len(wide) > 0 and not wide["stable"].any()


def test_predictions_stand_beside_the_slopes_and_disagreements_are_flagged() -> None:
    predicted = {("sp", "adam", "hidden", "rms", "init"): 0.5,
                 ("sp", "adam", "output", "rms", "trained"): 0.0,
                 ("mup", "sgd", "hidden", "rms", "init"): 1.0}  # fmt: skip
    s = coord_slopes(_coords(), predicted=predicted)
    hit = s[(s["parametrization"] == "sp") & (s["role"] == "hidden") & (s["step"] == 0)
            & (s["quantity"] == "rms")]  # fmt: skip
    assert hit["predicted"].tolist() == [0.5, 0.5] and hit["agrees"].tolist() == [True, True]
    bad = disagreements(s)
    assert set(zip(bad["role"], bad["step"], bad["quantity"], strict=True)) == {
        ("output", 1, "rms"), ("output", 2, "rms")}  # fmt: skip
    assert s[(s["parametrization"] == "mup")]["predicted"].isna().all()  # another optimizer


def test_bad_input_is_one_line() -> None:
    with pytest.raises(InitsuiteError, match="axis must be one of width, depth, got 'height'"):
        coord_slopes(_coords(), axis="height")
    with pytest.raises(InitsuiteError, match=r"coords needs columns \['delta_rms'\]"):
        coord_slopes(_coords().drop(columns="delta_rms"))
    with pytest.raises(InitsuiteError, match="quantity must be one of l1, rms, delta_rms"):
        coord_panels(_coords(), quantity="l2")
    one = _coords()
    with pytest.raises(InitsuiteError, match="needs two widths or more"):
        coord_panels(one[one["width"] == 64])


def test_the_figure_has_a_panel_per_parametrization_and_step() -> None:
    """mup's layout: a row per parametrization, a column per step (delta_rms: no step 0), a
    line per module coloured by role, its points the geometric mean over seeds."""
    coords = _coords(noise=0.2, seeds=2)
    fig = coord_panels(coords, "l1")
    axes = fig.get_axes()
    assert [a.get_title(loc="left") for a in axes] == [f"{p}, step {t}" for p in ("sp", "mup")
                                             for t in (0, 1, 2)]  # fmt: skip
    first = axes[0]
    assert len(first.lines) == 3  # fc1, fc2 (hidden) and out (output)
    fc1 = coords[(coords["parametrization"] == "sp") & (coords["step"] == 0)
                 & (coords["module"] == "fc1") & (coords["depth"] == 8)]  # fmt: skip
    want = fc1.groupby("width")["l1"].apply(lambda v: float(np.exp(np.log(v).mean())))
    got = dict(zip(first.lines[0].get_xdata(), first.lines[0].get_ydata(), strict=True))
    assert got == pytest.approx(want.to_dict())
    delta = coord_panels(coords, "delta_rms")
    assert [a.get_title(loc="left") for a in delta.get_axes()][:2] == ["sp, step 1", "sp, step 2"]


def test_the_verdict_names_stable_roles_and_the_steepest_slope_of_the_others() -> None:
    predicted = {("sp", "adam", "output", "rms", "trained"): 0.0}
    lines = coord_verdict(coord_slopes(_coords(), predicted=predicted))
    assert lines[0] == ("**sp** (mlp, adam, depth 2): hidden grows with width (rms slope "
                        "+0.50 at step 0); output grows with width (rms slope +1.00 at step "
                        "0).")  # fmt: skip
    assert lines[2] == ("**mup** (mlp, adam, depth 2): stable in width at every step: hidden, "
                        "output.")  # fmt: skip
    assert lines[-1] == ("Disagreements with the predicted exponents: sp output rms against "
                         "width (depth 2, steps 1-2): measured +1.00, predicted +0.00; sp "
                         "output rms against width (depth 8, steps 1-2): measured +1.00, "
                         "predicted +0.00.")  # fmt: skip
    assert len(lines) == 5


def test_a_coordinate_checks_report_opens_with_its_verdict(tmp_path) -> None:
    """`initsuite report` on a coordinate check: the verdict first, measured against the
    exponents the run stored, then mup's figures and the slopes table."""
    import json

    import initsuite
    from initsuite.cli import main

    res = initsuite.coord_check("mlp", ["sp", "mup"], widths=[32, 128], steps=1, seeds=1)
    stored = {(r["parametrization"], r["role"]): r for r in res.meta["predicted"]}
    assert stored[("sp", "output")]["delta"] == 1.5 and stored[("mup", "hidden")]["delta"] == 0
    res.save(tmp_path / "cc")
    assert main(["report", str(tmp_path / "cc")]) == 0
    text = (tmp_path / "cc" / "report.md").read_text()
    heads = [line for line in text.splitlines() if line.startswith("## ")]
    assert heads == ["## Verdict", "## Figures", "## Slopes against width, at the last step",
                     "## Run"]  # fmt: skip
    verdict = text.split("## Verdict")[1].split("## Figures")[0]
    assert "- **sp** (mlp, adam, depth 3): " in verdict and "- **mup** (mlp" in verdict
    assert sorted(p.name for p in (tmp_path / "cc" / "figures").iterdir()) == [
        "coords_delta.png", "coords_l1.png"]  # fmt: skip
    assert json.loads((tmp_path / "cc" / "meta.json").read_text())["kind"] == "coordcheck"


def test_the_depth_slopes_table_shows_the_predicted_exponents(tmp_path) -> None:
    """A check over depth: the report's depth slopes carry the depth exponents the run
    stored (depth-μP's branch at L^-½, the roles that read the stream at L⁰); μP, whose
    stream grows exponentially in L, has none."""
    import initsuite
    from initsuite.report.coord_report import coordcheck_plan

    res = initsuite.coord_check("resmlp", ["depth_mup", "mup"], widths=16, depths=[2, 8],
                                steps=1, seeds=1, options={"bias": False},
                                progress=False)  # fmt: skip
    text = coordcheck_plan(res, str(tmp_path)).text
    table = text.split("## Slopes against depth, at the last step")[1].split("##")[0]
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:3]): line
            for line in table.splitlines() if line.startswith("| ")}  # fmt: skip
    cells = {k: [c.strip() for c in v.strip("|").split("|")] for k, v in rows.items()}
    assert cells[("depth_mup", "branch", "rms")][-2] == "-0.50"
    assert cells[("depth_mup", "hidden", "delta_rms")][-2] == "+0.00"
    assert cells[("mup", "hidden", "rms")][-2] == ""
    assert "in width, of a stack of bias-free residual blocks in depth" in text

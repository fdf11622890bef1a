"""The network's c-map (issue 31, item 3): the sweep's ``theory_cosine`` is the activation's
c-map composed over the layers, for a DKS tanh net with scaled orthogonal weights and
normalised inputs and for ReLU with He's init; the c-map study measures what the sweep
measures, predicts the composed map, and its report draws and tabulates both."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import initsuite
from initsuite import activations
from initsuite.core.errors import InitsuiteError, InitsuiteTypeError
from initsuite.report.cmap import cmap_table, network_cmap
from initsuite.studies.cmap import cmap_study

DKS = "dks:tanh:zeta=1.5,depth=4"
GRID = dict(pair_cosine=0.3, inputs="normalized", dtypes="float64", timing=False, progress=False)


def relu_cmap(c: float) -> float:
    """ReLU's normalised arc-cosine kernel (Cho & Saul 2009): He's σ_w² = 2 keeps q, so the
    cosine map is this alone."""
    return (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c) / math.pi


def hermite_cmap(act: activations.Activation, c: float, nodes: int = 80) -> float:
    """E[φ(u)φ(v)] for unit-variance (u, v) of correlation c, by a tensor Gauss–Hermite rule
    written here (numpy's probabilists' nodes), independent of initsuite's quadrature."""
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    u = x[:, None] + 0 * x[None, :]
    v = c * x[:, None] + math.sqrt(1 - c * c) * x[None, :]
    f = lambda t: np.asarray(act.apply(t), dtype=float)  # noqa: E731
    return float(np.sum(w[:, None] * w[None, :] * f(u) * f(v)))


def composed(fn, c: float, times: int) -> float:  # type: ignore[no-untyped-def]
    for _ in range(times):
        c = fn(c)
    return c


@pytest.fixture(scope="module")
def dks_sweep() -> initsuite.SweepResult:
    return initsuite.sweep("scaled_orthogonal", DKS, 8, 256, seeds=6, **GRID)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def relu_sweep() -> initsuite.SweepResult:
    return initsuite.sweep("kaiming_normal", "relu", 8, 256, seeds=6, **GRID)  # type: ignore[arg-type]


def test_dks_theory_cosine_is_the_composed_c_map(dks_sweep: initsuite.SweepResult) -> None:
    """With q = 1 inputs, σ_w² = 1 and Q(1) = 1, layer l's theory is C_φ̂ composed l - 1 times
    (q stays 1); 80 Hermite nodes on a smooth φ̂ are exact far below 1e-8."""
    act = activations.get(DKS)
    theory = dks_sweep.layers.groupby("layer")["theory_cosine"].first()
    expected = [composed(lambda c: hermite_cmap(act, c), 0.3, n) for n in range(8)]
    np.testing.assert_allclose(theory.to_numpy(), expected, atol=1e-8)
    assert abs(hermite_cmap(act, 1.0) - 1.0) < 1e-8  # Q(1) = 1: the cosine map is the kernel


def test_relu_he_theory_cosine_is_the_composed_arc_cosine(
    relu_sweep: initsuite.SweepResult,
) -> None:
    theory = relu_sweep.layers.groupby("layer")["theory_cosine"].first()
    expected = [composed(relu_cmap, 0.3, n) for n in range(8)]
    np.testing.assert_allclose(theory.to_numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("net", ["dks", "relu"])
def test_measured_cosine_follows_the_composed_c_map(
    net: str, dks_sweep: initsuite.SweepResult, relu_sweep: initsuite.SweepResult
) -> None:
    """Layer 1 is exact up to float64 rounding (orthogonal or Gaussian, W maps the pair's
    cosine to itself only in expectation, so only the orthogonal DKS net is exact there: a
    256-term dot product rounds to ~256·2⁻⁵³ ≈ 3e-14). Deeper, one pair's cosine moves by
    about 0.08 per seed at width 256 (measured sd over seeds at 8 layers), so the mean of 6
    seeds lies within 0.1 (three standard errors) of the theory."""
    layers = (dks_sweep if net == "dks" else relu_sweep).layers
    mean = layers.groupby("layer")[["cosine", "theory_cosine"]].mean()
    assert (mean["cosine"] - mean["theory_cosine"]).abs().max() < 0.1
    if net == "dks":
        first = layers[layers["layer"] == 1]
        np.testing.assert_allclose(first["cosine"], first["theory_cosine"], rtol=0, atol=1e-12)


# -- the c-map study ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def study() -> initsuite.CMapResult:
    nets = [(DKS, "scaled_orthogonal"), ("relu", "kaiming_normal")]
    return cmap_study(nets, depths=(2, 4), widths=(16,), seeds=2, cosines=(0.0, 0.3, 0.9))


def test_the_study_measures_what_the_sweep_measures(study: initsuite.CMapResult) -> None:
    """A net of d nonlinear layers: the study's output cosine is the sweep cell's cosine at
    layer d + 1 (same seed, batch, normalised inputs): the same weights and pair."""
    for act, scheme in [(DKS, "scaled_orthogonal"), ("relu", "kaiming_normal")]:
        res = initsuite.sweep(scheme, act, 5, 16, seeds=2, **GRID)  # type: ignore[arg-type]
        swept = res.layers[res.layers["layer"] == 5].set_index("seed")["cosine"]
        rows = study.cmap[(study.cmap["activation"] == act) & (study.cmap["depth"] == 4)
                          & (study.cmap["input_cosine"] == 0.3)].set_index("seed")  # fmt: skip
        np.testing.assert_allclose(rows["output_cosine"], swept.loc[rows.index], atol=1e-12)


def test_the_study_predicts_the_composed_map(study: initsuite.CMapResult) -> None:
    relu = study.cmap[study.cmap["activation"] == "relu"]
    expected = [composed(relu_cmap, c, d) for c, d in zip(relu["input_cosine"], relu["depth"],
                                                           strict=True)]  # fmt: skip
    np.testing.assert_allclose(relu["theory_output_cosine"], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(relu["theory_output_q"], 2.0)  # He keeps q at σ_w² = 2
    dks = study.cmap[study.cmap["activation"] == DKS]
    np.testing.assert_allclose(dks["theory_output_q"], 1.0, atol=1e-9)  # Q(1) = 1 at σ_w² = 1
    assert study.meta["kind"] == "cmap" and study.meta["shaping"][0]["depth"] == 4


def test_tat_target_is_the_network_c_map_at_zero() -> None:
    """TAT's η is the network's C(0): the study's prediction at c₀ = 0 for a depth bound from
    the grid (the spec leaves it out) is η."""
    res = cmap_study([("tat:leaky_relu:eta=0.6", "scaled_orthogonal")], depths=(6,), widths=(8,),
                     seeds=1, cosines=(0.0,))  # fmt: skip
    assert res.cmap["theory_output_cosine"].iloc[0] == pytest.approx(0.6, abs=1e-9)
    assert res.meta["shaping"][0]["depth"] == 6


def test_the_figure_draws_the_seed_means_beside_the_theory(study: initsuite.CMapResult) -> None:
    table = cmap_table(study.cmap)
    keys = ["activation", "scheme", "depth", "width", "input_cosine"]
    plain = study.cmap.groupby(keys)["output_cosine"].agg(["mean", "min", "max"]).reset_index()
    merged = table.merge(plain, on=keys)
    assert len(merged) == len(table) == 2 * 2 * 3
    np.testing.assert_allclose(merged["mean_x"], merged["mean_y"])
    np.testing.assert_allclose(merged["lo"], merged["min"])
    np.testing.assert_allclose(merged["hi"], merged["max"])
    fig = network_cmap(study.cmap)
    title = lambda ax: ax.get_title("left") or ax.get_title()  # noqa: E731
    panels = [ax for ax in fig.axes if title(ax)]
    assert sorted(title(ax) for ax in panels) == sorted(
        f"{a} · {s}" for a, s in [(DKS, "scaled_orthogonal"), ("relu", "kaiming_normal")]
    )
    # per depth one theory line, its y the table's theory
    relu = next(ax for ax in panels if title(ax).startswith("relu"))
    ys = sorted(tuple(np.round(np.asarray(line.get_ydata(), float), 12))
                for line in relu.lines if line.get_gid() == "theory")  # fmt: skip
    want = table[table["activation"] == "relu"].sort_values("input_cosine").groupby("depth")
    assert ys == sorted(tuple(np.round(g["theory"].to_numpy(), 12)) for _, g in want)


def test_the_study_saves_loads_and_reports(study: initsuite.CMapResult, tmp_path) -> None:  # type: ignore[no-untyped-def]
    study.save(tmp_path / "cmap")
    back = initsuite.CMapResult.load(tmp_path / "cmap")
    pd.testing.assert_frame_equal(back.cmap, study.cmap)
    initsuite.write_report(tmp_path / "cmap")
    text = (tmp_path / "cmap" / "report.md").read_text(encoding="utf-8")
    assert text.startswith("# initsuite cmap report: cmap")
    assert "## Solved constants" in text and (tmp_path / "cmap/figures/network_cmap.png").exists()


def test_the_study_refuses_an_unreachable_target_before_running() -> None:
    with pytest.raises(InitsuiteError, match=r"eta=0\.9 is out of reach for 3 leaky-ReLU layers"):
        cmap_study([("relu", "kaiming_normal"), ("tat:leaky_relu:eta=0.9", "scaled_orthogonal")],
                   depths=(3,), widths=(8,), seeds=1)  # fmt: skip
    with pytest.raises(InitsuiteError, match="cosines"):
        cmap_study([("relu", "kaiming_normal")], depths=(3,), widths=(8,), cosines=(1.5,))
    with pytest.raises(InitsuiteTypeError, match=r"each net is an \(activation, scheme\) pair"):
        cmap_study(["relu"], depths=(3,), widths=(8,))  # type: ignore[list-item]


def test_the_cli_runs_the_study_and_refuses_bad_input_in_one_line(study: initsuite.CMapResult,
                                                                   tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """``initsuite cmap`` stores what the API returns for the same nets (the same numbers),
    and a bad flag is one line, exit 2, nothing written."""
    from helpers import run_cli

    cfg = study.meta["config"]
    net = [a for pair in cfg["nets"] for a in ("--net", *pair)]
    flags = [*net, "--depths", ",".join(map(str, cfg["depths"])),
             "--widths", ",".join(map(str, cfg["widths"])), "--seeds", str(len(cfg["seeds"])),
             "--cosines", ",".join(map(str, cfg["cosines"]))]  # fmt: skip
    code, out, err = run_cli(["cmap", *flags, "--out", str(tmp_path / "c")], capsys)
    assert code == 0, err
    assert "C(c₀)" in out and f"wrote {len(study.cmap)} rows" in out
    back = initsuite.CMapResult.load(tmp_path / "c")
    pd.testing.assert_frame_equal(back.cmap, study.cmap)
    assert back.meta["command"].startswith("initsuite cmap --net")
    for bad, says in ((["--depths", "0"], "depths must be >= 1"),
                      (["--net", "relu", "kaiming_normall"], "did you mean 'kaiming_normal'"),
                      (["--net", "tat:leaky_relu:eta=0.9", "orthogonal", "--depths", "5"],
                       "out of reach for 5 leaky-ReLU layers"),
                      (["--cosines", "0,2"], "in [-1, 1]")):  # fmt: skip
        code, out, err = run_cli(["cmap", *bad, "--out", str(tmp_path / "bad")], capsys)
        assert code == 2 and not out and len(err.strip().splitlines()) == 1 and says in err
        assert not (tmp_path / "bad").exists()

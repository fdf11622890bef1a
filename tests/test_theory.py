"""The mean-field maps and predictions (initsuite.theory) against closed forms, quadrature and
Monte Carlo, and their columns in every sweep."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy as np
import pytest
import torch

import initsuite
from initsuite import activations, schemes
from initsuite.core.quadrature import gaussian_expectation
from initsuite.theory import maps
from initsuite.theory import meanfield as theory


@pytest.mark.parametrize("act", ["linear", "relu", "leaky_relu:negative_slope=0.2"])
@pytest.mark.parametrize("q", [1e-6, 0.3, 1.0, 7.5, 1e8])
def test_closed_forms_match_quadrature(act: str, q: float) -> None:
    a = activations.get(act)
    m1, m2 = maps.moments(a, q)
    f = a.apply
    # composite Gauss–Legendre integrates these piecewise polynomials to ~1e-14 relative
    assert m1 == pytest.approx(gaussian_expectation(f, q), rel=1e-12, abs=1e-14 * math.sqrt(q))
    assert m2 == pytest.approx(gaussian_expectation(lambda z: f(z) ** 2, q), rel=1e-12)


def test_relu_map_is_exact() -> None:
    """σ_w² = 2 (He) keeps q at its input value; the post-activation std is
    sqrt(q/2 - q/(2π)) at every layer."""
    layers = theory.mlp_moments("relu", 2.0, 50, input_q=1.0)
    for m in layers:
        assert m.q == pytest.approx(2.0)
        assert m.std == pytest.approx(math.sqrt(1.0 - 1.0 / math.pi), rel=1e-12)


def test_fixed_point_shortcut_equals_iteration() -> None:
    """Once q is at a fixed point the remaining layers are copies; compare with a plain
    iteration of the map written here."""
    act = activations.get("tanh")
    got = theory.mlp_moments(act, (5 / 3) ** 2, 400)
    q = (5 / 3) ** 2
    f = act.apply
    for m in got:
        m2 = gaussian_expectation(lambda z: f(z) ** 2, q)
        assert m.q == pytest.approx(q, rel=1e-12)
        q = (5 / 3) ** 2 * m2


@pytest.mark.parametrize(("dtype", "expected"), [("float32", 32), ("bfloat16", 32), ("float16", 4)])
def test_tutorial_overflow_layer_is_predicted(dtype: str, expected: int) -> None:
    """N(0, 1) at width 256, no activation: std 16^l; the largest of 16·256 values is
    ≈ 4.1·16^l, which passes float32's 3.4e38 at layer 32 and float16's 65504 at layer 4: the
    layers the engine measures (test_engine)."""
    res = initsuite.sweep("normal", "linear", 40, 256, dtypes=dtype, timing=False)
    cell = res.cells.iloc[0]
    assert cell["theory_divergence_layer"] == expected
    assert cell["theory_divergence_kind"] == "overflow"
    assert cell["divergence_layer"] == expected


def test_underflow_layer_is_predicted_within_the_finite_width_spread() -> None:
    """PyTorch's default init with ReLU shrinks the std by 1/√6 per layer (σ_w² = 1/3): the
    prediction crosses float32's tiny (1.2e-38) at layer ≈ 99. At width 256 the measured log
    std wanders by about sqrt(5/4 · l / n) ≈ 0.7 (natural log) at l = 100 (Hanin & Rolnick
    2018), a few layers at 0.9 per layer: 6 layers is ~5 standard deviations."""
    res = initsuite.sweep("torch_default", "relu", 130, 256, seeds=[0, 1, 2], timing=False)
    for _, cell in res.cells.iterrows():
        assert cell["theory_divergence_kind"] == "underflow"
        assert abs(cell["theory_divergence_layer"] - cell["divergence_layer"]) <= 6


MC_SPECS = ["kaiming_normal", "xavier_uniform:gain=auto", "orthogonal:gain=auto",
            "lecun_normal", "trunc_normal:std=0.03", "sparse:sparsity=0.5,std=0.05"]  # fmt: skip


@pytest.mark.parametrize("act", ["tanh", "relu", "gelu", "selu"])
def test_monte_carlo_wide_shallow_nets_match_theory(act: str) -> None:
    """Width 512, batch 64, depths 1-4, 4 seeds: the measured std matches theory_std.

    Error budget, relative: each layer's weights scale a unit's variance by a factor with
    relative sd ≈ sqrt(2/n) = 6.3% for one input; 64 inputs share the weights but see
    nearly independent directions, leaving ≈ 6.3%/√64·(a few) ≲ 1.5% per layer, and the std
    over 64·512 values adds 0.4%. Over 4 layers and averaged over 4 seeds that is ≲ 2%;
    5% is generous yet tight enough to catch a wrong σ_w² (Xavier vs He is a factor √2)."""
    res = initsuite.sweep(MC_SPECS, act, 4, 512, batch=64, seeds=4, timing=False)
    layers = res.layers
    assert layers["theory_std"].notna().all()
    mean = layers.groupby(["scheme", "layer"])[["std", "theory_std"]].mean()
    rel = (mean["std"] / mean["theory_std"] - 1).abs()
    assert rel.max() < 0.05, rel.sort_values().tail()


def test_equal_variance_schemes_get_the_same_prediction() -> None:
    """σ_w² comes from the variance formula: kaiming_uniform, kaiming_normal and
    orthogonal:gain=√2 all have Var(W) = 2/n."""
    res = initsuite.sweep(["kaiming_uniform", "kaiming_normal", f"orthogonal:gain={math.sqrt(2)}"],
                          "tanh", 20, 64, timing=False)  # fmt: skip
    by = res.layers.groupby("scheme")["theory_std"].apply(lambda s: s.to_numpy())
    np.testing.assert_allclose(by.iloc[0], by.iloc[1], rtol=1e-12)
    np.testing.assert_allclose(by.iloc[0], by.iloc[2], rtol=1e-12)


def test_theory_does_not_apply_to_deterministic_or_uncentred_schemes() -> None:
    res = initsuite.sweep(["eye", "constant:val=0.1", "ones", "normal:mean=0.5",
                           "uniform", "zeros"], "tanh", 3, 16, timing=False)  # fmt: skip
    cells = res.cells.set_index("scheme")
    for spec in ("eye", "constant:val=0.1", "ones", "normal:mean=0.5", "uniform"):
        assert np.isnan(cells.loc[spec, "theory_final_std"]), spec
        assert res.layers[res.layers.scheme == spec]["theory_std"].isna().all(), spec
    # zeros is centred with σ_w² = 0: the prediction is a dead signal at layer 1
    assert cells.loc["zeros", "theory_final_std"] == 0.0
    assert cells.loc["zeros", "theory_divergence_kind"] == "underflow"


def test_bias_enters_as_sigma_b2() -> None:
    """With nn.Linear's default bias U(±1/√n), σ_b² = 1/(3n); zeros weights then give
    q = σ_b² at every layer."""
    res = initsuite.sweep("zeros", "linear", 3, 48, bias="torch_default", timing=False)
    expected = math.sqrt(1 / (3 * 48))
    np.testing.assert_allclose(res.layers["theory_std"], expected, rtol=1e-12)
    prior = theory.weight_prior(schemes.get("kaiming_normal"), {"a": 0.0, "mode": "fan_in",
                                "nonlinearity": "leaky_relu"}, 48, "torch_default")  # fmt: skip
    assert prior == pytest.approx((2.0, 1 / 144))


def test_growth_columns_agree_with_final_std() -> None:
    res = initsuite.sweep("xavier_normal", "relu", [10, 30], 128, timing=False)
    for _, c in res.cells.iterrows():
        assert c["theory_growth_per_layer"] == pytest.approx(
            c["theory_final_std"] ** (1 / c["depth"])
        )
    # Xavier + ReLU halves the variance per layer: std × 1/√2
    assert res.cells["theory_growth_per_layer"].iloc[-1] == pytest.approx(
        1 / math.sqrt(2), rel=0.02
    )


def test_theory_in_float16_uses_its_range() -> None:
    tiny = torch.finfo(torch.float16).tiny
    res = initsuite.sweep("torch_default", "relu", 40, 64, dtypes="float16", timing=False)
    c = res.cells.iloc[0]
    # std 0.58·6^(-(l-1)/2) crosses 6.1e-5 near layer 1 + 2·log(0.58/6.1e-5)/log 6 ≈ 11
    assert c["theory_divergence_kind"] == "underflow"
    layer = int(c["theory_divergence_layer"])
    std = res.layers.set_index("layer")["theory_std"]
    assert std[layer] < tiny <= std[layer - 1]


# -- gains ---------------------------------------------------------------------------------------


def test_gains_table() -> None:
    """Each column against its definition, computed here by Monte Carlo-free closed forms or
    plain quadrature; and the tutorial's numbers (tanh: 1.59 vs 5/3, settles at 0.65)."""
    table = initsuite.gains().set_index("activation")
    assert set(table.index) == set(activations.names())
    tanh, relu, linear = table.loc["tanh"], table.loc["relu"], table.loc["linear"]
    assert tanh["torch_gain"] == pytest.approx(5 / 3)
    assert tanh["variance_gain"] == pytest.approx(1.5930, abs=5e-4)  # 1/sqrt(E tanh(z)²)
    assert tanh["std_ratio"] == pytest.approx(tanh["variance_gain"], rel=1e-12)  # odd φ
    assert tanh["fixed_point_std"] == pytest.approx(0.65, abs=0.005)  # the tutorial's 0.65
    assert tanh["chi1"] > 1  # 5/3 puts tanh nets in the chaotic phase
    # ReLU: E[relu²] = 1/2, Var = 1/2 - 1/(2π); He's √2 keeps any q, on the edge of chaos:
    # the table gives the q a sweep's unit-variance input keeps, q₁ = 2, post-activation std
    # sqrt(2·(1/2 - 1/(2π))) = 0.8256 (not 0.584, the std at q = 1)
    assert relu["variance_gain"] == pytest.approx(math.sqrt(2), rel=1e-12)
    assert relu["std_ratio"] == pytest.approx(1 / math.sqrt(0.5 - 1 / (2 * math.pi)), rel=1e-12)
    assert relu["fixed_point"] == "any (scale-invariant)"
    assert relu["fixed_point_q"] == pytest.approx(2.0)
    assert relu["fixed_point_std"] == pytest.approx(math.sqrt(1 - 1 / math.pi), rel=1e-12)
    leaky = table.loc["leaky_relu"]
    assert leaky["fixed_point"] == "any (scale-invariant)"
    assert leaky["fixed_point_q"] == pytest.approx(leaky["auto_gain"] ** 2)
    assert tanh["fixed_point"] == "attracting"
    assert relu["chi1"] == pytest.approx(1.0, rel=1e-9)
    assert relu["map_slope"] == pytest.approx(1.0, rel=1e-6)
    assert linear[["variance_gain", "std_ratio", "fixed_point_std", "chi1"]].tolist() == \
        pytest.approx([1, 1, 1, 1])  # fmt: skip
    gelu = table.loc["gelu"]
    assert math.isnan(gelu["torch_gain"]) and gelu["gain_source"] == "computed"
    assert gelu["auto_gain"] == pytest.approx(gelu["variance_gain"])
    assert gelu["map_slope"] > 1  # q = 1 is fixed but repels: deep GELU nets drift
    assert gelu["fixed_point"] == "repelling"


def test_chi1_matches_a_finite_difference_of_the_network() -> None:
    """χ₁ is the mean squared singular value of one layer's Jacobian D·W/… : push a tiny
    perturbation through a wide tanh layer and compare its growth in squared norm."""
    from initsuite.theory.maps import chi1, fixed_point

    n, gain = 2048, 5 / 3
    q = fixed_point("tanh", gain**2)
    g = torch.Generator().manual_seed(0)
    h = torch.randn(n, generator=g, dtype=torch.float64) * math.sqrt(q)
    w = torch.randn(n, n, generator=g, dtype=torch.float64) * gain / math.sqrt(n)
    d = torch.randn(n, generator=g, dtype=torch.float64) * 1e-7
    out = w @ torch.tanh(h + d) - w @ torch.tanh(h)
    ratio = (out.norm() / d.norm()).item() ** 2
    # one draw of a 2048-wide layer: relative sd ≈ sqrt(2/n) ≈ 3%; 10% tolerance
    assert ratio == pytest.approx(chi1("tanh", gain**2, q), rel=0.1)


def test_gains_cli(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from initsuite.cli import main

    assert main(["gains", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["activation"] for r in rows} == set(activations.names())


# -- the c-map and the measured cosine -----------------------------------------------------------


def _dblquad_cross(act: str, q: float, c: float) -> float:
    """E[φ(u)φ(v)] by adaptive 1-D quadratures (scipy), split at φ's kink lines."""
    from scipy import integrate

    f = activations.get(act).apply
    s = math.sqrt(1 - c * c)
    norm = math.sqrt(2 * math.pi)

    def phi(x: float) -> float:
        return float(f(np.array([x]))[0])

    def quad(g: Any, cuts: tuple[float, ...]) -> float:
        edges = (-12.0, *cuts, 12.0)
        return sum(integrate.quad(g, lo, hi, epsabs=1e-13, limit=200)[0]
                   for lo, hi in itertools.pairwise(edges))  # fmt: skip

    def inner(z1: float) -> float:
        def g(z2: float) -> float:
            return phi(math.sqrt(q) * (c * z1 + s * z2)) * math.exp(-z2 * z2 / 2)

        return phi(math.sqrt(q) * z1) * quad(g, (-c * z1 / s,)) / norm

    return quad(lambda z: inner(z) * math.exp(-z * z / 2), (0.0,)) / norm


@pytest.mark.parametrize(
    ("act", "tol"),
    [
        ("relu", 1e-8),
        ("leaky_relu:negative_slope=0.2", 1e-8),
        ("tanh", 1e-6),
        ("gelu", 1e-6),
        ("selu", 2e-3),
    ],
)
def test_cross_moment_against_adaptive_quadrature(act: str, tol: float) -> None:
    """Closed forms (ReLU family) and the Gauss–Hermite rule (smooth φ: tight; SELU's kink:
    within 2e-3·q, as documented) against scipy's adaptive quadrature."""
    for q, c in ((0.5, -0.9), (0.5, 0.0), (2.0, 0.3), (2.0, 0.95)):
        expected = _dblquad_cross(act, q, c)
        assert maps.kernel(act, q, c) == pytest.approx(expected, abs=tol * q), (q, c)


def test_linear_c_map_keeps_the_cosine() -> None:
    assert theory.c_map("linear", 1.0, 0.0, 10, 0.3) == pytest.approx([0.3] * 10)
    # with a bias the cosine moves towards 1: c₁ = (σ_w²·c₀ + σ_b²)/(σ_w² + σ_b²)
    assert theory.c_map("linear", 1.0, 1.0, 1, 0.3)[0] == pytest.approx(0.65)


def test_orthogonal_linear_net_keeps_the_cosine_exactly() -> None:
    """An orthogonal map preserves angles, so the measured cosine is the input pair's at
    every layer (float32 rounding over 50 layers: < 1e-5)."""
    res = initsuite.sweep("orthogonal", "linear", 50, 128, pair_cosine=0.3, timing=False)
    np.testing.assert_allclose(res.layers["cosine"], 0.3, atol=1e-5)
    np.testing.assert_allclose(res.layers["theory_cosine"], 0.3, atol=1e-12)


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_measured_cosine_follows_the_c_map(act: str) -> None:
    """Width 1024, 4 layers, 6 seeds: one layer moves a cosine by ≈ 1/√n = 0.03 at random;
    over 4 layers and averaged over 6 seeds, 0.05 absolute is ~3 standard errors."""
    res = initsuite.sweep("xavier_uniform:gain=auto", act, 4, 1024, seeds=6,
                          pair_cosine=0.6, timing=False)  # fmt: skip
    mean = res.layers.groupby("layer")[["cosine", "theory_cosine"]].mean()
    assert (mean["cosine"] - mean["theory_cosine"]).abs().max() < 0.05


def test_the_pair_does_not_change_the_batch_statistics() -> None:
    kw = dict(activations=["tanh", "relu"], depths=20, widths=48, seeds=[1], timing=False)
    with_pair = initsuite.sweep(["kaiming_normal", "orthogonal", "sparse"], **kw)
    without = initsuite.sweep(["kaiming_normal", "orthogonal", "sparse"], pair_cosine=None, **kw)
    cols = ["scheme", "activation", "layer", "std", "mean"]
    assert with_pair.layers[cols].equals(without.layers[cols])
    assert without.layers["cosine"].isna().all() and without.layers["theory_cosine"].isna().all()


def test_chaotic_and_ordered_phases() -> None:
    """tanh at 5/3 is chaotic (χ₁ ≈ 1.21 > 1): the cosine of two inputs falls; ReLU at He's
    gain sits at χ₁ = 1 and inputs converge (c → 1)."""
    res = initsuite.sweep("xavier_uniform:gain=auto", ["tanh", "relu"], 40, 256,
                          pair_cosine=0.5, timing=False)  # fmt: skip
    cells = res.cells.set_index("activation")
    assert cells.loc["tanh", "theory_chi1"] == pytest.approx(1.21, abs=0.01)
    assert cells.loc["relu", "theory_chi1"] == pytest.approx(1.0)
    last = res.layers[res.layers.layer == 40].set_index("activation")
    assert last.loc["tanh", "theory_cosine"] < 0.1 and last.loc["relu", "theory_cosine"] > 0.95


def test_pair_cosine_is_validated() -> None:
    with pytest.raises(initsuite.InitsuiteError, match="pair_cosine"):
        initsuite.sweep("normal", "relu", 2, 8, pair_cosine=1.5)


# -- phase diagram -------------------------------------------------------------------------------


def test_critical_lines_match_the_literature() -> None:
    """ReLU: χ₁ = σ_w²/2, so the critical σ_w² is 2 (He) at any σ_b²; tanh: 1 at σ_b² = 0
    (approached as q* → 0, so a finite iteration lands within 1%) and ≈ 1.76 at σ_b² = 0.05
    (Poole et al. 2016, Schoenholz et al. 2017)."""
    from initsuite.theory import phase

    assert phase.critical_sigma_w2("relu", 0.0) == pytest.approx(2.0, rel=1e-6)
    assert phase.critical_sigma_w2("relu", 0.3) == pytest.approx(2.0, rel=1e-6)
    assert phase.critical_sigma_w2("tanh", 0.0) == pytest.approx(1.0, rel=0.01)
    assert phase.critical_sigma_w2("tanh", 0.05) == pytest.approx(1.76, abs=0.01)


def test_phase_diagram_and_scheme_points() -> None:
    from initsuite.theory import phase

    grid = phase.phase_diagram("tanh", sigma_w2=[0.5, 1.5, 3.0], sigma_b2=[0.0, 0.2])
    assert len(grid) == 6
    assert set(grid.columns) >= {"sigma_w2", "sigma_b2", "q_star", "chi1", "depth_scale", "phase"}
    by = grid.set_index(["sigma_w2", "sigma_b2"])
    assert by.loc[(0.5, 0.0), "phase"] == "ordered" and by.loc[(3.0, 0.0), "phase"] == "chaotic"
    chi = by.loc[(3.0, 0.0), "chi1"]
    assert by.loc[(3.0, 0.0), "depth_scale"] == pytest.approx(1 / math.log(chi))
    pts = phase.scheme_points("tanh", ["xavier_uniform:gain=auto", "eye", "kaiming_normal"], 64)
    assert list(pts["scheme"]) == ["xavier_uniform:gain=auto", "kaiming_normal"]  # eye: n/a
    assert pts.set_index("scheme").loc["xavier_uniform:gain=auto", "chi1"] == pytest.approx(
        1.21, abs=0.01
    )


def test_phase_cli_writes_a_figure(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from initsuite.cli import main

    out = tmp_path / "phase.png"
    assert main(["phase", "--activation", "relu", "--schemes", "kaiming_normal",
                 "--out", str(out)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "kaiming_normal" in text and "critical σ_w²" in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["phase", "--activation", "tanhh"]) == 2


@pytest.mark.parametrize("law", [None, "zeros", "torch_default"])
def test_phase_takes_the_bias_law(law: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    """``phase --bias LAW`` and ``scheme_points(bias=LAW)``: σ_b² is the law's (0 for
    ``zeros``, 1/(3·fan_in) for ``torch_default``); a bool names no law."""
    from initsuite.cli import main
    from initsuite.core.errors import InitsuiteTypeError
    from initsuite.theory import phase

    pts = phase.scheme_points("tanh", ["kaiming_normal"], 64, law)
    expected = 1 / (3 * 64) if law == "torch_default" else 0.0
    assert pts["sigma_b2"].tolist() == [pytest.approx(expected, rel=1e-12)]
    flag = [] if law is None else ["--bias", law]
    assert main(["phase", "--activation", "tanh", "--schemes", "kaiming_normal",
                 "--width", "64", "--json", *flag]) == 0  # fmt: skip
    (row,) = json.loads(capsys.readouterr().out)
    assert row["sigma_b2"] == pytest.approx(expected, rel=1e-12)
    with pytest.raises(InitsuiteTypeError, match="bias must name its law"):
        phase.scheme_points("tanh", ["kaiming_normal"], 64, True)  # type: ignore[arg-type]


def test_phase_at_the_ends_of_float64() -> None:
    """A vanishing point has q* = 0 and χ₁ its q → 0 limit, σ_w²·E[φ'²] over both sides of
    the kink (not autograd's one side at 0); an exploding one has q* = inf."""
    from initsuite.theory import phase

    grid = phase.phase_diagram("leaky_relu:negative_slope=0.2", [0.05, 30.0], [0.0])
    assert grid["q_star"].tolist() == [0.0, math.inf]
    assert grid["chi1"].tolist() == pytest.approx([0.05 * 1.04 / 2, 30 * 1.04 / 2], rel=1e-12)
    elu = phase.phase_diagram("elu:alpha=0.5", [0.05], [0.0]).iloc[0]
    assert elu["q_star"] == 0.0 and elu["chi1"] == pytest.approx(0.05 * 1.25 / 2, rel=1e-12)

"""Input–output Jacobian spectra against the known results (Saxe et al. 2013, Pennington et
al. 2017) and against the sweep's own weights."""

from __future__ import annotations

import statistics

import pytest
import torch

from initsuite import schemes
from initsuite.engine.jacobian import jacobian_singular_values, spectrum_summary


@pytest.mark.parametrize("depth", [1, 10, 50])
def test_orthogonal_linear_net_is_exactly_isometric(depth: int) -> None:
    """Every singular value of a product of orthogonal matrices is 1: float64 products of
    ≤ 50 orthogonal 64×64 factors stay within 1e-12."""
    sv = jacobian_singular_values("orthogonal", "linear", depth, 64, seed=3)
    assert torch.allclose(sv, torch.ones_like(sv), atol=1e-12, rtol=0)
    s = spectrum_summary(sv)
    assert s["condition"] == pytest.approx(1.0, abs=1e-11)


def test_gaussian_linear_spectrum_spreads_linearly_with_depth() -> None:
    """Var(W) = 1/n: the squared singular values have mean 1 and variance ≈ L (wide limit).
    Width 256, 4 seeds: finite-width and seed noise stay within 25% at L ≤ 8."""
    for depth in (2, 4, 8):
        sums = [spectrum_summary(jacobian_singular_values("lecun_normal", "linear", depth, 256,
                                                          seed=s)) for s in range(4)]  # fmt: skip
        assert statistics.fmean(x["sv2_mean"] for x in sums) == pytest.approx(1.0, rel=0.1)
        assert statistics.fmean(x["sv2_var"] for x in sums) == pytest.approx(depth, rel=0.25)


def test_relu_is_never_isometric() -> None:
    """Each ReLU zeroes about half the directions, so J is rank-deficient after one hidden
    layer; orthogonal weights cannot help."""
    for spec in ("kaiming_normal", "orthogonal:gain=auto"):
        sv = jacobian_singular_values(spec, "relu", 5, 128, seed=0)
        dead = (sv < 1e-9 * sv.max()).double().mean().item()
        assert dead > 0.35, (spec, dead)


def test_one_layer_jacobian_is_the_cells_first_weight() -> None:
    """The weights are the sweep cell's: x (batch × width) is drawn first, then W_1."""
    g = torch.Generator().manual_seed(7)
    torch.randn((16, 32), generator=g, dtype=torch.float64)
    w = schemes.get("kaiming_uniform")(torch.empty(32, 32, dtype=torch.float64), generator=g)
    sv = jacobian_singular_values("kaiming_uniform", "tanh", 1, 32, seed=7)
    assert torch.allclose(sv, torch.linalg.svdvals(w), rtol=1e-12)


def test_sweep_records_the_spectrum_per_depth() -> None:
    """``jacobian=True`` adds the jac_* columns at every depth, equal to the module's own
    numbers for the cell; without it they are NaN."""
    import initsuite
    from initsuite.engine.jacobian import jacobian_summaries

    kw = dict(depths=[3, 12], widths=48, seeds=[2], timing=False)
    res = initsuite.sweep(["orthogonal", "kaiming_normal"], ["linear", "relu"], jacobian=True,
                          **kw)  # fmt: skip
    cells = res.cells.set_index(["scheme", "activation", "depth"])
    iso = cells.loc[("orthogonal", "linear", 12)]
    # float32 orthogonal weights: orthogonality to ~n·eps32 per layer, so the squared
    # singular values stay within ~1e-5 of 1 over 12 layers
    assert iso["jac_sv2_var"] == pytest.approx(0.0, abs=1e-9)
    assert iso["jac_condition"] == pytest.approx(1.0, abs=1e-4)
    ref = jacobian_summaries("kaiming_normal", "relu", [3, 12], 48, seed=2, dtype="float32")
    for depth in (3, 12):
        got = cells.loc[("kaiming_normal", "relu", depth)]
        assert got["jac_sv2_mean"] == pytest.approx(ref[depth]["sv2_mean"], rel=1e-12)
        assert got["jac_sv2_var"] == pytest.approx(ref[depth]["sv2_var"], rel=1e-12)
    plain = initsuite.sweep("orthogonal", "linear", **kw)
    assert plain.cells["jac_sv2_mean"].isna().all()


def test_bias_draws_keep_the_cells_weights() -> None:
    """With a bias, each layer's bias is drawn after its weight, as in the sweep: layer 2's
    weight is then the cell's (checked through a 2-layer linear net, J = W2·W1)."""
    g = torch.Generator().manual_seed(5)
    torch.randn((16, 24), generator=g, dtype=torch.float64)
    init = schemes.get("xavier_normal")
    w1 = init(torch.empty(24, 24, dtype=torch.float64), generator=g)
    torch.empty(24, dtype=torch.float64).uniform_(-1, 1, generator=g)
    w2 = init(torch.empty(24, 24, dtype=torch.float64), generator=g)
    sv = jacobian_singular_values("xavier_normal", "linear", 2, 24, seed=5, bias="torch_default")
    assert torch.allclose(sv, torch.linalg.svdvals(w2 @ w1), rtol=1e-12)


def test_no_spectrum_past_a_cells_divergence() -> None:
    """N(0, 1) weights at width 64 overflow float32 near layer 43: the depth-80 cell stopped
    there, so it has no spectrum (what follows divergence is noise), the depth-10 cell has."""
    import initsuite

    res = initsuite.sweep("normal", "linear", [10, 80], 64, jacobian=True, timing=False)
    cells = res.cells.set_index("depth")
    assert cells.loc[80, "divergence_kind"] == "overflow"
    assert cells.loc[80, ["jac_sv2_mean", "jac_sv_max", "jac_condition"]].isna().all()
    assert cells.loc[10, "jac_sv2_mean"] > 0

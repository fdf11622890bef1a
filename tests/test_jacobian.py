"""Input–output Jacobian spectra against the known results (Saxe et al. 2013, Pennington et
al. 2017) and against the sweep's own weights."""

from __future__ import annotations

import statistics

import pytest
import torch

from initsuite import schemes
from initsuite.jacobian import jacobian_singular_values, spectrum_summary


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

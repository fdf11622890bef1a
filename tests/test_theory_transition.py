"""Mean-field theory near the order–chaos transition and in the chaotic phase, against an
independent computation: scipy's adaptive quadrature and root finder (not initsuite's rules).

- the fixed point q* of the length map, by a root finder, on both sides of the transition;
- the critical line χ₁ = 1 at σ_b² = 0 (exactly σ_w² = 1 for tanh) and with a bias;
- the depth scales ξ_c = −1/ln χ_c at the correlation map's fixed point c* and ξ_q
  (Schoenholz et al. 2017), which differ from ξ₁ = 1/|ln χ₁| in the chaotic phase.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize

from initsuite.theory import maps
from initsuite.theory.phase import critical_sigma_w2, phase_diagram

SQRT2PI = math.sqrt(2 * math.pi)


def _gauss(f, rel: float = 1e-13) -> float:
    """E[f(z)], z ~ N(0, 1), by scipy's adaptive quadrature."""
    value, _ = integrate.quad(lambda z: f(z) * math.exp(-z * z / 2) / SQRT2PI, -40, 40,
                              epsabs=rel * 1e-2, epsrel=rel, limit=400)  # fmt: skip
    return value


def _tanh_map(q: float, sw2: float, sb2: float) -> float:
    return sw2 * _gauss(lambda z: math.tanh(math.sqrt(q) * z) ** 2) + sb2


def _tanh_chi1(q: float, sw2: float) -> float:
    return sw2 * _gauss(lambda z: (1 - math.tanh(math.sqrt(q) * z) ** 2) ** 2)


def _q_star(sw2: float, sb2: float) -> float:
    """The non-trivial root of q = f(q) (the one iterates from q = 1 reach), by Brent."""
    lo = 1e-12 if sb2 == 0 else sb2 / 2
    return optimize.brentq(lambda q: _tanh_map(q, sw2, sb2) - q, lo, 50.0, xtol=1e-16,
                           rtol=1e-14)  # fmt: skip


@pytest.mark.parametrize(("sw2", "sb2"), [(1.01, 0.0), (1.001, 0.0), (1.0001, 0.0),
                                          (1.3, 0.01), (25 / 9, 0.0)])  # fmt: skip
def test_fixed_point_is_the_root_near_the_transition(sw2: float, sb2: float) -> None:
    """Iterated from q = 1 for 300 layers, σ_w² = 1.01 still sat at 5.3e-3 instead of q* =
    5.02e-3 (the map's slope at q* is 0.99: the iteration crawls); the root finder gets q*."""
    want = _q_star(sw2, sb2)
    got = maps.fixed_point("tanh", sw2, sb2)
    assert got == pytest.approx(want, rel=1e-10)
    assert maps.fixed_point("tanh", sw2, sb2, q0=10.0) == pytest.approx(want, rel=1e-10)


def test_fixed_point_below_the_transition_vanishes() -> None:
    """σ_w² <= 1 without bias: tanh² < x² makes g(q) = f(q) − q negative for every q > 0, so
    the signal vanishes (q* = 0), at σ_w² = 1 only algebraically (q_l ≈ 1/(2l))."""
    assert maps.fixed_point("tanh", np.array([0.5, 0.99, 1.0]), 0.0).tolist() == [0.0] * 3
    # with a depth given, the iterate of a net that deep
    assert maps.fixed_point("tanh", 1.0, 0.0, max_layers=1000) == pytest.approx(1 / 2000, rel=0.05)


def test_phase_near_the_transition_on_both_sides() -> None:
    """σ_w² = 1.01 is chaotic (χ₁ = 1.0000326 at q* = 5.02e-3; it read 0.9995, "ordered"),
    0.99 ordered (q* = 0, χ₁ = σ_w²·tanh'(0)² = 0.99)."""
    table = phase_diagram("tanh", [0.99, 1.01], [0.0]).set_index("sigma_w2")
    q = _q_star(1.01, 0.0)
    assert table.loc[1.01, "q_star"] == pytest.approx(q, rel=1e-10)
    assert table.loc[1.01, "chi1"] == pytest.approx(_tanh_chi1(q, 1.01), rel=1e-12)
    assert table.loc[1.01, "chi1"] - 1 == pytest.approx(3.26e-5, rel=0.01)
    assert table.loc[1.01, "phase"] == "chaotic"
    assert table.loc[0.99, "q_star"] == 0.0
    assert table.loc[0.99, "chi1"] == pytest.approx(0.99, rel=1e-12)
    assert table.loc[0.99, "phase"] == "ordered"


def test_critical_point() -> None:
    """tanh without bias: χ₁ = 1 exactly at σ_w² = 1 (it returned 1.00623). With σ_b² = 0.05:
    the σ_w² where χ₁(q*) = 1, by Brent on scipy's map and slope."""
    assert critical_sigma_w2("tanh", 0.0) == pytest.approx(1.0, abs=1e-6)
    want = optimize.brentq(lambda w: _tanh_chi1(_q_star(w, 0.05), w) - 1, 1.2, 2.5, xtol=1e-12)
    assert critical_sigma_w2("tanh", 0.05) == pytest.approx(want, rel=1e-8)


# -- depth scales ---------------------------------------------------------------------------


def test_chaotic_depth_scale_is_the_correlation_maps() -> None:
    """tanh at gain 5/3 without bias: c* = 0 (odd φ), where u₁, u₂ are independent, so
    χ_c = σ_w²·E[φ'(√q* z)]² (one-dimensional): ξ_c = 12.1 layers, against ξ₁ = 5.25."""
    sw2 = 25 / 9
    q = _q_star(sw2, 0.0)
    slope = _gauss(lambda z: 1 - math.tanh(math.sqrt(q) * z) ** 2)
    chi_c = sw2 * slope**2
    row = phase_diagram("tanh", [sw2], [0.0]).iloc[0]
    assert row["c_star"] == pytest.approx(0.0, abs=1e-9)
    assert row["chi_c"] == pytest.approx(chi_c, rel=1e-5)  # the 64-node product rule
    assert row["xi_c"] == pytest.approx(-1 / math.log(chi_c), rel=1e-3)
    assert row["xi_c"] == pytest.approx(12.1, abs=0.05)
    assert row["depth_scale"] == pytest.approx(1 / math.log(_tanh_chi1(q, sw2)), rel=1e-9)
    assert row["depth_scale"] == pytest.approx(5.25, abs=0.01)


def _pair(f, q: float, c: float) -> float:
    """E[f(u₁)f(u₂)], (u₁, u₂) of variance q and correlation c, by scipy's dblquad."""
    s = math.sqrt(1 - c * c)

    def inner(z1: float) -> float:
        u1 = math.sqrt(q) * z1
        return f(u1) * _gauss(lambda z2: f(math.sqrt(q) * (c * z1 + s * z2)), 1e-10)

    value, _ = integrate.quad(lambda z1: inner(z1) * math.exp(-z1 * z1 / 2) / SQRT2PI, -12, 12,
                              epsabs=1e-12, epsrel=1e-10)  # fmt: skip
    return value


def test_chaotic_fixed_point_with_a_bias() -> None:
    """With a bias c* > 0: the root of c = (σ_w²·E[φ(u₁)φ(u₂)] + σ_b²)/q* below 1, by Brent
    on scipy's two-dimensional quadrature; χ_c there and ξ_c = −1/ln χ_c."""
    sw2, sb2 = 3.0, 0.1
    q = _q_star(sw2, sb2)

    def cmap(c: float) -> float:
        return (sw2 * _pair(math.tanh, q, c) + sb2) / q

    c_star = optimize.brentq(lambda c: cmap(c) - c, 0.0, 0.9, xtol=1e-10)
    chi_c = sw2 * _pair(lambda u: 1 - math.tanh(u) ** 2, q, c_star)
    row = phase_diagram("tanh", [sw2], [sb2]).iloc[0]
    assert row["phase"] == "chaotic" and 0 < row["c_star"] < 1
    assert row["c_star"] == pytest.approx(c_star, abs=1e-5)  # the 64-node product rule
    assert row["chi_c"] == pytest.approx(chi_c, rel=1e-4)
    assert row["xi_c"] == pytest.approx(-1 / math.log(chi_c), rel=1e-3)


def test_length_depth_scale_and_the_ordered_phase() -> None:
    """ξ_q = −1/ln χ_q, χ_q the slope of the length map at q* (a central difference of
    scipy's map); in the ordered phase c* = 1 and ξ_c = ξ₁."""
    sw2, sb2 = 1.5, 0.2
    q = _q_star(sw2, sb2)
    h = 1e-4 * q
    chi_q = (_tanh_map(q + h, sw2, sb2) - _tanh_map(q - h, sw2, sb2)) / (2 * h)
    row = phase_diagram("tanh", [sw2], [sb2]).iloc[0]
    assert row["chi_q"] == pytest.approx(chi_q, rel=1e-6)
    assert row["xi_q"] == pytest.approx(-1 / math.log(chi_q), rel=1e-6)
    assert row["phase"] == "ordered" and row["c_star"] == 1.0
    assert row["chi_c"] == row["chi1"] and row["xi_c"] == pytest.approx(row["depth_scale"])

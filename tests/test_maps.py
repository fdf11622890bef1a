"""The mean-field maps (initsuite.theory.maps): vectorised forms against scalar ones, the one
fixed-point rule, closed forms taken from the activation, and the torch-free table readers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from initsuite import activations
from initsuite.activations import Activation, ActivationInfo, ClosedForms
from initsuite.core.quadrature import gaussian_expectation
from initsuite.theory import maps

ACTS = ["tanh", "relu", "leaky_relu:negative_slope=0.2", "linear", "gelu", "selu"]


@pytest.mark.parametrize("act", ACTS)
def test_maps_on_arrays_match_scalar_calls(act: str) -> None:
    """Every map broadcasts over arrays; each entry equals the scalar call up to the order of
    the float64 sum (a matrix product against a dot product: ~1e-16 relative)."""
    q = np.array([0.2, 1.0, 3.5])
    sw2 = np.array([0.5, 1.0, 2.5])
    c = np.array([-0.4, 0.3, 0.9])
    m1, m2 = maps.moments(act, q)
    assert m1.shape == m2.shape == (3,)
    for i in range(3):
        assert (m1[i], m2[i]) == pytest.approx(maps.moments(act, float(q[i])), rel=1e-13, abs=1e-15)
        assert maps.chi1(act, sw2, q)[i] == pytest.approx(maps.chi1(act, sw2[i], q[i]), rel=1e-13)
        assert maps.kernel(act, q, c)[i] == pytest.approx(maps.kernel(act, q[i], c[i]), rel=1e-13)
        qn, cn = maps.correlation_map(act, q, c, sw2, 0.1)
        assert (qn[i], cn[i]) == pytest.approx(
            maps.correlation_map(act, q[i], c[i], sw2[i], 0.1), rel=1e-13
        )
    assert isinstance(maps.length_map(act, 1.0, 2.0), float)


def test_length_and_correlation_maps_follow_their_definitions() -> None:
    """One step against the expectations computed here by plain quadrature."""
    tanh = activations.get("tanh")
    q, c, sw2, sb2 = 0.7, 0.4, 1.8, 0.05
    m2 = gaussian_expectation(lambda z: np.tanh(z) ** 2, q)
    assert maps.length_map(tanh, q, sw2, sb2) == pytest.approx(sw2 * m2 + sb2, rel=1e-14)
    _, c_next = maps.correlation_map(tanh, q, c, sw2, sb2)
    cross = maps.kernel(tanh, q, c)
    assert c_next == pytest.approx((sw2 * cross + sb2) / (sw2 * m2 + sb2), rel=1e-14)
    # c = 1 is the length map itself: E[φ(u)²]
    assert maps.kernel(tanh, q, 1.0) == pytest.approx(m2, rel=1e-6)
    # a zero length (σ_w² = σ_b² = 0) has no correlation
    assert math.isnan(maps.correlation_map(tanh, q, c, 0.0, 0.0)[1])


def test_chi1_is_sigma_w2_times_the_mean_squared_slope() -> None:
    # tanh' = 1 - tanh²; ReLU' is the step: E = 1/2 at any q
    q = 1.3
    expected = gaussian_expectation(lambda z: (1 - np.tanh(z) ** 2) ** 2, q)
    assert maps.chi1("tanh", 2.0, q) == pytest.approx(2.0 * expected, rel=1e-13)
    assert maps.chi1("relu", 2.0, np.array([1e-3, 1.0, 1e6])).tolist() == [1.0, 1.0, 1.0]


def test_fixed_point_settles_vanishes_and_explodes() -> None:
    """One rule per point: settled q* is a fixed point to ~1e-14; σ_w² < 1 without bias
    drives tanh's q to 0; ReLU at σ_w² = 4 doubles q per layer up to inf."""
    sw2 = np.array([(5 / 3) ** 2, 0.5, 4.0])
    got = maps.fixed_point("tanh", sw2[:2], 0.0)
    q_star = got[0]
    assert maps.length_map("tanh", q_star, sw2[0]) == pytest.approx(q_star, rel=1e-12)
    assert got[1] == 0.0
    assert maps.fixed_point("relu", 4.0) == math.inf
    assert maps.fixed_point("relu", 2.0, q0=0.37) == 0.37  # He: every q is fixed
    # a point does not depend on the grid it is solved in
    alone = maps.fixed_point("tanh", sw2[0], 0.0)
    assert alone == pytest.approx(q_star, rel=1e-13)


def test_fixed_point_stops_after_max_layers() -> None:
    one = maps.fixed_point("tanh", 0.5, 0.0, q0=2.0, max_layers=1)
    assert one == maps.length_map("tanh", 2.0, 0.5)
    # ordered tanh converges geometrically (rate σ_w²): 50 layers halve q 50 times or so
    assert 0 < maps.fixed_point("tanh", 0.5, 0.0, max_layers=50) < 1e-14


def test_quadrature_order_changes_little() -> None:
    """8 Gauss–Legendre nodes per panel resolve the length map to ~1e-9 for q ≲ 20."""
    q = np.linspace(0.01, 20, 9)
    fine, light = maps.second_moment("gelu", q), maps.second_moment("gelu", q, order=8)
    np.testing.assert_allclose(light, fine, rtol=1e-8)


def _bare(name: str, forms: ClosedForms | None = None) -> Activation:
    """A leaky ReLU (slope 0.2) that is not registered, with the given closed forms."""
    fn = activations.get("leaky_relu").info.fn
    info = ActivationInfo(name, fn, "test", None, activations.get("leaky_relu").info.params,
                          forms or ClosedForms())  # fmt: skip
    return Activation(info, {"negative_slope": 0.2})


def test_theory_asks_the_activation_not_its_name() -> None:
    """An activation named 'relu' without closed forms is integrated by quadrature; one with a
    closed form (here a deliberately wrong one) gets that form."""
    plain = _bare("relu")  # a leaky ReLU under relu's name: no closed form
    assert maps.moments(plain, 2.0)[1] == pytest.approx(2.0 * (1 + 0.04) / 2, rel=1e-13)
    assert maps.chi1(plain, 1.0, 2.0) == pytest.approx((1 + 0.04) / 2, rel=1e-13)
    assert maps.kernel(plain, 2.0, 1.0) == pytest.approx(2.0 * 1.04 / 2, rel=1e-3)
    forms = ClosedForms(second_moment=lambda q, negative_slope: 7 * q,
                        slope_moment=lambda q, negative_slope: 3 + 0 * q)  # fmt: skip
    wrong = _bare("mine", forms)
    assert maps.length_map(wrong, 2.0, 1.0) == 14.0
    assert maps.chi1(wrong, 2.0, 5.0) == 6.0


def test_closed_forms_bind_the_default_parameters() -> None:
    """leaky_relu's forms see negative_slope = 0.01 (its default) unless given."""
    leaky = activations.get("leaky_relu").closed_forms
    assert leaky.second_moment is not None and leaky.mean is not None
    assert leaky.second_moment(2.0) == pytest.approx(2.0 * (1 + 1e-4) / 2)
    assert leaky.mean(1.0) == pytest.approx(0.99 / math.sqrt(2 * math.pi))
    assert activations.get("tanh").closed_forms == ClosedForms()


@pytest.mark.parametrize("spec", ["tanh", "relu", "leaky_relu:negative_slope=0.2", "gelu", "selu"])
def test_apply_and_derivative(spec: str) -> None:
    """φ and φ′ on float64 arrays of any shape, against torch and a central difference."""
    act = activations.get(spec)
    z = np.linspace(-3, 3, 12).reshape(3, 4) + 0.01  # off the kink at 0
    assert np.array_equal(act.apply(z), act(torch.from_numpy(z)).numpy())
    h = 1e-6
    numeric = (act.apply(z + h) - act.apply(z - h)) / (2 * h)
    np.testing.assert_allclose(act.derivative(z), numeric, rtol=1e-6, atol=1e-8)

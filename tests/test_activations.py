"""Tests of the activation registry: functions, torch's gains, computed gains, errors.

Every expected value here is computed independently of ``initsuite``: torch's gains come from
``torch.nn.init.calculate_gain``, second moments from ``scipy.integrate.quad`` over reference
formulas written below in NumPy/SciPy (not the registry's torch functions).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import integrate, special

from initsuite import activations
from initsuite.core.errors import InitsuiteError
from initsuite.core.quadrature import gaussian_expectation, hermite_rule, normal_rule

# -- independent references ------------------------------------------------------------------

# SELU's constants as published (Klambauer et al. 2017), to more digits than float64 holds.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _softplus(x: float) -> float:
    return float(np.logaddexp(0.0, x))  # log(1 + e^x) without overflow


def _leaky(slope: float) -> Callable[[float], float]:
    return lambda x: x if x > 0 else slope * x


def _elu(alpha: float) -> Callable[[float], float]:
    return lambda x: x if x > 0 else alpha * math.expm1(x)


# Scalar reference formulas, one per activation spec. A newly registered activation fails
# test_every_activation_has_a_reference until its formula is added here.
REFERENCE: dict[str, Callable[[float], float]] = {
    "linear": lambda x: x,
    "tanh": math.tanh,
    "sigmoid": lambda x: float(special.expit(x)),
    "relu": lambda x: max(x, 0.0),
    "leaky_relu": _leaky(0.01),
    "leaky_relu:negative_slope=0.2": _leaky(0.2),
    "selu": lambda x: SELU_SCALE * (x if x > 0 else SELU_ALPHA * math.expm1(x)),
    "elu": _elu(1.0),
    "elu:alpha=0.5": _elu(0.5),
    "gelu": lambda x: x * float(special.ndtr(x)),  # exact GELU, x·Φ(x) (torch's default)
    "silu": lambda x: x * float(special.expit(x)),
    "softplus": _softplus,
    "mish": lambda x: x * math.tanh(_softplus(x)),
}

TORCH_GAIN_NAMES = ["linear", "sigmoid", "tanh", "relu", "leaky_relu", "selu"]
COMPUTED_GAIN_NAMES = ["elu", "gelu", "silu", "softplus", "mish"]


def _density(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _quad_expectation(f: Callable[[float], float], q: float = 1.0) -> float:
    """E[f(sqrt(q)·z)], z ~ N(0, 1), by adaptive quadrature split at the kinks' location 0."""
    total = 0.0
    for lo, hi in ((-math.inf, 0.0), (0.0, math.inf)):
        value, _ = integrate.quad(
            lambda z: f(math.sqrt(q) * z) * _density(z), lo, hi, epsabs=1e-14, epsrel=1e-13
        )
        total += value
    return total


def _single_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    assert exc.value.__suppress_context__ or exc.value.__cause__ is None
    return msg


# -- torch's gains ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", TORCH_GAIN_NAMES)
def test_torch_gain_equals_calculate_gain(name: str) -> None:
    assert activations.get(name).torch_gain == torch.nn.init.calculate_gain(name)


def test_torch_gain_leaky_relu_with_slope() -> None:
    act = activations.get("leaky_relu:negative_slope=0.2")
    assert act.torch_gain == torch.nn.init.calculate_gain("leaky_relu", 0.2)
    assert act.gain == act.torch_gain
    assert act.gain_source == "torch"


@pytest.mark.parametrize("name", COMPUTED_GAIN_NAMES)
def test_no_torch_gain_means_computed(name: str) -> None:
    act = activations.get(name)
    assert act.torch_gain is None
    assert act.gain == act.computed_gain
    assert act.gain_source == "computed"


# -- computed gains --------------------------------------------------------------------------


def test_every_activation_has_a_reference() -> None:
    missing = [n for n in activations.names() if n not in REFERENCE]
    assert not missing, f"add a reference formula to REFERENCE for {missing}"


@pytest.mark.parametrize("spec", sorted(REFERENCE))
def test_computed_gain_matches_quad(spec: str) -> None:
    second_moment = _quad_expectation(lambda x: REFERENCE[spec](x) ** 2)
    expected = 1.0 / math.sqrt(second_moment)
    act = activations.get(spec)
    # quad reports errors near 1e-14 on these integrals and the library's composite
    # Gauss-Legendre rule is accurate to ~1e-14, so 1e-8 is loose for honest agreement yet
    # 5000x tighter than the gap between exact GELU and its tanh approximation (5e-5).
    assert act.computed_gain == pytest.approx(expected, abs=1e-8, rel=0)
    assert act.second_moment == pytest.approx(second_moment, abs=1e-8, rel=0)


def test_second_moment_closed_forms() -> None:
    # E[relu(z)^2] = E[z^2]/2 = 1/2 and E[z^2] = 1 exactly; the quadrature rule integrates
    # these polynomial-times-Gaussian pieces to rounding (sum of ~2000 float64 terms).
    assert activations.get("relu").second_moment == pytest.approx(0.5, abs=1e-13, rel=0)
    assert activations.get("linear").second_moment == pytest.approx(1.0, abs=1e-13, rel=0)
    slope = 0.2
    leaky = activations.get(f"leaky_relu:negative_slope={slope}")
    assert leaky.second_moment == pytest.approx((1 + slope**2) / 2, abs=1e-13, rel=0)
    # relu/leaky_relu: the computed gain is exactly torch's sqrt(2 / (1 + slope^2)).
    assert leaky.computed_gain == pytest.approx(leaky.torch_gain, abs=1e-12, rel=0)


def test_selu_fixed_point() -> None:
    # SELU's (λ, α) are chosen so that N(0, 1) maps to mean 0 and second moment 1 (the
    # self-normalising fixed point), so its computed gain is 1 (torch's 3/4 is empirical).
    # The float64 constants are exact to ~1e-16 and the rule to ~1e-14: allow 1e-12.
    selu = activations.get("selu")
    assert selu.second_moment == pytest.approx(1.0, abs=1e-12, rel=0)
    assert selu.computed_gain == pytest.approx(1.0, abs=1e-12, rel=0)
    mean = gaussian_expectation(lambda z: selu(torch.from_numpy(z)).numpy())
    assert mean == pytest.approx(0.0, abs=1e-12)


def test_tanh_computed_gain_is_the_empirical_159() -> None:
    # The variance-preserving tanh gain, 1.5925..., often quoted as "1.59" (vs torch's 5/3).
    assert activations.get("tanh").computed_gain == pytest.approx(1.5925, abs=5e-5, rel=0)


# -- quadrature ------------------------------------------------------------------------------


@pytest.mark.parametrize("q", [0.1, 0.5, 2.5, 10.0])
@pytest.mark.parametrize(
    "f",
    [
        pytest.param(lambda x: np.tanh(x) ** 2, id="tanh2"),
        pytest.param(lambda x: np.maximum(x, 0.0) ** 3, id="relu3"),
        pytest.param(lambda x: np.cos(x), id="cos"),
    ],
)
def test_gaussian_expectation_against_quad(f: Callable[[np.ndarray], np.ndarray], q: float) -> None:
    expected = _quad_expectation(lambda x: float(f(np.float64(x))), q=q)
    # Both sides are float64 quadratures good to ~1e-13 on these smooth/once-kinked integrands.
    assert gaussian_expectation(f, q=q) == pytest.approx(expected, abs=1e-10, rel=0)


def test_gaussian_expectation_closed_forms() -> None:
    # E[(sqrt(q) z)^2] = q and E[cos(sqrt(q) z)] = exp(-q/2), exactly.
    for q in (0.0, 0.3, 4.0):
        assert gaussian_expectation(lambda x: x**2, q=q) == pytest.approx(q, abs=1e-12)
        assert gaussian_expectation(np.cos, q=q) == pytest.approx(math.exp(-q / 2), abs=1e-12)


def test_gaussian_expectation_is_vectorised_over_q() -> None:
    q = np.array([[0.0, 0.3], [4.0, 1.0]])
    got = gaussian_expectation(np.cos, q)
    assert got.shape == (2, 2)
    np.testing.assert_allclose(got, np.exp(-q / 2), rtol=0, atol=1e-12)
    assert isinstance(gaussian_expectation(np.cos, 0.3), float)


@pytest.mark.parametrize(
    "rule",
    [hermite_rule(), normal_rule(), normal_rule(8)],
    ids=["hermite", "legendre24", "legendre8"],
)
def test_rules_integrate_gaussian_moments(rule: tuple[np.ndarray, np.ndarray]) -> None:
    # E[1] = 1, E[z⁴] = 3, E[z⁶] = 15: Gauss–Hermite is exact for these degrees (< 128), the
    # panels are exact per panel, and the mass beyond |z| = 12 is ~1e-33; float64 sums: 1e-13.
    nodes, weights = rule
    assert weights.sum() == pytest.approx(1.0, rel=1e-13)
    assert weights @ nodes**4 == pytest.approx(3.0, rel=1e-13)
    assert weights @ nodes**6 == pytest.approx(15.0, rel=1e-13)


def test_gaussian_expectation_rejects_negative_variance() -> None:
    with pytest.raises(ValueError, match="q must be >= 0"):
        gaussian_expectation(np.cos, q=-1.0)


# -- the functions ---------------------------------------------------------------------------

FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda x: x,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,
    "leaky_relu:negative_slope=0.2": lambda x: F.leaky_relu(x, 0.2),
    "selu": F.selu,
    "elu": F.elu,
    "elu:alpha=0.5": lambda x: F.elu(x, 0.5),
    "gelu": F.gelu,
    "silu": F.silu,
    "softplus": F.softplus,
    "mish": F.mish,
}


def test_every_activation_has_a_function_case() -> None:
    missing = [n for n in activations.names() if n not in FUNCTIONS]
    assert not missing, f"add a torch.nn.functional case to FUNCTIONS for {missing}"


@pytest.mark.parametrize("spec", sorted(FUNCTIONS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_activation_applies_the_torch_function(spec: str, dtype: torch.dtype) -> None:
    x = torch.linspace(-8.0, 8.0, 2001, dtype=dtype)
    assert torch.equal(activations.get(spec)(x), FUNCTIONS[spec](x))


@pytest.mark.parametrize("spec", sorted(FUNCTIONS))
def test_activation_matches_reference_formula(spec: str) -> None:
    # Ties the torch functions to the scalar formulas the gains are checked against.
    xs = np.linspace(-8.0, 8.0, 161)
    got = activations.get(spec)(torch.from_numpy(xs)).numpy()
    want = np.array([REFERENCE[spec](float(x)) for x in xs])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


# -- registry and specs ----------------------------------------------------------------------


def test_names_and_list() -> None:
    names = activations.names()
    assert names == sorted(names)
    assert set(TORCH_GAIN_NAMES + COMPUTED_GAIN_NAMES) <= set(names)
    assert activations.list("s*") == ["selu", "sigmoid", "silu", "softplus"]
    assert activations.list("nope*") == []


def test_params_are_converted_and_canonical() -> None:
    act = activations.get(" leaky_relu : negative_slope = 0.20 ")
    assert act.params == {"negative_slope": 0.2}
    assert act.spec == "leaky_relu:negative_slope=0.2"
    assert act == activations.get("leaky_relu:negative_slope=0.2")
    assert hash(act) == hash(activations.get("leaky_relu:negative_slope=0.2"))
    assert activations.get(act) is act


def test_registering_a_name_twice_raises() -> None:
    before = dict(activations.registry._REGISTRY)
    with pytest.raises(ValueError, match="'tanh' is already registered"):
        activations.register("tanh", formula="x")(lambda x: x)
    assert before == activations.registry._REGISTRY


def test_unknown_activation_suggests_nearest() -> None:
    with pytest.raises(InitsuiteError) as exc:
        activations.get("tahn")
    msg = _single_line(exc)
    assert "unknown activation 'tahn'" in msg
    assert "did you mean 'tanh'?" in msg


def test_unknown_activation_parameter_suggests_nearest() -> None:
    with pytest.raises(InitsuiteError) as exc:
        activations.get("elu:alpa=0.5")
    msg = _single_line(exc)
    assert "no parameter 'alpa'" in msg
    assert "did you mean 'alpha'?" in msg


def test_parameter_on_activation_without_parameters() -> None:
    with pytest.raises(InitsuiteError) as exc:
        activations.get("tanh:slope=1")
    assert "(parameters: none)" in _single_line(exc)


def test_bad_activation_parameter_value() -> None:
    with pytest.raises(InitsuiteError) as exc:
        activations.get("leaky_relu:negative_slope=steep")
    msg = _single_line(exc)
    assert "negative_slope='steep'" in msg
    assert "expected float" in msg


def test_malformed_activation_spec() -> None:
    with pytest.raises(InitsuiteError) as exc:
        activations.get("leaky_relu:")
    assert "activation spec 'leaky_relu:'" in _single_line(exc)


def test_table() -> None:
    table = activations.table()
    assert list(table.columns) == [
        "activation",
        "formula",
        "params",
        "torch_gain",
        "computed_gain",
        "gain",
        "gain_source",
    ]
    assert list(table["activation"]) == activations.names()
    source = dict(zip(table["activation"], table["gain_source"], strict=True))
    assert {n: source[n] for n in TORCH_GAIN_NAMES} == dict.fromkeys(TORCH_GAIN_NAMES, "torch")
    assert {n: source[n] for n in COMPUTED_GAIN_NAMES} == dict.fromkeys(
        COMPUTED_GAIN_NAMES, "computed"
    )
    rows = table.set_index("activation")
    assert rows.loc["tanh", "gain"] == 5.0 / 3
    assert rows.loc["gelu", "gain"] == rows.loc["gelu", "computed_gain"]
    assert rows.loc["leaky_relu", "params"] == "negative_slope=0.01"
    assert rows["torch_gain"].isna().sum() == len(COMPUTED_GAIN_NAMES)

"""initsuite's ``dks:`` and ``tat:`` activations against DeepMind's dks package, live (issue 31,
item 5): for a plain MLP of D nonlinear layers (dks's ``subnet_max_func`` composes the local
map D times), the constants solved by initsuite's own quadrature equal dks's, α, β, γ, δ
(dks's input_scale, input_shift, output_scale, output_shift) and the leaky ReLU's negative
slope, to 1e-6 absolute (observed: below 2e-7 on γ ≈ 20, 1e-8 elsewhere); and the
transformed functions (dks's PyTorch ones) agree on a grid of inputs.

dks solves each (method, depth) once, every activation in one call (~1-2 s a call, module
fixtures); its ``get_transformed_activations`` is ``_get_activations_params`` followed by
``_transform_activation``, which the tests call apart to compare the constants too.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch

from initsuite import activations
from initsuite.core.errors import InitsuiteError

dks = pytest.importorskip("dks")
pytestmark = pytest.mark.live("dks")  # every test here compares with the installed dks

from dks.base import activation_transform as dks_at  # noqa: E402
from dks.pytorch.activation_transform import _get_pytorch_activation_function  # noqa: E402

DEPTHS = (10, 50, 200)
ZETA, TAU, ETA = 1.5, 0.3, 0.9
# initsuite's name -> dks's (initsuite's gelu is the exact one, x·Φ(x))
SMOOTH = {"tanh": "tanh", "softplus": "softplus", "gelu": "gelu_exact"}
NAMES = {"input_scale": "alpha", "input_shift": "beta", "output_scale": "gamma",
         "output_shift": "delta", "negative_slope": "negative_slope"}  # fmt: skip
TOL = 1e-6  # absolute
GRID = torch.linspace(-6.0, 6.0, 241, dtype=torch.float64)


def _chain(depth: int) -> Callable[[float, Callable[[float], float]], float]:
    """dks's subnetwork maximizing function of a plain MLP: the local map composed."""

    def subnet_max(x: float, r: Callable[[float], float]) -> float:
        for _ in range(depth):
            x = r(x)
        return x

    return subnet_max


def _dks_params(names: list[str], method: str, depth: int) -> dict[str, dict[str, Any]]:
    params = {"dks_params": {"c_slope_1_target": ZETA}} if method == "DKS" else {
        "tat_params": {"c_val_0_target": ETA, "c_curve_target": TAU}}  # fmt: skip
    with warnings.catch_warnings():  # dks's autograd overflows cosh far out in the tails
        warnings.simplefilter("ignore", RuntimeWarning)
        return dks_at._get_activations_params(names, method=method,
                                              subnet_max_func=_chain(depth), **params)  # fmt: skip


@pytest.fixture(scope="module")
def dks_solved() -> dict[tuple[str, int], dict[str, dict[str, Any]] | str]:
    """dks's constants per (method, depth), keyed by dks's activation names; the message of
    its refusal where it refuses."""
    out: dict[tuple[str, int], dict[str, dict[str, Any]] | str] = {}
    for depth in DEPTHS:
        out["DKS", depth] = _dks_params(list(SMOOTH.values()), "DKS", depth)
        out["TAT", depth] = _dks_params(["softplus"], "TAT", depth)
        try:
            out["TAT-leaky", depth] = _dks_params(["leaky_relu"], "TAT", depth)
        except ValueError as exc:
            out["TAT-leaky", depth] = str(exc)
    return out


def _cases() -> list[tuple[str, str, str, int]]:
    """(initsuite spec, fixture key, dks name, depth) of every comparison."""
    out = []
    for depth in DEPTHS:
        out += [(f"dks:{ours}:zeta={ZETA},depth={depth}", "DKS", theirs, depth)
                for ours, theirs in SMOOTH.items()]  # fmt: skip
        out.append((f"tat:softplus:tau={TAU},depth={depth}", "TAT", "softplus", depth))
        out.append((f"tat:leaky_relu:eta={ETA},depth={depth}", "TAT-leaky", "leaky_relu", depth))
    return out


@pytest.mark.parametrize(("spec", "method", "name", "depth"), _cases())
def test_constants_and_functions_equal_dks(
    dks_solved: dict[tuple[str, int], Any], spec: str, method: str, name: str, depth: int
) -> None:
    solved = dks_solved[method, depth]
    if isinstance(solved, str):  # out of reach: dks refuses, and initsuite does in one line
        assert "Maximum evaluations" in solved and (method, depth) == ("TAT-leaky", 10)
        with pytest.raises(InitsuiteError, match="out of reach") as exc:
            activations.get(spec)
        assert "\n" not in str(exc.value)
        return
    theirs, act = solved[name], activations.get(spec)
    s = act.shaping
    for key, value in theirs.items():
        assert abs(getattr(s, NAMES[key]) - float(value)) < TOL, (spec, key)
    # what dks leaves out is the identity: α = 1, β = 0, δ = 0
    for key in set(NAMES) - set(theirs) - {"negative_slope"}:
        assert getattr(s, NAMES[key]) == (1.0 if key == "input_scale" else 0.0), (spec, key)
    base = _get_pytorch_activation_function(name)
    phi_hat = dks_at._transform_activation(base, theirs)
    diff = (act(GRID) - phi_hat(GRID)).abs().max().item()
    assert diff < TOL * max(1.0, s.gamma), (spec, diff)
    assert math.isfinite(diff)

"""LSUV (Mishkin & Matas 2016) in one place: the rescaling that the registered scheme, the
sweep engine and ``initsuite.apply`` all use."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initsuite
from initsuite.schemes.lsuv import lsuv, rescale_to_unit_std


def test_rescaling_stops_within_tol_of_unit_std() -> None:
    x = torch.randn(64, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    w = torch.randn(16, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    stds: list[float] = []

    def output(weight: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, weight)
        stds.append(float(y.std()))
        return y

    rescale_to_unit_std(w, output, tol=0.01, max_iter=10)
    # a linear layer's output std is proportional to the weight: one division lands on 1
    assert stds[0] > 2 and abs(stds[-1] - 1) < 0.01 and len(stds) == 2
    assert float(F.linear(x, w).std()) == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("out", [None, torch.zeros(4, 4), torch.full((4, 4), float("inf"))])
def test_rescaling_leaves_the_weight_when_the_output_says_nothing(out) -> None:
    w = torch.randn(4, 4, generator=torch.Generator().manual_seed(2))
    before = w.clone()
    calls = []
    rescale_to_unit_std(w, lambda _w: calls.append(1) or out, tol=0.1, max_iter=5)
    assert torch.equal(w, before) and len(calls) == 1


def test_max_iter_bounds_the_forward_passes() -> None:
    w = torch.ones(2, 2)
    calls = []

    def output(weight: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return torch.tensor([0.0, 10.0])  # never moves: std stays 7.07

    rescale_to_unit_std(w, output, tol=0.1, max_iter=3)
    assert len(calls) == 3


def test_the_scheme_and_apply_draw_the_same_bits() -> None:
    """One Linear layer: the registered scheme given its layer's output as ``data`` and
    ``initsuite.apply`` running the model give the same weight, bit for bit."""
    x = torch.randn(32, 24, generator=torch.Generator().manual_seed(3))
    model = nn.Linear(24, 16, bias=False)
    initsuite.apply(model, "lsuv:start=normal,tol=0.001", inputs=x,
                    generator=torch.Generator().manual_seed(4))  # fmt: skip
    w = torch.empty(16, 24)
    lsuv(w, tol=0.001, start="normal", generator=torch.Generator().manual_seed(4),
         data=lambda weight: F.linear(x, weight))  # fmt: skip
    assert torch.equal(model.weight.detach(), w)
    assert float(F.linear(x, w).std()) == pytest.approx(1.0, abs=0.001)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"tol": 0}, "tol must be > 0"), ({"max_iter": 0}, "max_iter must be >= 1"),
     ({"start": "lsuv"}, "start must be another scheme")],
)  # fmt: skip
def test_a_direct_call_checks_its_parameters(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        lsuv(torch.empty(4, 4), **kwargs)

"""LSUV's stopping rule is the paper's: Mishkin & Matas (2016), Algorithm 1, rescale while
|Var(B_L) - 1| >= Tol_var (0.1 in the paper), a tolerance on the variance, not on the std."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import run_cli

from initsuite import schemes
from initsuite.core.errors import InitsuiteError
from initsuite.schemes.lsuv import lsuv, rescale_to_unit_std


def _paper_lsuv(
    weight: torch.Tensor, output: Callable[[torch.Tensor], torch.Tensor], tol_var: float,
    t_max: int,
) -> int:  # fmt: skip
    """Algorithm 1 of Mishkin & Matas, written out: while |Var(B_L) - 1| >= Tol_var and
    T_i < T_max, W_L = W_L / sqrt(Var(B_L)). Returns the forward passes it made."""
    passes = 0
    while passes < t_max:
        var = float(output(weight).to(torch.float64).var())
        passes += 1
        if abs(var - 1.0) < tol_var:
            break
        weight.div_(math.sqrt(var))
    return passes


def _with_variance(var: float) -> torch.Tensor:
    """[a, -a] with sample variance (correction=1) 2a² = ``var``."""
    a = math.sqrt(var / 2)
    return torch.tensor([a, -a], dtype=torch.float64)


def _scripted(variances: list[float]) -> tuple[Callable[[torch.Tensor], torch.Tensor], list[int]]:
    """A layer whose successive outputs have the given variances, whatever the weight: the
    stopping rule alone decides how many are read."""
    calls: list[int] = []

    def output(_weight: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return _with_variance(variances[len(calls) - 1])

    return output, calls


def test_a_variance_of_1_15_is_rescaled_again_though_its_std_is_within_0_1() -> None:
    # Var 4, then 1.15 (std 1.0724: |std - 1| = 0.072 < 0.1 would stop), then 1.
    output, calls = _scripted([4.0, 1.15, 1.0])
    w = torch.ones(3, dtype=torch.float64)
    rescale_to_unit_std(w, output, tol=0.1, max_iter=10)
    assert len(calls) == 3  # the std rule stopped after 2
    torch.testing.assert_close(w, torch.full((3,), 1 / (2 * math.sqrt(1.15)), dtype=torch.float64),
                               rtol=1e-15, atol=0)  # fmt: skip


@pytest.mark.parametrize(
    ("first", "rescaled"),
    [(0.893, True),  # std 0.945: within 0.1 of 1 in std, not in variance
     (0.905, False),  # std 0.951: within both
     (1.09, False),  # std 1.044: within both
     (1.11, True),  # std 1.054: within 0.1 in std, not in variance
     (1.3, True)],  # within neither
)  # fmt: skip
def test_the_first_output_is_left_alone_exactly_when_its_variance_is_within_tol(
    first: float, rescaled: bool
) -> None:
    output, calls = _scripted([first, 1.0])
    w = torch.ones(2, dtype=torch.float64)
    rescale_to_unit_std(w, output, tol=0.1, max_iter=10)
    assert len(calls) == (2 if rescaled else 1)
    assert w[0].item() == pytest.approx(1 / math.sqrt(first) if rescaled else 1.0, rel=1e-15)


@pytest.mark.parametrize("tol", [0.01, 0.1, 0.3])
def test_a_layer_with_a_bias_matches_algorithm_1(tol: float) -> None:
    """Wx + b is not proportional to W, so one division does not land on 1: the number of
    passes and the weight are those of the paper's loop, written out above."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 16, generator=gen, dtype=torch.float64)
    w0 = 3 * torch.randn(8, 16, generator=gen, dtype=torch.float64)
    b = torch.randn(8, generator=gen, dtype=torch.float64)  # Var(b) ~ 1: several passes
    passes: list[int] = []

    def output(weight: torch.Tensor) -> torch.Tensor:
        passes.append(1)
        return F.linear(x, weight, b)

    w = w0.clone()
    rescale_to_unit_std(w, output, tol=tol, max_iter=50)
    ref = w0.clone()
    assert len(passes) == _paper_lsuv(ref, lambda weight: F.linear(x, weight, b), tol, 50)
    assert len(passes) >= 2
    # std vs sqrt(var): the same float64 division up to an ulp per pass
    torch.testing.assert_close(w, ref, rtol=1e-13, atol=0)
    assert abs(float(F.linear(x, w, b).var()) - 1.0) < tol


def test_the_registered_scheme_stops_on_the_variance() -> None:
    output, calls = _scripted([4.0, 1.15, 1.0])
    lsuv(torch.empty(4, 4), start="ones", data=output)
    assert len(calls) == 3


def test_docs_and_metadata_say_the_tolerance_is_on_the_variance() -> None:
    info = schemes.info("lsuv")
    assert "Var" in info.variance_formula and "tol" in info.variance_formula
    assert "tolerance on the variance" in (lsuv.__doc__ or "")
    assert "variance is within ``tol``" in (rescale_to_unit_std.__doc__ or "")
    assert info.params["tol"].default == 0.1  # the paper's Tol_var


@pytest.mark.parametrize("tol", ["0", "-0.1", "nan", "inf", "x"])
def test_error_a_bad_tol_is_one_line(tol: str) -> None:
    with pytest.raises(InitsuiteError) as exc:
        schemes.get(f"lsuv:tol={tol}").resolve()
    assert "tol" in str(exc.value) and "\n" not in str(exc.value)


def test_error_a_bad_tol_on_the_cli_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o"
    code, _, err = run_cli(["sweep", "--schemes", "lsuv:tol=0", "--activations", "tanh",
                            "--depths", "2", "--widths", "4", "--seeds", "1", "--out", str(out),
                            "--quiet"], capsys)  # fmt: skip
    assert code == 2
    assert err.strip().splitlines() == [err.strip()] and "tol must be > 0" in err
    assert not out.exists()

"""The init and input Deep Kernel Shaping assumes (issue 31, item 2): scaled uniform orthogonal
weights (dense and delta) that keep q = ‖x‖²/dim through every layer, and per-example input
normalisation to q = 1; checked by their laws here and against DeepMind's ``dks``, live."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

from initsuite import schemes
from initsuite.core.errors import InitsuiteError
from initsuite.engine.draws import CellDraws, normalize_q
from initsuite.report.markdown import render
from initsuite.schemes.isometric import delta_scaled_orthogonal, scaled_orthogonal, suo_scale
from initsuite.schemes.structured import orthogonal

# float64 products of at most 64 terms: the orthogonality and q are exact to ~64 · 2⁻⁵² each
TOL = 1e-12


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def q_of(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    return x.square().mean(dim=dim)


@pytest.mark.parametrize("shape", [(32, 32), (64, 16), (16, 64), (12, 4, 3, 3)])
def test_scaled_orthogonal_is_orthogonal_times_the_rescale(shape: tuple[int, ...]) -> None:
    rows, cols = shape[0], math.prod(shape[1:])
    w = scaled_orthogonal(torch.empty(shape, dtype=torch.float64), gain=1.5, generator=gen())
    q = orthogonal(torch.empty(shape, dtype=torch.float64), generator=gen())
    assert torch.equal(w, q * 1.5 * max(math.sqrt(rows / cols), 1.0))
    assert schemes.get("scaled_orthogonal:gain=1.5").variance(shape) == pytest.approx(1.5**2 / cols)


@pytest.mark.parametrize(("out", "inp"), [(64, 16), (16, 64), (32, 32)])
def test_scaled_orthogonal_linear_keeps_q(out: int, inp: int) -> None:
    """Inputs √in · e_i (q = 1 each): a widening or square layer maps every one to q = 1
    (orthonormal columns); a narrowing one keeps q = 1 on average over the basis, exactly
    (Σ_i ‖W e_i‖² = ‖W‖_F² = out for orthonormal rows)."""
    w = scaled_orthogonal(torch.empty(out, inp, dtype=torch.float64), generator=gen())
    q_out = q_of(math.sqrt(inp) * torch.eye(inp, dtype=torch.float64) @ w.T)
    if out >= inp:
        torch.testing.assert_close(q_out, torch.ones_like(q_out), rtol=TOL, atol=TOL)
    assert float(q_out.mean()) == pytest.approx(1.0, abs=TOL)
    # orthogonal's own (no rescale) would shrink a widening layer's q by in/out
    plain = orthogonal(torch.empty(out, inp, dtype=torch.float64), generator=gen())
    q_plain = q_of(math.sqrt(inp) * torch.eye(inp, dtype=torch.float64) @ plain.T)
    assert float(q_plain.mean()) == pytest.approx(min(inp / out, 1.0), abs=TOL)


@pytest.mark.parametrize(("out", "inp"), [(32, 8), (8, 32)])
def test_delta_scaled_orthogonal_conv_keeps_q_at_every_pixel(out: int, inp: int) -> None:
    w = delta_scaled_orthogonal(torch.empty(out, inp, 3, 3, dtype=torch.float64), generator=gen())
    assert w.abs().sum() == w[:, :, 1, 1].abs().sum()  # only the centre tap is non-zero
    # one image per basis vector of the channels, that vector at every pixel (q = 1)
    x = math.sqrt(inp) * torch.eye(inp, dtype=torch.float64)[:, :, None, None].expand(-1, -1, 5, 5)
    q_out = q_of(F.conv2d(x, w, padding=1))  # (inp, 5, 5): per example and pixel
    target = torch.ones_like(q_out)
    if out >= inp:
        torch.testing.assert_close(q_out, target, rtol=TOL, atol=TOL)
    torch.testing.assert_close(q_out.mean(dim=0), target[0], rtol=TOL, atol=TOL)
    assert schemes.info("delta_scaled_orthogonal").taps == "centre"


def test_delta_scaled_orthogonal_refuses_even_kernels() -> None:
    with pytest.raises(ValueError, match=r"odd kernel sizes.*'scaled_orthogonal'"):
        delta_scaled_orthogonal(torch.empty(8, 8, 4, 4))
    with pytest.raises(InitsuiteError, match="odd kernel"):
        schemes.get("delta_scaled_orthogonal").check_shape((8, 8, 3, 2))


def test_normalize_q_sets_every_example_to_q_one() -> None:
    x = torch.randn(5, 7, generator=gen(), dtype=torch.float64) * torch.arange(1.0, 6.0)[:, None]
    x[2] = 0.0
    y = normalize_q(x)
    assert torch.equal(y[2], x[2])  # no direction to keep
    rows = [0, 1, 3, 4]
    torch.testing.assert_close(q_of(y)[rows], torch.ones(4, dtype=torch.float64))
    # the direction is kept: only each row's scale changes
    torch.testing.assert_close(
        y[rows] * x[rows].norm(dim=1, keepdim=True), x[rows] * y[rows].norm(dim=1, keepdim=True)
    )
    image = normalize_q(torch.randn(2, 3, 4, 4, generator=gen(), dtype=torch.float64))
    torch.testing.assert_close(q_of(image), torch.ones(2, 4, 4, dtype=torch.float64))


def test_normalized_input_law_draws_the_same_numbers() -> None:
    """The normalisation draws nothing: the weights after it are the gaussian cell's."""
    cpu = torch.device("cpu")
    plain, unit = CellDraws(3, cpu, None), CellDraws(3, cpu, None, inputs="normalized")
    x, y = plain.input((4, 6), torch.float64), unit.input((4, 6), torch.float64)
    torch.testing.assert_close(y, normalize_q(x))
    assert torch.equal(torch.randn(3, generator=plain.generator),
                       torch.randn(3, generator=unit.generator))  # fmt: skip
    with pytest.raises(
        InitsuiteError, match="unknown input law 'normalised'; did you mean 'normalized'"
    ):
        CellDraws(0, cpu, None, inputs="normalised")


# -- against dks, live ---------------------------------------------------------------------------


def _dks() -> object:
    pytest.importorskip("dks")
    from dks.pytorch import data_preprocessing, parameter_sampling_functions

    return parameter_sampling_functions.scaled_uniform_orthogonal_, data_preprocessing


def _dks_suo(shape: tuple[int, ...], seed: int, delta: bool) -> torch.Tensor:
    suo, _ = _dks()  # type: ignore[misc]
    torch.manual_seed(seed)  # dks draws from the global generator; its state equals gen(seed)'s
    with pytest.warns(UserWarning) if delta and len(shape) > 2 else _no_warning():
        return suo(torch.empty(shape, dtype=torch.float64), delta=delta)


class _no_warning:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.mark.live("dks")
def test_square_linear_equals_dks_transposed() -> None:
    """dks' PyTorch SUO reads a 2-D weight as [in, out] (JAX's layout): it draws torch's
    orthogonal_ of the transposed shape and transposes back, so a square torch weight is
    the transpose of ours from the same generator state (the same law: Qᵀ is Haar too)."""
    ours = scaled_orthogonal(torch.empty(32, 32, dtype=torch.float64), generator=gen(7))
    assert torch.equal(_dks_suo((32, 32), 7, delta=False), ours.T)


@pytest.mark.live("dks")
def test_dks_reads_a_torch_linear_weight_transposed() -> None:
    """On a widening torch Linear weight (out 64, in 16) dks' rescale is computed from the
    transposed dims: it is max(√(16/64), 1) = 1, our SUO of the (16, 64) [in, out] matrix
    transposed, and that layer shrinks q by in/out = 1/4, where ours keeps it."""
    theirs = _dks_suo((64, 16), 7, delta=False)
    assert torch.equal(theirs, scaled_orthogonal(torch.empty(16, 64, dtype=torch.float64),
                                                 generator=gen(7)).T)  # fmt: skip
    x = 4.0 * torch.eye(16, dtype=torch.float64)  # q = 1 each
    assert float(q_of(x @ theirs.T).mean()) == pytest.approx(16 / 64, abs=TOL)
    assert suo_scale(64, 16) == 2.0


@pytest.mark.live("dks")
@pytest.mark.parametrize("shape", [(16, 16, 3, 3), (8, 8, 5, 1)])
def test_delta_conv_equals_dks_when_in_equals_out(shape: tuple[int, ...]) -> None:
    """dks' Delta SUO of a filter bank draws torch's orthogonal_ of shape[:2] and puts it at
    the centre, as ours; it reads shape[:2] as [in, out], so the two agree value for value
    where in == out, and their rescales are each other's inverse otherwise."""
    ours = delta_scaled_orthogonal(torch.empty(shape, dtype=torch.float64), generator=gen(5))
    assert torch.equal(_dks_suo(shape, 5, delta=True), ours)
    theirs = _dks_suo((32, 8, 3, 3), 5, delta=True)
    ours = delta_scaled_orthogonal(torch.empty(32, 8, 3, 3, dtype=torch.float64), generator=gen(5))
    torch.testing.assert_close(theirs * suo_scale(32, 8), ours, rtol=TOL, atol=TOL)


@pytest.mark.live("dks")
def test_normalize_q_equals_dks_per_location_normalization() -> None:
    _, pre = _dks()  # type: ignore[misc]
    x = torch.randn(3, 24, 4, 4, generator=gen(), dtype=torch.float64)  # channels >= 20: no warning
    theirs = pre.per_location_normalization(x.permute(0, 2, 3, 1), homog_mode="off")
    torch.testing.assert_close(normalize_q(x), theirs.permute(0, 3, 1, 2), rtol=TOL, atol=TOL)
    flat = x.flatten(1)
    torch.testing.assert_close(normalize_q(flat),
                               pre.per_location_normalization(flat, homog_mode="off"))  # fmt: skip


@pytest.mark.parametrize(
    ("scheme", "arch", "n"),
    [
        ("scaled_orthogonal", "mlp", 16 * 4),
        ("delta_scaled_orthogonal", "conv:kernel=3,image=5", 16 * 4 * 25),
    ],
)
def test_sweep_inputs_normalized_keeps_q_one_through_a_linear_suo_net(
    scheme: str, arch: str, n: int
) -> None:
    """End to end: normalised inputs (q = 1 per example, per pixel in a conv) through a linear
    SUO net keep the mean square of every layer at 1 exactly (the delta kernel applies one
    orthogonal matrix at every pixel, so the zero padding changes nothing); the gaussian draw
    is only near 1. ``n``: the entries behind a layer's (sample) std."""
    import initsuite

    kw = dict(depths=3, widths=16, batch=4, dtypes="float64", timing=False, progress=False,
              archs=arch)  # fmt: skip

    def m2(inputs: str) -> list[float]:
        res = initsuite.sweep(scheme, "linear", inputs=inputs, **kw)  # type: ignore[arg-type]
        assert res.meta["config"]["inputs"] == inputs
        assert re.search(rf"\| inputs +\| {inputs} +\|", render(res))  # the report says which
        rows = res.layers
        return list(rows["std"] ** 2 * (n - 1) / n + rows["mean"] ** 2)

    assert m2("normalized") == pytest.approx([1.0] * 3, abs=TOL)
    assert all(abs(v - 1.0) > 1e-3 for v in m2("gaussian"))
    with pytest.raises(InitsuiteError, match="unknown input law 'unit'"):
        initsuite.sweep(scheme, "linear", inputs="unit", **kw)  # type: ignore[arg-type]

"""Tests of the extra schemes (``variance_scaling``, ``delta_orthogonal``, ``zero``) and of
every registered scheme in float64, float32, float16 and bfloat16.

Truth is independent of the code under test: ``torch.nn.init`` under the same generator state,
scipy's truncated normal and Hadamard matrices, and laws, fans and matrices written out here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import scipy.linalg
import torch
from helpers import distinct_laws
from scipy import stats
from torch import Tensor, nn

from initsuite import schemes
from initsuite.core.errors import InitsuiteError
from initsuite.schemes.fan_scaling import TRUNCATED_NORMAL_STD
from initsuite.schemes.isometric import sylvester_hadamard, zero_matrix

init = torch.nn.init
SEED = 1234


def _gen(seed: int = SEED) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    """The message, checked to be a single line with no chained traceback shown."""
    msg = str(exc.value)
    assert "\n" not in msg, msg
    assert exc.value.__cause__ is None
    assert exc.value.__context__ is None or exc.value.__suppress_context__
    return msg


# -- variance_scaling ------------------------------------------------------------------------

# A Linear weight (out, in) = (300, 100) and a conv kernel (64, 32, 3, 3) with receptive field
# 9: every mode gives a different n, so a swapped or missing fan changes the std by >= 22%.
LIN = (300, 100)
CONV = (64, 32, 3, 3)
N_OF = {
    (LIN, "fan_in"): 100,
    (LIN, "fan_out"): 300,
    (LIN, "fan_avg"): 200,
    (CONV, "fan_in"): 32 * 9,
    (CONV, "fan_out"): 64 * 9,
    (CONV, "fan_avg"): (32 * 9 + 64 * 9) / 2,
}
MODES = ["fan_in", "fan_out", "fan_avg"]
DISTRIBUTIONS = ["truncated_normal", "normal", "uniform"]

# N(0, 1) truncated to [-2, 2], from scipy: std 0.8796 and kurtosis E[z⁴]/E[z²]² = 2.37.
TN = stats.truncnorm(-2.0, 2.0)
KURTOSIS = {
    "truncated_normal": 3.0 + float(TN.stats(moments="k")),
    "normal": 3.0,
    "uniform": 9.0 / 5.0,
}


def _std_se(std: float, n: int, kurtosis: float) -> float:
    """Standard error of the sample std of n iid draws with this std and kurtosis: the sample
    variance has standard error std²·sqrt((κ - 1)/n), and s = sqrt(s²) halves the relative
    error (delta method), so SE(s) = std·sqrt((κ - 1)/(4n))."""
    return std * math.sqrt((kurtosis - 1.0) / (4.0 * n))


def test_truncated_normal_constant_is_the_std_of_n01_cut_at_2() -> None:
    assert abs(TRUNCATED_NORMAL_STD - TN.std()) <= 1e-15
    assert abs(TRUNCATED_NORMAL_STD - 0.8796) <= 1e-4


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
@pytest.mark.parametrize("shape", [LIN, CONV], ids=["linear", "conv"])
@pytest.mark.parametrize("mode", MODES)
def test_variance_scaling_std_is_sqrt_scale_over_n(
    mode: str, shape: tuple[int, ...], distribution: str
) -> None:
    scale = 2.0
    scheme = schemes.get(f"variance_scaling:scale={scale},mode={mode},distribution={distribution}")
    std = math.sqrt(scale / N_OF[shape, mode])
    assert scheme.variance(shape) == pytest.approx(std**2, rel=1e-12)
    w = scheme(torch.empty(shape, dtype=torch.float64), generator=_gen())
    # 5 standard errors (two-sided 6e-7 for a normal sampling law): 2.6% at the conv's 18432
    # draws, far inside the 22% of the closest wrong fan (fan_avg vs fan_in on the conv) and
    # the 13.7% of a truncated draw without the 0.8796 correction.
    se = _std_se(std, w.numel(), KURTOSIS[distribution])
    assert abs(w.std().item() - std) <= 5 * se
    assert abs(w.mean().item()) <= 5 * std / math.sqrt(w.numel())


def _vs_law(distribution: str, std: float) -> Any:
    if distribution == "truncated_normal":  # Z cut at ±2 in standard units, then rescaled
        return stats.truncnorm(-2.0, 2.0, scale=std / TN.std())
    if distribution == "normal":
        return stats.norm(scale=std)
    limit = math.sqrt(3.0) * std
    return stats.uniform(loc=-limit, scale=2 * limit)


def _ks_pvalue(spec: str, shape: tuple[int, ...], law: Any) -> float:
    w = schemes.get(spec)(torch.empty(shape, dtype=torch.float64), generator=_gen())
    return float(stats.kstest(w.flatten().numpy(), law.cdf).pvalue)


@pytest.mark.parametrize("distribution", DISTRIBUTIONS)
def test_variance_scaling_ks_against_the_exact_law(distribution: str) -> None:
    # Fixed seed; under the right law p is uniform, so p > 1e-4 fails with probability 1e-4.
    spec = f"variance_scaling:scale=0.5,mode=fan_out,distribution={distribution}"
    law = _vs_law(distribution, math.sqrt(0.5 / 300))
    assert _ks_pvalue(spec, LIN, law) > 1e-4


def test_variance_scaling_ks_rejects_torchs_truncation_convention() -> None:
    # The same std, but the normal cut without rescaling (trunc_normal's convention): its std
    # is 0.88 of the requested one, which 30000 draws show at p < 1e-10.
    std = math.sqrt(1.0 / 100)
    assert _ks_pvalue("variance_scaling", LIN, stats.truncnorm(-2, 2, scale=std)) < 1e-10


def test_variance_scaling_truncated_is_bounded_at_two_standard_units() -> None:
    scale, fan_in = 3.0, 256
    w = schemes.get(f"variance_scaling:scale={scale}")(
        torch.empty(512, fan_in, dtype=torch.float64), generator=_gen()
    )
    bound = 2 * math.sqrt(scale / fan_in) / 0.87962566103423978
    # The multiply by std/0.8796 rounds once: 1 ulp of slack.
    assert w.abs().max().item() <= bound * (1 + 2**-52)
    # The cut is at 2 standard units, not further in: P(1.98 < |Z| <= 2) = 0.23% of 131072
    # draws is ~300 values; none would be there with a tighter cut (P(none) ≈ e^-300).
    assert w.abs().max().item() >= bound * 0.99


def test_trunc_normal_and_variance_scaling_truncated_differ_by_0_88() -> None:
    """trunc_normal cuts at absolute values (torch): N(0, 1) cut at ±2 has std 0.8796.
    variance_scaling divides the std by that, so its draw has the std it asks for."""
    shape = (512, 256)
    n = 512 * 256
    torchs = schemes.get("trunc_normal")(torch.empty(shape, dtype=torch.float64), generator=_gen())
    ours = schemes.get("variance_scaling:scale=256,mode=fan_in")(  # scale/n = 1
        torch.empty(shape, dtype=torch.float64), generator=_gen()
    )
    # 5 standard errors of a sample std (_std_se): 0.63% here, against a 12% difference.
    se = _std_se(1.0, n, KURTOSIS["truncated_normal"])
    assert abs(torchs.std().item() - TRUNCATED_NORMAL_STD) <= 5 * se * TRUNCATED_NORMAL_STD
    assert abs(ours.std().item() - 1.0) <= 5 * se
    assert abs(torchs.std().item() - 1.0) > 20 * se
    # both cut at 2 standard units of their own scale
    assert torchs.abs().max() <= 2.0 and ours.abs().max() <= 2.0 / TRUNCATED_NORMAL_STD


def test_variance_scaling_truncated_is_the_inverse_cdf_of_one_uniform_draw() -> None:
    """z = √2·erfinv(u), u ~ U(2Φ(-2) - 1, 2Φ(2) - 1), from one uniform draw of the generator
    (JAX's method), rescaled; the generator advances by exactly one draw of the tensor."""
    gen = _gen()
    w = schemes.get("variance_scaling:scale=2,mode=fan_avg")(torch.empty(CONV), generator=gen)
    ref_gen = _gen()
    phi2 = 0.5 * (1 + math.erf(2 / math.sqrt(2)))
    u = torch.empty(CONV).uniform_(1 - 2 * phi2, 2 * phi2 - 1, generator=ref_gen)
    std = math.sqrt(2.0 / N_OF[CONV, "fan_avg"])
    z = (torch.erfinv(u) * math.sqrt(2)).clamp(-2, 2)
    torch.testing.assert_close(w, z * (std / 0.87962566103423978), rtol=1e-6, atol=0)
    assert torch.equal(gen.get_state(), ref_gen.get_state())


# Specs that are torch's (or lecun's) schemes under other names; the stds are the same number
# computed in another order (sqrt(2/n) vs sqrt(2)/sqrt(n)), a few ulps apart, so float64
# values agree to 1e-13 of their scale while a wrong fan or scale is off by >= 22%.
NAMESAKES: dict[str, Callable[[Tensor, torch.Generator], Any]] = {
    "variance_scaling:scale=2,distribution=normal": (
        lambda t, g: init.kaiming_normal_(t, generator=g)
    ),
    "variance_scaling:scale=2,mode=fan_out,distribution=uniform": (
        lambda t, g: init.kaiming_uniform_(t, mode="fan_out", generator=g)
    ),
    "variance_scaling:mode=fan_avg,distribution=uniform": (
        lambda t, g: init.xavier_uniform_(t, generator=g)
    ),
    "variance_scaling:mode=fan_avg,distribution=normal": (
        lambda t, g: init.xavier_normal_(t, generator=g)
    ),
    "variance_scaling:distribution=normal": (
        lambda t, g: schemes.get("lecun_normal")(t, generator=g)
    ),
}


@pytest.mark.parametrize("shape", [LIN, CONV], ids=["linear", "conv"])
@pytest.mark.parametrize("spec", list(NAMESAKES))
def test_variance_scaling_equals_its_torch_namesakes(spec: str, shape: tuple[int, ...]) -> None:
    twin = NAMESAKES[spec]
    ours = schemes.get(spec)(torch.empty(shape, dtype=torch.float64), generator=_gen())
    theirs = twin(torch.empty(shape, dtype=torch.float64), _gen())
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-13 * theirs.abs().max().item())


@pytest.mark.parametrize("shape", [(48, 24), (24, 48), (16, 8, 3, 3)])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("distribution", ["normal", "uniform"])
def test_variance_scaling_shared_draw_is_its_own_draw(
    distribution: str, mode: str, shape: tuple[int, ...]
) -> None:
    scheme = schemes.get(f"variance_scaling:scale=1.5,mode={mode},distribution={distribution}")
    fan_in, fan_out = shape[1] * math.prod(shape[2:]), shape[0] * math.prod(shape[2:])
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    draw = scheme.shared_draw(shape, scheme.resolve(None))
    assert draw is not None
    # normal: std·N(0, 1); uniform: limit·U(-1, 1), limit = sqrt(3·scale/n)
    factor = 1.0 if distribution == "normal" else 3.0
    assert draw == (distribution, pytest.approx(math.sqrt(factor * 1.5 / n), rel=1e-12), 0.0)
    base = torch.empty(shape, dtype=torch.float64)
    if distribution == "normal":
        base.normal_(0, 1, generator=_gen())
    else:
        base.uniform_(-1, 1, generator=_gen())
    w = scheme(torch.empty(shape, dtype=torch.float64), generator=_gen())
    # one multiply-add per value: a few ulps of the scale
    torch.testing.assert_close(draw.scale * base, w, rtol=0, atol=4 * 2**-52 * draw.scale)


def test_variance_scaling_truncated_is_not_a_shared_draw() -> None:
    scheme = schemes.get("variance_scaling")
    assert scheme.shared_draw((8, 8), scheme.resolve(None)) is None


def test_error_variance_scaling_bad_mode_in_a_spec() -> None:
    with pytest.raises(InitsuiteError) as exc:
        schemes.get("variance_scaling:mode=fan_avgg")
    msg = _one_line(exc)
    assert "mode='fan_avgg' is not a valid value" in msg
    assert "'fan_in' | 'fan_out' | 'fan_avg'" in msg


def test_error_variance_scaling_bad_distribution_in_a_spec() -> None:
    with pytest.raises(InitsuiteError) as exc:
        schemes.get("variance_scaling:distribution=truncated")
    msg = _one_line(exc)
    assert "distribution='truncated' is not a valid value" in msg
    assert "'truncated_normal' | 'normal' | 'uniform'" in msg


def test_error_variance_scaling_bad_mode_in_a_direct_call() -> None:
    fn = schemes.info("variance_scaling").fn
    with pytest.raises(InitsuiteError) as exc:
        fn(torch.empty(4, 4), mode="fan_ag")
    msg = _one_line(exc)
    assert "scheme 'variance_scaling': unknown mode 'fan_ag'" in msg
    assert "did you mean 'fan_avg'?" in msg
    assert "(choose from fan_in, fan_out, fan_avg)" in msg


def test_error_variance_scaling_bad_distribution_in_a_direct_call() -> None:
    with pytest.raises(InitsuiteError) as exc:
        schemes.info("variance_scaling").variance((4, 4), distribution="trunc_normal")
    msg = _one_line(exc)
    assert "unknown distribution 'trunc_normal'; did you mean 'truncated_normal'?" in msg


@pytest.mark.parametrize("scale", [0.0, -1.0])
def test_error_variance_scaling_scale_must_be_positive(scale: float) -> None:
    scheme = schemes.get(f"variance_scaling:scale={scale}")
    with pytest.raises(ValueError, match="needs scale > 0"):
        scheme(torch.empty(4, 4), generator=_gen())
    with pytest.raises(ValueError, match="needs scale > 0"):
        scheme.variance((4, 4))


# -- delta_orthogonal ------------------------------------------------------------------------

# (out, in, *kernel): square, tall (in <= out: wide ones are refused, see
# test_delta_orthogonal.py), 1-3 spatial dimensions, and an even kernel.
DELTA_SHAPES = [(6, 4, 3), (8, 4, 3, 3), (6, 6, 5, 5), (4, 4, 3, 3, 3), (4, 4, 2, 2)]


def _centre(shape: tuple[int, ...]) -> tuple[Any, ...]:
    return (slice(None), slice(None), *((k - 1) // 2 for k in shape[2:]))  # JAX's


@pytest.mark.parametrize("shape", DELTA_SHAPES, ids=str)
def test_delta_orthogonal_is_zero_off_the_centre_tap(shape: tuple[int, ...]) -> None:
    w = schemes.get("delta_orthogonal")(torch.empty(shape), generator=_gen())
    # the centre is JAX's (k - 1) // 2 per dimension; for odd k, dirac_'s k // 2 too
    taps = torch.zeros(shape[2:], dtype=torch.bool)
    taps[_centre(shape)[2:]] = True
    assert torch.equal(w.abs().sum(dim=(0, 1)) != 0, taps)
    if all(k % 2 for k in shape[2:]):
        assert torch.equal(taps, init.dirac_(torch.empty(shape)).abs().sum(dim=(0, 1)) != 0)
    assert (w[_centre(shape)] != 0).all()  # a Haar matrix has no zero entry (almost surely)


@pytest.mark.parametrize("gain", [1.0, 1.5])
@pytest.mark.parametrize("shape", DELTA_SHAPES, ids=str)
def test_delta_orthogonal_centre_is_torchs_orthogonal(shape: tuple[int, ...], gain: float) -> None:
    w = schemes.get(f"delta_orthogonal:gain={gain}")(torch.empty(shape), generator=_gen())
    q = init.orthogonal_(torch.empty(shape[:2]), gain, generator=_gen())
    assert torch.equal(w[_centre(shape)], q)


@pytest.mark.parametrize("gain", [1.0, 0.5])
@pytest.mark.parametrize("shape", DELTA_SHAPES, ids=str)
def test_delta_orthogonal_centre_is_orthonormal(shape: tuple[int, ...], gain: float) -> None:
    w = schemes.get(f"delta_orthogonal:gain={gain}")(
        torch.empty(shape, dtype=torch.float64), generator=_gen()
    )
    q = w[_centre(shape)]
    out_c, in_c = shape[:2]
    gram = q.T @ q  # orthonormal columns (in <= out)
    # float64 QR: orthogonality error of order n·eps64 ~ 1e-15
    eye = torch.eye(in_c, dtype=torch.float64)
    torch.testing.assert_close(gram, gain**2 * eye, rtol=0, atol=1e-12)
    # E[W²] over all entries: gain²·min(out, in) nonzero squares' sum over out·in·K entries
    expected = gain**2 * min(out_c, in_c) / (out_c * in_c * math.prod(shape[2:]))
    assert (w**2).mean().item() == pytest.approx(expected, rel=1e-12)
    assert schemes.get(f"delta_orthogonal:gain={gain}").variance(shape) == pytest.approx(
        expected, rel=1e-12
    )


def test_delta_orthogonal_gain_auto_is_the_activations_gain() -> None:
    w = schemes.get("delta_orthogonal:gain=auto")(
        torch.empty(8, 8, 3), activation="tanh", generator=_gen()
    )
    assert torch.equal(w[:, :, 1], init.orthogonal_(torch.empty(8, 8), 5.0 / 3, generator=_gen()))


def test_delta_orthogonal_same_seed_same_values() -> None:
    scheme = schemes.get("delta_orthogonal")
    first = scheme(torch.empty(8, 4, 3, 3), generator=_gen(7))
    assert torch.equal(first, scheme(torch.empty(8, 4, 3, 3), generator=_gen(7)))
    assert not torch.equal(first, scheme(torch.empty(8, 4, 3, 3), generator=_gen(8)))


CONVS: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def _conv_stack_norm_ratio(
    dims: int, fill: Callable[[Tensor, torch.Generator], Any], depth: int = 10
) -> float:
    """‖x_depth‖ / ‖x_0‖ through ``depth`` c→c convs (kernel 3, padding 1, no bias, no
    activation) in float64, each weight filled by ``fill``."""
    c, size = 8, {1: 12, 2: 8, 3: 5}[dims]
    gen = _gen()
    with torch.random.fork_rng(devices=[]):  # layers draw their default init globally
        layers = [CONVS[dims](c, c, 3, padding=1, bias=False).double() for _ in range(depth)]
    for layer in layers:
        fill(layer.weight, gen)
    x = torch.randn((4, c, *(size,) * dims), dtype=torch.float64, generator=gen)
    with torch.no_grad():
        y = x
        for layer in layers:
            y = layer(y)
    return (y.norm() / x.norm()).item()


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_delta_orthogonal_conv_stack_preserves_the_norm(dims: int) -> None:
    """Xiao et al.'s point: a deep stack of stride-1, same-padded convs with delta-orthogonal
    kernels is an isometry. Each layer is an orthogonal Q applied at every pixel, so ten of
    them keep ‖x‖ to float64 rounding (~10 roundings of relative 1e-16 per value)."""
    ratio = _conv_stack_norm_ratio(
        dims, lambda w, g: schemes.get("delta_orthogonal")(w, generator=g)
    )
    assert ratio == pytest.approx(1.0, rel=1e-12, abs=0)


def test_conv_stack_norm_test_catches_other_kernels() -> None:
    # The test above has power: an orthogonal matrix over the flattened kernel, or the delta
    # at a corner tap (shifting the image, losing its border to the padding), do not keep it.
    orth = _conv_stack_norm_ratio(2, lambda w, g: schemes.get("orthogonal")(w, generator=g))
    assert abs(orth - 1.0) > 0.05

    def corner(w: Tensor, g: torch.Generator) -> None:
        schemes.get("delta_orthogonal")(w, generator=g)
        with torch.no_grad():
            w[:, :, 0, 0] = w[:, :, 1, 1]
            w[:, :, 1, 1] = 0

    assert abs(_conv_stack_norm_ratio(2, corner) - 1.0) > 0.05


def test_error_delta_orthogonal_needs_a_conv_kernel() -> None:
    with pytest.raises(ValueError, match="needs a tensor of rank 3-5"):
        schemes.get("delta_orthogonal")(torch.empty(4, 4))
    with pytest.raises(ValueError, match="3, 4, or 5 dimensions"):
        schemes.info("delta_orthogonal").fn(torch.empty(4, 4))


# -- ZerO ------------------------------------------------------------------------------------


@pytest.mark.parametrize("m", range(7))
def test_sylvester_hadamard_is_scipys(m: int) -> None:
    h = torch.from_numpy(scipy.linalg.hadamard(2**m))
    assert torch.equal(sylvester_hadamard(2**m, 2**m), h)
    assert torch.equal(sylvester_hadamard(2**m, max(2**m // 2, 1)), h[:, : max(2**m // 2, 1)])


def test_zero_square_is_the_identity() -> None:
    assert torch.equal(schemes.get("zero")(torch.empty(5, 5)), torch.eye(5))


def test_zero_wide_is_the_partial_identity() -> None:
    expected = torch.tensor(
        [[1.0, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0]]
    )  # ones on the main diagonal: the first 3 of 5 inputs pass through
    assert torch.equal(schemes.get("zero")(torch.empty(3, 5)), expected)


def test_zero_tall_6x4_is_the_scaled_hadamard_block() -> None:
    # P = 6 > Q = 4: m = ceil(log2 6) = 3, c = 2^(-(3-1)/2) = 1/2, and the first 6 rows and 4
    # columns of the 8×8 Sylvester matrix H_3 (H[i, j] = (-1)^popcount(i & j)).
    signs = torch.tensor(
        [
            [1.0, 1, 1, 1],
            [1, -1, 1, -1],
            [1, 1, -1, -1],
            [1, -1, -1, 1],
            [1, 1, 1, 1],
            [1, -1, 1, -1],
        ]
    )
    w = schemes.get("zero")(torch.empty(6, 4, dtype=torch.float64))
    assert torch.equal(w, 0.5 * signs.double())
    # The paper's c makes the top 2^(m-1) = 4 rows orthonormal (0.5·H_2).
    assert torch.equal(w[:4].T @ w[:4], torch.eye(4, dtype=torch.float64))


def test_zero_tall_3x2() -> None:
    # m = ceil(log2 3) = 2, c = 2^(-1/2)
    expected = torch.tensor([[1.0, 1], [1, -1], [1, 1]], dtype=torch.float64) / math.sqrt(2)
    torch.testing.assert_close(
        schemes.get("zero")(torch.empty(3, 2, dtype=torch.float64)), expected, rtol=1e-15, atol=0
    )


@pytest.mark.parametrize("rows", range(2, 18))
def test_zero_tall_against_scipys_hadamard(rows: int) -> None:
    m = math.ceil(math.log2(rows))
    h = torch.from_numpy(scipy.linalg.hadamard(2**m)).double()
    for cols in range(1, rows):
        expected = 2.0 ** (-(m - 1) / 2) * h[:rows, :cols]
        torch.testing.assert_close(zero_matrix(rows, cols), expected, rtol=1e-15, atol=0)


@pytest.mark.parametrize("shape", [(6, 4, 3), (6, 4, 3, 3), (4, 4, 3, 3), (3, 5, 3, 3, 3)])
def test_zero_conv_kernel_holds_the_matrix_at_the_centre(shape: tuple[int, ...]) -> None:
    w = schemes.get("zero")(torch.empty(shape, dtype=torch.float64))
    centre = _centre(shape)
    assert torch.equal(w[centre], zero_matrix(*shape[:2]))
    w[centre] = 0
    assert torch.equal(w, torch.zeros(shape, dtype=torch.float64))


def test_zero_ignores_the_generator() -> None:
    scheme = schemes.get("zero")
    gen = _gen(0)
    state = gen.get_state()
    first = scheme(torch.empty(12, 5), generator=gen)
    assert torch.equal(gen.get_state(), state)
    for seed in (1, 2, 3):
        assert torch.equal(scheme(torch.empty(12, 5), generator=_gen(seed)), first)
    assert torch.equal(scheme(torch.empty(12, 5)), first)
    assert scheme.variance((12, 5)) is None


def test_zero_deep_square_networks_pass_the_input_through() -> None:
    x = torch.randn(16, 32, generator=_gen())
    images = torch.randn(2, 8, 6, 6, generator=_gen())
    with torch.random.fork_rng(devices=[]):  # layers draw their default init globally
        linear = [nn.Linear(32, 32, bias=False) for _ in range(20)]
        convs = [nn.Conv2d(8, 8, 3, padding=1, bias=False) for _ in range(20)]
    for layer in linear:
        schemes.get("zero")(layer.weight)
    for layer in convs:
        schemes.get("zero")(layer.weight)
    with torch.no_grad():
        y, z = x, images
        for layer in linear:
            y = layer(y)
        for conv in convs:
            z = conv(z)
    assert torch.equal(y, x)  # products with 0 and 1 only: exact
    assert torch.equal(z, images)


def test_error_zero_needs_rank_2_to_5() -> None:
    with pytest.raises(ValueError, match="needs a tensor of rank 2-5"):
        schemes.get("zero")(torch.empty(4))
    with pytest.raises(ValueError, match="2, 3, 4, or 5 dimensions"):
        schemes.info("zero").fn(torch.empty(4))


def test_error_variance_scaling_needs_rank_2() -> None:
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        schemes.info("variance_scaling").fn(torch.empty(4))


# -- every scheme in every dtype -------------------------------------------------------------

DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
LOWP_SHAPES = [(32, 16), (16, 32), (8, 4, 3, 3)]
ACTIVATION = "relu"  # for examples with gain=auto / nonlinearity=auto
LOWP_CASES = [
    pytest.param(name, shape, id=f"{name}-{'x'.join(map(str, shape))}")
    for name in distinct_laws(schemes.names())  # one of each flax:/jax:/keras: twin
    for shape in LOWP_SHAPES
    if schemes.info(name).accepts_rank(len(shape))
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("name", "shape"), LOWP_CASES)
def test_every_scheme_in_every_dtype(name: str, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    info = schemes.info(name)
    kw: dict = {}
    if "data" in info.uses:  # LSUV: the layer's output on a fixed batch, as a weight's function
        batch = torch.randn((16, math.prod(shape[1:])), generator=_gen(3)).to(dtype)
        kw["data"] = lambda w: batch @ w.reshape(w.shape[0], -1).T
    scheme = schemes.get(info.example)
    tensor = torch.full(shape, math.nan, dtype=dtype)
    first = scheme(tensor, activation=ACTIVATION, generator=_gen(7), **kw)
    assert first is tensor and first.dtype == dtype  # in place, in every dtype
    assert torch.isfinite(first).all()
    if "data" in info.uses:  # rescaled to unit output variance on the batch, within its tol
        assert abs(float(kw["data"](first).double().var()) - 1) < 0.1
    again = scheme(
        torch.full(shape, math.nan, dtype=dtype), activation=ACTIVATION, generator=_gen(7), **kw
    )
    assert torch.equal(first, again)
    variance = scheme.variance(shape, ACTIVATION)
    if variance is None or variance == 0:
        return
    x = first.double().flatten()
    centred = x - x.mean()
    m2, m4 = (centred**2).mean().item(), (centred**4).mean().item()
    # Standard error of the sample variance from the sample's own fourth moment (valid for any
    # law, sparse's heavy tails included; conservative for orthogonal schemes, whose sum of
    # squares is fixed), 6 of them: loose at 288-512 values (6 SE is ~40% for a normal), but
    # a dtype that broke a draw (a cast that loses the scale, a half QR that fails silently)
    # is off by far more. Plus the rounding of each value to `dtype`, which moves its square
    # by at most a relative eps.
    se = math.sqrt(max(m4 - m2**2, 0.0) / x.numel())
    tol = 6 * se + torch.finfo(dtype).eps * variance
    assert abs(x.var().item() - variance) <= tol

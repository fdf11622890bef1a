"""Mean-field theory of conv and residual-MLP cells (initsuite.theory.nets) against Monte Carlo
from plain torch nets written here (nn.Conv2d / nn.Linear filled by torch.nn.init from an
explicit generator, float64, no initsuite engine), and GPT-2's 1/√N in residual nets.

Tolerances. At finite width the log of a layer's pooled std wanders around its mean-field
value. Given a layer's input, Gaussian weights make the pooled second moment a mean of n
(units or channels) i.i.d. quadratic forms; with the activation's kurtosis κ = E[φ⁴]/E[φ²]²
its relative variance is at most c/(n·r) per layer, c = κ − 1 (5 for ReLU, 2 for linear, ≤ 2
for tanh: Hanin & Rolnick 2018's constants for one input) and r the batch's effective rank:
r = B where the c-map keeps independent inputs uncorrelated (odd φ without bias: c* = 0),
r = 1 otherwise (ReLU aligns the batch, c* = 1). The input's own pooled variance adds 2/(n·B).
As log std = ½·log(variance), after L layers Var(log std) ≤ v = (2/B + c·L/r) / (4n). Over S
seeds the mean of log std lies within 4·sqrt(v/S) of its expectation, which sits below
log(theory) by the log-normal bias (≤ v) and by the 1/n terms a nonlinear map drops (≤ c/n):

    tol = 4·sqrt(v / S) + v + c/n.

A residual block adds α·f(h) to h: its share w = 1 − q_l/q_{l+1} of the new variance
fluctuates as the branch's m layers do (w²·m·c/(n·r)) and the cross term 2α⟨h, f⟩ adds
4·w/(n·r), so there v = (2/B + Σ_blocks (4·w + m·c·w²)/r) / (4n).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import initsuite
from initsuite import schemes
from initsuite.core.errors import InitsuiteError
from initsuite.schemes import LayerContext
from initsuite.theory import nets
from initsuite.theory.meanfield import mlp_moments

Init = Callable[[Tensor, torch.Generator], object]
_C = {"relu": 5.0, "linear": 2.0, "tanh": 2.0}  # c = κ − 1 (tanh: at most the linear value)
_ACTS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu, "linear": lambda x: x, "tanh": torch.tanh,
}  # fmt: skip


def _tol(v: np.ndarray, seeds: int, c: float, n: int) -> np.ndarray:
    return 4 * np.sqrt(v / seeds) + v + c / n


def conv_tol(act: str, layers: int, n: int, batch: int, seeds: int, r: int) -> np.ndarray:
    """The tolerance on mean log std at layers 1..layers (module docstring)."""
    c = _C[act]
    v = (2 / batch + c * np.arange(1, layers + 1) / r) / (4 * n)
    return _tol(v, seeds, c, n)


def resmlp_tol(
    act: str, theory_std: np.ndarray, n: int, batch: int, seeds: int, r: int, m: int
) -> np.ndarray:
    c = _C[act]
    q = np.concatenate([[1.0], np.asarray(theory_std) ** 2])
    w = 1 - q[:-1] / q[1:]  # the branch's share of each block's variance
    v = (2 / batch + np.cumsum((4 * w + m * c * w * w) / r)) / (4 * n)
    return _tol(v, seeds, c, n)


# -- plain reference nets -------------------------------------------------------------------


def _bias(b: Tensor, fan_in: int, gen: torch.Generator) -> None:
    bound = 1 / math.sqrt(fan_in)  # nn.Conv2d's and nn.Linear's default law, from gen
    nn.init.uniform_(b, -bound, bound, generator=gen)


def conv_net(init: Init, act: str, depth: int, channels: int, image: int, kernel: int,
             batch: int, seed: int, bias: bool) -> np.ndarray:  # fmt: skip
    """Pooled std of every layer of a plain Conv2d stack (same padding) on N(0, 1) images."""
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(batch, channels, image, image, generator=gen, dtype=torch.float64)
    out = []
    with torch.no_grad():
        for _ in range(depth):
            conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=bias,
                             dtype=torch.float64)  # fmt: skip
            init(conv.weight, gen)
            if conv.bias is not None:
                _bias(conv.bias, channels * kernel * kernel, gen)
            h = _ACTS[act](conv(h))
            out.append(float(h.std()))
    return np.array(out)


def resmlp_net(branch_init: Init, out_init: Init, act: str, blocks: int, width: int, m: int,
               alpha: float, batch: int, seed: int, bias: bool) -> np.ndarray:  # fmt: skip
    """Std of h after every block h + α·W_m φ(⋯ φ(W_1 φ(h))) of nn.Linear layers; index 0 is
    the input's."""
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(batch, width, generator=gen, dtype=torch.float64)
    out = [float(h.std())]
    with torch.no_grad():
        for _ in range(blocks):
            u = _ACTS[act](h)
            for j in range(1, m + 1):
                lin = nn.Linear(width, width, bias=bias, dtype=torch.float64)
                (out_init if j == m else branch_init)(lin.weight, gen)
                if lin.bias is not None:
                    _bias(lin.bias, width, gen)
                u = lin(u)
                u = _ACTS[act](u) if j < m else u
            h = h + alpha * u
            out.append(float(h.std()))
    return np.array(out)


def _delta_orthogonal(gain: float) -> Init:
    """All of the kernel at the centre tap: gain × a Haar orthogonal C × C matrix there."""

    def init(w: Tensor, gen: torch.Generator) -> None:
        q = torch.empty(w.shape[0], w.shape[1], dtype=w.dtype)
        nn.init.orthogonal_(q, gain, generator=gen)
        w.zero_()
        w[:, :, w.shape[2] // 2, w.shape[3] // 2] = q

    return init


# -- conv -----------------------------------------------------------------------------------

_CONV_CASES = [
    # (torch init, act, the same law as an initsuite spec, σ_w² by hand, bias, C, B, depth, r)
    (lambda w, g: nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g), "relu",
     "kaiming_normal", 2.0, False, 64, 8, 6, 1),
    (lambda w, g: nn.init.xavier_normal_(w, gain=5 / 3, generator=g), "tanh",
     "xavier_normal:gain=auto", 25 / 9, False, 32, 16, 12, 16),
    (lambda w, g: nn.init.kaiming_normal_(w, nonlinearity="linear", generator=g), "linear",
     "kaiming_normal:nonlinearity=linear", 1.0, False, 32, 16, 12, 16),
    # σ_w² = 1/4 with bias: the variance settles on the biases' σ_b² = 1/(3·C·k²)
    (lambda w, g: nn.init.normal_(w, 0.0, 0.5 / math.sqrt(32 * 9), generator=g), "linear",
     f"normal:std={0.5 / math.sqrt(32 * 9)}", 0.25, True, 32, 16, 12, 1),
    (lambda w, g: nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g), "relu",
     "kaiming_normal", 2.0, True, 64, 8, 6, 1),
    (_delta_orthogonal(1.2), "tanh", "delta_orthogonal:gain=1.2", 1.44, False, 32, 16, 12, 16),
    (_delta_orthogonal(1.0), "linear", "delta_orthogonal", 1.0, False, 32, 16, 12, 16),
]  # fmt: skip


@pytest.mark.parametrize(
    ("init", "act", "spec", "sigma_w2", "bias", "channels", "batch", "depth", "r"), _CONV_CASES
)
def test_conv_theory_matches_monte_carlo(
    init: Init, act: str, spec: str, sigma_w2: float, bias: bool, channels: int, batch: int,
    depth: int, r: int,
) -> None:  # fmt: skip
    kernel, image, seeds = 3, 8, 4
    scheme = schemes.get(spec)
    prior = nets.conv_prior(
        scheme, scheme.resolve(act), channels, kernel, "torch_default" if bias else None
    )
    sigma_b2 = 1 / (3 * channels * kernel**2) if bias else 0.0
    assert prior == pytest.approx((sigma_w2, sigma_b2), rel=1e-12)
    taps = scheme.info.taps
    theory = np.array(nets.conv_moments(act, *prior, depth, kernel, image, taps).std)
    runs = [conv_net(init, act, depth, channels, image, kernel, batch, s, bias)
            for s in range(seeds)]  # fmt: skip
    gap = np.abs(np.log(np.array(runs)).mean(axis=0) - np.log(theory))
    tol = conv_tol(act, depth, channels, batch, seeds, r)
    assert (gap <= tol).all(), (gap, tol)


def test_conv_padding_is_not_the_mlp_map() -> None:
    """The zero padding shrinks a linear net's variance by about 0.921 per layer on 8×8
    images (the top eigenvalue of the padded 3×3 average, ((1 + 2·cos(π/9))/3)²), where the
    MLP's map keeps it at 1; the Monte Carlo above tells the two apart (gap ≫ tol)."""
    m = nets.conv_moments("linear", 1.0, 0.0, 60, 3, 8)
    ratio = m.std[-1] ** 2 / m.std[-2] ** 2
    assert ratio == pytest.approx(((1 + 2 * math.cos(math.pi / 9)) / 3) ** 2, rel=1e-6)
    # first layer: the mean number of in-bounds taps over 9, (22/8)²/9
    assert m.std[0] ** 2 == pytest.approx((22 / 8) ** 2 / 9, rel=1e-12)
    tol = conv_tol("linear", 12, 32, 16, 4, 16)[-1]
    assert abs(math.log(m.std[11])) > 1.5 * tol  # the MLP's prediction would fail the test
    # delta-orthogonal kernels have no boundary effect: the MLP's map at every pixel
    centre = nets.conv_moments("tanh", 1.44, 0.0, 12, 3, 8, taps="centre")
    flat = mlp_moments("tanh", 1.44, 12)
    np.testing.assert_allclose(centre.std, [x.std for x in flat], rtol=1e-12)


# -- residual MLP ---------------------------------------------------------------------------


def _kaiming(scale: float = 1.0) -> Init:
    def init(w: Tensor, gen: torch.Generator) -> None:
        nn.init.kaiming_normal_(w, nonlinearity="relu", generator=gen)
        w.mul_(scale)

    return init


def _normal(std: float) -> Init:
    return lambda w, g: nn.init.normal_(w, 0.0, std, generator=g)


def _resmlp_theory(spec: str, act: str, width: int, blocks: int, m: int, alpha: float,
                   bias: bool) -> np.ndarray:  # fmt: skip
    scheme = schemes.get(spec)
    priors = nets.resmlp_priors(
        scheme, scheme.resolve(act), width, blocks, m, "torch_default" if bias else None
    )
    assert priors is not None
    return np.array(nets.resmlp_moments(act, priors, nets.residual_scale(scheme, alpha)).std)


@pytest.mark.parametrize(
    ("spec", "branch_init", "out_init", "act", "scale", "bias", "r"),
    [
        ("kaiming_normal", _kaiming(), _kaiming(), "relu", "1", False, 1),
        ("kaiming_normal", _kaiming(), _kaiming(), "relu", "1", True, 1),
        ("kaiming_normal", _kaiming(), _kaiming(), "relu", "inv_sqrt_depth", False, 1),
        ("kaiming_normal", _kaiming(), _kaiming(), "tanh", "inv_sqrt_depth", True, 1),
        # Fixup with biases is no identity: each block adds its last bias
        ("fixup", _kaiming(8 ** -0.5), lambda w, g: nn.init.zeros_(w), "relu", "1", True, 1),
    ],
)  # fmt: skip
def test_resmlp_theory_matches_monte_carlo(
    spec: str, branch_init: Init, out_init: Init, act: str, scale: str, bias: bool, r: int
) -> None:
    width, batch, blocks, m, seeds = 256, 32, 8, 2, 4
    alpha = 1.0 if scale == "1" else blocks**-0.5
    theory = _resmlp_theory(spec, act, width, blocks, m, alpha, bias)
    runs = np.array([resmlp_net(branch_init, out_init, act, blocks, width, m, alpha, batch, s,
                                bias) for s in range(seeds)])  # fmt: skip
    gap = np.abs(np.log(runs[:, 1:]).mean(axis=0) - np.log(theory))
    tol = resmlp_tol(act, theory, width, batch, seeds, r, m)
    assert (gap <= tol).all(), (gap, tol)


def test_gpt2_residual_stream_variance_at_depth() -> None:
    """GPT-2 scales a resmlp's residual projections by 1/√N with N = L (one per block). With
    std = 1/√n (σ_w² = 1) and linear branches of two layers each block adds q/N, so the
    residual stream's std after L blocks is (1 + 1/L)^(L/2) (1.602 at L = 8); GPT-2's
    transformer count N = 2L would give (1 + 1/(2L))^(L/2) (1.274): measured through the
    sweep's engine, and in the theory columns."""
    width, blocks, batch, seeds = 256, 8, 32, 4
    expected = (1 + 1 / blocks) ** (blocks / 2)
    res = initsuite.sweep(f"gpt2:std={1 / 16}", "linear", blocks, width, batch=batch,
                          seeds=seeds, archs="resmlp:branch=2,scale=1", dtypes="float64",
                          timing=False)  # fmt: skip
    gap = abs(float(np.log(res.cells["final_std"]).mean()) - math.log(expected))
    theory_std = expected ** (np.arange(1, blocks + 1) / blocks)
    tol = resmlp_tol("linear", theory_std, width, batch, seeds, batch, 2)[-1]
    assert gap <= tol < math.log(expected / (1 + 1 / (2 * blocks)) ** (blocks / 2)) / 2
    np.testing.assert_allclose(res.cells["theory_final_std"], expected, rtol=1e-12)
    # the plain reference net, drawn with torch.nn.init, agrees as well
    runs = [resmlp_net(_normal(1 / 16), _normal(1 / 16 / math.sqrt(blocks)), "linear", blocks,
                       width, 2, 1.0, batch, s, False)[-1] for s in range(seeds)]  # fmt: skip
    assert abs(float(np.log(runs).mean()) - math.log(expected)) <= tol


def test_gpt2_takes_the_projection_count_from_the_context() -> None:
    w = torch.empty(512, 512)
    for n in (1, 5, 24):
        ctx = LayerContext(2, 2 * n, 512, 512, "branch_out", 1, n, 2, 2, residual_projections=n)
        s = float(schemes.get("gpt2")(w, generator=torch.Generator().manual_seed(n),
                                      context=ctx).std())  # fmt: skip
        assert s == pytest.approx(0.02 / math.sqrt(n), rel=0.01)  # 262144 draws: se 0.14%
        assert schemes.info("gpt2").layer_variance((512, 512), ctx) == pytest.approx(4e-4 / n)
    branch = LayerContext(1, 2, 512, 512, "branch", 1, 1, 2, 1, residual_projections=1)
    assert float(schemes.get("gpt2")(w, context=branch).std()) == pytest.approx(0.02, rel=0.01)
    unknown = LayerContext(2, 24, 512, 512, "branch_out", 1, 12, 2, 2)  # N = 0: not counted
    with pytest.raises(InitsuiteError, match="residual_projections=0"):
        schemes.get("gpt2")(w, context=unknown)


@pytest.mark.parametrize("spec", ["fixup", "skipinit", "rezero"])
def test_identity_schemes_predict_the_input(spec: str) -> None:
    """Fixup (zero projections), SkipInit and ReZero (α = 0) return the input exactly: the
    theory is q = 1 at every block, and every block's measured std is the input's, to the
    last bit; the input's own std is within its sampling tolerance of 1."""
    width, batch = 64, 8
    res = initsuite.sweep(spec, ["relu", "tanh"], [1, 12], width, batch=batch, seeds=2,
                          archs="resmlp:branch=3", timing=False)  # fmt: skip
    layers = res.layers.merge(res.cells[["activation", "depth", "seed", "input_std"]])
    np.testing.assert_array_equal(layers["std"], layers["input_std"])
    assert (layers["theory_std"] == 1.0).all() and (res.cells["theory_final_std"] == 1.0).all()
    tol = resmlp_tol("linear", np.ones(1), width, batch, 1, 1, 3)[0]
    assert (np.abs(np.log(res.cells["input_std"])) <= tol).all()


# -- sweeps ---------------------------------------------------------------------------------


def test_sweep_carries_conv_and_resmlp_theory() -> None:
    """Every conv and resmlp cell of a sweep has finite theory columns that match its measured
    ones within the tolerances above; its theory table says so."""
    width, batch, seeds = 64, 8, 3
    res = initsuite.sweep(["kaiming_normal", "xavier_normal:gain=auto"], ["relu", "tanh"],
                          [3, 6], width, batch=batch, seeds=seeds, archs=["conv", "resmlp"],
                          dtypes="float64", timing=False)  # fmt: skip
    cells, layers = res.cells, res.layers
    assert cells["theory_final_std"].gt(0).all() and np.isfinite(cells["theory_final_std"]).all()
    assert np.isfinite(layers["theory_std"]).all()
    assert cells["theory_growth_per_layer"].notna().all()
    keys = ["arch", "scheme", "activation", "depth"]
    for (arch, _, act, depth), g in layers.groupby(keys):
        mean = g.groupby("layer")["std"].apply(lambda s: np.log(s).mean())
        theory = g.groupby("layer")["theory_std"].first().to_numpy()
        if arch.startswith("conv"):
            tol = conv_tol(act, depth, width, batch, seeds, 1)
        else:
            tol = resmlp_tol(act, theory, width, batch, seeds, 1, 2)
        assert (np.abs(mean.to_numpy() - np.log(theory)) <= tol).all(), (arch, act, depth)
    table = res.theory
    assert table["mean_field"].all()
    kaiming = table[(table["scheme"] == "kaiming_normal") & (table["activation"] == "relu")]
    np.testing.assert_allclose(kaiming["sigma_w2"], 2.0, rtol=1e-12)
    assert table["predicted_log_std_sd"].isna().all()  # Hanin & Rolnick's spread is the MLP's


def test_registry_metadata_for_the_theory() -> None:
    assert schemes.info("delta_orthogonal").taps == "centre"
    assert schemes.info("kaiming_normal").taps == "all"
    assert schemes.info("skipinit").residual_scale == 0.0
    assert schemes.info("rezero").residual_scale == 0.0
    assert schemes.info("fixup").residual_scale is None
    out = LayerContext.resmlp(1, 4, 3, 3, 16)
    assert schemes.info("fixup").layer_variance((16, 16), out) == 0.0
    inner = LayerContext.resmlp(1, 4, 3, 1, 16)
    assert schemes.info("fixup").layer_variance((16, 16), inner) == pytest.approx(
        2 / 16 * 4 ** (-2 / 4))  # fmt: skip
    with pytest.raises(ValueError, match="unknown taps 'middle'"):
        schemes.register(
            schemes.SchemeInfo(
                name="test_theory_archs_bad_taps",
                family="normal",
                variance_formula="-",
                variance=lambda shape: 1.0,
                paper="-",
                taps="middle",
            )
        )(lambda tensor, *, generator=None: tensor)
    assert "test_theory_archs_bad_taps" not in schemes.names()

"""Backward statistics (``sweep(backward=True)``): against torch.autograd on a plain loop,
against the mean-field backward map, and the engine's memory contract.

The reference is written independently of the engine: one generator per cell, ``x = randn``
first, then each layer's weight filled by the scheme (and a bias by ``uniform_``) as leaf
tensors, ``F.linear`` and the activation, ``Loss = Σ R ⊙ h_depth`` and ``loss.backward()``.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from helpers import peak_growth_mb

import initsuite
from initsuite import activations, schemes
from initsuite.cli import main
from initsuite.engine.backward import checkpoint_spacing, readout
from initsuite.engine.draws import CellDraws
from initsuite.engine.mlp import run_stream
from initsuite.engine.stack import LayerDraw, Member, Rows, Stream, layer_backward, layer_forward
from initsuite.studies.sweep.config import SweepConfig
from initsuite.theory.meanfield import CellTheory, grad_theory

sweep_module = importlib.import_module("initsuite.studies.sweep.cells")


def reference_grads(
    scheme: str,
    activation: str,
    depth: int,
    width: int,
    batch: int,
    seed: int,
    dtype: torch.dtype = torch.float64,
    bias: bool = False,
) -> tuple[list[float], list[float], float]:
    """(std of dLoss/dh_l per layer, ‖dLoss/dW_l‖_F per layer, std of dLoss/dx) by autograd."""
    init, act = schemes.get(scheme), activations.get(activation)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((batch, width), generator=gen, dtype=dtype).requires_grad_(True)
    ws, hs, h = [], [], x
    for _ in range(depth):
        w = torch.empty((width, width), dtype=dtype)
        init(w, activation=act, generator=gen)
        b = None
        if bias:
            bound = 1 / math.sqrt(width)
            b = torch.empty(width, dtype=dtype).uniform_(-bound, bound, generator=gen)
        w.requires_grad_(True)
        ws.append(w)
        h = act(F.linear(h, w, b))
        h.retain_grad()
        hs.append(h)
    r = readout(batch, width, seed, torch.device("cpu"), dtype)
    (r * h).sum().backward()
    return (
        [t.grad.double().std().item() for t in hs],
        [w.grad.double().norm().item() for w in ws],
        x.grad.double().std().item(),
    )


SCHEMES = [
    "kaiming_normal",  # shared normal base, scaled
    "orthogonal",  # Householder QR of the base (ormqr backward)
    "orthogonal_householder",
    "xavier_uniform",  # shared uniform base
    "uniform:a=0.0,b=1.0",  # a shifted base: W = 0.5 + 0.5·U(-1, 1)
    "torch_default",
    "sparse:sparsity=0.5",  # draws on its own
]


@pytest.mark.parametrize("bias", [False, True])
def test_engine_backward_matches_autograd(bias: bool) -> None:
    """Every scheme family × tanh/relu/gelu × depths 3, 7, 20 (20 spans four checkpoint
    segments of 5) in float64: the engine's stacked, regenerated backward equals autograd's
    to 1e-12, layer by layer."""
    depths = [3, 7, 20]
    cfg = SweepConfig.build(SCHEMES, ["tanh", "relu", "gelu"], depths, 24, batch=4, seeds=[3],
                            dtypes=["float64"], bias="torch_default" if bias else None)  # fmt: skip
    checked = 0
    for plan in sweep_module.plans(cfg):
        res = run_stream(plan.stream, backward=depths)
        for scheme, act, i in plan.cells:
            for d in depths:
                gs = res[i].grads[d]
                g, n, gx = reference_grads(scheme.spec, act.spec, d, 24, 4, 3, bias=bias)
                np.testing.assert_allclose(gs.grad_std, g, rtol=1e-12)
                np.testing.assert_allclose(gs.weight_grad_norm, n, rtol=1e-12)
                assert gs.input_grad_std == pytest.approx(gx, rel=1e-12)
                assert gs.divergence_layer is None
                checked += 1
    assert checked == len(SCHEMES) * 3 * len(depths)


def test_engine_backward_float32_matches_autograd() -> None:
    """float32 streams (stacked products, pre-scaled) agree with a float32 autograd loop to
    rounding: 1e-4 relative over 30 layers."""
    cfg = SweepConfig.build(["kaiming_normal", "orthogonal", "xavier_uniform"], ["tanh", "relu"],
                            [30], 64, batch=8, seeds=[0])  # fmt: skip
    for plan in sweep_module.plans(cfg):
        res = run_stream(plan.stream, backward=[30])
        for scheme, act, i in plan.cells:
            g, n, _ = reference_grads(scheme.spec, act.spec, 30, 64, 8, 0, torch.float32)
            np.testing.assert_allclose(res[i].grads[30].grad_std, g, rtol=1e-4)
            np.testing.assert_allclose(res[i].grads[30].weight_grad_norm, n, rtol=1e-4)


def test_windowed_reads_give_the_same_gradients() -> None:
    """The GPU path reads the backward statistics once per segment (check_every > 1): same
    numbers, same backward divergence as reading every layer."""
    cfg = SweepConfig.build(["normal", "kaiming_normal"], ["tanh"], [10, 40], 64, seeds=[1])
    for plan in sweep_module.plans(cfg):
        a = run_stream(plan.stream, check_every=1, backward=[10, 40])
        b = run_stream(plan.stream, check_every=8, backward=[10, 40])
        for x, y in zip(a, b, strict=True):
            assert x.grads.keys() == y.grads.keys()
            for d in x.grads:
                gx, gy = x.grads[d], y.grads[d]
                assert (gx.divergence_layer, gx.divergence_kind) == (
                    gy.divergence_layer, gy.divergence_kind)  # fmt: skip
                np.testing.assert_array_equal(gx.grad_std, gy.grad_std)
                np.testing.assert_array_equal(gx.weight_grad_norm, gy.weight_grad_norm)


def test_backward_leaves_the_forward_columns_unchanged() -> None:
    kw = dict(schemes=["kaiming_normal", "normal", "orthogonal"], activations=["relu", "tanh"],
              depths=[10, 40], widths=64, seeds=2, timing=False)  # fmt: skip
    plain = initsuite.sweep(**kw)
    both = initsuite.sweep(**kw, backward=True)
    fwd = [c for c in plain.cells.columns if "grad" not in c and c != "cell_key"]
    pd.testing.assert_frame_equal(both.cells[fwd], plain.cells[fwd])
    fwd = [c for c in plain.layers.columns if "grad" not in c]
    pd.testing.assert_frame_equal(both.layers[fwd], plain.layers[fwd])
    assert plain.layers["grad_std"].isna().all() and plain.cells["input_grad_std"].isna().all()
    # same seed, same gradients
    pd.testing.assert_frame_equal(initsuite.sweep(**kw, backward=True).layers, both.layers)


def test_orthogonal_linear_net_preserves_the_gradient_exactly() -> None:
    """x·Qᵀ's gradient is g·Q: an orthogonal linear net passes the read-out back unchanged in
    norm (the backward half of dynamical isometry). Every layer's weight gradient is
    Q_a·(Rᵀx)·Q_b for orthogonal Q_a, Q_b, so its Frobenius norm is ‖Rᵀx‖_F at every layer
    (exact, float64); the std of dLoss/dh_l moves only with its mean (|mean| ≲ 3/√2048)."""
    res = initsuite.sweep("orthogonal", "linear", 60, 128, timing=False, backward=True,
                          dtypes="float64")  # fmt: skip
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((16, 128), generator=gen, dtype=torch.float64)
    r = readout(16, 128, 0, torch.device("cpu"), torch.float64)
    norms = res.layers["weight_grad_norm"].to_numpy()
    np.testing.assert_allclose(norms, torch.linalg.norm(r.T @ x).item(), rtol=1e-12)
    np.testing.assert_allclose(res.layers["grad_std"], r.std().item(), rtol=3e-3)
    assert res.cells["weight_grad_ratio"].iloc[0] == pytest.approx(1.0, abs=1e-12)


def test_kaiming_relu_keeps_gradients_and_xavier_relu_halves_them() -> None:
    """He et al. 2015: with Var(W) = 2/n a ReLU net keeps E[g²] (χ₁ = 1); with Xavier's 1/n
    each layer halves it (χ₁ = 1/2), so dLoss/dx of a 30-layer net is 2^-15 ≈ 3e-5 of the
    read-out. Measured over 4 seeds at width 512, within the finite-width spread (the log of
    the gradient wanders like depth/width)."""
    res = initsuite.sweep(["kaiming_normal", "xavier_normal"], "relu", 30, 512, seeds=4,
                          timing=False, backward=True)  # fmt: skip
    c = res.cells.groupby("scheme")[["input_grad_std", "theory_input_grad_std"]].agg(
        lambda s: float(np.exp(np.log(s).mean())))  # fmt: skip
    assert c.loc["kaiming_normal", "theory_input_grad_std"] == pytest.approx(1.0)
    assert c.loc["xavier_normal", "theory_input_grad_std"] == pytest.approx(2.0**-15)
    for scheme in c.index:
        ratio = c.loc[scheme, "input_grad_std"] / c.loc[scheme, "theory_input_grad_std"]
        assert 0.7 < ratio < 1.3, (scheme, ratio)


@pytest.mark.parametrize("act", ["tanh", "gelu"])
def test_grad_std_follows_the_mean_field_backward_map(act: str) -> None:
    """Per layer, the measured gradient std tracks sqrt(Π χ₁) at width 1024 (Xavier with the
    tanh gain sits at χ₁ ≈ 0.96 for tanh; gelu under Kaiming is near critical): within 15%
    at every layer of a 40-layer net, averaged over 2 seeds."""
    res = initsuite.sweep("xavier_normal:gain=auto", act, 40, 1024, seeds=2, timing=False,
                          backward=True, pair_cosine=None)  # fmt: skip
    mean = res.layers.groupby("layer")[
        ["grad_std", "theory_grad_std", "weight_grad_norm", "theory_weight_grad_norm"]
    ].mean()
    np.testing.assert_allclose(mean["grad_std"], mean["theory_grad_std"], rtol=0.15)
    np.testing.assert_allclose(mean["weight_grad_norm"], mean["theory_weight_grad_norm"],
                               rtol=0.15)  # fmt: skip


def test_gradient_overflow_is_detected_and_predicted() -> None:
    """N(0, 1) weights in a tanh net: the forward stays bounded, the backward gains
    sqrt(n·E[tanh'²]) per layer and overflows float32 walking back from a 100-layer output.
    The measured layer is the first (from the top) whose gradient is non-finite, and sits
    within 2 layers of where the mean-field prediction crosses float32's largest value."""
    res = initsuite.sweep("normal", "tanh", 100, 256, seeds=2, timing=False, backward=True)
    cells = res.cells
    assert cells["divergence_layer"].isna().all()
    assert (cells["grad_divergence_kind"] == "overflow").all()
    assert (cells["weight_grad_ratio"] == math.inf).all()
    lay = res.layers[res.layers["seed"] == 0].set_index("layer")
    predicted = int(lay.index[lay["theory_grad_std"] < 3.4e38 / 6].min()) - 1  # ~6σ entries
    for measured in cells["grad_divergence_layer"]:
        assert abs(int(measured) - predicted) <= 2, (measured, predicted)
        below = lay.loc[: int(measured) - 1, "grad_std"] if measured > 1 else []
        assert len(below) == 0 or pd.isna(below).all()  # nothing recorded past it


def test_cells_that_diverged_forward_get_no_backward() -> None:
    res = initsuite.sweep("normal", "linear", [10, 50], 256, timing=False, backward=True)
    c = res.cells.set_index("depth")
    assert pd.isna(c.loc[50, "divergence_layer"]) is False
    assert math.isnan(c.loc[50, "input_grad_std"])
    assert math.isfinite(c.loc[10, "input_grad_std"])
    # linear N(0,1): the gradient grows like sqrt(n) per layer, 16^10 at depth 10
    assert c.loc[10, "theory_input_grad_std"] == pytest.approx(16.0**10)
    assert c.loc[10, "input_grad_std"] / 16.0**10 == pytest.approx(1, rel=0.3)


def test_grad_theory_closed_forms() -> None:
    """Linear net, σ_w² = s: χ₁ = s and E[φ'²] = 1, so E[g_l²] = s^(depth - l); weight
    gradient of layer l: batch·n²·E[g_l²]·E[h_{l-1}²] with E[h_{l-1}²] = q_l/s = s^(l-1)."""
    s, depth, batch, width = 1.5, 6, 4, 10
    q = [s**layer for layer in range(1, depth + 1)]
    th = CellTheory([math.sqrt(v) for v in q], None, None, None, [s] * depth, q, s, 0.0)
    gt = grad_theory(th, depth, batch, width)
    for layer in range(1, depth + 1):
        assert gt.grad_std[layer - 1] == pytest.approx(s ** ((depth - layer) / 2))
        expect = batch * width**2 * s ** (depth - layer) * s ** (layer - 1)
        assert gt.weight_grad_norm[layer - 1] == pytest.approx(math.sqrt(expect))
    assert gt.input_grad_std == pytest.approx(s ** (depth / 2))
    # beyond float64: inf and 0, not nan
    huge = CellTheory([1.0] * 400, None, None, None, [1e10] * 400, [1.0] * 400, 1e10, 0.0)
    assert grad_theory(huge, 400, 1, 1).input_grad_std == math.inf
    tiny = CellTheory([1.0] * 400, None, None, None, [1e-10] * 400, [1.0] * 400, 1e-10, 0.0)
    assert grad_theory(tiny, 400, 1, 1).input_grad_std == 0.0


@pytest.mark.parametrize(("top", "spacing"), [(0, 0), (1, 1), (2, 2), (4, 2), (5, 3), (1000, 32)])
def test_checkpoint_spacing_is_the_ceiling_of_the_square_root(top: int, spacing: int) -> None:
    assert checkpoint_spacing(top) == spacing


def test_layer_backward_is_the_adjoint_of_layer_forward() -> None:
    """<layer_forward(h), d> = <h, layer_backward(d)> for every transform (plain B, the QR and
    Householder Haar Q), with scales and a shift, in float64: the backward pass's transpose."""
    tanh = activations.get("tanh")
    normal = schemes.get("normal")
    members = (
        Member(normal, (), tanh, scale=0.5, shift=0.1),
        Member(normal, (), tanh, scale=1.5),
        Member(normal, (), tanh, scale=1.0, transform="qr"),
        Member(normal, (), tanh, scale=2.0, transform="householder"),
    )
    stream = Stream("normal", members, width=8, depth=1, batch=3, seed=0, device="cpu",
                    dtype="float64")  # fmt: skip
    cpu, f64 = torch.device("cpu"), torch.float64
    draw = LayerDraw(stream, CellDraws(0, cpu), f64)
    draw.next()
    rows = Rows.of(members, [0, 1, 2, 3], cpu, f64)
    gen = torch.Generator().manual_seed(1)
    h = torch.randn((4, 3, 8), generator=gen, dtype=f64)
    d = torch.randn((4, 3, 8), generator=gen, dtype=f64)
    pre = layer_forward(draw, h, rows, activate=False)
    back = layer_backward(draw, d, rows)
    lhs, rhs = (pre * d).sum(dim=(1, 2)), (h * back).sum(dim=(1, 2))
    torch.testing.assert_close(lhs, rhs, rtol=1e-12, atol=1e-12)  # float64 rounding: ~1e-15
    # and the forward product is the member's own W = shift + scale·B (plain rows)
    w0 = 0.1 + 0.5 * draw.w
    torch.testing.assert_close(pre[0], h[0] @ w0.T, rtol=1e-12, atol=1e-12)


def test_backward_memory_does_not_grow_with_depth() -> None:
    """200 layers × 512 with the backward pass in a fresh process: storing the weights for
    the walk back would take 200 MB (200 × 512² × 4 B) beyond the warmed-up process; weights
    are regenerated from saved generator states and activations checkpointed every ⌈√200⌉
    = 15 layers, so the peak grows by a few MB (2-6 measured), far under the 100 MB allowed."""
    growth, grads = peak_growth_mb(
        "res = initsuite.sweep('kaiming_normal', 'relu', 200, 512, timing=False,"
        " backward=True, pair_cosine=None)\n"
        "print(int(res.layers['grad_std'].notna().sum()))"
    )
    assert int(grads) == 200
    assert growth < 100, growth


def test_cli_backward_writes_gradient_columns(tmp_path: object) -> None:
    out = f"{tmp_path}/run"
    code = main(["sweep", "--schemes", "kaiming_normal,xavier_normal", "--activations", "relu",
                 "--depths", "5,20", "--widths", "64", "--backward", "--no-timing", "--quiet",
                 "--out", out])  # fmt: skip
    assert code in (0, None)
    res = initsuite.SweepResult.load(out)
    assert res.meta["config"]["backward"] is True
    assert res.layers["grad_std"].notna().all()
    assert res.cells["weight_grad_ratio"].notna().all()

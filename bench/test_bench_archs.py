"""Conv and residual-MLP sweeps against the plain loops a user would write, and the backward
sweep against the forward sweep and its floor (issue 17's targets; ratios, never timed tests).

- ``conv``: 6 schemes × linear/tanh/relu × depths 10/50 × channels 32/64 × image 8 × 2 seeds,
  batch 16, kernel 3 (same padding), bias-free. The loop: one generator per cell, the input,
  then each layer's weight filled by the scheme (``initsuite.schemes.get(spec)``, with its
  layer context) and one ``F.conv2d`` and activation, the std read per layer.
- ``resmlp``: the same schemes and activations, 10/50 blocks of two Linear layers, widths
  64/256, h ← h + W₂·φ(W₁·φ(h)), the std read per block.
- ``backward``: the default study's schemes subset on widths 64-1024 at depth 50:
  ``initsuite.sweep(..., backward=True)`` against the same sweep forward only, and against its
  floor (the forward floor plus, per layer, the weight drawn again and the transposed
  product of the gradient rows).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import initsuite
from initsuite import activations, schemes
from initsuite.schemes.registry import LayerContext

SCHEMES = ("kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform", "orthogonal",
           "normal:std=0.05")  # fmt: skip
ACTIVATIONS = ("linear", "tanh", "relu")
SEEDS, BATCH, IMAGE, KERNEL = 2, 16, 8, 3
FULL = {"depths": (10, 50), "conv_widths": (32, 64), "res_widths": (64, 256)}
QUICK = {"depths": (4,), "conv_widths": (8,), "res_widths": (16,)}


def conv_loop(depths: tuple[int, ...], widths: tuple[int, ...]) -> int:
    """The plain loop over conv cells; returns the number of stds read."""
    read = 0
    for spec in SCHEMES:
        init = schemes.get(spec)
        for name in ACTIVATIONS:
            act = activations.get(name)
            for depth in depths:
                for width in widths:
                    fan = width * KERNEL * KERNEL
                    for seed in range(SEEDS):
                        gen = torch.Generator().manual_seed(seed)
                        h = torch.randn((BATCH, width, IMAGE, IMAGE), generator=gen)
                        w = torch.empty((width, width, KERNEL, KERNEL))
                        for layer in range(1, depth + 1):
                            init(w, activation=act, generator=gen,
                                 context=LayerContext(layer, depth, fan, fan))  # fmt: skip
                            h = act(F.conv2d(h, w, padding=KERNEL // 2))
                            h.std().item()
                            read += 1
    return read


def resmlp_loop(depths: tuple[int, ...], widths: tuple[int, ...]) -> int:
    """The plain loop over residual-MLP cells (two Linear layers per block, scale 1)."""
    read = 0
    for spec in SCHEMES:
        init = schemes.get(spec)
        for name in ACTIVATIONS:
            act = activations.get(name)
            for blocks in depths:
                for width in widths:
                    for seed in range(SEEDS):
                        gen = torch.Generator().manual_seed(seed)
                        h = torch.randn((BATCH, width), generator=gen)
                        w1, w2 = torch.empty((width, width)), torch.empty((width, width))
                        for block in range(1, blocks + 1):
                            for j, w in ((1, w1), (2, w2)):
                                role = "branch_out" if j == 2 else "branch"
                                ctx = LayerContext((block - 1) * 2 + j, blocks * 2, width, width,
                                                   role, block, blocks, 2, j, blocks)  # fmt: skip
                                init(w, activation=act, generator=gen, context=ctx)
                            h = h + F.linear(act(F.linear(act(h), w1)), w2)
                            h.std().item()
                            read += 1
    return read


def _sweep(arch: str, depths: tuple[int, ...], widths: tuple[int, ...]) -> initsuite.SweepResult:
    return initsuite.sweep(list(SCHEMES), list(ACTIVATIONS), list(depths), list(widths),
                           batch=BATCH, seeds=SEEDS, archs=arch, timing=False,
                           progress=False)  # fmt: skip


def _label(benchmark, group: str, method: str, quick: bool) -> dict[str, tuple[int, ...]]:
    sizes = QUICK if quick else FULL
    benchmark.group = group
    shapes = {k: list(v) for k, v in sizes.items()}
    benchmark.extra_info.update({"method": method, "schemes": list(SCHEMES),
                                 "activations": list(ACTIVATIONS), "seeds": SEEDS,
                                 "batch": BATCH, **shapes})  # fmt: skip
    return sizes


@pytest.mark.long_reference
def test_conv_a_plain_loop(benchmark, run_timed, quick):
    s = _label(benchmark, "archs conv", "plain loop: scheme fill, F.conv2d, std per layer", quick)
    run_timed(lambda: conv_loop(s["depths"], s["conv_widths"]), reference=True)


def test_conv_sweep(benchmark, run_timed, quick):
    s = _label(benchmark, "archs conv", "initsuite.sweep(archs='conv:kernel=3,image=8')", quick)
    arch = f"conv:kernel={KERNEL},image={IMAGE}"
    run_timed(lambda: _sweep(arch, s["depths"], s["conv_widths"]))


@pytest.mark.long_reference
def test_resmlp_a_plain_loop(benchmark, run_timed, quick):
    s = _label(benchmark, "archs resmlp", "plain loop: two Linear per block, std per block", quick)
    run_timed(lambda: resmlp_loop(s["depths"], s["res_widths"]), reference=True)


def test_resmlp_sweep(benchmark, run_timed, quick):
    s = _label(benchmark, "archs resmlp", "initsuite.sweep(archs='resmlp')", quick)
    run_timed(lambda: _sweep("resmlp", s["depths"], s["res_widths"]))


BACKWARD_SCHEMES = ("kaiming_normal", "xavier_normal", "xavier_uniform", "orthogonal")
BACKWARD = {"depth": 50, "widths": (64, 256, 1024)}
BACKWARD_QUICK = {"depth": 6, "widths": (32,)}


def _backward_sweep(quick: bool, backward: bool) -> initsuite.SweepResult:
    size = BACKWARD_QUICK if quick else BACKWARD
    return initsuite.sweep(list(BACKWARD_SCHEMES), ["relu", "tanh"], size["depth"],
                           list(size["widths"]), batch=BATCH, seeds=1, timing=False,
                           pair_cosine=None, backward=backward, progress=False)  # fmt: skip


def backward_floor(quick: bool) -> None:
    """What a backward sweep cannot avoid, per width and family: the forward floor (one draw
    and one product of every scheme × activation's rows per layer; orthogonal's Q applied in
    its Householder form, never formed, as the engine does) plus, walking back, the weight
    drawn again from the saved generator state and the gradient rows' transposed product; no
    statistics, no activation derivatives."""
    size = BACKWARD_QUICK if quick else BACKWARD
    depth, rows = size["depth"], BATCH * 2  # relu, tanh
    for width in size["widths"]:
        # the normal draw serves kaiming_normal, xavier_normal and (its QR) orthogonal
        for family, plain, orthogonal in (("normal", 2, True), ("uniform", 1, False)):
            g = torch.Generator().manual_seed(0)
            h = torch.randn(rows * plain, width, generator=g)
            ho = torch.randn(rows, width, generator=g) if orthogonal else None
            w = torch.empty(width, width)
            states = []
            for _ in range(depth):
                states.append(g.get_state())
                _draw(w, family, g)
                h = h @ w.T
                if ho is not None:
                    a, tau = torch.geqrf(w)
                    ho = torch.ormqr(a, tau, ho, left=False, transpose=True)
            d = torch.randn_like(h)
            do = torch.randn_like(ho) if ho is not None else None
            for state in reversed(states):
                g.set_state(state)
                _draw(w, family, g)
                d = d @ w
                if do is not None:
                    a, tau = torch.geqrf(w)
                    do = torch.ormqr(a, tau, do, left=False, transpose=False)


def _draw(w: torch.Tensor, family: str, g: torch.Generator) -> None:
    if family == "uniform":
        w.uniform_(-1, 1, generator=g)
    else:
        w.normal_(generator=g)


def test_backward_a_forward_sweep(benchmark, run_timed, quick):
    _label(benchmark, "backward", "initsuite.sweep forward only (reference)", quick)
    run_timed(lambda: _backward_sweep(quick, backward=False), reference=True)


def test_backward_floor(benchmark, run_timed, quick):
    _label(benchmark, "backward", "floor: forward floor + redraws + transposed products", quick)
    run_timed(lambda: backward_floor(quick))


def test_backward_sweep(benchmark, run_timed, quick):
    _label(benchmark, "backward", "initsuite.sweep(backward=True)", quick)
    run_timed(lambda: _backward_sweep(quick, backward=True))

"""The backward pass of the MLP engine: gradients of a random read-out, every depth in one
sweep from the top, weights redrawn from checkpointed generator states (the docs' engine
page explains the checkpoints)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from initsuite.engine.stack import (
    LayerDraw,
    Rows,
    Stream,
    apply_activations,
    layer_backward,
    layer_forward,
)
from initsuite.engine.stats import (
    GradStats,
    LayerStats,
    classify,
    frobenius_of_product,
    layer_stats,
)

__all__ = ["GRAD_SEED_OFFSET", "Checkpoint", "checkpoint_spacing", "readout", "run_backward"]


@dataclass(frozen=True)
class Checkpoint:
    """The forward pass before layer ``l + 1``: the generator's state and the stacked
    activations h_l of the members then running (``ids``)."""

    state: Tensor
    ids: list[int]
    h: Tensor


# The loss's random read-out has its own generator, like the input pair.
GRAD_SEED_OFFSET = 0x0B4C_4B0D


def readout(batch: int, width: int, seed: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """R (batch, width) ~ N(0, 1) of the backward loss ``Σ R ⊙ h_L``, drawn from a generator
    seeded with ``seed + GRAD_SEED_OFFSET`` (the weights stay those of the seed's stream)."""
    gen = torch.Generator(device=device).manual_seed(seed + GRAD_SEED_OFFSET)
    return torch.randn((batch, width), generator=gen, device=device, dtype=dtype)


def checkpoint_spacing(top: int) -> int:
    """Layers between checkpoints for a backward pass from depth ``top``: ⌈√top⌉ (0: none)."""
    return max(1, math.isqrt(top - 1) + 1) if top else 0


@dataclass
class _Walk:
    """The backward sweep's state between segments: the tracks (member, depth) yet to start,
    the active ones, stacked in ``g`` (dLoss/dh at the current layer), and the read-out R."""

    tracks: list[tuple[int, int]]
    active: list[tuple[int, int]]
    g: Tensor
    r: Tensor
    r_std: float


@dataclass(frozen=True)
class _Segment:
    """Layers ``first``..``last`` recomputed from their checkpoint for the members ``ids``:
    the generator state before each layer's draw, each layer's input h and pre-activation z
    (stacked over ``ids``)."""

    first: int
    last: int
    ids: list[int]
    states: list[Tensor]
    hs: list[Tensor]
    zs: list[Tensor]


def run_backward(
    stream: Stream,
    draw: LayerDraw,
    checkpoints: dict[int, Checkpoint],
    seg: int,
    results: list[LayerStats],
    depths: Sequence[int],
    every: int,
    explode_at: float | None,
    vanish_at: float | None,
) -> None:
    """Back-propagate ``Loss = Σ R ⊙ h_d`` from the output h_d of every cell of ``depths``
    (R a fixed N(0, 1) tensor, :func:`readout`), filling each member's ``grads[d]``.

    Every depth's gradient runs in one sweep from the deepest layer down, stacked like the
    forward pass: segments of ``seg`` layers, from the top, are recomputed from their
    checkpoints (:func:`_recompute`), then walked back (:func:`_walk_back`). Memory is one
    weight plus O(√depth) activations per member; the cost is two extra draws per layer.
    """
    # tracks (member, depth) whose forward pass reached the depth in range, by member
    tracks = sorted(
        (i, d)
        for d in set(depths)
        if d <= stream.depth
        for i, res in enumerate(results)
        if res.error is None
        and len(res.std) >= d
        and (res.divergence_layer is None or res.divergence_layer > d)
    )
    for i, d in tracks:
        results[i].grads[d] = GradStats([math.nan] * d, [math.nan] * d)
    r = readout(stream.batch, stream.width, stream.seed, draw.draws.device, draw.w.dtype)
    r_std = float(layer_stats(r.reshape(1, -1))[0][0])
    walk = _Walk(tracks, [], r.new_empty((0, stream.batch, stream.width)), r, r_std)
    top = max((d for _, d in tracks), default=0)
    with torch.no_grad():
        for a in reversed(range(1, top + 1, seg)):
            need = sorted({i for i, d in [*walk.tracks, *walk.active] if d >= a})
            if not need:
                continue
            segment = _recompute(stream, draw, checkpoints[a - 1], need, a, min(a + seg - 1, top))
            _walk_back(stream, draw, segment, walk, results, every, explode_at, vanish_at)


def _recompute(
    stream: Stream, draw: LayerDraw, ck: Checkpoint, need: list[int], first: int, last: int
) -> _Segment:
    """Layers ``first``..``last`` of the members ``need``, recomputed from the checkpoint
    before ``first``, keeping what the walk back needs."""
    pos = {i: row for row, i in enumerate(ck.ids)}
    h = ck.h[[pos[i] for i in need]]
    rows = Rows.of(stream.members, need, draw.draws.device, draw.w.dtype)
    gen = draw.draws.generator
    gen.set_state(ck.state)
    segment = _Segment(first, last, need, [], [], [])
    for _ in range(first, last + 1):
        segment.states.append(gen.get_state())
        draw.next(h)
        z = layer_forward(draw, h, rows, activate=False)
        segment.hs.append(h)
        segment.zs.append(z)
        h = apply_activations(z, rows)
    return segment


def _walk_back(
    stream: Stream,
    draw: LayerDraw,
    segment: _Segment,
    walk: _Walk,
    results: list[LayerStats],
    every: int,
    explode_at: float | None,
    vanish_at: float | None,
) -> None:
    """Walk ``segment`` back from its top layer, starting the tracks whose depth it holds
    (dLoss/dh = R there) and recording each layer's gradient statistics; each layer's
    weight is drawn again from its saved generator state (the top one is the last drawn)."""
    device, dtype = draw.draws.device, draw.w.dtype
    tiny = torch.finfo(dtype).tiny
    a, e = segment.first, segment.last
    npos = {i: row for row, i in enumerate(segment.ids)}
    rows: Rows | None = None
    pending: list[tuple[int, list[tuple[int, int]], Tensor, Tensor, Tensor]] = []
    for layer in range(e, a - 1, -1):
        starting = [t for t in walk.tracks if t[1] == layer]
        if starting:  # these cells' outputs: dLoss/dh = R
            walk.tracks = [t for t in walk.tracks if t[1] != layer]
            merged = walk.active + starting
            order = sorted(range(len(merged)), key=lambda k: merged[k])
            walk.g = torch.cat([walk.g, walk.r.expand(len(starting), -1, -1)])[order]
            walk.active = [merged[k] for k in order]
        if not walk.active:
            continue
        if starting or rows is None or len(rows.ids) != len(walk.active):
            rows = Rows.of(stream.members, [i for i, _ in walk.active], device, dtype)
        idx = [npos[i] for i, _ in walk.active]
        std_t, _, finite_t = layer_stats(walk.g.reshape(len(walk.active), -1))
        with torch.enable_grad():  # δ = dLoss/dz = g ⊙ φ'(z), one VJP per block
            z = segment.zs[layer - a][idx].requires_grad_(True)
            (delta,) = torch.autograd.grad(apply_activations(z, rows), z, walk.g)
        norm_t = frobenius_of_product(delta, segment.hs[layer - a][idx])
        pending.append((layer, list(walk.active), std_t, finite_t, norm_t))
        if layer != e:  # the segment's top weight is the one drawn last
            draw.draws.generator.set_state(segment.states[layer - a])
            draw.next(segment.hs[layer - a])
        walk.g = layer_backward(draw, delta, rows)
        if layer == 1:
            std_t, _, finite_t = layer_stats(walk.g.reshape(len(walk.active), -1))
            pending.append((0, list(walk.active), std_t, finite_t, norm_t))
        if every == 1 or layer == a:
            done = _record_grads(pending, results, tiny, walk.r_std, explode_at, vanish_at)
            pending = []
            if done:
                keep = [k for k, t in enumerate(walk.active) if t not in done]
                walk.active = [walk.active[k] for k in keep]
                walk.g = walk.g[keep]


def _record_grads(
    pending: list[tuple[int, list[tuple[int, int]], Tensor, Tensor, Tensor]],
    results: list[LayerStats],
    tiny: float,
    r_std: float,
    explode_at: float | None,
    vanish_at: float | None,
) -> set[tuple[int, int]]:
    """Store a window of layers' backward statistics (layer 0: the input's gradient,
    dLoss/dx); the tracks whose gradient left the range in it (classified like the forward
    pass, relative to the read-out's std)."""
    done: set[tuple[int, int]] = set()
    for layer, tracks, std_t, finite_t, norm_t in pending:
        stds, finites, norms = std_t.tolist(), finite_t.tolist(), norm_t.tolist()
        for row, (i, d) in enumerate(tracks):
            if (i, d) in done:
                continue
            gs = results[i].grads[d]
            if layer == 0:
                gs.input_grad_std = stds[row]
            else:
                gs.grad_std[layer - 1] = stds[row]
                gs.weight_grad_norm[layer - 1] = norms[row]
            kind = classify(stds[row], finites[row], tiny, r_std, explode_at, vanish_at)
            if kind is not None:
                gs.divergence_layer, gs.divergence_kind = layer, kind
                done.add((i, d))
    return done

"""The MLP engine: runs streams of cells and records per-layer statistics.

A *stream* is every cell that consumes the same random numbers (one seed, width, device and
dtype, and one base draw or one scheme with its resolved parameters); its *members* are its
(scheme, activation) cells. Each layer is drawn once (:mod:`initsuite.engine.draws`) and every
member is pushed through it as one stacked product; depths are prefixes of the deepest run;
a member stops at its divergence layer. The docs' engine page explains the sharing, its
rounding and the backward pass's checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from initsuite.core.devices import DTYPES
from initsuite.engine.backward import Checkpoint, checkpoint_spacing, run_backward
from initsuite.engine.draws import CellDraws
from initsuite.engine.loop import run_layers
from initsuite.engine.stack import LayerDraw, Rows, Stream, apply_activations, layer_forward
from initsuite.engine.stats import LayerStats, layer_stats, pair_cosine

__all__ = ["PAIR_SEED_OFFSET", "derive_cells", "input_pair", "run_stream"]


# The input pair has its own generator, so the weights stay those of the seed's stream.
PAIR_SEED_OFFSET = 0x5EED_C0DE


def input_pair(width: int, cosine: float, seed: int, device: torch.device,
               dtype: torch.dtype) -> Tensor:  # fmt: skip
    """Two inputs (2, width) of squared norm ``width`` (q = 1) whose cosine is exactly
    ``cosine``, drawn from a generator seeded with ``seed + PAIR_SEED_OFFSET``."""
    gen = torch.Generator(device=device).manual_seed(seed + PAIR_SEED_OFFSET)
    z = torch.randn((2, width), generator=gen, device=device, dtype=torch.float64)
    u = z[0] / z[0].norm()
    v = z[1] - (z[1] @ u) * u
    v = v / v.norm()
    c = float(cosine)
    pair = torch.stack([u, c * u + math.sqrt(max(1 - c * c, 0.0)) * v]) * math.sqrt(width)
    return pair.to(dtype)


def run_stream(
    stream: Stream,
    explode_at: float | None = None,
    vanish_at: float | None = None,
    check_every: int | None = None,
    backward: Sequence[int] = (),
) -> list[LayerStats]:
    """Run the deepest cell of each member of ``stream``; one LayerStats per member.

    A member stops at its divergence layer; the stream stops drawing once every member has.

    Args:
        stream: the cells to run (see :class:`Stream`).
        explode_at, vanish_at: also stop a member whose std leaves this multiple of the
            input std (None: only overflow and underflow stop it).
        check_every: layers between reads of the statistics (default 1 on CPU, 8 elsewhere).
        backward: depths whose cells also get a backward pass (``LayerStats.grads``, see
            :func:`~initsuite.engine.backward.run_backward`), for the members whose forward
            pass reached that depth in range.
    """
    device = torch.device(stream.device)
    dtype = DTYPES[stream.dtype]
    every = check_every or (1 if device.type == "cpu" else 8)
    draws = CellDraws(stream.seed, device, stream.bias, stream.inputs)
    x = draws.input((stream.batch, stream.width), dtype)
    s0, _, _ = layer_stats(x.reshape(1, -1))
    results = [LayerStats(float(s0[0]), [], []) for _ in stream.members]
    draw = LayerDraw(stream, draws, dtype)
    top = min(max(backward, default=0), stream.depth)
    seg = checkpoint_spacing(top)
    steps = _Steps(stream, draw, x, top, seg)
    run_layers(steps, steps.h, results, stream.depth, every, explode_at, vanish_at)
    if top:
        run_backward(stream, draw, steps.checkpoints, seg, results, backward, every, explode_at,
                     vanish_at)  # fmt: skip
    return results


class _Steps:
    """The MLP's layers (:mod:`initsuite.engine.stack`) for the shared loop
    (:func:`~initsuite.engine.loop.run_layers`), with the input pair's cosines and the
    checkpoints the backward pass needs (every ``seg`` layers up to ``top``)."""

    def __init__(self, stream: Stream, draw: LayerDraw, x: Tensor, top: int, seg: int) -> None:
        members, n = stream.members, len(stream.members)
        self.stream, self.draw, self.top, self.seg = stream, draw, top, seg
        self.device, self.dtype = draw.draws.device, x.dtype
        self.rows = Rows.of(members, list(range(n)), self.device, self.dtype)
        b = stream.batch
        self.h = x.expand(n, b, stream.width)
        self.pair: Tensor | None = None
        self.joined = False
        if stream.pair_cosine is not None:
            p0 = input_pair(stream.width, stream.pair_cosine, stream.seed, self.device,
                            self.dtype)  # fmt: skip
            # Four rows (the pair twice): blocks of 4 rows came out bit for bit the same
            # stacked as alone on this CPU's GEMM (odd blocks did not), so a cell's cosine
            # does not depend on its company (tested). When the batch is itself a multiple
            # of 4, the pair rides in the batch's product (every member's block still starts
            # on a multiple of 4, so no row's rounding changes); otherwise it takes a
            # product of its own.
            self.pair = p0.repeat(2, 1).expand(n, 4, stream.width)
            self.joined = b % 4 == 0
            if self.joined:
                self.h = torch.cat([self.h, self.pair], dim=1)
        self.checkpoints: dict[int, Checkpoint] = {}

    def step(self, layer: int, h: Tensor, ids: list[int]) -> tuple[Tensor, Tensor, Tensor | None]:
        draw, rows, b = self.draw, self.rows, self.stream.batch
        if self.seg and layer <= self.top and (layer - 1) % self.seg == 0:
            state = draw.draws.generator.get_state()
            self.checkpoints[layer - 1] = Checkpoint(state, rows.ids, h[:, :b])
        draw.next(h[:, :b])
        cos_t = None
        if self.joined:
            pre = layer_forward(draw, h, rows, activate=False)
            cos_t = pair_cosine(pre[:, b:])
            h = apply_activations(pre, rows)
        else:
            h = layer_forward(draw, h, rows)
            if self.pair is not None:  # its own product: the batch rows' rounding is unchanged
                pre = layer_forward(draw, self.pair, rows, activate=False)
                cos_t = pair_cosine(pre)
                self.pair = apply_activations(pre, rows)
        return h, h[:, :b].reshape(len(rows.ids), -1), cos_t

    def keep(self, rows: list[int], ids: list[int]) -> None:
        self.rows = Rows.of(self.stream.members, ids, self.device, self.dtype)
        if self.pair is not None and not self.joined:
            self.pair = self.pair[rows]


def derive_cells(stats: LayerStats, depths: Sequence[int]) -> Iterator[dict[str, Any]]:
    """Cell statistics for each depth, read off the deepest run (a depth-d cell is its prefix).

    ``growth_per_layer`` is (std_k / input_std)^(1/k) at the last layer k ≤ depth whose std is
    finite: the geometric mean of the per-layer std ratios.
    """
    for depth in depths:
        computed = stats.std[:depth]
        div = stats.divergence_layer
        diverged = div is not None and div <= depth
        final = computed[-1] if computed else math.nan
        growth = math.nan
        for k in range(len(computed), 0, -1):
            s = computed[k - 1]
            if math.isfinite(s):
                growth = (s / stats.input_std) ** (1.0 / k) if stats.input_std > 0 else math.nan
                break
        yield {
            "depth": depth,
            "input_std": stats.input_std,
            "divergence_layer": div if diverged else None,
            "divergence_kind": stats.divergence_kind if diverged else None,
            "final_std": final if stats.error is None else math.nan,
            "growth_per_layer": growth if stats.error is None else math.nan,
            "error": stats.error,
        }

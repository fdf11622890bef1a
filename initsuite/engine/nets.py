"""The conv and residual-MLP engines (:mod:`initsuite.engine.archs`): a stream's members
share every draw (:mod:`initsuite.engine.draws`) and differ by activation and, in a stream of
a shared base draw B (common random numbers), by the scale s of their weights s·B; they run
stacked, one convolution or product per layer.

Weights live one layer at a time, and a member stops at its divergence layer. Conv depths
are prefixes of the deepest run. Residual nets are run once per depth: α = 1/√L and the
residual schemes (Fixup, GPT-2) depend on the number of blocks L, so a shallower net is not
a prefix of a deeper one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from initsuite.core.devices import DTYPES
from initsuite.engine.archs import Arch
from initsuite.engine.draws import CellDraws
from initsuite.engine.stack import Member, Stream, base_fill
from initsuite.engine.stats import LayerStats, classify, layer_stats
from initsuite.schemes import LayerContext

__all__ = ["run_arch_stream"]


def run_arch_stream(
    stream: Stream,
    arch: Arch,
    depths: Sequence[int],
    explode_at: float | None = None,
    vanish_at: float | None = None,
) -> dict[int, list[LayerStats]]:
    """The statistics of every member's cell at each depth: ``{depth: [LayerStats per
    member]}`` (conv: one run at the deepest depth, shared by all; resmlp: one per depth)."""
    if arch.name == "conv":
        stats = _run(stream, arch, max(depths), explode_at, vanish_at)
        return dict.fromkeys(depths, stats)
    if arch.name == "resmlp":
        return {d: _run(stream, arch, d, explode_at, vanish_at) for d in depths}
    raise ValueError(f"run_arch_stream does not run {arch.name!r} (the MLP engine does)")


def _run(
    stream: Stream, arch: Arch, depth: int, explode_at: float | None, vanish_at: float | None
) -> list[LayerStats]:
    device, dtype = torch.device(stream.device), DTYPES[stream.dtype]
    tiny = torch.finfo(dtype).tiny
    draws = CellDraws(stream.seed, device)
    width, batch = stream.width, stream.batch
    members = stream.members
    conv = arch.name == "conv"
    shape = (batch, width, arch.get("image"), arch.get("image")) if conv else (batch, width)
    x = draws.input(shape, dtype)
    input_std = float(layer_stats(x.reshape(1, -1))[0][0])
    results = [LayerStats(input_std, [], []) for _ in members]
    alive = list(range(len(members)))  # the members still running, in stack order
    h = x.expand(len(members), *shape)  # every member's input, stacked: (k, batch, ...)
    fan = arch.fan(width)
    k = arch.get("kernel") if conv else 1
    w = torch.empty((width, width, k, k) if conv else (width, width), device=device, dtype=dtype)
    b = torch.empty((width,), device=device, dtype=dtype) if stream.bias else None

    def layer(t: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        """The layer on stacked inputs t (k, batch, ...): one convolution for all k members,
        and one product where each member's block of rows is a multiple of 4 rows (blocks
        of 4 rows come out of this CPU's GEMM bit for bit as when computed alone, odd blocks
        do not: as in the MLP engine), so that a cell does not depend on its company."""
        if conv:
            flat = t.reshape(-1, *t.shape[2:])
            return F.conv2d(flat, weight, bias, padding=k // 2).view(t.shape)
        if t.shape[1] % 4 == 0 or t.shape[0] == 1:
            return F.linear(t.reshape(-1, t.shape[-1]), weight, bias).view(t.shape)
        return torch.stack([F.linear(row, weight, bias) for row in t])

    def draw(context: LayerContext, first_input: Tensor) -> None:
        if stream.base is not None:  # B itself; each member's scale goes on its input
            draws.layer(w, b, base_fill(stream.base))
            return
        # data-dependent schemes (LSUV) see the layer's bias-free output on the first
        # member's input (their streams have one member: the data depend on the activation)
        data = lambda weight: layer(first_input[None], weight)[0]  # noqa: E731
        draws.layer(w, b, lambda weight, gen: members[0].fill(weight, gen, context, data))

    def scaled(t: Tensor, rows: list[int]) -> Tensor:
        """Each member's rows times its scale s: (s·x)·Bᵀ is x·(s·B)ᵀ, as in the MLP engine."""
        scales = [members[i].scale for i in rows]
        if all(c == 1.0 for c in scales):
            return t
        view = (len(rows),) + (1,) * (t.dim() - 1)
        return t * torch.tensor(scales, device=t.device, dtype=t.dtype).view(view)

    with torch.no_grad():
        for step in range(1, depth + 1):
            if not alive:
                break
            acts = [members[i].activation for i in alive]
            rows = list(alive)
            if conv:
                draw(LayerContext(step, depth, fan, fan), h[0])
                y = _activate(layer(scaled(h, rows), w, b), acts)
            else:

                def branch(t: Tensor, weight: Tensor, rows: list[int] = rows) -> Tensor:
                    return layer(scaled(t, rows), weight, b)

                y = _block(arch, members[0], acts, h, step, depth, w, draws.generator, draw,
                           branch)  # fmt: skip
            std_t, mean_t, finite_t = layer_stats(y.reshape(len(alive), -1))
            stds, means, finites = std_t.tolist(), mean_t.tolist(), finite_t.tolist()
            keep = []
            for row, i in enumerate(alive):
                res = results[i]
                res.std.append(stds[row])
                res.mean.append(means[row])
                res.cosine.append(math.nan)
                kind = classify(stds[row], finites[row], tiny, input_std, explode_at, vanish_at)
                if kind is not None:
                    res.divergence_layer, res.divergence_kind = step, kind
                else:
                    keep.append(row)
            if len(keep) < len(alive):
                alive = [alive[row] for row in keep]
                y = y[keep]
            h = y
    return results


def _activate(t: Tensor, acts: Sequence[Callable[[Tensor], Tensor]]) -> Tensor:
    """Each member's activation on its rows of the stacked t (k, batch, ...)."""
    if all(a is acts[0] for a in acts):
        return acts[0](t)
    out = torch.empty_like(t)
    for row, act in enumerate(acts):
        out[row] = act(t[row])
    return out


def _block(
    arch: Arch,
    first: Member,
    acts: Sequence[Callable[[Tensor], Tensor]],
    h: Tensor,
    block: int,
    blocks: int,
    w: Tensor,
    gen: torch.Generator,
    draw: Callable[[LayerContext, Tensor], None],
    layer: Callable[[Tensor, Tensor], Tensor],
) -> Tensor:
    """One residual block h + α·f(h), f(h) = W_m φ(⋯ φ(W_1 φ(h))), for the running members'
    stacked streams h (k, batch, width), member r with activation ``acts[r]``; ``first``
    draws (every member shares its draws)."""
    m, width = arch.get("branch"), w.shape[0]
    alpha = torch.full((1,), arch.alpha(blocks), dtype=torch.float64)
    if "context" in first.scheme.info.uses:  # SkipInit/ReZero set α; other schemes leave it
        first.fill(alpha, gen, LayerContext.resmlp(block, blocks, m, 0, width))
    a = float(alpha[0])
    u = _activate(h, acts)
    for j in range(1, m + 1):
        draw(LayerContext.resmlp(block, blocks, m, j, width), u[0])
        u = layer(u, w)
        if j < m:
            u = _activate(u, acts)
    return h + a * u if a != 0.0 else h.clone()

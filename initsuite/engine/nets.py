"""The conv and residual-MLP engines (:mod:`initsuite.engine.archs`): a stream's members
share every draw (:mod:`initsuite.engine.draws`) and differ by activation; each runs on its
own tensors.

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
from initsuite.engine.stack import Member, Stream
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
    hs: dict[int, Tensor] = dict.fromkeys(range(len(members)), x)
    fan = arch.fan(width)
    k = arch.get("kernel") if conv else 1
    w = torch.empty((width, width, k, k) if conv else (width, width), device=device, dtype=dtype)
    b = torch.empty((width,), device=device, dtype=dtype) if stream.bias else None

    def layer(h: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        if conv:
            return F.conv2d(h, weight, bias, padding=k // 2)
        return F.linear(h, weight, bias)

    def draw(context: LayerContext, first_input: Tensor) -> None:
        # data-dependent schemes (LSUV) see the layer's bias-free output on the first
        # member's input (their streams have one member: the data depend on the activation)
        data = lambda weight: layer(first_input, weight)  # noqa: E731
        draws.layer(w, b, lambda weight, gen: members[0].fill(weight, gen, context, data))

    with torch.no_grad():
        for step in range(1, depth + 1):
            if not hs:
                break
            first = next(iter(hs))
            if conv:
                draw(LayerContext(step, depth, fan, fan), hs[first])
                out = {i: members[i].activation(layer(h, w, b)) for i, h in hs.items()}
            else:
                out = _block(arch, members, hs, step, depth, w, draws.generator, draw,
                             lambda h, weight: layer(h, weight, b))  # fmt: skip
            for i, y in out.items():
                std_t, mean_t, finite_t = layer_stats(y.reshape(1, -1))
                std, mean = float(std_t[0]), float(mean_t[0])
                res = results[i]
                res.std.append(std)
                res.mean.append(mean)
                res.cosine.append(math.nan)
                kind = classify(std, bool(finite_t[0]), tiny, input_std, explode_at, vanish_at)
                if kind is not None:
                    res.divergence_layer, res.divergence_kind = step, kind
                    del hs[i]
                else:
                    hs[i] = y
    return results


def _block(
    arch: Arch,
    members: Sequence[Member],
    hs: dict[int, Tensor],
    block: int,
    blocks: int,
    w: Tensor,
    gen: torch.Generator,
    draw: Callable[[LayerContext, Tensor], None],
    layer: Callable[[Tensor, Tensor], Tensor],
) -> dict[int, Tensor]:
    """One residual block h + α·f(h), f(h) = W_m φ(⋯ φ(W_1 φ(h))), for every running member."""
    m, width = arch.get("branch"), w.shape[0]
    alpha = torch.full((1,), arch.alpha(blocks), dtype=torch.float64)
    scheme = members[0].scheme
    if "context" in scheme.info.uses:  # SkipInit/ReZero set α; other schemes leave it
        members[0].fill(alpha, gen, LayerContext.resmlp(block, blocks, m, 0, width))
    a = float(alpha[0])
    us = {i: members[i].activation(h) for i, h in hs.items()}
    for j in range(1, m + 1):
        draw(LayerContext.resmlp(block, blocks, m, j, width), us[next(iter(us))])
        us = {i: layer(u, w) for i, u in us.items()}
        if j < m:
            us = {i: members[i].activation(u) for i, u in us.items()}
    return {i: hs[i] + a * us[i] if a != 0.0 else hs[i].clone() for i in hs}

"""The engine of the nets beside the MLP (conv, residual MLP: :mod:`initsuite.engine.archs`):
a stream's members share every draw (:mod:`initsuite.engine.draws`) and differ by
activation and, in a stream of a shared base draw B (common random numbers), by the scale s
of their weights s·B; they run stacked, one convolution or product per layer, through the
architecture's :meth:`~initsuite.engine.archs.Arch.step` and the shared loop
(:func:`~initsuite.engine.loop.run_layers`).

Weights live one layer at a time, and a member stops at its divergence layer. Conv depths
are prefixes of the deepest run. Residual nets are run once per depth: α = 1/√L and the
residual schemes (Fixup, GPT-2) depend on the number of blocks L, so a shallower net is not
a prefix of a deeper one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from initsuite.core.devices import DTYPES
from initsuite.engine.draws import CellDraws
from initsuite.engine.loop import run_layers
from initsuite.engine.stack import Stream, base_fill
from initsuite.engine.stats import LayerStats, layer_stats
from initsuite.schemes import LayerContext

__all__ = ["Net", "NetArch", "activate", "run_net", "stacked_linear"]


class NetArch(Protocol):
    """What :func:`run_net` needs of an architecture (:class:`~initsuite.engine.archs.Arch`)."""

    def input_shape(self, batch: int, width: int) -> tuple[int, ...]: ...

    def weight_shape(self, width: int) -> tuple[int, ...]: ...

    def product(self, t: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor: ...

    def step(self, net: Net, h: Tensor, layer: int, depth: int) -> Tensor: ...


class Net:
    """One run of a stream through an architecture: its draws, the layer's weight ``w`` and
    bias ``b`` (drawn in place each layer), and the running members ``rows``."""

    def __init__(self, stream: Stream, arch: NetArch, depth: int) -> None:
        device, dtype = torch.device(stream.device), DTYPES[stream.dtype]
        self.stream, self.arch, self.depth = stream, arch, depth
        self.members = stream.members
        self.draws = CellDraws(stream.seed, device, stream.bias, stream.inputs)
        self.x = self.draws.input(arch.input_shape(stream.batch, stream.width), dtype)
        self.w = torch.empty(arch.weight_shape(stream.width), device=device, dtype=dtype)
        self.b = (torch.empty((stream.width,), device=device, dtype=dtype)
                  if stream.bias is not None else None)  # fmt: skip
        self.rows = list(range(len(self.members)))  # the members still running, in stack order

    def draw(self, context: LayerContext, first_input: Tensor) -> None:
        """Draw the layer's ``w`` and ``b``: the base B of a shared stream (each member's
        scale goes on its input, :meth:`scaled`), else the stream's scheme at ``context``."""
        if self.stream.base is not None:
            self.draws.layer(self.w, self.b, base_fill(self.stream.base))
            return
        # data-dependent schemes (LSUV) see the layer's bias-free output on the first
        # member's input (their streams have one member: the data depend on the activation)
        data = lambda weight: self.arch.product(first_input[None], weight)[0]  # noqa: E731
        first = self.members[0]
        self.draws.layer(self.w, self.b, lambda weight, gen: first.fill(weight, gen, context, data))

    def scaled(self, t: Tensor) -> Tensor:
        """Each member's rows times its scale s: (s·x)·Bᵀ is x·(s·B)ᵀ, as in the MLP engine."""
        scales = [self.members[i].scale for i in self.rows]
        if all(c == 1.0 for c in scales):
            return t
        view = (len(self.rows),) + (1,) * (t.dim() - 1)
        return t * torch.tensor(scales, device=t.device, dtype=t.dtype).view(view)

    def activate(self, t: Tensor) -> Tensor:
        """Each running member's activation on its rows of the stacked t (k, batch, ...)."""
        return activate(t, [self.members[i].activation for i in self.rows])

    def step(self, layer: int, h: Tensor, ids: list[int]) -> tuple[Tensor, Tensor, None]:
        self.rows = list(ids)
        y = self.arch.step(self, h, layer, self.depth)
        return y, y.reshape(len(ids), -1), None

    def keep(self, rows: list[int], ids: list[int]) -> None:
        self.rows = list(ids)


def run_net(
    stream: Stream,
    arch: NetArch,
    depth: int,
    explode_at: float | None = None,
    vanish_at: float | None = None,
) -> list[LayerStats]:
    """Every member's statistics over ``depth`` layers (or blocks) of ``arch``, read at every
    layer."""
    net = Net(stream, arch, depth)
    x = net.x
    input_std = float(layer_stats(x.reshape(1, -1))[0][0])
    results = [LayerStats(input_std, [], []) for _ in net.members]
    h = x.expand(len(net.members), *x.shape)  # every member's input, stacked: (k, batch, ...)
    run_layers(net, h, results, depth, 1, explode_at, vanish_at)
    return results


def stacked_linear(t: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """A Linear layer on stacked inputs t (k, batch, width): one product where each member's
    block of rows is a multiple of 4 rows (blocks of 4 rows come out of this CPU's GEMM bit
    for bit as when computed alone, odd blocks do not: as in the MLP engine), so that a cell
    does not depend on its company."""
    if t.shape[1] % 4 == 0 or t.shape[0] == 1:
        return F.linear(t.reshape(-1, t.shape[-1]), weight, bias).view(t.shape)
    return torch.stack([F.linear(row, weight, bias) for row in t])


def activate(t: Tensor, acts: Sequence[Callable[[Tensor], Tensor]]) -> Tensor:
    """Each member's activation on its rows of the stacked t (k, batch, ...)."""
    if all(a is acts[0] for a in acts):
        return acts[0](t)
    out = torch.empty_like(t)
    for row, act in enumerate(acts):
        out[row] = act(t[row])
    return out

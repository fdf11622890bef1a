"""The MLP engine: runs cells and records per-layer statistics.

A *group* is every cell that consumes the same random numbers: one scheme with one set of
resolved parameters, one seed, width, device and dtype. Its activations share the input and
every weight draw, so the group draws each layer once and pushes all its activations through
it as one stacked product; its depths are prefixes of the deepest run (layers are drawn in
order from the seed's generator), so only the deepest is computed. Each cell's weights are
exactly those of a stand-alone run of that cell, and its statistics match a plain reference
(tested). The one difference: when the batch is not a multiple of the GEMM's row tile, a
stacked product may round a row differently (a few ulps) from a stand-alone product, which a
chaotic net amplifies like any other perturbation. The same grid always gives the same bits.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .activations import Activation
from .config import DTYPES
from .schemes import Scheme

__all__ = ["Group", "LayerStats", "derive_cells", "layer_stats", "run_group"]


@dataclass(frozen=True)
class Group:
    """Cells that share every random draw; see the module docstring."""

    scheme: Scheme
    params: tuple[tuple[str, Any], ...]  # resolved scheme parameters
    activations: tuple[Activation, ...]
    width: int
    depth: int  # the deepest requested depth; shallower ones are prefixes
    batch: int
    seed: int
    device: str
    dtype: str
    bias: bool = False


@dataclass
class LayerStats:
    """The statistics of one activation's run, layer by layer (index 0 is layer 1)."""

    input_std: float
    std: list[float]
    mean: list[float]
    divergence_layer: int | None = None
    divergence_kind: str | None = None
    error: str | None = None


def layer_stats(y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Std (correction=1), mean and all-finite flag of each row of ``y`` (k, n), in float64.

    Values are divided by their largest magnitude before the moments are taken, so the
    statistics cannot overflow or lose subnormal precision before the data itself does. Rows
    holding inf/nan get NaN statistics.
    """
    y = y.to(torch.float64)
    finite = torch.isfinite(y).all(dim=1)
    amax = y.abs().amax(dim=1)
    scale = torch.where(finite & (amax > 0), amax, torch.ones_like(amax))
    z = y / scale[:, None]
    std = z.std(dim=1) * scale
    mean = z.mean(dim=1) * scale
    nan = torch.full_like(std, math.nan)
    return torch.where(finite, std, nan), torch.where(finite, mean, nan), finite


def classify(
    std: float,
    finite: bool,
    tiny: float,
    input_std: float,
    explode_at: float | None,
    vanish_at: float | None,
) -> str | None:
    """The divergence kind of a layer with this std, or None if the signal is still fine."""
    if not finite:
        return "overflow"
    if std < tiny:
        return "underflow"
    if explode_at is not None and std > explode_at * input_std:
        return "explode"
    if vanish_at is not None and std < vanish_at * input_std:
        return "vanish"
    return None


def run_group(
    group: Group, explode_at: float | None = None, vanish_at: float | None = None
) -> list[LayerStats]:
    """Run the deepest cell of each activation in ``group``; one LayerStats per activation.

    A cell stops at its divergence layer; the group stops drawing once every cell has.
    """
    device = torch.device(group.device)
    dtype = DTYPES[group.dtype]
    tiny = torch.finfo(dtype).tiny
    params = dict(group.params)
    fn = group.scheme.info.fn
    n, batch, width = len(group.activations), group.batch, group.width

    gen = torch.Generator(device=device).manual_seed(group.seed)
    x = torch.randn((batch, width), generator=gen, device=device, dtype=dtype)
    s0, _, _ = layer_stats(x.reshape(1, -1))
    input_std = float(s0[0])
    results = [LayerStats(input_std, [], []) for _ in range(n)]

    w = torch.empty((width, width), device=device, dtype=dtype)
    b = torch.empty((width,), device=device, dtype=dtype) if group.bias else None
    bound = 1.0 / math.sqrt(width)  # nn.Linear's default bias init, U(±1/√fan_in)
    alive = list(range(n))
    h_in = x.expand(n, batch, width)
    with torch.no_grad():
        for layer in range(1, group.depth + 1):
            fn(w, **params, generator=gen)
            if b is not None:
                b.uniform_(-bound, bound, generator=gen)
            k = len(alive)
            h = F.linear(h_in.reshape(k * batch, width), w, b).view(k, batch, width)
            y = torch.empty_like(h)
            for row, i in enumerate(alive):
                y[row] = group.activations[i](h[row])
            std_t, mean_t, finite_t = layer_stats(y.view(k, -1))
            stds, means, finites = std_t.tolist(), mean_t.tolist(), finite_t.tolist()
            keep = []
            for row, i in enumerate(alive):
                res = results[i]
                res.std.append(stds[row])
                res.mean.append(means[row])
                kind = classify(stds[row], finites[row], tiny, input_std, explode_at, vanish_at)
                if kind is None:
                    keep.append(row)
                else:
                    res.divergence_layer, res.divergence_kind = layer, kind
            if not keep:
                break
            if len(keep) < k:
                alive = [alive[r] for r in keep]
                y = y[keep]
            h_in = y
    return results


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

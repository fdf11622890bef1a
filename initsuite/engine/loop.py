"""The one loop every engine runs: draw → stacked product → statistics → classify → drop.

The steps differ by architecture (:class:`Steps`: the MLP engine's
:mod:`initsuite.engine.mlp`, the nets' :mod:`initsuite.engine.nets`); the loop records each
layer's statistics, classifies each member's divergence and drops the members that stopped.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import Tensor

from initsuite.engine.stats import LayerStats, classify, layer_stats

__all__ = ["Steps", "record", "run_layers"]

Pending = list[tuple[int, list[int], Tensor, Tensor, Tensor, Tensor | None]]


class Steps(Protocol):
    """One architecture's layers on stacked member streams."""

    def step(self, layer: int, h: Tensor, ids: list[int]) -> tuple[Tensor, Tensor, Tensor | None]:
        """Draw and apply ``layer`` to the running members ``ids`` (stacked as ``h``): the
        next h, its values for the statistics (one row per member) and the input pair's
        cosines (None: no pair)."""

    def keep(self, rows: list[int], ids: list[int]) -> None:
        """Only the stack's ``rows`` (members ``ids``) run on (their h is cut already)."""


def run_layers(
    steps: Steps,
    h: Tensor,
    results: list[LayerStats],
    depth: int,
    every: int,
    explode_at: float | None,
    vanish_at: float | None,
) -> None:
    """Push every member, stacked as ``h`` (k, ...), through layers 1..``depth``, appending
    to ``results`` (one per member); statistics are read every ``every`` layers, and a
    member stops at its divergence layer."""
    tiny, input_std = torch.finfo(h.dtype).tiny, results[0].input_std
    ids = list(range(len(results)))  # the members still running, in stack order
    pending: Pending = []
    with torch.no_grad():
        for layer in range(1, depth + 1):
            h, values, cos_t = steps.step(layer, h, ids)
            std_t, mean_t, finite_t = layer_stats(values)
            pending.append((layer, ids, std_t, mean_t, finite_t, cos_t))
            if layer % every and layer != depth:
                continue
            done = record(pending, results, tiny, input_std, explode_at, vanish_at)
            pending = []
            if done:
                keep = [row for row, i in enumerate(ids) if i not in done]
                if not keep:
                    break
                ids = [ids[r] for r in keep]
                h = h[keep]
                steps.keep(keep, ids)


def record(
    pending: Pending,
    results: list[LayerStats],
    tiny: float,
    input_std: float,
    explode_at: float | None,
    vanish_at: float | None,
) -> set[int]:
    """Append a window of layers' statistics; the members that diverged in it."""
    done: set[int] = set()
    for layer, alive, std_t, mean_t, finite_t, cos_t in pending:
        stds, means, finites = std_t.tolist(), mean_t.tolist(), finite_t.tolist()
        coss = cos_t.tolist() if cos_t is not None else [math.nan] * len(alive)
        for row, i in enumerate(alive):
            if i in done:
                continue
            res = results[i]
            res.std.append(stds[row])
            res.mean.append(means[row])
            res.cosine.append(coss[row])
            kind = classify(stds[row], finites[row], tiny, input_std, explode_at, vanish_at)
            if kind is not None:
                res.divergence_layer, res.divergence_kind = layer, kind
                done.add(i)
    return done

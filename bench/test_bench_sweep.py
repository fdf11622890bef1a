"""End to end: ``initsuite.studies.sweep.runner`` against the plain tutorial-style loop it replaces.

Both compute the same statistics for the same grid: every cell's per-layer std of the
activations, for a bias-free MLP fed x ~ N(0, 1) of shape (batch, width), every draw from a
``torch.Generator`` seeded with the cell's seed. The loop is what one writes by hand: one
``nn.Sequential`` per cell (whose constructor draws every weight once more), ``torch.nn.init``
on each layer, and a ``.std().item()`` per layer. ``test_baseline_floor`` is the other
reference: only the work no engine can avoid (see :func:`floor`). The summary prints
``test_sweep`` as a multiple of each.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import nn

import initsuite

Init = Callable[[torch.Tensor, torch.Generator], object]

TORCH_INIT: dict[str, Init] = {
    "normal": lambda w, g: nn.init.normal_(w, generator=g),
    "lecun_normal": lambda w, g: nn.init.normal_(w, 0.0, 1 / math.sqrt(w.shape[1]), generator=g),
    "xavier_uniform": lambda w, g: nn.init.xavier_uniform_(w, generator=g),
    "xavier_normal": lambda w, g: nn.init.xavier_normal_(w, generator=g),
    "kaiming_uniform": lambda w, g: nn.init.kaiming_uniform_(w, generator=g),
    "kaiming_normal": lambda w, g: nn.init.kaiming_normal_(w, generator=g),
    "torch_default": lambda w, g: nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g),
    "orthogonal": lambda w, g: nn.init.orthogonal_(w, generator=g),
}
# The base draw each scheme is a scaling of (what an engine cannot avoid drawing).
FAMILY = {"normal": "normal", "lecun_normal": "normal", "xavier_normal": "normal",
          "kaiming_normal": "normal", "orthogonal": "normal", "xavier_uniform": "uniform",
          "kaiming_uniform": "uniform", "torch_default": "uniform"}  # fmt: skip
ACTIVATION: dict[str, Callable[[], nn.Module]] = {
    "linear": nn.Identity,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
}


@dataclass(frozen=True)
class Grid:
    schemes: tuple[str, ...]
    activations: tuple[str, ...]
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    seeds: int
    batch: int = 16

    @property
    def cells(self) -> int:
        return (len(self.schemes) * len(self.activations) * len(self.depths)
                * len(self.widths) * self.seeds)  # fmt: skip


# The tutorial-style grid of issue 3: 8 schemes × 3 activations × 3 depths × 2 widths × 2
# seeds = 288 cells, batch 16.
FULL = Grid(tuple(TORCH_INIT), tuple(ACTIVATION), (10, 50, 200), (64, 256), seeds=2)
QUICK = Grid(tuple(TORCH_INIT), tuple(ACTIVATION), (10,), (64,), seeds=1)


def _grid(benchmark, quick: bool, device: torch.device, name: str) -> Grid:
    grid = QUICK if quick else FULL
    benchmark.group = f"sweep {grid.cells} cells"
    benchmark.extra_info.update(
        {"method": name, "cells": grid.cells, "schemes": list(grid.schemes),
         "activations": list(grid.activations), "depths": list(grid.depths),
         "widths": list(grid.widths), "seeds": grid.seeds, "batch": grid.batch,
         "dtype": "float32", "device": str(device)}
    )  # fmt: skip
    return grid


def tutorial_loop(grid: Grid, device: torch.device) -> list[list[float]]:
    """The hand-written sweep: one module per cell, per-layer stds, one cell at a time."""
    out = []
    for scheme in grid.schemes:
        init = TORCH_INIT[scheme]
        for act in grid.activations:
            for depth in grid.depths:
                for width in grid.widths:
                    for seed in range(grid.seeds):
                        g = torch.Generator(device=device).manual_seed(seed)
                        net = nn.Sequential(
                            *(
                                nn.Sequential(
                                    nn.Linear(width, width, bias=False, device=device),
                                    ACTIVATION[act](),
                                )
                                for _ in range(depth)
                            )
                        )
                        for block in net:
                            init(block[0].weight, g)
                        x = torch.randn(grid.batch, width, generator=g, device=device)
                        stds = []
                        with torch.no_grad():
                            for block in net:
                                x = block(x)
                                stds.append(x.std().item())
                        out.append(stds)
    return out


def floor(grid: Grid, device: torch.device) -> list[torch.Tensor]:
    """What no engine can avoid on ``grid``: one draw per (family, seed, width, layer) of
    the deepest depth, the QR that orthogonal needs, and one product with one row per
    scheme × activation × batch element. No activations, no statistics, no early exit."""
    out = []
    for width in grid.widths:
        for seed in range(grid.seeds):
            for family in ("normal", "uniform"):
                members = [s for s in grid.schemes if FAMILY[s] == family]
                plain = [s for s in members if s != "orthogonal"]
                g = torch.Generator(device=device).manual_seed(seed)
                x = torch.randn(grid.batch, width, generator=g, device=device)
                rows = grid.batch * len(grid.activations)
                h = x.repeat(len(plain) * len(grid.activations), 1)
                ho = x.repeat(len(grid.activations), 1) if "orthogonal" in members else None
                w = torch.empty(width, width, device=device)
                for _ in range(max(grid.depths)):
                    if family == "normal":
                        w.normal_(generator=g)
                    else:
                        w.uniform_(-1, 1, generator=g)
                    h = h @ w.T
                    if ho is not None:
                        q, _ = torch.linalg.qr(w)
                        ho = ho @ q.T
                out.append(h[:rows])
    return out


ACTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda t: t, "tanh": torch.tanh, "relu": torch.relu,
}  # fmt: skip


def floor_with_work(grid: Grid, device: torch.device) -> list[torch.Tensor]:
    """The floor of a default sweep (issue 17's definition): :func:`floor`'s draws and QRs,
    with the products including the input pair's rows (4 per scheme × activation, as the
    engine keeps them), each activation on its rows, and the statistics the sweep records per
    layer (std and mean of each cell's batch rows in float64, the pair's cosine). No
    divergence checks, early exit, tables or theory."""
    from initsuite.engine.stats import layer_stats

    out = []
    acts = [ACTS[a] for a in grid.activations]
    for width in grid.widths:
        for seed in range(grid.seeds):
            for family in ("normal", "uniform"):
                members = [s for s in grid.schemes if FAMILY[s] == family]
                plain = [s for s in members if s != "orthogonal"]
                g = torch.Generator(device=device).manual_seed(seed)
                x = torch.randn(grid.batch + 4, width, generator=g, device=device)
                k = len(plain) * len(acts)
                h = x.repeat(k, 1).view(k, grid.batch + 4, width)
                ho = (x.repeat(len(acts), 1).view(len(acts), grid.batch + 4, width)
                      if "orthogonal" in members else None)  # fmt: skip
                w = torch.empty(width, width, device=device)
                for _ in range(max(grid.depths)):
                    if family == "normal":
                        w.normal_(generator=g)
                    else:
                        w.uniform_(-1, 1, generator=g)
                    stacks = [(h, len(plain))]
                    if ho is not None:
                        a, tau = torch.geqrf(w)
                        ho = torch.ormqr(a, tau, ho.reshape(-1, width), left=False,
                                         transpose=True).view(ho.shape)  # fmt: skip
                        stacks.append((ho, 1))
                    h = (h.reshape(-1, width) @ w.T).view(h.shape)
                    stacks[0] = (h, len(plain))
                    for t, per in stacks:
                        rows = t.view(len(acts), per, grid.batch + 4, width)
                        for i, act in enumerate(acts):
                            rows[i] = act(rows[i])
                        layer_stats(t[:, : grid.batch].reshape(t.shape[0], -1))
                        pair = t[:, grid.batch :: 2]
                        torch.nn.functional.cosine_similarity(pair[:, 0], pair[:, 1], dim=1)
                out.append(h)
    return out


def test_baseline_floor_with_work(benchmark, run_timed, quick, device):
    grid = _grid(benchmark, quick, device,
                 "floor with the pair's rows, activations and statistics")  # fmt: skip
    run_timed(lambda: floor_with_work(grid, device))


def test_default_sweep(benchmark, run_timed, quick, device):
    """``initsuite.sweep`` as a user calls it: input pair on, timing pass on."""
    grid = _grid(benchmark, quick, device, "initsuite.sweep defaults (pair and timing on)")
    results: list[initsuite.SweepResult] = []

    def run() -> None:
        results.append(initsuite.sweep(
            list(grid.schemes), list(grid.activations), list(grid.depths), list(grid.widths),
            batch=grid.batch, seeds=grid.seeds, devices=str(device), progress=False))  # fmt: skip

    run_timed(run)
    assert len(results[-1].cells) == grid.cells


def test_baseline_tutorial_loop(benchmark, run_timed, quick, device):
    grid = _grid(benchmark, quick, device, "tutorial loop")
    results: list[list[list[float]]] = []
    run_timed(lambda: results.append(tutorial_loop(grid, device)), reference=True)
    assert len(results[-1]) == grid.cells


def test_baseline_floor(benchmark, run_timed, quick, device):
    grid = _grid(benchmark, quick, device, "floor: draws, QR and products only")
    run_timed(lambda: floor(grid, device), reference=True)


def _sweep(grid: Grid, device: torch.device, pair_cosine: float | None) -> initsuite.SweepResult:
    return initsuite.sweep(
        list(grid.schemes), list(grid.activations), list(grid.depths), list(grid.widths),
        batch=grid.batch, seeds=grid.seeds, devices=str(device), timing=False,
        pair_cosine=pair_cosine, progress=False,
    )  # fmt: skip


def test_sweep(benchmark, run_timed, quick, device):
    """The engine on the grid: the same work as the loop and the floor (per-layer stds),
    with the mean-field columns, without the input pair."""
    grid = _grid(benchmark, quick, device, "initsuite.studies.sweep.runner, pair_cosine=None")
    results: list[initsuite.SweepResult] = []
    run_timed(lambda: results.append(_sweep(grid, device, None)), reference=False)
    assert len(results[-1].cells) == grid.cells


def test_sweep_with_pair(benchmark, run_timed, quick, device):
    """The default sweep: also the input pair's cosine at every layer (the c-map), a second
    small product per layer that neither the loop nor the floor computes."""
    grid = _grid(
        benchmark, quick, device, "initsuite.studies.sweep.runner (default, with the input pair)"
    )
    results: list[initsuite.SweepResult] = []
    run_timed(lambda: results.append(_sweep(grid, device, 0.5)), reference=False)
    assert len(results[-1].cells) == grid.cells


LARGE = dict(schemes=["all"], activations=["linear", "tanh", "relu", "selu", "gelu"],
             depths=[10, 50, 100], widths=[128, 512], seeds=2)  # fmt: skip
LARGE_QUICK = dict(schemes=["all"], activations=["tanh", "relu"], depths=[10], widths=[64],
                   seeds=1)  # fmt: skip


@pytest.mark.long_reference
def test_sweep_large_grid(benchmark, run_timed, quick, device):
    """The engine alone on a larger grid (every Linear scheme, five activations: about 1100
    cells); ``extra_info`` records cells and layers per second."""
    grid = LARGE_QUICK if quick else LARGE
    benchmark.group = "sweep, large grid"
    results: list[initsuite.SweepResult] = []

    def run() -> None:
        results.append(initsuite.sweep(**grid, devices=str(device), timing=False,
                                       progress=False))  # fmt: skip

    run_timed(run, reference=True)
    res = results[-1]
    benchmark.extra_info.update({"grid": grid, "cells": len(res.cells),
                                 "cells_per_second": res.meta["cells_per_second"],
                                 "layers_per_second": res.meta["layers_per_second"]})  # fmt: skip

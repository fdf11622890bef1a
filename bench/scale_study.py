"""Cost per cell as the grid grows: ``initsuite.sweep`` (defaults) against its floor.

    .venv/bin/python bench/scale_study.py [--rounds 3]

Issue 3's grid (8 schemes × linear/tanh/relu, batch 16) at 1, 2 and 3 seeds (depths
10/50/200, widths 64/256), then one seed at widths 512, 1024 and 2048 (depths 10/50, so that
orthogonal's width³ QRs stay within minutes). For each point, the default sweep (input pair
and timing pass on) and ``floor_with_work`` of ``test_bench_sweep.py`` (draws, QRs, products
with the pair's rows, activations and per-layer statistics) run alternated, and the script
prints a Markdown table of medians: seconds, milliseconds per cell, and the ratio to the
floor. Cost should grow with the work (the floor) and nothing else: a constant ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_bench_sweep import FULL, Grid, floor_with_work

import initsuite

POINTS = [
    ("1 seed", Grid(FULL.schemes, FULL.activations, FULL.depths, FULL.widths, seeds=1)),
    ("2 seeds", Grid(FULL.schemes, FULL.activations, FULL.depths, FULL.widths, seeds=2)),
    ("3 seeds", Grid(FULL.schemes, FULL.activations, FULL.depths, FULL.widths, seeds=3)),
    ("width 512", Grid(FULL.schemes, FULL.activations, (10, 50), (512,), seeds=1)),
    ("width 1024", Grid(FULL.schemes, FULL.activations, (10, 50), (1024,), seeds=1)),
    ("width 2048", Grid(FULL.schemes, FULL.activations, (10, 50), (2048,), seeds=1)),
]


def _sweep(grid: Grid) -> None:
    initsuite.sweep(list(grid.schemes), list(grid.activations), list(grid.depths),
                    list(grid.widths), batch=grid.batch, seeds=grid.seeds,
                    progress=False)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds per point")
    args = parser.parse_args()
    device = torch.device("cpu")
    _sweep(POINTS[0][1])  # warm-up: imports, the theory tables' per-process caches
    floor_with_work(POINTS[0][1], device)
    print("| grid | cells | sweep (s) | floor (s) | ms per cell | sweep / floor |")
    print("|---|---|---|---|---|---|")
    for name, grid in POINTS:
        sweep_s, floor_s = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            _sweep(grid)
            sweep_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            floor_with_work(grid, device)
            floor_s.append(time.perf_counter() - t0)
        s, f = statistics.median(sweep_s), statistics.median(floor_s)
        print(f"| {name} | {grid.cells} | {s:.2f} | {f:.2f} | {s / grid.cells * 1e3:.1f} "
              f"| {s / f:.2f}× |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

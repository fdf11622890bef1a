"""What initsuite's coordinate check costs against mup's own ``get_coord_data`` on the same
grid: mup's MLP (32 → w → w → 10, ReLU, ``MuReadout``, ``set_base_shapes``) trained by
``MuAdam`` on one fixed batch, at widths 64 to 2048, one seed.

Both record the same table: mup's ``nsteps=3`` records the forward passes before each of its
3 updates (t = 1, 2, 3), which are initsuite's steps 0, 1 and 2 (``steps=2``: two updates,
then the forward pass after them; mup's third update is never measured). Rounds alternate
mup and initsuite in one process on one thread, so the shared machine's noise falls on both;
each is its best round, and initsuite's is divided by mup's. The issue's bound: initsuite at
least as fast (ratio ≤ 1). Under ``--bench-quick`` (widths 64 and 256) it is only recorded.
"""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

mup = pytest.importorskip("mup")
from mup.coord_check import get_coord_data  # noqa: E402

from initsuite.studies.coord_engine import coord_data  # noqa: E402

WIDTHS, QUICK_WIDTHS = (64, 256, 1024, 2048), (64, 256)
ROUNDS, QUICK_ROUNDS = 5, 2
LR, NSTEPS = 0.01, 3


class _MuMLP(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc1, self.act1 = nn.Linear(32, width), nn.ReLU()
        self.fc2, self.act2 = nn.Linear(width, width), nn.ReLU()
        self.readout = mup.MuReadout(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.act2(self.fc2(self.act1(self.fc1(x)))))


def test_coordcheck_cost(benchmark, quick, device):
    """Best of alternated rounds of mup's get_coord_data and initsuite's coord_data; the ratio."""
    if device.type != "cpu":
        pytest.skip("the coordinate check's cost is measured on a CPU")
    base = mup.make_base_shapes(_MuMLP(8), _MuMLP(16))
    models = {w: (lambda w=w: mup.set_base_shapes(_MuMLP(w), base))
              for w in (QUICK_WIDTHS if quick else WIDTHS)}  # fmt: skip
    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(64, 32, generator=g), torch.randint(10, (64,), generator=g))

    def theirs() -> object:
        return get_coord_data(models, [batch], optimizer="adam", lr=LR, mup=True,
                              nsteps=NSTEPS, nseeds=1, cuda=False, show_progress=False)  # fmt: skip

    def ours() -> object:
        return coord_data(models, lambda m, s: mup.MuAdam(m.parameters(), lr=LR), batch,
                          nn.functional.cross_entropy, NSTEPS - 1, (0,), seeding="mup")  # fmt: skip

    best = {"mup": float("inf"), "initsuite": float("inf")}

    def alternate() -> None:
        theirs(), ours()  # warm-up: imports, the allocator's pools
        for _ in range(QUICK_ROUNDS if quick else ROUNDS):
            for name, run in (("mup", theirs), ("initsuite", ours)):
                start = time.perf_counter()
                run()
                best[name] = min(best[name], time.perf_counter() - start)

    benchmark.group = "coordinate check"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the probe's cost: one thread measures the check, not the box
    try:
        benchmark.pedantic(alternate, rounds=1, iterations=1)
    finally:
        torch.set_num_threads(threads)
    ratio = best["initsuite"] / best["mup"]
    benchmark.extra_info.update({"widths": list(models), "best_s": best, "ratio": ratio,
                                 "threads": 1})  # fmt: skip
    print(f"\ncoordinate check, initsuite / mup's get_coord_data: {ratio:.2f}x")
    if not quick:
        assert ratio <= 1.0, best

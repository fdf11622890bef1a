"""The default study's grid, the plain way against ``initsuite.sweep``: one long measurement.

    .venv/bin/python bench/plain_loop_study.py [--seeds 1] [--widths 64,128,256,512,1024]

The plain loop is the tutorial's, for every cell: an ``nn.Sequential`` of Linear layers (whose
constructor draws every weight once), the scheme from the registry on each weight
(``schemes.get(spec)``, which is torch.nn.init where torch has the scheme), a forward pass and
a ``.std().item()`` per layer, stopping at the first non-finite layer. It takes tens of
minutes at full size, so it is a script, not part of ``make bench``; it prints both times and
their ratio as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
from torch import nn

import initsuite
from initsuite import activations, schemes

SCHEMES = ["all", "xavier_uniform:gain=auto", "orthogonal:gain=auto"]
ACTIVATIONS = ["linear", "tanh", "relu", "selu", "gelu"]
DEPTHS = [10, 50, 100, 200]


def plain(specs: list[str], widths: list[int], seeds: int, batch: int = 16) -> int:
    cells = 0
    for spec in specs:
        scheme = schemes.get(spec)
        for act_spec in ACTIVATIONS:
            act = activations.get(act_spec)
            for depth in DEPTHS:
                for width in widths:
                    for seed in range(seeds):
                        g = torch.Generator().manual_seed(seed)
                        x = torch.randn(batch, width, generator=g)
                        net = nn.Sequential(*(nn.Linear(width, width, bias=False)
                                              for _ in range(depth)))  # fmt: skip
                        with torch.no_grad():
                            for layer in net:
                                scheme(layer.weight, activation=act, generator=g)
                            for layer in net:
                                x = act(layer(x))
                                if not math.isfinite(x.std().item()):
                                    break
                        cells += 1
    return cells


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--widths", default="64,128,256,512,1024")
    args = p.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    specs = schemes.expand(SCHEMES)
    t0 = time.perf_counter()
    res = initsuite.sweep(specs, ACTIVATIONS, DEPTHS, widths, seeds=args.seeds, timing=False,
                          progress=False)  # fmt: skip
    engine_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    cells = plain(specs, widths, args.seeds)
    plain_s = time.perf_counter() - t0
    assert cells == len(res.cells)
    print(json.dumps({"cells": cells, "widths": widths, "seeds": args.seeds,
                      "engine_s": round(engine_s, 2), "plain_s": round(plain_s, 2),
                      "speedup": round(plain_s / engine_s, 1)}))  # fmt: skip


if __name__ == "__main__":
    main()

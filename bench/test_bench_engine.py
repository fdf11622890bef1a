"""The engine's own costs: a deep sweep's peak memory, and arithmetic on subnormal numbers.

``test_deep_sweep_memory`` runs a 6000-layer, 1024-wide sweep in a fresh process and records
its peak resident memory (``ru_maxrss``) in ``extra_info["peak_rss_mb"]``: were every weight
held, the weights alone would take 6000 × 1024² × 4 B = 24 GB. ``subnormal`` compares one layer
(product and activation) on inputs of normal magnitude with the same on inputs scaled into the
subnormal range, which is what a vanishing net computes on before its std crosses
``finfo.tiny``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

DEEP = {"depth": 6000, "width": 1024}
DEEP_QUICK = {"depth": 300, "width": 256}

_CHILD = """
import json, resource, sys, time
import initsuite
cfg = json.loads(sys.argv[1])
t0 = time.perf_counter()
res = initsuite.sweep(["kaiming_normal", "xavier_normal:gain=auto"], ["relu", "tanh"],
                      cfg["depth"], cfg["width"], timing=False, progress=False)
elapsed = time.perf_counter() - t0
rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": elapsed, "peak_rss_mb": rss_kb / 1024,
                  "layers": int(len(res.layers)), "cells": int(len(res.cells))}))
"""


@pytest.mark.long_reference
def test_deep_sweep_memory(benchmark, quick, device):
    """Peak memory of a deep sweep, in its own process (one round: it is long)."""
    if device.type != "cpu":
        pytest.skip("the deep-sweep memory check runs on the CPU")
    cfg = DEEP_QUICK if quick else DEEP
    benchmark.group = "deep sweep"
    out: list[dict] = []

    def run() -> None:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, json.dumps(cfg)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))

    benchmark.pedantic(run, rounds=1, iterations=1)
    rec = out[-1]
    benchmark.extra_info.update({**cfg, **rec, "weights_if_held_gb": 4 * cfg["depth"]
                                 * cfg["width"] ** 2 / 1e9})  # fmt: skip
    assert rec["layers"] == 4 * cfg["depth"]  # no cell diverged: every layer ran
    print(f"\ndeep sweep {cfg}: peak RSS {rec['peak_rss_mb']:.0f} MB, {rec['seconds']:.1f} s")


@pytest.mark.parametrize("act", ["relu", "tanh", "gelu"])
@pytest.mark.parametrize("magnitude", ["normal", "subnormal"])
def test_subnormal(benchmark, run_timed, device, act, magnitude):
    """One layer's product and activation, inputs of std 1 vs std 1e-39 (float32 subnormal:
    finfo.tiny is 1.2e-38); weights of std 1/√n keep the outputs in the same range."""
    width, batch = 256, 256
    benchmark.group = f"subnormal {act}"
    benchmark.extra_info.update({"activation": act, "magnitude": magnitude, "width": width,
                                 "batch": batch, "device": str(device)})  # fmt: skip
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, width, generator=g, device=device)
    if magnitude == "subnormal":
        x = x * 1e-39
        assert x.abs().max() < torch.finfo(torch.float32).tiny
    w = torch.randn(width, width, generator=g, device=device) / width**0.5
    fn = {"relu": F.relu, "tanh": torch.tanh, "gelu": F.gelu}[act]
    run_timed(lambda: fn(F.linear(x, w)), reference=magnitude == "normal")

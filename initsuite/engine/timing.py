"""The timing pass: one layer's init and one layer's forward, per scheme, width, device, dtype.

Timed apart from the statistics so that neither disturbs the other: warm-up first, then the
median and interquartile range of repeated runs, each of enough calls to last about a
millisecond, with the device synchronised around every timed region.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from initsuite.core.devices import DTYPES
from initsuite.schemes import Scheme

__all__ = ["synchronize", "time_fn", "time_layer"]

_TARGET_S = 1e-3  # each repeat lasts at least this long, so timer resolution does not matter
_MAX_CALLS = 1000


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def time_fn(fn: Callable[[], Any], device: torch.device, repeats: int = 7) -> tuple[float, float]:
    """(median, IQR) in milliseconds of one call of ``fn``, after warm-up."""
    for _ in range(2):
        fn()
    synchronize(device)
    t0 = time.perf_counter()
    fn()
    synchronize(device)
    once = time.perf_counter() - t0
    calls = max(1, min(_MAX_CALLS, int(_TARGET_S / max(once, 1e-9))))
    samples = []
    for _ in range(repeats):
        synchronize(device)
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        synchronize(device)
        samples.append((time.perf_counter() - t0) / calls * 1e3)
    if len(samples) >= 2:
        q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    else:
        q1 = q3 = samples[0]
    return statistics.median(samples), q3 - q1


def time_layer(
    scheme: Scheme,
    params: dict[str, Any],
    width: int,
    batch: int,
    device: str,
    dtype: str,
    repeats: int = 7,
    seed: int = 0,
    activation: Callable[[Tensor], Tensor] | None = None,
) -> dict[str, Any]:
    """One timing row: init of a width×width weight and the (batch, width) forward through it.

    The forward is one layer as the sweep computes it, ``activation(F.linear(x, W))`` (the
    product alone without ``activation``); neither the engine's sharing nor its stacking
    enters these times.
    """
    dev = torch.device(device)
    dt = DTYPES[dtype]
    gen = torch.Generator(device=dev).manual_seed(seed)
    w = torch.empty((width, width), device=dev, dtype=dt)
    x = torch.randn((batch, width), generator=gen, device=dev, dtype=dt)
    with torch.no_grad():
        init_ms, init_iqr = time_fn(lambda: scheme.fill(w, params, generator=gen), dev, repeats)
        act = activation if activation is not None else (lambda t: t)
        fwd_ms, fwd_iqr = time_fn(lambda: act(F.linear(x, w)), dev, repeats)
    return {
        "scheme": scheme.spec,
        "width": width,
        "device": device,
        "dtype": dtype,
        "init_ms": init_ms,
        "init_ms_iqr": init_iqr,
        "forward_ms": fwd_ms,
        "forward_ms_iqr": fwd_iqr,
        "repeats": repeats,
    }

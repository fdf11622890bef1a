"""``initsuite.sweep``: run a grid of cells and return tidy tables."""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from . import activations as _activations
from . import columns as C
from .config import SweepConfig
from .engine import Group, LayerStats, derive_cells, run_group
from .env import environment
from .results import SweepResult
from .timing import time_layer

__all__ = ["run", "sweep"]


def sweep(
    schemes: str | Iterable[str],
    activations: str | Iterable[str],
    depths: int | Iterable[int],
    widths: int | Iterable[int],
    batch: int = 16,
    seeds: int | Iterable[int] = 1,
    devices: str | Iterable[str] = ("cpu",),
    dtypes: str | Iterable[str] = ("float32",),
    arch: str = "mlp",
    bias: bool = False,
    *,
    explode_at: float | None = None,
    vanish_at: float | None = None,
    timing: bool = True,
    timing_repeats: int = 7,
    progress: bool | None = None,
) -> SweepResult:
    """Sweep scheme × activation × depth × width × seed × device × dtype.

    Each cell is the tutorial's MLP: ``depth`` Linear(width, width) layers, each followed by
    the activation, fed x ~ N(0, 1) of shape (batch, width). Every draw comes from a
    ``torch.Generator`` seeded with the cell's seed: same seed, same numbers.

    Args:
        schemes: scheme specs (``"kaiming_normal"``, ``"xavier_uniform:gain=auto"``).
        activations: activation specs (``"tanh"``, ``"leaky_relu:negative_slope=0.2"``).
        depths: numbers of layers.
        widths: units per layer.
        batch: rows of the input.
        seeds: a count (``3`` → seeds 0, 1, 2) or explicit seeds.
        devices: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.
        dtypes: ``"float64"``, ``"float32"``, ``"bfloat16"``, ``"float16"``.
        arch: ``"mlp"``.
        bias: Linear layers with bias, drawn as nn.Linear does: U(±1/√fan_in).
        explode_at: also count a layer whose std exceeds this multiple of the input's std as
            divergence (kind ``"explode"``).
        vanish_at: likewise below this multiple (kind ``"vanish"``).
        timing: run the timing pass (one layer's init and forward per scheme, width, device
            and dtype).
        timing_repeats: timed repeats behind each median.
        progress: show a progress bar on stderr (default: when stderr is a terminal).

    Returns:
        A :class:`SweepResult` with ``cells``, ``layers`` and ``timing`` DataFrames and ``meta``.

    Raises:
        InitsuiteError: for bad input, before any compute is spent.

    Example:
        >>> res = initsuite.sweep(["xavier_uniform", "kaiming_normal"], "relu", [10, 50], 256)
        >>> res.cells[["scheme", "depth", "final_std", "growth_per_layer"]]
    """
    cfg = SweepConfig.build(
        schemes, activations, depths, widths, batch=batch, seeds=seeds, devices=devices,
        dtypes=dtypes, arch=arch, bias=bias, explode_at=explode_at, vanish_at=vanish_at,
        timing=timing, timing_repeats=timing_repeats,
    )  # fmt: skip
    return run(cfg, progress=progress)


@contextlib.contextmanager
def _highest_precision() -> Iterator[None]:
    # TF32 products change measured stds on GPUs; statistics runs want full float32.
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def _groups(cfg: SweepConfig) -> Iterator[Group]:
    acts = [_activations.get(a) for a in cfg.activations]
    for device in cfg.devices:
        for dtype in cfg.dtypes:
            for width in cfg.widths:
                for seed in cfg.seeds:
                    for scheme in cfg._scheme_objs:
                        shared: dict[tuple[tuple[str, Any], ...], list[Any]] = {}
                        for act in acts:
                            key = tuple(sorted(scheme.resolve(act).items()))
                            shared.setdefault(key, []).append(act)
                        for key, members in shared.items():
                            yield Group(
                                scheme, key, tuple(members), width, max(cfg.depths),
                                cfg.batch, seed, device, dtype, cfg.bias,
                            )  # fmt: skip


def run(cfg: SweepConfig, progress: bool | None = None) -> SweepResult:
    """Run a validated :class:`SweepConfig`."""
    from tqdm.auto import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    cells: list[dict[str, Any]] = []
    layers: dict[str, list[Any]] = {c: [] for c in C.LAYERS}
    depths = sorted(cfg.depths)
    started = time.perf_counter()
    with _highest_precision(), tqdm(
        total=cfg.n_cells, disable=not show, unit="cell", file=sys.stderr, desc="sweep"
    ) as bar:
        for group in _groups(cfg):
            try:
                stats = run_group(group, cfg.explode_at, cfg.vanish_at)
            except Exception as exc:  # a failed cell becomes a row with its error
                error = f"{type(exc).__name__}: {exc}".splitlines()[0]
                stats = [LayerStats(math.nan, [], [], error=error) for _ in group.activations]
            for act, st in zip(group.activations, stats, strict=True):
                key = {
                    "arch": cfg.arch, "scheme": group.scheme.spec, "activation": act.spec,
                    "width": group.width, "batch": group.batch, "seed": group.seed,
                    "device": group.device, "dtype": group.dtype,
                }  # fmt: skip
                for cell in derive_cells(st, depths):
                    cells.append({**key, "bias": cfg.bias, **cell})
                    n = min(cell["depth"], len(st.std))
                    for col in C.CELL_KEYS:
                        layers[col].extend([cell["depth"] if col == "depth" else key[col]] * n)
                    layers["layer"].extend(range(1, n + 1))
                    layers["std"].extend(st.std[:n])
                    layers["mean"].extend(st.mean[:n])
            bar.update(len(group.activations) * len(depths))
        sweep_s = time.perf_counter() - started
        timing_rows = _timing(cfg) if cfg.timing else []
    import pandas as pd

    cells_df = C.frame(C.CELLS, cells)
    layers_df = C.coerce(pd.DataFrame(layers), C.LAYERS)
    order = [c for c in C.CELL_KEYS if c != "depth"]
    cells_df = cells_df.sort_values(order + ["depth"], kind="stable").reset_index(drop=True)
    meta = {
        "kind": "sweep",
        "config": cfg.to_dict(),
        "environment": environment(cfg.devices),
        "cells": cfg.n_cells,
        "sweep_seconds": round(sweep_s, 3),
        "timing_seconds": round(time.perf_counter() - started - sweep_s, 3),
    }
    return SweepResult(cells_df, layers_df, C.frame(C.TIMING, timing_rows), meta)


def _timing(cfg: SweepConfig) -> list[dict[str, Any]]:
    """Timing rows; a scheme that raises gets none (its cells already carry the error)."""
    first = _activations.get(cfg.activations[0])
    rows = []
    for device in cfg.devices:
        for dtype in cfg.dtypes:
            for scheme in cfg._scheme_objs:
                params = scheme.resolve(first)
                for width in cfg.widths:
                    try:
                        row = time_layer(scheme, params, width, cfg.batch, device, dtype,
                                         cfg.timing_repeats)  # fmt: skip
                    except Exception:
                        break
                    rows.append(row)
    return rows

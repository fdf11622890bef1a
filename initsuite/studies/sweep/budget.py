r"""What a sweep will cost, estimated before it computes, and checked against this machine.

:func:`estimate` gives a sweep's peak memory, time and layer rows from its configuration
alone; :func:`check` refuses a sweep that cannot fit in the memory available (no flag
overrides that), and one estimated to run longer than :data:`LARGE_SECONDS` unless
``allow_large`` is given. The estimate is deliberately simple and on the high side; it only
has to tell a five-minute study from an absurd one (``--widths 1000000``: 4 TB per weight;
``--depths 1000000000``: a layers table of 10⁹ rows per cell; ``--batch 100000000``: 29 GB
of activations at width 8).

Memory, in bytes (b: bytes per value of the dtype; m: the members of a group's widest stream,
the cells one stacked product holds at once, at most schemes × activations; groups, and the
streams of a group, run one after another, so the largest counts):

* weights: one layer at a time, ``3·width²·b`` (the weight, its QR factors or a scheme's own
  temporaries; conv kernels ``3·width²·k²·b``);
* activations: the batch's values, ``V = m·(batch + 4)·width`` (the batch and the input pair
  stacked; conv: ``m·batch·width·image²``), each held ``6·b + s`` bytes at once (the layer's
  input, its product or the scale's copy, the pre-activation, the output, a strided copy
  and an activation's temporary, in the dtype; the statistics' float64 workspace s: 8 bytes
  on a CPU, 24 on an accelerator, :func:`~initsuite.engine.stats.layer_stats`; resmlp: 3·b
  more, a block's input, its scaled branch and their sum), plus the input itself,
  ``batch·width·b`` (conv: ``·image²``). Measured on a CPU: 4 to 7.5 times ``V·b`` in float32
  (11 for resmlp), 9 in bfloat16; the estimate is 1.1 to 2 times the measured peak;
* backward: ``V·((3·⌈√depth⌉ + 3)·b + len(depths)·(3·b + 32))`` (checkpoints, a segment's
  activations; per depth the gradients, δ and their float64 copies for the weight
  gradients' norms) and the read-out, ``batch·width·b``;
* jacobian: ``4·width²·8`` (a float64 width × width product and its SVD);
* tables, on the host: every layer row (``cells × depth``) × 19 columns at
  :data:`BYTES_PER_VALUE` bytes while computed in memory (Python floats in lists, then the
  frame), 16 bytes when stored as chunks (read back whole), plus :data:`BASE_BYTES`.

Time, in seconds (M = schemes × activations): per group and layer, the draws
(``streams·width²`` values at :data:`RNG_PER_S`), the stacked product
(``2·M·(batch + 4)·width²`` flops at :data:`FLOPS_PER_S`), the elementwise work on its
``M·(batch + 4)·width`` values (activation, statistics, copies: :data:`VALUE_SECONDS` each),
a QR per orthogonal scheme (``4/3·width³`` at :data:`QR_FLOPS_PER_S`), and
:data:`ROW_SECONDS` of bookkeeping per layer row; ``backward`` multiplies the sweep by
:data:`BACKWARD_FACTOR`, ``jacobian`` adds ``2·width³`` per layer and cell. Rates are about
half those measured on a 2-core CPU (see ``bench/``); CUDA devices count
:data:`CUDA_SPEEDUP` times faster. The default ``make bench`` study (6300 cells) is
estimated at about 20 minutes and measured at 5.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from initsuite.core.errors import Arg, InitsuiteError
from initsuite.engine.archs import Arch

if TYPE_CHECKING:
    from initsuite.studies.sweep.config import SweepConfig

__all__ = ["LARGE_SECONDS", "Estimate", "available_memory", "check", "estimate"]

log = logging.getLogger("initsuite")

LARGE_SECONDS = 3600.0
"""Sweeps estimated to run longer need ``allow_large=True``."""

RNG_PER_S = {"float64": 30e6, "float32": 100e6, "bfloat16": 100e6, "float16": 100e6}
FLOPS_PER_S = {"float64": 20e9, "float32": 40e9, "bfloat16": 5e9, "float16": 5e9}
QR_FLOPS_PER_S = 20e9
ROW_SECONDS = 20e-6
VALUE_SECONDS = 30e-9  # per stacked value and layer: measured 10 to 23 ns on 2 CPU cores
BACKWARD_FACTOR = 3.5  # measured 3.1× the forward-only study (README)
CUDA_SPEEDUP = 10.0
BYTES_PER_VALUE = 48  # a Python float (24) in a list (8), then the frame (8), with slack
STORED_BYTES_PER_VALUE = 16  # chunks read back whole: the columns and their concatenation
BASE_BYTES = 512 * 2**20  # torch, pandas and the interpreter
_LAYER_COLUMNS = 19  # initsuite.results.columns.LAYERS (not imported: this module stays light)
_CELL_COLUMNS = 32
_ITEMSIZE = {"float64": 8, "float32": 4, "bfloat16": 2, "float16": 2}
_ACTIVATIONS = "the activations"
_BACKWARD = "the backward pass"
_BATCH_PARTS = (_ACTIVATIONS, _BACKWARD)  # the parts a smaller batch shrinks


@dataclass(frozen=True)
class Estimate:
    """A sweep's estimated cost: peak host memory and, per accelerator, device memory (in
    bytes, with the part that dominates each), run time in seconds, and rows written."""

    host_bytes: float
    device_bytes: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    cells: int = 0
    layer_rows: int = 0
    parts: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        """One line: time, memory, rows."""
        mem = _bytes(self.host_bytes + sum(self.device_bytes.values()))
        return (f"about {_duration(self.seconds)} and {mem} of memory at its peak "
                f"(cells: {self.cells:,}, layer rows: {self.layer_rows:,})")  # fmt: skip


def estimate(cfg: SweepConfig, stored: bool = False) -> Estimate:
    """The cost of ``cfg`` (see the module docstring for the formulas); ``stored``: the
    sweep writes chunks to a directory instead of holding its rows in memory."""
    from initsuite.studies.sweep.cells import widest_stream

    n_schemes, n_acts = len(cfg.schemes), len(cfg.activations)
    members = n_schemes * n_acts
    n_orth = sum(s.info.family == "orthogonal" for s in cfg.scheme_objects)
    if cfg.shared:
        n_orth = min(n_orth, 1)  # the shared normal draw's QR serves every orthogonal scheme
    depth, n_depths = max(cfg.depths), len(cfg.depths)
    cells_per_depth = cfg.n_cells // n_depths
    layer_rows = cells_per_depth * sum(cfg.depths)
    per_group_rows = n_schemes * n_acts * sum(cfg.depths)
    values = layer_rows * _LAYER_COLUMNS + cfg.n_cells * _CELL_COLUMNS
    per_byte = STORED_BYTES_PER_VALUE if stored else BYTES_PER_VALUE
    tables = values * per_byte + per_group_rows * _LAYER_COLUMNS * BYTES_PER_VALUE
    parts = {"the layers table": float(tables)}
    host = float(BASE_BYTES + tables)
    device: dict[str, float] = {}
    seconds = 0.0
    for arch in cfg.arch_objects:
        for dev in cfg.devices:
            for dt in cfg.dtypes:
                for width in cfg.widths:
                    widest = widest_stream(cfg, arch, dev, dt, width)
                    mem, what = _group_memory(cfg, arch, dev, dt, width, widest, depth)
                    if dev in ("cpu", "mps"):  # mps shares the host's memory
                        host = max(host, BASE_BYTES + tables + mem)
                    else:
                        device[dev] = max(device.get(dev, 0.0), mem)
                    if mem > parts.get(what, 0.0):
                        parts[what] = mem
                    t = _group_seconds(cfg, arch, dt, width, n_schemes, members, n_orth, depth)
                    seconds += t * len(cfg.seeds) / (1.0 if dev == "cpu" else CUDA_SPEEDUP)
    seconds += layer_rows * ROW_SECONDS
    return Estimate(host, device, seconds, cfg.n_cells, layer_rows, parts)


def _group_memory(
    cfg: SweepConfig, arch: Arch, device: str, dtype: str, width: int, members: int, depth: int
) -> tuple[float, str]:
    """Peak bytes of one group's tensors, and what dominates them."""
    b = _ITEMSIZE[dtype]
    stats = 8.0 if device == "cpu" else 24.0  # float64 workspace of the statistics, per value
    weights = 3.0 * math.prod(arch.weight_shape(width)) * b
    inputs = float(math.prod(arch.input_shape(cfg.batch, width)))
    values = members * arch.budget_rows(cfg.batch) * width
    held = 6 * b + stats + arch.budget_held(b)  # resmlp: a block's input, branch and sum
    acts = values * held + inputs * b
    back = 0.0
    if cfg.backward:
        kept = 3 * math.isqrt(max(depth - 1, 0)) + 3  # checkpoints and a segment's layers
        back = values * (kept * b + len(cfg.depths) * (3 * b + 32)) + inputs * b
    jac = 4.0 * width * width * 8 if cfg.jacobian else 0.0
    parts = {f"the weights of width {width:,}": weights, _ACTIVATIONS: acts,
             _BACKWARD: back, "the Jacobians": jac}  # fmt: skip
    return sum(parts.values()), max(parts, key=lambda p: parts[p])


def _group_seconds(
    cfg: SweepConfig,
    arch: Arch,
    dtype: str,
    width: int,
    n_schemes: int,
    members: int,
    n_orth: int,
    depth: int,
) -> float:
    """Seconds of one group (one seed) on a CPU."""
    w2 = float(math.prod(arch.weight_shape(width)))
    rows = arch.budget_rows(cfg.batch)
    layers = arch.budget_layers(cfg.depths)  # conv: prefixes of the deepest run; resmlp: each
    per_layer = (n_schemes * w2 / RNG_PER_S[dtype] + 2 * members * rows * w2 / FLOPS_PER_S[dtype]
                 + members * rows * width * VALUE_SECONDS
                 + n_orth * 4 / 3 * w2 * width / QR_FLOPS_PER_S)  # fmt: skip
    seconds = layers * per_layer * (BACKWARD_FACTOR if cfg.backward else 1.0)
    if cfg.jacobian:  # per cell: a width³ product per layer, an SVD per depth, in float64
        flops = members * (2 * layers + 20 * len(cfg.depths)) * w2 * width
        seconds += flops / FLOPS_PER_S["float64"]
    if cfg.timing:  # one layer's draw and product per scheme, repeated
        one = w2 / RNG_PER_S[dtype] + 2 * cfg.batch * w2 / FLOPS_PER_S[dtype]
        seconds += n_schemes * (cfg.timing_repeats + 2) * one
    return seconds


def available_memory(device: str = "cpu") -> float | None:
    """Bytes this process may still allocate on ``device`` (None when unknown): a CUDA
    device's free memory; else the host's MemAvailable (/proc/meminfo, or os.sysconf),
    capped by a cgroup memory limit."""
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return float(free)
    avail = _meminfo() or _sysconf()
    limit = _cgroup_room()
    if avail is None:
        return limit
    return avail if limit is None else min(avail, limit)


def _meminfo() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _sysconf() -> float | None:
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def _cgroup_room() -> float | None:
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return float(limit) - float((root / "memory.current").read_text().strip())
    except (OSError, ValueError):
        return None


def check(cfg: SweepConfig, allow_large: bool = False, stored: bool = False) -> Estimate:
    """Raise :class:`InitsuiteError` for a sweep that cannot fit in this machine's memory,
    or that is estimated to take over :data:`LARGE_SECONDS` without ``allow_large``; log the
    estimate (one warning) for an allowed large sweep. Returns the estimate."""
    est = estimate(cfg, stored=stored)
    needs = {"cpu": est.host_bytes, **est.device_bytes}
    for device, need in needs.items():
        have = available_memory(device)
        if have is not None and need > have:
            what = max(est.parts, key=lambda p: est.parts[p])
            where = "" if device == "cpu" else f" on {device}"
            counts = f"(cells: {est.cells:,}, layer rows: {est.layer_rows:,})"
            head = (f"this sweep needs about {_bytes(need)} of memory{where} (mostly {what}"
                    f"{f' of a batch of {cfg.batch:,}' if what in _BATCH_PARTS else ''}), "
                    f"more than the {_bytes(have)} available: ")  # fmt: skip
            if what in _BATCH_PARTS:  # memory has no override: allow_large is the time limit's
                raise InitsuiteError(head, "use a smaller ", Arg("batch"), " (",
                                     Arg("allow_large", True), " lifts only the time limit) ",
                                     counts)  # fmt: skip
            raise InitsuiteError(head, f"sweep fewer or smaller cells {counts}")
    if est.seconds > LARGE_SECONDS:
        if not allow_large:
            raise InitsuiteError(
                f"this sweep would take {est.describe()} (over {_duration(LARGE_SECONDS)}): "
                "pass ", Arg("allow_large", True), " to run it anyway",
            )  # fmt: skip
        log.warning("initsuite: a large sweep: %s", est.describe())
    return est


def _bytes(n: float) -> str:
    unit = "B"
    for bigger in ("KB", "MB", "GB", "TB", "PB", "EB"):
        if n < 1000:
            break
        n, unit = n / 1000, bigger
    return f"{n:.3g} {unit}"


def _duration(seconds: float) -> str:
    value, unit = seconds, "second"
    for name, size in (("year", 365.25 * 86400), ("day", 86400), ("hour", 3600),
                       ("minute", 60)):  # fmt: skip
        if seconds >= size:
            value, unit = seconds / size, name
            break
    text = f"{value:.3g}"
    return f"{text} {unit}" if text == "1" else f"{text} {unit}s"

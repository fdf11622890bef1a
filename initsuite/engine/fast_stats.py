"""The probe's fast statistics: the sums of :func:`~initsuite.engine.stats.tensor_stats` and
:func:`~initsuite.engine.stats.tensor_norm` in float32 on a CPU (``stats="fast"``), about half
the cost of the exact float64 sums, with their accuracy bounds.

torch sums a float32 tensor on a CPU by cascades (pairwise-like), whose error is within about
log2(n)·2⁻²⁴ of Σ|y|, not the n·2⁻²⁴ of a running sum; every bound below follows from it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from initsuite.core.errors import InitsuiteError, InitsuiteTypeError, did_you_mean

__all__ = [
    "FAST_BLOCK", "STATS", "check_stats", "fast_block", "fast_squares", "fast_sums",
    "float32_buffer",
]  # fmt: skip

STATS: tuple[str, ...] = ("exact", "fast")
"""How :func:`~initsuite.engine.stats.tensor_stats` sums: in float64 (``exact``, the
default) or in float32 (``fast``, on a CPU: about half the time, the std within ~1e-6
relative)."""


FAST_BLOCK = 1 << 16
"""float32 elements per thread in a block of the fast sums (256 KiB: in a core's L2 cache
beside the data streaming through it; see :func:`fast_block`). Probing ResNet-50 on one
thread, the probe ÷ plain pass ratio was 1.30 at 2^16 and 2^17, 1.33 at 2^18, 1.37 at 2^19
and 1.35 at 2^15."""


def fast_block(n: int) -> int:
    """Elements per block of the fast sums of ``n`` values: :data:`FAST_BLOCK` per thread
    torch reduces on (each thread's share stays in its core's cache, and more threads get
    fewer, larger reductions to split)."""
    return min(n, FAST_BLOCK * torch.get_num_threads())


def check_stats(stats: object) -> str:
    """The ``stats`` argument of :func:`~initsuite.engine.stats.tensor_stats` (and the
    probe's), checked: one of :data:`STATS`."""
    if not isinstance(stats, str):
        raise InitsuiteTypeError(
            f"stats must be one of {', '.join(STATS)}, got {type(stats).__name__}"
        )
    if stats not in STATS:
        hint = did_you_mean(stats, STATS)
        raise InitsuiteError(
            f"unknown stats {stats!r}"
            + (f"; did you mean {hint!r}?" if hint else "")
            + f" (choose from {', '.join(STATS)})"
        )
    return stats


def fast_sums(flat: Tensor, buf: Tensor, minus: Tensor | None = None) -> Tensor:
    """[K, Σy, Σ(y − K)², 0] of 1-D ``flat`` (of ``flat − minus``) summed in float32, K = Σy/n:
    two passes over float32 blocks in ``buf``, no float64 copy (about half the time of
    the exact sums). torch sums a float32 tensor on the CPU by cascades, within about
    log2(n)·2⁻²⁴ of exact relative to Σ|y|; the squared deviations are non-negative, so
    Σ(y − K)² is within about (log2(n) + 3)·2⁻²⁴ relative, the std half that (≈ 1e-6 at 10⁷
    values), and the mean within about log2(n)·2⁻²⁴ of the root mean square. Not finite
    (an inf or nan, or finite values whose squares pass float32's range) where the exact
    sums are needed."""
    n, size = flat.numel(), buf.numel()
    f32 = torch.float32
    parts = [(i, min(i + size, n)) for i in range(0, n, size)]

    def block(i: int, end: int) -> Tensor:  # y (y − minus) of [i, end) in float32, in buf
        b = buf[: end - i]
        if minus is None:
            return b.copy_(flat[i:end])
        if flat.dtype == minus.dtype == f32:  # one op: the same rounding as copy, then sub_
            return torch.sub(flat[i:end], minus[i:end], out=b)
        return b.copy_(flat[i:end]).sub_(minus[i:end])

    if minus is None:
        s1 = flat.sum(dtype=f32)
    else:
        s1 = torch.stack([block(i, end).sum() for i, end in parts]).sum()
    k = s1 / n
    if minus is None and flat.dtype == f32:  # one op fewer: the shift writes the block
        s2 = [torch.sub(flat[i:end], k, out=buf[: end - i]).square_().sum() for i, end in parts]
    else:
        s2 = [block(i, end).sub_(k).square_().sum() for i, end in parts]
    total = s2[0] if len(s2) == 1 else torch.stack(s2).sum()
    return torch.stack([k, s1, total, torch.zeros_like(k)]).to(torch.float64)


def fast_squares(flat: Tensor, buf: Tensor) -> Tensor:
    """Σy² of 1-D ``flat`` summed in float32 blocks in ``buf`` (torch's cascade sum: within
    about (log2(n) + 2)·2⁻²⁴ relative), as a 0-dim float64 tensor; not finite where some
    square passes float32's range."""
    n, size = flat.numel(), buf.numel()
    sq = [(torch.mul(flat[i:e], flat[i:e], out=buf[: e - i]) if flat.dtype == torch.float32
           else buf[: e - i].copy_(flat[i:e]).square_()).sum()
          for i, e in ((i, min(i + size, n)) for i in range(0, n, size))]  # fmt: skip
    return (sq[0] if len(sq) == 1 else torch.stack(sq).sum()).to(torch.float64)


def float32_buffer(buffer: Callable[[torch.device, int], Tensor], device: torch.device,
                   size: int) -> Tensor:  # fmt: skip
    """``size`` float32 elements in the memory of a float64 block from ``buffer``."""
    return buffer(device, (size + 1) // 2).view(torch.float32)[:size]

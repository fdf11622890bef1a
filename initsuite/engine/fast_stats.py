"""The probe's fast statistics: the sums of :func:`~initsuite.engine.stats.tensor_stats` and
:func:`~initsuite.engine.stats.tensor_norm` in float32 on a CPU (``stats="fast"``), about half
the cost of the exact float64 sums, with their accuracy bounds.

A float32 tensor costs two reductions, each one call reading it once: Σy by torch's cascade
sum, whose error is within about log2(n)·2⁻²⁴ of Σ|y| (not the n·2⁻²⁴ of a running sum), and
Σy² as the norms of rows of :data:`ROW` values (each row reduced in float32, in whatever order
the kernel takes: within (ROW − 1)·2⁻²⁴), their squares added in float64. Fewer, larger calls
are what make it fast: the probe's statistics of ResNet-50 are about 500 tensors, and a
torch call costs microseconds before it reads anything. Every bound below follows from these
two. Where float32 cannot hold the sums (an inf or nan, squares past its range or below its
normal range) the functions return None, and the exact float64 sums are taken instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from initsuite.core import validate

__all__ = [
    "FAST_BLOCK", "MIN_MEAN_SQUARE", "ROW", "STATS", "check_stats", "fast_block",
    "fast_squares", "fast_sums", "fast_two_pass", "float32_buffer", "row_squares", "usable",
]  # fmt: skip

STATS: tuple[str, ...] = ("exact", "fast")
"""How :func:`~initsuite.engine.stats.tensor_stats` sums: in float64 (``exact``, the
default) or in float32 (``fast``, on a CPU: about half the time, the std within 2e-5
relative at most, typically 1e-7: see :func:`fast_sums`)."""

ROW = 256
"""Values per row of :func:`row_squares`: each row's Σy² is within (ROW − 1)·2⁻²⁴ relative
whatever order its float32 reduction adds in. Probing ResNet-50, rows of 256 and 1024 cost
the same."""

MIN_MEAN_SQUARE = 2.0**-100
"""The smallest mean square the fast sums keep: below 2⁻¹²⁶ a float32 square is subnormal
(or flushed to 0), off by up to 2⁻¹²⁶ each, which is within 2⁻²⁶ of Σy² only where the mean
square is at least 2⁻¹⁰⁰ (a tensor whose std is 1e-25 would read as 0)."""


FAST_BLOCK = 1 << 16
"""float32 elements per thread in a block of the blocked sums (256 KiB: in a core's L2 cache
beside the data streaming through it; see :func:`fast_block`): a difference or a tensor of
another dtype is taken block by block into a float32 buffer, then summed, squared and summed
while it is in cache."""


def fast_block(n: int) -> int:
    """Elements per block of the fast sums of ``n`` values: :data:`FAST_BLOCK` per thread
    torch reduces on (each thread's share stays in its core's cache, and more threads get
    fewer, larger reductions to split)."""
    return min(n, FAST_BLOCK * torch.get_num_threads())


def check_stats(stats: object) -> str:
    """The ``stats`` argument of :func:`~initsuite.engine.stats.tensor_stats` (and the
    probe's), checked: one of :data:`STATS`."""
    return validate.choice("stats", stats, STATS)


def fast_sums(flat: Tensor, buf: Tensor, minus: Tensor | None = None) -> Tensor | None:
    """[K, Σy, Σ(y − K)², 0] of 1-D ``flat`` (of ``flat − minus``) in float64, summed in
    float32, K = 0: a float32 tensor by two reductions over it (:func:`row_squares`), a
    difference or another dtype block by block in ``buf`` (cascade sums of each block and of
    its squares). None where float32 cannot hold the sums (see :func:`usable`).

    Accuracy: Σy is within γ₁ = (log2(n) + 2)·u, u = 2⁻²⁴, of Σ|y|, and Σy² within
    γ₂ = (ROW + 3)·u of itself (the rows' bound, the rounding of each square, of each row's
    norm and of its square). With σ the std, d the mean and ρ = |d|/σ, n·var = Σy² − (Σy)²/n
    is then within γ₂·(1 + ρ²) + 2ρ·√(1 + ρ²)·γ₁ of n·σ², relative: the cancellation grows
    with ρ. Where ρ > 1 (2·(Σy)² > n·Σy², read from the sums themselves) the tensor is redone
    by :func:`fast_two_pass` (shifted by its float32 mean), so the one-pass sums are kept
    only where ρ ≤ 1: the variance within 2·γ₂ + 2√2·γ₁, the std half that (1.7e-5 at 10⁷
    values); about γ₂/2 where ρ ≪ 1 (a centred tensor), and the mean within γ₁·√(σ² + d²).
    These are worst cases; the errors of random data are some hundred times smaller."""
    n = flat.numel()
    if minus is None and flat.dtype == torch.float32:
        total1, total2 = float(flat.sum()), float(row_squares(flat))
    else:
        total1, total2 = _block_sums(flat, buf, minus)
    if not usable(total2, n):
        return None
    if 2 * total1 * total1 > n * total2:  # ρ > 1: the mean is too far from 0
        return fast_two_pass(flat, buf, minus, total1)
    return torch.tensor([0.0, total1, total2, 0.0], dtype=torch.float64)


def usable(total2: float, n: int) -> bool:
    """Whether a float32 sum of ``n`` squares ``total2`` keeps its bound: finite (no inf or
    nan among the values, no square past float32's range) and a mean square of at least
    :data:`MIN_MEAN_SQUARE` (a 0 sum is exact: every value was 0)."""
    return math.isfinite(total2) and (total2 == 0 or total2 >= n * MIN_MEAN_SQUARE)


def row_squares(flat: Tensor) -> Tensor:
    """Σy² of 1-D float32 ``flat`` as a 0-dim float64 tensor: the norms of its rows of
    :data:`ROW` values in one float32 reduction, their squares (and the squares of the fewer
    than ROW values left over) added in float64. Within (ROW + 3)·2⁻²⁴ relative; not finite
    where some square passes float32's range."""
    n = flat.numel()
    head = n - n % ROW
    total = torch.zeros((), dtype=torch.float64)
    if head:
        norms = torch.linalg.vector_norm(flat[:head].view(-1, ROW), dim=1).to(torch.float64)
        total = torch.dot(norms, norms)
    if head < n:
        tail = flat[head:].to(torch.float64)
        total = total + torch.dot(tail, tail)
    return total


def _block_sums(flat: Tensor, buf: Tensor, minus: Tensor | None) -> tuple[float, float]:
    """(Σy, Σy²) of ``flat − minus`` (or of ``flat`` in another dtype) in float32, each block
    taken into ``buf`` and summed, squared and summed by cascade sums while it is in cache,
    the blocks' sums added in float64."""
    size = buf.numel()
    parts = flat.split(size)
    rests: list[Tensor | None] = [None] * len(parts) if minus is None else list(minus.split(size))
    acc = torch.empty(2, len(parts), dtype=torch.float32)  # Σy, Σy² per block
    for x, r, s1, s2 in zip(parts, rests, acc[0].unbind(), acc[1].unbind(), strict=True):
        b = _shifted(x, r, buf[: x.numel()], None)
        torch.sum(b, dim=0, out=s1)
        torch.sum(b.square_(), dim=0, out=s2)
    total1, total2 = acc.sum(dim=1, dtype=torch.float64).tolist()
    return total1, total2


def _shifted(x: Tensor, minus: Tensor | None, b: Tensor, k: Tensor | None) -> Tensor:
    """``x − minus − k`` (without the missing terms) in float32 in ``b`` (``x``'s length): one
    op where the operands are float32 (the same rounding as a copy, then sub_); else copied
    first, so that nothing is rounded to a narrower type."""
    if minus is None:
        if k is None:
            return b.copy_(x)
        return torch.sub(x, k, out=b) if x.dtype == torch.float32 else b.copy_(x).sub_(k)
    if x.dtype == minus.dtype == torch.float32:
        torch.sub(x, minus, out=b)
    else:
        b.copy_(x).sub_(minus)
    return b if k is None else b.sub_(k)


def fast_two_pass(flat: Tensor, buf: Tensor, minus: Tensor | None = None,
                  total1: float | None = None) -> Tensor | None:  # fmt: skip
    """:func:`fast_sums` in two passes, for a tensor whose mean is more than its std from 0:
    K = Σy/n in float32 (``total1``, Σy, when the caller has it), then Σ(y − K)² block by
    block in ``buf``. The deviations from the mean are squared before they are summed, so
    Σ(y − K)² is within γ ≈ (log2(n) + 3)·u relative whatever the mean, the std within γ/2,
    and the mean within about log2(n)·u of the root mean square. None where float32 cannot
    hold the sums (:func:`usable`)."""
    n, size = flat.numel(), buf.numel()
    if total1 is None:
        plain = minus is None and flat.dtype == torch.float32
        total1 = float(flat.sum()) if plain else _block_sums(flat, buf, minus)[0]
    k = torch.tensor(total1 / n, dtype=torch.float32)
    parts = flat.split(size)
    rests: list[Tensor | None] = [None] * len(parts) if minus is None else list(minus.split(size))
    acc = torch.empty(len(parts), dtype=torch.float32)  # Σ(y − K)² per block
    for x, r, s2 in zip(parts, rests, acc.unbind(), strict=True):
        torch.sum(_shifted(x, r, buf[: x.numel()], k).square_(), dim=0, out=s2)
    total2 = float(acc.sum(dtype=torch.float64))
    if not usable(total2, n) or not math.isfinite(total1):
        return None
    return torch.tensor([float(k), total1, total2, 0.0], dtype=torch.float64)


def fast_squares(flat: Tensor, buf: Tensor) -> Tensor | None:
    """Σy² of 1-D ``flat`` in float32 as a 0-dim float64 tensor: a float32 tensor by
    :func:`row_squares` (within (ROW + 3)·2⁻²⁴ relative), another dtype block by block in
    ``buf`` (cascade sums: within about (log2(n) + 2)·2⁻²⁴). None where float32 cannot hold
    the sum (:func:`usable`)."""
    if flat.dtype == torch.float32:
        total = row_squares(flat)
    else:
        parts = flat.split(buf.numel())
        acc = torch.empty(len(parts), dtype=torch.float32)  # each block's Σy²
        for x, out in zip(parts, acc.unbind(), strict=True):
            torch.sum(buf[: x.numel()].copy_(x).square_(), dim=0, out=out)
        total = acc.sum(dtype=torch.float64)
    return total if usable(float(total), flat.numel()) else None


def float32_buffer(buffer: Callable[[torch.device, int], Tensor], device: torch.device,
                   size: int) -> Tensor:  # fmt: skip
    """``size`` float32 elements in the memory of a float64 block from ``buffer``."""
    return buffer(device, (size + 1) // 2).view(torch.float32)[:size]

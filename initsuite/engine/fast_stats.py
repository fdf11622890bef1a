"""The probe's fast statistics: the sums of :func:`~initsuite.engine.stats.tensor_stats` and
:func:`~initsuite.engine.stats.tensor_norm` in float32 on a CPU (``stats="fast"``), about half
the cost of the exact float64 sums, with their accuracy bounds. Each tensor is read from memory
once, in blocks that stay in cache while they are shifted, squared and summed.

torch sums a float32 tensor on a CPU by cascades (pairwise-like), whose error is within about
log2(n)·2⁻²⁴ of Σ|y|, not the n·2⁻²⁴ of a running sum; every bound below follows from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from initsuite.core import validate

__all__ = [
    "FAST_BLOCK", "STATS", "check_stats", "fast_block", "fast_squares", "fast_sums",
    "fast_two_pass", "float32_buffer",
]  # fmt: skip

STATS: tuple[str, ...] = ("exact", "fast")
"""How :func:`~initsuite.engine.stats.tensor_stats` sums: in float64 (``exact``, the
default) or in float32 (``fast``, on a CPU: about half the time, the std within ~1e-6
relative, at most ~4e-6 at 10⁷ values: see :func:`fast_sums`)."""


FAST_BLOCK = 1 << 16
"""float32 elements per thread in a block of the fast sums (256 KiB: in a core's L2 cache
beside the data streaming through it; see :func:`fast_block`). Probing ResNet-50 on one
thread with the former two-pass sums, the probe ÷ plain pass ratio was 1.30 at 2^16 and
2^17, 1.33 at 2^18, 1.37 at 2^19 and 1.35 at 2^15; with the one-pass :func:`fast_sums`,
1.32 at 2^16 and 2^17 and 1.34 at 2^18 (its sums of ResNet-50's 174 M values: 126 and 125
ms at 2^16 and 2^17)."""


def fast_block(n: int) -> int:
    """Elements per block of the fast sums of ``n`` values: :data:`FAST_BLOCK` per thread
    torch reduces on (each thread's share stays in its core's cache, and more threads get
    fewer, larger reductions to split)."""
    return min(n, FAST_BLOCK * torch.get_num_threads())


def check_stats(stats: object) -> str:
    """The ``stats`` argument of :func:`~initsuite.engine.stats.tensor_stats` (and the
    probe's), checked: one of :data:`STATS`."""
    return validate.choice("stats", stats, STATS)


def fast_sums(flat: Tensor, buf: Tensor, minus: Tensor | None = None) -> Tensor:
    """[K, Σy, Σ(y − K)², 0] of 1-D ``flat`` (of ``flat − minus``) in float64, summed in
    float32 in one pass over blocks in ``buf`` (no float64 copy, one read of the tensor from
    memory): each block of y − K (K: the first block's mean, in float32) is summed, squared
    and summed again while it is in cache, the blocks' sums added in float64.

    Accuracy: torch's cascade sums are within γ ≈ (log2(n) + 3)·u, u = 2⁻²⁴, of Σ|y − K| for
    S1 = Σ(y − K) and of S2 = Σ(y − K)² (non-negative terms; the + 3: the rounding of y − K
    and of its square). With d = mean − K, σ the std and ρ = |d|/σ, n·var = S2 − S1²/n is
    then within ((1 + ρ²) + 2ρ·√(1 + ρ²))·γ of n·σ², relative: the cancellation grows like
    ρ²·log2(n)·u. Where ρ > 1 (2·S1² > n·S2, read from the sums themselves) the tensor is
    redone by :func:`fast_two_pass`, so the one-pass sums are kept only where ρ ≤ 1: the
    variance within (2 + 2√2)·γ ≈ 5·(log2(n) + 3)·u, the std half that (≈ 4e-6 at 10⁷
    values; about γ/2, 8e-7, where ρ ≪ 1, the usual case, as K averages a block of the same
    data), and the mean within γ·√(σ² + d²) ≤ √2·γ·σ. Not finite (an inf or nan, or finite
    values whose squares pass float32's range) where the exact sums are needed."""
    n, size = flat.numel(), buf.numel()
    parts = flat.split(size)
    rests: list[Tensor | None] = [None] * len(parts) if minus is None else list(minus.split(size))
    first = parts[0] if minus is None else _shifted(parts[0], minus[: parts[0].numel()],
                                                    buf[: parts[0].numel()], None)  # fmt: skip
    k = first.sum(dtype=torch.float32) / parts[0].numel()  # the shift, float32, 0-dim
    acc = torch.empty(2, len(parts), dtype=torch.float32)  # Σ(y − K), Σ(y − K)² per block
    for x, r, s1, s2 in zip(parts, rests, acc[0].unbind(), acc[1].unbind(), strict=True):
        b = _shifted(x, r, buf[: x.numel()], k)
        torch.sum(b, dim=0, out=s1)
        torch.sum(b.square_(), dim=0, out=s2)
    total1, total2 = acc.sum(dim=1, dtype=torch.float64).tolist()
    if math.isfinite(total2) and 2 * total1 * total1 > n * total2:  # ρ > 1: K is too far off
        return fast_two_pass(flat, buf, minus)
    shift = float(k)
    return torch.tensor([shift, total1 + n * shift, total2, 0.0], dtype=torch.float64)


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


def fast_two_pass(flat: Tensor, buf: Tensor, minus: Tensor | None = None) -> Tensor:
    """:func:`fast_sums` in two passes, K = Σy/n, for where the first block's mean is too far
    from the tensor's to shift by: the deviations from the float32 mean are squared before
    they are summed, so Σ(y − K)² is within γ ≈ (log2(n) + 3)·u relative whatever the mean,
    the std within γ/2, and the mean within about log2(n)·u of the root mean square."""
    size = buf.numel()
    parts = flat.split(size)
    rests: list[Tensor | None] = [None] * len(parts) if minus is None else list(minus.split(size))
    if minus is None:
        s1 = flat.sum(dtype=torch.float32)
    else:
        s1 = torch.stack([_shifted(x, r, buf[: x.numel()], None).sum()
                          for x, r in zip(parts, rests, strict=True)]).sum()  # fmt: skip
    k = s1 / flat.numel()
    s2 = [_shifted(x, r, buf[: x.numel()], k).square_().sum()
          for x, r in zip(parts, rests, strict=True)]  # fmt: skip
    total = s2[0] if len(s2) == 1 else torch.stack(s2).sum()
    return torch.stack([k, s1, total, torch.zeros_like(k)]).to(torch.float64)


def fast_squares(flat: Tensor, buf: Tensor) -> Tensor:
    """Σy² of 1-D ``flat`` summed in float32 blocks in ``buf`` (torch's cascade sum: within
    about (log2(n) + 2)·2⁻²⁴ relative), the blocks' sums added in float64, as a 0-dim float64
    tensor; not finite where some square passes float32's range."""
    parts = flat.split(buf.numel())
    if len(parts) == 1:  # most weights: three ops, not the six of the loop
        return _squares(flat, buf[: flat.numel()]).sum().to(torch.float64)
    acc = torch.empty(len(parts), dtype=torch.float32)  # each block's Σy²
    for x, out in zip(parts, acc.unbind(), strict=True):
        torch.sum(_squares(x, buf[: x.numel()]), dim=0, out=out)
    return acc.sum(dtype=torch.float64)


def _squares(x: Tensor, b: Tensor) -> Tensor:
    """x² in float32 in ``b`` (``x``'s length)."""
    return torch.mul(x, x, out=b) if x.dtype == torch.float32 else b.copy_(x).square_()


def float32_buffer(buffer: Callable[[torch.device, int], Tensor], device: torch.device,
                   size: int) -> Tensor:  # fmt: skip
    """``size`` float32 elements in the memory of a float64 block from ``buffer``."""
    return buffer(device, (size + 1) // 2).view(torch.float32)[:size]

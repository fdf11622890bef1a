"""Statistics of activations: per row (:func:`layer_stats`, a sweep's layers) and of a whole
tensor (:func:`tensor_stats`, a probed module's output), one kernel with one fallback rule.

Moments are accumulated in float64 so that no statistic overflows or loses precision before
the data itself does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor

from initsuite.core.errors import InitsuiteError
from initsuite.engine.fast_stats import (
    check_stats,
    fast_block,
    fast_squares,
    fast_sums,
    float32_buffer,
)

__all__ = [
    "GradStats", "LayerStats", "classify", "finish_stats", "frobenius_of_product", "layer_stats",
    "pair_cosine", "ratio", "read_back", "tensor_norm", "tensor_stats",
]  # fmt: skip

_REDO = 5
"""Moments summed in one pass are redone (shifted, or in two passes) where |mean| > _REDO·std:
beyond it the one-pass formula's relative error, ~2e-15·(1 + mean²/var), passes ~5e-14."""


def ratio(num: float, den: float) -> float:
    """num / den, with x/0 as IEEE division has it (±inf, or NaN for 0/0 and NaN/0), where
    Python's float division raises."""
    if den == 0:
        return math.nan if num == 0 or math.isnan(num) else math.copysign(math.inf, num)
    return num / den


@dataclass
class GradStats:
    """The backward pass of one member's cell of one depth (index 0 is layer 1; NaN below a
    backward divergence)."""

    grad_std: list[float]  # std of dLoss/dh_l, h_l the layer's output
    weight_grad_norm: list[float]  # Frobenius norm of dLoss/dW_l
    input_grad_std: float = math.nan  # std of dLoss/dx
    # the first layer l, walking back, whose dLoss/dh_l left the range (0: only dLoss/dx)
    divergence_layer: int | None = None
    divergence_kind: str | None = None


@dataclass
class LayerStats:
    """The statistics of one member's run, layer by layer (index 0 is layer 1)."""

    input_std: float
    std: list[float]
    mean: list[float]
    cosine: list[float] = field(default_factory=list)
    divergence_layer: int | None = None
    divergence_kind: str | None = None
    error: str | None = None
    grads: dict[int, GradStats] = field(default_factory=dict)  # by depth (backward runs)


def layer_stats(y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Std (correction=1), mean and all-finite flag of each row of ``y`` (k, n), in float64.

    The moments are accumulated in float64, where the squares of any float32/bfloat16/float16
    value neither overflow nor fall into subnormals; float64 input is first divided by its
    largest magnitude. Either way the statistics cannot overflow or lose precision before
    the data itself does. Rows holding inf/nan get NaN statistics.

    Below float64 the moments come from one pass (Σy and Σy² accumulated in float64, no
    float64 copy: 6× faster than two passes), whose relative error is about
    2e-15·(1 + mean²/var); rows with |mean| > 5·std are redone with the two-pass formula
    (error ~1e-16·|mean|/std), so every row stays within ~1e-13 of exact arithmetic unless
    its mean dwarfs its std. (CPU only: choosing the rows reads a
    flag back, free on a CPU but a synchronisation on a GPU, which takes the exact path.)
    """
    if y.dtype == torch.float64 or y.device.type != "cpu" or y.shape[1] < 2:
        # GPUs: the exact path throughout (choosing rows to redo would read back every layer)
        std, mean = _two_pass(y.to(torch.float64))
        # an inf or nan anywhere in a row makes its mean or std non-finite (inf - inf = nan),
        # and finite values cannot overflow here: the flag needs no pass of its own
        finite = torch.isfinite(std) & torch.isfinite(mean)
        nan = torch.full_like(std, math.nan)
        return torch.where(finite, std, nan), torch.where(finite, mean, nan), finite
    return _one_pass(y)


def _one_pass(y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`layer_stats` on the CPU below float64: the two float64 sums per row read back
    at once, the rest in Python floats (the same IEEE double operations, in the same order,
    as on tensors, without a dozen tensor calls on k-vectors: ≈ 4× cheaper per layer)."""
    n = y.shape[1]
    f64 = torch.float64
    sums, norms = torch.stack(
        [y.sum(dim=1, dtype=f64), torch.linalg.vector_norm(y, dim=1, dtype=f64)]
    ).tolist()
    stds, means, redo = [], [], []
    for row, (s1, norm) in enumerate(zip(sums, norms, strict=True)):
        mean = s1 / n
        var = (norm * norm - s1 * mean) / (n - 1)
        std = math.sqrt(var) if var > 0.0 else (var if math.isnan(var) else 0.0)
        if abs(mean) > _REDO * std and math.isfinite(mean) and math.isfinite(std):
            redo.append(row)
        stds.append(std)
        means.append(mean)
    if redo:
        std2, mean2 = _two_pass(y[redo].to(f64))
        for row, s, m in zip(redo, std2.tolist(), mean2.tolist(), strict=True):
            stds[row], means[row] = s, m
    # an inf or nan anywhere in a row makes its mean or std non-finite (inf - inf = nan),
    # and finite values cannot overflow here: the flag needs no pass of its own
    finite = [math.isfinite(s) and math.isfinite(m) for s, m in zip(stds, means, strict=True)]
    stds = [s if ok else math.nan for s, ok in zip(stds, finite, strict=True)]
    means = [m if ok else math.nan for m, ok in zip(means, finite, strict=True)]
    return (torch.tensor(stds, dtype=f64), torch.tensor(means, dtype=f64),
            torch.tensor(finite, dtype=torch.bool))  # fmt: skip


def _two_pass(y: Tensor) -> tuple[Tensor, Tensor]:
    """(std, mean) of each row of float64 ``y``, scaled by its largest magnitude first."""
    amax = y.abs().amax(dim=1)
    scale = torch.where(torch.isfinite(amax) & (amax > 0), amax, torch.ones_like(amax))
    std, mean = torch.std_mean(y / scale[:, None], dim=1)
    return std * scale, mean * scale


def classify(
    std: float,
    finite: bool,
    tiny: float,
    input_std: float,
    explode_at: float | None,
    vanish_at: float | None,
) -> str | None:
    """The divergence kind of a layer with this std, or None if the signal is still fine."""
    if not finite:
        return "overflow"
    if std < tiny:
        return "underflow"
    if explode_at is not None and std > explode_at * input_std:
        return "explode"
    if vanish_at is not None and std < vanish_at * input_std:
        return "vanish"
    return None


def pair_cosine(p: Tensor) -> Tensor:
    """Cosine of the first two rows of each p[k] (k, m ≥ 2, width), in float64; NaN if not
    finite."""
    z = p[:, :2].to(torch.float64)
    if p.dtype == torch.float64:  # squares of float64 values can overflow: scale first
        scale = z.abs().amax(dim=(1, 2), keepdim=True)
        z = z / scale.clamp_min(torch.finfo(torch.float64).tiny)
    # below float64 the squares of any value fit in float64's range: no scaling needed.
    # One batched product gives both squared norms and the dot product (the 2×2 Gram matrix).
    gram = torch.bmm(z, z.transpose(1, 2))
    return gram[:, 0, 1] / (gram[:, 0, 0] * gram[:, 1, 1]).sqrt()


def frobenius_of_product(delta: Tensor, h: Tensor) -> Tensor:
    """‖δ_kᵀ·h_k‖_F for each k of δ, h (k, m, width), without forming the width × width
    product: ‖δᵀh‖² = Σ (δδᵀ) ⊙ (hhᵀ), two m × m Grams in float64 of the rows scaled by
    their largest magnitude (so nothing overflows before the data does)."""
    out = []
    for x in (delta, h):
        x = x.to(torch.float64)
        s = x.abs().amax(dim=(1, 2), keepdim=True)
        s = torch.where(torch.isfinite(s) & (s > 0), s, torch.ones_like(s))
        out.append((x / s, s.reshape(-1)))
    (d, sd), (x, sx) = out
    gram = (d @ d.transpose(1, 2)) * (x @ x.transpose(1, 2))
    return gram.sum(dim=(1, 2)).clamp_min(0.0).sqrt() * sd * sx


# --- whole tensors (the probe) ---------------------------------------------------------------

# Elements per float64 block of the sums. On a CPU 2^19 (4 MiB, in cache): the fastest of
# 2^15..2^21 on 1 and 2 threads; converting a whole 2M-element tensor at once ran 1.5x slower
# and sum(dtype=float64) of float32 (a scalar loop) 2.5x. Elsewhere 2^25 (256 MiB): a bounded
# copy without a Python loop of blocks.
_BLOCK_CPU = 1 << 19
_BLOCK_DEVICE = 1 << 25


def _blocks(flat: Tensor, buf: Tensor, minus: Tensor | None = None) -> Iterator[Tensor]:
    """1-D ``flat`` (minus 1-D ``minus``, its length) in float64, block by block, each
    copied into ``buf`` (one block's length); the difference is taken in float64, exact for
    float32 and narrower values."""
    n, size = flat.numel(), buf.numel()
    for i in range(0, n, size):
        end = min(i + size, n)
        block = buf[: end - i].copy_(flat[i:end])
        if minus is not None:
            block.sub_(minus[i:end])
        yield block


def _sums(flat: Tensor, buf: Tensor, minus: Tensor | None = None
          ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """(K, Σy, Σ(y − K)²) over 1-D float32/bfloat16/float16 ``flat``, in float64, K the mean
    of its first block.

    The values and their squares are exact in float64 and cannot overflow there, and the
    shift takes the mean out before squaring: var = (Σ(y−K)² − n·(mean − K)²)/(n − 1) is
    within about 2e-15·(1 + (mean − K)²/var) of exact, where (mean − K)²/var ≤ n/block (K
    averages a block of the same data) and is O(1) in practice; mean = Σy/n as in
    :func:`layer_stats`. Its accuracy in one pass of cached blocks,
    without a float64 copy of the tensor. With ``minus``: the same of ``flat − minus``.
    """
    k: Tensor | None = None
    s1, s2 = [], []
    for block in _blocks(flat, buf, minus):
        s1.append(block.sum())
        if k is None:
            k = s1[0] / block.numel()
        s2.append(torch.dot(block.sub_(k), block))
    if k is None:
        raise InitsuiteError("no elements to sum")  # callers pass n >= 2
    if len(s1) == 1:
        return k, s1[0], s2[0]
    return k, torch.stack(s1).sum(), torch.stack(s2).sum()


def _plain_sums(flat: Tensor, buf: Tensor, minus: Tensor | None = None
                ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """(0, Σy, Σy²): :func:`_sums` without the shift, one pass fewer over each block, within
    about 2e-15·(1 + mean²/var) of exact."""
    s1, s2 = [], []
    for block in _blocks(flat, buf, minus):
        s1.append(block.sum())
        s2.append(torch.dot(block, block))
    if len(s1) == 1:
        return torch.zeros_like(s1[0]), s1[0], s2[0]
    return torch.zeros_like(s1[0]), torch.stack(s1).sum(), torch.stack(s2).sum()


def _nonfinite(y: Tensor, minus: Tensor | None = None) -> Tensor:
    """The number of non-finite values of ``y`` (of ``y − minus``: where either is)."""
    ok = torch.isfinite(y) if minus is None else torch.isfinite(y) & torch.isfinite(minus)
    return (~ok).sum().to(torch.float64)


def tensor_stats(t: Tensor, buffer: Callable[[torch.device, int], Tensor],
           minus: Tensor | None = None, *, stats: str = "exact") -> Tensor:  # fmt: skip
    """What :func:`finish_stats` turns into the std, mean and non-finite count of all of ``t``'s
    elements: float64 on its device, read back once, at the end of the pass.

    Below float64, sums [K, Σy, Σ(y − K)², count] in float64 blocks from ``buffer(device,
    block length)``; float64 takes layer_stats' exact path, and under two elements there is
    nothing to sum: both give [std, mean, count]. Off the CPU every decision would be a
    synchronisation: the shifted :func:`_sums` and the non-finite count always run. On a CPU
    reading a host value costs nothing, so, as layer_stats does, it takes the cheaper
    :func:`_plain_sums` and redoes them shifted only where the mean exceeds 5 std (the error
    stays under ~5e-14), and counts the non-finite values (a costlier pass than the sums)
    only when there are some.

    With ``minus`` (``t``'s shape): the same of ``t − minus``, the difference taken in
    float64 block by block (no copy of the difference).

    ``stats="fast"`` sums in float32 instead, on a CPU, Σy and Σy² in a reduction each
    (:func:`~initsuite.engine.fast_stats.fast_sums`: std within 2e-5 relative, typically
    1e-7; two passes where the mean is more than a std from 0; about half the time); where
    float32 cannot hold those sums, and off the CPU, it takes the exact path.
    """
    check_stats(stats)
    y = t.detach().reshape(-1)
    m = None if minus is None else minus.detach().reshape(-1)
    n = y.numel()
    if n < 2 or y.dtype == torch.float64:
        d = y if m is None else y.to(torch.float64) - m.to(torch.float64)
        if n < 2:
            nan = torch.full((), math.nan, dtype=torch.float64, device=y.device)
            return torch.stack([nan, d[0].to(torch.float64) if n == 1 else nan, _nonfinite(d)])
        std, mean, _ = layer_stats(d.view(1, -1))
        return torch.stack([std[0], mean[0], _nonfinite(d)])
    if stats == "fast" and y.device.type == "cpu":
        fast = fast_sums(y, float32_buffer(buffer, y.device, fast_block(n)), m)
        if fast is not None:  # else an inf or nan, or squares past float32's range
            return fast
    if y.device.type != "cpu":
        size = min(n, _BLOCK_DEVICE)
        return torch.stack([*_sums(y, buffer(y.device, size), m), _nonfinite(y, m)])
    buf = buffer(y.device, min(n, _BLOCK_CPU))
    k, s1, s2 = _plain_sums(y, buf, m)
    # an inf or nan anywhere makes Σy² inf or nan; mean² ≤ 5²·var ⇔ 26·(Σy)² ≤ 25·n·Σy²
    finite = s2 < math.inf
    if bool(finite & ((_REDO**2 + 1) * s1 * s1 <= _REDO**2 * n * s2)):
        return torch.stack([k, s1, s2, torch.zeros_like(s2)])
    if bool(finite):
        return torch.stack([*_sums(y, buf, m), torch.zeros_like(s2)])
    return torch.stack([k, s1, s2, _nonfinite(y, m)])


def finish_stats(values: list[float], n: int) -> tuple[float, float, float]:
    """(std, mean, non-finite count) of a tensor of ``n`` elements from what
    :func:`tensor_stats` recorded, in float64 arithmetic; std and mean are NaN when a value is
    inf or nan (as in layer_stats)."""
    if len(values) == 3:
        std, mean, bad = values
        return std, mean, bad
    k, s1, s2, bad = values
    if bad:
        return math.nan, math.nan, bad
    mean = s1 / n
    return math.sqrt(max((s2 - n * (mean - k) ** 2) / (n - 1), 0.0)), mean, bad


def tensor_norm(t: Tensor, buffer: Callable[[torch.device, int], Tensor], *,
                stats: str = "exact") -> Tensor:  # fmt: skip
    """Frobenius norm of ``t``: float64, 0-dim, on its device; finite unless ``t`` holds an
    inf or nan. ``stats="fast"``: the squares summed in float32 on a CPU
    (:func:`~initsuite.engine.fast_stats.fast_squares`: within 8e-6 relative), exact where
    float32 cannot hold the sum."""
    y = t.detach().reshape(-1)
    n = y.numel()
    if n == 0:
        return torch.zeros((), dtype=torch.float64, device=y.device)
    if y.dtype == torch.float64:  # squares could overflow: scaled by the largest magnitude
        s = y.abs().amax()
        s = torch.where(torch.isfinite(s) & (s > 0), s, torch.ones_like(s))
        return torch.linalg.vector_norm(y / s) * s
    if check_stats(stats) == "fast" and y.device.type == "cpu":
        total = fast_squares(y, float32_buffer(buffer, y.device, fast_block(n)))
        if total is not None:  # else an inf or nan, or squares past float32's range
            return total.sqrt()
    size = min(n, _BLOCK_CPU if y.device.type == "cpu" else _BLOCK_DEVICE)
    squares = [torch.dot(b, b) for b in _blocks(y, buffer(y.device, size))]
    return (squares[0] if len(squares) == 1 else torch.stack(squares).sum()).sqrt()


def read_back(vectors: list[Tensor]) -> list[list[float]]:
    """The values of the 1-D ``vectors``, read with one ``tolist`` per device: one
    synchronisation of a GPU per pass, not one per value."""
    by_device: dict[torch.device, list[int]] = {}
    for i, v in enumerate(vectors):
        by_device.setdefault(v.device, []).append(i)
    out: list[list[float]] = [[] for _ in vectors]
    for index in by_device.values():
        values = torch.cat([vectors[i] for i in index]).tolist()
        start = 0
        for i in index:
            out[i] = values[start : start + vectors[i].numel()]
            start += vectors[i].numel()
    return out

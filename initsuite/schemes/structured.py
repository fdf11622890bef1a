r"""Structured schemes: eye, dirac, orthogonal (QR and Householder) and sparse (delta-orthogonal
and ZerO are in :mod:`~initsuite.schemes.isometric`).

Each function fills ``tensor`` in place and returns it and draws only from ``generator``;
the torch.nn.init ones match their counterpart value for value given the same generator
state (tested), except ``sparse``, whose zero pattern torch draws from the global RNG.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from initsuite.schemes.common import Gain, at_least, gain_value
from initsuite.schemes.registry import SchemeInfo, SharedDraw, register

__all__ = [
    "dirac", "eye", "haar_householder", "orthogonal", "orthogonal_householder", "sparse",
]  # fmt: skip

_SAXE = (
    "Saxe et al. (2013), Exact solutions to the nonlinear dynamics of learning in deep linear "
    "networks"
)
_MARTENS = "Martens (2010), Deep learning via Hessian-free optimization"
_STEWART = (
    "Stewart (1980), The efficient generation of random orthogonal matrices with an "
    "application to condition estimators"
)


def _check_dirac(shape: tuple[int, ...] | None, groups: int) -> None:
    at_least("groups", groups, 1)
    if shape is not None and len(shape) >= 1 and shape[0] % groups:
        raise ValueError(f"dim 0 must be divisible by groups, got shape {shape}, groups={groups}")


def _check_sparse(shape: tuple[int, ...] | None, sparsity: float, std: float) -> None:
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity!r}")
    at_least("std", std)


# -- identity -------------------------------------------------------------------------------


@register(SchemeInfo(
    family="identity", variance_formula="0 (deterministic)", variance=lambda shape: None,
    paper="-", min_rank=2, max_rank=2, torch_fn="eye_"))  # fmt: skip
def eye(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    r"""The identity matrix (rectangular: ones on the main diagonal), for Linear weights."""
    if tensor.ndimension() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    with torch.no_grad():
        torch.eye(*tensor.shape, out=tensor, requires_grad=tensor.requires_grad)
    return tensor


@register(SchemeInfo(
    family="identity", variance_formula="0 (deterministic)", variance=lambda shape, groups=1: None,
    paper="-", min_rank=3, max_rank=5, torch_fn="dirac_", check=_check_dirac))  # fmt: skip
def dirac(tensor: Tensor, groups: int = 1, *, generator: torch.Generator | None = None) -> Tensor:
    r"""Dirac delta at the kernel centre (index ``k // 2``): Conv layers pass channels through.

    Args:
        groups: number of conv groups; each group preserves identity (default 1).
    """
    if tensor.ndimension() not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    if groups < 1 or tensor.size(0) % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    out_per_group = tensor.size(0) // groups
    n = min(out_per_group, tensor.size(1))
    centre = tuple(s // 2 for s in tensor.shape[2:])
    with torch.no_grad():
        tensor.zero_()
        for g in range(groups):
            for d in range(n):
                tensor[(g * out_per_group + d, d, *centre)] = 1
    return tensor


# -- orthogonal ------------------------------------------------------------------------------


def _orthogonal_var(shape: tuple[int, ...], gain: float = 1.0) -> float:
    rows = shape[0]
    cols = math.prod(shape[1:])
    return gain**2 / max(rows, cols)


def _orthogonal_shared(shape: tuple[int, ...], gain: Gain = 1.0) -> SharedDraw | None:
    # Square only: torch transposes wide matrices before the QR, which sweeps never need.
    if len(shape) == 2 and shape[0] == shape[1]:
        return SharedDraw("orthogonal", gain_value(gain))
    return None


def _qr_haar(z: Tensor) -> Tensor:
    """torch's orthogonal_: Q of a QR of ``z`` with R's diagonal signs folded in."""
    q, r = torch.linalg.qr(z)
    return q * torch.diag(r, 0).sign()


def _householder_haar(z: Tensor) -> Tensor:
    a, tau, d = haar_householder(z)
    return torch.linalg.householder_product(a, tau) * d


def _fill_orthogonal(
    tensor: Tensor,
    gain: Gain,
    generator: torch.Generator | None,
    haar: Callable[[Tensor], Tensor],
) -> Tensor:
    """Fill ``tensor`` (trailing dimensions flattened) with ``gain · haar(Z)``, Z a tall
    N(0, 1) draw of the flattened shape (transposed when wide, as torch does); the
    factorisation runs in float32 for float16/bfloat16 tensors."""
    if tensor.ndimension() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.size(0)
    cols = tensor.numel() // rows
    with torch.no_grad():
        flat = tensor.new_empty((rows, cols)).normal_(0, 1, generator=generator)
        if flat.dtype in (torch.float16, torch.bfloat16):
            flat = flat.float()
        if rows < cols:
            flat.t_()
        q = haar(flat)
        if rows < cols:
            q.t_()
        tensor.view_as(q).copy_(q)
        tensor.mul_(gain_value(gain))
    return tensor


@register(SchemeInfo(
    family="orthogonal", variance_formula="gain² / max(rows, cols)", variance=_orthogonal_var,
    paper=_SAXE, min_rank=2, torch_fn="orthogonal_",
    shared=_orthogonal_shared))  # fmt: skip
def orthogonal(
    tensor: Tensor, gain: Gain = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""A (semi-)orthogonal matrix times ``gain``; trailing dimensions are flattened.

    Q from the QR decomposition of a Gaussian matrix, with the signs of R's diagonal folded in
    so that Q is Haar-distributed (Mezzadri 2007). For float16/bfloat16 tensors the QR runs in
    float32 (torch's QR has no half-precision kernel) and the result is cast back.

    Args:
        gain: scale factor, or ``auto`` for the following activation's gain (default 1).
    """
    return _fill_orthogonal(tensor, gain, generator, _qr_haar)


def haar_householder(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Householder factors of a Haar-distributed Q, from a Gaussian ``z`` (m, n), m ≥ n.

    Reflection k maps the column ``z[k:, k]`` onto a multiple of e_k; unlike a QR, no
    reflection updates the columns after it, so this costs O(m·n), not O(m·n²). Returns
    ``(a, tau, d)`` with ``a``/``tau`` in LAPACK's ``geqrf`` layout (for
    ``torch.linalg.householder_product`` and ``torch.ormqr``) and signs ``d``, such that
    Q = H_0⋯H_{n-1}·diag(d) has Haar-distributed (uniform on the Stiefel manifold) columns:
    its first column is z[:, 0]/‖z[:, 0]‖ and the rest is Haar on the complement, recursively
    (Stewart 1980).
    """
    low = torch.tril(z, diagonal=-1)
    diag = torch.diagonal(z)
    tail2 = (low * low).sum(dim=0)
    s = torch.where(diag >= 0, 1.0, -1.0).to(z.dtype)
    u0 = diag + s * torch.sqrt(diag * diag + tail2)
    ok = u0 != 0  # a zero column (probability 0) leaves its reflection out
    safe = torch.where(ok, u0, torch.ones_like(u0))
    a = torch.where(ok, low / safe, torch.zeros_like(low))
    tau = torch.where(ok, 2 * safe * safe / (safe * safe + tail2), torch.zeros_like(u0))
    return a, tau, -s


def _orthogonal_householder_shared(shape: tuple[int, ...], gain: Gain = 1.0) -> SharedDraw | None:
    if len(shape) == 2 and shape[0] == shape[1]:
        return SharedDraw("householder", gain_value(gain))
    return None


@register(SchemeInfo(
    family="orthogonal", variance_formula="gain² / max(rows, cols)", variance=_orthogonal_var,
    paper=_STEWART, min_rank=2, shared=_orthogonal_householder_shared))  # fmt: skip
def orthogonal_householder(
    tensor: Tensor, gain: Gain = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""A Haar (semi-)orthogonal matrix times ``gain``, from random Householder reflections.

    The same distribution as ``orthogonal`` from the same N(0, 1) draw, but other values:
    the reflections are built from the draw's columns directly instead of by a QR (see
    :func:`haar_householder`). In sweeps it is applied to the activations in O(batch·n²)
    per layer, with no O(n³) factorisation: the fast option for wide orthogonal sweeps.

    Args:
        gain: scale factor, or ``auto`` for the following activation's gain (default 1).
    """
    return _fill_orthogonal(tensor, gain, generator, _householder_haar)


# -- sparse ----------------------------------------------------------------------------------


def _sparse_var(shape: tuple[int, ...], sparsity: float = 0.9, std: float = 0.01) -> float:
    rows = shape[0]
    return (1 - math.ceil(sparsity * rows) / rows) * std**2


@register(SchemeInfo(
    family="sparse_normal", variance_formula="(1 - ceil(sparsity·rows)/rows) · std²",
    variance=_sparse_var, paper=_MARTENS,
    min_rank=2, max_rank=2, torch_fn="sparse_", check=_check_sparse))  # fmt: skip
def sparse(
    tensor: Tensor,
    sparsity: float = 0.9,
    std: float = 0.01,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""N(0, std²) with a fraction ``sparsity`` of each column set to zero.

    The non-zero values are torch's (same draw); the zero pattern comes from ``generator`` too,
    as one random permutation per column (torch's ``sparse_`` draws it from the global RNG, so
    same seed would not mean same numbers). torch has no default sparsity; initsuite uses 0.9.

    Args:
        sparsity: fraction of each column set to zero, in [0, 1] (default 0.9).
        std: std of the non-zero values (default 0.01).
    """
    if tensor.ndimension() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    rows, cols = tensor.shape
    num_zeros = math.ceil(sparsity * rows)
    with torch.no_grad():
        tensor.normal_(0, std, generator=generator)
        if num_zeros:
            # Ranks of iid uniforms form an independent uniform permutation per column.
            keys = torch.rand((rows, cols), generator=generator, device=tensor.device)
            # The num_zeros smallest keys of each column: a k-th value selection (O(rows)
            # per column, 5× faster than argsort at 1024²) gives the same set unless the
            # k-th key ties with another, which argsort then settles.
            kth = keys.kthvalue(num_zeros, dim=0, keepdim=True).values
            mask = keys <= kth
            if int(mask.sum()) == num_zeros * cols:
                tensor.masked_fill_(mask, 0.0)
            else:
                tensor.scatter_(0, keys.argsort(dim=0)[:num_zeros], 0.0)
    return tensor

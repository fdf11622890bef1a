r"""Structured schemes: eye, dirac, orthogonal (QR and Householder), sparse,
delta-orthogonal and ZerO.

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
    "delta_orthogonal", "dirac", "eye", "haar_householder", "orthogonal",
    "orthogonal_householder", "sparse", "sylvester_hadamard", "zero", "zero_matrix",
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
_XIAO = (
    "Xiao et al. (2018), Dynamical Isometry and a Mean Field Theory of CNNs: How to Train "
    "10,000-Layer Vanilla Convolutional Neural Networks"
)
_ZHAO = (
    "Zhao, Schäfer & Anandkumar (2021), ZerO Initialization: Initializing Neural Networks with "
    "only Zeros and Ones (TMLR 2022)"
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


# -- delta-orthogonal, at the kernel's centre tap ----------------------------------------------


def _check_conv(tensor: Tensor, centre: Callable[[int], int]) -> tuple[slice | int, ...]:
    """The index of the centre tap (``centre(k)`` along each spatial dimension) of a rank 3-5
    conv kernel: ``tensor[index]`` is the (out × in) matrix there."""
    if tensor.ndimension() not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    return (slice(None), slice(None), *(centre(s) for s in tensor.shape[2:]))


def _torch_centre(k: int) -> int:
    """torch's ``dirac_`` (and ZerO's): ``k // 2``, the later of the two middles of an even k."""
    return k // 2


def _same_padding_centre(k: int) -> int:
    """JAX's ``delta_orthogonal``: ``(k - 1) // 2``, the earlier middle of an even k, the tap
    that "same" padding (``(k - 1) // 2`` before, ``k // 2`` after, in torch and XLA) aligns
    with the output pixel."""
    return (k - 1) // 2


def _check_delta_orthogonal(shape: tuple[int, ...] | None, gain: float = 1.0) -> None:
    # Xiao et al. (2018) and JAX: an isometry needs orthonormal columns, so in <= out
    if shape is not None and len(shape) >= 2 and shape[1] > shape[0]:
        raise ValueError(
            f"in_channels must be <= out_channels (Xiao et al. 2018), got shape "
            f"{tuple(shape)}: {shape[1]} in, {shape[0]} out; 'orthogonal' fills a narrowing conv"
        )


def _delta_orthogonal_var(shape: tuple[int, ...], gain: float = 1.0) -> float:
    return gain**2 / (shape[0] * math.prod(shape[2:]))


@register(
    SchemeInfo(
        family="orthogonal",
        variance_formula="gain² / (out · K), K = prod(kernel); needs in <= out",
        variance=_delta_orthogonal_var,
        paper=_XIAO,
        min_rank=3,
        max_rank=5,
        check=_check_delta_orthogonal,
        taps="centre",
    )
)
def delta_orthogonal(
    tensor: Tensor, gain: Gain = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""Delta-orthogonal conv kernel: ``gain`` × a Haar orthogonal matrix at the centre tap.

    W[:, :, c] = gain · Q with Q an (out × in) matrix with orthonormal columns, drawn exactly
    as ``orthogonal`` draws one (same generator, same values), and zeros at every other tap.
    A stride-1 conv with "same" padding is then Q applied at every pixel: with gain 1 the layer
    preserves the norm of its input exactly, at any depth (dynamical isometry). That needs
    in <= out (Xiao et al. 2018, Algorithm 2; JAX's ``delta_orthogonal`` refuses the rest
    too): a narrowing layer has no isometry, so in > out raises (``orthogonal`` fills one).
    Each entry has E[W²] = gain² / (out · K), K = prod(kernel).

    The centre c is index ``(k - 1) // 2`` along each spatial dimension, as in JAX. For odd k
    that is the middle (as in torch's ``dirac_``, ``k // 2``: the same values); for even k it
    is the earlier of the two middles, the tap that "same" padding (``padding="same"`` in
    torch, ``SAME`` in XLA: (k - 1) // 2 zeros before, k // 2 after) aligns with the output
    pixel, so even kernels keep the norm exactly too, where ``dirac_``'s k // 2 would shift the
    image by one pixel.

    Args:
        gain: scale factor, or ``auto`` for the following activation's gain (default 1).

    Example:
        >>> conv = torch.nn.Conv2d(16, 16, 3, padding=1, bias=False)
        >>> w = delta_orthogonal(conv.weight, generator=torch.Generator().manual_seed(0))
        >>> centre = w[:, :, 1, 1].detach()  # orthogonal; every other tap is zero
        >>> torch.allclose(centre @ centre.T, torch.eye(16), atol=1e-5)
        True
    """
    centre = _check_conv(tensor, _same_padding_centre)
    _check_delta_orthogonal(tuple(tensor.shape))
    if tensor.numel() == 0:
        return tensor
    with torch.no_grad():
        q = orthogonal(tensor.new_empty(tensor.shape[:2]), gain_value(gain), generator=generator)
        tensor.zero_()
        tensor[centre] = q
    return tensor


# -- ZerO ------------------------------------------------------------------------------------


def sylvester_hadamard(rows: int, cols: int, device: torch.device | str | None = None) -> Tensor:
    """The leading ``rows × cols`` block of Sylvester's ±1 Hadamard matrix, as int64.

    H_0 = [1], H_{m+1} = [[H_m, H_m], [H_m, -H_m]], so H_m = H_{m-q} ⊗ H_q; with
    2^q >= cols, every column index is below 2^q and H_{m-q}[:, 0] = 1, hence
    H_m[i, j] = H_q[i mod 2^q, j]: H_q is built by doubling and its rows repeated, without
    forming the 2^m × 2^m matrix.
    """
    h = torch.ones((1, 1), dtype=torch.int64, device=device)
    for _ in range(max(cols - 1, 0).bit_length()):
        h = torch.cat([torch.cat([h, h], dim=1), torch.cat([h, -h], dim=1)], dim=0)
    reps = -(-rows // h.shape[0])
    return h[:, :cols].repeat(reps, 1)[:rows]


def zero_matrix(rows: int, cols: int, device: torch.device | str | None = None) -> Tensor:
    """ZerO's (rows × cols) = (P × Q) matrix (Algorithm 1 of Zhao et al.), in float64.

    P <= Q: the partial identity I* (ones on the main diagonal, the identity when P == Q).
    P > Q: c · I*_{P×2^m} H_m I*_{2^m×Q} = c · H_m[:P, :Q], m = ceil(log2 P),
    c = 2^(-(m-1)/2), H_m Sylvester's ±1 Hadamard matrix of size 2^m.
    """
    if rows <= cols:
        return torch.eye(rows, cols, dtype=torch.float64, device=device)
    m = (rows - 1).bit_length()  # ceil(log2(rows)), exactly, for rows >= 1
    c = 2.0 ** (-(m - 1) / 2)
    return c * sylvester_hadamard(rows, cols, device).to(torch.float64)


@register(
    SchemeInfo(
        family="identity",
        variance_formula="0 (deterministic)",
        variance=lambda shape: None,
        paper=_ZHAO,
        min_rank=2,
        max_rank=5,
    )
)
def zero(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    r"""ZerO: deterministic identity / Hadamard weights of only zeros and ones (up to c).

    For a weight (P, Q) = (out, in), Algorithm 1 of Zhao et al.:

    * P == Q: the identity I;
    * P < Q: the partial identity I* (ones on the main diagonal), which passes the first P
      inputs through;
    * P > Q: c · I*_{P×2^m} · H_m · I*_{2^m×Q} = c · H_m[:P, :Q], m = ceil(log2 P),
      c = 2^(-(m-1)/2), H_m the unnormalised (±1) Sylvester Hadamard matrix of size 2^m:
      every output gets a distinct ±c mix of the inputs, instead of I*'s zero rows.

    c is the paper's (Algorithm 1): the top 2^(m-1) rows of c · H_m have orthonormal columns
    when Q <= 2^(m-1). The authors' example code divides by 2^(m/2) instead (H_m / sqrt(2^m),
    orthonormal), 1/sqrt(2) times smaller. Conv kernels (rank 3-5, out × in × k...) get the
    same matrix at the centre tap, index ``k // 2`` along each spatial dimension, and zeros
    elsewhere (Algorithm 2, which states it for odd k). The generator is not used.

    Example:
        >>> zero(torch.empty(6, 4))  # 0.5 · the first 6 rows and 4 columns of H_3
        tensor([[ 0.5000,  0.5000,  0.5000,  0.5000],
                [ 0.5000, -0.5000,  0.5000, -0.5000],
                [ 0.5000,  0.5000, -0.5000, -0.5000],
                [ 0.5000, -0.5000, -0.5000,  0.5000],
                [ 0.5000,  0.5000,  0.5000,  0.5000],
                [ 0.5000, -0.5000,  0.5000, -0.5000]])
    """
    if tensor.ndimension() not in (2, 3, 4, 5):
        raise ValueError("Only tensors with 2, 3, 4, or 5 dimensions are supported")
    rows, cols = tensor.shape[:2]
    with torch.no_grad():
        w = zero_matrix(rows, cols, tensor.device)
        if tensor.ndimension() == 2:
            return tensor.copy_(w)
        centre = _check_conv(tensor, _torch_centre)
        tensor.zero_()
        tensor[centre] = w
    return tensor

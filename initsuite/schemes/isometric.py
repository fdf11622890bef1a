r"""Schemes isometric by construction: delta-orthogonal (an orthogonal matrix at a conv
kernel's centre tap), DKS's scaled uniform orthogonal (SUO, dense and delta) and ZerO
(Hadamard and identity blocks, only zeros and ones).

Each function fills ``tensor`` in place and returns it and draws only from ``generator``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from initsuite.schemes.common import Gain, gain_value
from initsuite.schemes.registry import SchemeInfo, SharedDraw, register
from initsuite.schemes.structured import orthogonal

__all__ = [
    "delta_orthogonal", "delta_scaled_orthogonal", "scaled_orthogonal", "suo_scale",
    "sylvester_hadamard", "zero", "zero_matrix",
]  # fmt: skip

_XIAO = (
    "Xiao et al. (2018), Dynamical Isometry and a Mean Field Theory of CNNs: How to Train "
    "10,000-Layer Vanilla Convolutional Neural Networks"
)
_MARTENS_DKS = (
    "Martens et al. (2021), Rapid training of deep neural networks without skip connections or "
    "normalization layers using Deep Kernel Shaping (Parameter distributions)"
)
_ZHAO = (
    "Zhao, Schäfer & Anandkumar (2021), ZerO Initialization: Initializing Neural Networks with "
    "only Zeros and Ones (TMLR 2022)"
)


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
    return _at_centre(tensor, centre, gain_value(gain), generator)


def _at_centre(tensor: Tensor, centre: tuple[slice | int, ...], gain: float,
               generator: torch.Generator | None) -> Tensor:  # fmt: skip
    """``tensor`` zeroed but at the tap ``centre``, which holds ``gain`` × the (out × in)
    matrix ``orthogonal`` draws from ``generator``."""
    if tensor.numel() == 0:
        return tensor
    with torch.no_grad():
        q = orthogonal(tensor.new_empty(tensor.shape[:2]), gain, generator=generator)
        tensor.zero_()
        tensor[centre] = q
    return tensor


# -- scaled uniform orthogonal (DKS) -----------------------------------------------------------


def suo_scale(rows: int, cols: int) -> float:
    """DKS's rescale of a (rows × cols) = (out × in) orthogonal matrix, max(√(out/in), 1):
    the factor by which the layer keeps q = ‖x‖²/dim from its input to its output."""
    return max(math.sqrt(rows / cols), 1.0)


def _scaled_orthogonal_var(shape: tuple[int, ...], gain: float = 1.0) -> float:
    # gain² · max(rows/cols, 1) / max(rows, cols) = gain² / cols in both cases
    return gain**2 / math.prod(shape[1:])


def _scaled_orthogonal_shared(shape: tuple[int, ...], gain: Gain = 1.0) -> SharedDraw | None:
    # square: the scale is 1 and the draw is orthogonal's
    if len(shape) == 2 and shape[0] == shape[1]:
        return SharedDraw("orthogonal", gain_value(gain))
    return None


@register(
    SchemeInfo(
        family="orthogonal",
        variance_formula="gain² / fan_in (gain · max(√(rows/cols), 1) · Haar orthogonal)",
        variance=_scaled_orthogonal_var,
        paper=_MARTENS_DKS,
        min_rank=2,
        shared=_scaled_orthogonal_shared,
        # on a sweep's square layers it is orthogonal, value for value: swept by name, so
        # that `all` holds no duplicate rows
        archs=(),
    )
)
def scaled_orthogonal(
    tensor: Tensor, gain: Gain = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""DKS's scaled uniform orthogonal (SUO) weights: ``orthogonal`` times max(√(out/in), 1).

    W = gain · max(√(rows/cols), 1) · Q, Q the Haar (semi-)orthogonal matrix ``orthogonal``
    draws (same generator, same values) of the (rows × cols) flattening, rows = out,
    cols = in · K. A widening layer (Q with orthonormal columns) keeps ‖x‖ and so would shrink
    q = ‖x‖²/dim by in/out: the factor √(out/in) restores it; a narrowing one (orthonormal
    rows) keeps q on average as it is. With gain 1 and zero biases every layer then maps
    q = 1 to q = 1, which DKS and TAT assume (Martens et al. 2021, "Parameter
    distributions"). Var(W) = gain² / fan_in. Conv kernels that should hold the matrix at
    the centre tap only take ``delta_scaled_orthogonal``.

    Args:
        gain: scale factor on top of the rescale, or ``auto``; DKS/TAT leave it at 1 (default).

    Example:
        >>> w = scaled_orthogonal(torch.empty(64, 16), generator=torch.Generator().manual_seed(0))
        >>> x = torch.randn(16, dtype=torch.float64)
        >>> q_in, q_out = x.square().mean(), (w.double() @ x).square().mean()
        >>> abs(q_out / q_in - 1) < 1e-5  # widening 16 -> 64, q kept exactly
        tensor(True)
    """
    if tensor.ndimension() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    rows = tensor.size(0)
    scale = suo_scale(rows, tensor.numel() // rows) if tensor.numel() else 1.0
    return orthogonal(tensor, gain_value(gain) * scale, generator=generator)


def _check_odd_kernel(shape: tuple[int, ...] | None, gain: float = 1.0) -> None:
    # the centre of an even kernel is not a tap: dks refuses it too
    if shape is not None and any(k % 2 == 0 for k in shape[2:]):
        raise ValueError(
            f"a delta initialization needs odd kernel sizes (Martens et al. 2021), got shape "
            f"{tuple(shape)}; 'scaled_orthogonal' fills even kernels at every tap"
        )


def _delta_scaled_orthogonal_var(shape: tuple[int, ...], gain: float = 1.0) -> float:
    return gain**2 / (shape[1] * math.prod(shape[2:]))


@register(
    SchemeInfo(
        family="orthogonal",
        variance_formula="gain² / (in · K), K = prod(kernel); odd kernels",
        variance=_delta_scaled_orthogonal_var,
        paper=_MARTENS_DKS,
        min_rank=3,
        max_rank=5,
        check=_check_odd_kernel,
        taps="centre",
    )
)
def delta_scaled_orthogonal(
    tensor: Tensor, gain: Gain = 1.0, *, generator: torch.Generator | None = None
) -> Tensor:
    r"""DKS's Delta SUO conv kernel: a scaled orthogonal matrix at the centre tap.

    W[:, :, c] = gain · max(√(out/in), 1) · Q with Q the (out × in) Haar matrix
    ``delta_orthogonal`` draws (same generator, same values), zeros at every other tap, so a
    stride-1 "same" conv applies the q-preserving ``scaled_orthogonal`` matrix at every pixel
    (Martens et al. 2021, "Parameter distributions"). Unlike ``delta_orthogonal`` a narrowing
    layer (in > out) is allowed: its orthonormal rows keep q on average. Kernel sizes must be
    odd (c = (k - 1) / 2, the middle); Var(W) = gain² / (in · K), K = prod(kernel).

    Args:
        gain: scale factor on top of the rescale, or ``auto``; DKS/TAT leave it at 1 (default).

    Example:
        >>> conv = torch.nn.Conv2d(8, 32, 3, padding=1, bias=False)
        >>> w = delta_scaled_orthogonal(conv.weight, generator=torch.Generator().manual_seed(0))
        >>> centre = w[:, :, 1, 1].detach()  # 2 · orthonormal columns: √(32/8) = 2
        >>> torch.allclose(centre.T @ centre, 4 * torch.eye(8), atol=1e-5)
        True
    """
    centre = _check_conv(tensor, _same_padding_centre)
    _check_odd_kernel(tuple(tensor.shape))
    scale = suo_scale(tensor.size(0), tensor.size(1)) if tensor.numel() else 1.0
    return _at_centre(tensor, centre, gain_value(gain) * scale, generator)


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

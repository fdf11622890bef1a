"""Residual-branch schemes.

Residual schemes treat a weight by where it sits (:class:`~initsuite.schemes.LayerContext`):
in a residual block ``h + α·f(h)`` whose branch f has m layers, the last branch layer (the
*residual projection*, role ``branch_out``), the other branch layers (``branch``) and the
multiplier α (``residual_scale``) are drawn differently. Outside residual nets (role
``layer``, or no context) each falls back to its base draw.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from initsuite.core.errors import InitsuiteError
from initsuite.schemes.registry import LayerContext, SchemeInfo, get, register

__all__ = ["check_scheme_param", "fixup", "gpt2", "rezero", "skipinit"]


def _base_variance(
    shape: tuple[int, ...], base: str = "kaiming_normal", **_: object
) -> float | None:
    return get(base).variance(shape)


def _fixup_branch_factor(context: LayerContext | None) -> float:
    """Fixup's multiplier of a branch layer other than the last: L^(-1/(2m-2)) (m >= 2)."""
    if context is not None and context.role == "branch" and context.branch_depth >= 2:
        return float(context.blocks ** (-1.0 / (2 * context.branch_depth - 2)))
    return 1.0


def _fixup_variance(
    shape: tuple[int, ...], context: LayerContext, base: str = "kaiming_normal", **_: object
) -> float | None:
    """Var(W) of a Fixup weight at ``context``: 0 for residual projections, the base's
    variance × L^(-2/(2m-2)) in the other branch layers, the base's elsewhere."""
    if context.role == "branch_out":
        return 0.0
    var = get(base).variance(shape)
    return None if var is None else var * _fixup_branch_factor(context) ** 2


def _base(tensor: Tensor, base: str, generator: torch.Generator | None) -> Tensor:
    return get(base)(tensor, generator=generator)


def check_scheme_param(name: str, spec: str, shape: tuple[int, ...] | None) -> None:
    """A scheme named by a parameter (``base``, ``start``) must resolve on its own (no
    activation: ``auto`` has none to follow) and, with a shape, take the tensor's rank."""
    inner = get(spec)
    inner.resolve()
    if shape is not None and not inner.info.accepts_rank(len(shape)):
        raise ValueError(
            f"{name}={spec!r} needs a tensor of rank {inner.info.ranks}, got shape {shape}"
        )


def _check_std(std: float) -> None:
    if not std >= 0:
        raise ValueError(f"std must be >= 0, got {std!r}")


def _check_base(shape: tuple[int, ...] | None, base: str) -> None:
    check_scheme_param("base", base, shape)


def _role(context: LayerContext | None) -> str:
    return "layer" if context is None else context.role


@register(
    SchemeInfo(
        family="residual",
        variance_formula="base's, × L^(-2/(2m-2)) in branches; 0 for the residual projection",
        variance=_base_variance,
        role_variance=_fixup_variance,
        paper="Zhang, Dauphin & Ma (2019), Fixup Initialization: Residual Learning Without "
        "Normalization",
        min_rank=2,
        archs=("resmlp",),
        check=_check_base,
    )
)
def fixup(
    tensor: Tensor,
    base: str = "kaiming_normal",
    *,
    generator: torch.Generator | None = None,
    context: LayerContext | None = None,
) -> Tensor:
    """Fixup: a branch's last layer is zero, its other layers are ``base`` × L^(-1/(2m-2)).

    L residual blocks of m layers each: at init every branch outputs 0, so the network equals
    its identity path, and the scaling keeps the update size of SGD independent of depth.
    With m = 1 the branch is its (zeroed) projection alone. Outside residual branches (role
    ``layer``, or no context) the ``base`` scheme's own draw. Fixup's scalar multipliers and
    biases are not modelled (α is the architecture's, biases its own).
    """
    role = _role(context)
    if role == "residual_scale":
        return tensor  # α stays the architecture's
    if role == "branch_out":
        with torch.no_grad():
            return tensor.zero_()
    _base(tensor, base, generator)
    factor = _fixup_branch_factor(context)
    if factor != 1.0:
        with torch.no_grad():
            tensor.mul_(factor)
    return tensor


def _zero_branch_scale(
    tensor: Tensor, base: str, generator: torch.Generator | None, context: LayerContext | None
) -> Tensor:
    if _role(context) == "residual_scale":
        with torch.no_grad():
            return tensor.zero_()
    return _base(tensor, base, generator)


@register(
    SchemeInfo(
        family="residual",
        variance_formula="base's (the branch multiplier α = 0)",
        variance=_base_variance,
        residual_scale=0.0,
        paper="De & Smith (2020), Batch Normalization Biases Residual Blocks Towards the Identity "
        "Function in Deep Networks",
        min_rank=2,  # weights; the scalar α reaches it through the arch with its context
        archs=("resmlp",),
        check=_check_base,
    )
)
def skipinit(
    tensor: Tensor,
    base: str = "kaiming_normal",
    *,
    generator: torch.Generator | None = None,
    context: LayerContext | None = None,
) -> Tensor:
    """SkipInit: every weight from ``base``; the residual branch multiplier α starts at 0,
    so each block (and the network) is the identity at init."""
    return _zero_branch_scale(tensor, base, generator, context)


@register(
    SchemeInfo(
        family="residual",
        variance_formula="base's (the branch multiplier α = 0)",
        variance=_base_variance,
        residual_scale=0.0,
        paper="Bachlechner et al. (2020), ReZero is All You Need: Fast Convergence at Large Depth",
        min_rank=2,
        archs=("resmlp",),
        check=_check_base,
    )
)
def rezero(
    tensor: Tensor,
    base: str = "kaiming_normal",
    *,
    generator: torch.Generator | None = None,
    context: LayerContext | None = None,
) -> Tensor:
    """ReZero: x + α·f(x) with a learned scalar α initialised to 0 (the same init as SkipInit;
    ReZero drops the normalisation inside f). Weights from ``base``."""
    return _zero_branch_scale(tensor, base, generator, context)


def _gpt2_projection_std(std: float, context: LayerContext | None) -> float:
    """GPT-2's std of a weight at ``context``: std/√N for a residual projection (N residual
    projections in the network), std elsewhere. A residual projection whose context does not
    count the network's projections (N = 0) is refused: N is what sets its scale."""
    if context is None or context.role != "branch_out":
        return std
    n = context.residual_projections
    if n < 1:
        raise InitsuiteError(
            "gpt2 scales a residual projection by 1/sqrt(N), N the residual projections in "
            f"the network; its LayerContext has residual_projections={n} (set it, e.g. to "
            "the number of blocks of a resmlp, 2 per transformer block)"
        )
    return std / math.sqrt(n)


def _gpt2_variance(
    shape: tuple[int, ...], context: LayerContext, std: float = 0.02, **_: object
) -> float:
    return _gpt2_projection_std(std, context) ** 2


@register(
    SchemeInfo(
        family="normal",
        variance_formula="std², std²/N for residual projections (N in the network)",
        variance=lambda shape, std=0.02: std**2,
        role_variance=_gpt2_variance,
        paper="Radford et al. (2019), Language Models are Unsupervised Multitask Learners (GPT-2)",
        min_rank=1,
        archs=("resmlp",),
        check=lambda shape, std: _check_std(std),
    )
)
def gpt2(
    tensor: Tensor,
    std: float = 0.02,
    *,
    generator: torch.Generator | None = None,
    context: LayerContext | None = None,
) -> Tensor:
    """GPT-2: N(0, std²) everywhere, N(0, std²/N) for residual projections.

    N is the number of residual projections in the network, from the layer context
    (``LayerContext.residual_projections``): GPT-2's transformer block has two (attention and
    MLP outputs), hence 1/√(2·n_layer) there; a ``resmlp`` block has one, so N = L blocks.
    A residual projection whose context has N = 0 (unknown) raises rather than guess. The
    residual multiplier stays the architecture's; outside residual nets (no context, role
    ``layer``) every weight is N(0, std²).

    Args:
        std: the standard deviation of every weight but the residual projections (0.02).
    """
    role = _role(context)
    if role == "residual_scale":
        return tensor
    s = _gpt2_projection_std(std, context)
    with torch.no_grad():
        return tensor.normal_(0.0, s, generator=generator)

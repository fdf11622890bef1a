"""LSUV, the data-dependent scheme: a start draw, then rescaled to unit output variance.

Mishkin & Matas (2016), "All You Need is a Good Init". One implementation of the rescaling,
:func:`rescale_to_unit_std`, serves the registered scheme (networks pass the layer's output
as ``data``) and :func:`initsuite.engine.reinit.apply` (which runs a whole model).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from initsuite.schemes.registry import SchemeInfo, get, register
from initsuite.schemes.residual import check_scheme_param

__all__ = ["lsuv", "rescale_to_unit_std"]


def _check_lsuv(shape: tuple[int, ...] | None, tol: float, max_iter: int, start: str) -> None:
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol!r}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter!r}")
    if start.split(":")[0].strip() == "lsuv":
        raise ValueError("start must be another scheme, e.g. 'orthogonal', not lsuv")
    check_scheme_param("start", start, shape)


def rescale_to_unit_std(
    weight: Tensor,
    output: Callable[[Tensor], Tensor | None],
    tol: float = 0.1,
    max_iter: int = 10,
) -> Tensor:
    """LSUV's second step (Algorithm 1 of Mishkin & Matas): divide ``weight`` by the std of
    its layer's output until the output's variance is within ``tol`` of 1.

    Args:
        weight: the layer's weight, rescaled in place and returned.
        output: maps the weight to the layer's output on a data batch (any shape; the std,
            correction=1, is taken over all of it in float64). A None output, a std of 0 or
            a non-finite std stops the rescaling.
        tol: the tolerance on the variance, |Var - 1| < tol stops (the paper's Tol_var; its
            0.1 is the default). A tolerance on the std would be about twice as loose:
            |std - 1| < 0.1 accepts variances from 0.81 to 1.21.
        max_iter: the most outputs computed (the paper's T_max; through apply, each a call of
            the layer alone on the input a single forward pass gave it).
    """
    with torch.no_grad():
        for _ in range(max_iter):
            out = output(weight)
            std = float(out.to(torch.float64).std()) if out is not None else 0.0
            if not math.isfinite(std) or std == 0 or abs(std * std - 1.0) < tol:
                break
            weight.div_(std)
    return weight


@register(
    SchemeInfo(
        family="data_dependent",
        variance_formula="data-dependent (a start draw rescaled until |Var(output) - 1| < tol)",
        variance=lambda shape, tol=0.1, max_iter=10, start="orthogonal": None,
        paper="Mishkin & Matas (2016), All You Need is a Good Init (LSUV)",
        min_rank=2,
        archs=(),  # data-dependent, a QR per layer and activation: sweep it by name, not in `all`
        check=_check_lsuv,
    )
)
def lsuv(
    tensor: Tensor,
    tol: float = 0.1,
    max_iter: int = 10,
    start: str = "orthogonal",
    *,
    generator: torch.Generator | None = None,
    data: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Layer-sequential unit variance: a ``start`` draw rescaled to unit output variance.

    Mishkin & Matas (2016), "All You Need is a Good Init": the weight is divided by the std
    of its layer's output until |Var(output) - 1| < ``tol`` (their Algorithm 1).

    Args:
        tensor: the weight, filled in place.
        tol: the tolerance on the variance of the layer's output, |Var - 1| (default 0.1,
            the paper's Tol_var).
        max_iter: the most forward passes per layer.
        start: the scheme of the start draw (orthonormal in the paper; any spec but lsuv).
        generator: the generator of the start draw.
        data: maps the weight to the layer's output on a batch (before its activation,
            biases at zero as in the paper); networks apply it layer by layer in order, each
            on the output of the layers before it. None: the start draw alone.
    """
    _check_lsuv(tuple(tensor.shape), tol, max_iter, start)
    get(start)(tensor, generator=generator)
    if data is None:
        return tensor
    return rescale_to_unit_std(tensor, data, tol, max_iter)

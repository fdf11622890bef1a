"""The stacked layer: a stream's members pushed through one drawn layer as one product.

A :class:`Stream` is every cell that consumes the same random numbers; its :class:`Member` s
are its (scheme, activation) cells. :class:`LayerDraw` draws each layer once (through
:class:`~initsuite.engine.draws.CellDraws`); :class:`Rows` lays the running members out as
contiguous blocks, and :func:`layer_forward` / :func:`layer_backward` apply the layer (or its
transpose) to all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from initsuite.activations import Activation
from initsuite.engine.draws import CellDraws, Fill
from initsuite.schemes import LayerContext, Scheme
from initsuite.schemes.structured import haar_householder

__all__ = [
    "LayerDraw", "Member", "Rows", "Stream", "apply_activations", "base_fill", "layer_backward",
    "layer_forward",
]  # fmt: skip


@dataclass(frozen=True)
class Member:
    """One (scheme, activation) row block of a stream: ``W = shift + scale · base``."""

    scheme: Scheme
    params: tuple[tuple[str, Any], ...]  # resolved scheme parameters
    activation: Activation
    scale: float = 1.0
    shift: float = 0.0
    transform: str = "plain"  # "plain" (B itself), "qr" or "householder" (a Haar Q from B)

    def fill(
        self,
        weight: Tensor,
        generator: torch.Generator,
        context: LayerContext | None = None,
        data: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        """Draw ``weight`` with the member's scheme and resolved parameters
        (:meth:`Scheme.fill`)."""
        self.scheme.fill(weight, dict(self.params), generator=generator, context=context,
                         data=data)  # fmt: skip


@dataclass(frozen=True)
class Stream:
    """Cells that share every random draw, each a :class:`Member`.

    ``base`` is ``"normal"`` or ``"uniform"`` for a common-random-numbers stream, None for a
    stream drawn by its single scheme (``members[0].scheme`` with ``members[0].params``).
    """

    base: str | None
    members: tuple[Member, ...]
    width: int
    depth: int  # the deepest requested depth; shallower ones are prefixes
    batch: int
    seed: int
    device: str
    dtype: str
    bias: str | None = None  # the layers' bias law (initsuite.core.bias); None: no bias
    inputs: str = "gaussian"  # the input law (initsuite.core.inputs)
    pair_cosine: float | None = 0.5  # cosine of the input pair; None: no pair


def _normal_base(weight: Tensor, generator: torch.Generator) -> None:
    weight.normal_(0.0, 1.0, generator=generator)


def _uniform_base(weight: Tensor, generator: torch.Generator) -> None:
    weight.uniform_(-1.0, 1.0, generator=generator)


# The base draw B of a common-random-numbers stream (SharedDraw's "normal" and "uniform").
_BASE_FILLS: dict[str, Fill] = {"normal": _normal_base, "uniform": _uniform_base}


def base_fill(base: str) -> Fill:
    """The fill of a shared base draw B (``"normal"``: N(0, 1); ``"uniform"``: U(-1, 1))."""
    return _BASE_FILLS[base]


class LayerDraw:
    """Each layer's weight (or its Householder form) and bias, drawn by :class:`CellDraws`."""

    def __init__(self, stream: Stream, draws: CellDraws, dtype: torch.dtype) -> None:
        device, width = draws.device, stream.width
        self.stream, self.draws = stream, draws
        self.w = torch.empty((width, width), device=device, dtype=dtype)
        self.b = (torch.empty((width,), device=device, dtype=dtype)
                  if stream.bias is not None else None)  # fmt: skip
        self.member = stream.members[0]  # the drawing scheme of a stream without a base
        self.uses_data = "data" in self.member.scheme.info.uses

    def next(self, h: Tensor | None = None) -> None:
        """Draw the next layer. ``h`` (1, m, width): the layer's input, for data-dependent
        schemes (LSUV; their streams have one member), which see its bias-free product."""
        fill = _BASE_FILLS.get(self.stream.base) if self.stream.base is not None else None
        if fill is None:
            data = None
            if self.uses_data and h is not None:
                x = h.reshape(-1, self.stream.width)
                data = lambda weight: F.linear(x, weight)  # noqa: E731
            fill = lambda weight, gen: self.member.fill(weight, gen, data=data)  # noqa: E731
        self.draws.layer(self.w, self.b, fill)
        self.factors: dict[str, tuple[Tensor, Tensor, Tensor]] = {}

    def householder(self, transform: str) -> tuple[Tensor, Tensor, Tensor]:
        """(a, tau, signs) with this layer's Q = H(a, tau) · diag(signs), computed once per
        layer: ``"qr"`` from ``geqrf`` (orthogonal's Q; signs of R's diagonal), or
        ``"householder"`` from :func:`~initsuite.schemes.structured.haar_householder`."""
        if transform not in self.factors:
            if transform == "qr":
                a, tau = torch.geqrf(self.w)
                self.factors[transform] = (a, tau, torch.diagonal(a).sign())
            else:
                self.factors[transform] = haar_householder(self.w)
        return self.factors[transform]

    def project(self, x: Tensor, transform: str) -> Tensor:
        """x·Bᵀ + b for rows ``x`` (m, width): B the base draw, or the Haar Q that
        ``transform`` makes of it; b the layer's bias if any (fused into the GEMM, as in
        nn.Linear)."""
        if transform == "plain":
            return F.linear(x, self.w, self.b)
        a, tau, signs = self.householder(transform)
        # x·(Q·D)ᵀ = (x·D)·Qᵀ, D = diag(signs): the sign fold of orthogonal_ (Mezzadri 2007).
        out = torch.ormqr(a, tau, x * signs, left=False, transpose=True)
        return out if self.b is None else out.add_(self.b)

    def project_back(self, d: Tensor, transform: str) -> Tensor:
        """d·B for rows ``d`` (m, width): the transpose of :meth:`project`'s product (the
        gradient at its input from the gradient ``d`` at its output)."""
        if transform == "plain":
            return d @ self.w
        a, tau, signs = self.householder(transform)
        return torch.ormqr(a, tau, d, left=False, transpose=False) * signs  # (d·Q)·D


@dataclass
class Rows:
    """The stacked rows of the members still running, as contiguous blocks.

    Rebuilt only when a member drops out, so a layer issues no host-to-device copies:
    members are ordered by (transform, activation), so each transform and each activation
    is one slice of the stack.
    """

    ids: list[int]
    scale: Tensor | None  # (k, 1, 1), None when every scale is 1
    transforms: list[tuple[int, int, str]]
    activations: list[tuple[int, int, Activation]]
    shifts: list[tuple[int, float]]

    @classmethod
    def of(cls, members: Sequence[Member], ids: list[int], device: torch.device,
           dtype: torch.dtype) -> Rows:  # fmt: skip
        scales = [members[i].scale for i in ids]
        scale = None
        if any(c != 1.0 for c in scales):
            scale = torch.tensor(scales, device=device, dtype=dtype)[:, None, None]
        return cls(
            ids,
            scale,
            _runs([members[i].transform for i in ids]),
            _runs([members[i].activation for i in ids]),
            [(row, members[i].shift) for row, i in enumerate(ids) if members[i].shift],
        )


def _runs(values: list[Any]) -> list[tuple[int, int, Any]]:
    """(start, stop, value) for each run of equal consecutive values."""
    out: list[tuple[int, int, Any]] = []
    for row, v in enumerate(values):
        if out and out[-1][2] == v:
            out[-1] = (out[-1][0], row + 1, v)
        else:
            out.append((row, row + 1, v))
    return out


def layer_forward(draw: LayerDraw, h: Tensor, rows: Rows, activate: bool = True) -> Tensor:
    """One layer for the running members: h (k, m, width) → activations (or, without
    ``activate``, pre-activations), same shape."""
    xs = h if rows.scale is None else h * rows.scale
    pre = _by_transform(xs, rows, draw.project)
    for row, shift in rows.shifts:  # scaled before the sum: overflows only where x·Wᵀ would
        pre[row] += (h[row] * shift).sum(dim=1, keepdim=True)
    return apply_activations(pre, rows) if activate else pre


def layer_backward(draw: LayerDraw, delta: Tensor, rows: Rows) -> Tensor:
    """The transpose of :func:`layer_forward`'s product: dLoss/dh_{l-1} (k, m, width) from
    δ = dLoss/dz_l, pre-scaled the same way (x·(s·B)ᵀ's gradient is (s·δ)·B)."""
    ds = delta if rows.scale is None else delta * rows.scale
    out = _by_transform(ds, rows, draw.project_back)
    for row, shift in rows.shifts:  # W = s·B + shift: the shift's term is shift·Σ_i δ_i
        out[row] += (delta[row] * shift).sum(dim=1, keepdim=True)
    return out


def _by_transform(x: Tensor, rows: Rows, project: Callable[[Tensor, str], Tensor]) -> Tensor:
    """``project(block, transform)`` on each transform's block of rows of x (k, m, width),
    as one product per block."""
    k, m, width = x.shape
    if len(rows.transforms) == 1:
        return project(x.reshape(k * m, width), rows.transforms[0][2]).view(k, m, width)
    out = torch.empty_like(x)
    for start, stop, transform in rows.transforms:
        part = x[start:stop].reshape((stop - start) * m, width)
        out[start:stop] = project(part, transform).view(stop - start, m, width)
    return out


def apply_activations(pre: Tensor, rows: Rows) -> Tensor:
    if len(rows.activations) == 1:
        return rows.activations[0][2](pre)
    out = torch.empty_like(pre)
    for start, stop, act in rows.activations:
        out[start:stop] = act(pre[start:stop])
    return out

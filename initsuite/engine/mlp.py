"""The MLP engine: runs streams of cells and records per-layer statistics.

A *stream* is every cell that consumes the same random numbers (one seed, width, device and
dtype, and one base draw or one scheme with its resolved parameters); its *members* are its
(scheme, activation) cells. Each layer is drawn once (:mod:`initsuite.engine.draws`) and every
member is pushed through it as one stacked product; depths are prefixes of the deepest run;
a member stops at its divergence layer. The docs' engine page explains the sharing, its
rounding and the backward pass's checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from initsuite.activations import Activation
from initsuite.core.devices import DTYPES
from initsuite.engine.draws import CellDraws, Fill
from initsuite.schemes import LayerContext, Scheme
from initsuite.schemes.structured import haar_householder

__all__ = [
    "GradStats", "LayerStats", "Member", "Stream", "derive_cells", "layer_stats", "run_stream",
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
    """Cells that share every random draw; see the module docstring.

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
    bias: bool = False
    pair_cosine: float | None = 0.5  # cosine of the input pair; None: no pair
    arch: str = "mlp"  # canonical arch spec (initsuite.archs); this module runs "mlp"


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
    if y.dtype == torch.float64 or y.device.type != "cpu":
        # GPUs: the exact path throughout (choosing rows to redo would read back every layer)
        std, mean = _two_pass(y.to(torch.float64))
    else:
        n = y.shape[1]
        s1 = y.sum(dim=1, dtype=torch.float64)
        s2 = torch.linalg.vector_norm(y, dim=1, dtype=torch.float64).square()
        mean = s1 / n
        var = ((s2 - s1 * mean) / (n - 1)).clamp_min(0.0)
        std = var.sqrt()
        redo = (mean.abs() > 5 * std) & torch.isfinite(mean) & torch.isfinite(std)
        if bool(redo.any()):
            std2, mean2 = _two_pass(y[redo].to(torch.float64))
            std, mean = std.clone(), mean.clone()
            std[redo], mean[redo] = std2, mean2
    # an inf or nan anywhere in a row makes its mean or std non-finite (inf - inf = nan),
    # and finite values cannot overflow here: the flag needs no pass of its own
    finite = torch.isfinite(std) & torch.isfinite(mean)
    nan = torch.full_like(std, math.nan)
    return torch.where(finite, std, nan), torch.where(finite, mean, nan), finite


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


def _normal_base(weight: Tensor, generator: torch.Generator) -> None:
    weight.normal_(0.0, 1.0, generator=generator)


def _uniform_base(weight: Tensor, generator: torch.Generator) -> None:
    weight.uniform_(-1.0, 1.0, generator=generator)


# The base draw B of a common-random-numbers stream (SharedDraw's "normal" and "uniform").
_BASE_FILLS: dict[str, Fill] = {"normal": _normal_base, "uniform": _uniform_base}


class _Draw:
    """Each layer's weight (or its Householder form) and bias, drawn by :class:`CellDraws`."""

    def __init__(self, stream: Stream, draws: CellDraws, dtype: torch.dtype) -> None:
        device, width = draws.device, stream.width
        self.stream, self.draws = stream, draws
        self.w = torch.empty((width, width), device=device, dtype=dtype)
        self.b = torch.empty((width,), device=device, dtype=dtype) if stream.bias else None
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
class _Rows:
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
           dtype: torch.dtype) -> _Rows:  # fmt: skip
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


# The input pair has its own generator, so the weights stay those of the seed's stream.
PAIR_SEED_OFFSET = 0x5EED_C0DE


def input_pair(width: int, cosine: float, seed: int, device: torch.device,
               dtype: torch.dtype) -> Tensor:  # fmt: skip
    """Two inputs (2, width) of squared norm ``width`` (q = 1) whose cosine is exactly
    ``cosine``, drawn from a generator seeded with ``seed + PAIR_SEED_OFFSET``."""
    gen = torch.Generator(device=device).manual_seed(seed + PAIR_SEED_OFFSET)
    z = torch.randn((2, width), generator=gen, device=device, dtype=torch.float64)
    u = z[0] / z[0].norm()
    v = z[1] - (z[1] @ u) * u
    v = v / v.norm()
    c = float(cosine)
    pair = torch.stack([u, c * u + math.sqrt(max(1 - c * c, 0.0)) * v]) * math.sqrt(width)
    return pair.to(dtype)


def _cosine(p: Tensor) -> Tensor:
    """Cosine of the first two rows of each p[k] (k, m ≥ 2, width), in float64; NaN if not
    finite."""
    p = p[:, :2].to(torch.float64)
    scale = p.abs().amax(dim=(1, 2), keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
    z = p / scale  # overflow-safe norms, as in layer_stats
    dot = (z[:, 0] * z[:, 1]).sum(dim=1)
    return dot / (z[:, 0].norm(dim=1) * z[:, 1].norm(dim=1))


def run_stream(
    stream: Stream,
    explode_at: float | None = None,
    vanish_at: float | None = None,
    check_every: int | None = None,
    backward: Sequence[int] = (),
) -> list[LayerStats]:
    """Run the deepest cell of each member of ``stream``; one LayerStats per member.

    A member stops at its divergence layer; the stream stops drawing once every member has.

    Args:
        stream: the cells to run (see :class:`Stream`).
        explode_at, vanish_at: also stop a member whose std leaves this multiple of the
            input std (None: only overflow and underflow stop it).
        check_every: layers between reads of the statistics (default 1 on CPU, 8 elsewhere).
        backward: depths whose cells also get a backward pass (``LayerStats.grads``; see
            :func:`_backward`), for the members whose forward pass reached that depth in range.
    """
    device = torch.device(stream.device)
    dtype = DTYPES[stream.dtype]
    every = check_every or (1 if device.type == "cpu" else 8)
    draws = CellDraws(stream.seed, device)
    x = draws.input((stream.batch, stream.width), dtype)
    s0, _, _ = layer_stats(x.reshape(1, -1))
    results = [LayerStats(float(s0[0]), [], []) for _ in stream.members]
    draw = _Draw(stream, draws, dtype)
    top = min(max(backward, default=0), stream.depth)
    seg = max(1, math.isqrt(top - 1) + 1) if top else 0  # ⌈√top⌉: checkpoint spacing
    checkpoints = _forward(stream, draw, x, results, every, explode_at, vanish_at, top, seg)
    if top:
        _backward(stream, draw, checkpoints, seg, results, backward, every, explode_at,
                  vanish_at)  # fmt: skip
    return results


def _forward(
    stream: Stream,
    draw: _Draw,
    x: Tensor,
    results: list[LayerStats],
    every: int,
    explode_at: float | None,
    vanish_at: float | None,
    top: int,
    seg: int,
) -> dict[int, _Checkpoint]:
    """Push every member from the input ``x`` (batch, width) through the stream's layers,
    appending to ``results``; the checkpoints the backward pass needs (every ``seg`` layers
    up to ``top``)."""
    members, n = stream.members, len(stream.members)
    device, dtype = draw.draws.device, x.dtype
    tiny, input_std = torch.finfo(dtype).tiny, results[0].input_std
    rows = _Rows.of(members, list(range(n)), device, dtype)
    h = x.expand(n, stream.batch, stream.width)
    pair = None
    if stream.pair_cosine is not None:
        p0 = input_pair(stream.width, stream.pair_cosine, stream.seed, device, dtype)
        # Four rows (the pair twice): blocks of 4 rows came out bit for bit the same stacked
        # as alone on this CPU's GEMM (odd blocks did not), so a cell's cosine does not depend
        # on its company (tested).
        pair = p0.repeat(2, 1).expand(n, 4, stream.width)
    pending: list[tuple[int, list[int], Tensor, Tensor, Tensor, Tensor | None]] = []
    checkpoints: dict[int, _Checkpoint] = {}
    with torch.no_grad():
        for layer in range(1, stream.depth + 1):
            if seg and layer <= top and (layer - 1) % seg == 0:
                checkpoints[layer - 1] = _Checkpoint(draw.draws.generator.get_state(),
                                                     rows.ids, h)  # fmt: skip
            draw.next(h)
            h = _layer(draw, h, rows)
            cos_t = None
            if pair is not None:  # its own product: the batch rows' rounding is unchanged
                pre = _layer(draw, pair, rows, activate=False)
                cos_t = _cosine(pre)
                pair = _activate(pre, rows)
            std_t, mean_t, finite_t = layer_stats(h.reshape(len(rows.ids), -1))
            pending.append((layer, rows.ids, std_t, mean_t, finite_t, cos_t))
            if layer % every and layer != stream.depth:
                continue
            done = _record(pending, results, tiny, input_std, explode_at, vanish_at)
            pending = []
            if done:
                keep = [row for row, i in enumerate(rows.ids) if i not in done]
                if not keep:
                    break
                rows = _Rows.of(members, [rows.ids[r] for r in keep], device, dtype)
                h = h[keep]
                if pair is not None:
                    pair = pair[keep]
    return checkpoints


@dataclass(frozen=True)
class _Checkpoint:
    """The forward pass before layer ``l + 1``: the generator's state and the stacked
    activations h_l of the members then running (``ids``)."""

    state: Tensor
    ids: list[int]
    h: Tensor


# The loss's random read-out has its own generator, like the input pair.
GRAD_SEED_OFFSET = 0x0B4C_4B0D


def readout(batch: int, width: int, seed: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """R (batch, width) ~ N(0, 1) of the backward loss ``Σ R ⊙ h_L``, drawn from a generator
    seeded with ``seed + GRAD_SEED_OFFSET`` (the weights stay those of the seed's stream)."""
    gen = torch.Generator(device=device).manual_seed(seed + GRAD_SEED_OFFSET)
    return torch.randn((batch, width), generator=gen, device=device, dtype=dtype)


@dataclass
class _Walk:
    """The backward sweep's state between segments: the tracks (member, depth) yet to start,
    the active ones, stacked in ``g`` (dLoss/dh at the current layer), and the read-out R."""

    tracks: list[tuple[int, int]]
    active: list[tuple[int, int]]
    g: Tensor
    r: Tensor
    r_std: float


@dataclass(frozen=True)
class _Segment:
    """Layers ``first``..``last`` recomputed from their checkpoint for the members ``ids``:
    the generator state before each layer's draw, each layer's input h and pre-activation z
    (stacked over ``ids``)."""

    first: int
    last: int
    ids: list[int]
    states: list[Tensor]
    hs: list[Tensor]
    zs: list[Tensor]


def _backward(
    stream: Stream,
    draw: _Draw,
    checkpoints: dict[int, _Checkpoint],
    seg: int,
    results: list[LayerStats],
    depths: Sequence[int],
    every: int,
    explode_at: float | None,
    vanish_at: float | None,
) -> None:
    """Back-propagate ``Loss = Σ R ⊙ h_d`` from the output h_d of every cell of ``depths``
    (R a fixed N(0, 1) tensor, :func:`readout`), filling each member's ``grads[d]``.

    Every depth's gradient runs in one sweep from the deepest layer down, stacked like the
    forward pass: segments of ``seg`` layers, from the top, are recomputed from their
    checkpoints (:func:`_recompute`), then walked back (:func:`_walk_back`). Memory is one
    weight plus O(√depth) activations per member; the cost is two extra draws per layer.
    """
    # tracks (member, depth) whose forward pass reached the depth in range, by member
    tracks = sorted(
        (i, d)
        for d in set(depths)
        if d <= stream.depth
        for i, res in enumerate(results)
        if res.error is None
        and len(res.std) >= d
        and (res.divergence_layer is None or res.divergence_layer > d)
    )
    for i, d in tracks:
        results[i].grads[d] = GradStats([math.nan] * d, [math.nan] * d)
    r = readout(stream.batch, stream.width, stream.seed, draw.draws.device, draw.w.dtype)
    r_std = float(layer_stats(r.reshape(1, -1))[0][0])
    walk = _Walk(tracks, [], r.new_empty((0, stream.batch, stream.width)), r, r_std)
    top = max((d for _, d in tracks), default=0)
    with torch.no_grad():
        for a in reversed(range(1, top + 1, seg)):
            need = sorted({i for i, d in [*walk.tracks, *walk.active] if d >= a})
            if not need:
                continue
            segment = _recompute(stream, draw, checkpoints[a - 1], need, a, min(a + seg - 1, top))
            _walk_back(stream, draw, segment, walk, results, every, explode_at, vanish_at)


def _recompute(
    stream: Stream, draw: _Draw, ck: _Checkpoint, need: list[int], first: int, last: int
) -> _Segment:
    """Layers ``first``..``last`` of the members ``need``, recomputed from the checkpoint
    before ``first``, keeping what the walk back needs."""
    pos = {i: row for row, i in enumerate(ck.ids)}
    h = ck.h[[pos[i] for i in need]]
    rows = _Rows.of(stream.members, need, draw.draws.device, draw.w.dtype)
    gen = draw.draws.generator
    gen.set_state(ck.state)
    segment = _Segment(first, last, need, [], [], [])
    for _ in range(first, last + 1):
        segment.states.append(gen.get_state())
        draw.next(h)
        z = _layer(draw, h, rows, activate=False)
        segment.hs.append(h)
        segment.zs.append(z)
        h = _activate(z, rows)
    return segment


def _walk_back(
    stream: Stream,
    draw: _Draw,
    segment: _Segment,
    walk: _Walk,
    results: list[LayerStats],
    every: int,
    explode_at: float | None,
    vanish_at: float | None,
) -> None:
    """Walk ``segment`` back from its top layer, starting the tracks whose depth it holds
    (dLoss/dh = R there) and recording each layer's gradient statistics; each layer's
    weight is drawn again from its saved generator state (the top one is the last drawn)."""
    device, dtype = draw.draws.device, draw.w.dtype
    tiny = torch.finfo(dtype).tiny
    a, e = segment.first, segment.last
    npos = {i: row for row, i in enumerate(segment.ids)}
    rows: _Rows | None = None
    pending: list[tuple[int, list[tuple[int, int]], Tensor, Tensor, Tensor]] = []
    for layer in range(e, a - 1, -1):
        starting = [t for t in walk.tracks if t[1] == layer]
        if starting:  # these cells' outputs: dLoss/dh = R
            walk.tracks = [t for t in walk.tracks if t[1] != layer]
            merged = walk.active + starting
            order = sorted(range(len(merged)), key=lambda k: merged[k])
            walk.g = torch.cat([walk.g, walk.r.expand(len(starting), -1, -1)])[order]
            walk.active = [merged[k] for k in order]
        if not walk.active:
            continue
        if starting or rows is None or len(rows.ids) != len(walk.active):
            rows = _Rows.of(stream.members, [i for i, _ in walk.active], device, dtype)
        idx = [npos[i] for i, _ in walk.active]
        std_t, _, finite_t = layer_stats(walk.g.reshape(len(walk.active), -1))
        with torch.enable_grad():  # δ = dLoss/dz = g ⊙ φ'(z), one VJP per block
            z = segment.zs[layer - a][idx].requires_grad_(True)
            (delta,) = torch.autograd.grad(_activate(z, rows), z, walk.g)
        norm_t = _frobenius_of_product(delta, segment.hs[layer - a][idx])
        pending.append((layer, list(walk.active), std_t, finite_t, norm_t))
        if layer != e:  # the segment's top weight is the one drawn last
            draw.draws.generator.set_state(segment.states[layer - a])
            draw.next(segment.hs[layer - a])
        walk.g = _layer_back(draw, delta, rows)
        if layer == 1:
            std_t, _, finite_t = layer_stats(walk.g.reshape(len(walk.active), -1))
            pending.append((0, list(walk.active), std_t, finite_t, norm_t))
        if every == 1 or layer == a:
            done = _record_grads(pending, results, tiny, walk.r_std, explode_at, vanish_at)
            pending = []
            if done:
                keep = [k for k, t in enumerate(walk.active) if t not in done]
                walk.active = [walk.active[k] for k in keep]
                walk.g = walk.g[keep]


def _frobenius_of_product(delta: Tensor, h: Tensor) -> Tensor:
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


def _record_grads(
    pending: list[tuple[int, list[tuple[int, int]], Tensor, Tensor, Tensor]],
    results: list[LayerStats],
    tiny: float,
    r_std: float,
    explode_at: float | None,
    vanish_at: float | None,
) -> set[tuple[int, int]]:
    """Store a window of layers' backward statistics (layer 0: the input's gradient,
    dLoss/dx); the tracks whose gradient left the range in it (classified like the forward
    pass, relative to the read-out's std)."""
    done: set[tuple[int, int]] = set()
    for layer, tracks, std_t, finite_t, norm_t in pending:
        stds, finites, norms = std_t.tolist(), finite_t.tolist(), norm_t.tolist()
        for row, (i, d) in enumerate(tracks):
            if (i, d) in done:
                continue
            gs = results[i].grads[d]
            if layer == 0:
                gs.input_grad_std = stds[row]
            else:
                gs.grad_std[layer - 1] = stds[row]
                gs.weight_grad_norm[layer - 1] = norms[row]
            kind = classify(stds[row], finites[row], tiny, r_std, explode_at, vanish_at)
            if kind is not None:
                gs.divergence_layer, gs.divergence_kind = layer, kind
                done.add((i, d))
    return done


def _layer(draw: _Draw, h: Tensor, rows: _Rows, activate: bool = True) -> Tensor:
    """One layer for the running members: h (k, m, width) → activations (or, without
    ``activate``, pre-activations), same shape."""
    k, m, width = h.shape
    xs = h if rows.scale is None else h * rows.scale
    if len(rows.transforms) == 1:
        pre = draw.project(xs.reshape(k * m, width), rows.transforms[0][2])
        pre = pre.view(k, m, width)
    else:
        pre = torch.empty_like(xs)
        for start, stop, transform in rows.transforms:
            part = xs[start:stop].reshape((stop - start) * m, width)
            pre[start:stop] = draw.project(part, transform).view(stop - start, m, width)
    for row, shift in rows.shifts:  # scaled before the sum: overflows only where x·Wᵀ would
        pre[row] += (h[row] * shift).sum(dim=1, keepdim=True)
    return _activate(pre, rows) if activate else pre


def _layer_back(draw: _Draw, delta: Tensor, rows: _Rows) -> Tensor:
    """The transpose of :func:`_layer`'s product: dLoss/dh_{l-1} (k, m, width) from
    δ = dLoss/dz_l, pre-scaled the same way (x·(s·B)ᵀ's gradient is (s·δ)·B)."""
    k, m, width = delta.shape
    ds = delta if rows.scale is None else delta * rows.scale
    if len(rows.transforms) == 1:
        out = draw.project_back(ds.reshape(k * m, width), rows.transforms[0][2])
        out = out.view(k, m, width)
    else:
        out = torch.empty_like(ds)
        for start, stop, transform in rows.transforms:
            part = ds[start:stop].reshape((stop - start) * m, width)
            out[start:stop] = draw.project_back(part, transform).view(stop - start, m, width)
    for row, shift in rows.shifts:  # W = s·B + shift: the shift's term is shift·Σ_i δ_i
        out[row] += (delta[row] * shift).sum(dim=1, keepdim=True)
    return out


def _activate(pre: Tensor, rows: _Rows) -> Tensor:
    if len(rows.activations) == 1:
        return rows.activations[0][2](pre)
    out = torch.empty_like(pre)
    for start, stop, act in rows.activations:
        out[start:stop] = act(pre[start:stop])
    return out


def _record(
    pending: list[tuple[int, list[int], Tensor, Tensor, Tensor, Tensor | None]],
    results: list[LayerStats],
    tiny: float,
    input_std: float,
    explode_at: float | None,
    vanish_at: float | None,
) -> set[int]:
    """Append a window of layers' statistics; the members that diverged in it."""
    done: set[int] = set()
    for layer, alive, std_t, mean_t, finite_t, cos_t in pending:
        stds, means, finites = std_t.tolist(), mean_t.tolist(), finite_t.tolist()
        coss = cos_t.tolist() if cos_t is not None else [math.nan] * len(alive)
        for row, i in enumerate(alive):
            if i in done:
                continue
            res = results[i]
            res.std.append(stds[row])
            res.mean.append(means[row])
            res.cosine.append(coss[row])
            kind = classify(stds[row], finites[row], tiny, input_std, explode_at, vanish_at)
            if kind is not None:
                res.divergence_layer, res.divergence_kind = layer, kind
                done.add(i)
    return done


def derive_cells(stats: LayerStats, depths: Sequence[int]) -> Iterator[dict[str, Any]]:
    """Cell statistics for each depth, read off the deepest run (a depth-d cell is its prefix).

    ``growth_per_layer`` is (std_k / input_std)^(1/k) at the last layer k ≤ depth whose std is
    finite: the geometric mean of the per-layer std ratios.
    """
    for depth in depths:
        computed = stats.std[:depth]
        div = stats.divergence_layer
        diverged = div is not None and div <= depth
        final = computed[-1] if computed else math.nan
        growth = math.nan
        for k in range(len(computed), 0, -1):
            s = computed[k - 1]
            if math.isfinite(s):
                growth = (s / stats.input_std) ** (1.0 / k) if stats.input_std > 0 else math.nan
                break
        yield {
            "depth": depth,
            "input_std": stats.input_std,
            "divergence_layer": div if diverged else None,
            "divergence_kind": stats.divergence_kind if diverged else None,
            "final_std": final if stats.error is None else math.nan,
            "growth_per_layer": growth if stats.error is None else math.nan,
            "error": stats.error,
        }

"""What a scheme is, as data: :class:`SchemeInfo` (declared beside the scheme's function),
the :class:`LayerContext` a weight sits in, and the :class:`SharedDraw` a sweep shares.

    >>> from initsuite.schemes import SchemeInfo
    >>> law = SchemeInfo(family="normal", variance_formula="1 / fan_in", paper="-",
    ...                  variance=lambda shape: 1 / shape[1])
    >>> def my_normal(tensor, *, generator=None):
    ...     return tensor.normal_(0, tensor.shape[1] ** -0.5, generator=generator)
    >>> law.bind(my_normal).example  # what register(law)(my_normal) files
    'my_normal'
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from torch import Tensor

from initsuite.core.errors import unknown
from initsuite.core.spec import Param, params_of

__all__ = [
    "ROLES", "SHARED_BASES", "TAPS", "TORCH_LINEAR_NAMES", "LayerContext", "SchemeInfo",
    "SharedDraw", "from_keywords",
]  # fmt: skip


# Names torch.nn.init.calculate_gain knows besides the activations registered here.
TORCH_LINEAR_NAMES = (
    "linear", "conv1d", "conv2d", "conv3d",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
)  # fmt: skip

VarianceFn = Callable[..., "float | None"]


class SharedDraw(NamedTuple):
    """A scheme's draw written as ``shift + scale · B`` for a base draw ``B`` of the shape.

    Bases (each from the same generator state the scheme would use):
    ``"normal"``: ``B.normal_(0, 1)``; ``"uniform"``: ``B.uniform_(-1, 1)``;
    ``"orthogonal"``: the Haar Q that ``orthogonal`` forms from a ``"normal"`` draw by QR;
    ``"householder"``: the Haar Q of ``orthogonal_householder`` from that draw (both consume
    the normal stream). Schemes with the same base and the same generator state
    draw the same B, which lets a sweep draw once and serve them all (common random numbers).
    """

    base: str
    scale: float
    shift: float = 0.0


@dataclass(frozen=True)
class LayerContext:
    """Where a weight sits in its network, for schemes that depend on it (residual schemes).

    ``role``: ``"layer"`` (a plain layer), or in a residual net ``"branch"`` (a layer of a
    residual branch other than its last), ``"branch_out"`` (the branch's last layer, the
    residual projection) and ``"residual_scale"`` (the branch multiplier α, a scalar).
    Indices are 1-based; ``blocks`` is the number of residual blocks L and ``branch_depth``
    the layers per branch m (both 0 outside residual nets). ``residual_projections`` is N,
    the number of residual projections in the whole network (GPT-2's count: one per
    ``resmlp`` block, two per transformer block); 0 where unknown or outside residual nets.
    """

    index: int  # position of the weight in draw order
    depth: int  # weights (or blocks, in a residual net) in the network
    fan_in: int
    fan_out: int
    role: str = "layer"
    block: int = 0
    blocks: int = 0
    branch_depth: int = 0
    position: int = 0  # 1-based position inside the branch
    residual_projections: int = 0  # N: residual projections in the network (0: unknown)

    @classmethod
    def resmlp(
        cls, block: int, blocks: int, branch_depth: int, position: int, width: int
    ) -> LayerContext:
        """The context of a weight of a ``resmlp`` net (:mod:`initsuite.engine.archs`) of
        ``blocks`` blocks, each branch ``branch_depth`` = m layers of ``width`` units:
        ``position`` j = 1..m is the branch's j-th layer (the m-th is the residual
        projection, ``branch_out``), 0 the multiplier α (``residual_scale``, a scalar). One
        residual projection per block: N = L."""
        if position == 0:
            return cls(block, blocks, 1, 1, "residual_scale", block, blocks, branch_depth, 0,
                       blocks)  # fmt: skip
        role = "branch_out" if position == branch_depth else "branch"
        return cls((block - 1) * branch_depth + position, blocks * branch_depth, width, width,
                   role, block, blocks, branch_depth, position, blocks)  # fmt: skip


ROLES = ("layer", "branch", "branch_out", "residual_scale")
TAPS = ("all", "centre")
"""Where a scheme puts a conv kernel's variance: ``"all"`` (every tap drawn alike) or
``"centre"`` (the whole kernel at its centre tap, zeros elsewhere: delta-orthogonal)."""


SharedFn = Callable[..., "SharedDraw | None"]
CheckFn = Callable[..., None]
RoleVarianceFn = Callable[..., "float | None"]
SHARED_BASES = ("normal", "uniform", "orthogonal", "householder")


_WORD = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_NAME = rf"{_WORD}(:{_WORD})?"  # torch's vocabulary, or "framework:name"
_CALL_TIME = ("generator", "context", "data")  # keywords a call passes, not a spec


def _unbound(tensor: Tensor, **_: Any) -> Tensor:
    """A declaration's placeholder until ``register`` binds the scheme's function."""
    raise TypeError("this SchemeInfo is a declaration: register(info) binds its function")


@dataclass(frozen=True, kw_only=True)
class SchemeInfo:
    """What a scheme is, declared beside its function: ``@register(SchemeInfo(...))``.

    A declaration leaves ``name`` and ``fn`` out; :func:`~initsuite.schemes.register` binds
    them (``name`` defaults to the function's), and :func:`~initsuite.schemes.info` returns
    the bound record. ``params`` (the keyword parameters a spec may set, with their hints and
    defaults) and ``uses`` (the call-time inputs it takes: ``"context"``, ``"data"``) are read
    from the function's signature.

    ``variance(shape, **params)`` gives Var(W) for a tensor of that shape (None for
    deterministic schemes), and :meth:`layer_variance` the variance of a weight at a
    :class:`LayerContext` (``role_variance``, where the scheme has one);
    ``min_rank``/``max_rank`` bound the tensor ranks it accepts (``max_rank=None``: any rank
    from ``min_rank`` up). ``taps`` (:data:`TAPS`) says where it puts a conv kernel's
    variance; ``residual_scale`` is the value it gives a residual branch's multiplier α
    (None: α stays the architecture's).

    Args:
        family: distribution family, e.g. ``"normal"``, ``"uniform"``, ``"orthogonal"``.
        variance_formula: Var(W) as a formula, for the scheme table.
        variance: ``(shape, **params) -> Var(W)``, None for deterministic schemes.
        paper: the reference (authors, year, title).
        name: registry name (default: the function's name).
        min_rank, max_rank: tensor ranks accepted (``max_rank=None``: no upper bound).
        torch_fn: the ``torch.nn.init`` function it matches value for value, if any.
        example: spec to run when every scheme is swept (default: the name).
        shared: ``(shape, **params) -> SharedDraw | None``: the draw as a scaling of a base
            draw (see :class:`SharedDraw`), None where it is not one. Optional: it only lets
            sweeps share draws; it must agree with ``fn`` up to rounding (tested for built-ins).
        mean: ``(shape, **params) -> E[W]`` for schemes whose entries are not centred
            (default None: mean 0). Mean-field theory applies only to centred schemes.
        archs: the architectures whose ``all`` expansion includes the scheme (default: every
            one); e.g. residual-branch schemes list only ``("resmlp",)``.
        check: ``(shape, **params) -> None``, raising ``ValueError`` with a short message
            (``"std must be >= 0, got -1.0"``) for parameters the scheme cannot take; it gets
            every parameter (defaults filled in, ``auto`` resolved, floats finite) and the
            tensor's shape, or None where no tensor is known yet.
            :meth:`~initsuite.schemes.Scheme.resolve` runs it before any draw.
        role_variance: ``(shape, context, **params) -> Var(W)`` of a weight at a
            :class:`LayerContext`, for schemes whose draw depends on where the weight sits
            (Fixup, GPT-2); default: ``variance`` whatever the role. The mean-field theory
            of residual nets reads each branch weight's variance from it.
        taps: where a conv kernel's variance sits (:data:`TAPS`): ``"all"`` (default, every
            tap drawn alike) or ``"centre"`` (delta-orthogonal kernels).
        residual_scale: the value the scheme gives a residual branch's multiplier α (SkipInit
            and ReZero: 0); default None: α stays the architecture's.
        framework: the framework whose initializer this is (``"jax"``, ``"keras"``, ...); its
            name is then qualified, ``"keras:he_normal"``. Default None: torch's vocabulary.
        checked: the framework version the law was checked against (``"jax 0.10.2"``), or
            ``"not checked live"``.
        source: a link to the framework's source of the initializer.
    """

    family: str
    variance_formula: str
    variance: VarianceFn
    paper: str
    name: str = ""  # "": the function's name, bound by register
    fn: Callable[..., Tensor] = field(default=_unbound, repr=False)
    min_rank: int = 1
    max_rank: int | None = None
    torch_fn: str | None = None
    example: str = ""  # "": the name
    shared: SharedFn | None = None
    mean: Callable[..., float] | None = None  # E[W]; None: 0
    archs: tuple[str, ...] | None = None  # where ``all`` includes it (None: every arch)
    check: CheckFn | None = None  # raises ValueError for parameters (and shapes) it cannot take
    role_variance: RoleVarianceFn | None = None  # (shape, context, **params); None: variance
    taps: str = "all"  # conv kernels: "all" taps alike, or "centre" only (TAPS)
    residual_scale: float | None = None  # α it sets (SkipInit, ReZero: 0); None: the arch's
    framework: str | None = None  # whose vocabulary: "jax", "keras", ...; None: torch's
    checked: str | None = None  # the version its law was checked against, or "not checked live"
    source: str | None = None  # a link to the framework's source of the initializer
    params: dict[str, Param] = field(init=False, repr=False)  # from fn's signature
    uses: frozenset[str] = field(init=False, repr=False)  # call-time inputs: "context", "data"

    def __post_init__(self) -> None:
        # A bad declaration fails where it is written, not at the first lookup.
        owner = f"scheme {self.name!r}" if self.name else "a scheme"
        if self.taps not in TAPS:
            raise ValueError(f"{owner}: " + unknown("taps", self.taps, TAPS))
        if self.name:
            if not re.fullmatch(_NAME, self.name):
                raise ValueError(f"scheme name {self.name!r} must be an identifier-like word")
            if (self.name.partition(":")[0] if ":" in self.name else None) != self.framework:
                raise ValueError(
                    f"scheme {self.name!r}: a framework's scheme is named 'framework:name' "
                    f"(framework={self.framework!r})"
                )
        keywords = set(inspect.signature(self.fn).parameters)
        object.__setattr__(self, "example", self.example or self.name)
        object.__setattr__(self, "params", params_of(self.fn, skip=_CALL_TIME))
        object.__setattr__(self, "uses", frozenset(k for k in _CALL_TIME[1:] if k in keywords))

    def bind(self, fn: Callable[..., Tensor]) -> SchemeInfo:
        """This declaration for ``fn``: named (the function's name, unless it has one)."""
        return replace(self, name=self.name or fn.__name__, fn=fn)

    def layer_variance(
        self, shape: tuple[int, ...], context: LayerContext | None, **params: Any
    ) -> float | None:
        """Var(W) of a weight of ``shape`` at ``context`` (resolved ``params``): the scheme's
        ``role_variance`` where it has one and a context is given, else its ``variance``."""
        if self.role_variance is None or context is None:
            return self.variance(shape, **params)
        return self.role_variance(shape, context, **params)

    @property
    def summary(self) -> str:
        doc = (self.fn.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    @property
    def ranks(self) -> str:
        if self.max_rank is None:
            return f">={self.min_rank}" if self.min_rank > 1 else "any"
        if self.max_rank == self.min_rank:
            return str(self.min_rank)
        return f"{self.min_rank}-{self.max_rank}"

    def accepts_rank(self, rank: int) -> bool:
        return rank >= self.min_rank and (self.max_rank is None or rank <= self.max_rank)


# The keywords ``register`` took before SchemeInfo, by the field each now names.
_RENAMED = {"variance": "variance_formula", "variance_fn": "variance", "mean_fn": "mean",
            "role_variance_fn": "role_variance"}  # fmt: skip


def from_keywords(name: str | None, keywords: dict[str, Any]) -> SchemeInfo:
    """The :class:`SchemeInfo` of ``register``'s older keyword form (``variance=`` for the
    formula, ``variance_fn=``, ``mean_fn=``, ``role_variance_fn=``; the others as the fields)."""
    fields_ = {f.name for f in dataclasses.fields(SchemeInfo) if f.init} - {"fn"}
    old = {k for k, v in _RENAMED.items() if v in fields_} | (fields_ - set(_RENAMED.values()))
    for key in keywords:
        if key not in old:
            raise TypeError(
                f"register() got an unexpected keyword argument {key!r} "
                f"(keywords: {', '.join(sorted(old))})"
            )
    given = {_RENAMED.get(k, k): v for k, v in keywords.items()}
    if given.get("example") is None:
        given.pop("example", None)
    given["name"] = name or given.get("name") or ""
    return SchemeInfo(**given)

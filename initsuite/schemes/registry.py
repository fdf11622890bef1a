"""The scheme registry: a decorator, a lookup, and bound schemes with their parameters.

    >>> from initsuite import schemes
    >>> schemes.list("kaiming*")
    ['kaiming_normal', 'kaiming_uniform']
    >>> w = torch.empty(256, 128)
    >>> gen = torch.Generator().manual_seed(0)
    >>> w = schemes.get("kaiming_uniform:a=0.5,mode=fan_out")(w, generator=gen)
    >>> round(w.var().item() * 256, 1)  # Var(W) · fan_out = gain² = 2 / (1 + a²)
    1.6

Third-party packages add schemes through the entry-point group ``initsuite.schemes``: each
entry point names a module or a function; loading it must register the scheme(s) with
:func:`register`. Entry points are loaded once, on the first lookup.
"""

from __future__ import annotations

import builtins
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, NamedTuple

import torch
from torch import Tensor

from initsuite import activations as _activations
from initsuite.core.catalog import ENTRY_POINT_GROUP
from initsuite.core.errors import InitsuiteError, InitsuiteTypeError, unknown
from initsuite.core.patterns import check_pattern, matches
from initsuite.core.spec import AUTO, Param, check_keys, format_spec, params_of, parse_spec

__all__ = [
    "ENTRY_POINT_GROUP", "ROLES", "SHARED_BASES", "TAPS", "LayerContext", "Scheme", "SchemeInfo",
    "SharedDraw", "framework_names", "get", "info", "list", "matches", "names", "register",
    "unregister",
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


@dataclass(frozen=True)
class SchemeInfo:
    """A registered scheme and its metadata.

    ``variance(shape, **params)`` gives Var(W) for a tensor of that shape (None for
    deterministic schemes), and :meth:`layer_variance` the variance of a weight at a
    :class:`LayerContext` (``role_variance``, where the scheme has one);
    ``min_rank``/``max_rank`` bound the tensor ranks it accepts (``max_rank=None``: any rank
    from ``min_rank`` up). ``taps`` (:data:`TAPS`) says where it puts a conv kernel's
    variance; ``residual_scale`` is the value it gives a residual branch's multiplier α
    (None: α stays the architecture's).
    """

    name: str
    fn: Callable[..., Tensor]
    family: str
    variance_formula: str
    variance: VarianceFn
    paper: str
    min_rank: int = 1
    max_rank: int | None = None
    torch_fn: str | None = None
    example: str = ""
    params: dict[str, Param] = field(default_factory=dict)
    shared: SharedFn | None = None
    mean: Callable[..., float] | None = None  # E[W]; None: 0
    uses: frozenset[str] = frozenset()  # call-time inputs it takes: "context", "data"
    archs: tuple[str, ...] | None = None  # where ``all`` includes it (None: every arch)
    check: CheckFn | None = None  # raises ValueError for parameters (and shapes) it cannot take
    role_variance: RoleVarianceFn | None = None  # (shape, context, **params); None: variance
    taps: str = "all"  # conv kernels: "all" taps alike, or "centre" only (TAPS)
    residual_scale: float | None = None  # α it sets (SkipInit, ReZero: 0); None: the arch's
    framework: str | None = None  # whose vocabulary: "jax", "keras", ...; None: torch's
    checked: str | None = None  # the version its law was checked against, or "not checked live"
    source: str | None = None  # a link to the framework's source of the initializer

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


_REGISTRY: dict[str, SchemeInfo] = {}
_WORD = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_NAME = rf"{_WORD}(:{_WORD})?"  # torch's vocabulary, or "framework:name"
_entry_points_loaded = False
_loaded_plugins: set[str] = set()


# Over 60 lines: most are the Args of a public decorator with one argument per field.
def register(
    name: str | None = None,
    *,
    family: str,
    variance: str,
    variance_fn: VarianceFn,
    paper: str,
    min_rank: int = 1,
    max_rank: int | None = None,
    torch_fn: str | None = None,
    example: str | None = None,
    shared: SharedFn | None = None,
    mean_fn: Callable[..., float] | None = None,
    archs: tuple[str, ...] | None = None,
    check: CheckFn | None = None,
    role_variance_fn: RoleVarianceFn | None = None,
    taps: str = "all",
    residual_scale: float | None = None,
    framework: str | None = None,
    checked: str | None = None,
    source: str | None = None,
) -> Callable[[Callable[..., Tensor]], Callable[..., Tensor]]:
    """Decorator: register ``fn(tensor, <params>, *, generator=None) -> tensor``.

    The function fills ``tensor`` in place and returns it; its keyword parameters (with type
    hints and defaults) become the parameters a spec may set. Registering a name twice raises.

    Args:
        name: registry name (default: the function's name).
        family: distribution family, e.g. ``"normal"``, ``"uniform"``, ``"orthogonal"``.
        variance: Var(W) as a formula, for the scheme table.
        variance_fn: ``(shape, **params) -> Var(W)``, None for deterministic schemes.
        paper: the reference (authors, year, title).
        min_rank, max_rank: tensor ranks accepted (``max_rank=None``: no upper bound).
        torch_fn: the ``torch.nn.init`` function it matches value for value, if any.
        example: spec to run when every scheme is swept (default: the name).
        shared: ``(shape, **params) -> SharedDraw | None``: the draw as a scaling of a base
            draw (see :class:`SharedDraw`), None where it is not one. Optional: it only lets
            sweeps share draws; it must agree with ``fn`` up to rounding (tested for built-ins).
        mean_fn: ``(shape, **params) -> E[W]`` for schemes whose entries are not centred
            (default: mean 0). Mean-field theory applies only to centred schemes.
        archs: the architectures whose ``all`` expansion includes the scheme (default: every
            one); e.g. residual-branch schemes list only ``("resmlp",)``.
        check: ``(shape, **params) -> None``, raising ``ValueError`` with a short message
            (``"std must be >= 0, got -1.0"``) for parameters the scheme cannot take; it gets
            every parameter (defaults filled in, ``auto`` resolved, floats finite) and the
            tensor's shape, or None where no tensor is known yet. :meth:`Scheme.resolve` runs
            it before any draw.
        role_variance_fn: ``(shape, context, **params) -> Var(W)`` of a weight at a
            :class:`LayerContext`, for schemes whose draw depends on where the weight sits
            (Fixup, GPT-2); default: ``variance_fn`` whatever the role. The mean-field theory
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

    The function may also take keyword-only ``context`` (a :class:`LayerContext`) and
    ``data`` (``weight -> the layer's output on a batch``); :meth:`Scheme.fill` passes them.
    """

    def deco(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        key = name or fn.__name__
        if taps not in TAPS:
            raise ValueError(f"scheme {key!r}: " + unknown("taps", taps, TAPS))
        if not re.fullmatch(_NAME, key):
            raise ValueError(f"scheme name {key!r} must be an identifier-like word")
        if (key.partition(":")[0] if ":" in key else None) != framework:
            raise ValueError(
                f"scheme {key!r}: a framework's scheme is named 'framework:name' "
                f"(framework={framework!r})"
            )
        if key in _REGISTRY:
            raise ValueError(f"scheme {key!r} is already registered")
        _REGISTRY[key] = SchemeInfo(
            name=key,
            fn=fn,
            family=family,
            variance_formula=variance,
            variance=variance_fn,
            paper=paper,
            min_rank=min_rank,
            max_rank=max_rank,
            torch_fn=torch_fn,
            example=example or key,
            params=params_of(fn, skip=("generator", "context", "data")),
            shared=shared,
            mean=mean_fn,
            uses=frozenset(k for k in ("context", "data") if k in _keywords(fn)),
            archs=archs,
            check=check,
            role_variance=role_variance_fn,
            taps=taps,
            residual_scale=residual_scale,
            framework=framework,
            checked=checked,
            source=source,
        )
        return fn

    return deco


def unregister(name: str) -> None:
    """Remove scheme ``name`` from the registry (a plugin's rollback, a test's cleanup).

    Raises:
        InitsuiteError: no scheme of that name is registered.
    """
    if name not in _REGISTRY:
        choices = sorted(_REGISTRY)
        raise InitsuiteError(unknown("scheme", name, choices, listing="initsuite schemes"))
    del _REGISTRY[name]


def _keywords(fn: Callable[..., Any]) -> set[str]:
    import inspect

    return set(inspect.signature(fn).parameters)


def _load_entry_points() -> None:
    # The flag is set only once every plugin has loaded: a broken plugin keeps raising (with
    # its name) on every lookup instead of failing once and then vanishing silently.
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.value in _loaded_plugins:
            continue
        _load_plugin(ep)
        _loaded_plugins.add(ep.value)
    _entry_points_loaded = True


def _load_plugin(ep: metadata.EntryPoint) -> None:
    """Load one entry point. If it raises (or calls ``sys.exit``), the schemes it registered
    before failing are removed again, so the next lookup names the same error instead of
    "already registered" (a retried import registers them anew)."""
    before = set(_REGISTRY)
    try:
        ep.load()
    except BaseException as exc:
        for name in set(_REGISTRY) - before:
            unregister(name)
        if isinstance(exc, SystemExit):
            why = "called sys.exit()" if exc.code is None else f"called sys.exit({exc.code!r})"
        elif isinstance(exc, Exception):  # a broken plugin must be named, not skipped
            why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        else:
            raise  # KeyboardInterrupt: rolled back, still an interrupt
        raise InitsuiteError(f"could not load scheme plugin {ep.name!r} ({ep.value}): {why}"
                             ) from None  # fmt: skip


def names() -> builtins.list[str]:
    """Registered scheme names, sorted."""
    _load_entry_points()
    return sorted(_REGISTRY)


def list(pattern: str | None = None) -> builtins.list[str]:
    """Registered names matching a shell-style wildcard (``"kaiming*"``), sorted; ``[]``
    when a valid pattern matches nothing; every name when ``pattern`` is None.

    ``:`` separates a framework from its scheme, and wildcards do not cross it (as ``/`` in
    a path): ``"*_normal"`` and ``"*"`` match torch's vocabulary only, ``"keras:*"`` Keras'
    schemes, ``"*:he_normal"`` every framework's ``he_normal``, ``"*:*"`` every framework's.

    Raises:
        InitsuiteError: an empty pattern, or a ``[`` set left open (fnmatch would read it as
            a literal ``[`` and match nothing, silently).
    """
    if pattern is None:
        return names()
    check_pattern(pattern)
    return [n for n in names() if matches(n, pattern)]


def framework_names() -> builtins.list[str]:
    """The frameworks whose schemes are registered (``"flax"``, ``"jax"``, ``"keras"``...)."""
    return sorted({n.partition(":")[0] for n in names() if ":" in n})


def info(name: str) -> SchemeInfo:
    """The metadata of scheme ``name``."""
    _load_entry_points()
    if name not in _REGISTRY:
        raise InitsuiteError(_unknown_scheme(name)) from None
    return _REGISTRY[name]


def _unknown_scheme(name: str) -> str:
    """One line for an unknown name; a framework's names suggest from that framework's."""
    prefix, sep, _ = name.partition(":")
    if sep and prefix in framework_names():
        own = [n for n in names() if n.startswith(prefix + ":")]
        msg = unknown(f"{prefix} scheme", name, own, listing=f"initsuite schemes '{prefix}:*'")
        twin = _twin(name, own)  # torch's word for it, "keras:kaiming_normal": keras:he_normal
        if twin is not None:
            msg = (f"unknown {prefix} scheme {name!r}; did you mean {twin!r}? ({prefix}'s name "
                   f"for it; initsuite schemes '{prefix}:*' lists all)")  # fmt: skip
        return msg
    if sep:
        return f"{name!r}: " + unknown("framework", prefix, framework_names())
    return unknown("scheme", name, names(), listing="initsuite schemes")


class Scheme:
    """A registered scheme with the parameters of its spec bound.

    ``scheme(tensor, *, activation=None, generator=None, **params)`` fills ``tensor`` in place
    and returns it. Call-time ``params`` override the spec's; ``gain=auto`` and
    ``nonlinearity=auto`` take the gain of ``activation``, the activation that follows the layer.
    """

    def __init__(self, info: SchemeInfo, params: Mapping[str, Any] | None = None) -> None:
        self.info = info
        self.params: dict[str, Any] = self._convert(params or {})

    # -- identity ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.info.name

    @property
    def spec(self) -> str:
        """The canonical spec string, e.g. ``"kaiming_uniform:a=0.5,mode=fan_out"``."""
        return format_spec(self.name, self.params)

    def __repr__(self) -> str:
        return f"Scheme({self.spec!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scheme) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(self.spec)

    # -- parameters -------------------------------------------------------------------------
    def _convert(self, given: Mapping[str, Any]) -> dict[str, Any]:
        owner = f"scheme {self.name!r}"
        check_keys(owner, given, self.info.params)
        out: dict[str, Any] = {}
        for key, value in given.items():
            param = self.info.params[key]
            if isinstance(value, str) and value.lower() == AUTO and key in ("gain", "nonlinearity"):
                out[key] = AUTO
                continue
            value = param.convert(value, owner)
            if key == "nonlinearity":
                _check_nonlinearity(value, owner)
            out[key] = value
        return out

    def with_params(self, **params: Any) -> Scheme:
        """A copy with ``params`` added to (or overriding) the spec's."""
        return Scheme(self.info, {**self.params, **params})

    def resolve(
        self, activation: str | _activations.Activation | None = None, **params: Any
    ) -> dict[str, Any]:
        """The concrete parameters for one call: spec, overrides, ``auto`` replaced by gains.

        Two calls with equal resolved parameters draw identical tensors from identical
        generator states, which lets a sweep share draws across activations. Raises
        :class:`InitsuiteError` for parameters the scheme cannot take (its ``check``), so
        every caller validates before drawing.
        """
        return self._resolve(activation, params, None)

    def _resolve(
        self,
        activation: str | _activations.Activation | None,
        params: Mapping[str, Any],
        shape: tuple[int, ...] | None,
    ) -> dict[str, Any]:
        given = {**self.params, **self._convert(params)}
        for key, param in self.info.params.items():
            if param.required and key not in given:
                raise InitsuiteError(
                    f"scheme {self.name!r} needs parameter {key!r} (e.g. {self.info.example!r})"
                )
        merged = dict(given)
        if AUTO in merged.values():
            if activation is None:
                keys = ", ".join(k for k, v in merged.items() if v == AUTO)
                raise InitsuiteError(
                    f"scheme {self.spec!r}: {keys}=auto needs the activation that follows the layer"
                )
            act = _activations.get(activation)
            if merged.get("gain") == AUTO:
                merged["gain"] = act.gain
            if merged.get("nonlinearity") == AUTO:
                if act.name == "leaky_relu":
                    merged["nonlinearity"] = "leaky_relu"
                    merged["a"] = float(act.params.get("negative_slope", 0.01))
                else:
                    merged["nonlinearity"] = act.spec
        self._check(merged, shape, format_spec(self.name, given))
        return merged

    def _check(self, resolved: dict[str, Any], shape: tuple[int, ...] | None, spec: str) -> None:
        """Run the scheme's ``check`` on every parameter (defaults filled in)."""
        if self.info.check is None:
            return
        defaults = {k: p.default for k, p in self.info.params.items() if not p.required}
        try:
            self.info.check(shape, **{**defaults, **resolved})
        except ValueError as exc:  # InitsuiteError included: one line, naming the spec
            lines = str(exc).strip().splitlines()
            detail = lines[0] if lines else type(exc).__name__
            raise InitsuiteError(f"scheme {spec!r}: {detail}") from None

    # -- use --------------------------------------------------------------------------------
    def check_tensor(self, tensor: Tensor) -> None:
        """Raise :class:`InitsuiteTypeError` for an argument that is not a tensor, and
        :class:`InitsuiteError` (a ``ValueError``, as torch raises) for a tensor the scheme
        cannot fill: not floating point, or of a rank it does not take."""
        if not isinstance(tensor, Tensor):
            kind = type(tensor)
            name = kind.__qualname__ if kind.__module__ == "builtins" else (
                f"{kind.__module__}.{kind.__qualname__}")  # fmt: skip
            hint = "; convert it with torch.from_numpy(...)" if name == "numpy.ndarray" else ""
            raise InitsuiteTypeError(f"scheme {self.name!r} fills a torch.Tensor, got {name}{hint}")
        if not tensor.is_floating_point():
            raise InitsuiteError(
                f"scheme {self.name!r} needs a floating-point tensor, got {tensor.dtype}"
            )
        if not self.info.accepts_rank(tensor.dim()):
            raise InitsuiteError(
                f"scheme {self.name!r} needs a tensor of rank {self.info.ranks}, "
                f"got shape {tuple(tensor.shape)}"
            )

    def check_shape(
        self,
        shape: tuple[int, ...],
        activation: str | _activations.Activation | None = None,
        **params: Any,
    ) -> None:
        """Raise :class:`InitsuiteError` if the scheme cannot fill a tensor of ``shape``: its
        rank, or its parameters for that shape (its ``check``); lets a caller that fills many
        tensors refuse before drawing the first."""
        shape = tuple(shape)
        if not self.info.accepts_rank(len(shape)):
            raise InitsuiteError(
                f"scheme {self.name!r} needs a tensor of rank {self.info.ranks}, got shape {shape}"
            )
        self._resolve(activation, params, shape)

    def __call__(
        self,
        tensor: Tensor,
        *,
        activation: str | _activations.Activation | None = None,
        generator: torch.Generator | None = None,
        context: LayerContext | None = None,
        data: Callable[[Tensor], Tensor] | None = None,
        **params: Any,
    ) -> Tensor:
        """Check ``tensor``, resolve the parameters against ``activation`` and :meth:`fill`."""
        self.check_tensor(tensor)
        resolved = self._resolve(activation, params, tuple(tensor.shape))
        return self.fill(tensor, resolved, generator=generator, context=context, data=data)

    def fill(
        self,
        tensor: Tensor,
        params: Mapping[str, Any],
        *,
        generator: torch.Generator | None = None,
        context: LayerContext | None = None,
        data: Callable[[Tensor], Tensor] | None = None,
    ) -> Tensor:
        """Fill ``tensor`` in place with resolved ``params`` (:meth:`resolve`'s), unchecked:
        the draw alone, as engines repeat it layer after layer.

        Args:
            tensor: the weight to fill.
            params: every parameter, ``auto`` resolved.
            generator: the source of every random number.
            context: where the weight sits (:class:`LayerContext`), for schemes that take it.
            data: ``weight -> the layer's output on a batch``, for data-dependent schemes.
                Schemes that take neither never see them.

        Raises:
            InitsuiteError: the scheme's function returned something other than ``tensor``
                (a new tensor, None): ``tensor`` was then not filled, and would be read as
                whatever its memory held.
        """
        extra: dict[str, Any] = {}
        if "context" in self.info.uses:
            extra["context"] = context
        if "data" in self.info.uses:
            extra["data"] = data
        out = self.info.fn(tensor, **params, generator=generator, **extra)
        if out is not tensor and not _same_storage(out, tensor):
            what = "None" if out is None else (
                "a new tensor" if isinstance(out, Tensor) else type(out).__name__)  # fmt: skip
            raise InitsuiteError(
                f"scheme {self.name!r} returned {what} instead of the tensor it was given: a "
                "scheme fills its tensor in place and returns it"
            )
        return tensor

    def variance(
        self,
        shape: tuple[int, ...],
        activation: str | _activations.Activation | None = None,
        **params: Any,
    ) -> float | None:
        """Var(W) of one entry for a tensor of ``shape``; None for deterministic schemes."""
        shape = tuple(shape)
        return self.info.variance(shape, **self._resolve(activation, params, shape))

    def mean(
        self,
        shape: tuple[int, ...],
        activation: str | _activations.Activation | None = None,
        **params: Any,
    ) -> float:
        """E[W] of one entry for a tensor of ``shape`` (0 for centred schemes)."""
        if self.info.mean is None:
            return 0.0
        shape = tuple(shape)
        return float(self.info.mean(shape, **self._resolve(activation, params, shape)))

    def shared_draw(self, shape: tuple[int, ...], params: Mapping[str, Any]) -> SharedDraw | None:
        """This scheme's draw for ``shape`` under resolved ``params`` as a scaling of a base
        draw, or None when it is not one (then a sweep draws it on its own)."""
        if self.info.shared is None or 0 in shape:
            return None
        out = self.info.shared(tuple(shape), **params)
        if out is not None and out.base not in SHARED_BASES:
            raise ValueError(f"scheme {self.name!r}: unknown shared base {out.base!r}")
        return out


def get(spec: str | Scheme) -> Scheme:
    """The scheme named by ``spec``: a name with optional parameters.

    >>> get("xavier_uniform:gain=auto")
    Scheme('xavier_uniform:gain=auto')
    """
    if isinstance(spec, Scheme):
        return spec
    known = framework_names()
    if isinstance(spec, str):
        _check_framework(spec, known)
    name, raw = parse_spec(spec, kind="scheme", namespaces=known)
    return Scheme(info(name), raw)


_TWINS = (
    ("kaiming", "he"),
    ("xavier", "glorot"),
    ("he", "kaiming"),
    ("glorot", "xavier"),
    ("trunc_normal", "truncated_normal"),
    ("truncated_normal", "trunc_normal"),
    ("eye", "identity"),
    ("uniform", "random_uniform"),
    ("normal", "random_normal"),
)


def _twin(name: str, own: builtins.list[str]) -> str | None:
    """The framework's name for what torch (or another framework) calls ``name``'s scheme."""
    prefix, _, local = name.partition(":")
    for theirs, ours in _TWINS:
        if local.startswith(theirs) and f"{prefix}:{ours}{local[len(theirs) :]}" in own:
            return f"{prefix}:{ours}{local[len(theirs) :]}"
    return None


def _check_framework(spec: str, known: builtins.list[str]) -> None:
    """Name a misspelt framework (``"kers:he_normal"``), which would otherwise read as a
    scheme ``kers`` with a malformed parameter ``he_normal``."""
    prefix, sep, rest = (part.strip() for part in spec.strip().partition(":"))
    local = rest.partition(":")[0]
    if not sep or prefix in known or prefix in _REGISTRY or "=" in local or "," in local:
        return
    if difflib.get_close_matches(prefix, known, n=1, cutoff=0.6) or local in _local_names():
        raise InitsuiteError(f"scheme spec {spec!r}: " + unknown("framework", prefix, known))


def _local_names() -> set[str]:
    return {n.partition(":")[2] for n in _REGISTRY if ":" in n}


def _check_nonlinearity(value: str, owner: str) -> None:
    if value in TORCH_LINEAR_NAMES:
        return
    try:
        _activations.get(value)
    except InitsuiteError:
        choices = sorted({*TORCH_LINEAR_NAMES, *_activations.names(), AUTO})
        raise InitsuiteError(f"{owner}: " + unknown("nonlinearity", value, choices)) from None


def _same_storage(out: object, tensor: Tensor) -> bool:
    """Whether ``out`` is ``tensor``'s memory under another name (``tensor.data``, a view of
    all of it): what a scheme filled in place may return instead of ``tensor`` itself."""
    return (
        isinstance(out, Tensor) and out.device == tensor.device
        and out.data_ptr() == tensor.data_ptr() and out.numel() == tensor.numel()
    )  # fmt: skip

"""The validated configuration of a probe of a model factory (:class:`ProbeConfig`): the
factory or model source resolved, its ``vary`` grid expanded into models, the schemes and
precisions checked, all before any model is built; and the inputs every pass shares."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from initsuite import activations as _activations
from initsuite import schemes as _schemes
from initsuite.core import validate
from initsuite.core.devices import DTYPES, check_device, parse_dtype
from initsuite.core.errors import InitsuiteError, unknown
from initsuite.engine.fast_stats import check_stats
from initsuite.engine.reinit import scheme_or_convention
from initsuite.schemes import conventions as _conventions
from initsuite.studies import sources as _sources
from initsuite.studies.probe import AUTOCAST, DEFAULT, INPUT_SEED_OFFSET, MODES, check_autocast
from initsuite.studies.user_code import load_factory

__all__ = ["ProbeConfig", "Variant", "make_inputs"]


def make_inputs(
    shape: Sequence[int],
    *,
    tokens: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    dtype: str = "float32",
) -> Tensor:
    """N(0, 1) inputs of ``shape`` (drawn in float32 and cast to ``dtype``, so every dtype
    sees the same numbers to rounding), or with ``tokens`` integer ids uniform in
    ``[0, tokens)``; from a generator seeded with ``seed + INPUT_SEED_OFFSET``."""
    gen = torch.Generator(device=device).manual_seed(seed + INPUT_SEED_OFFSET)
    size = tuple(int(n) for n in shape)
    if tokens is not None:
        return torch.randint(0, tokens, size, generator=gen, device=device)
    x = torch.randn(size, generator=gen, device=device, dtype=torch.float32)
    return x.to(DTYPES[parse_dtype(dtype)])


def _factory_name(factory: Callable[..., Any]) -> str:
    module = getattr(factory, "__module__", None) or "?"
    return f"{module}:{getattr(factory, '__qualname__', type(factory).__name__)}"


_BASELINE = (DEFAULT, "default")  # "default": its name before 0.2


Law = _schemes.Scheme | str | None
"""What a pass re-draws its model with: a scheme, a convention's name, or None (as built)."""


def _check_schemes(
    schemes: str | Iterable[str], act: _activations.Activation | None
) -> dict[str, Law]:
    """``as_built`` first, then each scheme (canonical spec, wildcards expanded) or
    convention, once, by its label; every scheme resolved for ``act`` before any compute."""
    items = [schemes] if isinstance(schemes, str) else list(schemes)
    out: dict[str, Law] = {DEFAULT: None}
    for item in items:
        name = item.strip() if isinstance(item, str) else item
        if name in _BASELINE:
            continue
        if isinstance(name, str) and name in _conventions.CONVENTIONS:
            out.setdefault(name, name)
            continue
        for spec in _schemes.expand([name], rank=None):
            obj = scheme_or_convention(spec)  # an unknown name: the nearest scheme or convention
            obj.resolve(act)  # gain=auto without an activation fails here, before any compute
            out.setdefault(obj.spec, obj)
    return out


def _check_autocasts(autocasts: str | Iterable[str | None]) -> tuple[str, ...]:
    """Each precision once, in the order given (None: float32)."""
    items = [autocasts] if isinstance(autocasts, str) or autocasts is None else list(autocasts)
    if not items:
        raise InitsuiteError(f"autocasts needs at least one precision of {', '.join(AUTOCAST)}")
    return tuple(dict.fromkeys(check_autocast(a) for a in items))


@dataclass(frozen=True)
class Variant:
    """One model of a probe: a factory or source (with its grid's values) and its input."""

    name: str
    build: Callable[[], nn.Module] | None
    input_shape: tuple[int, ...]
    tokens: int | None
    values: dict[str, Any]
    source: dict[str, Any] | None


@dataclass(frozen=True)
class ProbeConfig:
    """A validated probe of a model factory: one fresh model per scheme, the same inputs.

    ``factory`` is a model source (``hf:gpt2,n_layer=24``, ``timm:resnet50``: see
    :mod:`initsuite.studies.sources`) or a ``package.module:callable``; stored as the
    source's canonical spec or ``"module:name"`` (the callable itself in ``_factory``).
    ``schemes`` always starts with ``"as_built"`` (alias ``"default"``), the model as its
    library or factory initialised it (the baseline); the others are scheme specs, wildcards
    or framework conventions (``"flax"``). ``input_shape`` is the shape of the one input
    tensor passed positionally; None: inferred from a source (``batch`` examples of its image
    size, or of 128 tokens). With ``tokens`` (inferred for text models) it holds integer ids
    in ``[0, tokens)``. ``mode`` is set on each model (``train``: BatchNorm uses the batch's
    statistics and dropout is active, as in the first training step; ``eval``: running
    statistics, no dropout). ``max_parameters`` refuses a source larger than that (None: no
    limit). ``autocasts`` lists the precisions each model is probed at (``float32``: no
    autocast; ``bfloat16``, ``float16``: the forward under ``torch.autocast``). ``stats``:
    how the statistics are summed (:data:`~initsuite.engine.fast_stats.STATS`). ``vary``
    sweeps a source's overrides: ``(("n_layer", (6, 12, 24)),)`` probes one model per point
    of the grid (:func:`~initsuite.studies.sources.parse_vary` takes the CLI's
    ``n_layer=6,12,24`` or a mapping); ``models`` then lists them, each as its spec and the
    values it took.
    """

    factory: str
    input_shape: tuple[int, ...] | None = None
    schemes: tuple[str, ...] = (DEFAULT,)
    tokens: int | None = None
    activation: str | None = None
    backward: bool = False
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    mode: str = "train"
    include_embeddings: bool = False
    batch: int = 2
    max_parameters: int | None = _sources.MAX_PARAMETERS
    source: dict[str, Any] | None = None
    autocasts: tuple[str, ...] = ("float32",)
    stats: str = "exact"
    vary: _sources.Axes = ()
    models: tuple[dict[str, Any], ...] = ()
    _factory: Callable[[], nn.Module] | None = field(default=None, repr=False, compare=False)
    _variants: tuple[Variant, ...] = field(default=(), repr=False, compare=False)
    # the specs above, resolved once: each scheme label's law, and the activation
    _laws: dict[str, Law] = field(default_factory=dict, repr=False, compare=False)
    _act: _activations.Activation | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass
        if self.input_shape is not None:
            shape = tuple(self.input_shape)
            if not shape:
                raise InitsuiteError("input_shape must not be empty, e.g. (16, 3, 32, 32)")
            set_("input_shape", tuple(validate.count("input_shape", n) for n in shape))
        set_("batch", validate.count("batch", self.batch))
        if self.max_parameters is not None:
            set_("max_parameters", validate.count("max_parameters", self.max_parameters))
        act = None if self.activation is None else _activations.get(self.activation)
        set_("_act", act)
        set_("activation", None if act is None else act.spec)
        set_("_laws", _check_schemes(self.schemes, act))
        set_("schemes", tuple(self._laws))
        if self.tokens is not None:  # the vocabulary size
            set_("tokens", validate.count("tokens", self.tokens))
        set_("seed", validate.seed(self.seed))
        if self.mode not in MODES:
            raise InitsuiteError(unknown("mode", self.mode, MODES))
        for name in ("backward", "include_embeddings"):
            if not isinstance(getattr(self, name), bool):
                raise InitsuiteError(f"{name} must be True or False, got {getattr(self, name)!r}")
        set_("dtype", parse_dtype(self.dtype))
        set_("device", check_device(self.device))
        set_("autocasts", _check_autocasts(self.autocasts))
        set_("stats", check_stats(self.stats))
        set_("vary", _sources.parse_vary(self.vary) if self.vary else ())
        if self.vary and not _sources.is_source(self.factory):
            raise InitsuiteError(
                f"vary needs a model by name (hf:gpt2, timm:resnet50, torchvision:resnet18), "
                f"whose overrides it sets; factory {str(self.factory)!r} has none"
            )
        # last: importing the user's module may be slow (transformers), so cheap checks go first
        self._bind_factory()
        if self.input_shape is None:
            raise InitsuiteError(f"input_shape is needed for factory {self.factory!r} (only a "
                                 "model source, e.g. timm:resnet50, has one to infer)")  # fmt: skip
        if not self._variants:
            set_("_variants", (Variant(self.factory, self._factory, self.input_shape,
                                       self.tokens, {}, self.source),))  # fmt: skip
        set_("models", tuple({"model": v.name, "base": self.factory, "values": dict(v.values),
                              "input_shape": list(v.input_shape)}
                             for v in self._variants))  # fmt: skip

    def _bind_factory(self) -> None:
        """Resolve ``factory`` (a model source, ``module:callable`` or a callable): its
        callable, its name, and for a source its ``vary`` grid and inferred input."""
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass
        factory: Any = self.factory
        if _sources.is_source(factory):
            # the base model is not built when it is varied: only its grid is (each checked)
            src = _sources.parse(factory, None if self.vary else self.max_parameters)
            set_("_factory", src.build)
            set_("factory", src.spec)
            set_("source", dict(_sources.describe(src)))
            grid = _sources.grid(src, self.vary, self.max_parameters) if self.vary else [(src, {})]
            set_("_variants", tuple(
                Variant(v.spec, v.build, self.input_shape or v.input_shape(self.batch),
                        v.tokens if self.tokens is None else self.tokens, values,
                        dict(_sources.describe(v)))
                for v, values in grid))  # fmt: skip
            if self.input_shape is None:
                set_("input_shape", src.input_shape(self.batch))
            if self.tokens is None:
                set_("tokens", src.tokens)
        elif isinstance(factory, str):
            set_("_factory", load_factory(factory))
            set_("factory", factory.strip())
        elif callable(factory):
            set_("_factory", factory)
            set_("factory", _factory_name(factory))
        else:
            raise InitsuiteError(f"factory must be a model source ('hf:gpt2'), "
                                 f"'module:callable' or a callable, got "
                                 f"{type(factory).__name__}")  # fmt: skip

    def law(self, label: str) -> Law:
        """What the pass labelled ``label`` (one of :attr:`schemes`) re-draws the model with."""
        return self._laws[label]

    @property
    def activation_object(self) -> _activations.Activation | None:
        """:attr:`activation`, parsed once."""
        return self._act

    def to_dict(self) -> dict[str, Any]:
        out = {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()
               if not k.startswith("_")}  # fmt: skip
        out["vary"] = {k: list(v) for k, v in self.vary}
        return out

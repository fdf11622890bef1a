"""Real models by name, built from code and the configs their packages ship (no download).

A *model source* is ``LIBRARY:NAME[,KEY=VALUE...]``:

* ``timm:resnet50``, ``timm:vit_small_patch16_224,depth=24``: ``timm.create_model(NAME,
  pretrained=False, **overrides)``; the input size is the model's ``pretrained_cfg``'s.
* ``torchvision:resnet18``: ``torchvision.models.get_model(NAME, weights=None, **overrides)``;
  images of 224 px unless the builder's weights say otherwise.
* ``hf:gpt2,n_layer=48,n_embd=256``, ``hf:bert``, ``hf:llama,num_hidden_layers=4``: the
  transformers config class of that ``model_type`` with its defaults and the overrides (each
  key checked against the config), built by ``AutoModel.from_config`` (the base model, with
  the library's ``_init_weights``); token batches for text models, pixel batches for vision.

Every override's value is checked by what its key names (counts, sizes, probabilities:
:mod:`initsuite.studies.source_checks`), and the size of every model is counted on the ``meta``
device before it is built, under caps, so a default LLaMA (6.7e9 parameters) or a GPT-2 of
100000 layers is refused in one line instead of exhausting memory or time.

    >>> src = parse("hf:gpt2,n_layer=2,n_embd=64,n_head=2")  # doctest: +SKIP
    >>> src.input_shape(batch=2), src.tokens  # doctest: +SKIP
    ((2, 128), 50257)
"""

from __future__ import annotations

import difflib
import importlib
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from initsuite.core import validate
from initsuite.core.errors import InitsuiteError, did_you_mean, unknown
from initsuite.core.spec import format_value, plain_number, split_items
from initsuite.studies import source_checks as _checks

__all__ = [
    "LIBRARIES", "MAX_PARAMETERS", "ModelSource", "grid", "is_source", "missing", "parse",
    "parse_vary",
]  # fmt: skip

LIBRARIES: tuple[str, ...] = ("timm", "torchvision", "hf")
MAX_PARAMETERS = 500_000_000
"""Models above this many parameters are refused unless asked for (``max_parameters``): 2 GB
of float32 weights, as much again for their gradients, and the activations on top."""
_PIP = {"timm": "timm", "torchvision": "torchvision", "hf": "transformers"}
_TEXT_TOKENS = 128  # the sequence length of a text model's token batch (capped by its positions)
_IMAGE = 224  # the image size when the library names none


def is_source(text: object) -> bool:
    """Whether ``text`` names a model source (``timm:``, ``torchvision:`` or ``hf:``)."""
    return isinstance(text, str) and text.strip().partition(":")[0] in LIBRARIES


def _value(text: str) -> Any:
    """An override's value: int, float, true/false, none, a bracketed list of these
    (``[64,128]``), or the string itself."""
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [_value(v) for v in split_items(inner)] if inner else []
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    number = plain_number(text)  # "1_0" and "１２" are refused, not read as 10 and 12
    return text if number is None else number


def _import(library: str, spec: str) -> Any:
    module = {"timm": "timm", "torchvision": "torchvision.models", "hf": "transformers"}[library]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise InitsuiteError(
            f"{spec} needs {_PIP[library]} ({type(exc).__name__}: {exc}): pip install "
            f"'initsuite[zoo]' (or {_PIP[library]} alone)"
        ) from None


def missing(text: str) -> str | None:
    """Why ``text``'s library does not import (one line, with the pip command), or None."""
    spec = str(text).strip()
    try:
        _import(spec.partition(":")[0], spec)
    except InitsuiteError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class ModelSource:
    """A model named by library, name and constructor overrides; see :func:`parse`.

    Attributes:
        library: ``timm``, ``torchvision`` or ``hf``.
        name: the library's model name (``resnet50``) or ``model_type`` (``gpt2``).
        overrides: keyword overrides of the constructor or config, in the order given.
        parameters: the model's parameter count (counted on the meta device).
        tokens: the vocabulary size of a text model (its input is token ids), else None.
        sample_shape: one example's input shape: ``(channels, height, width)`` or
            ``(sequence,)``.
        version: the library's version.
    """

    library: str
    name: str
    overrides: tuple[tuple[str, Any], ...]
    parameters: int
    tokens: int | None
    sample_shape: tuple[int, ...]
    version: str
    _build: Callable[[], nn.Module] = field(repr=False, compare=False)

    @property
    def spec(self) -> str:
        """The canonical spec: ``library:name,key=value,...``."""
        return ",".join([f"{self.library}:{self.name}",
                         *(f"{k}={format_value(v)}" for k, v in self.overrides)])  # fmt: skip

    def build(self) -> nn.Module:
        """A fresh model with the library's own initialisation, from torch's global RNG."""
        try:
            return self._build()
        except Exception as exc:  # the library's code: counted on meta, so rarely here
            raise InitsuiteError(f"{self.spec}: the constructor refused it: "
                                 f"{_checks.one_line(exc)}") from exc  # fmt: skip

    def input_shape(self, batch: int) -> tuple[int, ...]:
        """The probe's input shape for ``batch`` examples."""
        return (batch, *self.sample_shape)

    def to_dict(self) -> dict[str, Any]:
        return {"library": self.library, "name": self.name, "overrides": dict(self.overrides),
                "parameters": self.parameters, "version": self.version}  # fmt: skip


def parse(text: str, max_parameters: int | None = MAX_PARAMETERS) -> ModelSource:
    """The model source ``text`` names, checked: the library importable, the name known (else
    the nearest names), every override a key the config has (hf) and a value its kind allows
    (:func:`~initsuite.studies.source_checks.check_value`), the model no larger than
    ``max_parameters`` (None: no limit) and of at most
    :data:`~initsuite.studies.source_checks.MAX_MODULES` modules.

    Raises:
        InitsuiteError: one line naming what is wrong and the valid choices.
    """
    if max_parameters is not None:
        max_parameters = validate.count("max_parameters", max_parameters)
    spec = str(text).strip()
    head, *items = split_items(spec)
    library, _, name = head.partition(":")
    if library not in LIBRARIES:
        raise InitsuiteError(unknown("model library", library, LIBRARIES))
    if not name:
        raise InitsuiteError(f"{spec!r} names no model: write {library}:NAME, e.g. "
                             f"{_EXAMPLES[library]}")  # fmt: skip
    overrides: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise InitsuiteError(f"{spec!r}: override {item!r} is not KEY=VALUE, e.g. "
                                 f"{_OVERRIDE[library]}")  # fmt: skip
        if key.strip() in overrides:
            raise InitsuiteError(f"{spec!r}: override {key.strip()!r} is given twice")
        overrides[key.strip()] = _value(value.strip())
    lib = _import(library, spec)
    make = {"timm": _timm, "torchvision": _torchvision, "hf": _hf}[library]
    return make(lib, name, overrides, spec, max_parameters)


_EXAMPLES = {"timm": "timm:resnet50", "torchvision": "torchvision:resnet18", "hf": "hf:gpt2"}
_OVERRIDE = {"timm": "timm:vit_small_patch16_224,depth=24",
             "torchvision": "torchvision:resnet18,num_classes=10",
             "hf": "hf:gpt2,n_layer=48,n_embd=256"}  # fmt: skip
_SMALLER = {"timm": "timm:vit_small_patch16_224,depth=6",
            "torchvision": "a smaller builder: torchvision:mobilenet_v3_small",
            "hf": "hf:llama,num_hidden_layers=4,hidden_size=256,intermediate_size=688"}  # fmt: skip


def _nearest(name: str, names: list[str], spec: str, listing: str,
             also: Sequence[str] = ()) -> InitsuiteError:  # fmt: skip
    """The closest names by spelling, then ``also`` (those containing it, for timm)."""
    hint = did_you_mean(name, names)
    near = f"; did you mean {hint!r}?" if hint else ""
    close = [*difflib.get_close_matches(name, names, n=5, cutoff=0.5), *also]
    rest = [n for n in dict.fromkeys(close) if n != hint][:4]
    listing = f"nearest: {', '.join(rest)}; {listing}" if rest else listing
    return InitsuiteError(f"unknown model {name!r} in {spec!r}{near} ({listing} lists them)")


# --- the libraries -----------------------------------------------------------------------------


def _timm(timm: Any, name: str, overrides: dict[str, Any], spec: str, limit: int | None
          ) -> ModelSource:  # fmt: skip
    names = list(timm.list_models())
    if name not in names:
        raise _nearest(name, names, spec, "timm.list_models('*pattern*')",
                       timm.list_models(f"*{name}*")) from None  # fmt: skip

    for key, value in overrides.items():
        _checks.check_value(spec, key, value)

    def at(depth: int | None) -> Callable[[], nn.Module]:
        kwargs = overrides if depth is None else {**overrides, "depth": depth}
        return lambda: timm.create_model(name, pretrained=False, **kwargs)

    build = at(None)
    depth = overrides.get("depth")  # ViT-like models' number of blocks
    deep = (depth, at) if isinstance(depth, int) and not isinstance(depth, bool) else None
    keys = lambda: _checks.check_keys(  # noqa: E731  # the class's keys, where it refuses one
        spec, overrides, lambda: timm.create_model(name, pretrained=False)
    )
    n, meta_model = _checks.count(build, spec, limit, _SMALLER["timm"], deep, keys)
    cfg = getattr(meta_model, "pretrained_cfg", None) or {}
    shape = tuple(int(v) for v in cfg.get("input_size", (3, _IMAGE, _IMAGE)))
    if "img_size" in overrides:  # a ViT built for another size takes that size
        size = overrides["img_size"]
        shape = (shape[0], *((size, size) if isinstance(size, int) else size))
    return ModelSource("timm", name, tuple(overrides.items()), n, None, shape,
                       str(timm.__version__), build)  # fmt: skip


def _torchvision(models: Any, name: str, overrides: dict[str, Any], spec: str,
                 limit: int | None) -> ModelSource:  # fmt: skip
    names = list(models.list_models())
    if name not in names:
        raise _nearest(name, names, spec, "torchvision.models.list_models()") from None

    for key, value in overrides.items():
        _checks.check_value(spec, key, value)

    def build() -> nn.Module:
        return models.get_model(name, weights=None, **overrides)

    keys = lambda: _checks.check_keys(  # noqa: E731  # the class's keys, where it refuses one
        spec, overrides, lambda: models.get_model(name, weights=None)
    )
    n, _ = _checks.count(build, spec, limit, _SMALLER["torchvision"], keys=keys)
    size = _IMAGE
    try:  # the weights' metadata ship with torchvision: the size they were trained at
        weights = models.get_model_weights(name)
        size = int(next(iter(weights)).transforms().crop_size[0])
    except (ValueError, StopIteration, AttributeError, TypeError, IndexError):
        pass
    import torchvision

    return ModelSource("torchvision", name, tuple(overrides.items()), n, None, (3, size, size),
                       str(torchvision.__version__), build)  # fmt: skip


def _hf(tr: Any, name: str, overrides: dict[str, Any], spec: str, limit: int | None
        ) -> ModelSource:  # fmt: skip
    mapping = tr.CONFIG_MAPPING
    names = sorted(mapping.keys())
    if name not in mapping:
        raise _nearest(name, names, spec, "transformers.CONFIG_MAPPING.keys()") from None
    cls = mapping[name]
    defaults = cls()
    valid = {*defaults.to_dict(), *getattr(cls, "attribute_map", {})}
    # the keys of this architecture, not those every config has (dtype, id2label, ...)
    own = sorted(valid - set(tr.PretrainedConfig().to_dict()) - {"model_type"})
    activations = sorted(getattr(getattr(tr, "activations", None), "ACT2FN", None) or ())
    for key, value in overrides.items():
        if key not in valid:
            hint = did_you_mean(key, own) or did_you_mean(key, sorted(valid))
            near = f"; did you mean {hint!r}?" if hint else ""
            raise InitsuiteError(f"{spec!r}: {cls.__name__} has no key {key!r}{near} (its "
                                 f"keys: {', '.join(own)})")  # fmt: skip
        default = getattr(defaults, key, None)
        overrides[key] = _checks.check_type(spec, key, value, default)
        _checks.check_value(spec, key, overrides[key], default)
        # where the default names one of transformers' activations, the value must too
        _checks.check_choice(spec, key, overrides[key], default, activations,
                             "transformers activation")  # fmt: skip
    # an int where the config's default is a float, as a float (its strict fields want one)
    kwargs = {k: float(v) if isinstance(getattr(defaults, k, None), float)
              and isinstance(v, int) and not isinstance(v, bool) else v
              for k, v in overrides.items()}  # fmt: skip
    try:
        config = cls(**kwargs)
    except Exception as exc:  # the config's own validation (transformers' strict fields)
        raise InitsuiteError(f"{spec!r}: {cls.__name__} refused it: "
                             f"{_checks.one_line(exc)}") from None  # fmt: skip

    def build() -> nn.Module:
        return tr.AutoModel.from_config(config)

    # the depth as the config names it: the key given (n_layer), else its canonical name
    key = next((k for k in overrides if _canonical(cls, k) == "num_hidden_layers"),
               "num_hidden_layers")  # fmt: skip
    depth = getattr(config, "num_hidden_layers", None)

    def at(layers: int) -> Callable[[], nn.Module]:
        return lambda: tr.AutoModel.from_config(cls(**{**kwargs, key: layers}))

    deep = (depth, at) if isinstance(depth, int) and not isinstance(depth, bool) else None
    n, _ = _checks.count(build, spec, limit, _SMALLER["hf"], deep)
    tokens, shape = _hf_input(config, spec)
    return ModelSource("hf", name, tuple(overrides.items()), n, tokens, shape,
                       str(tr.__version__), build)  # fmt: skip


def _canonical(cls: Any, key: str) -> str:
    """A config key by its canonical name (GPT-2's ``n_layer`` is ``num_hidden_layers``)."""
    return str(getattr(cls, "attribute_map", {}).get(key, key))


def _hf_input(config: Any, spec: str) -> tuple[int | None, tuple[int, ...]]:
    """(vocabulary, one example's shape): token ids for a text model, pixels for vision."""
    vocab = getattr(config, "vocab_size", None)
    if isinstance(vocab, int) and vocab > 0:
        positions = [getattr(config, k, None) for k in ("max_position_embeddings", "n_positions")]
        cap = min([p for p in positions if isinstance(p, int) and p > 0], default=_TEXT_TOKENS)
        return vocab, (min(_TEXT_TOKENS, cap),)
    channels = getattr(config, "num_channels", None)
    if isinstance(channels, int) and channels > 0:
        size = getattr(config, "image_size", _IMAGE)
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        return None, (channels, int(h), int(w))
    raise InitsuiteError(f"cannot tell what {spec!r} takes as input (no vocab_size, no "
                         "num_channels): pass --input-shape")  # fmt: skip


Axes = tuple[tuple[str, tuple[Any, ...]], ...]
"""The axes of a sweep: (key, its values) pairs."""


def _axis(key: object, values: object) -> tuple[str, tuple[Any, ...]]:
    items: list[Any] = [values] if isinstance(values, str | int | float) else list(values)  # type: ignore[call-overload]
    return str(key).strip(), tuple(_value(v.strip()) if isinstance(v, str) else v for v in items)


def parse_vary(items: Iterable[str | tuple[str, Iterable[Any]]] | Mapping[str, Iterable[Any]]
               ) -> Axes:  # fmt: skip
    """The axes of a sweep: ``["n_layer=6,12,24", "n_embd=128,256"]`` (the CLI's ``--vary``,
    values as in a spec), ``{"n_layer": [6, 12, 24]}`` or (key, values) pairs →
    ``(("n_layer", (6, 12, 24)), ...)``, each key once, each axis's values distinct.

    Raises:
        InitsuiteError: an item that is not KEY=V1,V2,..., a key given twice, an empty or
            repeated value.
    """
    pairs: list[tuple[str, tuple[Any, ...]]] = []
    if isinstance(items, Mapping):
        pairs = [_axis(key, values) for key, values in items.items()]
    elif isinstance(items, str):
        raise InitsuiteError(f"vary takes a list of KEY=V1,V2,... items or a mapping, got the "
                             f"string {items!r}: write [{items!r}]")  # fmt: skip
    else:
        for item in items:
            if isinstance(item, tuple) and len(item) == 2:
                pairs.append(_axis(*item))
                continue
            key, eq, values = str(item).partition("=")
            texts = split_items(values)
            if not eq or not key.strip() or not all(texts):
                raise InitsuiteError(f"--vary {item!r} is not KEY=V1,V2,..., e.g. "
                                     "n_layer=6,12,24")  # fmt: skip
            pairs.append((key.strip(), tuple(_value(v) for v in texts)))
    seen: set[str] = set()
    for name, axis in pairs:
        if not name or not axis:
            raise InitsuiteError(f"--vary {name}= needs at least one value, e.g. n_layer=6,12,24")
        if name in seen:
            raise InitsuiteError(f"--vary {name!r} is given twice: list its values once")
        seen.add(name)
        if len({repr(v) for v in axis}) < len(axis):
            raise InitsuiteError(f"--vary {name}={','.join(map(str, axis))} repeats a value")
    return tuple(pairs)


def grid(
    base: ModelSource,
    vary: Sequence[tuple[str, Sequence[Any]]],
    max_parameters: int | None = MAX_PARAMETERS,
) -> list[tuple[ModelSource, dict[str, Any]]]:
    """Every model of the grid ``vary`` spans around ``base`` (the last axis fastest), each
    with the values it took: ``base``'s overrides with the axes' keys set (an axis's key
    replaces the base's), every variant checked by :func:`parse` (keys, types, size) before
    any is built.
    """
    out = []
    for combo in itertools.product(*(vals for _, vals in vary)):
        values = dict(zip((k for k, _ in vary), combo, strict=True))
        overrides = {**dict(base.overrides), **values}
        spec = ",".join([f"{base.library}:{base.name}",
                         *(f"{k}={format_value(v)}" for k, v in overrides.items())])  # fmt: skip
        out.append((parse(spec, max_parameters), values))
    return out


def describe(source: ModelSource) -> Mapping[str, Any]:
    """What a results directory records about the source (``meta["model"]["source"]``)."""
    return {"spec": source.spec, **source.to_dict()}

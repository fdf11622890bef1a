"""The zoo study: real architectures, as their library builds them and re-drawn by schemes.

Six architectures people train, each probed forward and backward (one pass per scheme, on a
fresh model from the same seeded draw, :func:`~initsuite.studies.probe_factory.run_probe`):
its own initialisation (``as_built``, the library's ``_init_weights``) against

- ``kaiming_normal``: He et al.'s N(0, 2/fan_in), the conv nets' rule;
- ``xavier_normal``: Glorot's N(0, 2/(fan_in + fan_out)), the plain-network baseline;
- ``normal:std=0.02``: the transformers' N(0, 0.02) everywhere, GPT-2 without its
  1/√(2L) rule (what BERT and ViT draw for every Linear);
- and one scheme for the kind of model: ``gpt2`` for the text models (N(0, 0.02), the
  residual projections at 0.02/√(2L): the depth-aware rule against plain N(0, 0.02) as the
  depth grows), ``lsuv`` for the vision models (each layer rescaled on the probe's batch to
  unit output variance: the data-dependent answer to BatchNorm-free depth).

The models (:data:`MODELS`) are the libraries' own builds, from code (``pretrained=False``,
``weights=None``: nothing is downloaded):

- timm's ``resnet50`` and ``convnext_tiny`` and torchvision's ``resnet18``, on 128 px images;
- timm's ViT-S/16 (``vit_small_patch16_224`` at ``img_size=128``, 64 patches) swept over
  depth (6, 12 and 24 blocks; 12 is the model as published);
- GPT-2 and BERT (Hugging Face transformers' configs) at reduced width (256, 4 heads) swept
  over depth (3 to 48 and 3 to 24 layers), on 2 × 64 tokens.

Where timm or torchvision does not import, a vision model is probed through its stand-in
(:attr:`ZooModel.stand_in`): the same architecture built by transformers (``hf:resnet``,
``hf:convnext``, ``hf:vit`` at ViT-S's width), whose numbers differ (its ResNet keeps the
last BatchNorm of each block at 1 where timm's ``zero_init_last`` sets it to 0).
``meta["stand_ins"]`` records each swap and why, and the report's *Models* section names
them. Batch 2 everywhere, float32, train mode (BatchNorm on the batch's statistics, as in the
first step). ``initsuite reproduce zoo --out DIR`` runs it; ``initsuite report DIR`` draws it.

    >>> from initsuite.studies.zoo import ZooModel, zoo_study
    >>> tiny = ZooModel("hf:gpt2,n_embd=32,n_head=2", vary=(("n_layer", (2, 4)),),
    ...                 schemes=("gpt2",), input_shape=(2, 16))
    >>> zoo_study([tiny]).calls.groupby(["model", "scheme"]).size()  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from initsuite.core import validate
from initsuite.core.env import environment
from initsuite.core.errors import InitsuiteError, InitsuiteTypeError
from initsuite.core.spec import split_items
from initsuite.results.probe import ProbeResult
from initsuite.studies import sources as _sources
from initsuite.studies.probe import LOSS
from initsuite.studies.probe_factory import ProbeConfig, run_probe

__all__ = [
    "BATCH", "IMAGE", "MODELS", "SCHEMES", "TOKENS", "ZooModel", "split_models", "zoo_study",
]  # fmt: skip

SCHEMES: tuple[str, ...] = ("kaiming_normal", "xavier_normal", "normal:std=0.02")
"""The schemes every model is probed under (after ``as_built``)."""
EXTRA: dict[str, tuple[str, ...]] = {"text": ("gpt2",), "image": ("lsuv",)}
"""The scheme added for each kind of input, for a model named without its own."""
BATCH, IMAGE, TOKENS = 2, 128, 64
_WIDTH = "256,n_head=4"  # GPT-2's reduced width (the default is 768 with 12 heads)


@dataclass(frozen=True)
class ZooModel:
    """One model of the zoo study.

    Attributes:
        spec: a model source (:mod:`initsuite.studies.sources`): ``hf:resnet``,
            ``timm:resnet50``, ``hf:gpt2,n_embd=256``.
        vary: a sweep of the source's overrides, ``(("n_layer", (3, 6, 12)),)``: one model
            per point.
        schemes: schemes probed besides the study's; None: ``gpt2`` for a text model,
            ``lsuv`` for an image model (:data:`EXTRA`).
        input_shape: the input's shape, batch first; None: the source's (``BATCH`` images of
            its size, or ``BATCH`` × up to 128 tokens).
        stands_for: the architecture in words, for the record.
        stand_in: the model probed in its place where its library does not import (a
            Hugging Face build of the same architecture); None: the study refuses it there.
    """

    spec: str
    vary: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    schemes: tuple[str, ...] | None = None
    input_shape: tuple[int, ...] | None = None
    stands_for: str = ""
    stand_in: ZooModel | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.spec, str) or not _sources.is_source(self.spec):
            raise InitsuiteError(f"zoo model {self.spec!r} is not a model source: write "
                                 "LIBRARY:NAME[,KEY=VALUE...] with LIBRARY one of "
                                 f"{', '.join(_sources.LIBRARIES)}, e.g. hf:gpt2")  # fmt: skip
        vary: Any = self.vary
        if not isinstance(vary, Mapping):
            try:
                vary = dict(vary)
            except (TypeError, ValueError):
                raise InitsuiteTypeError(f"zoo model {self.spec!r}: vary must be (key, values) "
                                         f"pairs or a mapping, e.g. {{'n_layer': [3, 6]}}, got "
                                         f"{self.vary!r}") from None  # fmt: skip
        object.__setattr__(self, "vary", _sources.parse_vary(vary))
        if self.schemes is not None:
            if isinstance(self.schemes, str) or not all(isinstance(s, str) for s in self.schemes):
                raise InitsuiteTypeError(f"zoo model {self.spec!r}: schemes must be a tuple of "
                                         f"scheme specs, got {self.schemes!r}")  # fmt: skip
            object.__setattr__(self, "schemes", tuple(self.schemes))
        if self.input_shape is not None:
            object.__setattr__(self, "input_shape", tuple(
                validate.count("input_shape", n) for n in self.input_shape))  # fmt: skip
        if self.stand_in is not None and not isinstance(self.stand_in, ZooModel):
            raise InitsuiteTypeError(f"zoo model {self.spec!r}: stand_in must be a ZooModel, "
                                     f"got {type(self.stand_in).__name__}")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "vary": {k: list(v) for k, v in self.vary},
                "schemes": None if self.schemes is None else list(self.schemes),
                "input_shape": None if self.input_shape is None else list(self.input_shape),
                "stands_for": self.stands_for,
                "stand_in": None if self.stand_in is None else self.stand_in.spec}  # fmt: skip

    def available(self) -> tuple[ZooModel, dict[str, str] | None]:
        """The model to probe: this one, or its stand-in where this one's library does not
        import, with the record of the swap (``{"model", "stand_in", "reason"}``)."""
        reason = None if self.stand_in is None else _sources.missing(self.spec)
        if reason is None or self.stand_in is None:
            return self, None
        return self.stand_in, {"model": self.spec, "stand_in": self.stand_in.spec,
                               "reason": reason}  # fmt: skip


_IMAGES = (BATCH, 3, IMAGE, IMAGE)
_DEPTHS = (6, 12, 24)  # ViT-S's depth sweep (12: as published)


def _vision(spec: str, stands_for: str, stand_in: str, vary: str = "") -> ZooModel:
    """A vision model of the zoo on ``_IMAGES`` with ``lsuv``, and its Hugging Face stand-in
    (``vary``: its depth swept over :data:`_DEPTHS`, the real model's ``depth``)."""

    def entry(spec: str, key: str, stand_in: ZooModel | None = None) -> ZooModel:
        return ZooModel(spec, vary=((key, _DEPTHS),) if vary else (), schemes=("lsuv",),
                        input_shape=_IMAGES, stands_for=stands_for, stand_in=stand_in)  # fmt: skip

    return entry(spec, "depth", entry(stand_in, vary))


MODELS: tuple[ZooModel, ...] = (
    _vision("timm:resnet50", "ResNet-50", "hf:resnet"),
    _vision("torchvision:resnet18", "ResNet-18", "hf:resnet,layer_type=basic,depths=[2,2,2,2],"
            "hidden_sizes=[64,128,256,512],embedding_size=64"),
    _vision("timm:convnext_tiny", "ConvNeXt-T", "hf:convnext"),
    _vision(f"timm:vit_small_patch16_224,img_size={IMAGE}", "ViT-S/16 over depth",
            f"hf:vit,hidden_size=384,num_attention_heads=6,intermediate_size=1536,"
            f"image_size={IMAGE}", vary="num_hidden_layers"),
    ZooModel(f"hf:gpt2,n_embd={_WIDTH}", vary=(("n_layer", (3, 6, 12, 24, 48)),),
             schemes=("gpt2",), input_shape=(BATCH, TOKENS),
             stands_for="GPT-2 at width 256, over depth"),
    ZooModel("hf:bert,hidden_size=256,num_attention_heads=4,intermediate_size=1024",
             vary=(("num_hidden_layers", (3, 6, 12, 24)),), schemes=("gpt2",),
             input_shape=(BATCH, TOKENS), stands_for="BERT at width 256, over depth"),
)  # fmt: skip
"""The default zoo: each architecture, its sweep, its extra scheme and its input."""


def split_models(text: str) -> list[str]:
    """The model sources of a comma list: an item naming a library (``timm:``,
    ``torchvision:``, ``hf:``) starts a model, a ``KEY=VALUE`` item (a list value in
    brackets) overrides the one before.

        >>> split_models("timm:resnet50,hf:gpt2,n_layer=6,n_embd=256")
        ['timm:resnet50', 'hf:gpt2,n_layer=6,n_embd=256']

    Raises:
        InitsuiteError: an empty list, or an item that is neither.
    """
    out: list[str] = []
    for item in split_items(str(text)):
        if not item:
            continue
        if _sources.is_source(item):
            out.append(item)
        elif "=" in item and out:
            out[-1] += "," + item
        else:
            where = "first item" if not out else f"item after {out[-1]!r}"
            raise InitsuiteError(f"models: {item!r} ({where}) is neither a model "
                                 "(LIBRARY:NAME with LIBRARY one of "
                                 f"{', '.join(_sources.LIBRARIES)}, e.g. hf:gpt2) nor a "
                                 "KEY=VALUE override of the model before it")  # fmt: skip
    if not out:
        raise InitsuiteError(f"models {text!r} names no model, e.g. hf:gpt2,n_layer=6,hf:resnet")
    return out


def _entries(models: Sequence[ZooModel | str] | None) -> tuple[ZooModel, ...]:
    if models is None:
        return MODELS
    if isinstance(models, str):
        raise InitsuiteTypeError(f"models must be a list of model sources or ZooModel, got "
                                 f"the string {models!r}: write [{models!r}]")  # fmt: skip
    items = list(models)
    if not items:
        raise InitsuiteError("models must name at least one model, e.g. ['hf:resnet']")
    out = []
    for m in items:
        if isinstance(m, ZooModel):
            out.append(m)
        elif isinstance(m, str):
            out.append(ZooModel(m.strip()))
        else:
            raise InitsuiteTypeError(f"models: each must be a model source or a ZooModel, got "
                                     f"{type(m).__name__}")  # fmt: skip
    return tuple(out)


def _config(entry: ZooModel, schemes: tuple[str, ...], seed: int,
            max_parameters: int | None) -> ProbeConfig:  # fmt: skip
    """The probe of one zoo model, checked (sources, overrides, sizes, schemes) but not run."""
    extra = entry.schemes
    if extra is None:  # by the kind of input the model takes (a varied base is not limited)
        base = _sources.parse(entry.spec, None if entry.vary else max_parameters)
        extra = EXTRA["image" if base.tokens is None else "text"]
    return ProbeConfig(
        entry.spec, entry.input_shape, schemes=(*schemes, *extra), backward=True, seed=seed,
        batch=BATCH, vary=dict(entry.vary),  # type: ignore[arg-type]  # parsed in __post_init__
        max_parameters=max_parameters,
    )  # fmt: skip


def _check_distinct(configs: Sequence[ProbeConfig]) -> None:
    seen: set[str] = set()
    for cfg in configs:
        for m in cfg.models:
            if m["model"] in seen:
                raise InitsuiteError(f"models: {m['model']!r} is named twice: each model once")
            seen.add(m["model"])


def zoo_study(
    models: Sequence[ZooModel | str] | None = None,
    *,
    schemes: Sequence[str] = SCHEMES,
    seed: int = 0,
    progress: bool | None = None,
    max_parameters: int | None = _sources.MAX_PARAMETERS,
) -> ProbeResult:
    """Probe each model of the zoo as built and under each scheme, forward and backward.

    Every model's probe is checked (its source, overrides, sweep and schemes) before any is
    run, so bad input costs no compute.

    Args:
        models: :class:`ZooModel` entries or model sources (``"timm:resnet50"``: inferred
            input, ``gpt2`` or ``lsuv`` added by kind); None: :data:`MODELS`.
        schemes: the schemes every model gets, after ``as_built`` (:data:`SCHEMES`).
        seed: the seed of every model's draw and of its inputs.
        progress: a progress bar per model (default: when stderr is a terminal).
        max_parameters: refuse a model with more parameters (None: no limit), as
            :func:`~initsuite.studies.probe_factory.probe_factory` does.

    Returns:
        One :class:`~initsuite.results.probe.ProbeResult` of every model (its ``model``
        column) and scheme; ``meta["models"]`` lists each model (its base spec, the values
        it took, input, parameters), ``meta["seconds_by_model"]`` each entry's time,
        ``meta["stand_ins"]`` each model swapped for its stand-in (its library missing), why.

    Raises:
        InitsuiteError: an unknown model, override, scheme or a model named twice; a model
            over a size limit; a model whose forward or backward pass fails (naming the
            scheme).
    """
    chosen = [e.available() for e in _entries(models)]
    entries = tuple(e for e, _ in chosen)
    if isinstance(schemes, str):
        raise InitsuiteTypeError(f"schemes must be a list of scheme specs, got the string "
                                 f"{schemes!r}: write [{schemes!r}]")  # fmt: skip
    common = tuple(schemes)
    seed = validate.seed(seed)
    configs = [_config(e, common, seed, max_parameters) for e in entries]
    _check_distinct(configs)
    started = time.perf_counter()
    results, seconds = [], {}
    for cfg in configs:
        t0 = time.perf_counter()
        results.append(run_probe(cfg, progress=progress))
        seconds[cfg.factory] = round(time.perf_counter() - t0, 3)
    meta = {
        "kind": "probe",
        "study": "zoo",
        "config": _study_config(entries, common, seed),
        "models": [m for r in results for m in r.meta["models"]],
        "seconds_by_model": seconds,
        "stand_ins": [swap for _, swap in chosen if swap is not None],
        "loss": LOSS,
        "environment": environment(["cpu"]),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return ProbeResult.concat(results, meta)


def _study_config(
    entries: Sequence[ZooModel], schemes: tuple[str, ...], seed: int
) -> dict[str, Any]:
    """meta.json's ``config`` of a zoo study: its models, schemes and the fixed settings."""
    return {
        "study": "zoo", "models": [e.to_dict() for e in entries], "schemes": list(schemes),
        "seed": seed, "batch": BATCH, "image_size": IMAGE, "tokens": TOKENS,
        "backward": True, "mode": "train", "device": "cpu", "dtype": "float32",
        "autocasts": ["float32"], "include_embeddings": False,
    }  # fmt: skip

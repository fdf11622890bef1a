"""The coordinate check's models by name (:func:`get_model`): the built-ins of
:mod:`initsuite.studies.coord_models`, a user's factory, and Hugging Face text models,
``hf:MODEL_TYPE[,KEY=VALUE...]``, built from their transformers config at each width and depth
(:mod:`initsuite.studies.sources` checks the source and counts its size).

The width sets the config's ``hidden_size`` (GPT-2's ``n_embd``), with heads of
:data:`~initsuite.studies.coord_models.HEAD_DIM` (``num_attention_heads`` = width // 16, and
as many key/value heads in the default's ratio) and the MLP's ``intermediate_size`` in the
default's ratio to the width; the depth sets ``num_hidden_layers``. The base model
(``AutoModel``) is read out by a Linear of its own, untied, to the vocabulary.

    >>> model = hf_model("hf:gpt2,vocab_size=64,n_positions=32")  # doctest: +SKIP
    >>> model.build(64, 2)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from initsuite import activations as _activations
from initsuite.core import validate
from initsuite.core.errors import InitsuiteError, unknown
from initsuite.core.spec import check_keys, params_of, plain_int, plain_number, split_items
from initsuite.studies.coord_models import HEAD_DIM, MODELS, CoordModel, heads_at
from initsuite.studies.sources import parse

__all__ = ["SET_BY_THE_CHECK", "get_model", "hf_model"]

SET_BY_THE_CHECK = ("hidden_size", "num_attention_heads", "num_key_value_heads",
                    "intermediate_size", "num_hidden_layers")  # fmt: skip
"""The config keys (canonical names) the check sets from the width and depth."""
_SEQ = 16  # the sequence length of the fixed batch unless options name one


class HFReadout(nn.Module):
    """A transformers base model and an untied Linear readout of its last hidden state,
    named ``lm_head`` as the libraries name theirs (so that the roles of its parameters are
    read from the structure of the known blocks)."""

    def __init__(self, model: nn.Module, width: int, vocab: int) -> None:
        super().__init__()
        self.model = model
        self.lm_head = nn.Linear(width, vocab, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.model(input_ids=idx).last_hidden_state)


def _sizes(cls: Any, width: int, depth: int) -> dict[str, Any]:
    """The config keys the check sets at ``width`` and ``depth``, in proportion to the
    default config's where it has them."""
    defaults = cls()
    heads = heads_at(width)
    out: dict[str, Any] = {"hidden_size": width, "num_attention_heads": heads,
                           "num_hidden_layers": depth}  # fmt: skip
    kv, inner = (getattr(defaults, k, None) for k in ("num_key_value_heads", "intermediate_size"))
    if isinstance(kv, int):
        out["num_key_value_heads"] = max(1, heads * kv // defaults.num_attention_heads)
    if isinstance(inner, int):
        out["intermediate_size"] = max(1, inner * width // defaults.hidden_size)
    if "use_cache" in defaults.to_dict():
        out["use_cache"] = False  # a cache is state across calls: every step is a fresh pass
    return out


def _sized(spec: str, cls: Any, width: int, depth: int) -> str:
    """``spec`` with the keys the check sets at ``width`` and ``depth``."""
    sizes = _sizes(cls, width, depth).items()
    return ",".join([spec, *(f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                             for k, v in sizes)])  # fmt: skip


def hf_model(spec: str, options: Mapping[str, Any] | None = None) -> CoordModel:
    """The coordinate check's model of the source ``spec`` (``hf:gpt2,vocab_size=256``);
    ``options``: ``seq``, the fixed batch's sequence length (16, at most the model's).

    Raises:
        InitsuiteError: the source is unknown or invalid, not a text model, or sets a key the
            check sets from the width and depth.
    """
    import transformers

    spec = str(spec).strip()
    head, *items = split_items(spec)
    name, mapping = head.partition(":")[2].strip(), transformers.CONFIG_MAPPING
    # (the lazy mapping's .get reads an empty dict); an unknown name: parse names the nearest
    cls = mapping[name] if name in mapping else None  # noqa: SIM401
    # each key the check sets, by its canonical name and the config's own (GPT-2: n_embd)
    aliases = getattr(cls, "attribute_map", {})
    taken = {*SET_BY_THE_CHECK, *(aliases.get(k, k) for k in SET_BY_THE_CHECK)}
    for item in items:
        key = item.partition("=")[0].strip()
        if cls is not None and key in taken:
            raise InitsuiteError(f"{spec!r}: the coordinate check sets {key!r} from the width "
                                 "and depth: give --widths and --depths instead")  # fmt: skip
    # the library, name, overrides and size checked once, at the smallest width and depth
    source = parse(_sized(spec, cls, HEAD_DIM, 1) if cls is not None else spec)
    if source.tokens is None:
        raise InitsuiteError(f"{spec!r} takes pixels: the coordinate check trains text "
                             "models (token ids)")  # fmt: skip
    unknown = set(options or {}) - {"seq"}
    if unknown:
        raise InitsuiteError(f"{spec!r} has no option {sorted(unknown)[0]!r} (options: seq)")
    seq = (options or {}).get("seq", min(_SEQ, source.sample_shape[0]))
    parsed = plain_int(seq) if isinstance(seq, str) else seq
    seq = validate.count("seq", seq if parsed is None else parsed)
    if seq > source.sample_shape[0]:
        raise InitsuiteError(f"{spec!r}: seq must be in [1, {source.sample_shape[0]}], got {seq}")
    vocab = source.tokens

    def factory(width: int, depth: int, **_: Any) -> nn.Module:
        return HFReadout(parse(_sized(spec, cls, width, depth)).build(), width, vocab)

    return CoordModel(spec, factory, 2, 1, True,
                      {"vocab": vocab, "seq": seq}, attention=True)  # fmt: skip


def get_model(name: str, options: Mapping[str, Any] | None = None) -> CoordModel:
    """The coordinate check's model ``name``: a built-in (:data:`MODELS`), a text model of
    Hugging Face (``hf:gpt2,vocab_size=256``: :func:`hf_model`), or a
    user factory ``package.module:function`` called as ``function(width, depth, **options)``
    (its model takes float features of size ``options["inputs"]``, 64 by default, and
    returns logits).

    Raises:
        InitsuiteError: an unknown name, with the nearest and the choices.
    """
    options = dict(options or {})
    if not isinstance(name, str):
        raise InitsuiteError(f"model must be a name ({', '.join(MODELS)}) or "
                             f"'package.module:function', got {type(name).__name__}")  # fmt: skip
    if name in MODELS:
        factory, depth, least, tokens = MODELS[name]
        checked = _options(name, factory, options)
        return CoordModel(name, factory, depth, least, tokens, checked, attention=tokens)
    if name.startswith("hf:"):
        return hf_model(name, options)
    if name.partition(":")[0] in ("timm", "torchvision"):
        raise InitsuiteError(f"model {name!r}: the coordinate check sets a text model's width, "
                             "of an hf: source (hf:gpt2, hf:bert, hf:llama); a vision model "
                             "has no width key")  # fmt: skip
    if ":" in name:
        from initsuite.studies.user_code import load_factory

        # the user's function takes what it takes: numbers written as text read as numbers
        plain = {k: _number(v) for k, v in options.items()}
        return CoordModel(name, load_factory(name), 3, 1, False, plain, user=True)
    raise InitsuiteError(unknown("model", name, [*MODELS, "hf:MODEL_TYPE",
                                                 "package.module:function"]))  # fmt: skip


def _number(value: Any) -> Any:
    number = plain_number(value) if isinstance(value, str) else None
    return value if number is None else number


def _options(name: str, factory: Callable[..., nn.Module], options: Mapping[str, Any]
             ) -> dict[str, Any]:  # fmt: skip
    """A built-in model's ``options`` checked against its factory's keywords and types (a
    size >= 1, a known activation)."""
    params = params_of(factory, skip=("depth",))
    owner = f"model {name!r}"
    check_keys(owner, options, params)
    out = {k: params[k].convert(v, owner) for k, v in options.items()}
    for key, value in out.items():
        if key == "activation":
            _activations.get(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            validate.count(f"{owner} option {key}", value)
    return out

r"""Framework conventions: the law each framework gives each layer's parameters, as data.

A *convention* is a framework's whole-model default: for each layer type (``linear``,
``conv2d``, ``embedding``, ``layer_norm``, ``multihead_attention``, ...) and parameter
(``weight``/``bias``, ``scale``/``shift`` of a norm, the attention projections) the law of its
starting values, written as a registry scheme spec **in torch's layout** (a Flax Dense kernel
is (in, out), torch's weight (out, in): the spec is the one that gives torch's tensor Flax's
distribution). Two laws are not registry schemes, because a bias has no fans of its own:

* ``fan_uniform:mode=fan_in`` (or ``fan_out``): U(±1/√fan) with the fan of the layer's
  weight (torch's default bias, :func:`~initsuite.schemes.default_bias_`);
* ``None``: the framework has no such parameter (no counterpart), and ``apply`` leaves it.

``per_projection`` marks a MultiheadAttention ``in_proj_weight`` law that the framework applies
to each of the q, k, v projections as a layer of its own (torch applies xavier_uniform to the
stacked (3E, E) matrix, whose fan_out is 3E).

    >>> from initsuite.schemes import conventions
    >>> conventions.rule("flax", "linear", "weight").law
    'variance_scaling:scale=1,mode=fan_in,distribution=truncated_normal'

This module holds data and small lookups only; the table is
:func:`initsuite.conventions`, the re-initialisation
:func:`initsuite.apply`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from initsuite.core.checked import NOT_CHECKED_LIVE, checked
from initsuite.core.errors import InitsuiteError, unknown

__all__ = [
    "COLUMNS", "CONVENTIONS", "FAN_UNIFORM", "LAYERS", "PARAMETERS", "Convention", "Rule",
    "check_layer", "conventions", "diff", "get", "law_summary", "names", "rule",
]  # fmt: skip

LAYERS: tuple[str, ...] = (
    "linear", "conv1d", "conv2d", "conv3d", "conv_transpose", "embedding", "layer_norm",
    "batch_norm", "group_norm", "multihead_attention",
)  # fmt: skip
"""The layer types a convention covers (``conv_transpose``: ConvTranspose1d/2d/3d)."""

_DENSE = ("weight", "bias")
_NORM = ("scale", "shift")
PARAMETERS: Mapping[str, tuple[str, ...]] = {
    "linear": _DENSE, "conv1d": _DENSE, "conv2d": _DENSE, "conv3d": _DENSE,
    "conv_transpose": _DENSE, "embedding": ("weight",), "layer_norm": _NORM,
    "batch_norm": _NORM, "group_norm": _NORM,
    "multihead_attention": ("in_proj_weight", "in_proj_bias", "out_proj_weight",
                            "out_proj_bias"),
}  # fmt: skip
"""Each layer type's parameters, in draw order."""

FAN_UNIFORM = "fan_uniform"
"""The bias law U(±1/√fan) with the layer weight's fan (``fan_uniform:mode=fan_in``)."""

# laws written once, used by several conventions
_TORCH_W = "torch_default"  # kaiming_uniform a=√5: U(±1/√fan_in)
_TORCH_B = "fan_uniform:mode=fan_in"
_LECUN_TN = "variance_scaling:scale=1,mode=fan_in,distribution=truncated_normal"
_TIMM = "trunc_normal:std=0.02"  # timm.layers.trunc_normal_: absolute cut-offs ±2 = ±100σ
_HF = "normal:std=0.02"  # config.initializer_range, 0.02 for BERT and GPT-2


@dataclass(frozen=True)
class Rule:
    """One parameter's law under a convention.

    Attributes:
        law: a registry spec in torch's layout, ``fan_uniform:mode=...``, or None (the
            framework has no such parameter).
        per_projection: the law is applied to each (E, E) block of MultiheadAttention's
            stacked ``in_proj_weight`` (the framework's q, k, v are separate layers).
        note: what a reader porting a model should know (axis conventions, exceptions).
        zero_padding: an embedding's ``padding_idx`` row is zeroed after the draw.
    """

    law: str | None
    per_projection: bool = False
    note: str = ""
    zero_padding: bool = False


@dataclass(frozen=True)
class Convention:
    """A framework's layer defaults.

    Attributes:
        name: the convention's name (``torch``, ``flax``, ...).
        framework: the library and module it describes.
        checked: the version its laws were checked against live, or ``"not checked live"``.
        source: a link to the source the laws are read from.
        rules: (layer type, parameter) -> :class:`Rule`, every pair of :data:`PARAMETERS`.
        residual: ``(name, std)``: the residual-branch output projections (those of the
            model's known residual blocks, or else the weights whose qualified name ends in
            ``name``: :func:`initsuite.engine.roles.residual_projections`) are drawn
            N(0, std²/N), N the model's residual projections (GPT-2's ``c_proj``:
            ``2·config.n_layer``); None: no such rule.
    """

    name: str
    framework: str
    checked: str
    source: str
    rules: Mapping[tuple[str, str], Rule] = field(repr=False)
    residual: tuple[str, float] | None = None


def _dense(weight: str, bias: str | None, note: str = "") -> dict[str, Rule]:
    return {"weight": Rule(weight, note=note), "bias": Rule(bias)}


def _norms(scale: str | None = "ones", shift: str | None = "zeros") -> dict[str, Rule]:
    return {"scale": Rule(scale), "shift": Rule(shift)}


def _mha(in_w: str | None, out_w: str | None, bias: str | None = "zeros", *,
         per_projection: bool, note: str = "") -> dict[str, Rule]:  # fmt: skip
    return {"in_proj_weight": Rule(in_w, per_projection, note), "in_proj_bias": Rule(bias),
            "out_proj_weight": Rule(out_w), "out_proj_bias": Rule(bias)}  # fmt: skip


_TORCH_LAYERS: dict[str, dict[str, Rule]] = {
    "linear": _dense(_TORCH_W, _TORCH_B),
    **{c: _dense(_TORCH_W, _TORCH_B) for c in ("conv1d", "conv2d", "conv3d")},
    "conv_transpose": _dense(_TORCH_W, _TORCH_B,
                             "fan_in of the (in, out/groups, k…) weight: out/groups·k"),
    "embedding": {"weight": Rule("normal", note="padding row zeroed", zero_padding=True)},
    "layer_norm": _norms(), "batch_norm": _norms(), "group_norm": _norms(),
    "multihead_attention": _mha("xavier_uniform", _TORCH_W, per_projection=False,
                                note="on the stacked (3E, E) matrix: Var = 1/(2E)"),
}  # fmt: skip


def _build(layers: Mapping[str, Mapping[str, Rule]]) -> dict[tuple[str, str], Rule]:
    out = {}
    for layer in LAYERS:
        for param in PARAMETERS[layer]:
            out[layer, param] = layers[layer][param]
    return out


def _over_torch(**layers: dict[str, Rule]) -> dict[tuple[str, str], Rule]:
    """torch's defaults with ``layers`` replaced: timm and transformers build on torch, and a
    layer their init functions skip keeps torch's ``reset_parameters``."""
    return _build({**_TORCH_LAYERS, **layers})


_FLAX_LAYERS: dict[str, dict[str, Rule]] = {
    "linear": _dense(_LECUN_TN, "zeros", "Dense kernel (in, out): fan_in = in"),
    **{c: _dense(_LECUN_TN, "zeros", "kernel (k…, in, out): fan_in = in·k")
       for c in ("conv1d", "conv2d", "conv3d")},
    "conv_transpose": _dense(
        "variance_scaling:scale=1,mode=fan_out,distribution=truncated_normal", "zeros",
        "kernel (k…, in, out): Flax's fan_in in·k is the fan_out of torch's (in, out, k…)"),
    "embedding": {"weight": Rule(
        "variance_scaling:scale=1,mode=fan_in,distribution=normal",
        note="variance_scaling(1, fan_in, normal, out_axis=0) on (num, features): Var = "
             "1/features, torch's fan_in of (num, dim)")},
    "layer_norm": _norms(), "batch_norm": _norms(), "group_norm": _norms(),
    "multihead_attention": _mha(_LECUN_TN, _LECUN_TN, per_projection=True,
                                note="DenseGeneral q, k, v: fan_in = E"),
}  # fmt: skip

_KERAS_LAYERS: dict[str, dict[str, Rule]] = {
    "linear": _dense("xavier_uniform", "zeros"),
    **{c: _dense("xavier_uniform", "zeros") for c in ("conv1d", "conv2d", "conv3d")},
    "conv_transpose": _dense("xavier_uniform", "zeros", "glorot: fan_in, fan_out symmetric"),
    "embedding": {"weight": Rule("uniform:a=-0.05,b=0.05", note="RandomUniform(-0.05, 0.05)")},
    "layer_norm": _norms(), "batch_norm": _norms(), "group_norm": _norms(),
    "multihead_attention": _mha(
        "xavier_uniform", "xavier_uniform", per_projection=True,
        note="glorot_uniform on EinsumDense kernels (E, heads, head_dim), fans over the "
             "input and the output axes (E and heads·head_dim = E): Glorot on each (E, E) "
             "projection"),
}  # fmt: skip

_FLUX_LAYERS: dict[str, dict[str, Rule]] = {
    "linear": _dense("xavier_uniform", "zeros"),
    **{c: _dense("xavier_uniform", "zeros") for c in ("conv1d", "conv2d", "conv3d")},
    "conv_transpose": _dense("xavier_uniform", "zeros"),
    "embedding": {"weight": Rule("normal", note="randn32: N(0, 1)")},
    "layer_norm": _norms(), "batch_norm": _norms(), "group_norm": _norms(),
    "multihead_attention": _mha("xavier_uniform", "xavier_uniform", per_projection=True,
                                note="Dense q, k, v; bias=false (zero is the same map)"),
}  # fmt: skip

_LUA_CONV_T = "kaiming_uniform:a=2.23606797749979,mode=fan_out"  # a=√5: U(±1/√fan_out)
_LUA_LAYERS: dict[str, dict[str, Rule]] = {
    **_TORCH_LAYERS,
    "conv_transpose": {
        "weight": Rule(_LUA_CONV_T, note="SpatialFullConvolution: 1/√(nInputPlane·k), "
                                         "torch's fan_out of the (in, out, k…) weight"),
        "bias": Rule("fan_uniform:mode=fan_out")},
    "layer_norm": _norms(None, None), "group_norm": _norms(None, None),
    "batch_norm": {"scale": Rule("uniform", note="BatchNormalization:reset weight:uniform()"),
                   "shift": Rule("zeros")},
    "multihead_attention": _mha(None, None, None, per_projection=False, note="no such layer"),
}  # fmt: skip

_TIMM_SRC = "https://github.com/huggingface/pytorch-image-models/blob/main/timm/models/"
_HF_SRC = "https://github.com/huggingface/transformers/blob/main/src/transformers/"
_HF_CONV = {c: _dense(_HF, "zeros") for c in ("conv1d", "conv2d", "conv3d")}
_HF_MHA = _mha("xavier_uniform", _HF, per_projection=False,
               note="torch's _reset_parameters; out_proj is a Linear")  # fmt: skip
_HF_EMB = {"weight": Rule(_HF, note="padding row zeroed", zero_padding=True)}

CONVENTIONS: Mapping[str, Convention] = {
    c.name: c for c in (
        Convention("torch", "PyTorch torch.nn (reset_parameters)", checked("torch"),
                   "https://github.com/pytorch/pytorch/blob/main/torch/nn/modules/linear.py",
                   _build(_TORCH_LAYERS)),
        Convention("flax", "Flax linen and nnx (Dense, Conv, ConvTranspose, Embed, norms, "
                   "MultiHeadDotProductAttention)", checked("flax", "jax"),
                   "https://github.com/google/flax/blob/main/flax/linen/linear.py",
                   _build(_FLAX_LAYERS)),
        Convention("keras", "Keras 3 layers (torch backend)", checked("keras"),
                   "https://github.com/keras-team/keras/blob/master/keras/src/layers/core/dense.py",
                   _build(_KERAS_LAYERS)),
        Convention("timm_vit", "timm VisionTransformer init_weights_vit_timm",
                   NOT_CHECKED_LIVE, _TIMM_SRC + "vision_transformer.py",
                   _over_torch(linear=_dense(_TIMM, "zeros"),
                               multihead_attention=_mha("xavier_uniform", _TIMM,
                                                        per_projection=False))),
        Convention("timm_resnet", "timm ResNet init_weights", NOT_CHECKED_LIVE,
                   _TIMM_SRC + "resnet.py",
                   _over_torch(conv2d=_dense("kaiming_normal:mode=fan_out,nonlinearity=relu",
                                             _TORCH_B))),
        Convention("timm_convnext", "timm ConvNeXt _init_weights", NOT_CHECKED_LIVE,
                   _TIMM_SRC + "convnext.py",
                   _over_torch(linear=_dense(_TIMM, "zeros"), conv2d=_dense(_TIMM, "zeros"))),
        Convention("hf_bert", "transformers PreTrainedModel._init_weights (BERT)",
                   checked("transformers"), _HF_SRC + "modeling_utils.py",
                   _over_torch(linear=_dense(_HF, "zeros"), **_HF_CONV,
                               conv_transpose=_dense(_HF, "zeros", "1d and 2d; 3d keeps torch's"),
                               embedding=_HF_EMB, multihead_attention=_HF_MHA)),
        Convention("hf_gpt2", "transformers GPT2PreTrainedModel._init_weights",
                   checked("transformers"), _HF_SRC + "models/gpt2/modeling_gpt2.py",
                   _over_torch(linear=_dense(
                       _HF, "zeros", "Conv1D too; GPT-2's residual projections c_proj: "
                       "N(0, 0.02²/(2·n_layer))"), **_HF_CONV,
                       conv_transpose=_dense(_HF, "zeros", "1d and 2d; 3d keeps torch's"),
                       embedding=_HF_EMB, multihead_attention=_HF_MHA),
                   residual=("c_proj.weight", 0.02)),
        Convention("lua_torch", "Lua Torch torch/nn reset()", NOT_CHECKED_LIVE,
                   "https://github.com/torch/nn/blob/master/Linear.lua", _build(_LUA_LAYERS)),
        Convention("flux", "Flux.jl layers", NOT_CHECKED_LIVE,
                   "https://github.com/FluxML/Flux.jl/blob/master/src/layers/basic.jl",
                   _build(_FLUX_LAYERS)),
    )
}  # fmt: skip
"""Every convention, by name."""


def names() -> list[str]:
    """The conventions' names, in table order."""
    return list(CONVENTIONS)


def get(name: str) -> Convention:
    """The convention ``name``; an unknown name raises, listing the valid ones."""
    if not isinstance(name, str) or name not in CONVENTIONS:
        raise InitsuiteError(unknown("convention", name, CONVENTIONS)) from None
    return CONVENTIONS[name]


def check_layer(layer: str) -> str:
    """``layer`` if it is a layer type, else one line listing them."""
    if layer not in LAYERS:
        raise InitsuiteError(unknown("layer type", layer, LAYERS)) from None
    return layer


def rule(convention: str, layer: str, parameter: str) -> Rule:
    """The :class:`Rule` of ``parameter`` of ``layer`` under ``convention``."""
    conv = get(convention)
    params = PARAMETERS[check_layer(layer)]
    if parameter not in params:
        raise InitsuiteError(unknown(f"parameter of {layer}", parameter, params)) from None
    return conv.rules[layer, parameter]


# --- the table -------------------------------------------------------------------------------

COLUMNS: tuple[str, ...] = (
    "convention", "layer", "parameter", "law", "distribution", "variance_fan_in", "variance",
    "truncation", "per_projection", "note", "framework", "checked", "source",
)  # fmt: skip
"""The columns of :func:`conventions`: ``variance_fan_in`` is σ²·fan_in of a square layer
(fan_in = fan_out) where that does not depend on the width (1 for LeCun, 1/3 for torch's
default), ``variance`` σ² where it is a fixed number (normal std 0.02: 4e-4), each NaN where
undefined."""

_SQUARE = ((64, 64), (256, 256))  # two widths: σ²·fan_in must agree to be a unit of 1/fan_in


def law_summary(law: str | None, stacked: bool = False) -> dict[str, Any]:
    """distribution, variance_fan_in, variance and truncation of one law (NaN where
    undefined), from the registry's own variance formulas; ``stacked``: on
    MultiheadAttention's (3E, E) ``in_proj_weight`` drawn as one matrix."""
    nan = float("nan")
    if law is None:
        return {"distribution": "none", "variance_fan_in": nan, "variance": nan,
                "truncation": ""}  # fmt: skip
    from initsuite.core.spec import parse_spec
    from initsuite.schemes import get as get_scheme

    name, raw = parse_spec(law, kind="law")
    if name == FAN_UNIFORM:
        mode = raw.get("mode", "fan_in")  # a square layer: fan_out = fan_in
        return {"distribution": "uniform", "variance_fan_in": 1 / 3, "variance": nan,
                "truncation": f"±1/√{mode}"}  # fmt: skip
    scheme = get_scheme(law)
    params = scheme.resolve(None)
    family = str(params.get("distribution", scheme.info.family))
    shapes = [(3 * s[0], s[1]) for s in _SQUARE] if stacked else _SQUARE
    per_fan = [(scheme.variance(s) or 0.0) * s[1] for s in shapes]
    var = [scheme.variance(s) or 0.0 for s in shapes]
    if family == "constant":
        fixed = 0.0
    else:
        fixed = var[0] if abs(var[0] - var[1]) <= 1e-12 * max(var) else nan
    scaled = per_fan[0] if abs(per_fan[0] - per_fan[1]) <= 1e-9 * max(per_fan) else nan
    if family == "constant":
        scaled, trunc = 0.0, "constant"
    elif family == "truncated_normal" and name == "variance_scaling":
        trunc = "±2σ (std rescaled by 0.8796)"
    elif family == "truncated_normal":
        trunc = f"[{params.get('a', -2.0)}, {params.get('b', 2.0)}] absolute"
    elif family == "uniform":
        trunc = "bounded"
    elif family == "normal":
        trunc = "none"
    else:
        raise InitsuiteError(f"law {law!r}: unknown distribution family {family!r}")
    return {"distribution": family, "variance_fan_in": scaled, "variance": fixed,
            "truncation": trunc}  # fmt: skip


def conventions(framework: str | list[str] | None = None, *, layer: str | None = None) -> Any:
    """A tidy DataFrame: convention × layer type × parameter → law, distribution, variance
    (in units of 1/fan_in, or fixed), truncation, the version checked and the source.

    Args:
        framework: a convention name or a list of them (default: every convention).
        layer: keep one layer type (default: all).

    Raises:
        InitsuiteError: an unknown convention or layer type (one line naming the valid ones).

    Example::

        >>> initsuite.conventions("flax", layer="linear").set_index("parameter")["law"].to_dict()
        {'weight': 'variance_scaling:scale=1,mode=fan_in,distribution=truncated_normal',
         'bias': 'zeros'}
    """
    import pandas as pd

    chosen = names() if framework is None else (
        [framework] if isinstance(framework, str) else list(framework))  # fmt: skip
    convs = [get(c) for c in chosen]  # every name checked before any row is built
    layers = LAYERS if layer is None else (check_layer(layer),)
    rows = []
    for conv in convs:
        for lay in layers:
            for param in PARAMETERS[lay]:
                r = conv.rules[lay, param]
                stacked = param == "in_proj_weight" and not r.per_projection
                rows.append({"convention": conv.name, "layer": lay, "parameter": param,
                             "law": r.law or "", **law_summary(r.law, stacked),
                             "per_projection": r.per_projection, "note": r.note,
                             "framework": conv.framework, "checked": conv.checked,
                             "source": conv.source})  # fmt: skip
    return pd.DataFrame(rows, columns=list(COLUMNS))


def diff(a: str, b: str, layer: str | None = None) -> Any:
    """The (layer, parameter) rows where conventions ``a`` and ``b`` give different laws,
    side by side: ``law_<a>``, ``law_<b>``, and the variance of each in units of 1/fan_in.

    Raises:
        InitsuiteError: an unknown convention or layer type.
    """
    get(a), get(b)
    if a == b:
        raise InitsuiteError(f"diff needs two different conventions, got {a!r} twice")
    keys = ["layer", "parameter"]
    cols = ["law", "variance_fan_in", "variance", "per_projection"]
    left = conventions(a, layer=layer)[keys + cols]
    right = conventions(b, layer=layer)[keys + cols]
    both = left.merge(right, on=keys, suffixes=(f"_{a}", f"_{b}"))
    differs = (both[f"law_{a}"] != both[f"law_{b}"]) | (
        both[f"per_projection_{a}"] != both[f"per_projection_{b}"])  # fmt: skip
    return both[differs].reset_index(drop=True)

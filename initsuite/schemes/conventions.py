r"""Framework conventions: the law each framework gives each layer's parameters, as data.

A *convention* is a framework's whole-model default: for each layer type (``linear``,
``conv2d``, ``embedding``, ``layer_norm``, ``multihead_attention``, ...) and parameter
(``weight``/``bias``, ``scale``/``shift`` of a norm, the attention projections) the law of its
starting values, written as a registry scheme spec **in torch's layout** (a Flax Dense kernel
is (in, out), torch's weight (out, in): the spec is the one that gives torch's tensor Flax's
distribution). Three laws are not registry schemes (a bias has no fans of its own, and an
LSTM's bound comes from its hidden size):

* ``fan_uniform:mode=fan_in`` (or ``fan_out``): U(±1/√fan) with the fan of the layer's
  weight (torch's default bias, :func:`~initsuite.schemes.default_bias_`);
* ``hidden_uniform``: U(±1/√hidden_size) of the recurrent layer (torch's LSTM, weights and
  biases alike);
* ``None``: the framework has no such parameter (no counterpart), or this table does not
  describe it, and ``apply`` leaves it (listing it in ``.untouched``).

``per_projection`` marks a MultiheadAttention ``in_proj_weight`` law that the framework applies
to each of the q, k, v projections as a layer of its own (torch applies xavier_uniform to the
stacked (3E, E) matrix, whose fan_out is 3E).

    >>> from initsuite.schemes import conventions
    >>> conventions.rule("flax", "linear", "weight").law
    'variance_scaling:scale=1,mode=fan_in,distribution=truncated_normal'

This module holds data and small lookups only; the table is
:func:`initsuite.conventions` (:mod:`initsuite.schemes.convention_table`), the
re-initialisation :func:`initsuite.apply`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from initsuite.core.checked import NOT_CHECKED_LIVE, checked
from initsuite.core.errors import InitsuiteError, unknown

__all__ = [
    "CONVENTIONS", "FAN_UNIFORM", "HIDDEN_UNIFORM", "LAYERS", "NOT_CONVENTIONS", "PARAMETERS",
    "Convention", "Rule", "check_layer", "get", "names", "rule",
]  # fmt: skip

_CONV_T = ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
LAYERS: tuple[str, ...] = (
    "linear", "conv1d", "conv2d", "conv3d", *_CONV_T, "embedding", "layer_norm",
    "batch_norm", "group_norm", "multihead_attention", "lstm",
)  # fmt: skip
"""The layer types a convention covers (``lstm``: ``nn.LSTM``; its ``weight`` is every
``weight_*`` matrix, its ``bias`` every ``bias_*``)."""

_DENSE = ("weight", "bias")
_NORM = ("scale", "shift")
PARAMETERS: Mapping[str, tuple[str, ...]] = {
    "linear": _DENSE, "conv1d": _DENSE, "conv2d": _DENSE, "conv3d": _DENSE,
    **dict.fromkeys(_CONV_T, _DENSE), "lstm": _DENSE, "embedding": ("weight",),
    "layer_norm": _NORM, "batch_norm": _NORM, "group_norm": _NORM,
    "multihead_attention": ("in_proj_weight", "in_proj_bias", "out_proj_weight",
                            "out_proj_bias"),
}  # fmt: skip
"""Each layer type's parameters, in draw order."""

FAN_UNIFORM = "fan_uniform"
"""The bias law U(±1/√fan) with the layer weight's fan (``fan_uniform:mode=fan_in``)."""
HIDDEN_UNIFORM = "hidden_uniform"
"""U(±1/√hidden_size) of a recurrent layer: torch's ``nn.LSTM.reset_parameters``."""

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
        last_norm: the law of the scale of the norm that closes each residual branch of the
            model's known blocks (:func:`initsuite.engine.roles.last_norms`; timm's
            ``zero_init_last`` draws ``zeros``); None: no such rule.
    """

    name: str
    framework: str
    checked: str
    source: str
    rules: Mapping[tuple[str, str], Rule] = field(repr=False)
    residual: tuple[str, float] | None = None
    last_norm: str | None = None


def _dense(weight: str | None, bias: str | None, note: str = "") -> dict[str, Rule]:
    return {"weight": Rule(weight, note=note), "bias": Rule(bias)}


def _norms(scale: str | None = "ones", shift: str | None = "zeros",
           note: str = "") -> dict[str, Rule]:  # fmt: skip
    return {"scale": Rule(scale, note=note), "shift": Rule(shift)}


def _mha(in_w: str | None, out_w: str | None, bias: str | None = "zeros", *,
         per_projection: bool, note: str = "") -> dict[str, Rule]:  # fmt: skip
    return {"in_proj_weight": Rule(in_w, per_projection, note), "in_proj_bias": Rule(bias),
            "out_proj_weight": Rule(out_w), "out_proj_bias": Rule(bias)}  # fmt: skip


def _each(layers: tuple[str, ...], rules: dict[str, Rule]) -> dict[str, dict[str, Rule]]:
    return dict.fromkeys(layers, rules)


_LSTM_NONE = dict.fromkeys(_DENSE, Rule(None, note="this convention does not describe LSTM"))
_TORCH_LAYERS: dict[str, dict[str, Rule]] = {
    "linear": _dense(_TORCH_W, _TORCH_B),
    **_each(("conv1d", "conv2d", "conv3d"), _dense(_TORCH_W, _TORCH_B)),
    **_each(_CONV_T, _dense(_TORCH_W, _TORCH_B,
                            "fan_in of the (in, out/groups, k…) weight: out/groups·k")),
    "lstm": _dense(HIDDEN_UNIFORM, HIDDEN_UNIFORM, "weight_ih, weight_hh, weight_hr"),
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
    **_each(_CONV_T, _dense(
        "variance_scaling:scale=1,mode=fan_out,distribution=truncated_normal", "zeros",
        "kernel (k…, in, out): Flax's fan_in in·k is the fan_out of torch's (in, out, k…)")),
    "lstm": _LSTM_NONE,
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
    **_each(_CONV_T, _dense("xavier_uniform", "zeros", "glorot: fan_in, fan_out symmetric")),
    "lstm": _LSTM_NONE,
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
    **_each(_CONV_T, _dense("xavier_uniform", "zeros")), "lstm": _LSTM_NONE,
    "embedding": {"weight": Rule("normal", note="randn32: N(0, 1)")},
    "layer_norm": _norms(), "batch_norm": _norms(), "group_norm": _norms(),
    "multihead_attention": _mha("xavier_uniform", "xavier_uniform", per_projection=True,
                                note="Dense q, k, v; bias=false (zero is the same map)"),
}  # fmt: skip

_LUA_CONV_T = "kaiming_uniform:a=2.23606797749979,mode=fan_out"  # a=√5: U(±1/√fan_out)
_LUA_LAYERS: dict[str, dict[str, Rule]] = {
    **_TORCH_LAYERS,
    **_each(_CONV_T, {
        "weight": Rule(_LUA_CONV_T, note="SpatialFullConvolution: 1/√(nInputPlane·k), "
                                         "torch's fan_out of the (in, out, k…) weight"),
        "bias": Rule("fan_uniform:mode=fan_out")}),
    "embedding": {"weight": Rule("normal", note="LookupTable:reset: N(0, 1), every row")},
    "lstm": dict.fromkeys(_DENSE, Rule(None, note="no LSTM in torch/nn")),
    "layer_norm": _norms(None, None), "group_norm": _norms(None, None),
    "batch_norm": {"scale": Rule("uniform", note="BatchNormalization:reset weight:uniform()"),
                   "shift": Rule("zeros")},
    "multihead_attention": _mha(None, None, None, per_projection=False, note="no such layer"),
}  # fmt: skip

_TIMM_SRC = "https://github.com/huggingface/pytorch-image-models/blob/main/timm/models/"
_HF_SRC = "https://github.com/huggingface/transformers/blob/main/src/transformers/"
# PreTrainedModel._init_weights, which BERT's and GPT-2's call first: Linear, Conv1d/2d/3d and
# ConvTranspose1d/2d (not 3d: it keeps torch's), LSTM, Embedding, MultiheadAttention, norms
_HF_CONV = {
    **_each(
        ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d"), _dense(_HF, "zeros")
    ),
    "lstm": _dense("xavier_uniform", "zeros", "each weight_* matrix as one layer"),
}
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
                   checked("timm"), _TIMM_SRC + "vision_transformer.py",
                   _over_torch(linear=_dense(_TIMM, "zeros"),
                               multihead_attention=_mha("xavier_uniform", _TIMM,
                                                        per_projection=False))),
        Convention("timm_resnet", "timm ResNet init_weights", checked("timm"),
                   _TIMM_SRC + "resnet.py",
                   _over_torch(conv2d=_dense("kaiming_normal:mode=fan_out,nonlinearity=relu",
                                             _TORCH_B),
                               batch_norm=_norms(note="the last of each block: scale 0 "
                                                      "(zero_init_last)")),
                   last_norm="zeros"),
        Convention("timm_convnext", "timm ConvNeXt _init_weights", checked("timm"),
                   _TIMM_SRC + "convnext.py",
                   _over_torch(linear=_dense(_TIMM, "zeros"), conv2d=_dense(_TIMM, "zeros"))),
        Convention("hf_bert", "transformers PreTrainedModel._init_weights (BERT)",
                   checked("transformers"), _HF_SRC + "modeling_utils.py",
                   _over_torch(linear=_dense(_HF, "zeros"), **_HF_CONV,
                               embedding=_HF_EMB, multihead_attention=_HF_MHA)),
        Convention("hf_gpt2", "transformers GPT2PreTrainedModel._init_weights",
                   checked("transformers"), _HF_SRC + "models/gpt2/modeling_gpt2.py",
                   _over_torch(linear=_dense(
                       _HF, "zeros", "Conv1D too; GPT-2's residual projections c_proj: "
                       "N(0, 0.02²/(2·n_layer))"), **_HF_CONV,
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


NOT_CONVENTIONS: Mapping[str, str] = {
    "jax": "'jax' is not a convention: JAX has no layers, only initializers (the jax: schemes, "
           "e.g. jax:glorot_uniform; initsuite schemes 'jax:*' lists them); Flax's layer "
           "defaults are the convention 'flax'",
}  # fmt: skip
"""Names a user may take for a convention, with the one line that says why they are not."""


def get(name: str) -> Convention:
    """The convention ``name``; an unknown name raises, listing the valid ones (or saying
    why it is not one: :data:`NOT_CONVENTIONS`)."""
    if isinstance(name, str) and name in NOT_CONVENTIONS:
        raise InitsuiteError(NOT_CONVENTIONS[name])
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

r"""Re-initialise a torch model with another framework's layer defaults (a *convention*).

:func:`apply_convention` walks the model's modules, maps each to a layer type of
:mod:`initsuite.schemes.conventions` (``nn.Linear`` and Hugging Face's ``Conv1D`` →
``linear``, ``nn.ConvTranspose2d`` → ``conv_transpose2d``, a norm's ``weight``/``bias`` →
``scale``/``shift``, an ``nn.LSTM``'s ``weight_*``/``bias_*`` → ``weight``/``bias``, ...)
and draws each parameter from the convention's law, in module order.
:func:`initsuite.apply` calls it when its ``scheme`` is a convention name::

    >>> net = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.LayerNorm(4))
    >>> drawn = initsuite.apply(net, "flax", generator=torch.Generator().manual_seed(0))
    >>> drawn, drawn.untouched  # what it drew; parameters with no counterpart: {name: why}
    (['0.weight', '0.bias', '1.weight', '1.bias'], {})
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from initsuite import schemes as _schemes
from initsuite.core.errors import InitsuiteError
from initsuite.core.spec import parse_spec
from initsuite.engine.roles import is_transposed_linear, last_norms, residual_projections
from initsuite.schemes import conventions as _conv
from initsuite.schemes.common import fans

__all__ = ["Applied", "apply_convention", "layer_type"]

Pick = Callable[[torch.device], torch.Generator]
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


class Applied(list[str]):
    """The qualified names of the parameters drawn, in draw order, with ``untouched``:
    ``{name: why}`` of every parameter the convention has no law for (left as it was)."""

    untouched: dict[str, str]


def layer_type(m: nn.Module) -> str | None:
    """The convention layer type of module ``m``, or None when no convention covers it.
    LayerNorms of other libraries (``BertLayerNorm``, timm's ``LayerNorm2d``) are matched by
    class name, as transformers' own ``_init_weights`` does."""
    if isinstance(m, nn.Linear) or is_transposed_linear(m):
        return "linear"
    for k, (conv, conv_t) in enumerate(zip(_CONVS, _CONV_T, strict=True), start=1):
        if isinstance(m, conv):
            return f"conv{k}d"
        if isinstance(m, conv_t):
            return f"conv_transpose{k}d"
    if isinstance(m, (nn.Embedding, nn.EmbeddingBag)):
        return "embedding"
    if isinstance(m, nn.modules.batchnorm._NormBase):
        return "batch_norm"
    if isinstance(m, nn.GroupNorm):
        return "group_norm"
    if isinstance(m, nn.LayerNorm) or "LayerNorm" in type(m).__name__:
        return "layer_norm"
    if isinstance(m, nn.MultiheadAttention):
        return "multihead_attention"
    if isinstance(m, nn.LSTM):  # GRU and RNN: no convention describes them
        return "lstm"
    return None


_NORM_PARAM = {"weight": "scale", "bias": "shift"}


def _parameters(m: nn.Module, layer: str) -> Iterator[tuple[str, str, nn.Module]]:
    """(torch parameter name, convention parameter, owner module) of a module of ``layer``."""
    if layer == "multihead_attention":
        if not isinstance(m, nn.MultiheadAttention):
            raise InitsuiteError(f"{type(m).__name__} is not a MultiheadAttention")
        if m.in_proj_weight is not None:
            yield "in_proj_weight", "in_proj_weight", m
        else:
            for p in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                yield p, "in_proj_weight", m
        yield "in_proj_bias", "in_proj_bias", m
        yield "out_proj.weight", "out_proj_weight", m.out_proj
        yield "out_proj.bias", "out_proj_bias", m.out_proj
    elif layer in ("layer_norm", "batch_norm", "group_norm"):
        for p in ("weight", "bias"):
            yield p, _NORM_PARAM[p], m
    elif layer == "lstm":
        for p, _ in m.named_parameters(recurse=False):
            yield p, p.partition("_")[0], m  # weight_ih_l0 -> weight, bias_hh_l0 -> bias
    else:
        yield from ((p, p, m) for p in _conv.PARAMETERS[layer])


def _weight_shape(m: nn.Module) -> tuple[int, ...]:
    """The layer's weight shape in torch's (out, in, k…) layout (Conv1D's is stored (in, out))."""
    w = m.weight
    if not isinstance(w, Tensor):
        raise InitsuiteError(f"{type(m).__name__} has no weight tensor to take its fans from")
    return tuple(w.shape[::-1]) if is_transposed_linear(m) else tuple(w.shape)


LawFill = Callable[[Tensor, nn.Module, bool, torch.Generator], None]
"""Fills a tensor in place from a law: (tensor, its owner, stored transposed, generator)."""


def _law_fill(law: str) -> LawFill:
    """The fill of ``law``, parsed once (a bad law fails here, before the first draw)."""
    if law.strip() == _conv.HIDDEN_UNIFORM:

        def hidden_uniform(
            t: Tensor, owner: nn.Module, transposed: bool, gen: torch.Generator
        ) -> None:
            if not isinstance(owner, nn.RNNBase):
                raise InitsuiteError(f"{type(owner).__name__} has no hidden_size to draw from")
            bound = 1.0 / math.sqrt(owner.hidden_size) if owner.hidden_size > 0 else 0.0
            t.uniform_(-bound, bound, generator=gen)

        return hidden_uniform
    if law.partition(":")[0].strip() == _conv.FAN_UNIFORM:
        _, raw = parse_spec(law, kind="law")
        mode = raw.get("mode", "fan_in")

        def fan_uniform(
            t: Tensor, owner: nn.Module, transposed: bool, gen: torch.Generator
        ) -> None:
            fan_in, fan_out = fans(_weight_shape(owner))
            fan = fan_in if mode == "fan_in" else fan_out
            bound = 1.0 / math.sqrt(fan) if fan > 0 else 0.0
            t.uniform_(-bound, bound, generator=gen)

        return fan_uniform
    scheme = _schemes.get(law)

    def drawn(t: Tensor, owner: nn.Module, transposed: bool, gen: torch.Generator) -> None:
        if transposed:  # drawn as the (out, in) Linear it is, stored (in, out)
            tmp = torch.empty(t.shape[::-1], dtype=t.dtype, device=t.device)
            t.copy_(scheme(tmp, generator=gen).T)
        else:
            scheme(t, generator=gen)

    return drawn


Plan = list[tuple[str, Tensor, str, nn.Module, bool, bool]]


def _residual_laws(model: nn.Module, plan: Plan, suffix: str, std: float) -> Plan:
    """``plan`` with the law of each residual projection (:func:`~initsuite.engine.roles.
    residual_projections`: the known blocks' branch outputs, else the weights named
    ``*suffix``) set to N(0, std²/N): N = 2·``model.config.n_layer`` where the model has one
    (Hugging Face's GPT-2, nanoGPT: an attention and an MLP projection per block, as
    ``_init_weights`` counts them), else the number of residual projections."""
    projections = set(residual_projections(model, suffix))
    hits = sum(qual in projections for qual, *_ in plan)
    n_layer = getattr(getattr(model, "config", None), "n_layer", None)
    n = 2 * n_layer if isinstance(n_layer, int) and n_layer > 0 else hits
    return _relaw(plan, projections, f"normal:std={std / math.sqrt(max(n, 1))!r}")


def _relaw(plan: Plan, quals: set[str], law: str) -> Plan:
    """``plan`` with the law of the parameters named in ``quals`` set to ``law``."""
    return [(qual, t, law if qual in quals else old, owner, per, zero_padding)
            for qual, t, old, owner, per, zero_padding in plan]  # fmt: skip


def _draw(plan: Plan, fills: dict[str, LawFill], pick: Pick) -> None:
    """Draw each parameter of ``plan`` in order; ``fills`` caches each law's parsed fill."""
    with torch.no_grad():
        for qual, t, law, owner, per, zero_padding in plan:
            if law not in fills:  # a residual projection's, a last norm's
                fills[law] = _law_fill(law)
            gen = pick(t.device)
            blocks = t.chunk(3, dim=0) if per else (t,)  # q, k, v: a layer each
            transposed = is_transposed_linear(owner) and qual.endswith("weight")
            for block in blocks:
                fills[law](block, owner, transposed, gen)
            padding = getattr(owner, "padding_idx", None)
            if zero_padding and padding is not None:
                t[padding].fill_(0)


def apply_convention(model: nn.Module, name: str, pick: Pick) -> Applied:
    """Draw every parameter of ``model`` that convention ``name`` has a law for (see
    :func:`initsuite.apply`); warn naming the module types of the parameters left alone."""
    conv = _conv.get(name)
    plan: Plan = []
    seen: set[int] = set()
    untouched: dict[str, str] = {}
    fills: dict[str, LawFill] = {}  # each law parsed once
    for mname, m in model.named_modules():
        layer = layer_type(m)
        if layer is None:
            continue
        for pname, cparam, owner in _parameters(m, layer):
            t = getattr(owner, pname.rpartition(".")[2], None)
            qual = f"{mname}.{pname}" if mname else pname
            if not isinstance(t, Tensor) or id(t) in seen:
                continue
            seen.add(id(t))
            if isinstance(t, nn.parameter.UninitializedParameter):
                raise InitsuiteError(
                    f"{qual} is a lazy parameter that has no shape yet: run the model once on "
                    "an input before applying a convention"
                )
            rule = conv.rules[layer, cparam]
            if rule.law is None:
                why = rule.note or f"{name} has no {layer} {cparam}"
                untouched[qual] = f"{type(m).__name__}: {why}"
                continue
            if rule.law not in fills:
                fills[rule.law] = _law_fill(rule.law)
            per = rule.per_projection and pname == "in_proj_weight"
            plan.append((qual, t, rule.law, owner, per, rule.zero_padding))
    for mname, m in model.named_modules():  # parameters of modules no convention covers
        for pname, t in m.named_parameters(recurse=False):
            qual = f"{mname}.{pname}" if mname else pname
            if id(t) not in seen:
                seen.add(id(t))
                untouched[qual] = f"{type(m).__name__}: not a layer type of the conventions"
    if conv.residual is not None:
        plan = _residual_laws(model, plan, *conv.residual)
    if conv.last_norm is not None:  # timm's zero_init_last: the closing norm of each branch
        plan = _relaw(plan, set(last_norms(model)), conv.last_norm)
    _draw(plan, fills, pick)
    if untouched:
        kinds = sorted({why.partition(":")[0] for why in untouched.values()})
        warnings.warn(f"convention {name!r} left {len(untouched)} parameter(s) as they were, "
                      f"of {', '.join(kinds)} (see .untouched)", stacklevel=3)  # fmt: skip
    out = Applied(q for q, *_ in plan)
    out.untouched = untouched
    return out

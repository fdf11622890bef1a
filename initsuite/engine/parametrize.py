r"""Put a torch model in a parametrization (:mod:`~initsuite.schemes.parametrizations`):
re-draw its parameters, multiply the readout's and the residual branches' forward pass, and
give the optimizer its per-parameter learning rates.

    >>> wide, narrow = make_mlp(width=256), make_mlp(width=16)  # doctest: +SKIP
    >>> p = initsuite.parametrize(wide, "mup", base=narrow, optimizer="adam")  # doctest: +SKIP
    >>> opt = p.optimizer(lr=1e-2)  # torch.optim.Adam with μP's groups  # doctest: +SKIP
    >>> p.output_mult  # the readout's 1/m  # doctest: +SKIP
    0.0625
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from initsuite.core import validate
from initsuite.core.errors import InitsuiteError, InitsuiteTypeError
from initsuite.engine.param_roles import block_prefix, infer_roles
from initsuite.engine.reinit import draw, scheme_or_convention, seeded
from initsuite.engine.roles import is_transposed_linear
from initsuite.schemes.parametrizations import (
    Multipliers,
    Parametrization,
    Shape,
    get_parametrization,
    optimizer_family,
)
from initsuite.schemes.scaling import default_bias_

__all__ = ["Parametrized", "parametrize"]

_ACTIVE: weakref.WeakKeyDictionary[nn.Module, Parametrized] = weakref.WeakKeyDictionary()
"""The parametrization each model is in now: a second call replaces its hooks."""


@dataclass
class Parametrized:
    """A model put in a parametrization by :func:`parametrize`.

    ``roles``: {parameter name: role} (tied aliases included); ``multipliers``: {name:
    :class:`~initsuite.schemes.parametrizations.Multipliers`} of each parameter (its first
    name); ``lr_mult``: {name: learning-rate multiplier}; ``output_mult``: the readout's
    forward multiplier (1.0 without a readout)."""

    model: nn.Module
    parametrization: Parametrization
    optimizer_name: str
    roles: dict[str, str]
    multipliers: dict[str, Multipliers]
    output_mult: float
    _handles: list[Any] = field(default_factory=list, repr=False)

    @property
    def lr_mult(self) -> dict[str, float]:
        return {name: m.lr_mult for name, m in self.multipliers.items()}

    def param_groups(self, lr: float, weight_decay: float = 0.0) -> list[dict[str, Any]]:
        """torch optimizer groups, one per (role, learning rate, weight decay): each
        ``{"params", "lr", "weight_decay", "role", "names"}``, parameters in model order."""
        lr = validate.number("lr", lr, 0.0, open_low=True, open_high=True)
        weight_decay = validate.number("weight_decay", weight_decay, 0.0, open_high=True)
        params = dict(self.model.named_parameters())
        groups: dict[tuple[str, float, float], dict[str, Any]] = {}
        for name, m in self.multipliers.items():
            g_lr, g_wd = m.scale_lr(lr), m.scale_wd(weight_decay)
            key = (self.roles[name], g_lr, g_wd)
            group = groups.setdefault(key, {"params": [], "lr": g_lr, "weight_decay": g_wd,
                                            "role": key[0], "names": []})  # fmt: skip
            group["params"].append(params[name])
            group["names"].append(name)
        return list(groups.values())

    def optimizer(self, lr: float, **kwargs: Any) -> torch.optim.Optimizer:
        """The torch optimizer named at :func:`parametrize` (SGD, Adam or AdamW) over
        :meth:`param_groups`; ``kwargs`` (``weight_decay``, ``betas``, ``momentum``...) go to
        it, the weight decay (default 0, AdamW's too, as ``mup.MuAdamW``) scaled per group."""
        groups = self.param_groups(lr, kwargs.pop("weight_decay", 0.0))
        cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
        return cls[self.optimizer_name](groups, lr=lr, **kwargs)

    def remove(self) -> None:
        """Drop the forward multipliers' hooks (the drawn values stay)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if _ACTIVE.get(self.model) is self:
            del _ACTIVE[self.model]


def parametrize(
    model: nn.Module,
    parametrization: str | Parametrization,
    *,
    base: nn.Module | Mapping[str, Any],
    optimizer: str = "adam",
    roles: Mapping[str, str] | None = None,
    depth: int | None = None,
    base_depth: int | None = None,
    scheme: str = "torch_default",
    seed: int = 0,
) -> Parametrized:
    r"""Re-draw ``model`` in ``parametrization`` relative to ``base``, in place.

    Each parameter's width multipliers are its dims over the base's (matched by name, as
    ``mup.set_base_shapes`` does). Weights are drawn by ``scheme`` (Linear, Conv, HF Conv1D,
    attention projections), biases by torch's U(±1/√fan_in), embeddings N(0, 1), norms
    ones and zeros, from one ``torch.Generator`` seeded with ``seed``, each times its init
    multiplier; free parameters (a ViT's ``pos_embed``) keep their values, times theirs. The
    forward multipliers are hooks on the layers (their input scaled, as ``MuReadout``
    does); calling parametrize again replaces them.

    Args:
        model: the torch model, at the target width (and depth).
        parametrization: a registered name (``initsuite parametrizations``) or object.
        base: the same architecture at the base width, or {parameter name: shape}.
        optimizer: ``"sgd"``, ``"adam"`` or ``"adamw"``.
        roles: {fnmatch pattern over parameter names: role}, winning over inference.
        depth: L, the number of residual blocks (default: counted, numbered containers
            holding a ``branch`` weight). base_depth: L_base (default 1: the papers' L^-α).
        scheme: the base scheme that draws the weights (default ``torch_default``).
        seed: the generator's seed.

    Raises:
        InitsuiteError: an unknown parametrization or optimizer, a parameter without a role
            or missing from the base, a base larger than the model.
    """
    p = get_parametrization(parametrization)
    if not isinstance(model, nn.Module):
        raise InitsuiteTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    family = optimizer_family(optimizer)
    p.multipliers(Shape("hidden", ()), optimizer)  # an optimizer p has no rules for: now
    seed = validate.seed(seed)
    drawn = scheme_or_convention(scheme)
    role_of = infer_roles(model, roles)
    shapes = _shapes(model, role_of, _base_shapes(base), _depth_mult(role_of, depth, base_depth))
    mults = {name: p.multipliers(s, family) for name, s in shapes.items()}
    plan, output = _forward_plan(model, shapes, mults)
    previous = _ACTIVE.get(model)
    if previous is not None:
        previous.remove()
    _redraw(model, drawn, seed, mults)
    own = {name: mults[name] for name, _ in model.named_parameters()}  # each tensor once
    out = Parametrized(model, p, optimizer, role_of, own, output)
    out._handles += [layer.register_forward_hook(_scale_output(mult)) if after else
                     layer.register_forward_pre_hook(_scale_input(mult))  # W·(c x) = c·W x
                     for layer, after, mult in plan]  # fmt: skip
    _ACTIVE[model] = out
    return out


def _base_shapes(base: object) -> dict[str, tuple[int, ...]]:
    if isinstance(base, nn.Module):
        return {n: tuple(q.shape) for n, q in base.named_parameters(remove_duplicate=False)}
    if isinstance(base, Mapping):
        return {str(n): tuple(int(d) for d in s) for n, s in base.items()}
    raise InitsuiteTypeError("base must be a torch.nn.Module (the model at the base width) or "
                             f"a mapping {{name: shape}}, got {type(base).__name__}")  # fmt: skip


def _layer_of(model: nn.Module) -> dict[str, tuple[nn.Module, str]]:
    """{parameter name (every alias): (its module, its attribute name)}."""
    return {(f"{mn}.{pn}" if mn else pn): (m, pn) for mn, m in model.named_modules(
        remove_duplicate=False) for pn, _ in m.named_parameters(recurse=False)}  # fmt: skip


def _mults(name: str, shape: tuple[int, ...], base: Mapping[str, tuple[int, ...]],
           transposed: bool) -> tuple[float, ...]:  # fmt: skip
    if name not in base:
        raise InitsuiteError(f"parameter {name!r} is not in the base model (the same "
                             "architecture at the base width, matched by name)")  # fmt: skip
    b = base[name]
    if len(b) != len(shape) or any(bd > d or bd < 1 for bd, d in zip(b, shape, strict=True)):
        raise InitsuiteError(f"the base's {name} is {b}, the model's {shape}: a base must be "
                             "the same architecture, no larger in any dim")  # fmt: skip
    mults = tuple(
        d / bd for d, bd in zip(shape, b, strict=True)
    )  # mup's InfDim.width_mult: dim / base_dim
    return (mults[1], mults[0], *mults[2:]) if transposed and len(mults) == 2 else mults


def _shapes(model: nn.Module, role_of: Mapping[str, str], base: Mapping[str, tuple[int, ...]],
            depth: float) -> dict[str, Shape]:  # fmt: skip
    """The :class:`Shape` of every parameter name, tied aliases included (a tied readout's
    layer has its own forward multiplier)."""
    layers = _layer_of(model)
    blocks = {block_prefix(n) for n, r in role_of.items() if r == "branch"} - {None}
    first: dict[int, str] = {}
    out: dict[str, Shape] = {}
    for name, q in model.named_parameters(remove_duplicate=False):
        m, _ = layers[name]
        known = name if name in base else first.get(id(q), name)  # a tied alias: its owner's
        first.setdefault(id(q), name)
        mults = _mults(known, tuple(q.shape), base, is_transposed_linear(m))
        owner, owner_in = getattr(m, "weight", None), 1.0
        if q.dim() == 1 and isinstance(owner, Tensor) and owner.dim() >= 2:
            wname = f"{name.rpartition('.')[0]}.weight".lstrip(".")
            owner_in = _mults(wname, tuple(owner.shape), base, is_transposed_linear(m))[1]
        out[name] = Shape(role_of[name], mults, owner_in, depth, block_prefix(name) in blocks)
    return out


def _depth_mult(role_of: Mapping[str, str], depth: int | None, base_depth: int | None) -> float:
    if depth is None:
        depth = len({block_prefix(n) for n, r in role_of.items() if r == "branch"} - {None})
        depth = max(depth, 1)
    depth = validate.count("depth", depth)
    base_depth = 1 if base_depth is None else validate.count("base_depth", base_depth)
    if base_depth > depth:
        raise InitsuiteError(f"base_depth {base_depth} is larger than the model's depth {depth}")
    return depth / base_depth


def _redraw(model: nn.Module, scheme: Any, seed: int, mults: Mapping[str, Multipliers]) -> None:
    """Draw every parameter (weights by ``scheme``, then biases, embeddings and norms by
    torch's own laws, in model order, from one generator) and apply its init multiplier."""
    pick = seeded(seed)
    drawn = {f"{m}.{q}" if m else q for m, q in draw(model, scheme, None, False, pick)}
    layers = _layer_of(model)
    with torch.no_grad():
        for name, q in model.named_parameters():
            m, attr = layers[name]
            if name not in drawn:
                _draw_own(m, attr, q, pick(q.device))
            if mults[name].init != 1.0:
                q.mul_(mults[name].init)


def _draw_own(m: nn.Module, attr: str, q: Tensor, gen: torch.Generator) -> None:
    """A parameter the scheme does not draw, by its layer's own law (PyTorch's
    ``reset_parameters``); a free parameter keeps its value."""
    weight = getattr(m, "weight", None) if attr == "bias" else None
    norm = "Norm" in type(m).__name__
    if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and attr == "weight":
        q.normal_(0.0, 1.0, generator=gen)
        if m.padding_idx is not None:
            q[m.padding_idx].fill_(0)
    elif isinstance(weight, Tensor) and weight.dim() >= 2 and q.dim() == 1:
        fan_in = weight.shape[0] if is_transposed_linear(m) else math.prod(weight.shape[1:])
        default_bias_(q, fan_in, generator=gen)
    elif norm and q.dim() == 1 and attr == "weight":
        q.fill_(1.0)
    elif norm and q.dim() == 1:
        q.zero_()


_HOOKABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding, nn.EmbeddingBag)


def _forward_plan(
    model: nn.Module, shapes: Mapping[str, Shape], mults: Mapping[str, Multipliers]
) -> tuple[list[tuple[nn.Module, bool, float]], float]:
    """(layer, whether its output is scaled, multiplier) of each forward multiplier that is
    not 1, and the readout's multiplier; checked before anything is drawn. A branch's output
    is scaled (its bias with it), any other layer's input."""
    layers = _layer_of(model)
    plan: list[tuple[nn.Module, bool, float]] = []
    output = 1.0
    for name, shape in shapes.items():
        m, attr = layers[name]
        mult = mults[name].forward
        if shape.role == "output" and attr == "weight":
            output = mult
        if mult == 1.0:
            continue
        if attr != "weight" or not (isinstance(m, _HOOKABLE) or is_transposed_linear(m)):
            raise InitsuiteError(
                f"{name} ({shape.role}) has forward multiplier {mult:.4g}, and only a Linear, "
                f"Conv, Conv1D or Embedding weight's can be applied (a hook on its layer), "
                f"not a {type(m).__name__}'s {attr}"
            )
        # a branch's multiplier scales its whole term, bias included (x + a·f(x), TP6 and
        # Dey et al.); a readout's its input, as MuReadout does (W·(c x) + b)
        after = isinstance(m, (nn.Embedding, nn.EmbeddingBag)) or shape.role == "branch"
        plan.append((m, after, mult))
    return plan, output


def _scale_input(mult: float) -> Any:
    def hook(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return (args[0] * mult, *args[1:])

    return hook


def _scale_output(mult: float) -> Any:
    def hook(module: nn.Module, args: tuple[Any, ...], out: Tensor) -> Tensor:
        return out * mult

    return hook

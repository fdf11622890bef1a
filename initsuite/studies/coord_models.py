"""The models of the coordinate check (:func:`initsuite.coord_check`), built at any width and
depth: ``mlp``, ``resmlp``, a GPT-2-style pre-LN ``transformer``, a Hugging Face text model
(``hf:gpt2``, its width the config's ``hidden_size``), and a user's factory
``package.module:function(width, depth)``.

Each built-in model declares the role of every parameter (``parametrization_roles()``: an
fnmatch pattern over parameter names → one of :data:`ROLES`), which ``parametrize`` (issue 30,
item 2) reads to give each parameter its init, multiplier and learning rate.

    >>> from initsuite.studies.coord_models import mlp
    >>> net = mlp(64, depth=3)
    >>> [n for n, _ in net.named_parameters()][:2]
    ['input.weight', 'input.bias']
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from initsuite import activations as _activations
from initsuite.core import validate
from initsuite.core.errors import InitsuiteError

__all__ = ["HEAD_DIM", "MODELS", "ROLES", "CoordModel", "declared_roles", "heads_at", "mlp",
           "resmlp", "transformer"]  # fmt: skip

ROLES: tuple[str, ...] = ("input", "hidden", "output", "bias", "norm", "branch")
"""A parameter's role: ``input`` (fan_in fixed, fan_out grows with width), ``hidden`` (both
grow), ``output`` (the readout: fan_in grows), ``bias``, ``norm`` (a norm's gain), ``branch``
(the last weight of a residual branch: it carries the depth multiplier)."""
HEAD_DIM = 16
"""The transformer's head dimension: fixed, so its heads scale with width (width // 16)."""


class _Act(nn.Module):
    """An initsuite activation as a module, so the coordinate check records its output."""

    def __init__(self, spec: str) -> None:
        super().__init__()
        self.act = _activations.get(spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x)

    def extra_repr(self) -> str:
        return self.act.spec


class CoordMLP(nn.Module):
    """``inputs → width → … → width → classes``: ``depth`` Linear layers in all (≥ 2)."""

    def __init__(self, width: int, depth: int = 3, activation: str = "relu", inputs: int = 64,
                 classes: int = 10, bias: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.input = nn.Linear(inputs, width, bias=bias)
        self.hidden = nn.ModuleList(nn.Linear(width, width, bias=bias) for _ in range(depth - 2))
        self.acts = nn.ModuleList(_Act(activation) for _ in range(depth - 1))
        self.output = nn.Linear(width, classes, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.acts[0](self.input(x))
        for layer, act in zip(self.hidden, self.acts[1:], strict=True):
            h = act(layer(h))
        return self.output(h)

    def parametrization_roles(self) -> dict[str, str]:
        return {"input.weight": "input", "hidden.*.weight": "hidden",
                "output.weight": "output", "*.bias": "bias"}  # fmt: skip


class _ResBlock(nn.Module):
    """``x + fc2(φ(fc1(norm(x))))``; ``norm`` is the identity in a plain block."""

    def __init__(self, width: int, activation: str, norm: bool, bias: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width) if norm else nn.Identity()
        self.fc1 = nn.Linear(width, width, bias=bias)
        self.act = _Act(activation)
        self.fc2 = nn.Linear(width, width, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.act(self.fc1(self.norm(x))))


class CoordResMLP(nn.Module):
    """``inputs → width``, ``depth`` residual blocks, ``→ classes``."""

    def __init__(self, width: int, depth: int = 4, activation: str = "relu", inputs: int = 64,
                 classes: int = 10, norm: bool = False, bias: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.input = nn.Linear(inputs, width, bias=bias)
        self.blocks = nn.ModuleList(_ResBlock(width, activation, norm, bias) for _ in range(depth))
        self.output = nn.Linear(width, classes, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input(x)
        for block in self.blocks:
            h = block(h)
        return self.output(h)

    def parametrization_roles(self) -> dict[str, str]:
        return {"input.weight": "input", "blocks.*.fc1.weight": "hidden",
                "blocks.*.fc2.weight": "branch", "blocks.*.norm.weight": "norm",
                "output.weight": "output", "*.bias": "bias"}  # fmt: skip


class _Attention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, w = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, w))


class _Block(nn.Module):
    """GPT-2's pre-LN block: ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))`` (4× wide, GELU)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = _Attention(width, heads)
        self.ln2 = nn.LayerNorm(width)
        self.fc = nn.Linear(width, 4 * width)
        self.act = nn.GELU()
        self.proj = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.proj(self.act(self.fc(self.ln2(x))))


class CoordTransformer(nn.Module):
    """A GPT-2-style pre-LN decoder: token and position embeddings, ``depth`` blocks, a final
    LayerNorm and an untied readout to the vocabulary; n_embd = ``width``."""

    def __init__(self, width: int, depth: int = 2, heads: int | None = None, vocab: int = 64,
                 seq: int = 16) -> None:  # fmt: skip
        super().__init__()
        heads = heads_at(width, heads)
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Embedding(seq, width)
        self.blocks = nn.ModuleList(_Block(width, heads) for _ in range(depth))
        self.ln_f = nn.LayerNorm(width)
        self.lm_head = nn.Linear(width, vocab, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        h = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            h = block(h)
        return self.lm_head(self.ln_f(h))

    def parametrization_roles(self) -> dict[str, str]:
        return {"wte.weight": "input", "wpe.weight": "input", "blocks.*.attn.qkv.weight": "hidden",
                "blocks.*.attn.proj.weight": "branch", "blocks.*.fc.weight": "hidden",
                "blocks.*.proj.weight": "branch", "*ln*.weight": "norm",
                "lm_head.weight": "output", "*.bias": "bias"}  # fmt: skip


def heads_at(width: int, heads: int | None = None) -> int:
    """The transformer's heads at ``width``: ``heads``, or width // HEAD_DIM; a width they do
    not divide raises, naming the nearest widths that work."""
    step = HEAD_DIM if heads is None else heads
    if width % step:
        lo, hi = width // step * step, (width // step + 1) * step
        near = f"{lo} or {hi}" if lo else str(hi)
        what = (f"the head dimension {HEAD_DIM} (heads = width // {HEAD_DIM})" if heads is None
                else f"its {heads} heads")  # fmt: skip
        raise InitsuiteError(f"transformer width {width} is not a multiple of {what}: choose "
                             f"a width such as {near}")  # fmt: skip
    return width // HEAD_DIM if heads is None else heads


def mlp(width: int, depth: int = 3, activation: str = "relu", inputs: int = 64,
        classes: int = 10, bias: bool = True) -> CoordMLP:  # fmt: skip
    """The MLP ``inputs → width → … → classes`` of ``depth`` Linear layers (≥ 2)."""
    return CoordMLP(width, depth, activation, inputs, classes, bias)


def resmlp(width: int, depth: int = 4, activation: str = "relu", inputs: int = 64,
           classes: int = 10, norm: bool = False, bias: bool = True) -> CoordResMLP:  # fmt: skip
    """A residual MLP of ``depth`` blocks ``x + W2 φ(W1 norm(x))`` (``norm``: pre-LayerNorm)."""
    return CoordResMLP(width, depth, activation, inputs, classes, norm, bias)


def transformer(width: int, depth: int = 2, heads: int | None = None, vocab: int = 64,
                seq: int = 16) -> CoordTransformer:  # fmt: skip
    """A GPT-2-style pre-LN transformer of ``depth`` blocks, n_embd = ``width`` and
    ``width // 16`` heads (a width not a multiple of 16 raises)."""
    return CoordTransformer(width, depth, heads, vocab, seq)


@dataclass(frozen=True)
class CoordModel:
    """A model of the coordinate check, resolved once from its name.

    Attributes:
        name: ``mlp``, ``resmlp``, ``transformer`` or ``package.module:function``.
        factory: ``factory(width, depth, **options)`` → the model.
        default_depth: the depth used when none is given.
        min_depth: the smallest depth it builds.
        tokens: it takes token ids (vocabulary ``options["vocab"]``), not features.
        options: keyword options passed to every build (``activation``, ``inputs``, ...).
        attention: it has attention heads: a width they do not divide is refused.
        user: it is a user's code, whose errors are reported in one line.
    """

    name: str
    factory: Callable[..., nn.Module]
    default_depth: int
    min_depth: int = 1
    tokens: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    attention: bool = False
    user: bool = False

    def check(self, width: int, depth: int) -> None:
        """Raise before any compute where ``width`` or ``depth`` cannot be built."""
        if depth < self.min_depth:
            raise InitsuiteError(f"{self.name} needs depth >= {self.min_depth}, got {depth}")
        if self.attention:
            heads_at(width, self.options.get("heads"))

    def build(self, width: int, depth: int) -> nn.Module:
        """A fresh model at ``width`` and ``depth`` (its own init, from torch's global RNG)."""
        self.check(width, depth)
        model = self.factory(width, depth, **self.options)
        if not isinstance(model, nn.Module):
            raise InitsuiteError(f"model {self.name!r} returned a {type(model).__name__}, not an "
                                 "nn.Module")  # fmt: skip
        return model

    def input_option(self, key: str, default: int) -> int:
        """An input size option (``inputs``, ``classes``, ``vocab``, ``seq``) or its default."""
        return int(self.options.get(key, default))


MODELS: dict[str, tuple[Callable[..., nn.Module], int, int, bool]] = {
    "mlp": (mlp, 3, 2, False),
    "resmlp": (resmlp, 4, 1, False),
    "transformer": (transformer, 2, 1, True),
}
"""The built-in models: name → (factory, default depth, least depth, takes tokens)."""


def declared_roles(model: nn.Module) -> dict[str, str]:
    """{parameter name: role} from the model's ``parametrization_roles()`` (the first pattern
    that matches wins); empty for a model that declares none or a parameter none matches."""
    declare = getattr(model, "parametrization_roles", None)
    if not callable(declare):
        return {}
    patterns = dict(declare())
    for role in patterns.values():
        validate.choice("role", role, ROLES)
    out = {}
    for name, _ in model.named_parameters():
        role = next((r for p, r in patterns.items() if fnmatch.fnmatchcase(name, p)), None)
        if role is not None:
            out[name] = role
    return out

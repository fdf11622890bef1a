r"""Residual blocks of real models: where their branches are, and the role of each weight.

A small table (:data:`KNOWN_BLOCKS`) names the residual block classes of Hugging Face
transformers, torch, timm and torchvision by class name and module (the libraries are never
imported here) and, for each, its residual branches: the weight layers of each branch in
forward order, the last being the branch's output (residual) projection.
:func:`residual_roles` gives every weight of a known branch its
:class:`~initsuite.schemes.LayerContext` (role ``branch`` or ``branch_out``), which
:func:`initsuite.apply` passes to the schemes that take one (``gpt2``, ``fixup``, ...);
:func:`residual_projections` names the output projections, for the conventions' residual
rule too.

    >>> model = transformers.GPT2Model(transformers.GPT2Config(n_layer=4))  # doctest: +SKIP
    >>> proj = residual_roles(model)["h.0.attn.c_proj.weight"]  # doctest: +SKIP
    >>> proj.role, proj.residual_projections  # doctest: +SKIP
    ('branch_out', 8)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor, nn

from initsuite.core.errors import InitsuiteError
from initsuite.schemes import LayerContext

__all__ = [
    "KNOWN_BLOCKS", "BlockKind", "Branch", "find_blocks", "is_transposed_linear",
    "last_norms", "residual_projections", "residual_roles",
]  # fmt: skip

_WEIGHTS = ("weight", "in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight")
"""The parameters of a branch layer that count as its weights (Linear/Conv/Conv1D's
``weight``, ``nn.MultiheadAttention``'s input projections)."""


@dataclass(frozen=True)
class Branch:
    """One residual branch of a block: ``h + f(h)``.

    ``stages``: f's weight layers in forward order, each stage the module paths (relative to
    the block) of the layers that act side by side (attention's q, k and v); the last stage is
    the branch's output projection, one layer. ``optional``: present only in some
    configurations (cross-attention); then the branch counts where its modules exist.
    ``last_norm``: the norm after the output projection that closes the branch (a ResNet
    block's ``bn3``, whose scale timm's ``zero_init_last`` sets to 0), if any."""

    name: str
    stages: tuple[tuple[str, ...], ...]
    optional: bool = False
    last_norm: str | None = None

    def __post_init__(self) -> None:
        if len(self.stages) < 2 or len(self.stages[-1]) != 1 or not all(self.stages):
            raise ValueError(f"branch {self.name!r}: at least two stages, the last one layer")


@dataclass(frozen=True)
class BlockKind:
    """A residual block class: its name, the module that defines it (``module`` or a
    submodule of it), the keyword of its stream input (when not passed by position), its
    branches, and where the layout was read."""

    name: str
    module: str
    stream: str
    branches: tuple[Branch, ...]
    checked: str

    def matches(self, cls: type) -> bool:
        """``cls`` is this class (by name and module; subclasses, which may rewire the
        forward, are not)."""
        mod = cls.__module__
        return cls.__name__ == self.name and (mod == self.module or
                                              mod.startswith(self.module + "."))  # fmt: skip


_HF = "transformers 5.24 (exercised in the tests)"
_TORCH = "torch (exercised in the tests)"
_TIMM = "from timm's source, not exercised here"
_TV = "from torchvision's source, not exercised here"
_MHA_FF = (Branch("ffn", (("linear1",), ("linear2",))),)

KNOWN_BLOCKS: tuple[BlockKind, ...] = (
    BlockKind("GPT2Block", "transformers.models.gpt2", "hidden_states", (
        Branch("attn", (("attn.c_attn",), ("attn.c_proj",))),
        Branch("cross_attn", (("crossattention.q_attn", "crossattention.c_attn"),
                              ("crossattention.c_proj",)), optional=True),
        Branch("mlp", (("mlp.c_fc",), ("mlp.c_proj",))),
    ), _HF),
    BlockKind("BertLayer", "transformers.models.bert", "hidden_states", (
        Branch("attention", (("attention.self.query", "attention.self.key",
                              "attention.self.value"), ("attention.output.dense",))),
        Branch("cross_attention", (("crossattention.self.query", "crossattention.self.key",
                                    "crossattention.self.value"),
                                   ("crossattention.output.dense",)), optional=True),
        Branch("ffn", (("intermediate.dense",), ("output.dense",))),
    ), _HF),
    BlockKind("LlamaDecoderLayer", "transformers.models.llama", "hidden_states", (
        Branch("self_attn", (("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
                             ("self_attn.o_proj",))),
        Branch("mlp", (("mlp.gate_proj", "mlp.up_proj"), ("mlp.down_proj",))),
    ), _HF),
    BlockKind("ViTLayer", "transformers.models.vit", "hidden_states", (
        Branch("attention", (("attention.q_proj", "attention.k_proj", "attention.v_proj"),
                             ("attention.o_proj",))),
        Branch("mlp", (("mlp.fc1",), ("mlp.fc2",))),
    ), _HF),
    # h + γ·f(h): f's last Linear is scaled by a layer scale (1e-6 by default) after it
    BlockKind("ConvNextLayer", "transformers.models.convnext", "features", (
        Branch("conv_mlp", (("dwconv",), ("pwconv1",), ("pwconv2",))),
    ), _HF),
    # relu(h + f(h)), not h + f(h): the stream after the block is rectified, so its "update"
    # (output − input) is f(h) plus what the ReLU took away; the first layer of each stage
    # has a projection shortcut (and the recorder skips it when it changes the shape)
    BlockKind("ResNetBottleNeckLayer", "transformers.models.resnet", "hidden_state", (
        Branch("conv", (("layer.0.convolution",), ("layer.1.convolution",),
                        ("layer.2.convolution",))),
    ), _HF),
    BlockKind("ResNetBasicLayer", "transformers.models.resnet", "hidden_state", (
        Branch("conv", (("layer.0.convolution",), ("layer.1.convolution",))),
    ), _HF),
    BlockKind("TransformerEncoderLayer", "torch.nn.modules.transformer", "src", (
        Branch("self_attn", (("self_attn",), ("self_attn.out_proj",))), *_MHA_FF,
    ), _TORCH),
    BlockKind("TransformerDecoderLayer", "torch.nn.modules.transformer", "tgt", (
        Branch("self_attn", (("self_attn",), ("self_attn.out_proj",))),
        Branch("cross_attn", (("multihead_attn",), ("multihead_attn.out_proj",))), *_MHA_FF,
    ), _TORCH),
    BlockKind("Block", "timm.models.vision_transformer", "x", (
        Branch("attn", (("attn.qkv",), ("attn.proj",))),
        Branch("mlp", (("mlp.fc1",), ("mlp.fc2",))),
    ), _TIMM),
    BlockKind("ConvNeXtBlock", "timm.models.convnext", "x", (
        Branch("conv_mlp", (("conv_dw",), ("mlp.fc1",), ("mlp.fc2",))),
    ), _TIMM),
    BlockKind("Bottleneck", "timm.models.resnet", "x", (
        Branch("conv", (("conv1",), ("conv2",), ("conv3",)), last_norm="bn3"),
    ), _TIMM),
    BlockKind("BasicBlock", "timm.models.resnet", "x", (
        Branch("conv", (("conv1",), ("conv2",)), last_norm="bn2"),
    ), _TIMM),
    BlockKind("Bottleneck", "torchvision.models.resnet", "x", (
        Branch("conv", (("conv1",), ("conv2",), ("conv3",)), last_norm="bn3"),
    ), _TV),
    BlockKind("BasicBlock", "torchvision.models.resnet", "x", (
        Branch("conv", (("conv1",), ("conv2",)), last_norm="bn2"),
    ), _TV),
)  # fmt: skip
"""The residual blocks initsuite knows. Layers a branch holds besides those listed (norms,
layer scales, a ResNet's squeeze-excitation) keep the role ``layer``; a shortcut's own
layers (a ResNet's ``downsample``) are not in a branch."""


def is_transposed_linear(m: nn.Module) -> bool:
    """Hugging Face's ``Conv1D`` (GPT-2 and kin): a Linear whose weight is stored (in, out).
    Recognised by name and module, so transformers is never imported here."""
    cls = type(m)
    return cls.__name__ == "Conv1D" and cls.__module__.startswith("transformers.")


def _kind(m: nn.Module) -> BlockKind | None:
    return next((k for k in KNOWN_BLOCKS if k.matches(type(m))), None)


def find_blocks(model: nn.Module) -> list[tuple[str, nn.Module, BlockKind]]:
    """(qualified name, module, kind) of every known residual block of ``model``, in module
    order; a known block inside another is part of the outer one."""
    out: list[tuple[str, nn.Module, BlockKind]] = []
    for name, m in model.named_modules():
        if any(name.startswith(f"{outer}.") or not outer for outer, _, _ in out):
            continue
        kind = _kind(m)
        if kind is not None:
            out.append((name, m, kind))
    return out


# --- roles -----------------------------------------------------------------------------------


def _stage_weights(block: nn.Module, where: str, kind: BlockKind, branch: Branch,
                   stage: tuple[str, ...]) -> list[tuple[str, nn.Module, Tensor]]:  # fmt: skip
    """(qualified weight name, module, weight) of one stage's layers."""
    out: list[tuple[str, nn.Module, Tensor]] = []
    for path in stage:
        m: nn.Module | None
        try:
            m = block.get_submodule(path)
        except AttributeError:
            m = None
        found = [] if m is None else [(".".join(p for p in (where, path, pname) if p), m, w)
                                      for pname, w in m.named_parameters(recurse=False)
                                      if pname in _WEIGHTS]  # fmt: skip
        if not found:
            what = f"without {path!r}" if m is None else f"whose {path!r} holds no weight"
            raise InitsuiteError(
                f"{where or '(root)'} is a {kind.name} ({kind.module}) {what}, a layer of its "
                f"{branch.name!r} branch in initsuite's table of residual blocks "
                f"({kind.checked}): another version of the library? Its residual roles are "
                "unknown"
            )
        out += found
    return out


def _has_any(block: nn.Module, branch: Branch) -> bool:
    names = {n for n, _ in block.named_modules()}
    return any(path in names for stage in branch.stages for path in stage)


def _fans(m: nn.Module, w: Tensor) -> tuple[int, int]:
    """torch's (fan_in, fan_out) of the weight as drawn (a Conv1D's as its (out, in) Linear)."""
    shape = tuple(w.shape[::-1]) if is_transposed_linear(m) else tuple(w.shape)
    if len(shape) < 2:
        return (shape[0] if shape else 1), (shape[0] if shape else 1)
    k = math.prod(shape[2:])
    return shape[1] * k, shape[0] * k


def residual_roles(model: nn.Module) -> dict[str, LayerContext]:
    r"""The :class:`~initsuite.schemes.LayerContext` of every weight in a residual branch of
    a known block (:data:`KNOWN_BLOCKS`) of ``model``, by qualified name
    (``"h.0.attn.c_proj.weight"``, as :func:`initsuite.apply` names it).

    Each residual branch ``h + f(h)`` is one residual block in LayerContext's sense (a
    transformer layer holds two: attention and MLP): ``block`` is the branch's 1-based index
    in module order, ``blocks`` L the number of branches in the model, ``branch_depth`` m
    its weight stages, ``position`` j = 1..m the weight's stage (attention's q, k and v
    share one), role ``branch_out`` at j = m (the residual projection), else ``branch``;
    ``residual_projections`` N is the number of residual projections in the model (2·n_layer
    for GPT-2, whose ``_init_weights`` draws them at 0.02/√(2·n_layer)); ``index`` the weight's
    1-based position among the branches' weights and ``depth`` their count (a ``resmlp``'s
    numbering); fans are torch's, of the weight as drawn.

    Weights outside known blocks, and layers of a block the table does not list (norms),
    have no entry: their role is ``layer``. A model without known blocks gives ``{}``.

    Raises:
        InitsuiteError: a known block class lacks a layer the table lists (another version
            of its library): its roles would be guessed.
    """
    branches: list[list[list[tuple[str, nn.Module, Tensor]]]] = []
    for where, block, kind in find_blocks(model):
        for branch in kind.branches:
            if branch.optional and not _has_any(block, branch):
                continue
            branches.append([_stage_weights(block, where, kind, branch, stage)
                             for stage in branch.stages])  # fmt: skip
    total = sum(len(stage) for br in branches for stage in br)
    out: dict[str, LayerContext] = {}
    seen: set[int] = set()
    index = 0
    for b, stages in enumerate(branches, start=1):
        m = len(stages)
        for j, stage in enumerate(stages, start=1):
            for qual, mod, w in stage:
                index += 1
                if id(w) in seen:  # tied: drawn once, by its first owner
                    continue
                seen.add(id(w))
                fan_in, fan_out = _fans(mod, w)
                out[qual] = LayerContext(
                    index, total, fan_in, fan_out, "branch_out" if j == m else "branch", b,
                    len(branches), m, j, len(branches))  # fmt: skip
    return out


def residual_projections(model: nn.Module, suffix: str) -> list[str]:
    """The qualified weight names of ``model``'s residual projections: the ``branch_out``
    weights of its known blocks (:func:`residual_roles`), or, in a model without known
    blocks (nanoGPT, a GPT-2 of one's own), the weights whose qualified name is ``suffix``
    or ends in ``"." + suffix`` (``c_proj.weight``)."""
    roles = residual_roles(model)
    if roles:
        return [qual for qual, ctx in roles.items() if ctx.role == "branch_out"]
    return [qual for qual, _ in model.named_parameters(remove_duplicate=True)
            if qual == suffix or qual.endswith("." + suffix)]  # fmt: skip


def last_norms(model: nn.Module) -> list[str]:
    """The qualified names of the scales (``weight``) of the norms that close the residual
    branches of ``model``'s known blocks (:attr:`Branch.last_norm`: a ResNet block's last
    BatchNorm), in module order; a norm without a scale (``affine=False``) has none."""
    out: list[str] = []
    for where, block, kind in find_blocks(model):
        for branch in kind.branches:
            if branch.last_norm is None:
                continue
            norm = dict(block.named_modules()).get(branch.last_norm)
            if norm is not None and isinstance(getattr(norm, "weight", None), Tensor):
                out.append(".".join(p for p in (where, branch.last_norm, "weight") if p))
    return out

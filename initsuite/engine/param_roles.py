r"""Which parametrization role (:data:`~initsuite.schemes.parametrizations.ROLES`) each
parameter of a torch model plays, for :func:`initsuite.parametrize`.

Three sources, the first that names a parameter wins: the ``roles={pattern: role}`` a user
passes; the model's own ``parametrization_roles()`` method, returning the same kind of
mapping (initsuite's coordinate-check models declare theirs so); and, for models built of
residual blocks initsuite knows (:data:`~initsuite.engine.roles.KNOWN_BLOCKS`: Hugging
Face GPT-2, BERT, LLaMA, ViT, timm's ViT, torch's Transformer layers), their structure.
Patterns are shell-style (:mod:`fnmatch`) over parameter names, tried in the mapping's
order. A parameter that none names is an error, never a silent default.

    >>> model = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=2))  # doctest: +SKIP
    >>> infer_roles(model)["transformer.h.0.attn.c_proj.weight"]  # doctest: +SKIP
    'branch'
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping

from torch import nn

from initsuite.core.errors import InitsuiteError, InitsuiteTypeError
from initsuite.core.patterns import check_pattern
from initsuite.engine.roles import find_blocks, is_transposed_linear, residual_roles
from initsuite.schemes.parametrizations import ROLES

__all__ = ["READOUTS", "block_prefix", "infer_roles", "structural_roles"]

READOUTS = ("lm_head", "head", "classifier", "decoder", "qa_outputs", "score")
"""Names (a module path's last part, outside the residual blocks) of the readout layers of
the known models: GPT-2's and LLaMA's ``lm_head``, timm's ``head``, BERT's
``cls.predictions.decoder`` and ``classifier``, HF ViT's ``classifier``."""

_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _checked(patterns: object, where: str) -> dict[str, str]:
    if not isinstance(patterns, Mapping):
        raise InitsuiteTypeError(f"{where} must be a mapping {{pattern: role}}, got "
                                 f"{type(patterns).__name__}")  # fmt: skip
    out: dict[str, str] = {}
    for pattern, role in patterns.items():
        check_pattern(pattern)
        if role not in ROLES:
            raise InitsuiteError(f"{where}: role {role!r} for {pattern!r} is not one of "
                                 f"{', '.join(ROLES)}")  # fmt: skip
        out[pattern] = role
    return out


def _is_norm(m: nn.Module) -> bool:
    # LayerNorm, RMSNorm and the libraries' own (LlamaRMSNorm, timm's LayerNorm2d...)
    return isinstance(m, (nn.LayerNorm, nn.GroupNorm)) or type(m).__name__.endswith("Norm")


def block_prefix(name: str) -> str | None:
    """The path of the residual block a parameter sits in: its name up to the first
    all-digit part (``"transformer.h.3"`` for ``"transformer.h.3.attn.c_proj.weight"``), or
    None outside a numbered container."""
    parts = name.split(".")
    for i, part in enumerate(parts[:-1]):
        if part.isdigit():
            return ".".join(parts[: i + 1])
    return None


def structural_roles(model: nn.Module) -> dict[str, str]:
    """Roles read from the module structure of a model built of known residual blocks
    (``{}`` for any other): a branch's output projection is ``branch``, its other weights
    ``hidden``; embeddings, the first convolution (a ViT's patch projection) and free
    parameters outside layers (``cls_token``, ``pos_embed``) ``input``; a :data:`READOUTS`
    layer outside the blocks ``output``; other Linear weights ``hidden``; norm gains and
    LayerScale ``norm``; every bias ``bias``."""
    blocks = find_blocks(model)
    if not blocks:
        return {}
    branch = {q: ("branch" if c.role == "branch_out" else "hidden")
              for q, c in residual_roles(model).items()}  # fmt: skip
    inside = tuple(f"{where}." for where, _, _ in blocks)
    out: dict[str, str] = {}
    for mname, m in model.named_modules():
        for pname, _ in m.named_parameters(recurse=False):
            qual = f"{mname}.{pname}" if mname else pname
            out[qual] = _structural_role(qual, mname, pname, m, branch, inside)
    return out


def _structural_role(qual: str, mname: str, pname: str, m: nn.Module,
                     branch: dict[str, str], inside: tuple[str, ...]) -> str:  # fmt: skip
    if qual in branch:
        return branch[qual]
    if pname == "bias" or pname.endswith("_bias"):
        return "bias"
    if _is_norm(m) or pname in ("gamma", "scale"):
        return "norm"
    if isinstance(m, (nn.Embedding, nn.EmbeddingBag)):
        return "input"
    outside = not (mname + ".").startswith(inside)
    if isinstance(m, _LAYERS) or is_transposed_linear(m):
        if outside and mname.rpartition(".")[2] in READOUTS:
            return "output"
        if isinstance(m, (nn.Conv2d, nn.Conv3d)) and outside:
            return "input"  # a patch embedding: fan_in (channels × patch) is fixed
        return "hidden"
    return "input"  # a free parameter: cls_token, pos_embed


def infer_roles(model: nn.Module, roles: Mapping[str, str] | None = None) -> dict[str, str]:
    """The role of every parameter name of ``model``, tied aliases included
    (``named_parameters(remove_duplicate=False)``).

    Raises:
        InitsuiteError: a parameter no source names (the message names it, counts the
            others, and lists the roles), or a pattern or role that is not valid.
    """
    user = _checked(roles, "roles") if roles is not None else {}
    own: dict[str, str] = {}
    declared = getattr(model, "parametrization_roles", None)
    if callable(declared):
        own = _checked(declared(), f"{type(model).__name__}.parametrization_roles()")
    structure = structural_roles(model) if not own else {}
    out: dict[str, str] = {}
    missing: list[str] = []
    for name, _ in model.named_parameters(remove_duplicate=False):
        role = _first(name, user) or _first(name, own) or structure.get(name)
        if role is None:
            missing.append(name)
        else:
            out[name] = role
    if missing:
        others = f" (and {len(missing) - 1} other{'s' * (len(missing) > 2)})" if len(
            missing) > 1 else ""  # fmt: skip
        raise InitsuiteError(
            f"parameter {missing[0]!r}{others} of the {type(model).__name__} has no "
            f"parametrization role: pass roles={{pattern: role}} with a role of "
            f"{', '.join(ROLES)}"
        )
    return out


def _first(name: str, patterns: Mapping[str, str]) -> str | None:
    return next((role for pat, role in patterns.items() if fnmatch.fnmatchcase(name, pat)), None)

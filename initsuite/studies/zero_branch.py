r"""Zero by design: the exact zeros a model starts with on purpose, told apart from underflow.

Several models start a residual branch at exactly zero: timm's ``zero_init_last`` (each
Bottleneck's ``bn3.weight`` is 0), torchvision's ``zero_init_residual``, Fixup (the branch's
last weight), SkipInit and ReZero (the branch's multiplier α). Their outputs are exactly 0,
and so are the gradients upstream of them in the branch; the probe records these rows as a
*zero branch* (``zero_by``/``grad_zero_by``: the parameter responsible), never as an
underflow or a divergence.

The rule:

- A parameter is **zero by design** when, before the pass, every element is exactly 0 and
  it is multiplicative (a weight, scale, gain or α: any parameter not named like a bias or
  a shift, :func:`additive`), and either the model was built with it at 0 (a scheme left
  it, or a framework convention drew it), or the scheme drew it at 0 as a residual branch's
  last weight or multiplier (Fixup's ``branch_out``, SkipInit's and ReZero's
  ``residual_scale``). A weight a scheme zeroed otherwise is not: its zeros stay underflow.
- A call's **output** is a zero branch when all of it is exactly 0 and its module holds such
  a parameter (itself, or a module it contains), or one of its inputs is a zero branch's
  output (the same tensor, through probed modules only: a functional op in between, e.g.
  ``x[:, 0]``, breaks the chain).
- A call's output **gradient** is a zero branch when all of it is exactly 0 and a later
  call that took that output as an input holds such a parameter or has a zero-branch
  gradient itself, or its module lies inside a module holding such a parameter of its own
  (ReZero's α scales the branch its children compute).
- Any other exact zero (a dead ReLU, a weight zeroed by mistake, values flushed to 0) stays
  an ``underflow``, as does a tiny non-zero std.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from initsuite.studies.recorder import ROOT

__all__ = [
    "ZERO_ROLES", "additive", "grad_zero_branches", "zero_branches", "zero_parameters",
]  # fmt: skip

ZERO_ROLES: frozenset[str] = frozenset({"branch_out", "residual_scale"})
"""The residual roles (:func:`initsuite.engine.roles.residual_roles`) a scheme zeroes by
design."""
_ADDITIVE = re.compile(r"bias|beta|shift|offset", re.IGNORECASE)


def additive(name: str) -> bool:
    """Whether a parameter (its last dotted name) is added, not multiplied: a bias, β, a
    shift or an offset, which are routinely 0."""
    return bool(_ADDITIVE.search(name.rpartition(".")[2]))


def zero_parameters(
    model: nn.Module, not_by_design: frozenset[str] | set[str] = frozenset()
) -> dict[str, str]:
    """The parameters of ``model`` that are zero by design, as {qualified name: holder},
    the holder being the module whose own parameter it is
    (:data:`~initsuite.studies.recorder.ROOT` for the model's);
    ``not_by_design``: qualified names a scheme zeroed without meaning to.

    Each parameter's first element is read first (one read-back per device), and only those
    whose first element is 0 are read whole: checking every parameter whole would read all
    the weights, 0.09x of a ResNet-50 pass."""
    found = [(f"{m}.{p}" if m else p, m or ROOT, t) for m, mod in model.named_modules()
             for p, t in mod.named_parameters(recurse=False)
             if t.numel() and not t.is_meta and not additive(p)]  # fmt: skip
    found = [f for f in found if f[0] not in not_by_design]
    zero: dict[str, str] = {}
    with torch.no_grad():
        for device in dict.fromkeys(t.device for _, _, t in found):
            mine = [f for f in found if f[2].device == device]
            first = torch.stack([t.reshape(-1)[0] for _, _, t in mine]).tolist()
            maybe = [f for f, x in zip(mine, first, strict=True) if x == 0]
            if maybe:
                some = torch.stack([t.any() for _, _, t in maybe]).tolist()
                zero.update((q, h) for (q, h, _), s in zip(maybe, some, strict=True) if not s)
    return zero


def _held(module: str, zero: Mapping[str, str]) -> str | None:
    """The first zero-by-design parameter ``module`` holds, itself or through a module it
    contains."""
    for qual, holder in zero.items():
        if module == ROOT or holder == module or holder.startswith(module + "."):
            return qual
    return None


def zero_branches(modules: Sequence[str], exact_zero: Sequence[bool],
                  sources: Sequence[Sequence[int]],
                  zero: Mapping[str, str]) -> list[str | None]:  # fmt: skip
    """Per call (in execution order): the zero-by-design parameter that explains its
    all-zero output, or None. ``sources``: per call, the indices of the earlier calls whose
    outputs it took as inputs."""
    out: list[str | None] = [None] * len(modules)
    if not zero:
        return out
    for k, module in enumerate(modules):
        if exact_zero[k]:
            out[k] = _held(module, zero) or next(
                (out[s] for s in sources[k] if out[s] is not None), None
            )
    return out


def grad_zero_branches(modules: Sequence[str], exact_zero: Sequence[bool],
                       sources: Sequence[Sequence[int]],
                       zero: Mapping[str, str]) -> list[str | None]:  # fmt: skip
    """Per call: the zero-by-design parameter that explains its all-zero output gradient, or
    None (walking back from the output: a consumer's explanation reaches its sources)."""
    out: list[str | None] = [None] * len(modules)
    if not zero:
        return out
    consumers: list[list[int]] = [[] for _ in modules]
    for k, srcs in enumerate(sources):
        for s in srcs:
            consumers[s].append(k)
    for k in reversed(range(len(modules))):
        if not exact_zero[k]:
            continue
        found = next((_held(modules[c], zero) or out[c] for c in consumers[k]
                      if _held(modules[c], zero) or out[c]), None)  # fmt: skip
        if found is None:  # inside a module whose own zero parameter scales it (ReZero's α)
            found = next((q for q, h in zero.items()
                          if h == ROOT or modules[k].startswith(h + ".")), None)  # fmt: skip
        out[k] = found
    return out

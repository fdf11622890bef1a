"""Weight-initialisation schemes: ``names()``, ``list("kaiming*")``, ``get(spec)``,
``register(SchemeInfo(...))``.

Modules by idea: :mod:`~initsuite.schemes.registry` (the registry: a decorator and a lookup),
:mod:`~initsuite.schemes.metadata` (:class:`SchemeInfo`, what a scheme is, declared beside its
function), :mod:`~initsuite.schemes.bound` (:class:`Scheme`, a scheme with its spec's
parameters),
:mod:`~initsuite.schemes.plain` (torch's plain distributions and constants),
:mod:`~initsuite.schemes.scaling` (Glorot, He, LeCun, PyTorch's default layer init, weight
and bias), :mod:`~initsuite.schemes.fan_scaling` (JAX/Keras variance scaling),
:mod:`~initsuite.schemes.structured` (eye, dirac, orthogonal, sparse),
:mod:`~initsuite.schemes.isometric` (delta-orthogonal, ZerO),
:mod:`~initsuite.schemes.residual` (Fixup, SkipInit, ReZero, GPT-2),
:mod:`~initsuite.schemes.lsuv` (LSUV),
:mod:`~initsuite.schemes.frameworks` (other frameworks' initializers, ``"keras:he_normal"``,
``"flax:lecun_normal"``), :mod:`~initsuite.schemes.zoo` (``"timm:trunc_normal"``,
``"hf:normal"``, ``"lua_torch:default"``, ``"flux:..."``),
:mod:`~initsuite.schemes.conventions` (each framework's law for each layer's parameters, as
data), :mod:`~initsuite.schemes.convention_table` (those laws as a table, and where two
conventions differ), :mod:`~initsuite.schemes.parametrizations` (SP, μP, depth-μP...: each
role's init, forward and learning-rate multipliers across widths and depths) and
:mod:`~initsuite.schemes.common` (fans, gains, shared helpers).
"""

from __future__ import annotations

import builtins
from typing import Any

from initsuite.schemes import fan_scaling as _fan_scaling  # noqa: F401
from initsuite.schemes import frameworks as _frameworks  # noqa: F401 - "keras:he_normal"...
from initsuite.schemes import isometric as _isometric  # noqa: F401
from initsuite.schemes import lsuv as _lsuv  # noqa: F401 - the data-dependent scheme

# Importing the scheme modules registers their schemes.
from initsuite.schemes import plain as _plain  # noqa: F401
from initsuite.schemes import residual as _residual  # noqa: F401
from initsuite.schemes import scaling as _scaling  # noqa: F401
from initsuite.schemes import structured as _structured  # noqa: F401
from initsuite.schemes import zoo as _zoo  # noqa: F401 - "timm:trunc_normal", "hf:normal"...
from initsuite.schemes.common import calculate_gain, fans
from initsuite.schemes.registry import (
    ENTRY_POINT_GROUP,
    SHARED_BASES,
    TAPS,
    LayerContext,
    Scheme,
    SchemeInfo,
    SharedDraw,
    framework_names,
    get,
    info,
    list,
    matches,
    names,
    register,
    unregister,
)  # fmt: skip
from initsuite.schemes.scaling import default_bias_, default_bias_bound, default_bias_variance

__all__ = [
    "ENTRY_POINT_GROUP",
    "SHARED_BASES",
    "TAPS",
    "LayerContext",
    "Scheme",
    "SchemeInfo",
    "SharedDraw",
    "calculate_gain",
    "default_bias_",
    "default_bias_bound",
    "default_bias_variance",
    "expand",
    "fans",
    "framework_names",
    "get",
    "info",
    "list",
    "names",
    "register",
    "table",
    "unregister",
]


def table(rank: int | None = None) -> Any:
    """A DataFrame with one row per scheme: family, variance, ranks, torch twin, paper.

    ``rank`` keeps only schemes that accept tensors of that rank (2 for Linear weights).
    """
    import pandas as pd

    rows = []
    for n in names():
        i = info(n)
        if rank is not None and not i.accepts_rank(rank):
            continue
        rows.append(
            {
                "scheme": n,
                "family": i.family,
                "variance": i.variance_formula,
                "ranks": i.ranks,
                "params": ", ".join(
                    p.name if p.required else f"{p.name}={p.default}" for p in i.params.values()
                ),
                "torch": f"torch.nn.init.{i.torch_fn}" if i.torch_fn else "",
                "paper": i.paper,
                "framework": i.framework or "torch",
                "var_x_fan_in": _var_x_fan_in(n),
                "checked": i.checked or "",
                "summary": i.summary,
            }
        )
    return pd.DataFrame(rows)


def write_catalog() -> None:
    """Write the built-in schemes' :func:`table` to ``initsuite/core/scheme_catalog.json``
    (:mod:`initsuite.core.catalog`), which ``initsuite schemes`` reads without importing
    torch; a test fails while the two differ. Run it after adding or changing a scheme:
    ``python -c "import initsuite.schemes as s; s.write_catalog()"``."""
    import json

    from initsuite.core.catalog import PATH

    rows = table().to_dict(orient="records")
    PATH.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _var_x_fan_in(name: str) -> float | None:
    """σ_w² in units of 1/fan_in, Var(W) · fan_in, for a square 256 × 256 Linear weight (None
    where the scheme needs an activation, a context or data to say)."""
    from initsuite.core.errors import InitsuiteError

    scheme = get(info(name).example)
    if scheme.info.uses or not scheme.info.accepts_rank(2):
        return None
    try:
        var = scheme.variance((256, 256))
    except InitsuiteError:  # gain=auto: the activation decides
        return None
    return None if var is None else round(var * 256, 6)


def _meant_for(archs: tuple[str, ...] | None, arch: str | None) -> bool:
    return arch is None or archs is None or arch in archs


def expand(
    specs: str | builtins.list[str] | tuple[str, ...],
    rank: int | None = 2,
    arch: str | None = "mlp",
) -> builtins.list[str]:
    """Expand ``all`` and wildcards (``"kaiming*"``) into specs; other specs pass through.

    ``all`` and wildcards take each matching scheme's example spec (which sets required
    parameters, e.g. ``constant:val=0.01``) and, with ``rank``, only schemes accepting it;
    ``all`` and wildcards without ``:`` name torch's vocabulary; ``"keras:*"`` a framework's
    (:func:`list`). With ``arch``, only schemes meant for it (residual schemes list ``resmlp``
    only; LSUV, data-dependent and costly, no arch: it is swept by name). ``arch=None``: every
    scheme.
    """
    from initsuite.core.errors import InitsuiteError

    items = [specs] if isinstance(specs, str) else builtins.list(specs)
    out: builtins.list[str] = []
    for item in items:
        if item.strip() == "all" or any(ch in item for ch in "*?["):
            pattern = "*" if item.strip() == "all" else item.strip()
            hits = [
                info(n).example
                for n in names()
                if matches(n, pattern)
                and (rank is None or info(n).accepts_rank(rank))
                and _meant_for(info(n).archs, arch)
            ]
            if not hits:
                raise InitsuiteError(f"no scheme matches {item!r} (initsuite schemes lists all)")
            out.extend(hits)
        else:
            out.append(item)
    return builtins.list(dict.fromkeys(out))

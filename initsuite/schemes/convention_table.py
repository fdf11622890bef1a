r"""The conventions as a table: one row per convention × layer type × parameter, and the rows
where two conventions differ (``initsuite conventions``, :func:`initsuite.conventions`).

    >>> initsuite.conventions("flax", layer="linear").set_index("parameter")["law"].to_dict()
    {'weight': 'variance_scaling:scale=1,mode=fan_in,distribution=truncated_normal',
     'bias': 'zeros'}
"""

from __future__ import annotations

from typing import Any

from initsuite.core.errors import InitsuiteError
from initsuite.schemes.conventions import (
    FAN_UNIFORM,
    HIDDEN_UNIFORM,
    LAYERS,
    PARAMETERS,
    check_layer,
    get,
    names,
)  # fmt: skip

__all__ = ["COLUMNS", "conventions", "diff", "law_summary"]

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
    if name == HIDDEN_UNIFORM:  # a square recurrent matrix (weight_hh's fan_in is hidden_size)
        return {"distribution": "uniform", "variance_fan_in": 1 / 3, "variance": nan,
                "truncation": "±1/√hidden_size"}  # fmt: skip
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

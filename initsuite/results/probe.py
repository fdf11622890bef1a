"""``ProbeResult``: the per-module-call and per-block tables of a probe and its metadata, and
its summary.

Never imports torch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from initsuite.core.errors import InitsuiteError
from initsuite.results import columns as C
from initsuite.results.base import Result, Table

__all__ = [
    "GROUP", "PROBE_KEYS", "ProbeResult", "models_in_order", "name_patterns", "probe_summary",
    "schemes_in_order", "series", "zero_summary",
]  # fmt: skip

PROBE_KEYS: tuple[str, ...] = ("model", "scheme", "seed", "autocast", "call", "module", "type")
"""The columns that identify a row of the probe table (never null)."""
GROUP: tuple[str, ...] = ("model", "scheme", "autocast")
"""One probe pass: a model (variant), a scheme and an autocast precision."""
_LEGACY = ("model", "autocast")  # keys added in 0.2: null in directories written before
_TABLES = (
    Table("probe", C.PROBE, tuple(k for k in PROBE_KEYS if k not in _LEGACY), attr="calls"),
    # written since the blocks table, and only when the model has known residual blocks
    Table("blocks", C.PROBE_BLOCKS, tuple(k for k in C.PROBE_BLOCKS_KEYS if k not in _LEGACY),
          optional=True, omit_empty=True),
)  # fmt: skip


def _no_blocks() -> pd.DataFrame:
    return _TABLES[1].empty()


@dataclass
class ProbeResult(Result):
    """What :func:`initsuite.probe` and :func:`~initsuite.studies.probe_factory.probe_factory`
    return.

    Attributes:
        calls: one row per module call (per scheme), in execution order
            (:data:`initsuite.results.columns.PROBE`; stored as ``probe.parquet``).
        meta: configuration, model and environment.
        blocks: one row per call of a known residual block (per scheme), in execution order
            (:data:`initsuite.results.columns.PROBE_BLOCKS`; stored as ``blocks.parquet``,
            absent when empty); empty for a model without known blocks, or a directory
            written before the table.
    """

    kind: ClassVar[str] = "probe"
    tables: ClassVar[tuple[Table, ...]] = _TABLES

    calls: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    blocks: pd.DataFrame = field(default_factory=_no_blocks)

    @classmethod
    def from_tables(cls, tables: dict[str, pd.DataFrame], meta: dict[str, Any],
                    path: Path) -> ProbeResult:  # fmt: skip
        """The probe of the conformed ``tables``: the keys added in 0.2 filled where a
        directory written before them lacks them; a block of a pass that probe.parquet lacks
        is damage."""
        config = meta.get("config")
        config = config if isinstance(config, dict) else {}
        legacy = {"model": str(config.get("factory") or "model"), "autocast": "float32"}
        calls, blocks = (_fill_legacy(tables[name], legacy, path / f"{name}.parquet")
                         for name in ("probe", "blocks"))  # fmt: skip
        groups = set(calls[list(GROUP)].itertuples(index=False, name=None))
        stray = sorted(set(blocks[list(GROUP)].itertuples(index=False, name=None)) - groups)
        if stray:
            raise InitsuiteError(
                f"{str(path / 'blocks.parquet')!r} holds model, scheme and autocast {stray[0]}, "
                "which probe.parquet lacks: damaged, or not written by initsuite"
            )
        return cls(calls, meta, blocks)

    @classmethod
    def concat(cls, results: Sequence[ProbeResult], meta: dict[str, Any]) -> ProbeResult:
        """One result of several probes (one per scheme, say): their ``calls`` and their
        ``blocks`` one after the other, with ``meta``.

        Raises:
            InitsuiteError: ``results`` is empty.
        """
        if not results:
            raise InitsuiteError("ProbeResult.concat needs at least one result")
        return cls(_concat([r.calls for r in results], C.PROBE), meta,
                   _concat([r.blocks for r in results], C.PROBE_BLOCKS))  # fmt: skip

    def summary(self) -> pd.DataFrame:
        """One row per scheme (:func:`probe_summary`)."""
        return probe_summary(self.calls)


def _fill_legacy(table: pd.DataFrame, values: dict[str, str], where: Path) -> pd.DataFrame:
    """``table`` with each key column of :data:`_LEGACY` that is wholly null (a directory
    written before it: one model, no autocast) set to ``values``; one partly null is damage."""
    for column, value in values.items():
        null = table[column].isna()
        if null.all():
            table = table.assign(**{column: pd.Series(value, index=table.index, dtype="string")})
        elif null.any():
            raise InitsuiteError(f"{str(where)!r} has a null {column!r}, a key; damaged, or not "
                                 "written by initsuite")  # fmt: skip
    return table


def _concat(frames: Sequence[pd.DataFrame], columns: tuple[str, ...]) -> pd.DataFrame:
    """``frames`` one after the other in ``columns`` (empty ones left out: pandas would let
    their dtypes decide the result's)."""
    full = [f for f in frames if len(f)]
    if not full:
        return C.frame(columns, [])
    return C.coerce(pd.concat(full, ignore_index=True), columns)


def schemes_in_order(calls: pd.DataFrame) -> list[str]:
    """The schemes of a probe table in the order they were probed (``as_built`` first)."""
    return [str(s) for s in dict.fromkeys(calls["scheme"].dropna())]


def models_in_order(calls: pd.DataFrame) -> list[str]:
    """The models (variants) of a probe or blocks table in the order they were probed."""
    return [str(s) for s in dict.fromkeys(calls["model"].dropna())]


def series(table: pd.DataFrame) -> pd.Series:
    """A label per row for a plot's legend: the scheme, with the autocast precision when the
    table holds more than one (``"kaiming_normal · bfloat16"``)."""
    label = table["scheme"].astype("string")
    if table["autocast"].nunique() > 1:
        label = label + " · " + table["autocast"].astype("string")
    return label


def name_patterns(names: Iterable[str]) -> list[tuple[str, int]]:
    """Dotted names grouped by pattern, in order of first appearance: names alike but for
    their numbers share one, each number that varies a ``*`` (``layer1.0.bn3.weight`` …
    ``layer4.2.bn3.weight`` → ``layer*.*.bn3.weight``), with how many names it stands for.

    >>> name_patterns(["layer1.0.bn3.weight", "layer1.1.bn3.weight", "layer2.0.bn3.weight",
    ...                "head.weight"])
    [('layer*.*.bn3.weight', 3), ('head.weight', 1)]
    """
    groups: dict[str, list[list[str]]] = {}
    for name in dict.fromkeys(names):
        groups.setdefault(re.sub(r"\d+", "#", name), []).append(re.split(r"(\d+)", name))
    out = []
    for parts in groups.values():
        # the split alternates text and numbers; a number position that varies is a *
        pattern = "".join(p if len({q[i] for q in parts}) == 1 or i % 2 == 0 else "*"
                          for i, p in enumerate(parts[0]))  # fmt: skip
        out.append((pattern, len(parts)))
    return out


def zero_summary(rows: pd.DataFrame) -> str | None:
    """The zero-by-design parameters behind a pass's zero branches (``zero_by`` and
    ``grad_zero_by``), by :func:`name_patterns` (``layer*.*.bn3.weight (16)``); None if
    none."""
    names = [str(v) for c in ("zero_by", "grad_zero_by") for v in rows[c].dropna()]
    if not names:
        return None
    return ", ".join(p if n == 1 else f"{p} ({n})" for p, n in name_patterns(names))


def _first(rows: pd.DataFrame, column: str) -> Any:
    return rows[column].iloc[0] if len(rows) else None


def probe_summary(calls: pd.DataFrame) -> pd.DataFrame:
    """One row per probe pass (model, scheme, autocast: :data:`GROUP`) of a probe table
    (:data:`~initsuite.results.columns.PROBE`), in probe order.

    Columns: ``model``, ``scheme``, ``autocast``, ``calls`` (rows), ``modules`` (distinct
    modules called), ``reinitialised``
    (modules whose weight the scheme drew), ``last_std`` (std of the last call's output),
    ``divergence_call``/``_module``/``_kind`` (the first call that overflowed or underflowed;
    null if none; a zero branch is neither), ``first_grad_std`` (the gradient at the output
    of the first call that has one: the end-to-end backward gain, R having std ≈ 1) and
    ``grad_divergence_call``/``_module``/``_kind`` (the first call, walking back from the
    output, whose gradient left the range), ``zero_by`` (the zero-by-design parameters
    behind its zero branches, by pattern: :func:`zero_summary`; null if none).
    """
    missing = [c for c in C.PROBE if c not in calls.columns]
    if missing:
        raise InitsuiteError(f"a probe table needs columns {missing}; got {list(calls.columns)}")
    rows = []
    for (model, scheme, autocast), g in calls.groupby(list(GROUP), sort=False, dropna=False):
        g = g.sort_values("call", kind="stable")
        measured = g[g["numel"].notna()]
        div = g[g["divergence_kind"].notna()]
        gdiv = g[g["grad_divergence_kind"].notna()]
        grads = g[g["grad_std"].notna()]
        rows.append({
            "model": model,
            "scheme": scheme,
            "autocast": autocast,
            "calls": len(g),
            "modules": int(g["module"].nunique()),
            "reinitialised": int(g.loc[g["reinitialised"].astype(bool), "module"].nunique()),
            "last_std": float(measured["std"].iloc[-1]) if len(measured) else math.nan,
            "divergence_call": _first(div, "call"),
            "divergence_module": _first(div, "module"),
            "divergence_kind": _first(div, "divergence_kind"),
            "first_grad_std": float(grads["grad_std"].iloc[0]) if len(grads) else math.nan,
            "grad_divergence_call": _first(gdiv, "call"),
            "grad_divergence_module": _first(gdiv, "module"),
            "grad_divergence_kind": _first(gdiv, "grad_divergence_kind"),
            "zero_by": zero_summary(g),
        })  # fmt: skip
    out = pd.DataFrame.from_records(rows)
    if out.empty:
        return out
    return out.astype({"model": "string", "scheme": "string", "autocast": "string",
                       "divergence_call": "Int64", "grad_divergence_call": "Int64",
                       "divergence_module": "string", "divergence_kind": "string",
                       "grad_divergence_module": "string",
                       "grad_divergence_kind": "string", "zero_by": "string"})  # fmt: skip

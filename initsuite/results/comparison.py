"""Line up two saved sweeps cell by cell and gate regressions: :func:`compare` and the
:class:`Comparison` it returns (tables only; :mod:`initsuite.report.comparison` renders them).

    >>> from initsuite import SweepResult, compare
    >>> cmp = compare(SweepResult.load("results/old"), SweepResult.load("results/new"),
    ...               gates="final_std:10%,divergence_layer:0,init_ms:20%")  # doctest: +SKIP
    >>> cmp.passed, cmp.summary()  # doctest: +SKIP

Cells are matched on :data:`initsuite.results.columns.CELL_KEYS`, timing rows on
:data:`~initsuite.results.columns.TIMING_KEYS`. Every ratio is new / base. Gates
(:mod:`initsuite.results.gates`) are parsed from strings such as
``final_std:10%,divergence_layer:0,init_ms:20%,missing:0``, the way pytest-benchmark's
``--benchmark-compare-fail=min:5%`` is. Cells in one run only are always reported; they fail
only through ``missing:N`` (more than N base cells absent from the new run), and cells only in
the new run (a grown grid) never fail. Two runs with no cell in common are said so in a note,
and fail any gates (failure ``cells_in_common``) unless an explicit ``missing:N`` decides.

Never imports torch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError
from initsuite.results import columns as C
from initsuite.results.gates import (
    Gate,
    differs,
    floats,
    key_text,
    layers_moved,
    normalise,
    ratio,
    same_nonfinite,
)
from initsuite.results.sweep import SweepResult, require_complete

__all__ = ["IN_COMMON_GATE", "NO_CELLS_IN_COMMON", "Comparison", "compare"]

# metadata that makes two runs' numbers or timings incomparable when it differs
_ENV_KEYS = ("initsuite", "torch", "cuda", "cpu", "torch_threads", "gpus")

IN_COMMON_GATE = "cells_in_common"
"""The ``gate`` of the failure added when gates are applied to two runs with no cell in
common (its ``base``/``new``: the cells of each run; ``value`` 0, ``limit`` 1: at least one)."""
NO_CELLS_IN_COMMON = (
    "no cells in common: no cell key is in both runs, so nothing was compared (any gates "
    "fail unless an explicit missing:N allows it)"
)

# --- lining up -------------------------------------------------------------------------------

_CELL_VALUES = ("divergence_layer", "final_std", "growth_per_layer", "input_grad_std",
                "grad_divergence_layer", "error")  # fmt: skip
_TIMING_VALUES = ("init_ms", "forward_ms")


def _check_unique(df: pd.DataFrame, keys: tuple[str, ...], which: str, table: str) -> None:
    dup = df.duplicated(list(keys), keep=False)
    if dup.any():
        first = key_text(df[dup].iloc[0], keys)
        raise InitsuiteError(
            f"the {which} run's {table} has {int(dup.sum())} rows sharing their key "
            f"(e.g. {first}): is it one sweep?"
        )


def _join(base: pd.DataFrame, new: pd.DataFrame, keys: tuple[str, ...],
          values: tuple[str, ...]) -> pd.DataFrame:  # fmt: skip
    """Outer join on ``keys`` with ``base_*``/``new_*`` value columns and a ``_merge`` side."""
    b = base[[*keys, *values]].rename(columns={v: f"base_{v}" for v in values})
    n = new[[*keys, *values]].rename(columns={v: f"new_{v}" for v in values})
    return b.merge(n, on=list(keys), how="outer", indicator=True, sort=True)


def _line_up_cells(base: pd.DataFrame, new: pd.DataFrame, rtol: float) -> pd.DataFrame:
    m = _join(base, new, C.CELL_KEYS, _CELL_VALUES)
    bd, nd = floats(m["base_divergence_layer"]), floats(m["new_divergence_layer"])
    m["divergence_shift"] = pd.array(np.where(np.isnan(bd) | np.isnan(nd), np.nan, nd - bd),
                                     dtype="Float64")  # fmt: skip
    for v in ("final_std", "growth_per_layer", "input_grad_std"):
        m[f"{v}_ratio"] = ratio(floats(m[f"base_{v}"]), floats(m[f"new_{v}"]))
    bg, ng = floats(m["base_grad_divergence_layer"]), floats(m["new_grad_divergence_layer"])
    changed = (
        layers_moved(bd, nd, 0)
        | layers_moved(bg, ng, 0)
        | differs(floats(m["base_final_std"]), floats(m["new_final_std"]), rtol)
        | differs(floats(m["base_growth_per_layer"]), floats(m["new_growth_per_layer"]), rtol)
        | differs(floats(m["base_input_grad_std"]), floats(m["new_input_grad_std"]), rtol)
        | (m["base_error"].isna() != m["new_error"].isna()).to_numpy(bool)
    )
    side = m["_merge"].astype(str).to_numpy()
    m["status"] = np.select([side == "left_only", side == "right_only", changed],
                            ["only_base", "only_new", "changed"], "same")  # fmt: skip
    m["fails"] = ""
    return m


def _line_up_timing(base: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    m = _join(base, new, C.TIMING_KEYS, _TIMING_VALUES)
    for v in _TIMING_VALUES:
        b, n = floats(m[f"base_{v}"]), floats(m[f"new_{v}"])
        m[f"{v}_ratio"] = np.where(b > 0, ratio(b, n), np.nan)
    m["fails"] = ""
    return m


# --- the comparison --------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """Two sweeps lined up: what :func:`compare` returns.

    Attributes:
        cells: one row per cell key in either run (columns
            :data:`~initsuite.results.columns.COMPARE_CELLS`).
        timing: one row per timing key in either run
            (:data:`~initsuite.results.columns.COMPARE_TIMING`).
        failures: one row per gate violation (:data:`~initsuite.results.columns.COMPARE_FAILURES`).
        gates: the gates applied (none: nothing can fail).
        labels: names of the base and new runs, for display.
        rtol: relative change below which final std, growth and input gradient std count
            as the same.
        notes: configuration or environment differences that explain or qualify changes.
    """

    cells: pd.DataFrame
    timing: pd.DataFrame
    failures: pd.DataFrame
    gates: tuple[Gate, ...] = ()
    labels: tuple[str, str] = ("base", "new")
    rtol: float = 1e-4
    notes: tuple[str, ...] = ()
    commits: tuple[str | None, str | None] = field(default=(None, None))

    @property
    def passed(self) -> bool:
        """No gate was exceeded."""
        return self.failures.empty

    def counts(self) -> dict[str, int]:
        """Cells per status (every status of COMPARE_STATUSES, zeros included)."""
        vc = self.cells["status"].value_counts()
        return {s: int(vc.get(s, 0)) for s in C.COMPARE_STATUSES}

    def summary(self) -> pd.DataFrame:
        """One row per status: ``cells`` and how many of them fail a gate (``failing``)."""
        failing = self.cells["fails"].astype(str) != ""
        return pd.DataFrame({
            "status": list(C.COMPARE_STATUSES),
            "cells": list(self.counts().values()),
            "failing": [int((failing & (self.cells["status"] == s)).sum())
                        for s in C.COMPARE_STATUSES],
        })  # fmt: skip

    def largest_changes(self, n: int = 10) -> pd.DataFrame:
        """The ``n`` changed cells that matter most: those failing a gate first, then the
        largest divergence shift (one appearing or vanishing counts as infinite), then the
        largest |log final std ratio| (a change of finiteness counting as infinite)."""
        c = self.cells[self.cells["status"] == "changed"]
        b, nd = floats(c["base_divergence_layer"]), floats(c["new_divergence_layer"])
        moved = np.where(np.isnan(b) & np.isnan(nd), 0.0, np.abs(nd - b))
        moved = np.where(np.isnan(moved), np.inf, moved)
        r = c["final_std_ratio"].to_numpy(float)
        with np.errstate(divide="ignore"):
            logr = np.abs(np.log(np.where(r > 0, r, np.inf)))  # ratio 0: infinitely far too
        unchanged = same_nonfinite(floats(c["base_final_std"]), floats(c["new_final_std"]))
        logr = np.where(np.isnan(r), np.where(unchanged, 0.0, np.inf), logr)
        order = pd.DataFrame({"f": (c["fails"] != "").to_numpy(bool), "m": moved, "l": logr})
        idx = order.sort_values(["f", "m", "l"], ascending=False, kind="stable").index[:n]
        return c.iloc[idx].reset_index(drop=True)

    def only(self, side: Literal["base", "new"]) -> pd.DataFrame:
        """Cells present in one run only, counted per (arch, scheme, activation)."""
        c = self.cells[self.cells["status"] == f"only_{side}"]
        g = c.groupby(["arch", "scheme", "activation"], observed=True, sort=True)
        return g.size().reset_index(name="cells")

    def timing_ratios(self) -> pd.DataFrame:
        """Per (device, dtype): timing rows in both runs and the geometric mean, smallest and
        largest of the init and forward ratios (new / base; > 1 is slower)."""
        t = self.timing[self.timing["init_ms_ratio"].notna() | self.timing["forward_ms_ratio"]
                        .notna()]  # fmt: skip
        rows = []
        for (device, dtype), g in t.groupby(["device", "dtype"], observed=True, sort=True):
            row: dict[str, Any] = {"device": device, "dtype": dtype, "rows": len(g)}
            for v in _TIMING_VALUES:
                r = g[f"{v}_ratio"].dropna().astype(float)
                r = r[(r > 0) & np.isfinite(r)]
                row[f"{v} ratio (geo. mean)"] = float(np.exp(np.log(r).mean())) if len(r) \
                    else np.nan  # fmt: skip
                row[f"{v} min"] = float(r.min()) if len(r) else np.nan
                row[f"{v} max"] = float(r.max()) if len(r) else np.nan
            rows.append(row)
        return pd.DataFrame(rows)

    def slowest(self, n: int = 5) -> pd.DataFrame:
        """The ``n`` timing rows with the largest init or forward ratio (failing rows first)."""
        t = self.timing
        worst = t[["init_ms_ratio", "forward_ms_ratio"]].max(axis=1, skipna=True)
        order = pd.DataFrame({"f": (t["fails"] != "").to_numpy(bool), "w": worst.to_numpy()})
        order = order[order["w"].notna()]
        idx = order.sort_values(["f", "w"], ascending=False, kind="stable").index[:n]
        return t.iloc[idx].reset_index(drop=True)

    def gate_table(self) -> pd.DataFrame:
        """One row per gate: violations and the most extreme failing value (for a two-sided
        band, the ratio furthest from 1 on a log scale), and the implicit failure of two runs
        with no cell in common."""
        rows = []
        for g in self.gates:
            f = self.failures[self.failures["gate"] == str(g)]
            v = f["value"].astype(float)
            far = (np.abs(np.log(v[v > 0])) if g.kind == "ratio" else v.abs()).dropna()
            worst = float(v.loc[far.idxmax()]) if len(far) else np.nan
            rows.append({"gate": str(g), "violations": len(f), "worst": worst,
                         "result": "FAIL" if len(f) else "pass"})  # fmt: skip
        if (self.failures["gate"] == IN_COMMON_GATE).any():
            rows.append({"gate": IN_COMMON_GATE, "violations": 1, "worst": 0.0, "result": "FAIL"})
        return pd.DataFrame(rows, columns=["gate", "violations", "worst", "result"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: labels, gates, passed, counts, notes, failures, the cells that are not
        ``same`` and every timing row (NaN and ±inf as null)."""
        return {
            "base": self.labels[0],
            "new": self.labels[1],
            "commits": list(self.commits),
            "gates": [str(g) for g in self.gates],
            "passed": self.passed,
            "rtol": self.rtol,
            "counts": self.counts(),
            "notes": list(self.notes),
            "failures": _records(self.failures),
            "cells": _records(self.cells[self.cells["status"] != "same"]),
            "timing": _records(self.timing),
        }


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values; NaN, inf and NA become None (strict JSON)."""
    out = []
    for row in df.to_dict(orient="records"):
        clean: dict[str, Any] = {}
        for k, v in row.items():
            if v is None or v is pd.NA or (isinstance(v, float) and not math.isfinite(v)):
                clean[str(k)] = None
            elif isinstance(v, np.generic):
                clean[str(k)] = v.item()
            else:
                clean[str(k)] = v
        out.append(clean)
    return out


def _short(value: Any, width: int = 40) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def _notes(base: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    """Configuration and environment differences between the two runs' metadata."""
    notes = []
    bc, nc = base.get("config") or {}, new.get("config") or {}
    diff = [k for k in sorted(set(bc) | set(nc)) if bc.get(k) != nc.get(k)]
    if diff:
        parts = [f"{k} {_short(bc.get(k))} → {_short(nc.get(k))}" for k in diff]
        notes.append("configurations differ: " + "; ".join(parts))
    be, ne = base.get("environment") or {}, new.get("environment") or {}
    diff = [k for k in _ENV_KEYS if be.get(k) != ne.get(k)]
    if diff:
        parts = [f"{k} {_short(be.get(k))} → {_short(ne.get(k))}" for k in diff]
        notes.append("environments differ (timing ratios compare different setups): "
                     + "; ".join(parts))  # fmt: skip
    return tuple(notes)


def compare(
    base: SweepResult,
    new: SweepResult,
    *,
    gates: str | Mapping[str, Gate | str | int] | None = None,
    rtol: float = 1e-4,
    labels: tuple[str, str] = ("base", "new"),
    partial: bool = False,
) -> Comparison:
    """Line up the cells and timing rows of two sweeps and apply regression gates.

    Args:
        base: the run compared against (e.g. the previous benchmark).
        new: the run under test.
        gates: ``"final_std:10%,divergence_layer:0,init_ms:20%"``, a mapping such as
            ``{"final_std": "10%", "divergence_layer": 0}`` (percentages as strings), or the
            dict of :func:`parse_gates`. Default: none (nothing fails). Semantics: see the
            module docstring.
        rtol: relative change of final std, growth per layer or input gradient std above
            which a cell counts as ``changed`` (default 1e-4: same seeds give identical
            numbers, and rounding differences of a reordered float32 sum stay far below it).
        labels: names of the two runs in summaries (e.g. their directories).
        partial: compare a sweep that did not finish (its meta.json says ``"complete":
            false``), with a note saying how much of its grid it holds; the cells it lacks
            are ``only_base`` or ``only_new``, which fail only through ``missing:N``. Default:
            refuse such a sweep (its gates would pass on the cells it happens to hold).

    Returns:
        A :class:`Comparison`; ``passed`` is False when a gate was exceeded.

    Raises:
        InitsuiteError: for a malformed gate, a run with two rows of one key, or an
            unfinished sweep without ``partial``.
    """
    applied = normalise(gates)  # bad gates fail before any work
    if not (math.isfinite(rtol) and rtol >= 0):
        raise InitsuiteError(f"rtol must be a finite number >= 0, got {rtol!r}")
    unfinished = _check_runs(base, new, labels, partial)
    cells = _line_up_cells(base.cells, new.cells, rtol)
    timing = _line_up_timing(base.timing, new.timing)
    failures = _failures(applied, cells, timing)
    commits = (_commit(base.meta), _commit(new.meta))
    notes = (*unfinished, *_notes(base.meta, new.meta))
    if not _in_common(cells):
        notes = (NO_CELLS_IN_COMMON, *notes)
    return Comparison(
        C.coerce(cells, C.COMPARE_CELLS), C.coerce(timing, C.COMPARE_TIMING), failures,
        applied, labels, rtol, notes, commits,
    )  # fmt: skip


def _check_runs(base: SweepResult, new: SweepResult, labels: tuple[str, str],
                partial: bool) -> list[str]:  # fmt: skip
    """Raise unless each run is complete (or ``partial``) and holds each key once; the notes
    on the runs that did not finish."""
    unfinished = []
    for which, r, label in (("base", base, labels[0]), ("new", new, labels[1])):
        stored = require_complete(r, label, partial, "compare")
        if stored is not None:
            unfinished.append(f"the {which} run {label!r} is an incomplete sweep ({stored}): "
                              "the cells it lacks count as only in the other run")  # fmt: skip
        _check_unique(r.cells, C.CELL_KEYS, which, "cells")
        _check_unique(r.timing, C.TIMING_KEYS, which, "timing")
    return unfinished


def _failures(applied: tuple[Gate, ...], cells: pd.DataFrame,
              timing: pd.DataFrame) -> pd.DataFrame:  # fmt: skip
    """Every gate violation of the lined-up ``cells`` and ``timing``, one row each
    (:data:`~initsuite.results.columns.COMPARE_FAILURES`)."""
    found = [_apply(g, cells, timing) for g in applied]
    found.append(_nothing_in_common(applied, cells))
    if not any(len(f) for f in found):
        return C.frame(C.COMPARE_FAILURES, [])
    return C.coerce(pd.concat([f for f in found if len(f)], ignore_index=True),
                    C.COMPARE_FAILURES)  # fmt: skip


def _apply(gate: Gate, cells: pd.DataFrame, timing: pd.DataFrame) -> pd.DataFrame:
    """``gate``'s failures; the gate is appended to the ``fails`` column of the failing rows
    of ``cells`` or ``timing``, in place."""
    which, rows, failures = gate.evaluate(cells, timing)
    table = cells if which == "cells" else timing
    col = table.columns.get_loc("fails")
    for i in rows:
        prev = table.iat[i, col]
        table.iat[i, col] = f"{prev},{gate}" if prev else str(gate)
    return failures


def _in_common(cells: pd.DataFrame) -> int:
    """Cells present in both runs."""
    return int(cells["status"].isin(["same", "changed"]).sum())


def _nothing_in_common(applied: tuple[Gate, ...], cells: pd.DataFrame) -> pd.DataFrame:
    """The implicit failure of gates applied to two runs that share no cell: every gate
    would pass having compared nothing. An explicit ``missing`` gate decides instead."""
    if not applied or any(g.kind == "cells" for g in applied) or _in_common(cells):
        return C.frame(C.COMPARE_FAILURES, [])
    n = cells["status"].value_counts()
    return pd.DataFrame({
        "gate": [IN_COMMON_GATE], "metric": ["missing"], "key": ["no cell key in both runs"],
        "base": [float(n.get("only_base", 0))], "new": [float(n.get("only_new", 0))],
        "value": [0.0], "limit": [1.0],
    })  # fmt: skip


def _commit(meta: Mapping[str, Any]) -> str | None:
    commit = (meta.get("environment") or {}).get("git_commit")
    return None if commit is None else str(commit)

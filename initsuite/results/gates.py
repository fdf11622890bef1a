"""Regression gates for :func:`initsuite.results.comparison.compare`: parsed from strings the
way pytest-benchmark's ``--benchmark-compare-fail=min:5%`` is, evaluated on two lined-up runs
with NaN-aware tests.

- ``final_std:P%``, ``growth_per_layer:P%``: new / base outside [1/(1+P/100), 1+P/100]. Both
  NaN (e.g. both overflowed) or both zero is no change; one finite and the other not is, and
  fails at any P.
- ``divergence_layer:N``: the divergence layer moved by more than N layers, or a divergence
  appeared or disappeared.
- ``input_grad_std:P%``, ``grad_divergence_layer:N``: the same for the backward pass
  (sweeps with ``--backward``).
- ``init_ms:P%``, ``forward_ms:P%``: the new median exceeds the base's by more than P% (slower
  only: a speed-up never fails).
- ``missing:N``: more than N cells of the base run are absent from the new one.

Never imports torch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError, InitsuiteTypeError, unknown
from initsuite.results import columns as C

__all__ = [
    "GATE_METRICS", "Gate", "GateKind", "Violations", "differs", "floats", "key_text",
    "layers_moved", "normalise", "outside_band", "parse_gates", "ratio", "same_nonfinite",
]  # fmt: skip

GateKind = Literal["ratio", "layers", "slower", "cells"]

GATE_METRICS: dict[str, GateKind] = {
    "final_std": "ratio",
    "growth_per_layer": "ratio",
    "divergence_layer": "layers",
    "input_grad_std": "ratio",
    "grad_divergence_layer": "layers",
    "init_ms": "slower",
    "forward_ms": "slower",
    "missing": "cells",
}
"""Gateable metrics and how each is bounded (see the module docstring)."""

# ASCII digits only, as in specs (core.spec.plain_float): re's \d also matches "１" and "٣"
_PERCENT = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)%")
_COUNT = re.compile(r"[0-9]+")
_EXAMPLE: dict[GateKind, str] = {"ratio": "10%", "slower": "20%", "layers": "0", "cells": "0"}


# --- gates -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    """One regression gate: ``metric`` bounded by ``limit``.

    Args:
        metric: one of :data:`GATE_METRICS`.
        limit: a fraction for the percentage metrics (0.1 for ``final_std:10%``), a number of
            layers for ``divergence_layer``, a number of cells for ``missing``; >= 0.

    Example:
        >>> Gate.parse("final_std:10%")
        Gate(metric='final_std', limit=0.1)
    """

    metric: str
    limit: float

    def __post_init__(self) -> None:
        if self.metric not in GATE_METRICS:
            raise InitsuiteError(unknown("gate metric", self.metric, GATE_METRICS))
        if not (math.isfinite(self.limit) and self.limit >= 0):
            raise InitsuiteError(f"gate {self.metric} limit must be >= 0, got {self.limit!r}")
        if self.kind in ("layers", "cells") and self.limit != int(self.limit):
            raise InitsuiteError(
                f"gate {self.metric} limit is a whole number of {self.kind}, got {self.limit!r}"
            )

    @property
    def kind(self) -> GateKind:
        """How the metric is bounded: ratio (two-sided band), slower, layers or cells."""
        return GATE_METRICS[self.metric]

    @property
    def bound(self) -> float:
        """The largest value that passes: ratio 1+p for percentages, else the count."""
        return 1.0 + self.limit if self.kind in ("ratio", "slower") else self.limit

    def __str__(self) -> str:
        if self.kind in ("ratio", "slower"):
            return f"{self.metric}:{self.limit * 100:g}%"
        return f"{self.metric}:{int(self.limit)}"

    @classmethod
    def parse(cls, text: str) -> Gate:
        """A gate from ``METRIC:LIMIT``, e.g. ``final_std:10%`` or ``divergence_layer:0``."""
        metric, sep, limit = (t.strip() for t in text.strip().partition(":"))
        if metric not in GATE_METRICS:
            raise InitsuiteError(unknown("gate metric", metric, GATE_METRICS))
        if not sep or not limit:
            raise InitsuiteError(_limit_message(metric, text))
        return cls(metric, _parse_limit(metric, limit, text))

    def evaluate(self, cells: pd.DataFrame, timing: pd.DataFrame) -> Violations:
        """Where this gate fails on two lined-up runs.

        Args:
            cells: one row per cell key with ``status``, ``base_*``, ``new_*`` and ``*_ratio``
                columns (:data:`~initsuite.results.columns.COMPARE_CELLS`).
            timing: likewise per timing key (:data:`~initsuite.results.columns.COMPARE_TIMING`).
        """
        which, b, n, value, bad = self._measure(cells, timing)
        table, keys = (timing, C.TIMING_KEYS) if which == "timing" else (cells, C.CELL_KEYS)
        idx = np.flatnonzero(bad)
        rows = table.iloc[idx]
        failures = pd.DataFrame({
            "gate": str(self), "metric": self.metric,
            "key": [key_text(r, keys) for _, r in rows.iterrows()],
            "base": b[idx], "new": n[idx], "value": value[idx], "limit": self.bound,
        })  # fmt: skip
        return Violations(which, idx, failures)

    def _measure(self, cells: pd.DataFrame, timing: pd.DataFrame) -> tuple[
        Literal["cells", "timing"], np.ndarray, np.ndarray, np.ndarray, np.ndarray
    ]:  # fmt: skip
        """The table the gate reads; per row the base and new values, the value bounded
        (a ratio, layers moved, cells missing) and whether the row fails."""
        m = self.metric
        if self.kind == "slower":
            b, n = floats(timing[f"base_{m}"]), floats(timing[f"new_{m}"])
            value = timing[f"{m}_ratio"].to_numpy(float)
            return "timing", b, n, value, np.isfinite(value) & (value > self.bound)
        if self.kind == "cells":
            dropped = (cells["status"] == "only_base").to_numpy(bool)
            nan = np.full(len(cells), np.nan)
            value = np.full(len(cells), float(dropped.sum()))
            return "cells", nan, nan, value, dropped & (dropped.sum() > self.limit)
        both = cells["status"].isin(["same", "changed"]).to_numpy(bool)
        b, n = floats(cells[f"base_{m}"]), floats(cells[f"new_{m}"])
        if self.kind == "ratio":
            value = cells[f"{m}_ratio"].to_numpy(float)
            return "cells", b, n, value, both & outside_band(b, n, self.limit)
        if self.kind == "layers":
            value = np.where(np.isnan(b) | np.isnan(n), np.nan, n - b)
            return "cells", b, n, value, both & layers_moved(b, n, self.limit)
        raise InitsuiteError(unknown("gate kind", self.kind, sorted(set(GATE_METRICS.values()))))


class Violations(NamedTuple):
    """Where a gate failed: the table (``cells`` or ``timing``), the positions of its failing
    rows, and one row per failure (columns :data:`~initsuite.results.columns.COMPARE_FAILURES`)."""

    table: Literal["cells", "timing"]
    rows: np.ndarray
    failures: pd.DataFrame


def key_text(row: pd.Series, keys: tuple[str, ...]) -> str:
    """A row's key as ``k=v`` pairs, e.g. ``arch=mlp scheme=normal ...``."""
    return " ".join(f"{k}={row[k]}" for k in keys)


def _limit_message(metric: str, text: str) -> str:
    kind = GATE_METRICS[metric]
    what = "a percentage" if kind in ("ratio", "slower") else f"a whole number of {kind}"
    return f"gate {text.strip()!r}: the limit must be {what}, e.g. {metric}:{_EXAMPLE[kind]}"


def _parse_limit(metric: str, limit: str, text: str) -> float:
    kind = GATE_METRICS[metric]
    pattern = _PERCENT if kind in ("ratio", "slower") else _COUNT
    match = pattern.fullmatch(limit)
    if match is None:
        raise InitsuiteError(_limit_message(metric, text))
    return float(match.group(1)) / 100 if kind in ("ratio", "slower") else float(limit)


def parse_gates(text: str) -> dict[str, Gate]:
    """Gates from a comma list, keyed by metric: ``"final_std:10%,divergence_layer:0"``.

    Raises:
        InitsuiteError: for an empty list, an unknown metric (naming the nearest), a limit
            that is not a percentage (or a whole number, for ``divergence_layer`` and
            ``missing``), or a metric given twice.
    """
    gates: dict[str, Gate] = {}
    for item in (t for t in text.split(",") if t.strip()):
        gate = Gate.parse(item)
        if gate.metric in gates:
            raise InitsuiteError(f"gate {gate.metric!r} given twice in {text!r}")
        gates[gate.metric] = gate
    if not gates:
        raise InitsuiteError(f"no gates in {text!r}; e.g. final_std:10%,divergence_layer:0")
    return gates


def normalise(gates: str | Mapping[str, Gate | str | int] | None) -> tuple[Gate, ...]:
    """Normalise ``compare``'s ``gates`` argument (text, mapping or None)."""
    if gates is None:
        return ()
    if isinstance(gates, str):
        return tuple(parse_gates(gates).values())
    if not isinstance(gates, Mapping):
        raise InitsuiteTypeError(
            f"gates must be text such as 'final_std:10%,divergence_layer:0', a mapping of "
            f"metric to limit, or None; got {type(gates).__name__} {gates!r:.60}"
        )
    out = []
    for metric, limit in gates.items():
        if isinstance(limit, Gate):
            if limit.metric != metric:
                raise InitsuiteError(f"gate {limit} listed under {metric!r}")
            out.append(limit)
        elif isinstance(limit, (str, int)) and not isinstance(limit, bool):
            # parsed as text, so a bare number is accepted only as a count: 0.1 for final_std
            # could mean 10% or 0.1%, and fails with the message asking for "10%"
            out.append(Gate.parse(f"{metric}:{limit}"))
        else:
            raise InitsuiteError(_limit_message(metric, f"{metric}:{limit!r}"))
    return tuple(out)


# --- numerics --------------------------------------------------------------------------------


def floats(s: pd.Series) -> np.ndarray:
    """A float array with NaN for null (Int64 and float columns alike)."""
    return pd.to_numeric(s, errors="coerce").astype("Float64").to_numpy(float, na_value=np.nan)


def ratio(base: np.ndarray, new: np.ndarray) -> np.ndarray:
    """new / base where both are finite: 0/0 is 1 (zeros stay zeros), x/0 is ±inf; else NaN."""
    out = np.full(base.shape, np.nan)
    finite = np.isfinite(base) & np.isfinite(new)
    zero = finite & (base == 0)
    ok = finite & ~zero
    out[ok] = new[ok] / base[ok]
    out[zero & (new == 0)] = 1.0
    grew = zero & (new != 0)
    out[grew] = np.copysign(np.inf, new[grew])
    return out


def same_nonfinite(base: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Both not finite and alike: both NaN (diverged at the same point) or the same inf."""
    alike = (np.isnan(base) & np.isnan(new)) | (base == new)
    return ~np.isfinite(base) & ~np.isfinite(new) & alike


def differs(base: np.ndarray, new: np.ndarray, rtol: float) -> np.ndarray:
    """Changed beyond ``rtol`` (relative to the larger magnitude), NaN-aware."""
    finite = np.isfinite(base) & np.isfinite(new)
    scale = np.maximum(np.abs(base), np.abs(new))
    with np.errstate(invalid="ignore"):  # inf - inf where not finite: masked out below
        moved = np.abs(new - base) > rtol * scale
    return np.where(finite, moved, ~same_nonfinite(base, new))


def outside_band(base: np.ndarray, new: np.ndarray, p: float) -> np.ndarray:
    """A ratio gate's failures: new/base outside [1/(1+p), 1+p], or finiteness changed."""
    finite = np.isfinite(base) & np.isfinite(new)
    r = ratio(base, new)
    outside = finite & ((r > 1 + p) | (r < 1 / (1 + p)))
    return outside | (~finite & ~same_nonfinite(base, new))


def layers_moved(base: np.ndarray, new: np.ndarray, n: float) -> np.ndarray:
    """A divergence gate's failures: moved by more than ``n`` layers, appeared or vanished."""
    both = ~np.isnan(base) & ~np.isnan(new)
    with np.errstate(invalid="ignore"):
        moved = both & (np.abs(new - base) > n)
    return moved | (np.isnan(base) != np.isnan(new))

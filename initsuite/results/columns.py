"""Every result table's columns, in order, and the tables built in their declared dtypes
(:func:`frame`); for a quantity the report draws, its axis label (:func:`label`).

Tables are tidy (long): one row per cell, per layer of a cell, or per timing point. Later
stages (store, report, compare) refer to these names only through this module. What each name
means (its dtype, its meaning, its label) is :mod:`initsuite.results.column_specs`; a stored
table is read back through :func:`initsuite.results.conform.conform`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from initsuite.core.errors import InitsuiteError, unknown
from initsuite.results.column_specs import LABELS, PROBE_LABELS, SPECS

__all__ = [
    "BENCHMARKS",
    "BENCHMARK_CHANGES",
    "BENCHMARK_RATIOS",
    "CELLS",
    "CELL_KEYS",
    "CMAP",
    "CMAP_KEYS",
    "COMPARE_CELLS",
    "COMPARE_FAILURES",
    "COMPARE_STATUSES",
    "COMPARE_TIMING",
    "COORDS",
    "COORDS_KEYS",
    "DIVERGENCE_KINDS",
    "FRAMEWORK_CONVENTIONS",
    "FRAMEWORK_CONVENTIONS_KEYS",
    "FRAMEWORK_KEYS",
    "FRAMEWORK_LAYERS",
    "FRAMEWORK_LAYERS_KEYS",
    "FRAMEWORK_RUNS",
    "FRAMEWORK_TRAINING",
    "FRAMEWORK_TRAINING_KEYS",
    "FRAMEWORK_TRAINING_RUNS",
    "KSHAPING_CURVES",
    "KSHAPING_KEYS",
    "KSHAPING_RUNS",
    "LAYERS",
    "MUTRANSFER",
    "MUTRANSFER_KEYS",
    "NONNEGATIVE",
    "OPTIONAL",
    "PHASE_GRID",
    "PHASE_GRID_KEYS",
    "PHASE_POINTS",
    "PHASE_POINTS_KEYS",
    "PROBE",
    "PROBE_BLOCKS",
    "PROBE_BLOCKS_KEYS",
    "SHAPING",
    "SPECTRA",
    "SPECTRA_KEYS",
    "THEORY",
    "THEORY_KEYS",
    "TIMING",
    "TIMING_KEYS",
    "TRAINING",
    "TRAINING_KEYS",
    "TRAINING_RUNS",
    "TUTORIAL",
    "TUTORIAL_LAYERS",
    "coerce",
    "describe",
    "empty",
    "frame",
    "label",
]

CELL_KEYS: tuple[str, ...] = (
    "arch", "scheme", "activation", "depth", "width", "batch", "seed", "device", "dtype",
)  # fmt: skip
"""The columns that identify a cell."""

CELLS: tuple[str, ...] = (
    *CELL_KEYS, "bias", "input_std", "divergence_layer", "divergence_kind", "final_std",
    "growth_per_layer", "error", "theory_final_std", "theory_divergence_layer",
    "theory_divergence_kind", "theory_growth_per_layer", "theory_chi1",
    "jac_sv2_mean", "jac_sv2_var", "jac_sv_max", "jac_sv_min", "jac_condition",
    "input_grad_std", "theory_input_grad_std", "weight_grad_ratio", "grad_divergence_layer",
    "grad_divergence_kind", "cell_key",
)  # fmt: skip

LAYERS: tuple[str, ...] = (
    *CELL_KEYS, "layer", "std", "mean", "theory_std", "cosine", "theory_cosine", "grad_std",
    "weight_grad_norm", "theory_grad_std", "theory_weight_grad_norm",
)  # fmt: skip

TIMING_KEYS: tuple[str, ...] = ("scheme", "width", "device", "dtype")
TIMING: tuple[str, ...] = (
    *TIMING_KEYS, "init_ms", "init_ms_iqr", "forward_ms", "forward_ms_iqr", "repeats",
)  # fmt: skip

TRAINING_KEYS: tuple[str, ...] = ("scheme", "activation", "depth", "width", "seed")
"""The columns that identify a training run (depth counts every Linear layer)."""
TRAINING: tuple[str, ...] = (
    *TRAINING_KEYS, "step", "batch_loss", "train_loss", "train_accuracy", "test_loss",
    "test_accuracy",
)  # fmt: skip
TRAINING_RUNS: tuple[str, ...] = (
    *TRAINING_KEYS, "steps", "steps_to_threshold", "reached", "diverged", "diverged_step",
    "initial_train_loss", "final_train_loss", "final_train_accuracy", "final_test_accuracy",
)  # fmt: skip

PROBE: tuple[str, ...] = (
    "model", "scheme", "seed", "autocast", "call", "module", "type", "reinitialised", "shape",
    "dtype", "numel", "std", "mean", "nonfinite_fraction", "grad_std", "weight_norm",
    "weight_grad_norm", "weight_update_ratio", "divergence_kind", "grad_divergence_kind",
    "zero_by", "grad_zero_by",
)  # fmt: skip
"""``initsuite.probe``: one row per module call (``scheme`` is ``as_built`` for the model's
own initialisation; the weight columns describe the module's own ``weight``, its gradient
summed over every call of the pass; ``zero_by``/``grad_zero_by`` name the zero-by-design
parameter behind an exactly-zero output or gradient: a zero branch, not a divergence)."""
PROBE_BLOCKS_KEYS: tuple[str, ...] = (
    "model", "scheme", "seed", "autocast", "block", "module", "type",
)  # fmt: skip
PROBE_BLOCKS: tuple[str, ...] = (
    *PROBE_BLOCKS_KEYS, "stream_std", "update_std", "update_ratio", "stream_grad_std",
)  # fmt: skip
"""``initsuite.probe``'s ``blocks`` table: one row per call of a known residual block."""

TUTORIAL: tuple[str, ...] = (
    "experiment", "scheme", "activation", "dtype", "quantity", "tutorial", "expected",
    "expected_source", "measured_mean", "measured_sd", "measured_min", "measured_max", "seeds",
    "tolerance", "agree", "note",
)  # fmt: skip
"""``initsuite reproduce tutorial``: one row per claim (``tutorial.parquet``)."""
TUTORIAL_LAYERS: tuple[str, ...] = ("experiment", "seed", "layer", "std", "mean", "theory_std")
"""The tutorial's nets layer by layer: one row per claim, seed and layer (``layers.parquet``)."""
SHAPING: tuple[str, ...] = ("alpha", "beta", "gamma", "delta", "negative_slope")
"""The solved constants of a ``dks:``/``tat:`` activation (:class:`~initsuite.activations.Shaping`):
φ̂(x) = γ·(φ(α·x + β) + δ), TAT's leaky ReLU γ·leaky_relu(x, negative_slope)."""
THEORY_KEYS: tuple[str, ...] = ("arch", "scheme", "activation", "depth", "width")
THEORY: tuple[str, ...] = (
    *THEORY_KEYS, "sigma_w2", "sigma_b2", "mean_field", "predicted_log_std_sd", *SHAPING,
)  # fmt: skip
"""A sweep's ``theory`` table: per cell configuration, whether and where mean-field theory
places it, and the solved constants of a kernel-shaped activation at the cell's depth
(computed from the configuration alone, before any cell runs)."""
PHASE_POINTS_KEYS: tuple[str, ...] = ("activation", "scheme")
PHASE_POINTS: tuple[str, ...] = (
    *PHASE_POINTS_KEYS, "width", "sigma_w2", "sigma_b2", "q_star", "chi1", "depth_scale",
    "c_star", "chi_c", "xi_c", "chi_q", "xi_q", "phase",
)  # fmt: skip
"""A sweep's ``phase_points``: where each scheme that mean-field theory applies to sits in
the phase diagram of each activation, at the sweep's largest width."""
PHASE_GRID_KEYS: tuple[str, ...] = ("activation", "sigma_w2", "sigma_b2")
PHASE_GRID: tuple[str, ...] = (
    *PHASE_GRID_KEYS, "q_star", "chi1", "depth_scale", "c_star", "chi_c", "xi_c", "chi_q",
    "xi_q", "phase",
)  # fmt: skip
"""A sweep's ``phase_grid``: the phase diagram of each of its activations over (σ_w², σ_b²)."""

SPECTRA_KEYS: tuple[str, ...] = ("scheme", "activation", "depth", "seed")
SPECTRA: tuple[str, ...] = (*SPECTRA_KEYS, "sv")
"""``initsuite reproduce isometry``: one row per singular value of a Jacobian."""

CMAP_KEYS: tuple[str, ...] = ("activation", "scheme", "depth", "width", "seed", "input_cosine")
CMAP: tuple[str, ...] = (
    *CMAP_KEYS, "output_cosine", "theory_output_cosine", "output_q", "theory_output_q",
)  # fmt: skip
"""The c-map study (:func:`initsuite.studies.cmap.cmap_study`): one row per net, depth,
width, seed and input cosine."""

FRAMEWORK_KEYS: tuple[str, ...] = ("law", "model", "seed")
FRAMEWORK_LAYERS_KEYS: tuple[str, ...] = (*FRAMEWORK_KEYS, "layer")
FRAMEWORK_LAYERS: tuple[str, ...] = (*FRAMEWORK_LAYERS_KEYS, "std", "mean", "grad_std")
"""``initsuite reproduce frameworks``: one row per law, model, seed and layer (block)."""
FRAMEWORK_RUNS: tuple[str, ...] = (
    *FRAMEWORK_KEYS, "arch", "activation", "depth", "width", "input_std", "final_std",
    "divergence_layer", "divergence_kind", "input_grad_std", "grad_divergence_layer",
    "grad_divergence_kind", "sigma_w2", "sigma_b2", "critical_sigma_w2",
)  # fmt: skip
"""``initsuite reproduce frameworks``: one row per law, model and seed."""
FRAMEWORK_TRAINING_KEYS: tuple[str, ...] = ("law", "activation", "depth", "width", "seed")
FRAMEWORK_TRAINING: tuple[str, ...] = (
    *FRAMEWORK_TRAINING_KEYS, "step", "batch_loss", "train_loss", "train_accuracy", "test_loss",
    "test_accuracy",
)  # fmt: skip
"""``initsuite reproduce frameworks``: each law's digits MLP in training, one row per step."""
FRAMEWORK_TRAINING_RUNS: tuple[str, ...] = (
    *FRAMEWORK_TRAINING_KEYS, "steps", "steps_to_threshold", "reached", "diverged",
    "diverged_step", "initial_train_loss", "final_train_loss", "final_train_accuracy",
    "final_test_accuracy", "sigma_w2", "sigma_b2", "critical_sigma_w2",
)  # fmt: skip
"""``initsuite reproduce frameworks``: one row per law, activation and seed of training."""
FRAMEWORK_CONVENTIONS_KEYS: tuple[str, ...] = ("convention", "layer_type", "parameter")
FRAMEWORK_CONVENTIONS: tuple[str, ...] = (
    *FRAMEWORK_CONVENTIONS_KEYS, "rule", "distribution", "variance_fan_in", "variance",
    "truncation", "per_projection", "checked",
)  # fmt: skip
"""``initsuite reproduce frameworks``: the rules of the conventions it applied, as applied."""

COORDS_KEYS: tuple[str, ...] = (
    "parametrization", "model", "width", "depth", "seed", "step", "module",
)  # fmt: skip
COORDS: tuple[str, ...] = (
    "parametrization", "model", "optimizer", "lr", "width", "depth", "seed", "step", "module",
    "type", "role", "l1", "rms", "delta_rms", "loss",
)  # fmt: skip
"""``initsuite coordcheck``: one row per parametrization, width, depth, seed, step and module
output (``coords.parquet``)."""

MUTRANSFER_KEYS: tuple[str, ...] = (
    "parametrization", "model", "optimizer", "width", "depth", "lr", "seed",
)  # fmt: skip
MUTRANSFER: tuple[str, ...] = (
    *MUTRANSFER_KEYS, "steps", "diverged", "final_train_loss", "final_test_loss",
)  # fmt: skip
"""``initsuite reproduce mutransfer``: one row per trained model (``runs.parquet``)."""

KSHAPING_KEYS: tuple[str, ...] = ("net", "depth", "width", "seed")
KSHAPING_CURVES: tuple[str, ...] = (
    *KSHAPING_KEYS, "step", "batch_loss", "train_loss", "train_accuracy", "test_loss",
    "test_accuracy",
)  # fmt: skip
"""``initsuite reproduce kernel-shaping``: one row per net, depth, seed and step
(``curves.parquet``)."""
KSHAPING_RUNS: tuple[str, ...] = (
    *KSHAPING_KEYS, "arch", "activation", "scheme", "normalized", "steps",
    "steps_to_threshold", "reached", "diverged", "diverged_step", "initial_train_loss",
    "final_train_loss", "final_train_accuracy", "final_test_accuracy",
)  # fmt: skip
"""``initsuite reproduce kernel-shaping``: one row per trained net (``runs.parquet``)."""

DIVERGENCE_KINDS: tuple[str, ...] = ("overflow", "underflow", "explode", "vanish")

COMPARE_STATUSES: tuple[str, ...] = ("same", "changed", "only_base", "only_new")
"""How a cell of one run relates to the other's (``initsuite.compare``): ``same`` (divergence
layer, error and final std / growth within the comparison's rtol), ``changed``, or present in
one run only."""
COMPARE_CELLS: tuple[str, ...] = (
    *CELL_KEYS, "status", "base_divergence_layer", "new_divergence_layer", "divergence_shift",
    "base_final_std", "new_final_std", "final_std_ratio", "base_growth_per_layer",
    "new_growth_per_layer", "growth_per_layer_ratio", "base_input_grad_std",
    "new_input_grad_std", "input_grad_std_ratio", "base_grad_divergence_layer",
    "new_grad_divergence_layer", "base_error", "new_error", "fails",
)  # fmt: skip
COMPARE_TIMING: tuple[str, ...] = (
    *TIMING_KEYS, "base_init_ms", "new_init_ms", "init_ms_ratio", "base_forward_ms",
    "new_forward_ms", "forward_ms_ratio", "fails",
)  # fmt: skip
COMPARE_FAILURES: tuple[str, ...] = ("gate", "metric", "key", "base", "new", "value", "limit")
"""One row per gate violation (``initsuite.compare``)."""

BENCHMARKS: tuple[str, ...] = (
    "group", "name", "fullname", "min_s", "max_s", "mean_s", "stddev_s", "median_s", "iqr_s",
    "ops", "rounds", "reference",
)  # fmt: skip
"""One row per benchmark of a pytest-benchmark run (``initsuite.results.benchmarks``)."""
BENCHMARK_RATIOS: tuple[str, ...] = (
    "group", "reference_name", "name", "median_s", "reference_median_s", "ratio",
)  # fmt: skip
"""Each benchmark's median over its group's reference median, once per reference."""
BENCHMARK_CHANGES: tuple[str, ...] = (
    "group", "name", "fullname", "base_median_s", "new_median_s", "median_ratio", "gate_value",
    "fails",
)  # fmt: skip
"""One row per benchmark of either of two runs: this run's median over the previous one's."""

OPTIONAL: frozenset[str] = frozenset({
    "theory_std", "cosine", "theory_cosine", "theory_final_std", "theory_divergence_layer",
    "theory_divergence_kind", "theory_growth_per_layer", "theory_chi1", "jac_sv2_mean",
    "jac_sv2_var", "jac_sv_max", "jac_sv_min", "jac_condition", "grad_std", "weight_grad_norm",
    "theory_grad_std", "theory_weight_grad_norm", "input_grad_std", "theory_input_grad_std",
    "weight_grad_ratio", "grad_divergence_layer", "grad_divergence_kind", "cell_key",
    "c_star", "chi_c", "xi_c", "chi_q", "xi_q", "autocast", "weight_norm", "weight_update_ratio",
    "model", "zero_by", "grad_zero_by", *SHAPING,
})  # fmt: skip
"""Columns added after the first file format: results written before them load with the
columns empty (null) instead of failing."""

NONNEGATIVE: frozenset[str] = frozenset({
    "std", "input_std", "final_std", "growth_per_layer", "theory_std", "theory_final_std",
    "theory_growth_per_layer", "theory_chi1", "jac_sv2_mean", "jac_sv2_var", "jac_sv_max",
    "jac_sv_min", "jac_condition", "grad_std", "weight_grad_norm", "theory_grad_std",
    "theory_weight_grad_norm", "input_grad_std", "theory_input_grad_std", "weight_grad_ratio",
    "init_ms", "init_ms_iqr", "forward_ms", "forward_ms_iqr", "nonfinite_fraction",
    "stream_std", "update_std", "update_ratio", "stream_grad_std", "weight_norm",
    "weight_update_ratio", "sv", "sigma_w2", "sigma_b2", "q_star", "chi1", "measured_sd",
    "lr", "l1", "rms", "delta_rms",
})  # fmt: skip
"""Columns of standard deviations, norms, variances and times: a stored value below 0 is
damage (NaN and +inf are values they take)."""


def label(column: str, table: tuple[str, ...] = LAYERS) -> str:
    """The axis label of the quantity ``column`` of ``table`` (one of this module's tables:
    :data:`LAYERS` by default), what every figure and caption calls it.

    >>> label("std"), label("std", PROBE)
    ('post-activation std', "std of the module's output")
    """
    if column not in table:
        raise InitsuiteError(unknown("column", column, list(table)))
    labels = {**LABELS, **PROBE_LABELS} if table in (PROBE, PROBE_BLOCKS) else LABELS
    if column not in labels:
        raise InitsuiteError(f"column {column!r} has no label: a figure draws only the "
                             f"quantities {', '.join(labels)}")  # fmt: skip
    return labels[column]


def frame(columns: tuple[str, ...], records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Build a table with exactly ``columns``, in order, each with its declared dtype."""
    return coerce(pd.DataFrame.from_records(list(records), columns=list(columns)), columns)


def coerce(df: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """``df`` restricted to ``columns``, in order, each cast to its declared dtype."""
    out = df[list(columns)]
    # only the columns not in their dtype yet: a cast of each column costs more than the rest
    cast = {c: t for c in columns if out[c].dtype != pd.api.types.pandas_dtype(t := SPECS[c][0])}
    return out.astype(cast) if cast else out


def empty(column: str, length: int) -> pd.Series:
    """A null column of ``column``'s declared dtype."""
    dtype = SPECS[column][0]
    return pd.Series([None] * length if dtype != "float64" else [float("nan")] * length,
                     dtype=dtype)  # fmt: skip


def describe(columns: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(name, dtype, meaning) for each column, for docs and the report."""
    return [(c, *SPECS[c]) for c in columns]

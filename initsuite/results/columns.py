"""Every column name of the result tables, defined once, with its dtype and meaning, and
for a quantity the report draws, its axis label (:func:`label`).

Tables are tidy (long): one row per cell, per layer of a cell, or per timing point. Later
stages (store, report, compare) refer to these names only through this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError, unknown

__all__ = [
    "BENCHMARKS",
    "BENCHMARK_CHANGES",
    "BENCHMARK_RATIOS",
    "CELLS",
    "CELL_KEYS",
    "COMPARE_CELLS",
    "COMPARE_FAILURES",
    "COMPARE_STATUSES",
    "COMPARE_TIMING",
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
    "LAYERS",
    "NONNEGATIVE",
    "OPTIONAL",
    "PHASE_GRID",
    "PHASE_GRID_KEYS",
    "PHASE_POINTS",
    "PHASE_POINTS_KEYS",
    "PROBE",
    "PROBE_BLOCKS",
    "PROBE_BLOCKS_KEYS",
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
    "conform",
    "describe",
    "empty",
    "frame",
    "label",
]

# name -> (pandas dtype, meaning)
_SPEC: dict[str, tuple[str, str]] = {
    "arch": ("string", "architecture (mlp: depth × Linear(width, width) + activation)"),
    "scheme": ("string", "canonical scheme spec, e.g. kaiming_uniform:a=0.5"),
    "activation": ("string", "canonical activation spec"),
    "depth": ("int64", "number of layers"),
    "width": ("int64", "units per layer (fan_in = fan_out = width)"),
    "batch": ("int64", "rows of the N(0, 1) input"),
    "seed": ("int64", "seed of the cell's torch.Generator"),
    "device": ("string", "torch device the cell ran on"),
    "dtype": ("string", "dtype of weights and activations"),
    "bias": ("bool", "Linear layers with bias (U(±1/√fan_in), PyTorch's default)"),
    "layer": ("int64", "1-based layer index"),
    "std": (
        "float64",
        "std (correction=1) of the layer's output: its post-activation values (resmlp: the "
        "residual stream after the block)",
    ),
    "mean": ("float64", "mean of the layer's output (its post-activation values)"),
    "input_std": ("float64", "std of the input x"),
    "divergence_layer": ("Int64", "first layer that overflowed/underflowed/crossed a threshold"),
    "divergence_kind": ("string", "overflow | underflow | explode | vanish; null if none"),
    "final_std": ("float64", "std after the last computed layer (NaN if it overflowed)"),
    "growth_per_layer": ("float64", "geometric mean of the per-layer std ratio"),
    "error": ("string", "why the cell failed (null when it ran)"),
    "cell_key": (
        "string",
        "hash of the cell's key columns, settings and versions (resume, compare)",
    ),
    "theory_std": (
        "float64",
        "mean-field prediction of std (initsuite.theory); NaN where it does not apply",
    ),
    "theory_final_std": ("float64", "theory_std at the cell's last computed layer"),
    "theory_divergence_layer": (
        "Int64",
        "first layer the prediction leaves the dtype's normal range",
    ),
    "theory_divergence_kind": ("string", "overflow | underflow per the prediction; null if none"),
    "theory_growth_per_layer": ("float64", "theory_final_std^(1/k) at that layer k (input std 1)"),
    "cosine": ("float64", "cosine of the input pair's pre-activations at this layer (c-map)"),
    "theory_cosine": ("float64", "mean-field c-map prediction of cosine"),
    "theory_chi1": ("float64", "σ_w²·E[φ'(√q z)²] at the last computed layer: >1 chaotic"),
    "jac_sv2_mean": ("float64", "mean squared singular value of the input-output Jacobian"),
    "jac_sv2_var": ("float64", "variance of its squared singular values (0: isometric)"),
    "jac_sv_max": ("float64", "largest singular value of the Jacobian"),
    "jac_sv_min": ("float64", "smallest singular value of the Jacobian"),
    "jac_condition": ("float64", "jac_sv_max / jac_sv_min (inf when singular)"),
    "grad_std": (
        "float64",
        "std of dLoss/d(layer output) for Loss = Σ R⊙h_depth, R ~ N(0, 1) fixed (--backward)",
    ),
    "weight_grad_norm": ("float64", "Frobenius norm of dLoss/dW of the layer"),
    "theory_grad_std": ("float64", "mean-field grad_std: sqrt of the product of χ₁ above"),
    "theory_weight_grad_norm": ("float64", "mean-field weight_grad_norm"),
    "input_grad_std": ("float64", "std of dLoss/dx: the backward gain through the whole net"),
    "theory_input_grad_std": ("float64", "mean-field input_grad_std"),
    "weight_grad_ratio": (
        "float64",
        "largest / smallest weight_grad_norm over the layers (1: alike; inf: one left the range)",
    ),
    "grad_divergence_layer": (
        "Int64",
        "first layer, walking back from the output, whose gradient left the range (0: dLoss/dx)",
    ),
    "grad_divergence_kind": ("string", "overflow | underflow | explode | vanish; null if none"),
    "step": ("int64", "optimiser steps taken (0: before the first update)"),
    "batch_loss": ("float64", "cross-entropy of the minibatch at this step (before its update)"),
    "train_loss": ("float64", "mean cross-entropy over the training split (eval steps only)"),
    "train_accuracy": ("float64", "accuracy on the training split (eval steps only)"),
    "test_loss": ("float64", "mean cross-entropy over the test split (eval steps only)"),
    "test_accuracy": ("float64", "accuracy on the test split (eval steps only)"),
    "steps": ("int64", "optimiser steps the run was given"),
    "steps_to_threshold": (
        "Int64",
        "first evaluated step whose train_loss reached the threshold; null if never",
    ),
    "reached": ("bool", "train_loss reached the threshold within the steps"),
    "diverged": ("bool", "the loss became inf/nan"),
    "diverged_step": ("Int64", "step at which it did; null if never"),
    "initial_train_loss": ("float64", "train_loss at initialisation (ln classes ≈ chance)"),
    "final_train_loss": ("float64", "train_loss after the last step (NaN if diverged)"),
    "final_train_accuracy": ("float64", "train accuracy after the last step"),
    "final_test_accuracy": ("float64", "test accuracy after the last step"),
    "init_ms": ("float64", "median time to initialise one width×width weight, ms"),
    "init_ms_iqr": ("float64", "interquartile range of init_ms, ms"),
    "forward_ms": (
        "float64",
        "median time of one layer's forward (product and the first activation), ms",
    ),
    "forward_ms_iqr": ("float64", "interquartile range of forward_ms, ms"),
    "repeats": ("int64", "timed repeats behind the medians"),
    # initsuite.probe: one row per call of a probed module of any nn.Module (std, mean,
    # grad_std, dtype, divergence_kind and grad_divergence_kind there describe that call's
    # output, and the divergence kinds mark only the first such call)
    "call": ("int64", "1-based position of the module call in execution order (of returns)"),
    "module": ("string", "qualified name of the module in the model; (root) for the model"),
    "type": ("string", "class name of the module, e.g. Conv2d"),
    "reinitialised": ("bool", "the scheme re-drew a weight of this module (initsuite.apply)"),
    "shape": ("string", "shape of the output tensor recorded, comma-separated; null if none"),
    "numel": ("Int64", "elements of that tensor; null when the output holds no float tensor"),
    "nonfinite_fraction": ("float64", "fraction of the output's values that are inf or nan"),
    # initsuite.probe's blocks table: one row per call of a known residual block
    # (initsuite.engine.roles.KNOWN_BLOCKS) whose output has its input's shape
    "block": ("int64", "1-based position of the block call in execution order (of returns)"),
    "stream_std": ("float64", "std of the block's output: the residual stream after it"),
    "update_std": ("float64", "std of output - input: what the block added to the stream"),
    "update_ratio": ("float64", "update_std / std of the block's input (the stream before)"),
    "stream_grad_std": ("float64", "std of dLoss/d(block output) (--backward); NaN without"),
    "autocast": ("string", "autocast precision of the pass: float32 (none), bfloat16, float16"),
    "weight_norm": ("float64", "Frobenius norm of the module's own weight; null if it has none"),
    "weight_update_ratio": (
        "float64",
        "weight_grad_norm / weight_norm: the relative size of an SGD step at learning rate 1",
    ),
    # initsuite.compare: two runs lined up on CELL_KEYS (cells) or TIMING_KEYS (timing); base_*
    # is the run compared against, new_* the other, and every ratio is new / base
    "status": ("string", "same | changed | only_base | only_new (see COMPARE_STATUSES)"),
    "base_divergence_layer": ("Int64", "divergence_layer in the base run"),
    "new_divergence_layer": ("Int64", "divergence_layer in the new run"),
    "divergence_shift": (
        "Int64",
        "new_divergence_layer - base_divergence_layer, layers; null unless both diverged",
    ),
    "base_final_std": ("float64", "final_std in the base run"),
    "new_final_std": ("float64", "final_std in the new run"),
    "final_std_ratio": (
        "float64",
        "new / base final_std (both 0: 1; only base 0: inf); NaN where either is not finite",
    ),
    "base_growth_per_layer": ("float64", "growth_per_layer in the base run"),
    "new_growth_per_layer": ("float64", "growth_per_layer in the new run"),
    "growth_per_layer_ratio": ("float64", "new / base growth_per_layer, as final_std_ratio"),
    "base_input_grad_std": ("float64", "input_grad_std in the base run (--backward)"),
    "new_input_grad_std": ("float64", "input_grad_std in the new run"),
    "input_grad_std_ratio": ("float64", "new / base input_grad_std, as final_std_ratio"),
    "base_grad_divergence_layer": ("Int64", "grad_divergence_layer in the base run"),
    "new_grad_divergence_layer": ("Int64", "grad_divergence_layer in the new run"),
    "base_error": ("string", "the base cell's error; null when it ran"),
    "new_error": ("string", "the new cell's error; null when it ran"),
    "fails": ("string", "the gates this row fails, comma-separated; empty when none"),
    "base_init_ms": ("float64", "init_ms in the base run, ms"),
    "new_init_ms": ("float64", "init_ms in the new run, ms"),
    "init_ms_ratio": ("float64", "new / base init_ms (> 1: slower); NaN unless both ran"),
    "base_forward_ms": ("float64", "forward_ms in the base run, ms"),
    "new_forward_ms": ("float64", "forward_ms in the new run, ms"),
    "forward_ms_ratio": ("float64", "new / base forward_ms (> 1: slower); NaN unless both ran"),
    "gate": ("string", "a regression gate as written, e.g. final_std:10%"),
    "metric": ("string", "what the gate bounds: a cells or timing column, or missing"),
    "key": ("string", "the cell or timing row, as space-separated column=value pairs"),
    "base": ("float64", "the metric in the base run (NaN: none, e.g. no divergence)"),
    "new": ("float64", "the metric in the new run"),
    "value": ("float64", "what the gate tested: a new/base ratio, a shift in layers, or cells"),
    "limit": ("float64", "the bound exceeded: ratio 1+p (band [1/(1+p), 1+p]), layers, cells"),
    "experiment": ("string", "a claim of the tutorial (initsuite reproduce tutorial)"),
    "quantity": ("string", "what the claim measures: a cells column, or tanh_gain"),
    "tutorial": ("string", "what the tutorial reported"),
    "expected": ("float64", "the tutorial's number, or the mean-field prediction"),
    "expected_source": ("string", "tutorial | mean-field"),
    "measured_mean": ("float64", "mean of the quantity over the seeds that gave a value"),
    "measured_sd": ("float64", "std (correction=1) of the quantity over those seeds"),
    "measured_min": ("float64", "smallest value over the seeds"),
    "measured_max": ("float64", "largest value over the seeds"),
    "seeds": ("int64", "seeds run"),
    "tolerance": ("float64", "largest |measured_mean - expected| that agrees"),
    "agree": ("bool", "every seed gave a value and the mean lies within the tolerance"),
    "note": ("string", "why seeds gave no value (empty if all did)"),
    # a sweep's theory tables, computed once from its configuration (what its report draws)
    "sigma_w2": (
        "float64",
        "σ_w² = fan_in · Var W of a layer (conv: fan_in = width·k²; resmlp: a branch's first "
        "layer); NaN if no theory",
    ),
    "sigma_b2": ("float64", "σ_b², the bias variance (0 without bias); NaN if no theory"),
    "mean_field": ("bool", "mean-field theory applies: a cell of a centred random scheme"),
    "predicted_log_std_sd": (
        "float64",
        "across-seed sd of log final std at finite width (Hanin & Rolnick 2018); NaN if unknown",
    ),
    "q_star": ("float64", "fixed point q* the variance map reaches from q = 1 (0: vanishes)"),
    "chi1": ("float64", "χ₁ = σ_w²·E[φ'(√q* z)²] at the fixed point: > 1 chaotic, < 1 ordered"),
    "depth_scale": ("float64", "ξ₁ = 1/|ln χ₁|: perturbation and gradient depth scale, layers"),
    "c_star": ("float64", "stable fixed point c* of the correlation map (1 when ordered)"),
    "chi_c": ("float64", "χ_c = σ_w²·E[φ'(u₁)φ'(u₂)] at c*: the correlation map's slope there"),
    "xi_c": ("float64", "ξ_c = -1/ln χ_c: layers for the correlation to close 1/e of its gap"),
    "chi_q": ("float64", "χ_q: slope of the variance map at q* (NaN where q* is 0 or inf)"),
    "xi_q": ("float64", "ξ_q = -1/ln χ_q: layers for q to close 1/e of its gap to q*"),
    "phase": ("string", "ordered | critical | chaotic"),
    # initsuite reproduce isometry
    "sv": ("float64", "a singular value of the input–output Jacobian"),
    # initsuite reproduce frameworks
    "law": ("string", "a framework convention (torch, flax, ...) or a scheme spec, as applied"),
    "model": (
        "string",
        "the model: a net of the frameworks study (mlp_relu_100), or what a "
        "probe built (hf:gpt2,n_layer=12: its source, with the overrides of --vary)",
    ),
    "convention": ("string", "a framework convention (initsuite conventions lists them)"),
    "layer_type": (
        "string",
        "a convention's layer type: linear, conv2d, embedding, layer_norm, ...",
    ),
    "parameter": (
        "string",
        "a layer type's parameter: weight, bias, scale, shift, in_proj_weight, ...",
    ),
    "rule": (
        "string",
        "the parameter's law: a scheme spec in torch's layout, fan_uniform:mode=..., or "
        "empty (no such parameter)",
    ),
    "distribution": (
        "string",
        "the law's distribution: normal, truncated_normal, uniform, constant, ...",
    ),
    "variance_fan_in": (
        "float64",
        "σ²·fan_in of a square layer, where the law scales as 1/fan_in; else NaN",
    ),
    "variance": ("float64", "σ² where the law's variance is a fixed number; else NaN"),
    "truncation": ("string", "how the law is bounded: none, bounded, ±2σ rescaled, ..."),
    "per_projection": (
        "bool",
        "an attention in_proj law applied to each of q, k, v as a layer of its own",
    ),
    "checked": (
        "string",
        "the framework version the law was checked against, or 'not checked live'",
    ),
    "critical_sigma_w2": (
        "float64",
        "σ_w² on the critical line χ₁ = 1 at the run's σ_b² to 2 digits (mlp, conv); NaN "
        "where no theory",
    ),
    # pytest-benchmark runs (initsuite.results.benchmarks)
    "group": ("string", "the benchmark's group, e.g. 'init 1024x1024' (empty when it has none)"),
    "name": ("string", "the benchmark's test name, e.g. test_scheme[1024x1024-orthogonal]"),
    "fullname": ("string", "file::name, what pytest-benchmark matches two runs on"),
    "min_s": ("float64", "fastest round, seconds"),
    "max_s": ("float64", "slowest round, seconds"),
    "mean_s": ("float64", "mean of the rounds, seconds"),
    "stddev_s": ("float64", "standard deviation of the rounds, seconds"),
    "median_s": ("float64", "median of the rounds, seconds"),
    "iqr_s": ("float64", "interquartile range of the rounds, seconds"),
    "ops": ("float64", "calls per second, 1 / mean"),
    "rounds": ("int64", "timed rounds"),
    "reference": ("bool", "the row the others of its group are divided by (a floor or loop)"),
    "reference_name": ("string", "the name of the group's reference row"),
    "reference_median_s": ("float64", "the reference row's median, seconds"),
    "ratio": ("float64", "median / the reference's median (below 1 is faster)"),
    "base_median_s": ("float64", "median of the previous run, seconds"),
    "new_median_s": ("float64", "median of this run, seconds"),
    "median_ratio": ("float64", "new / base median (above 1 is slower)"),
    "gate_value": (
        "float64",
        "what the benchmark gate bounds: the change in percent, or in seconds; NaN without "
        "a gate or a side",
    ),
}

# name -> axis label of a quantity a figure draws, as its figures, interactive twins and
# captions name it (report.*): written here, beside the meaning, so the two cannot drift
_LABELS: dict[str, str] = {
    "std": "post-activation std",
    "grad_std": "std of dLoss/d(layer output)",
    "weight_grad_norm": "‖dLoss/dW‖ (Frobenius)",
    "cosine": "cosine of the input pair's pre-activations",
    "final_std": "final std",
    "init_ms": "init time per weight, ms",
    "train_loss": "train loss (cross-entropy)",
    "stream_std": "std of the stream after the block",
    "update_ratio": "std added / std before",
    "stream_grad_std": "std of dLoss/d(block output)",
}

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
)  # fmt: skip
"""``initsuite.probe``: one row per module call (``scheme`` is ``as_built`` for the model's
own initialisation; the weight columns describe the module's own ``weight``, its gradient
summed over every call of the pass)."""
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
THEORY_KEYS: tuple[str, ...] = ("arch", "scheme", "activation", "depth", "width")
THEORY: tuple[str, ...] = (
    *THEORY_KEYS, "sigma_w2", "sigma_b2", "mean_field", "predicted_log_std_sd",
)  # fmt: skip
"""A sweep's ``theory`` table: per cell configuration, whether and where mean-field theory
places it (computed from the configuration alone, before any cell runs)."""
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
    "model",
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
})  # fmt: skip
"""Columns of standard deviations, norms, variances and times: a stored value below 0 is
damage (NaN and +inf are values they take)."""


# the probe's rows are module calls, not layers: its names shared with the layers table
# mean the module's output (a Linear's output is a pre-activation)
_PROBE_LABELS: dict[str, str] = {
    "std": "std of the module's output",
    "grad_std": "std of dLoss/d(module output)",
}


def label(column: str, table: tuple[str, ...] = LAYERS) -> str:
    """The axis label of the quantity ``column`` of ``table`` (one of this module's tables:
    :data:`LAYERS` by default), what every figure and caption calls it.

    >>> label("std"), label("std", PROBE)
    ('post-activation std', "std of the module's output")
    """
    if column not in table:
        raise InitsuiteError(unknown("column", column, list(table)))
    labels = {**_LABELS, **_PROBE_LABELS} if table in (PROBE, PROBE_BLOCKS) else _LABELS
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
    cast = {c: t for c in columns if out[c].dtype != pd.api.types.pandas_dtype(t := _SPEC[c][0])}
    return out.astype(cast) if cast else out


def conform(
    df: pd.DataFrame,
    columns: tuple[str, ...],
    where: str,
    keys: tuple[str, ...] = (),
    strict: bool = False,
) -> pd.DataFrame:
    """A stored table as ``columns``, each in its declared dtype, refusing what would not
    convert exactly: a missing column (an :data:`OPTIONAL` one loads null), a value of another
    type (never coerced to null or truncated), a null in a ``keys`` column, a negative value in
    a :data:`NONNEGATIVE` one; with ``strict`` (a format whose writer always writes exactly
    ``columns``), an optional column missing or a column beyond them. ``where`` names the
    table (its file) in the one-line :class:`InitsuiteError`."""
    missing = [c for c in columns if c not in df.columns and (strict or c not in OPTIONAL)]
    foreign = [str(c) for c in df.columns if c not in columns]
    if missing:
        hint = f" (it holds {foreign}, which initsuite never writes there)" if foreign else ""
        raise InitsuiteError(
            f"{where} lacks column {missing[0]!r}{hint}: damaged, or not written by initsuite"
        )
    if strict and foreign:
        raise InitsuiteError(
            f"{where} holds column {foreign[0]!r}, which initsuite never writes there: "
            "damaged, or not written by initsuite"
        )
    frame = df.reset_index(drop=True)
    changed = {c: empty(c, len(frame)) if c not in frame.columns else _exact(frame[c], c, where)
               for c in columns
               if c not in frame.columns or str(frame[c].dtype) != _SPEC[c][0]}  # fmt: skip
    frame = frame.assign(**changed)[list(columns)] if changed else frame[list(columns)]
    for c in keys:
        nulls = np.flatnonzero(frame[c].isna().to_numpy())
        if len(nulls):
            raise InitsuiteError(
                f"column {c!r} of {where} is null in row {int(nulls[0])}: every row needs its "
                "key; damaged, or not written by initsuite"
            )
    for c in NONNEGATIVE.intersection(columns):
        below = np.flatnonzero(frame[c].to_numpy(dtype=float, na_value=np.nan) < 0)
        if len(below):
            raise InitsuiteError(
                f"column {c!r} of {where} holds {frame[c].iat[int(below[0])]!r} in row "
                f"{int(below[0])}: a {c} is never below 0; damaged, or not written by initsuite"
            )
    return frame


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_number(v: Any) -> bool:
    return _is_int(v) or isinstance(v, (float, np.floating))


# what each declared dtype accepts of a stored value (non-null); anything else is refused
_ACCEPTS = {
    "string": ("a string", lambda v: isinstance(v, str)),
    "int64": ("an integer", _is_int),
    "Int64": ("an integer", lambda v: _is_int(v) or (_is_number(v) and float(v).is_integer())),
    "float64": ("a number", _is_number),
    "bool": ("a boolean", lambda v: isinstance(v, (bool, np.bool_))),
}


def _exact(s: pd.Series, column: str, where: str) -> pd.Series:
    """``s`` in ``column``'s declared dtype; an error naming the column for any value that
    would not convert exactly (a string in a number column, a number in a string column)."""
    want = _SPEC[column][0]
    if str(s.dtype) == want:
        return s
    if want not in _ACCEPTS:
        raise InitsuiteError(f"column {column!r} has no loader for dtype {want!r}")
    what, ok = _ACCEPTS[want]
    if want in ("int64", "bool") and s.isna().any():
        bad: Any = None
    else:
        bad = next((v for v in s.dropna() if not ok(v)), _NONE)
    if bad is _NONE:
        try:
            out = s.astype(want)
        except (TypeError, ValueError, OverflowError):
            bad = s.dropna().iloc[0]
        else:
            if int(out.isna().sum()) == int(s.isna().sum()):
                return out
            bad = s[out.isna() & s.notna()].iloc[0]
    raise InitsuiteError(
        f"column {column!r} of {where} holds {_show(bad)} ({s.dtype}), not {what}: damaged, "
        "or not written by initsuite"
    )


_NONE = object()


def _show(v: Any) -> str:
    text = "a null" if v is None or (isinstance(v, float) and v != v) else repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def empty(column: str, length: int) -> pd.Series:
    """A null column of ``column``'s declared dtype."""
    dtype = _SPEC[column][0]
    return pd.Series([None] * length if dtype != "float64" else [float("nan")] * length,
                     dtype=dtype)  # fmt: skip


def describe(columns: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(name, dtype, meaning) for each column, for docs and the report."""
    return [(c, *_SPEC[c]) for c in columns]

"""What every column name of the result tables means: its pandas dtype and meaning
(:data:`SPECS`), and for a quantity the report draws, its axis label (:data:`LABELS`).

One meaning per name, whichever table holds it: the tables themselves (which columns, in
which order) are :mod:`initsuite.results.columns`, which reads these. Never imports torch.
"""

from __future__ import annotations

__all__ = ["LABELS", "PROBE_LABELS", "SPECS"]

# name -> (pandas dtype, meaning)
SPECS: dict[str, tuple[str, str]] = {
    "arch": ("string", "architecture (mlp: depth × Linear(width, width) + activation)"),
    "scheme": ("string", "canonical scheme spec, e.g. kaiming_uniform:a=0.5"),
    "activation": ("string", "canonical activation spec"),
    "depth": (
        "int64",
        "number of layers (coordcheck: Linear layers of mlp, blocks of resmlp and transformer)",
    ),
    "width": (
        "int64",
        "units per layer (fan_in = fan_out = width); coordcheck: the model's width (n_embd)",
    ),
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
    "final_test_loss": ("float64", "test_loss after the last step (NaN if diverged)"),
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
    "zero_by": (
        "string",
        "the zero-by-design parameter that makes the output exactly 0 (a zero branch, not a "
        "divergence; initsuite.studies.zero_branch); null if none or in directories before it",
    ),
    "grad_zero_by": (
        "string",
        "the same for the gradient at the output (0 upstream of that parameter in its branch)",
    ),
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
    # a dks:/tat: activation's constants at the cell's depth; NaN for any other activation
    "alpha": ("float64", "α of φ̂(x) = γ·(φ(α·x + β) + δ), DKS's and TAT's input scale"),
    "beta": ("float64", "β of φ̂(x) = γ·(φ(α·x + β) + δ), the input shift"),
    "gamma": ("float64", "γ of φ̂(x) = γ·(φ(α·x + β) + δ), the output scale"),
    "delta": ("float64", "δ of φ̂(x) = γ·(φ(α·x + β) + δ), the output shift"),
    "negative_slope": ("float64", "TAT's leaky-ReLU negative slope; NaN for other transforms"),
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
    # the c-map study (initsuite.studies.cmap)
    "input_cosine": ("float64", "cosine of the input pair (each input at q = 1)"),
    "output_cosine": (
        "float64",
        "cosine of the pair after depth nonlinear layers (the next layer's pre-activations)",
    ),
    "theory_output_cosine": (
        "float64",
        "the activation's c-map composed over depth layers, at the scheme's σ_w²",
    ),
    "output_q": ("float64", "mean square of the pair's pre-activations after depth layers"),
    "theory_output_q": ("float64", "the length map composed over depth layers, from q = 1"),
    # initsuite reproduce frameworks
    "law": ("string", "a framework convention (torch, flax, ...) or a scheme spec, as applied"),
    "model": (
        "string",
        "the model: a net of the frameworks study (mlp_relu_100), what a probe built "
        "(hf:gpt2,n_layer=12: its source, with the overrides of --vary), or the coordinate "
        "check's model (mlp, resmlp, transformer, package.module:function)",
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
    # initsuite coordcheck: one row per module output and step (initsuite.studies.coordcheck)
    "parametrization": ("string", "how the model's init, multipliers and learning rates scale"),
    "optimizer": ("string", "sgd | adam | adamw"),
    "lr": ("float64", "the base learning rate (each parameter's is it times its multiplier)"),
    "role": (
        "string",
        "the role of the module's weight: input, hidden, output, bias, norm, branch; null for "
        "a module without parameters of its own",
    ),
    "l1": ("float64", "mean |output| of the module on the fixed batch (mup's coord check)"),
    "rms": ("float64", "root mean square of the module's output"),
    "delta_rms": ("float64", "root mean square of the output minus its step-0 output"),
    "loss": ("float64", "the training loss on the fixed batch at this step (before its update)"),
    # initsuite reproduce kernel-shaping (initsuite.studies.kernel_shaping)
    "net": ("string", "the kernel-shaping study's net: its activation, init and input"),
    "normalized": ("bool", "each input example scaled to q = 1 (mean square 1), as DKS assumes"),
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
LABELS: dict[str, str] = {
    "std": "post-activation std",
    "grad_std": "std of dLoss/d(layer output)",
    "weight_grad_norm": "‖dLoss/dW‖ (Frobenius)",
    "cosine": "cosine of the input pair's pre-activations",
    "input_cosine": "input cosine c₀",
    "output_cosine": "output cosine after depth layers",
    "final_std": "final std",
    "init_ms": "init time per weight, ms",
    "train_loss": "train loss (cross-entropy)",
    "stream_std": "std of the stream after the block",
    "update_ratio": "std added / std before",
    "stream_grad_std": "std of dLoss/d(block output)",
}

# the probe's rows are module calls, not layers: its names shared with the layers table
# mean the module's output (a Linear's output is a pre-activation)
PROBE_LABELS: dict[str, str] = {
    "std": "std of the module's output",
    "grad_std": "std of dLoss/d(module output)",
}

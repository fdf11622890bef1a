r"""Probe any model: per-module statistics of a real ``nn.Module``'s forward and backward pass.

:func:`probe` (after re-drawing the weights with a scheme, if given:
:func:`initsuite.apply`) runs one forward pass, and optionally one backward pass, with hooks
on the model's modules (:class:`~initsuite.studies.recorder.Recorder`) and known residual
blocks (:class:`~initsuite.studies.blocks.BlockRecorder`), and returns a
:class:`~initsuite.results.probe.ProbeResult` with one row per module call.

    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8),
    ...                           torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(7200, 10))
    >>> calls = initsuite.probe(net, torch.randn(16, 3, 32, 32), scheme="kaiming_normal",
    ...                         backward=True).calls  # re-draws net's Conv2d and Linear in place
    >>> calls[["call", "module", "type", "std", "grad_std"]]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterable
from typing import Any, Literal, get_args

import pandas as pd
import torch
from torch import Tensor, nn

from initsuite import activations as _activations
from initsuite import schemes as _schemes
from initsuite.core import validate
from initsuite.core.env import environment
from initsuite.core.errors import InitsuiteError, InitsuiteTypeError
from initsuite.engine.backward import GRAD_SEED_OFFSET
from initsuite.engine.fast_stats import STATS, check_stats
from initsuite.engine.forward import Inputs, first_float, restored_buffers, split_inputs, tensors
from initsuite.engine.port import apply_convention
from initsuite.engine.reinit import (
    check_arguments,
    draw,
    scheme_or_convention,
    seeded,
    seeded_global_rng,
)
from initsuite.engine.roles import residual_roles
from initsuite.engine.stats import classify, finish_stats, ratio, read_back
from initsuite.results import columns as C
from initsuite.results.probe import ProbeResult
from initsuite.schemes import conventions as _conventions
from initsuite.studies.blocks import BlockRecorder
from initsuite.studies.recorder import ROOT, Call, Recorder, probed_modules
from initsuite.studies.zero_branch import (
    ZERO_ROLES,
    grad_zero_branches,
    zero_branches,
    zero_parameters,
)

__all__ = [
    "AUTOCAST", "DEFAULT", "INPUT_SEED_OFFSET", "LOSS", "MODES", "ROOT", "STATS",
    "check_autocast", "check_stats", "probe", "probed_modules",
]  # fmt: skip

DEFAULT = "as_built"
"""The ``scheme`` of rows measured with the model's own initialisation (as its library built
it: timm's and Hugging Face's ``_init_weights`` included). Directories written before 0.2
call it ``default``, which is still accepted as a name for it."""
INPUT_SEED_OFFSET = 0x1A7_0B5E  # factory inputs: a generator seeded with seed + this
LOSS = "Σ R ⊙ y, R ~ N(0, 1) of the output's shape, seed + GRAD_SEED_OFFSET"
"""The loss a backward probe differentiates (``y``: the model's output)."""

AUTOCAST: tuple[str, ...] = ("float32", "bfloat16", "float16")
"""The precisions :func:`probe` runs a pass at (``autocast=``): float32 is no autocast."""

Mode = Literal["train", "eval"]
MODES: tuple[str, ...] = get_args(Mode)


def probe(
    model: nn.Module,
    inputs: Inputs,
    *,
    scheme: str | _schemes.Scheme | None = None,
    activation: str | _activations.Activation | None = None,
    backward: bool = False,
    seed: int = 0,
    include_embeddings: bool = False,
    autocast: str | None = None,
    name: str | None = None,
    stats: str = "exact",
) -> ProbeResult:
    r"""Per-module statistics of one forward (and backward) pass of ``model`` on ``inputs``.

    Args:
        model: any ``nn.Module``, in the mode it should run in (train or eval).
        inputs: a tensor (``model(x)``), a tuple or list (``model(*inputs)``), or a dict
            (``model(**inputs)``, e.g. ``{"input_ids": ids}``), already on the model's device.
        scheme: a scheme spec or a framework convention (``"flax"``) to
            :func:`initsuite.apply` first, **in place**, drawing from a generator seeded with
            ``seed`` (pass a copy to keep your model). Default None: the model's own weights
            (``scheme`` column ``"as_built"``). A scheme leaves biases as they are; a
            convention draws them.
        activation: the activation for ``gain=auto`` (see :func:`initsuite.apply`).
        backward: also back-propagate :data:`LOSS` and record ``grad_std`` and each module's
            ``weight_grad_norm`` (no ``.grad`` is written).
        seed: seed of the scheme's draws, of R and of torch's global RNG during the pass.
        include_embeddings: let the scheme draw embedding weights too (see :func:`initsuite.apply`).
        autocast: run the forward pass under ``torch.autocast`` at this precision, one of
            :data:`AUTOCAST` (None or ``"float32"``: no autocast); the ``dtype`` column then
            shows what each module's output actually was.
        name: the ``model`` column of the tables (default: the model's class name).
        stats: how the statistics are summed, one of :data:`STATS`: ``"exact"`` (default;
            float64, within ~1e-13 of exact arithmetic) or ``"fast"`` (float32 on a CPU:
            about half the cost, std within 2e-5 relative, typically 1e-7; see
            :func:`~initsuite.engine.stats.tensor_stats`).

    Returns:
        A :class:`~initsuite.results.probe.ProbeResult` whose ``calls`` table has one row per
        returned call of a probed module, in execution order.

    Raises:
        InitsuiteTypeError: an argument of the wrong type, before the model is touched.
        InitsuiteError: bad arguments (a model on the meta device among them), or
            ``backward=True`` on an output without a floating tensor that requires grad.
            Whatever the model's forward raises propagates
            unchanged (after the hooks are removed and the buffers restored).
    """
    # long: half of it is the docstring, the public reference of initsuite.probe
    check_arguments("probe", model, scheme, activation, include_embeddings)
    seed = validate.seed(seed)
    if not isinstance(backward, bool):
        raise InitsuiteTypeError(f"backward must be True or False, got {backward!r}")
    precision = check_autocast(autocast)
    how = check_stats(stats)
    if name is not None and not isinstance(name, str):
        raise InitsuiteTypeError(f"name must be a string, got {type(name).__name__}")
    label = type(model).__name__ if name is None else name
    args, kwargs = split_inputs(inputs)
    devices = {t.device for t in [*model.parameters(), *model.buffers(), *tensors(args),
                                  *tensors(kwargs)]}  # fmt: skip
    _autocast(precision, devices)  # a device without autocast fails before any draw
    config = {
        "scheme": DEFAULT, "activation": None if activation is None
        else _activations.get(activation).spec, "backward": backward, "seed": seed,
        "include_embeddings": include_embeddings, "mode": "train" if model.training else "eval",
        "autocast": precision,
    }  # fmt: skip
    if how != "exact":  # recorded when not the default: older runs, without it, were exact
        config["stats"] = how
    model_info = {"type": type(model).__name__,
                  "parameters": sum(p.numel() for p in model.parameters()),
                  "probed_modules": len(probed_modules(model))}  # fmt: skip
    drawn: set[str] = set()
    undesigned: set[str] = set()  # weights the scheme drew that it does not mean to zero
    if scheme is not None:
        config["scheme"], drawn, undesigned = _redraw(model, scheme, activation,
                                                      include_embeddings, seed, inputs)  # fmt: skip
    # read after the pass, and only where it saw an exact zero (the pass changes no parameter)
    zero = functools.partial(zero_parameters, model, undesigned)
    devices = {t.device for t in [*model.parameters(), *model.buffers(), *tensors(args),
                                  *tensors(kwargs)]}  # fmt: skip
    blocks = BlockRecorder(model, backward)
    calls = _run(model, args, kwargs, backward, seed, devices, blocks, precision, how)
    meta = {"kind": "probe", "config": config, "model": model_info,
            "loss": LOSS if backward else None,
            "environment": environment(sorted({str(d) for d in devices}))}  # fmt: skip
    scheme_label = str(config["scheme"])
    return ProbeResult(_frame(calls, label, scheme_label, seed, drawn, precision, zero), meta,
                       blocks.frame(label, scheme_label, seed, precision))  # fmt: skip


def _redraw(
    model: nn.Module,
    scheme: str | _schemes.Scheme,
    activation: str | _activations.Activation | None,
    include_embeddings: bool,
    seed: int,
    inputs: Inputs,
) -> tuple[str, set[str], set[str]]:
    """Re-draw ``model`` in place by a framework convention or a scheme, from ``seed``: the
    name it goes by, the modules whose parameters it drew, and the parameters it drew that
    it does not mean to zero (all but a scheme's residual branch ends,
    :data:`~initsuite.studies.zero_branch.ZERO_ROLES`; a convention's zeros are its
    library's design)."""
    if isinstance(scheme, str) and scheme.strip() in _conventions.CONVENTIONS:
        drawn = apply_convention(model, scheme.strip(), seeded(seed))
        return scheme.strip(), {q.rpartition(".")[0] or ROOT for q in drawn}, set()
    s = scheme_or_convention(scheme)
    pairs = draw(model, s, activation, include_embeddings, seeded(seed), inputs)
    roles = residual_roles(model) if "context" in s.info.uses else {}
    quals = {f"{name}.{p}" if name else p for name, p in pairs}
    undesigned = {q for q in quals if q not in roles or roles[q].role not in ZERO_ROLES}
    return s.spec, {name or ROOT for name, _ in pairs}, undesigned


def _run(
    model: nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    backward: bool,
    seed: int,
    devices: Iterable[torch.device],
    blocks: BlockRecorder,
    precision: str = "float32",
    stats: str = "exact",
) -> list[Call]:
    rec = Recorder(backward, stats)
    grads: dict[int, Tensor] = {}
    handles = []
    with restored_buffers(model):
        try:
            for name, m in probed_modules(model):
                handles.append(m.register_forward_hook(rec.hook(name)))
            handles += blocks.attach(rec)
            with seeded_global_rng(seed, devices), torch.set_grad_enabled(backward):
                with _autocast(precision, devices):  # backward runs outside, as torch advises
                    output = model(*args, **kwargs)
                rec.open = blocks.open = False
                if backward:
                    grads = _backward(model, output, [*tensors(args), *tensors(kwargs)], seed)
        finally:
            for h in handles + rec.weight_hooks:
                h.remove()
    rec.weigh(grads)
    return rec.calls


def _backward(model: nn.Module, output: Any, inputs: list[Tensor], seed: int) -> dict[int, Tensor]:
    """dLoss/d(every hooked output) for Loss = Σ R ⊙ y, through the tensor hooks; returns
    dLoss/dW by id(W) for every parameter W the loss reaches ({} when the forward pass
    overflowed)."""
    y = first_float(output)
    if y is None:
        raise InitsuiteError(
            f"backward=True needs a floating-point tensor in the model's output; got "
            f"{type(output).__name__}"
        )
    if not y.requires_grad:
        raise InitsuiteError(
            "backward=True: the model's output does not require grad (are its parameters "
            "frozen, or does it run under torch.no_grad?)"
        )
    if not bool(torch.isfinite(y).all()):
        return {}  # the forward pass overflowed: every gradient would be NaN
    leaves: list[Tensor] = [p for p in model.parameters() if p.requires_grad]
    ids = {id(p) for p in leaves}
    leaves += [t for t in inputs if t.requires_grad and id(t) not in ids]
    gen = torch.Generator(device=y.device).manual_seed(seed + GRAD_SEED_OFFSET)
    r = torch.randn(y.shape, generator=gen, device=y.device, dtype=y.dtype)
    # autograd.grad, not backward(): the hooks see every gradient, no .grad is written
    grads = torch.autograd.grad(y, leaves, grad_outputs=r, allow_unused=True)
    return {id(t): g for t, g in zip(leaves, grads, strict=True) if g is not None}


def check_autocast(autocast: object) -> str:
    """The ``autocast`` argument as its precision's name (``float32``: none)."""
    if autocast is None:
        return "float32"
    return validate.choice("autocast", autocast, AUTOCAST, kind="autocast precision", none=True)


def _autocast(
    precision: str, devices: Iterable[torch.device]
) -> contextlib.AbstractContextManager[Any]:
    """``torch.autocast`` at ``precision`` on the devices' type (a no-op for float32)."""
    if precision == "float32":
        return contextlib.nullcontext()
    kinds = sorted({d.type for d in devices})
    if len(kinds) != 1:
        raise InitsuiteError(
            f"autocast={precision!r} needs the model and its inputs on one device type, got "
            f"{', '.join(kinds) or 'no tensors'}"
        )
    if not torch.amp.is_autocast_available(kinds[0]):
        raise InitsuiteError(f"autocast={precision!r}: torch has no autocast on {kinds[0]}")
    return torch.autocast(kinds[0], dtype=getattr(torch, precision))


def _frame(calls: list[Call], model: str, label: str, seed: int, drawn: set[str],
           precision: str = "float32",
           zero: Callable[[], dict[str, str]] | None = None) -> pd.DataFrame:  # fmt: skip
    """The probe table of ``calls``: statistics read back, each all-zero output or gradient
    that a zero-by-design parameter in ``zero`` explains marked (``zero_by``,
    ``grad_zero_by``: :mod:`~initsuite.studies.zero_branch`), and the first real divergence
    forward (and backward, walking back from the output) classified."""
    nan = math.nan
    pending = [v for c in calls for v in (c.stats, c.grad, c.norms) if v is not None]
    values = iter(read_back(pending))
    read = [[next(values) if v is not None else None for v in (c.stats, c.grad, c.norms)]
            for c in calls]  # fmt: skip
    out = [finish_stats(st, c.numel) if st is not None and c.numel is not None else (nan, nan, 0)
           for c, (st, _, _) in zip(calls, read, strict=True)]  # fmt: skip
    grad = [finish_stats(g, c.numel or 0) if g is not None else (nan, nan, 0)
            for c, (_, g, _) in zip(calls, read, strict=True)]  # fmt: skip
    modules, sources = [c.module for c in calls], [c.sources for c in calls]
    out_zero, grad_zero = [_all_zero(v) for v in out], [_all_zero(v) for v in grad]
    designed = zero() if zero is not None and any(out_zero + grad_zero) else {}
    zero_by = zero_branches(modules, out_zero, sources, designed)
    grad_zero_by = grad_zero_branches(modules, grad_zero, sources, designed)
    rows: list[dict[str, Any]] = []
    div_seen = False
    for k, (c, (_, _, norms)) in enumerate(zip(calls, read, strict=True)):
        (std, mean, bad), (grad_std, _, _) = out[k], grad[k]
        kind = None
        if not div_seen and c.stats is not None and c.numel and zero_by[k] is None:
            kind = classify(std, bad == 0, c.tiny, 1.0, None, None)
            div_seen = kind is not None
        wnorm, gnorm = norms if norms is not None else (nan, nan)
        rows.append({
            "model": model, "scheme": label, "seed": seed, "autocast": precision, "call": k + 1,
            "module": c.module, "type": c.type, "reinitialised": c.module in drawn,
            "shape": c.shape, "dtype": c.dtype, "numel": c.numel, "std": std, "mean": mean,
            "nonfinite_fraction": bad / c.numel if c.numel else nan, "grad_std": grad_std,
            "weight_norm": wnorm, "weight_grad_norm": gnorm,
            "weight_update_ratio": ratio(gnorm, wnorm), "divergence_kind": kind,
            "grad_divergence_kind": None, "zero_by": zero_by[k], "grad_zero_by": grad_zero_by[k],
        })  # fmt: skip
    # walking back from the output: the first call whose gradient left the range
    for k in reversed(range(len(calls))):
        if calls[k].grad is not None and grad_zero_by[k] is None:
            kind = classify(grad[k][0], grad[k][2] == 0, calls[k].tiny, 1.0, None, None)
            if kind is not None:
                rows[k]["grad_divergence_kind"] = kind
                break
    return C.frame(C.PROBE, rows)


def _all_zero(stats: tuple[float, float, float]) -> bool:
    """Whether (std, mean, non-finite count) are those of a tensor that is all exactly 0:
    std and mean 0 (a non-zero value makes Σy² > 0 in float64, where no square of a lower
    precision's value underflows)."""
    std, mean, bad = stats
    return std == 0 and mean == 0 and bad == 0

"""The frameworks study: the same model, initialised as each framework would.

Four nets built in torch from code (the tutorial's MLP with ReLU and tanh at two depths, a
3×3 conv stack, a residual MLP and a small pre-LN transformer), each re-drawn by every *law*
(a framework convention such as ``"flax"``, or a scheme spec such as ``"torch_default"``)
through :func:`initsuite.apply`, then run forward and backward once. It records each layer's
output std and gradient std, where and how the signal left the range (the engine's
:func:`~initsuite.engine.stats.classify` rule), and σ_w² = fan_in·E[W²] of the drawn weights
against the critical σ_w² of the activation (mean-field theory, at the drawn biases' σ_b²).
Then each law's digits MLP (ReLU and tanh, :data:`TRAIN_DEPTH` Linear layers with biases)
is trained as the training study trains (:func:`initsuite.studies.fit.fit`), and the
rules of the conventions applied are stored beside the measurements.
``initsuite reproduce frameworks --out DIR`` runs it; ``initsuite report DIR`` draws it.

    >>> from initsuite.studies.frameworks import frameworks_study
    >>> frameworks_study(["torch_default", "kaiming_normal"], seeds=1).runs  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from initsuite.core import validate
from initsuite.core.env import environment
from initsuite.core.errors import InitsuiteError, InitsuiteTypeError, unknown
from initsuite.engine.backward import GRAD_SEED_OFFSET
from initsuite.engine.reinit import apply, seeded_global_rng
from initsuite.engine.stats import classify, layer_stats
from initsuite.results import columns as C
from initsuite.results.frameworks import KIND, FrameworksResult
from initsuite.schemes import convention_table
from initsuite.schemes import conventions as _conventions
from initsuite.studies.fit import Dataset, FitConfig, check_batch, fit, load_dataset
from initsuite.studies.probe import INPUT_SEED_OFFSET
from initsuite.theory.phase import critical_sigma_w2

__all__ = [
    "EXPLODE_AT", "LAWS", "MODELS", "NET_KINDS", "SCHEME_LAWS", "SEEDS", "TRAIN_ACTIVATIONS",
    "TRAIN_DEPTH", "TRAIN_STEPS", "TRAIN_WIDTH", "VANISH_AT", "ModelSpec", "NetKind",
    "build_model", "check_laws", "digits_mlp", "frameworks_study",
]  # fmt: skip

LAWS: tuple[str, ...] = ("torch", "flax", "keras", "hf_bert", "timm_vit")
"""The default laws: each framework's whole-model convention (``initsuite.apply(model, NAME)``)."""
SCHEME_LAWS: tuple[str, ...] = (
    "torch_default",  # PyTorch's Linear/Conv weight: U(±1/√fan_in)
    "kaiming_normal",  # He et al. 2015
    "variance_scaling:scale=1,mode=fan_in,distribution=truncated_normal",  # Flax Dense/Conv
    "xavier_uniform",  # Keras Dense
)
"""Scheme specs that stand for the frameworks' weight laws (biases stay torch's)."""
SEEDS = 2
EXPLODE_AT, VANISH_AT = 10.0, 0.1  # a decade either way of the input's std
_BATCH, _TOKENS, _DTYPE, _DEVICE = 64, 16, "float32", "cpu"
TRAIN_DEPTH, TRAIN_WIDTH, TRAIN_STEPS = 30, 128, 400
"""The trained net: the training study's MLP (64 → 128 × 29 → 10 Linear layers, with
biases, as the frameworks draw them), trained for 400 SGD steps."""
TRAIN_ACTIVATIONS: tuple[str, ...] = ("relu", "tanh")
_TRAIN_BUILD_SEED = 111


@dataclass(frozen=True)
class ModelSpec:
    """One net of the study: what it is built of, and the seed of its construction."""

    name: str
    arch: str  # mlp | conv | resmlp | transformer
    activation: str  # relu | tanh
    depth: int  # layers (blocks) whose outputs are recorded
    width: int  # features, channels, or d_model
    build_seed: int  # torch's own init draws from this (its global RNG, restored after)


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("mlp_relu_30", "mlp", "relu", 30, 256, 101),
    ModelSpec("mlp_relu_100", "mlp", "relu", 100, 256, 102),
    ModelSpec("mlp_tanh_30", "mlp", "tanh", 30, 256, 103),
    ModelSpec("mlp_tanh_100", "mlp", "tanh", 100, 256, 104),
    ModelSpec("conv_relu_20", "conv", "relu", 20, 32, 105),
    ModelSpec("resmlp_relu_30", "resmlp", "relu", 30, 256, 106),
    ModelSpec("transformer_4", "transformer", "relu", 4, 64, 107),
)
"""The study's nets. No normalisation in the MLP, conv and residual nets; the transformer
is pre-LN (``norm_first=True``, as GPT-2 and ViT), whose residual stream carries the law's
scale to the output where a post-LN block would renormalise it away."""
_ACTS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


class _Residual(nn.Module):
    """h + f(h) with the pre-activation branch f(h) = W₂ φ(W₁ φ(h)) (a sweep's resmlp)."""

    def __init__(self, width: int, act: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.branch = nn.Sequential(act(), nn.Linear(width, width), act(),
                                    nn.Linear(width, width))  # fmt: skip

    def forward(self, h: Tensor) -> Tensor:
        return h + self.branch(h)


def _transformer_block(width: int, activation: str) -> nn.Module:
    return nn.TransformerEncoderLayer(width, nhead=4, dim_feedforward=4 * width, dropout=0.0,
                                      activation=activation, batch_first=True,
                                      norm_first=True)  # fmt: skip


@dataclass(frozen=True)
class NetKind:
    """What a net of the study is: one block of ``width`` with an activation, the shape of
    its input, and whether mean-field theory gives it a critical σ_w²."""

    block: Callable[[int, str], nn.Module]
    input_shape: Callable[[int], tuple[int, ...]]  # of the width
    mean_field: bool  # a bias-free feed-forward stack, with a critical σ_w²


NET_KINDS: dict[str, NetKind] = {
    "mlp": NetKind(lambda w, a: nn.Sequential(nn.Linear(w, w), _ACTS[a]()),
                   lambda w: (_BATCH, w), True),
    "conv": NetKind(lambda w, a: nn.Sequential(nn.Conv2d(w, w, 3, padding=1), _ACTS[a]()),
                    lambda w: (_BATCH // 4, w, 8, 8), True),
    "resmlp": NetKind(lambda w, a: _Residual(w, _ACTS[a]), lambda w: (_BATCH, w), False),
    "transformer": NetKind(_transformer_block, lambda w: (_BATCH // 8, _TOKENS, w), False),
}  # fmt: skip
"""The study's kinds of net, by :attr:`ModelSpec.arch`."""


def _kind(spec: ModelSpec) -> NetKind:
    kind = NET_KINDS.get(spec.arch)
    if kind is None:
        raise InitsuiteError(unknown("arch", spec.arch, tuple(NET_KINDS)))
    return kind


def _blocks(spec: ModelSpec) -> list[nn.Module]:
    block = _kind(spec).block
    return [block(spec.width, spec.activation) for _ in range(spec.depth)]


def build_model(spec: ModelSpec) -> nn.Sequential:
    """``spec``'s net as torch builds it (its own init, from ``spec.build_seed``): one block
    per recorded layer."""
    with seeded_global_rng(spec.build_seed, [torch.device(_DEVICE)]):
        return nn.Sequential(*_blocks(spec))


def digits_mlp(activation: str, depth: int, width: int, data: Dataset) -> nn.Sequential:
    """The trained net as torch builds it (its own init, from a fixed seed): ``depth``
    Linear layers with biases, features → width → … → width → classes, ``activation``
    after each but the last."""
    act, dims = _ACTS[activation], [data.features] + [width] * (depth - 1) + [data.classes]
    with seeded_global_rng(_TRAIN_BUILD_SEED, [torch.device(_DEVICE)]):
        mods: list[nn.Module] = []
        for k in range(depth):
            mods += [nn.Linear(dims[k], dims[k + 1])] + ([act()] if k < depth - 1 else [])
        return nn.Sequential(*mods)


def _input(spec: ModelSpec, seed: int) -> Tensor:
    shape = _kind(spec).input_shape(spec.width)
    gen = torch.Generator().manual_seed(seed + INPUT_SEED_OFFSET)
    return torch.randn(shape, generator=gen)


def check_laws(laws: Sequence[str]) -> tuple[str, ...]:
    """The laws, each checked by applying it to a small net of every layer type the study
    holds (Linear, Conv2d, a transformer block); one line naming the first that fails."""
    if isinstance(laws, str) or not isinstance(laws, Sequence):
        raise InitsuiteTypeError(f"laws must be a list of law names, got {laws!r:.60}")
    if not laws:
        raise InitsuiteError("laws must not be empty: give convention names or scheme specs")
    probe_net = nn.Sequential(nn.Linear(4, 4), nn.Conv2d(2, 2, 3),
                              nn.TransformerEncoderLayer(8, 2, 16, batch_first=True))  # fmt: skip
    for law in laws:
        if not isinstance(law, str):
            raise InitsuiteTypeError(f"a law must be a string, got {law!r:.60}")
        try:
            _apply(probe_net, law, 0)
        except InitsuiteError as exc:
            raise InitsuiteError(f"law {law!r}: {exc}") from None
    return tuple(dict.fromkeys(laws))


def _apply(model: nn.Module, law: str, seed: int) -> list[str]:
    """``initsuite.apply(model, law)`` with the law's generator seeded ``seed``; the warning
    naming the parameters a convention leaves alone is not raised (they are recorded)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"convention .* left", category=UserWarning)
        return apply(model, law, generator=torch.Generator().manual_seed(seed))


def _left(drawn: list[str], law: str, where: str, into: dict[str, dict[str, list[str]]]) -> None:
    """Record why a convention left parameters of ``where`` alone (``meta["untouched"]``)."""
    why = sorted(set(getattr(drawn, "untouched", {}).values()))
    if why:
        into.setdefault(law, {})[where] = why


@functools.lru_cache(maxsize=256)
def _critical(activation: str, sigma_b2: float) -> float:
    return critical_sigma_w2(activation, sigma_b2)


def _sigma2(model: nn.Module, arch: str, activation: str) -> tuple[float, float, float]:
    """(σ_w², σ_b², critical σ_w²): fan_in·E[W²] and E[b²] averaged over the net's Linear
    and Conv layers as drawn; the critical value (at σ_b² to two significant digits) only for
    the plain stacks (NaN otherwise)."""
    sw, sb = [], []
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            w = m.weight.detach().double()
            sw.append(w[0].numel() * float(w.square().mean()))
            sb.append(
                float(m.bias.detach().double().square().mean()) if m.bias is not None else 0.0
            )
    sigma_w2, sigma_b2 = sum(sw) / len(sw), sum(sb) / len(sb)
    if not NET_KINDS[arch].mean_field:
        return sigma_w2, sigma_b2, math.nan
    # at σ_b² to two digits: one bisection per activation and bias law, not per run (a
    # 0.5% change of σ_b² moves tanh's critical σ_w² by about 1e-4)
    return sigma_w2, sigma_b2, _critical(activation, float(f"{sigma_b2:.2g}"))


def _first(
    stds: list[float], finite: list[bool], tiny: float, ref: float
) -> tuple[int | None, str | None]:
    """The first index (1-based) classify flags, and its kind."""
    for k, (s, f) in enumerate(zip(stds, finite, strict=True), start=1):
        kind = classify(s, f, tiny, ref, EXPLODE_AT, VANISH_AT)
        if kind is not None:
            return k, kind
    return None, None


def _measure(model: nn.Sequential, x: Tensor, seed: int) -> dict[str, Any]:
    """One forward and backward pass (Loss = Σ R⊙y, R ~ N(0, 1) from seed + GRAD_SEED_OFFSET):
    each block's output std and mean, the gradient std at it, and the summary."""
    tiny = torch.finfo(x.dtype).tiny
    x = x.clone().requires_grad_(True)
    hs, h = [], x
    for block in model:
        h = block(h)
        hs.append(h)
    stats = [layer_stats(t.detach().reshape(1, -1)) for t in (x, *hs)]
    std = [float(s[0][0]) for s in stats]
    finite = [bool(s[2][0]) for s in stats]
    grads = [math.nan] * (len(hs) + 1)
    gfinite = [False] * (len(hs) + 1)
    if all(finite):  # an overflowed forward pass has no gradient to speak of
        gen = torch.Generator().manual_seed(seed + GRAD_SEED_OFFSET)
        r = torch.randn(hs[-1].shape, generator=gen, dtype=hs[-1].dtype)
        gstats = [layer_stats(g.reshape(1, -1))
                  for g in torch.autograd.grad(hs[-1], [x, *hs], grad_outputs=r)]  # fmt: skip
        grads = [float(g[0][0]) for g in gstats]
        gfinite = [bool(g[2][0]) for g in gstats]
    div_layer, div_kind = _first(std[1:], finite[1:], tiny, std[0])
    r_std = grads[-1]
    # walking back from the output, as the engine does: layer 0 is dLoss/dx
    back, kind = _first(grads[::-1], gfinite[::-1], tiny, r_std)
    grad_layer = None if back is None else len(hs) + 1 - back
    layers = [{"layer": k, "std": std[k], "mean": float(stats[k][1][0]), "grad_std": grads[k]}
              for k in range(1, len(hs) + 1)]  # fmt: skip
    final = std[-1] if finite[-1] else math.nan
    summary = {"input_std": std[0], "final_std": final, "divergence_layer": div_layer,
               "divergence_kind": div_kind, "input_grad_std": grads[0],
               "grad_divergence_layer": grad_layer, "grad_divergence_kind": kind}  # fmt: skip
    return {"layers": layers, "summary": summary}


def _train(
    laws: Sequence[str], seeds: Sequence[int], cfg: FitConfig, data: Dataset
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each law's digits MLP trained once per activation and seed: (curves, runs) rows."""
    curves: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    for act in TRAIN_ACTIVATIONS:
        for law in laws:
            for seed in seeds:
                net = digits_mlp(act, TRAIN_DEPTH, TRAIN_WIDTH, data)
                _apply(net, law, seed)
                sigma_w2, sigma_b2, crit = _sigma2(net, "mlp", act)
                rows, summary = fit(net, data, seed, cfg)
                key = {"law": law, "activation": act, "depth": TRAIN_DEPTH,
                       "width": TRAIN_WIDTH, "seed": seed}  # fmt: skip
                curves += [{**key, **r} for r in rows]
                runs.append({**key, **summary, "sigma_w2": sigma_w2, "sigma_b2": sigma_b2,
                             "critical_sigma_w2": crit})  # fmt: skip
    return curves, runs


def _rules(laws: Sequence[str]) -> list[dict[str, Any]]:
    """The rules of the laws that are conventions, one row per layer type and parameter."""
    names = [law for law in laws if law in _conventions.CONVENTIONS]
    if not names:
        return []
    table = convention_table.conventions(names)
    table = table.rename(columns={"layer": "layer_type", "law": "rule"})
    return table[list(C.FRAMEWORK_CONVENTIONS)].to_dict("records")


def _forward(
    models: Sequence[ModelSpec], laws: Sequence[str], seeds: Sequence[int]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, dict[str, list[str]]]]:
    """Each law applied to each model once per seed and measured: the layers' rows, the
    runs' rows, and what each law left untouched (by law, then model)."""
    layer_rows: list[dict[str, Any]] = []
    run_rows: list[dict[str, Any]] = []
    untouched: dict[str, dict[str, list[str]]] = {}
    for spec in models:
        for law in laws:
            for seed in seeds:
                model = build_model(spec)
                _left(_apply(model, law, seed), law, spec.name, untouched)
                sigma_w2, sigma_b2, crit = _sigma2(model, spec.arch, spec.activation)
                out = _measure(model, _input(spec, seed), seed)
                key = {"law": law, "model": spec.name, "seed": seed}
                layer_rows += [{**key, **row} for row in out["layers"]]
                run_rows.append({**key, "arch": spec.arch, "activation": spec.activation,
                                 "depth": spec.depth, "width": spec.width, **out["summary"],
                                 "sigma_w2": sigma_w2, "sigma_b2": sigma_b2,
                                 "critical_sigma_w2": crit})  # fmt: skip
    return layer_rows, run_rows, untouched


def frameworks_study(
    laws: Sequence[str] = LAWS,
    *,
    seeds: int = SEEDS,
    models: Sequence[ModelSpec] = MODELS,
    train_steps: int = TRAIN_STEPS,
) -> FrameworksResult:
    """Each law applied to each of the study's nets, once per seed, measured forward and back;
    then each law's digits MLP trained.

    Args:
        laws: convention names (``"torch"``, ``"flax"``…) or scheme specs, each applied with
            ``initsuite.apply(model, law, generator=torch.Generator().manual_seed(seed))``.
        seeds: a count: seeds 0 .. seeds-1 (the law's draws, the input and R; in training,
            the draws and the minibatch order).
        models: the nets (default :data:`MODELS`).
        train_steps: SGD steps of each training run (the training study's settings otherwise:
            lr 0.002, momentum 0.9, batch 64, threshold 0.5 nats); 0 trains nothing.

    Returns:
        A :class:`~initsuite.results.frameworks.FrameworksResult`: ``layers`` (one row per
        law, model, seed and layer), ``runs`` (one per law, model and seed), ``training`` and
        ``training_runs`` (per step, and per law, activation and seed), ``conventions`` (the
        rules of the conventions among the laws).

    Raises:
        InitsuiteError: an unknown law, seeds not a positive count, or a bad train_steps,
            before any compute.
    """
    law_list = check_laws(laws)
    seed_list = list(range(validate.count("seeds", seeds)))
    steps = validate.count("train_steps", train_steps, 0)
    fit_cfg = FitConfig(steps=max(steps, 1), device=_DEVICE, dtype=_DTYPE)
    data = load_dataset(fit_cfg.dataset) if steps else None
    if data is not None:
        check_batch(fit_cfg, data)
    layer_rows, run_rows, untouched = _forward(models, law_list, seed_list)
    curves, train_runs = ([], []) if data is None else _train(law_list, seed_list, fit_cfg, data)
    training = None if data is None else {
        "depth": TRAIN_DEPTH, "width": TRAIN_WIDTH, "activations": list(TRAIN_ACTIVATIONS),
        "bias": "the law's", **fit_cfg.to_dict()}  # fmt: skip
    config = {"laws": list(law_list), "seeds": seed_list, "models": [vars(m) for m in models],
              "batch": _BATCH, "tokens": _TOKENS, "dtype": _DTYPE, "device": _DEVICE,
              "explode_at": EXPLODE_AT, "vanish_at": VANISH_AT,
              "loss": "Σ R ⊙ y, R ~ N(0, 1), seed + GRAD_SEED_OFFSET",
              "training": training}  # fmt: skip
    meta = {"kind": KIND, "config": config, "untouched": untouched,
            "environment": environment([_DEVICE])}  # fmt: skip
    return FrameworksResult(
        C.frame(C.FRAMEWORK_LAYERS, layer_rows), C.frame(C.FRAMEWORK_RUNS, run_rows), meta,
        training=C.frame(C.FRAMEWORK_TRAINING, curves),
        training_runs=C.frame(C.FRAMEWORK_TRAINING_RUNS, train_runs),
        conventions=C.frame(C.FRAMEWORK_CONVENTIONS, _rules(law_list)),
    )  # fmt: skip

"""``initsuite reproduce kernel-shaping``: which deep vanilla MLPs train on digits?

Deep Kernel Shaping (Martens et al. 2021) and Tailored Activation Transformations (Zhang,
Martens & Grosse 2022) make deep networks without skip connections or normalisation trainable
by transforming the activation so that the whole network's kernel stays controlled, with
scaled orthogonal weights and inputs normalised to q = 1. Here deep MLPs (no normalisation, no
skips) are trained on scikit-learn's digits with SGD or Adam, each net of :data:`NETS` at each
depth and seed, every step's minibatch loss and every ``eval_every`` steps the full train and
test loss recorded (:func:`initsuite.studies.fit.fit`). The papers' best results used K-FAC;
this study measures what a first-order optimiser reaches.

Every random draw goes through a ``torch.Generator``: the weights from one seeded with the
run's seed, in layer order, and the minibatch order from the fit's own.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from initsuite import activations as _activations
from initsuite import schemes as _schemes
from initsuite.core import validate
from initsuite.core.env import environment
from initsuite.core.errors import InitsuiteError, unknown
from initsuite.studies.fit import Dataset, FitConfig, check_batch, fit, load_dataset, make_mlp

if TYPE_CHECKING:
    import pandas as pd

    from initsuite.studies.coord_models import CoordResMLP

Run = tuple[list[dict[str, Any]], dict[str, Any]]
"""One trained net: its curve rows and its run row."""

__all__ = ["NETS", "ShapingNet", "build_net", "kernel_shaping_study", "kernel_shaping_task",
           "net_inputs", "train_net"]  # fmt: skip


@dataclass(frozen=True)
class ShapingNet:
    """One net of the study: its architecture, activation, init and input.

    ``activation`` may leave a ``dks:``/``tat:`` spec's depth out: it is bound to the net's
    nonlinear layers (an MLP of depth D Linear layers has D − 1). ``normalized``: each
    example scaled to q = 1 (:func:`initsuite.engine.draws.normalize_q`), as DKS and TAT
    assume. A ``resmlp`` of depth D has (D − 2) // 2 blocks x + W2 φ(W1 x) between its input
    and output layers, so it has D Linear layers as the MLP does."""

    name: str
    arch: str  # "mlp" | "resmlp"
    activation: str
    scheme: str
    normalized: bool
    label: str

    def activation_at(self, depth: int) -> _activations.Activation:
        """The activation of this net at ``depth`` Linear layers, its constants solved."""
        layers = depth - 1 if self.arch == "mlp" else 1  # a block's branch: one nonlinearity
        return _activations.get(self.activation).at_depth(layers)


NETS: dict[str, ShapingNet] = {n.name: n for n in (
    ShapingNet("relu_he", "mlp", "relu", "kaiming_normal", False, "ReLU, He"),
    ShapingNet("tanh_xavier", "mlp", "tanh", "xavier_normal:gain=auto", False,
               "tanh, Xavier gain 5/3"),
    ShapingNet("dks_tanh", "mlp", "dks:tanh:zeta=1.5", "scaled_orthogonal", True,
               "DKS tanh (ζ = 1.5), SUO, q = 1"),
    ShapingNet("tat_leaky_relu", "mlp", "tat:leaky_relu:eta=0.9", "scaled_orthogonal", True,
               "TAT leaky ReLU (η = 0.9), SUO, q = 1"),
    ShapingNet("resmlp_fixup", "resmlp", "relu", "fixup", False, "residual ReLU MLP, Fixup"),
)}  # fmt: skip
"""The study's nets: ReLU with He's init and tanh with Xavier's at gain 5/3 (the classic
vanilla nets), DKS's tanh and TAT's leaky ReLU with scaled orthogonal weights and q = 1 inputs
(vanilla nets, kernel-shaped), and a residual baseline (Fixup: each branch's last layer zero,
the others He's × L^(-1/2))."""


def _check_net(name: str) -> ShapingNet:
    if name not in NETS:
        raise InitsuiteError(unknown("net", name, NETS))
    return NETS[name]


def build_net(net: ShapingNet, depth: int, width: int, features: int, classes: int,
              generator: torch.Generator) -> nn.Module:  # fmt: skip
    """``net`` at ``depth`` Linear layers of ``width`` units, bias-free, every weight drawn
    from ``generator`` in layer order (torch's own default draws, made while the modules are
    built, come from a forked global RNG and are all overwritten)."""
    act = net.activation_at(depth)
    with torch.random.fork_rng(devices=[]):  # nn.Linear's own draws: not the caller's RNG
        if net.arch == "mlp":
            return make_mlp(net.scheme, act, depth, width, features, classes, generator)
        if net.arch != "resmlp":
            raise InitsuiteError(unknown("arch", net.arch, ("mlp", "resmlp")))
        from initsuite.studies.coord_models import resmlp

        model = resmlp(width, (depth - 2) // 2, act.spec, features, classes, bias=False)
    _draw_resmlp(model, _schemes.get(net.scheme), act, width, generator)
    return model


def _draw_resmlp(model: CoordResMLP, scheme: _schemes.Scheme, act: _activations.Activation,
                 width: int, generator: torch.Generator) -> None:  # fmt: skip
    """Draw a resmlp's weights in layer order, each branch layer with its place in the net
    (a residual scheme such as Fixup zeroes the branch's last layer and scales the others)."""
    from initsuite.schemes import LayerContext

    blocks: list[Any] = list(model.blocks)
    with torch.no_grad():
        scheme(model.input.weight, activation=act, generator=generator)
        for b, block in enumerate(blocks, 1):
            for position, layer in ((1, block.fc1), (2, block.fc2)):
                context = LayerContext.resmlp(b, len(blocks), 2, position, width)
                scheme(layer.weight, activation=act, generator=generator, context=context)
        scheme(model.output.weight, activation=act, generator=generator)


def net_inputs(net: ShapingNet, data: Dataset) -> Dataset:
    """``data`` as ``net`` sees it: each example at q = 1 where the net assumes it."""
    if not net.normalized:
        return data
    from initsuite.engine.draws import normalize_q

    return dataclasses.replace(data, x_train=normalize_q(data.x_train),
                               x_test=normalize_q(data.x_test))  # fmt: skip


def train_net(net: ShapingNet, depth: int, width: int, seed: int, cfg: FitConfig,
              data: Dataset) -> Run:  # fmt: skip
    """Build ``net`` from a generator seeded ``seed`` and train it as ``cfg`` says: (its
    curve rows, its run row), keyed by net, depth, width and seed."""
    gen = torch.Generator().manual_seed(seed)
    model = build_net(net, depth, width, data.features, data.classes, gen)
    rows, summary = fit(model, net_inputs(net, data), seed, cfg)
    key = {"net": net.name, "depth": depth, "width": width, "seed": seed}
    run = {**key, "arch": net.arch, "activation": net.activation_at(depth).spec,
           "scheme": net.scheme, "normalized": net.normalized, **summary}  # fmt: skip
    return [{**key, **r} for r in rows], run


def _train_shown(key: tuple[str, int, int], width: int, cfg: FitConfig, data: Dataset,
                 show: bool, n_seeds: int) -> Run:  # fmt: skip
    """:func:`train_net` of ``key`` = (net, depth, seed), a line to stderr after its last
    seed where ``show``."""
    name, depth, seed = key
    done = train_net(NETS[name], depth, width, seed, cfg, data)
    if show and seed == n_seeds - 1:
        print(f"{name} depth {depth}: {n_seeds} runs", file=sys.stderr)
    return done


def kernel_shaping_task(config: Mapping[str, Any], key: list[Any]) -> Any:
    """Run on a worker: one trained net, ``key`` = [net, depth, seed]; ``config``: the
    study's ``width`` and ``fit`` (a :class:`FitConfig` as a plain dict)."""
    name, depth, seed = key
    cfg = FitConfig(**config["fit"])
    return train_net(NETS[name], int(depth), int(config["width"]), int(seed), cfg,
                     load_dataset(cfg.dataset))  # fmt: skip


def _grid(nets: str | Iterable[str],
          depths: Iterable[int]) -> tuple[list[ShapingNet], list[int]]:  # fmt: skip
    """The nets and depths checked, each net's activation solved at each depth (so a target
    out of reach fails before any training)."""
    chosen = [_check_net(n) for n in dict.fromkeys(validate.as_tuple(nets))]
    if not chosen:
        raise InitsuiteError(f"nets is empty: give at least one of {', '.join(NETS)}")
    depth_list = [validate.count("depth", d, 4) for d in dict.fromkeys(validate.as_tuple(depths))]
    if not depth_list:
        raise InitsuiteError("depths is empty: give at least one depth, e.g. 50")
    for net in chosen:
        for d in depth_list:
            net.activation_at(d)
    return chosen, depth_list


def _cmaps(nets: list[ShapingNet], depths: list[int], width: int, seeds: int,
           meta: dict[str, Any]) -> pd.DataFrame:  # fmt: skip
    """The c-maps at init of MLP ``nets`` of ``depths`` Linear layers (as deep as their D − 1
    nonlinear ones); their grid and solved constants go into ``meta``."""
    from initsuite.studies.cmap import cmap_study

    maps = cmap_study([(n.activation, n.scheme) for n in nets], depths=[d - 1 for d in depths],
                      widths=(width,), seeds=seeds)  # fmt: skip
    meta["config"]["cmap"] = maps.meta["config"]
    meta["shaping"] = maps.meta["shaping"]
    return maps.cmap


def kernel_shaping_study(
    nets: str | Iterable[str] = tuple(NETS),
    *,
    depths: Iterable[int] = (50, 100),
    width: int = 256,
    seeds: int = 3,
    steps: int = 500,
    optimizer: str = "adam",
    lr: float = 1e-4,
    batch: int = 128,
    threshold: float = 0.5,
    eval_every: int = 25,
    cmap: bool = True,
    executor: Any = None,
    progress: bool | None = None,
) -> Any:
    """Train each net of :data:`NETS` named in ``nets`` at each depth for seeds 0 …
    ``seeds`` − 1: a :class:`~initsuite.results.kernel_shaping.KernelShapingResult`.

    Args:
        nets: names of :data:`NETS` (default: all five).
        depths: Linear layers in all (≥ 4: a resmlp needs a block).
        width: units of the hidden layers.
        seeds: how many seeds (0, 1, …).
        steps, optimizer, lr, batch, threshold, eval_every: the training
            (:class:`~initsuite.studies.fit.FitConfig`): ``optimizer`` ``"adam"`` or
            ``"sgd"`` (momentum 0.9); ``threshold`` the full-train-set loss (nats) whose first
            evaluated step is the run's ``steps_to_threshold``.
        cmap: also measure the vanilla nets' c-maps at init over the same depths (their
            nonlinear layers), width and seeds, beside the composed maps
            (:func:`~initsuite.studies.cmap.cmap_study`): why the nets train or not.
        executor: None (in process) or a :class:`~initsuite.studies.sweep.executors.
            DaskExecutor`, one task per trained net (each run draws from its seed alone).
        progress: print a line per net and depth to stderr (default: when it is a terminal).

    Example:
        >>> initsuite.reproduce("kernel-shaping", depths=[50], seeds=1)  # doctest: +SKIP
    """
    # long: a docstring line per keyword; the body is the grid, the runs and the tables
    from initsuite.results import columns as C
    from initsuite.results.kernel_shaping import KernelShapingResult

    chosen, depth_list = _grid(nets, depths)
    width = validate.count("width", width)
    n_seeds = validate.count("seeds", seeds)
    cfg = FitConfig(steps=steps, lr=lr, optimizer=optimizer, batch=batch, threshold=threshold,
                    eval_every=eval_every)  # fmt: skip
    data = load_dataset(cfg.dataset)
    check_batch(cfg, data)
    started = time.perf_counter()
    keys = [(n.name, d, s) for d in depth_list for n in chosen for s in range(n_seeds)]
    if executor is not None:
        done = executor.map_calls(kernel_shaping_task, {"width": width, "fit": cfg.to_dict()},
                                  keys)  # fmt: skip
    else:
        show = sys.stderr.isatty() if progress is None else progress
        done = [_train_shown(k, width, cfg, data, show, n_seeds) for k in keys]
    config = {"nets": [n.name for n in chosen], "labels": {n.name: n.label for n in chosen},
              "depths": depth_list, "width": width, "seeds": n_seeds,
              "fit": cfg.to_dict()}  # fmt: skip
    meta = {"kind": "kernel_shaping", "config": config, "environment": environment(["cpu"]),
            "dataset": {"name": data.name, "train": len(data.x_train), "test": len(data.x_test)},
            "seconds": round(time.perf_counter() - started, 3)}  # fmt: skip
    curves = C.frame(C.KSHAPING_CURVES, [r for rows, _ in done for r in rows])
    runs = C.frame(C.KSHAPING_RUNS, [r for _, r in done])
    vanilla = [n for n in chosen if n.arch == "mlp"]
    if not (cmap and vanilla):
        return KernelShapingResult(curves, runs, meta=meta)
    return KernelShapingResult(
        curves,
        runs,
        _cmaps(vanilla, depth_list, width, n_seeds, meta),
        meta | {"seconds": round(time.perf_counter() - started, 3)},
    )

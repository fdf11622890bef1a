"""``initsuite.train``: does the initialisation let the network learn?

The tutorial's MLP, its weights drawn by each scheme, trained on scikit-learn's digits (1797
8×8 images, 10 classes, shipped with the package) once per scheme × activation × seed; the
classic results it reproduces are He et al. (2015) for deep ReLU nets and Glorot & Bengio
(2010) for tanh. One run (the dataset, the net and its optimisation) is
:mod:`initsuite.studies.fit`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from initsuite import activations as _activations
from initsuite import schemes as _schemes
from initsuite.core import validate
from initsuite.core.bias import bias_law
from initsuite.core.env import environment
from initsuite.core.errors import InitsuiteError
from initsuite.core.renamed import renamed
from initsuite.results import columns as C
from initsuite.results.training import TrainingResult
from initsuite.studies.fit import (
    BIAS_LAWS,
    FitConfig,
    check_batch,
    fit,
    load_dataset,
    make_mlp,
)

__all__ = ["TrainConfig", "run_training", "train"]


_FIT_FIELDS = tuple(FitConfig.__dataclass_fields__)


@dataclass(frozen=True, kw_only=True)
class TrainConfig(FitConfig):
    """A validated training study: scheme × activation × seed at one depth and width, each
    run trained as :class:`FitConfig` says.

    ``schemes`` and ``activations`` take one spec or several; ``all`` and wildcards in
    ``schemes`` expand to every Linear scheme. See :func:`train` for the others.
    """

    schemes: tuple[str, ...]
    activations: tuple[str, ...]
    depth: int = 30
    width: int = 128
    seeds: tuple[int, ...] = (0, 1, 2)
    bias: str | None = None
    # the specs above, resolved once: what the runs draw with
    _scheme_objs: tuple[_schemes.Scheme, ...] = field(default=(), repr=False, compare=False)
    _act_objs: tuple[_activations.Activation, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass
        for name in ("schemes", "activations"):
            value = getattr(self, name)
            set_(name, (value,) if isinstance(value, str) else tuple(value))
            if not getattr(self, name):
                raise InitsuiteError(f"no {name} given")
        objs = [_schemes.get(s) for s in _schemes.expand(self.schemes)]
        acts = [_activations.get(a) for a in self.activations]
        for s in objs:
            if not s.info.accepts_rank(2):
                raise InitsuiteError(
                    f"scheme {s.name!r} does not apply to Linear layers: it needs tensors of "
                    f"rank {s.info.ranks}"
                )
            for a in acts:
                s.resolve(a)
        set_("_scheme_objs", tuple({s.spec: s for s in objs}.values()))
        set_("_act_objs", tuple({a.spec: a for a in acts}.values()))
        set_("schemes", tuple(s.spec for s in self._scheme_objs))
        set_("activations", tuple(a.spec for a in self._act_objs))
        set_("depth", validate.count("depth", self.depth, 2))
        for a in self._act_objs:  # a dks:/tat: spec without depth: solved for the net's
            a.at_depth(self.depth - 1)  # depth - 1 activations (make_mlp), failing here
        set_("width", validate.count("width", self.width))
        set_("seeds", validate.seeds(self.seeds))
        super().__post_init__()
        set_("bias", bias_law(self.bias, BIAS_LAWS, "training"))

    @property
    def scheme_objects(self) -> tuple[_schemes.Scheme, ...]:
        """The schemes of :attr:`schemes`, looked up once (in the same order)."""
        return self._scheme_objs

    @property
    def activation_objects(self) -> tuple[_activations.Activation, ...]:
        """The activations of :attr:`activations`, parsed once (in the same order)."""
        return self._act_objs

    @property
    def fit(self) -> FitConfig:
        """The optimisation settings, as :func:`fit` takes them."""
        return FitConfig(**{k: getattr(self, k) for k in _FIT_FIELDS})

    @property
    def n_runs(self) -> int:
        return len(self.schemes) * len(self.activations) * len(self.seeds)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain JSON-able values (for meta.json)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()
                if not k.startswith("_")}  # fmt: skip


@renamed(batch_size="batch")
def train(
    schemes: str | Iterable[str],
    activations: str | Iterable[str],
    depth: int = 30,
    width: int = 128,
    *,
    seeds: int | Iterable[int] = 3,
    steps: int = 400,
    lr: float = 0.002,
    optimizer: str = "sgd",
    momentum: float | None = None,
    batch: int = 64,
    threshold: float = 0.5,
    eval_every: int = 10,
    bias: str | None = None,
    dataset: str = "digits",
    device: str = "cpu",
    dtype: str = "float32",
    progress: bool | None = None,
) -> TrainingResult:
    """Train the tutorial's MLP once per scheme × activation × seed.

    Args:
        schemes: scheme specs (``"all"`` and wildcards expand to every Linear scheme).
        activations: activation specs.
        depth: Linear layers in all (≥ 2: the input and the output layer).
        width: units of the hidden layers.
        seeds: a count (``3`` → 0, 1, 2) or explicit seeds.
        steps: optimiser steps per run.
        lr: learning rate.
        optimizer: ``"sgd"`` (with ``momentum``) or ``"adam"``.
        momentum: SGD's momentum, in [0, 1) (default
            :data:`~initsuite.studies.fit.SGD_MOMENTUM`); Adam has none, and refuses one.
        batch: examples per step (the last partial batch of an epoch is dropped);
            ``batch_size``, its old name, is accepted, deprecated, until the next release.
        threshold: the full-train-set loss (nats) a run must reach (``steps_to_threshold``).
        eval_every: steps between evaluations on the full train and test sets.
        bias: None (bias-free layers) or ``"zeros"``.
        dataset: ``"digits"``.
        device, dtype: where and in what precision to train (float32 or float64).
        progress: show a progress bar (default: when stderr is a terminal).

    Returns:
        A :class:`~initsuite.results.training.TrainingResult`; the same seed gives the same
        curves (on one device and torch build).

    Example:
        >>> runs = initsuite.train(["kaiming_normal", "xavier_normal"], "relu",
        ...                        depth=30).runs  # doctest: +SKIP
    """
    cfg = TrainConfig(
        schemes=schemes, activations=activations, depth=depth, width=width,  # type: ignore[arg-type]
        seeds=validate.seeds(seeds), steps=steps, lr=lr, optimizer=optimizer, momentum=momentum,
        batch=batch, threshold=threshold, eval_every=eval_every, bias=bias,
        dataset=dataset, device=device, dtype=dtype,
    )  # fmt: skip
    return run_training(cfg, progress=progress)


def run_training(cfg: TrainConfig, progress: bool | None = None) -> TrainingResult:
    """Run a validated :class:`TrainConfig`."""
    from tqdm.auto import tqdm

    data = load_dataset(cfg.dataset)
    check_batch(cfg.fit, data)
    show = sys.stderr.isatty() if progress is None else progress
    curves: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tqdm(total=cfg.n_runs, disable=not show, unit="run", file=sys.stderr,
              desc="train") as bar:  # fmt: skip
        for act in cfg.activation_objects:
            for scheme in cfg.scheme_objects:
                for seed in cfg.seeds:
                    key = {"scheme": scheme.spec, "activation": act.spec, "depth": cfg.depth,
                           "width": cfg.width, "seed": seed}  # fmt: skip
                    gen = torch.Generator(device=torch.device(cfg.device)).manual_seed(seed)
                    net = make_mlp(scheme, act, cfg.depth, cfg.width, data.features,
                                   data.classes, gen, bias=cfg.bias, device=cfg.device,
                                   dtype=cfg.dtype)  # fmt: skip
                    rows, summary = fit(net, data, seed, cfg.fit)
                    curves.extend({**key, **r} for r in rows)
                    runs.append({**key, **summary})
                    bar.update(1)
    meta = {
        "kind": "training",
        "config": cfg.to_dict(),
        "dataset": {
            "name": data.name,
            "train": len(data.x_train),
            "test": len(data.x_test),
            "features": data.features,
            "classes": data.classes,
        },
        "environment": environment([cfg.device]),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return TrainingResult(C.frame(C.TRAINING, curves), C.frame(C.TRAINING_RUNS, runs), meta)

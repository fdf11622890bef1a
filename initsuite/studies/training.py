"""``initsuite.train``: does the initialisation let the network *learn*?

Trains the tutorial's MLP on a small real dataset that ships inside a package
(scikit-learn's digits: 1797 8×8 images, 10 classes; no download) for a fixed number of
steps, once per scheme × activation × seed, and records the loss at every step, the full
train loss and accuracies every ``eval_every`` steps, the steps needed to reach a loss
threshold, and whether training diverged. The classic results it reproduces: a deep ReLU net
(30 layers, no normalisation) trains from Kaiming's init and stalls from Xavier's (gain 1)
or PyTorch's default, whose signals shrink by √2 and more per layer (He et al. 2015); a
tanh net trains from Xavier's init with the tanh gain (Glorot & Bengio 2010).

The network: ``depth`` bias-free Linear layers (the first maps the 64 features to
``width``, the last ``width`` to the 10 classes), each but the last followed by the
activation; every weight is drawn by the scheme, with its own fans, from one
``torch.Generator`` seeded with the run's seed, in layer order. Biases (``bias=True``) start
at zero. Features are standardised with the training split's mean and std; the split (80/20)
is fixed (seed 0) and the same for every run. Minibatches are drawn without replacement from
a generator seeded with ``seed + ORDER_SEED_OFFSET``, so the runs of one seed see the same
batches in the same order whatever the scheme (paired comparisons). Loss: cross-entropy.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F

from initsuite import activations as _activations
from initsuite import schemes as _schemes
from initsuite.core import validate
from initsuite.core.devices import DTYPES, check_device, parse_dtype
from initsuite.core.env import environment
from initsuite.core.errors import InitsuiteError, unknown
from initsuite.results import columns as C
from initsuite.results.store import as_path, read, write

__all__ = [
    "DATASETS", "OPTIMIZERS", "Dataset", "TrainConfig", "TrainingResult", "load_dataset",
    "make_mlp", "train",
]  # fmt: skip

DATASETS: tuple[str, ...] = ("digits",)
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")
TRAIN_DTYPES: tuple[str, ...] = ("float32", "float64")
SPLIT_SEED = 0
TEST_FRACTION = 0.2
ORDER_SEED_OFFSET = 0x0DE7_A5E7  # the minibatch order's generator: seed + this


@dataclass(frozen=True)
class Dataset:
    """A standardised classification dataset, split into train and test (float64 features)."""

    name: str
    x_train: torch.Tensor  # (n_train, features)
    y_train: torch.Tensor  # (n_train,) int64 class labels
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: int

    @property
    def features(self) -> int:
        return int(self.x_train.shape[1])


def load_dataset(name: str = "digits") -> Dataset:
    """The named dataset, split 80/20 with a fixed permutation and standardised with the
    training split's statistics (constant features stay 0)."""
    if name not in DATASETS:
        raise InitsuiteError(unknown("dataset", name, DATASETS))
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise InitsuiteError(
            "the training study needs scikit-learn, whose package ships the digits dataset: "
            "pip install 'initsuite[train]'"
        ) from None
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float64)
    y = torch.tensor(data.target, dtype=torch.int64)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_test = round(TEST_FRACTION * len(x))
    test, tr = perm[:n_test], perm[n_test:]
    mean, std = x[tr].mean(dim=0), x[tr].std(dim=0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    x = (x - mean) / std
    return Dataset(name, x[tr], y[tr], x[test], y[test], int(y.max()) + 1)


class _Activation(torch.nn.Module):
    def __init__(self, act: _activations.Activation) -> None:
        super().__init__()
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x)

    def extra_repr(self) -> str:
        return self.act.spec


def make_mlp(
    scheme: str,
    activation: str,
    depth: int,
    width: int,
    features: int,
    classes: int,
    generator: torch.Generator,
    bias: bool = False,
    device: str = "cpu",
    dtype: str = "float32",
) -> torch.nn.Sequential:
    """The tutorial's MLP for classification: ``depth`` Linear layers (features → width →
    … → width → classes), the activation after all but the last, every weight drawn by
    ``scheme`` from ``generator`` in layer order (biases zero)."""
    init, act = _schemes.get(scheme), _activations.get(activation)
    dims = [features] + [width] * (depth - 1) + [classes]
    modules: list[torch.nn.Module] = []
    for k, (fan_in, fan_out) in enumerate(itertools.pairwise(dims)):
        layer = torch.nn.Linear(fan_in, fan_out, bias=bias, device=device, dtype=DTYPES[dtype])
        with torch.no_grad():
            init(layer.weight, activation=act, generator=generator)
            if layer.bias is not None:
                layer.bias.zero_()
        modules.append(layer)
        if k < depth - 1:
            modules.append(_Activation(act))
    return torch.nn.Sequential(*modules)


@dataclass(frozen=True)
class TrainConfig:
    """A validated training study: scheme × activation × seed at one depth and width."""

    schemes: tuple[str, ...]
    activations: tuple[str, ...]
    depth: int = 30
    width: int = 128
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 400
    lr: float = 0.002
    optimizer: str = "sgd"
    momentum: float = 0.9
    batch_size: int = 64
    threshold: float = 0.5
    eval_every: int = 10
    bias: bool = False
    dataset: str = "digits"
    device: str = "cpu"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass
        if not self.schemes:
            raise InitsuiteError("no schemes given")
        if not self.activations:
            raise InitsuiteError("no activations given")
        objs = [_schemes.get(s) for s in self.schemes]
        acts = [_activations.get(a) for a in self.activations]
        for s in objs:
            if not s.info.accepts_rank(2):
                raise InitsuiteError(
                    f"scheme {s.name!r} does not apply to Linear layers: it needs tensors of "
                    f"rank {s.info.ranks}"
                )
            for a in acts:
                s.resolve(a)
        set_("schemes", tuple(dict.fromkeys(s.spec for s in objs)))
        set_("activations", tuple(dict.fromkeys(a.spec for a in acts)))
        for name, low in (("depth", 2), ("width", 1), ("steps", 1), ("batch_size", 1),
                          ("eval_every", 1)):  # fmt: skip
            set_(name, validate.count(name, getattr(self, name), low))
        set_("seeds", validate.seeds(self.seeds))
        for name in ("lr", "threshold"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0):
                raise InitsuiteError(f"{name} must be a positive number, got {v!r}")
        m = self.momentum
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 <= m < 1:
            raise InitsuiteError(f"momentum must be in [0, 1), got {m!r}")
        if self.optimizer not in OPTIMIZERS:
            raise InitsuiteError(unknown("optimizer", self.optimizer, OPTIMIZERS))
        if self.dataset not in DATASETS:
            raise InitsuiteError(unknown("dataset", self.dataset, DATASETS))
        if not isinstance(self.bias, bool):
            raise InitsuiteError(f"bias must be True or False, got {self.bias!r}")
        dtype = parse_dtype(self.dtype)
        if dtype not in TRAIN_DTYPES:
            raise InitsuiteError(
                f"training runs in {' or '.join(TRAIN_DTYPES)} (plain SGD/Adam in {dtype} "
                "would need loss scaling); use 'float32'"
            )
        set_("dtype", dtype)
        set_("device", check_device(self.device))

    @property
    def n_runs(self) -> int:
        return len(self.schemes) * len(self.activations) * len(self.seeds)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


@dataclass
class TrainingResult:
    """What :func:`train` returns.

    Attributes:
        curves: one row per run and step (:data:`initsuite.columns.TRAINING`): the minibatch
            loss, and every ``eval_every`` steps (and at step 0, before any update) the full
            train loss and accuracy and the test loss and accuracy.
        runs: one row per run (:data:`initsuite.columns.TRAINING_RUNS`).
        meta: configuration and environment.
    """

    curves: pd.DataFrame
    runs: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, out_dir: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write training.parquet, runs.parquet and meta.json into ``out_dir`` atomically."""
        return write(out_dir, {"training": self.curves, "runs": self.runs}, self.meta,
                     overwrite=overwrite)  # fmt: skip

    def summary(self) -> pd.DataFrame:
        """One row per (activation, scheme): runs, how many reached the threshold and
        diverged, median steps to the threshold (over the runs that reached it), mean final
        train loss and test accuracy."""
        g = self.runs.groupby(["activation", "scheme"], observed=True, sort=True)
        out = g.agg(
            runs=("seed", "size"),
            reached=("reached", "sum"),
            diverged=("diverged", "sum"),
            median_steps_to_threshold=("steps_to_threshold", lambda s: s.dropna().median()),
            mean_final_train_loss=("final_train_loss", "mean"),
            mean_final_test_accuracy=("final_test_accuracy", "mean"),
        ).reset_index()
        return out.astype({"reached": "int64", "diverged": "int64"})

    @classmethod
    def load(cls, in_dir: str | os.PathLike[str]) -> TrainingResult:
        """Read a directory written by :meth:`save`, with the declared column dtypes."""
        path = as_path(in_dir)
        if path.is_dir() and not (path / "training.parquet").exists():
            raise InitsuiteError(
                f"{str(path)!r} has no training.parquet: is it a training directory "
                "('initsuite train')?"
            )
        tables, meta = read(in_dir, ("training", "runs"))
        out = []
        for name, cols in (("training", C.TRAINING), ("runs", C.TRAINING_RUNS)):
            missing = [c for c in cols if c not in tables[name].columns]
            if missing:
                raise InitsuiteError(
                    f"{name}.parquet in {str(in_dir)!r} lacks columns {missing}: is it a "
                    "training directory ('initsuite train')?"
                )
            out.append(C.coerce(tables[name], cols))
        return cls(out[0], out[1], meta)


def train(
    schemes: str | Iterable[str],
    activations: str | Iterable[str],
    depth: int = 30,
    width: int = 128,
    seeds: int | Iterable[int] = 3,
    *,
    steps: int = 400,
    lr: float = 0.002,
    optimizer: str = "sgd",
    momentum: float = 0.9,
    batch_size: int = 64,
    threshold: float = 0.5,
    eval_every: int = 10,
    bias: bool = False,
    dataset: str = "digits",
    device: str = "cpu",
    dtype: str = "float32",
    progress: bool | None = None,
) -> TrainingResult:
    """Train the MLP once per scheme × activation × seed; see the module docstring.

    Args:
        schemes: scheme specs (``"all"`` and wildcards expand as in sweeps).
        activations: activation specs.
        depth: Linear layers in all (≥ 2: the input and the output layer).
        width: units of the hidden layers.
        seeds: a count (``3`` → 0, 1, 2) or explicit seeds.
        steps: optimiser steps per run.
        lr: learning rate.
        optimizer: ``"sgd"`` (with ``momentum``) or ``"adam"``. Adam divides each update by
            the gradient's own scale, so it partly hides vanishing gradients: the classic
            results are stated for SGD.
        momentum: SGD's momentum (ignored by Adam).
        batch_size: examples per step (the last partial batch of an epoch is dropped).
        threshold: the full-train-set loss a run must reach (``steps_to_threshold``); 0.5 is
            a fifth of chance level (ln 10 ≈ 2.30) on digits.
        eval_every: steps between evaluations on the full train and test sets.
        bias: Linear layers with bias (started at zero).
        dataset: ``"digits"``.
        device, dtype: where and in what precision to train (float32 or float64).
        progress: show a progress bar (default: when stderr is a terminal).

    Returns:
        A :class:`TrainingResult`. Same seed, same curves (on one device and torch build).
    """
    cfg = TrainConfig(
        schemes=tuple(_schemes.expand(list(validate.as_tuple(schemes)))),
        activations=validate.as_tuple(activations), depth=depth, width=width,
        seeds=validate.seeds(seeds), steps=steps, lr=lr, optimizer=optimizer, momentum=momentum,
        batch_size=batch_size, threshold=threshold, eval_every=eval_every, bias=bias,
        dataset=dataset, device=device, dtype=dtype,
    )  # fmt: skip
    return run_training(cfg, progress=progress)


def run_training(cfg: TrainConfig, progress: bool | None = None) -> TrainingResult:
    """Run a validated :class:`TrainConfig`."""
    from tqdm.auto import tqdm

    data = load_dataset(cfg.dataset)
    if cfg.batch_size > len(data.x_train):
        raise InitsuiteError(
            f"batch_size {cfg.batch_size} exceeds the {len(data.x_train)} training examples "
            f"of {data.name}"
        )
    show = sys.stderr.isatty() if progress is None else progress
    curves: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tqdm(total=cfg.n_runs, disable=not show, unit="run", file=sys.stderr,
              desc="train") as bar:  # fmt: skip
        for act in cfg.activations:
            for scheme in cfg.schemes:
                for seed in cfg.seeds:
                    key = {"scheme": scheme, "activation": act, "depth": cfg.depth,
                           "width": cfg.width, "seed": seed}  # fmt: skip
                    rows, summary = _train_one(cfg, data, scheme, act, seed)
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


def _evaluate(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) over all of (x, y)."""
    with torch.no_grad():
        logits = net(x)
        loss = F.cross_entropy(logits.double(), y).item()
        acc = (logits.argmax(dim=1) == y).double().mean().item()
    return loss, acc


def _unevaluated(step: int, batch_loss: float) -> dict[str, Any]:
    nan = math.nan
    return {"step": step, "batch_loss": batch_loss, "train_loss": nan, "train_accuracy": nan,
            "test_loss": nan, "test_accuracy": nan}  # fmt: skip


def _train_one(
    cfg: TrainConfig, data: Dataset, scheme: str, act: str, seed: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One run: its per-step rows and its summary."""
    device, dtype = torch.device(cfg.device), DTYPES[cfg.dtype]
    gen = torch.Generator(device=device).manual_seed(seed)
    net = make_mlp(scheme, act, cfg.depth, cfg.width, data.features, data.classes, gen,
                   bias=cfg.bias, device=cfg.device, dtype=cfg.dtype)  # fmt: skip
    xtr, ytr = data.x_train.to(device, dtype), data.y_train.to(device)
    xte, yte = data.x_test.to(device, dtype), data.y_test.to(device)
    opt: torch.optim.Optimizer
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    # the order generator lives on the CPU: the same batches on every device
    order_gen = torch.Generator().manual_seed(seed + ORDER_SEED_OFFSET)
    n = len(xtr)
    order, pos = torch.randperm(n, generator=order_gen), 0
    nan = math.nan
    rows: list[dict[str, Any]] = []

    def evaluation(step: int, batch_loss: float) -> dict[str, Any]:
        tl, ta = _evaluate(net, xtr, ytr)
        vl, va = _evaluate(net, xte, yte)
        return {"step": step, "batch_loss": batch_loss, "train_loss": tl,
                "train_accuracy": ta, "test_loss": vl, "test_accuracy": va}  # fmt: skip

    rows.append(evaluation(0, nan))
    reached: int | None = 0 if rows[0]["train_loss"] <= cfg.threshold else None
    diverged_step: int | None = None
    for step in range(1, cfg.steps + 1):
        if pos + cfg.batch_size > n:  # a new epoch; the partial batch is dropped
            order, pos = torch.randperm(n, generator=order_gen), 0
        idx = order[pos : pos + cfg.batch_size].to(device)
        pos += cfg.batch_size
        loss = F.cross_entropy(net(xtr[idx]), ytr[idx])
        value = loss.item()
        if not math.isfinite(value):
            diverged_step = step
            rows.append(_unevaluated(step, value))
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % cfg.eval_every == 0 or step == cfg.steps:
            row = evaluation(step, value)
            if not math.isfinite(row["train_loss"]):  # the update itself overflowed
                diverged_step = step
            elif reached is None and row["train_loss"] <= cfg.threshold:
                reached = step
            rows.append(row)
            if diverged_step is not None:
                break
        else:
            rows.append(_unevaluated(step, value))
    last = rows[-1] if diverged_step is None else {}
    summary = {
        "steps": cfg.steps,
        "steps_to_threshold": reached,
        "reached": reached is not None,
        "diverged": diverged_step is not None,
        "diverged_step": diverged_step,
        "initial_train_loss": rows[0]["train_loss"],
        "final_train_loss": last.get("train_loss", nan),
        "final_train_accuracy": last.get("train_accuracy", nan),
        "final_test_accuracy": last.get("test_accuracy", nan),
    }
    return rows, summary

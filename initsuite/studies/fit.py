"""One training run: the dataset (scikit-learn's digits, split and standardised once), the
classifier MLP whose weights a scheme draws (:func:`make_mlp`), the optimiser's settings
(:class:`FitConfig`) and :func:`fit`, which trains a net and records every step. The training
study (:mod:`initsuite.studies.training`) and the frameworks study run it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from initsuite import activations as _activations
from initsuite import schemes as _schemes
from initsuite.core import validate
from initsuite.core.bias import bias_law
from initsuite.core.devices import DTYPES, check_device, parse_dtype
from initsuite.core.errors import Arg, InitsuiteError, unknown

__all__ = [
    "BIAS_LAWS", "DATASETS", "OPTIMIZERS", "ORDER_SEED_OFFSET", "SGD_MOMENTUM", "Dataset",
    "FitConfig", "check_batch", "fit", "load_dataset", "make_mlp",
]  # fmt: skip

DATASETS: tuple[str, ...] = ("digits",)
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")
SGD_MOMENTUM = 0.9
"""SGD's momentum when none is given (Adam takes none)."""
TRAIN_DTYPES: tuple[str, ...] = ("float32", "float64")
SPLIT_SEED = 0
TEST_FRACTION = 0.2
ORDER_SEED_OFFSET = 0x0DE7_A5E7  # the minibatch order's generator: seed + this
BIAS_LAWS: tuple[str, ...] = ("zeros",)
"""The bias laws training draws (:mod:`initsuite.core.bias`); None: bias-free layers."""


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
    scheme: str | _schemes.Scheme,
    activation: str | _activations.Activation,
    depth: int,
    width: int,
    features: int,
    classes: int,
    generator: torch.Generator,
    bias: str | None = None,
    device: str = "cpu",
    dtype: str = "float32",
) -> torch.nn.Sequential:
    """The tutorial's MLP for classification, every weight drawn by ``scheme`` in layer order.

    Args:
        scheme, activation: specs or their objects; the activation follows every layer but
            the last (a dks: or tat: spec without depth is bound to those depth - 1 layers).
        depth: Linear layers in all (features → width → … → width → classes).
        width: units of the hidden layers.
        features, classes: the input's size and the number of classes.
        generator: the source of every weight's draw, in layer order.
        bias: None (bias-free layers) or ``"zeros"`` (:data:`BIAS_LAWS`).
        device, dtype: where the net lives and its dtype (a name, e.g. ``"float32"``).
    """
    law = bias_law(bias, BIAS_LAWS, "training")
    init = _schemes.get(scheme)
    act = _activations.get(activation).at_depth(max(depth - 1, 1))
    dims = [features] + [width] * (depth - 1) + [classes]
    modules: list[torch.nn.Module] = []
    for k, (fan_in, fan_out) in enumerate(itertools.pairwise(dims)):
        layer = torch.nn.Linear(fan_in, fan_out, bias=law is not None, device=device,
                                dtype=DTYPES[dtype])  # fmt: skip
        with torch.no_grad():
            init(layer.weight, activation=act, generator=generator)
            if layer.bias is not None:  # law "zeros", the only one training draws
                layer.bias.zero_()
        modules.append(layer)
        if k < depth - 1:
            modules.append(_Activation(act))
    return torch.nn.Sequential(*modules)


@dataclass(frozen=True)
class FitConfig:
    """How :func:`fit` trains a net: the optimiser, the schedule of evaluations, the loss a
    run must reach, and where it runs. Validated on construction (one line per bad value);
    ``momentum`` is SGD's (None: :data:`SGD_MOMENTUM` for SGD), and refused for Adam."""

    steps: int = 400
    lr: float = 0.002
    optimizer: str = "sgd"
    momentum: float | None = None
    batch: int = 64
    threshold: float = 0.5
    eval_every: int = 10
    dataset: str = "digits"
    device: str = "cpu"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass
        for name in ("steps", "batch", "eval_every"):
            set_(name, validate.count(name, getattr(self, name)))
        for name in ("lr", "threshold"):  # inf is no step size, and no loss to reach
            validate.number(name, getattr(self, name), 0, open_low=True, open_high=True)
        if self.optimizer not in OPTIMIZERS:
            raise InitsuiteError(unknown("optimizer", self.optimizer, OPTIMIZERS))
        set_("momentum", _momentum(self.optimizer, self.momentum))
        if self.dataset not in DATASETS:
            raise InitsuiteError(unknown("dataset", self.dataset, DATASETS))
        dtype = parse_dtype(self.dtype)
        if dtype not in TRAIN_DTYPES:
            raise InitsuiteError(
                f"training runs in {' or '.join(TRAIN_DTYPES)} (plain SGD/Adam in {dtype} "
                "would need loss scaling); use 'float32'"
            )
        set_("dtype", dtype)
        set_("device", check_device(self.device))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _momentum(optimizer: str, momentum: object) -> float | None:
    """SGD's momentum, in [0, 1) (None: :data:`SGD_MOMENTUM`); Adam's None (it has none: a
    momentum given with it would be silently ignored, so it is refused)."""
    if optimizer != "sgd":
        if momentum is not None:
            raise InitsuiteError(
                Arg("momentum", momentum), " is SGD's: ", Arg("optimizer", optimizer),
                " has no momentum; drop ", Arg("momentum"), " or use ", Arg("optimizer", "sgd"),
            )  # fmt: skip
        return None
    if momentum is None:
        return SGD_MOMENTUM
    return validate.number("momentum", momentum, 0, 1, open_high=True)


def _evaluate(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) over all of (x, y)."""
    with torch.no_grad():
        logits = net(x)
        loss = F.cross_entropy(logits.double(), y).item()
        acc = (logits.argmax(dim=1) == y).double().mean().item()
    return loss, acc


def _evaluation(
    net: torch.nn.Module,
    step: int,
    batch_loss: float,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
) -> dict[str, Any]:
    """A step's row after evaluating ``net`` on the full train and test sets."""
    tl, ta = _evaluate(net, *train)
    vl, va = _evaluate(net, *test)
    return {"step": step, "batch_loss": batch_loss, "train_loss": tl, "train_accuracy": ta,
            "test_loss": vl, "test_accuracy": va}  # fmt: skip


def _unevaluated(step: int, batch_loss: float) -> dict[str, Any]:
    nan = math.nan
    return {"step": step, "batch_loss": batch_loss, "train_loss": nan, "train_accuracy": nan,
            "test_loss": nan, "test_accuracy": nan}  # fmt: skip


def check_batch(cfg: FitConfig, data: Dataset) -> None:
    """Refuse a batch larger than the training split, before any run."""
    if cfg.batch > len(data.x_train):
        raise InitsuiteError(
            f"batch {cfg.batch} exceeds the {len(data.x_train)} training examples of {data.name}"
        )


def fit(
    net: torch.nn.Module, data: Dataset, seed: int, cfg: FitConfig
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Train ``net`` (a classifier of ``data``: features in, class logits out, already on
    ``cfg.device`` in ``cfg.dtype``) in place with cross-entropy, and record it.

    The minibatch order comes from a CPU generator seeded ``seed + ORDER_SEED_OFFSET`` (the
    same batches on every device); the full train and test sets are evaluated at step 0, every
    ``eval_every`` steps and at the end. A non-finite batch loss, or train loss after an
    update, stops the run (``diverged``).

    Returns:
        (rows, summary): one row per step (:data:`~initsuite.results.columns.TRAINING`'s measured
        columns; NaN where not evaluated) and the run's summary
        (:data:`~initsuite.results.columns.TRAINING_RUNS`'s).
    """
    device, dtype = torch.device(cfg.device), DTYPES[cfg.dtype]
    xtr, ytr = data.x_train.to(device, dtype), data.y_train.to(device)
    xte, yte = data.x_test.to(device, dtype), data.y_test.to(device)
    opt = _optimizer(cfg, net)
    # the order generator lives on the CPU: the same batches on every device
    order_gen = torch.Generator().manual_seed(seed + ORDER_SEED_OFFSET)
    n = len(xtr)
    order, pos = torch.randperm(n, generator=order_gen), 0

    def evaluation(step: int, batch_loss: float) -> dict[str, Any]:
        return _evaluation(net, step, batch_loss, (xtr, ytr), (xte, yte))

    rows: list[dict[str, Any]] = [evaluation(0, math.nan)]
    reached: int | None = 0 if rows[0]["train_loss"] <= cfg.threshold else None
    diverged_step: int | None = None
    for step in range(1, cfg.steps + 1):
        if pos + cfg.batch > n:  # a new epoch; the partial batch is dropped
            order, pos = torch.randperm(n, generator=order_gen), 0
        idx = order[pos : pos + cfg.batch].to(device)
        pos += cfg.batch
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
    return rows, _summary(cfg, rows, reached, diverged_step)


def _optimizer(cfg: FitConfig, net: torch.nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        # resolved on construction: SGD's momentum is never None
        return torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum or 0.0)
    return torch.optim.Adam(net.parameters(), lr=cfg.lr)


def _summary(
    cfg: FitConfig, rows: list[dict[str, Any]], reached: int | None, diverged_step: int | None
) -> dict[str, Any]:
    """A run's row of the runs table, from its per-step rows."""
    nan = math.nan
    last = rows[-1] if diverged_step is None else {}
    return {
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

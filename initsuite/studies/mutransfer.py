"""``initsuite reproduce mutransfer``: does the best learning rate stay put as the model grows?

Yang et al. (2022, Tensor Programs V) show that under the standard parametrization the best
learning rate of a model moves as it widens, and under μP it stays: tune a small model, use
its learning rate on the large one (μTransfer). Here each parametrization × width (× depth)
× learning rate × seed is trained for a fixed number of steps, and its loss recorded: the
digits MLP (scikit-learn's 8×8 digits), a small GPT-2-style transformer on a synthetic
sequence task (:func:`bigram_task`), and a residual MLP over depth (``depth_mup``).

Every random draw goes through a ``torch.Generator`` seeded from the run's seed: the model's
parameters (:func:`initsuite.parametrize`), the minibatches and the synthetic task.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from initsuite.core import validate
from initsuite.core.errors import InitsuiteError

__all__ = ["DEFAULT_LRS", "MUTRANSFER", "Task", "bigram_task", "digits_task", "train_runs"]

DEFAULT_LRS: tuple[float, ...] = tuple(2.0**k for k in range(-12, -3))
"""Adam's learning rates of the default grid: 2^-12 … 2^-4, an octave apart."""
MUTRANSFER: tuple[str, ...] = (
    "parametrization", "model", "optimizer", "width", "depth", "lr", "seed", "steps",
    "train_loss", "test_loss",
)  # fmt: skip
"""The columns of a μTransfer run table: one row per trained model; a loss that left the
representable range is +inf (the run stopped there)."""
TASK_SEED = 20221
"""The seed of the synthetic task's chain and samples: one task for every run."""


@dataclass(frozen=True)
class Task:
    """A supervised task: inputs (float features or token ids) and integer targets (for a
    sequence task, the next token at every position), split into train and test."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (over every position of a sequence)."""
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def digits_task() -> Task:
    """scikit-learn's digits, split and standardised as the training study does (float32)."""
    from initsuite.studies.fit import load_dataset

    d = load_dataset("digits")
    return Task("digits", d.x_train.float(), d.y_train, d.x_test.float(), d.y_test)


def bigram_task(vocab: int = 64, seq: int = 16, train: int = 2048, test: int = 512,
                temperature: float = 0.5) -> Task:  # fmt: skip
    """Sequences of a seeded Markov chain over ``vocab`` tokens, ``seq`` long: each token's
    successor law is a softmax of N(0, 1)/``temperature`` logits, so a model that learns the
    chain predicts the next token well below log(vocab) nats. Targets are the sequence
    shifted by one (the last position predicts a further draw)."""
    g = torch.Generator().manual_seed(TASK_SEED)
    probs = torch.softmax(torch.randn(vocab, vocab, generator=g) / temperature, dim=1)
    n = train + test
    tokens = torch.empty(n, seq + 1, dtype=torch.int64)
    tokens[:, 0] = torch.randint(0, vocab, (n,), generator=g)
    for t in range(seq):
        tokens[:, t + 1] = torch.multinomial(probs[tokens[:, t]], 1, generator=g).squeeze(1)
    x, y = tokens[:, :-1], tokens[:, 1:]
    return Task("bigram", x[:train], y[:train], x[train:], y[train:])


def _train_one(model: nn.Module, optimizer: torch.optim.Optimizer, task: Task, steps: int,
               batch: int, seed: int) -> tuple[float, float]:  # fmt: skip
    """(train loss, test loss) after ``steps`` Adam/SGD steps on minibatches of ``batch``
    drawn with replacement from a generator seeded with ``seed``; (inf, inf) as soon as a
    step's loss is not finite."""
    g = torch.Generator().manual_seed(seed)
    n = task.x_train.shape[0]
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, n, (min(batch, n),), generator=g)
        loss = task.loss(model(task.x_train[idx]), task.y_train[idx])
        if not math.isfinite(loss.item()):
            return math.inf, math.inf
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        out = [task.loss(model(x), y).item()
               for x, y in ((task.x_train, task.y_train), (task.x_test, task.y_test))]  # fmt: skip
    return tuple(v if math.isfinite(v) else math.inf for v in out)  # type: ignore[return-value]


def train_runs(
    build: Callable[[int, int], nn.Module],
    parametrizations: Sequence[str],
    widths: Sequence[int],
    depths: Sequence[int],
    lrs: Iterable[float],
    seeds: Iterable[int],
    task: Task,
    *,
    model: str,
    optimizer: str = "adam",
    steps: int = 150,
    batch: int = 128,
    base_width: int | None = None,
    base_depth: int | None = None,
    progress: Callable[[str], Any] | None = None,
) -> pd.DataFrame:
    """Train every parametrization × width × depth × learning rate × seed; the
    :data:`MUTRANSFER` table, in that order.

    ``build(width, depth)`` makes a model (its own init is redrawn); each is put in its
    parametrization by :func:`initsuite.parametrize` relative to the model at ``base_width``
    (default the smallest width) and the same depth, with ``base_depth`` (default the
    smallest depth) as the depth multipliers' base, its parameters drawn from the run's
    seed, and trained by :meth:`~initsuite.engine.parametrize.Parametrized.optimizer`.
    """
    from initsuite.engine.parametrize import parametrize

    steps = validate.count("steps", steps)
    batch = validate.count("batch", batch)
    lrs = [validate.number("lr", lr, 0.0, open_low=True, open_high=True) for lr in lrs]
    if not lrs:
        raise InitsuiteError("lrs is empty: give at least one learning rate")
    seeds = list(seeds)
    base_w = min(widths) if base_width is None else base_width
    base_d = min(depths) if base_depth is None else base_depth
    rows = []
    for p in parametrizations:
        for depth in depths:
            with torch.random.fork_rng(devices=[]):  # the builds' own init: not the user's RNG
                base = build(base_w, depth)
            for width in widths:
                for lr in lrs:
                    for seed in seeds:
                        with torch.random.fork_rng(devices=[]):
                            net = build(width, depth)
                        put = parametrize(net, p, base=base, optimizer=optimizer,
                                          depth=depth, base_depth=base_d, seed=seed)  # fmt: skip
                        train, test = _train_one(net, put.optimizer(lr), task, steps, batch,
                                                 seed)  # fmt: skip
                        rows.append((p, model, optimizer, width, depth, lr, seed, steps, train,
                                     test))  # fmt: skip
                if progress is not None:
                    progress(f"{p} width {width} depth {depth}: {len(lrs) * len(seeds)} runs")
    return pd.DataFrame(rows, columns=list(MUTRANSFER))

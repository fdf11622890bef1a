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

__all__ = ["DEFAULT_LRS", "EXPERIMENTS", "MUTRANSFER", "TASKS", "Experiment", "Task",
           "bigram_task", "digits_task", "mutransfer_study", "mutransfer_task",
           "train_runs"]  # fmt: skip

DEFAULT_LRS: tuple[float, ...] = tuple(2.0**k for k in range(-12, -3))
"""Adam's learning rates of the default grid: 2^-12 … 2^-4, an octave apart."""
MUTRANSFER: tuple[str, ...] = (
    "parametrization", "model", "optimizer", "width", "depth", "lr", "seed", "steps",
    "diverged", "final_train_loss", "final_test_loss",
)  # fmt: skip
"""The columns of a μTransfer run table: one row per trained model; a run whose loss left the
representable range stopped there (``diverged``, its losses NaN)."""
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
               batch: int, seed: int) -> tuple[bool, float, float]:  # fmt: skip
    """(diverged, train loss, test loss) after ``steps`` steps on minibatches of ``batch``
    drawn with replacement from a generator seeded with ``seed``; (True, NaN, NaN) as soon
    as a loss is not finite."""
    g = torch.Generator().manual_seed(seed)
    n = task.x_train.shape[0]
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, n, (min(batch, n),), generator=g)
        loss = task.loss(model(task.x_train[idx]), task.y_train[idx])
        if not math.isfinite(loss.item()):
            return True, math.nan, math.nan
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        out = [task.loss(model(x), y).item()
               for x, y in ((task.x_train, task.y_train), (task.x_test, task.y_test))]  # fmt: skip
    if not all(math.isfinite(v) for v in out):
        return True, math.nan, math.nan
    return False, out[0], out[1]


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
                        done = _train_one(net, put.optimizer(lr), task, steps, batch, seed)
                        rows.append((p, model, optimizer, width, depth, lr, seed, steps, *done))
                if progress is not None:
                    progress(f"{p} width {width} depth {depth}: {len(lrs) * len(seeds)} runs")
    return pd.DataFrame(rows, columns=list(MUTRANSFER))


@dataclass(frozen=True)
class Experiment:
    """One experiment of the study: a model trained on a task under some parametrizations,
    swept over widths (or depths), each at every learning rate and seed."""

    model: str
    task: str
    parametrizations: tuple[str, ...]
    widths: tuple[int, ...]
    depths: tuple[int, ...]
    steps: int
    batch: int

    @property
    def axis(self) -> str:
        return "depth" if len(self.depths) > 1 else "width"


EXPERIMENTS: dict[str, Experiment] = {
    "mlp": Experiment("mlp", "digits", ("sp", "mup"), (64, 256, 1024), (3,), 100, 128),
    "transformer": Experiment("transformer", "bigram", ("sp", "mup"), (32, 64, 128), (2,), 100, 32),
    "resmlp": Experiment("resmlp", "digits", ("mup", "depth_mup"), (128,), (2, 8, 32), 100, 128),
}  # fmt: skip
"""The study's experiments: TP5's MLP over width, a small transformer over width, and a
residual MLP over depth (μP against depth-μP's 1/√L branches)."""
TASKS: dict[str, Callable[[], Task]] = {"digits": digits_task, "bigram": bigram_task}


def mutransfer_task(config: dict[str, Any], key: list[Any]) -> pd.DataFrame:
    """Run on a worker: one trained model of the study, ``key`` = [experiment,
    parametrization, width, depth, lr, seed]; ``config``: ``optimizer`` and ``steps`` (None:
    the experiment's own)."""
    from initsuite.studies.coord_sources import get_model

    name, p, width, depth, lr, seed = key
    e = EXPERIMENTS[name]
    return train_runs(get_model(e.model).build, [p], [int(width)], [int(depth)], [float(lr)],
                      [int(seed)], TASKS[e.task](), model=e.model, optimizer=config["optimizer"],
                      steps=config["steps"] or e.steps, batch=e.batch,
                      base_width=min(e.widths), base_depth=min(e.depths))  # fmt: skip


def mutransfer_study(
    models: str | Iterable[str] = tuple(EXPERIMENTS),
    *,
    seeds: int = 2,
    lrs: Iterable[float] = DEFAULT_LRS,
    optimizer: str = "adam",
    train_steps: int | None = None,
    executor: Any = None,
    progress: bool | None = None,
) -> Any:
    """Train each experiment of :data:`EXPERIMENTS` named in ``models`` at every learning rate
    in ``lrs`` for seeds 0 … ``seeds`` − 1 (``train_steps``: the steps of every experiment,
    instead of each one's own); a :class:`~initsuite.results.mutransfer.MuTransferResult`
    whose report says where each width's (or depth's) best learning rate lies under each
    parametrization. ``executor``: None (in process) or a :class:`~initsuite.studies.sweep.
    executors.DaskExecutor`, one task per trained model (the table equals the in-process
    one: each run draws from its own seed alone)."""
    import sys
    import time

    from initsuite.core.env import environment
    from initsuite.results import columns as C
    from initsuite.results.mutransfer import MuTransferResult
    from initsuite.studies.coord_sources import get_model

    names = validate.as_tuple(models)
    for name in names:
        validate.choice("model", name, tuple(EXPERIMENTS))
    n_seeds = validate.count("seeds", seeds)
    optimizer = validate.choice("optimizer", optimizer, ("sgd", "adam", "adamw"))
    steps = None if train_steps is None else validate.count("train_steps", train_steps)
    lrs = tuple(lrs)
    show = sys.stderr.isatty() if progress is None else progress
    say = (lambda line: print(line, file=sys.stderr)) if show else None
    started = time.perf_counter()
    frames, config = [], {}
    for name in dict.fromkeys(names):
        e = EXPERIMENTS[name]
        if executor is not None:
            keys = [(name, p, w, d, lr, s) for p in e.parametrizations for d in e.depths
                    for w in e.widths for lr in lrs for s in range(n_seeds)]  # fmt: skip
            plain = {"optimizer": optimizer, "steps": steps}
            frames += executor.map_calls(mutransfer_task, plain, keys)
        else:
            frames.append(train_runs(get_model(e.model).build, e.parametrizations, e.widths,
                                     e.depths, lrs, range(n_seeds), TASKS[e.task](),
                                     model=e.model, optimizer=optimizer, steps=steps or e.steps,
                                     batch=e.batch, progress=say))  # fmt: skip
        config[name] = {"task": e.task, "axis": e.axis, "parametrizations": list(
            e.parametrizations), "widths": list(e.widths), "depths": list(e.depths),
            "steps": steps or e.steps, "batch": e.batch}  # fmt: skip
    runs = C.coerce(pd.concat(frames, ignore_index=True), C.MUTRANSFER)
    meta = {"kind": "mutransfer",
            "config": {"experiments": config, "seeds": n_seeds, "lrs": list(lrs),
                       "optimizer": optimizer, "task_seed": TASK_SEED},
            "environment": environment(["cpu"]),
            "seconds": round(time.perf_counter() - started, 3)}  # fmt: skip
    return MuTransferResult(runs, meta)

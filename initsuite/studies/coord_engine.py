"""The coordinate check's engine: train each width's model a few steps on one fixed batch and
record, per module and step, the size of its output (mup's ``l1``, ``rms``), how far it moved
since step 0 (``delta_rms``) and the loss.

Step ``s`` is the model after ``s`` updates, measured by the forward pass on the fixed batch
that precedes update ``s + 1`` (and one last forward, without a backward, after update
``steps``). ``mup.coord_check.get_coord_data``'s ``t`` is this step + 1 (its ``t`` is the
forward before the ``t``-th update); ``l1`` is its statistic, computed the same way.

The forward hooks are registered once per run and keep, besides the statistics (0-d tensors
read back once per run), only each module's step-0 output on the batch: what ``delta_rms``
needs.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal

import pandas as pd
import torch
from torch import nn

from initsuite.core.errors import InitsuiteError
from initsuite.studies.coord_models import declared_roles
from initsuite.studies.recorder import ROOT

__all__ = ["ENGINE_COLUMNS", "SEEDINGS", "coord_data", "module_roles"]

Seeding = Literal["per_run", "mup"]
SEEDINGS: tuple[str, ...] = ("per_run", "mup")
"""How runs are seeded: ``per_run`` builds and trains each (width, seed) model after
``torch.manual_seed(seed)`` inside ``torch.random.fork_rng`` (its init and any dropout draw
the same whatever else runs, and the caller's global RNG is left as it was); ``mup`` seeds
torch's global RNG once per seed and builds the widths in order, as
``mup.coord_check.get_coord_data`` does."""
_GLOBAL_RNG = threading.Lock()
"""torch's global RNG is one per process, and an ``nn.Module`` draws its own init from it: a
``per_run`` run holds this while it seeds, builds and trains, so that runs on threads (a Dask
worker with several threads) take turns instead of drawing from each other's seed."""
ENGINE_COLUMNS: tuple[str, ...] = (
    "width", "seed", "step", "module", "type", "role", "l1", "rms", "delta_rms", "loss",
)  # fmt: skip

MakeOptimizer = Callable[[nn.Module, int], torch.optim.Optimizer]
"""``make_optimizer(model, seed)``: the run's optimizer (and, e.g., its model re-drawn)."""
Loss = Callable[[Any, torch.Tensor], torch.Tensor]


def _tensors(name: str, output: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """The floating tensors of a module's output, named as mup names them (``:out[i]``)."""
    if isinstance(output, torch.Tensor):
        if output.is_floating_point():
            yield name, output
    elif isinstance(output, (tuple, list)):
        for i, out in enumerate(output):
            yield from _tensors(f"{name}:out[{i}]", out)
    elif isinstance(output, Mapping):
        for key, out in output.items():
            yield from _tensors(f"{name}:out[{key}]", out)


class _Recorder:
    """Forward hooks on every module that record its output's statistics at each step."""

    def __init__(self, model: nn.Module, roles: Mapping[str, str]) -> None:
        self.step = 0
        self.keys: list[tuple[int, str, str, str | None]] = []  # step, module, type, role
        self.l1: list[torch.Tensor] = []
        self.rms: list[torch.Tensor] = []
        self.delta: list[torch.Tensor] = []
        self._ref: dict[tuple[str, int], torch.Tensor] = {}
        self._seen: dict[str, int] = {}
        self._zero: torch.Tensor | None = None
        self._handles = [
            module.register_forward_hook(self._hook(name or ROOT, type(module).__name__,
                                                    module_roles(name, module, roles)))
            for name, module in model.named_modules()
        ]  # fmt: skip

    def next_step(self, step: int) -> None:
        self.step = step
        self._seen.clear()

    def _hook(self, name: str, kind: str, role: str | None) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            with torch.no_grad():
                for key, x in _tensors(name, output):
                    self._record(key, kind, role, x)

        return hook

    def _record(self, key: str, kind: str, role: str | None, x: torch.Tensor) -> None:
        # a module called twice in one pass: its calls are told apart for delta_rms
        call = self._seen.get(key, 0)
        self._seen[key] = call + 1
        root_n = math.sqrt(max(x.numel(), 1))
        self.keys.append((self.step, key, kind, role))
        self.l1.append(torch.abs(x).mean())  # mup's statistic, in its dtype
        # in float64, so that a sum of squares cannot overflow before the values do
        self.rms.append(torch.linalg.vector_norm(x, dtype=torch.float64) / root_n)
        if self.step == 0:
            self._ref[key, call] = x.detach().clone()  # a later in-place op must not change it
            if self._zero is None:
                self._zero = torch.zeros((), dtype=torch.float64, device=x.device)
            self.delta.append(self._zero)
        else:
            ref = self._ref.get((key, call))
            if ref is None or ref.shape != x.shape:
                self.delta.append(torch.full_like(self.rms[-1], math.nan))
            else:
                diff = torch.linalg.vector_norm(x - ref, dtype=torch.float64)
                self.delta.append(diff / root_n)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._ref.clear()


def module_roles(name: str, module: nn.Module, roles: Mapping[str, str]) -> str | None:
    """A module's role: its own ``weight``'s, else its first own parameter's; None for a
    module without parameters of its own (activations, containers, the root)."""
    own = [n for n, _ in module.named_parameters(recurse=False)]
    first = "weight" if "weight" in own else (own[0] if own else None)
    return None if first is None else roles.get(f"{name}.{first}" if name else first)


def _train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: tuple[Any, torch.Tensor],
    loss_fn: Loss,
    steps: int,
    roles: Mapping[str, str],
) -> dict[str, list[Any]]:
    """Train ``model`` ``steps`` steps on ``batch``; the records of steps 0 to ``steps``."""
    rec = _Recorder(model, roles)
    data, target = batch
    losses: list[torch.Tensor] = []
    try:
        for step in range(steps + 1):
            rec.next_step(step)
            if step == steps:  # the model after the last update: measured, not trained
                with torch.no_grad():
                    losses.append(loss_fn(model(data), target).detach())
                break
            loss = loss_fn(model(data), target)
            losses.append(loss.detach())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        rec.remove()
    loss_at = torch.stack(losses).double().tolist()  # one read back per run
    return {
        "step": [k[0] for k in rec.keys],
        "module": [k[1] for k in rec.keys],
        "type": [k[2] for k in rec.keys],
        "role": [k[3] for k in rec.keys],
        "l1": torch.stack(rec.l1).double().tolist() if rec.l1 else [],
        "rms": torch.stack(rec.rms).tolist() if rec.rms else [],
        "delta_rms": torch.stack(rec.delta).tolist() if rec.delta else [],
        "loss": [loss_at[k[0]] for k in rec.keys],
    }


def coord_data(
    models: Mapping[int, Callable[[], nn.Module]],
    make_optimizer: MakeOptimizer,
    batch: tuple[Any, torch.Tensor],
    loss: Loss,
    steps: int,
    seeds: Iterable[int],
    *,
    seeding: Seeding = "per_run",
    roles: Callable[[nn.Module], Mapping[str, str]] = declared_roles,
) -> pd.DataFrame:
    """The coordinate statistics of each width's model trained ``steps`` steps on ``batch``.

    Args:
        models: width → a function building the model at that width (built once per seed,
            on the CPU, then moved to the batch's device).
        make_optimizer: ``make_optimizer(model, seed)`` → its optimizer.
        batch: ``(inputs, targets)``, the one batch every step trains on.
        loss: ``loss(model(inputs), targets)`` → a scalar.
        steps: optimizer steps (≥ 1); steps 0 to ``steps`` are recorded.
        seeds: the seeds, each run once per width.
        seeding: ``per_run`` or ``mup`` (:data:`SEEDINGS`).
        roles: the model → {parameter name: role}, for the ``role`` column.

    Returns:
        One row per (width, seed, step, module output): :data:`ENGINE_COLUMNS`.
    """
    if seeding not in SEEDINGS:
        raise InitsuiteError(f"unknown seeding {seeding!r} (choose from {', '.join(SEEDINGS)})")
    device = batch[1].device
    columns: dict[str, list[Any]] = {c: [] for c in ENGINE_COLUMNS}
    for seed in seeds:
        if seeding == "mup":
            torch.manual_seed(seed)
        for width, build in models.items():
            # per_run: the run's every draw (its init, any dropout) from its own seed
            forked = seeding == "per_run"
            with (_GLOBAL_RNG if forked else contextlib.nullcontext()),\
                    torch.random.fork_rng(devices=[device] if device.type == "cuda" else [],
                                          enabled=forked):  # fmt: skip
                if forked:
                    torch.manual_seed(seed)
                model = build().to(device).train()
                optimizer = make_optimizer(model, seed)
                rows = _train(model, optimizer, batch, loss, steps, roles(model))
                del model, optimizer  # before the next width's model is built
            n = len(rows["step"])
            columns["width"] += [width] * n
            columns["seed"] += [seed] * n
            for key, values in rows.items():
                columns[key] += values
    return pd.DataFrame(columns, columns=list(ENGINE_COLUMNS))

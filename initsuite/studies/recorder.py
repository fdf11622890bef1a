"""The probe's records: a forward hook per probed module, recording each call's output (and,
in a backward probe, the gradient at it and the module's weight norms) as float64 statistics
that stay on the device until the pass ends (:func:`~initsuite.engine.stats.tensor_stats`)."""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from initsuite.engine.forward import first_float
from initsuite.engine.stats import finish_stats, read_back, tensor_norm, tensor_stats

__all__ = ["ROOT", "Call", "Recorder", "probed_modules"]

ROOT = "(root)"
"""The ``module`` name of the model itself (torch names it ``""``)."""


@dataclass
class Call:
    """One returned call of a probed module; statistics stay tensors until the end."""

    module: str
    type: str
    shape: str | None = None
    dtype: str | None = None
    numel: int | None = None
    tiny: float = math.nan
    stats: Tensor | None = None  # what tensor_stats recorded of the output
    grad: Tensor | None = None  # the same of dLoss/d(output)
    weight: Tensor | None = None  # the module's own ``weight`` parameter
    norms: Tensor | None = None  # [‖weight‖, ‖dLoss/dweight‖]
    # indices of the earlier calls whose output tensors this call took as inputs (the chain
    # a zero branch is followed along: initsuite.studies.zero_branch)
    sources: tuple[int, ...] = ()


class Recorder:
    """The forward hooks' shared state: calls in order of return, open during the forward
    pass only (a recomputation in backward, e.g. activation checkpointing, adds no rows)."""

    def __init__(self, backward: bool, stats: str = "exact") -> None:
        self.calls: list[Call] = []
        self.open = True
        self.backward = backward
        self.how = stats  # tensor_stats' stats=: exact or fast
        self._buffers: dict[torch.device, Tensor] = {}
        self._seen: dict[int, tuple[weakref.ref[Tensor], int, Tensor]] = {}
        self._made: dict[int, tuple[weakref.ref[Tensor], int]] = {}  # id(output) → its call
        # ‖W‖ and ‖dLoss/dW‖ by id(W), each taken as W is used and as its gradient arrives,
        # while the layer's own pass has left them in cache (read cold after the pass, the
        # norms of ResNet-50's 25.6 M weights and gradients cost 0.1x of its pass)
        self._norms: dict[int, Tensor] = {}
        self._grad_norms: dict[int, Tensor] = {}
        self.weight_hooks: list[RemovableHandle] = []  # removed by the probe after the pass

    def hook(self, name: str) -> Callable[[nn.Module, Any, Any], None]:
        def forward_hook(module: nn.Module, args: Any, output: Any) -> None:
            if self.open:
                self.record(name, module, output, args)

        return forward_hook

    def record(self, name: str, module: nn.Module, output: Any, args: Any = ()) -> None:
        call = Call(name, type(module).__name__, sources=self._sources(args))
        self.calls.append(call)
        weight = module._parameters.get("weight")
        call.weight = weight if isinstance(weight, Tensor) else None
        if call.weight is not None and id(call.weight) not in self._norms:
            self._weigh_now(call.weight)
        t = first_float(output)
        if t is None:
            return
        call.shape = ",".join(str(n) for n in t.shape)
        call.dtype = str(t.dtype).removeprefix("torch.")
        call.numel = t.numel()
        call.tiny = torch.finfo(t.dtype).tiny
        self._made[id(t)] = (weakref.ref(t), len(self.calls) - 1)
        # now, before a later in-place op (ReLU(inplace=True)) overwrites the tensor
        call.stats = self.stats(t)
        if self.backward and t.requires_grad:
            t.register_hook(functools.partial(_grad_hook, self, call))

    def _sources(self, args: Any) -> tuple[int, ...]:
        """The calls whose output tensors are among ``args`` (the last call that returned
        each, as long as the tensor lives: an id is reused only after its tensor is gone)."""
        out = []
        for a in args if isinstance(args, tuple) else ():
            made = self._made.get(id(a)) if isinstance(a, Tensor) else None
            if made is not None and made[0]() is a:
                out.append(made[1])
        return tuple(out)

    def stats(self, t: Tensor) -> Tensor:
        """:func:`~initsuite.engine.stats.tensor_stats` of ``t``, taken once per tensor and
        version: a module that returns
        its input (Identity, Dropout in eval mode) and the gradient of a tensor two calls
        returned reuse it."""
        if t.is_inference():  # no version counter to tell a later in-place change by
            return tensor_stats(t, self.buffer, stats=self.how)
        seen = self._seen.get(id(t))
        if seen is not None and seen[0]() is t and seen[1] == t._version:
            return seen[2]
        out = tensor_stats(t, self.buffer, stats=self.how)
        self._seen[id(t)] = (weakref.ref(t), t._version, out)
        return out

    def difference(self, y: Tensor, x: Tensor) -> Tensor:
        """:func:`~initsuite.engine.stats.tensor_stats` of ``y − x`` (same shape), the
        difference in float64."""
        return tensor_stats(y, self.buffer, x, stats=self.how)

    @staticmethod
    def finish(values: list[float], n: int) -> tuple[float, float, float]:
        """(std, mean, non-finite count) of what :meth:`stats` recorded
        (:func:`~initsuite.engine.stats.finish_stats`)."""
        return finish_stats(values, n)

    @staticmethod
    def read(vectors: list[Tensor]) -> list[list[float]]:
        """:func:`~initsuite.engine.stats.read_back`: one transfer per device."""
        return read_back(vectors)

    def buffer(self, device: torch.device, size: int) -> Tensor:
        """A float64 block of ``size`` elements on ``device``, reused from call to call."""
        buf = self._buffers.get(device)
        if buf is None or buf.numel() < size:
            buf = self._buffers[device] = torch.empty(size, dtype=torch.float64, device=device)
        return buf[:size]

    def _weigh_now(self, w: Tensor) -> None:
        """‖W‖ now, and ‖dLoss/dW‖ by a hook on W when its gradient arrives (backward)."""
        self._norms[id(w)] = tensor_norm(w, self.buffer, stats=self.how)
        if self.backward and w.requires_grad:
            hook = functools.partial(_weight_grad_hook, self, id(w))
            self.weight_hooks.append(w.register_hook(hook))

    def weigh(self, grads: Mapping[int, Tensor]) -> None:
        """[‖W‖, ‖dLoss/dW‖] of each call's weight W, on its device, each weight once;
        ``grads`` maps id(W) to its gradient (a weight without one gets NaN). The norms were
        taken during the pass where its hooks saw them, else now."""
        done: dict[int, Tensor] = {}
        for call in self.calls:
            w = call.weight
            if w is None:
                continue
            if id(w) not in done:
                g = grads.get(id(w))
                nan = torch.full((), math.nan, dtype=torch.float64, device=w.device)
                gnorm = self._grad_norms.get(id(w))
                if gnorm is None:
                    gnorm = tensor_norm(g, self.buffer, stats=self.how) if g is not None else nan
                wnorm = self._norms.get(id(w))
                if wnorm is None:
                    wnorm = tensor_norm(w, self.buffer, stats=self.how)
                done[id(w)] = torch.stack([wnorm, gnorm])
            call.norms = done[id(w)]


def _grad_hook(rec: Recorder, call: Call, grad: Tensor) -> None:
    call.grad = rec.stats(grad)


def _weight_grad_hook(rec: Recorder, key: int, grad: Tensor) -> None:
    # a weight used twice gets one call, with its whole gradient (the sum of both uses)
    rec._grad_norms[key] = tensor_norm(grad, rec.buffer, stats=rec.how)


def probed_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of what :func:`probe` hooks: leaf modules and modules with parameters
    of their own, each module once; the model itself is named :data:`ROOT`."""
    return [
        (name or ROOT, m)
        for name, m in model.named_modules()
        if next(m.children(), None) is None or next(m.parameters(recurse=False), None) is not None
    ]

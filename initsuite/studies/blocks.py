r"""What each residual block of a probed model does to the residual stream.

:class:`BlockRecorder` records, during :func:`initsuite.probe`, the residual stream's std
after each known block (:data:`initsuite.engine.roles.KNOWN_BLOCKS`), the std of what the
block added and its ratio to the stream's std before the block, and the gradient at the
block's output (the ``blocks`` table).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from initsuite.engine.roles import BlockKind, find_blocks
from initsuite.engine.stats import ratio
from initsuite.results import columns as C

__all__ = ["BlockRecorder", "Measure"]


# --- recording -------------------------------------------------------------------------------


def _first_tensor(value: Any) -> Tensor | None:
    """A block's output tensor: itself, or the first floating tensor of a tuple or list (a
    Hugging Face layer's ``(hidden_states, attentions, ...)``)."""
    if isinstance(value, Tensor):
        return value if value.is_floating_point() else None
    if isinstance(value, (tuple, list)):
        return next((v for v in value if isinstance(v, Tensor) and v.is_floating_point()), None)
    return None


class Measure(Protocol):
    """What :class:`BlockRecorder` measures tensors with: the probe's recorder
    (:class:`initsuite.studies.recorder.Recorder`), whose statistics of a tensor are taken
    once, so that a block's output already measured as a module's output, and its input
    measured as the block before's output, cost nothing more."""

    def stats(self, t: Tensor) -> Tensor:
        """A float64 vector on ``t``'s device that :meth:`finish` reads."""
        ...

    def difference(self, y: Tensor, x: Tensor) -> Tensor:
        """The same of ``y − x``, the difference exact (float64)."""
        ...

    def finish(self, values: list[float], n: int) -> tuple[float, float, float]:
        """(std, mean, non-finite count) of ``n`` values from what was recorded."""
        ...

    def read(self, vectors: list[Tensor]) -> list[list[float]]:
        """The values of what was recorded, one transfer per device."""
        ...


@dataclass
class _BlockCall:
    module: str
    type: str
    numel: int
    stream: Tensor
    update: Tensor
    before: Tensor
    grad: Tensor | None = None


def _set_grad(measure: Measure, call: _BlockCall, grad: Tensor) -> None:
    call.grad = measure.stats(grad)


class BlockRecorder:
    """Forward hooks on the known blocks of a model: per block call, the std of its output
    (the residual stream after it), of output − input (what it added) and their ratio to
    the input's std, and with ``backward`` the std of the gradient at its output; statistics
    stay on the device until :meth:`frame` reads them, once.

    Attach with :meth:`attach` (the caller removes the handles) and set ``open`` to False
    when the forward pass ends (a recomputation in backward adds no rows). A call whose
    output and input differ in shape (a downsampling block) or hold no floating tensor
    records nothing."""

    def __init__(self, model: nn.Module, backward: bool) -> None:
        self.blocks = find_blocks(model)
        self.backward = backward
        self.open = True
        self.calls: list[_BlockCall] = []
        self.measure: Measure | None = None

    def attach(self, measure: Measure) -> list[RemovableHandle]:
        """Hooks on every known block, measuring with ``measure``."""
        self.measure = measure
        return [m.register_forward_hook(self._hook(name, kind), with_kwargs=True)
                for name, m, kind in self.blocks]  # fmt: skip

    def _hook(self, name: str, kind: BlockKind) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
                 output: Any) -> None:  # fmt: skip
            if self.open:
                x = args[0] if args else kwargs.get(kind.stream)
                self.record(name or "(root)", module, x, _first_tensor(output))

        return hook

    def record(self, name: str, module: nn.Module, x: Any, y: Tensor | None) -> None:
        if not (isinstance(x, Tensor) and x.is_floating_point() and y is not None):
            return
        if x.shape != y.shape or self.measure is None:
            return
        m = self.measure
        call = _BlockCall(name, type(module).__name__, y.numel(), m.stats(y),
                          m.difference(y, x), m.stats(x))  # fmt: skip
        self.calls.append(call)
        if self.backward and y.requires_grad:
            y.register_hook(functools.partial(_set_grad, m, call))

    def frame(self, model: str, scheme: str, seed: int, precision: str = "float32"
              ) -> pd.DataFrame:  # fmt: skip
        """The ``blocks`` table (:data:`~initsuite.results.columns.PROBE_BLOCKS`) of the
        calls recorded, in order of return."""
        m = self.measure
        if m is None or not self.calls:
            return C.frame(C.PROBE_BLOCKS, [])
        pending = [t for c in self.calls for t in (c.stream, c.update, c.before)]
        values = m.read(pending + [c.grad for c in self.calls if c.grad is not None])
        grads = iter(values[len(pending) :])
        rows = []
        for k, c in enumerate(self.calls):
            stream, update, before = (m.finish(values[i], c.numel)[0]
                                      for i in range(3 * k, 3 * k + 3))  # fmt: skip
            grad = m.finish(next(grads), c.numel)[0] if c.grad is not None else math.nan
            rows.append({
                "model": model, "scheme": scheme, "seed": seed, "autocast": precision,
                "block": k + 1, "module": c.module,
                "type": c.type, "stream_std": stream, "update_std": update,
                "update_ratio": ratio(update, before), "stream_grad_std": grad,
            })  # fmt: skip
        return C.frame(C.PROBE_BLOCKS, rows)

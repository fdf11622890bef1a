"""What running any ``nn.Module`` on a batch needs: the batch as call arguments, the tensors
in and out of a call, and the model's buffers put back after a pass (a train-mode forward
updates BatchNorm's running statistics)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from initsuite.core.errors import InitsuiteTypeError

__all__ = ["Inputs", "first_float", "restored_buffers", "split_inputs", "tensors"]

Inputs = Tensor | Sequence[Any] | Mapping[str, Any]
"""A batch: a tensor (``model(x)``), a tuple or list (``model(*inputs)``) or a dict
(``model(**inputs)``)."""


def split_inputs(inputs: Inputs) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """(args, kwargs) of a call on ``inputs``; any other type raises."""
    if isinstance(inputs, Tensor):
        return (inputs,), {}
    if isinstance(inputs, Mapping):
        return (), dict(inputs)
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), {}
    raise InitsuiteTypeError(
        f"inputs must be a tensor, a tuple of positional arguments or a dict of keyword "
        f"arguments, got {type(inputs).__name__}"
    )


def first_float(value: Any) -> Tensor | None:
    """The first floating-point tensor in ``value``, depth-first through tuples, lists and
    dicts (a Hugging Face ``ModelOutput`` is a dict of its non-None fields, in order)."""
    if isinstance(value, Tensor):
        return value if value.is_floating_point() else None
    items: Iterable[Any]
    if isinstance(value, Mapping):
        items = value.values()
    elif isinstance(value, (tuple, list)):
        items = value
    else:
        return None
    for item in items:
        found = first_float(item)
        if found is not None:
            return found
    return None


def tensors(value: Any) -> Iterator[Tensor]:
    """Every tensor in ``value``, depth-first through tuples, lists and dicts."""
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from tensors(v)
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from tensors(v)


@contextlib.contextmanager
def restored_buffers(model: nn.Module) -> Iterator[None]:
    """Put every buffer back (object and values) on exit: a train-mode forward updates
    BatchNorm's running statistics and its batch count."""
    saved = []
    for m in model.modules():
        for name, b in m._buffers.items():
            if b is not None:
                saved.append((m, name, b, b.detach().clone()))
    try:
        yield
    finally:
        with torch.no_grad():
            for m, name, b, value in saved:
                m._buffers[name] = b
                b.copy_(value)

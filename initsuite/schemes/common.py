"""What the scheme modules share: fans and gains as torch computes them, shared-draw helpers
and parameter checks."""

from __future__ import annotations

import math
import warnings
from typing import Literal

import torch
from torch import Tensor

from initsuite import activations as _activations
from initsuite.core.spec import AUTO
from initsuite.schemes.registry import TORCH_LINEAR_NAMES, SharedDraw

__all__ = [
    "Gain", "Mode", "at_least", "below", "calculate_gain", "check_gain", "fan", "fans",
    "gain_value", "normal_shared", "skip_empty", "uniform_shared",
]  # fmt: skip

Mode = Literal["fan_in", "fan_out"]
Gain = float | Literal["auto"]


def fans(shape: tuple[int, ...] | torch.Size) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape`` as torch computes them.

    ``shape[1]`` inputs and ``shape[0]`` outputs, each times the receptive field
    ``prod(shape[2:])`` (the convention of ``x @ W.T`` in Linear and of Conv kernels).
    """
    if len(shape) < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def fan(shape: tuple[int, ...] | torch.Size, mode: str) -> int:
    """fan_in or fan_out (``mode``) of a weight of ``shape``, as torch computes it."""
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of ['fan_in', 'fan_out']")
    fan_in, fan_out = fans(shape)
    return fan_in if mode == "fan_in" else fan_out


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """torch's ``calculate_gain`` where torch knows the name, else the activation's gain.

    ``nonlinearity`` may be any registered activation spec (``"gelu"``), whose gain is then
    the computed variance-preserving one.
    """
    if nonlinearity in TORCH_LINEAR_NAMES or nonlinearity in (
        "sigmoid", "tanh", "relu", "leaky_relu", "selu",
    ):  # fmt: skip
        return float(torch.nn.init.calculate_gain(nonlinearity, param))  # type: ignore[arg-type]
    return _activations.get(nonlinearity).gain


def gain_value(gain: Gain) -> float:
    """``gain`` as a float; ``auto`` must have been resolved (:meth:`Scheme.resolve`) first."""
    if gain == AUTO:
        raise ValueError("gain=auto must be resolved against an activation first")
    return float(gain)


def skip_empty(tensor: Tensor) -> bool:
    """True, with torch's warning, for a zero-element tensor, which kaiming_* leave alone."""
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return True
    return False


def normal_shared(std: float) -> SharedDraw:
    """N(0, std²) as std · N(0, 1)."""
    return SharedDraw("normal", std)


def uniform_shared(std: float) -> SharedDraw:
    """The zero-mean uniform of this std, U(±√3·std), as √3·std · U(-1, 1)."""
    return SharedDraw("uniform", math.sqrt(3.0) * std)


# -- parameter checks (run by Scheme.resolve before any draw; see register's ``check``) ----


def at_least(name: str, value: float, low: float = 0.0) -> None:
    """Raise ValueError unless ``value >= low`` (NaN fails)."""
    if not value >= low:
        raise ValueError(f"{name} must be >= {low:g}, got {value!r}")


def below(a: float, b: float) -> None:
    """Raise ValueError unless a < b and b - a is finite (torch refuses a wider range)."""
    if not a < b:
        raise ValueError(f"needs a < b, got a={a!r}, b={b!r}")
    if not math.isfinite(b - a):
        raise ValueError(f"b - a must be finite, got a={a!r}, b={b!r}")


def check_gain(shape: tuple[int, ...] | None, gain: float) -> None:
    """A ``check`` for schemes whose only parameter is ``gain``: it must be >= 0 (a negative
    gain makes a negative std, which torch refuses, or an empty U(-a, a))."""
    at_least("gain", gain)

"""Architectures a sweep can run, as specs: ``mlp``, ``conv:kernel=3,image=8``,
``resmlp:branch=2,scale=1``.

* ``mlp``: the tutorial's net, ``depth`` × Linear(width, width) + activation (optional bias).
* ``conv``: ``depth`` × Conv2d(width, width, kernel, padding=kernel // 2) + activation on a
  (batch, width, image, image) N(0, 1) input; width is the channel count, fans are the
  kernel's receptive field as torch computes them (fan_in = width · kernel²). Statistics are
  over every value of a layer's output (batch × channels × pixels).
* ``resmlp``: ``depth`` residual blocks h ← h + α · f(h) with a pre-activation branch
  f(h) = W_m φ(⋯ φ(W_1 φ(h))) of ``branch`` = m Linear(width, width) layers; statistics are
  those of h after each block (the identity path is never squashed). α is ``scale``: ``1``,
  ``inv_sqrt_depth`` (1/√L for L blocks) or ``zero`` (a learned scalar initialised to 0, as
  in ReZero/SkipInit). Schemes that take a layer context (fixup, skipinit, rezero, gpt2) see
  each weight's role: ``branch``, ``branch_out`` (the residual projection) or
  ``residual_scale`` (α itself), and the network's count of residual projections (one per
  block: N = L, GPT-2's 1/√N).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from initsuite.core.errors import InitsuiteError, unknown
from initsuite.core.spec import parse_spec, plain_int

__all__ = ["ARCH_NAMES", "RESIDUAL_SCALES", "Arch", "parse_arch"]

ARCH_NAMES: tuple[str, ...] = ("mlp", "conv", "resmlp")
RESIDUAL_SCALES: tuple[str, ...] = ("1", "inv_sqrt_depth", "zero")
_DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {},
    "conv": {"kernel": 3, "image": 8},
    "resmlp": {"branch": 2, "scale": "1"},
}


@dataclass(frozen=True)
class Arch:
    """A parsed architecture spec with every parameter set (defaults filled in)."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def spec(self) -> str:
        """Canonical spec with every parameter, e.g. ``conv:image=8,kernel=3``."""
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in self.params)

    def get(self, key: str) -> Any:
        return dict(self.params)[key]

    @property
    def weight_rank(self) -> int:
        return 4 if self.name == "conv" else 2

    def fan(self, width: int) -> int:
        """fan_in = fan_out of one weight of a width-wide layer."""
        return width * self.get("kernel") ** 2 if self.name == "conv" else width

    def alpha(self, blocks: int) -> float:
        """The residual multiplier α for a net of ``blocks`` blocks (resmlp)."""
        scale = self.get("scale")
        return {"1": 1.0, "inv_sqrt_depth": 1.0 / math.sqrt(blocks), "zero": 0.0}[scale]


def parse_arch(spec: str) -> Arch:
    """Parse and validate an architecture spec; one clear error for bad input."""
    if not isinstance(spec, str):
        raise InitsuiteError(f"arch must be a spec string, got {spec!r}")
    name, raw = parse_spec(spec, kind="arch")
    if name not in _DEFAULTS:
        raise InitsuiteError(unknown("arch", name, ARCH_NAMES))
    params = dict(_DEFAULTS[name])
    for key, value in raw.items():
        if key not in params:
            valid = ", ".join(params) or "none"
            raise InitsuiteError(f"arch {name!r} has no parameter {key!r} (parameters: {valid})")
        params[key] = _convert(name, key, value)
    return Arch(name, tuple(sorted(params.items())))


def _convert(name: str, key: str, value: Any) -> Any:
    if key == "scale":
        text = str(value).strip().lower().replace("1/sqrt(l)", "inv_sqrt_depth")
        if text in ("1.0", "one"):
            text = "1"
        if text not in RESIDUAL_SCALES:
            raise InitsuiteError(f"arch {name!r}: " + unknown("scale", value, RESIDUAL_SCALES))
        return text
    number = plain_int(str(value))  # ASCII digits: "1_0" and "３" are refused, not misread
    if number is None:
        raise InitsuiteError(
            f"arch {name!r}: {key} must be a whole number in ASCII digits, got {value!r}"
        )
    if number < 1 or (key == "kernel" and number % 2 == 0):
        what = "an odd number >= 1 (same padding)" if key == "kernel" else "a number >= 1"
        raise InitsuiteError(f"arch {name!r}: {key} must be {what}, got {number}")
    return number

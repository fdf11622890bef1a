"""Dtype and device names: parsed once, checked against this machine before any compute."""

from __future__ import annotations

import re

import torch

from initsuite.core.errors import InitsuiteError, unknown

__all__ = ["DTYPES", "check_device", "parse_dtype"]

DTYPES: dict[str, torch.dtype] = {
    "float64": torch.float64,
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
_DTYPE_ALIASES = {
    "double": "float64", "fp64": "float64", "f64": "float64",
    "float": "float32", "fp32": "float32", "f32": "float32",
    "bf16": "bfloat16",
    "half": "float16", "fp16": "float16", "f16": "float16",
}  # fmt: skip


def parse_dtype(name: str) -> str:
    """The canonical dtype name (``"fp16"`` → ``"float16"``)."""
    key = str(name).strip().lower().removeprefix("torch.")
    key = _DTYPE_ALIASES.get(key, key)
    if key not in DTYPES:
        raise InitsuiteError(unknown("dtype", name, DTYPES))
    return key


def check_device(name: str) -> str:
    """The canonical device string; raises if unknown or not available on this machine."""
    text = str(name).strip().lower()
    if not re.fullmatch(r"cpu|mps|cuda(:[0-9]+)?", text):  # not \d: "cuda:１" is no index
        raise InitsuiteError(unknown("device", name, ["cpu", "cuda", "cuda:N", "mps"]))
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InitsuiteError(
                f"device {text!r} is not available: this torch build sees no CUDA device "
                "(torch.cuda.is_available() is False); use 'cpu'"
            )
        count = torch.cuda.device_count()
        index = int(text.split(":")[1]) if ":" in text else 0
        if index >= count:
            have = ", ".join(f"cuda:{i}" for i in range(count))
            raise InitsuiteError(f"device {text!r} is not available; this machine has {have}")
    if text == "mps" and not torch.backends.mps.is_available():
        raise InitsuiteError("device 'mps' is not available on this machine; use 'cpu'")
    return text

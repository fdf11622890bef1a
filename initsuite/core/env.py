"""Where and with what a run was made: the metadata sidecar of every saved table."""

from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

__all__ = ["environment"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def _git_commit() -> str | None:
    """The commit of the checkout initsuite runs from (``-dirty`` with uncommitted changes),
    or None outside git. Read once per process: the running code is what was imported, so
    the commit read then describes it (and every sweep no longer pays two git calls)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if out.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, timeout=5,
        )  # fmt: skip
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment(devices: Iterable[str] = ("cpu",)) -> dict[str, Any]:
    """Versions, machine, threads, GPUs in use, git commit and UTC time, as JSON-able values."""
    from initsuite.core.version import __version__

    gpus = []
    for d in devices:
        dev = torch.device(d)
        if dev.type == "cuda":
            idx = dev.index if dev.index is not None else torch.cuda.current_device()
            gpus.append({"device": str(d), "name": torch.cuda.get_device_name(idx)})
    return {
        "initsuite": __version__,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpus": gpus,
        "git_commit": _git_commit(),
        "utc_time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": list(sys.argv),
    }

"""``KernelShapingResult``: the kernel-shaping reproduction's training curves and runs. Never
imports torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

from initsuite.results import columns as C
from initsuite.results.base import Result, Table

__all__ = ["KernelShapingResult"]


@dataclass
class KernelShapingResult(Result):
    """What ``initsuite.reproduce("kernel-shaping")`` returns.

    Attributes:
        curves: one row per net, depth, seed and step
            (:data:`initsuite.results.columns.KSHAPING_CURVES`; stored as ``curves.parquet``):
            the minibatch loss of every step, the full train and test loss and accuracy at
            the evaluated steps.
        runs: one row per net, depth and seed (:data:`initsuite.results.columns.KSHAPING_RUNS`;
            ``runs.parquet``): its activation (constants solved), init, steps to the loss
            threshold and final losses.
        meta: configuration (nets, depths, width, seeds, the optimiser) and environment.
    """

    kind: ClassVar[str] = "kernel_shaping"
    kind_required: ClassVar[bool] = True
    tables: ClassVar[tuple[Table, ...]] = (
        Table("curves", C.KSHAPING_CURVES, (*C.KSHAPING_KEYS, "step")),
        Table("runs", C.KSHAPING_RUNS, C.KSHAPING_KEYS),
    )

    curves: pd.DataFrame
    runs: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

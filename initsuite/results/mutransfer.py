"""``MuTransferResult``: the μTransfer reproduction's trained runs and its metadata. Never
imports torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

from initsuite.results import columns as C
from initsuite.results.base import Result, Table

__all__ = ["MuTransferResult"]


@dataclass
class MuTransferResult(Result):
    """What ``initsuite.reproduce("mutransfer")`` returns.

    Attributes:
        runs: one row per parametrization, model, width, depth, learning rate and seed
            (:data:`initsuite.results.columns.MUTRANSFER`; stored as ``runs.parquet``): its
            final training and test loss, or ``diverged``.
        meta: configuration (each experiment's model, axis, grid and task) and environment.
    """

    kind: ClassVar[str] = "mutransfer"
    kind_required: ClassVar[bool] = True
    tables: ClassVar[tuple[Table, ...]] = (Table("runs", C.MUTRANSFER, C.MUTRANSFER_KEYS),)

    runs: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

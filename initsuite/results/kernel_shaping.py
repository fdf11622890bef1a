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
        cmap: the vanilla nets' c-maps at init (:data:`initsuite.results.columns.CMAP`;
            ``cmap.parquet``, as :class:`~initsuite.results.cmap.CMapResult`'s): the output
            cosine of input pairs measured over the same seeds beside the composed map's.
            Empty (and not written) when the study skipped it.
        meta: configuration (nets, depths, width, seeds, the optimiser; ``config["cmap"]``
            the c-map's grid), environment and (``shaping``) the c-map's solved constants.
    """

    kind: ClassVar[str] = "kernel_shaping"
    kind_required: ClassVar[bool] = True
    tables: ClassVar[tuple[Table, ...]] = (
        Table("curves", C.KSHAPING_CURVES, (*C.KSHAPING_KEYS, "step")),
        Table("runs", C.KSHAPING_RUNS, C.KSHAPING_KEYS),
        Table("cmap", C.CMAP, C.CMAP_KEYS, optional=True, omit_empty=True),
    )

    curves: pd.DataFrame
    runs: pd.DataFrame
    cmap: pd.DataFrame = field(default_factory=lambda: C.frame(C.CMAP, []))
    meta: dict[str, Any] = field(default_factory=dict)

"""``TutorialResult``: the tutorial's claims re-measured, and its nets layer by layer.

Never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

from initsuite.results import columns as C
from initsuite.results.base import Result, Table

__all__ = ["TutorialResult"]


@dataclass
class TutorialResult(Result):
    """What :func:`initsuite.reproduce` returns.

    Attributes:
        claims: one row per claim of the tutorial (:data:`initsuite.results.columns.TUTORIAL`;
            stored as ``tutorial.parquet``): expected and measured values, the tolerance and
            whether they agree.
        layers: std and mean per claim, seed and layer
            (:data:`~initsuite.results.columns.TUTORIAL_LAYERS`).
        meta: configuration and environment.
    """

    kind: ClassVar[str] = "tutorial"
    tables: ClassVar[tuple[Table, ...]] = (
        Table("tutorial", C.TUTORIAL, ("experiment",), attr="claims"),
        Table("layers", C.TUTORIAL_LAYERS, ("experiment", "seed", "layer")),
    )

    claims: pd.DataFrame
    layers: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

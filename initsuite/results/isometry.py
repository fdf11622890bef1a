"""``IsometryResult``: the Jacobian spectra of the isometry study and their metadata.

Written by ``initsuite reproduce isometry`` (:func:`initsuite.studies.isometry.isometry_study`)
as ``spectra.parquet`` beside ``meta.json`` (kind ``"isometry"``). Never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

from initsuite.results import columns as C
from initsuite.results.base import Result, Table

__all__ = ["KIND", "IsometryResult"]

KIND = "isometry"


@dataclass
class IsometryResult(Result):
    """What the isometry study returns.

    Attributes:
        spectra: one row per singular value of each Jacobian
            (:data:`~initsuite.results.columns.SPECTRA`).
        meta: the study's configuration and environment (``kind`` is ``"isometry"``).
    """

    kind: ClassVar[str] = KIND
    tables: ClassVar[tuple[Table, ...]] = (Table("spectra", C.SPECTRA, C.SPECTRA_KEYS),)
    kind_required: ClassVar[bool] = True

    spectra: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

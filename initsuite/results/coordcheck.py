"""``CoordCheckResult``: the coordinate check's statistics per module and step, and its
metadata. Never imports torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

from initsuite.results import columns as C
from initsuite.results.base import Result, Table

__all__ = ["CoordCheckResult"]


@dataclass
class CoordCheckResult(Result):
    """What :func:`initsuite.coord_check` returns.

    Attributes:
        coords: one row per parametrization, width, depth, seed, step and module output
            (:data:`initsuite.results.columns.COORDS`; stored as ``coords.parquet``): the
            output's ``l1`` (mup's statistic), ``rms`` and ``delta_rms`` (its change since step
            0), and the loss.
        meta: configuration and environment.

    Example:
        >>> res = initsuite.coord_check("mlp", ["sp", "mup"], widths=[64, 256])  # doctest: +SKIP
        >>> res.save("runs/coords")  # doctest: +SKIP
        >>> initsuite.CoordCheckResult.load("runs/coords").coords  # doctest: +SKIP
    """

    kind: ClassVar[str] = "coordcheck"
    kind_required: ClassVar[bool] = True
    tables: ClassVar[tuple[Table, ...]] = (Table("coords", C.COORDS, C.COORDS_KEYS),)

    coords: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

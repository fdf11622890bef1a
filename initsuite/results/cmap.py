"""``CMapResult``: the network c-maps of the c-map study and their metadata.

Written by :func:`initsuite.studies.cmap.cmap_study` (``save(DIR)``) as ``cmap.parquet``
beside ``meta.json`` (kind ``"cmap"``); ``meta["shaping"]`` holds the solved constants of its
kernel-shaped activations (``dks:``, ``tat:``) at each depth. Never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

from initsuite.results import columns as C
from initsuite.results.base import Result, Table

__all__ = ["KIND", "CMapResult"]

KIND = "cmap"


@dataclass
class CMapResult(Result):
    """What the c-map study returns.

    Attributes:
        cmap: one row per activation, scheme, depth, width, seed and input cosine: the
            measured output cosine and q beside the composed maps' (:data:`~initsuite.results.
            columns.CMAP`).
        meta: the study's configuration, environment and solved constants (``kind`` is
            ``"cmap"``).
    """

    kind: ClassVar[str] = KIND
    tables: ClassVar[tuple[Table, ...]] = (Table("cmap", C.CMAP, C.CMAP_KEYS),)
    kind_required: ClassVar[bool] = True

    cmap: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

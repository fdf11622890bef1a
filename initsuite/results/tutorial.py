"""``TutorialResult``: the tutorial's claims re-measured, and its nets layer by layer.

Never imports torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from initsuite.results import columns as C
from initsuite.results import store
from initsuite.results.loading import read_tables

__all__ = ["TutorialResult"]

_SCHEMA = {
    "tutorial": (C.TUTORIAL, ("experiment",)),
    "layers": (C.TUTORIAL_LAYERS, ("experiment", "seed", "layer")),
}


@dataclass
class TutorialResult:
    """What :func:`initsuite.reproduce` returns.

    Attributes:
        claims: one row per claim of the tutorial (:data:`initsuite.results.columns.TUTORIAL`;
            stored as ``tutorial.parquet``): expected and measured values, the tolerance and
            whether they agree.
        layers: std and mean per claim, seed and layer
            (:data:`~initsuite.results.columns.TUTORIAL_LAYERS`).
        meta: configuration and environment.
    """

    claims: pd.DataFrame
    layers: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, out_dir: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write tutorial.parquet, layers.parquet and meta.json into ``out_dir`` atomically."""
        return store.write(out_dir, {"tutorial": self.claims, "layers": self.layers}, self.meta,
                           overwrite=overwrite)  # fmt: skip

    @classmethod
    def load(cls, in_dir: str | os.PathLike[str]) -> TutorialResult:
        """Read a directory written by :meth:`save`, each table checked against its columns.

        Raises:
            InitsuiteTypeError: ``in_dir`` is not a path.
            InitsuiteError: it is not a readable tutorial reproduction directory.
        """
        tables, meta = read_tables(in_dir, _SCHEMA, "tutorial")
        return cls(tables["tutorial"], tables["layers"], meta)

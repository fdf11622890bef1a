"""``FrameworksResult``: the tables of the frameworks study and their metadata.

Written by ``initsuite reproduce frameworks``
(:func:`initsuite.studies.frameworks.frameworks_study`) as ``layers.parquet`` and
``runs.parquet`` beside ``meta.json`` (kind ``"frameworks"``). Never imports torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from initsuite.core.errors import InitsuiteError
from initsuite.results import columns as C
from initsuite.results import store

__all__ = ["KIND", "FrameworksResult"]

KIND = "frameworks"
_TABLES = ("layers", "runs")


@dataclass
class FrameworksResult:
    """What the frameworks study returns.

    Attributes:
        layers: one row per law, model, seed and layer
            (:data:`~initsuite.columns.FRAMEWORK_LAYERS`).
        runs: one row per law, model and seed (:data:`~initsuite.columns.FRAMEWORK_RUNS`).
        meta: the study's configuration and environment (``kind`` is ``"frameworks"``).
    """

    layers: pd.DataFrame
    runs: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, out_dir: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write ``layers.parquet``, ``runs.parquet`` and meta.json into ``out_dir``, all or
        nothing."""
        tables = {"layers": self.layers, "runs": self.runs}
        return store.write(out_dir, tables, self.meta, overwrite=overwrite)

    @classmethod
    def load(cls, in_dir: str | os.PathLike[str]) -> FrameworksResult:
        """Read a directory written by :meth:`save`, each column checked against its schema.

        Raises:
            InitsuiteError: it is not a readable frameworks study directory.
        """
        path = store.as_path(in_dir)
        tables, meta = store.read(path, _TABLES)
        if meta.get("kind") != KIND:
            raise InitsuiteError(
                f"{str(path / store.META)!r} describes {meta.get('kind')!r:.30} results, not "
                "a frameworks study (initsuite reproduce frameworks)"
            )
        layers = C.conform(tables["layers"], C.FRAMEWORK_LAYERS, repr(str(path / "layers.parquet")),
                           C.FRAMEWORK_LAYERS_KEYS)  # fmt: skip
        runs = C.conform(tables["runs"], C.FRAMEWORK_RUNS, repr(str(path / "runs.parquet")),
                         C.FRAMEWORK_KEYS)  # fmt: skip
        return cls(layers, runs, meta)

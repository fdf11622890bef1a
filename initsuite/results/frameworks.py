"""``FrameworksResult``: the tables of the frameworks study and their metadata.

Written by ``initsuite reproduce frameworks``
(:func:`initsuite.studies.frameworks.frameworks_study`) as ``layers.parquet``,
``runs.parquet``, ``training.parquet``, ``training_runs.parquet`` and ``conventions.parquet``
beside ``meta.json`` (kind ``"frameworks"``); the last three are absent from directories
written before they existed, and load empty. Never imports torch.
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
# name -> (columns, keys): tables added later, read when present
_OPTIONAL = {
    "training": (C.FRAMEWORK_TRAINING, (*C.FRAMEWORK_TRAINING_KEYS, "step")),
    "training_runs": (C.FRAMEWORK_TRAINING_RUNS, C.FRAMEWORK_TRAINING_KEYS),
    "conventions": (C.FRAMEWORK_CONVENTIONS, C.FRAMEWORK_CONVENTIONS_KEYS),
}


def _empty(name: str) -> pd.DataFrame:
    return C.frame(_OPTIONAL[name][0], [])


@dataclass
class FrameworksResult:
    """What the frameworks study returns.

    Attributes:
        layers: one row per law, model, seed and layer
            (:data:`~initsuite.results.columns.FRAMEWORK_LAYERS`).
        runs: one row per law, model and seed (:data:`~initsuite.results.columns.FRAMEWORK_RUNS`).
        meta: the study's configuration and environment (``kind`` is ``"frameworks"``).
        training: each law's digits MLP in training, one row per law, activation, seed and
            step (:data:`~initsuite.results.columns.FRAMEWORK_TRAINING`); empty when not trained.
        training_runs: one row per law, activation and seed of training
            (:data:`~initsuite.results.columns.FRAMEWORK_TRAINING_RUNS`).
        conventions: the rules of the conventions among the laws
            (:data:`~initsuite.results.columns.FRAMEWORK_CONVENTIONS`), as the study applied them.
    """

    layers: pd.DataFrame
    runs: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    training: pd.DataFrame = field(default_factory=lambda: _empty("training"))
    training_runs: pd.DataFrame = field(default_factory=lambda: _empty("training_runs"))
    conventions: pd.DataFrame = field(default_factory=lambda: _empty("conventions"))

    def save(self, out_dir: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write each table as ``<name>.parquet`` and meta.json into ``out_dir``, all or
        nothing."""
        tables = {"layers": self.layers, "runs": self.runs, "training": self.training,
                  "training_runs": self.training_runs,
                  "conventions": self.conventions}  # fmt: skip
        return store.write(out_dir, tables, self.meta, overwrite=overwrite)

    @classmethod
    def load(cls, in_dir: str | os.PathLike[str]) -> FrameworksResult:
        """Read a directory written by :meth:`save`, each column checked against its schema.

        Raises:
            InitsuiteError: it is not a readable frameworks study directory.
        """
        path = store.as_path(in_dir)
        tables, meta = store.read(path, _TABLES, optional=tuple(_OPTIONAL), kind=KIND)
        if meta.get("kind") != KIND:
            raise InitsuiteError(
                f"{str(path / store.META)!r} describes {meta.get('kind')!r:.30} results, not "
                "a frameworks study (initsuite reproduce frameworks)"
            )
        layers = C.conform(tables["layers"], C.FRAMEWORK_LAYERS, repr(str(path / "layers.parquet")),
                           C.FRAMEWORK_LAYERS_KEYS)  # fmt: skip
        runs = C.conform(tables["runs"], C.FRAMEWORK_RUNS, repr(str(path / "runs.parquet")),
                         C.FRAMEWORK_KEYS)  # fmt: skip
        extra = {
            name: C.conform(tables[name], cols, repr(str(path / f"{name}.parquet")), keys)
            if name in tables else _empty(name)
            for name, (cols, keys) in _OPTIONAL.items()
        }  # fmt: skip
        return cls(layers, runs, meta, **extra)

"""``FrameworksResult``: the tables of the frameworks study and their metadata.

Written by ``initsuite reproduce frameworks``
(:func:`initsuite.studies.frameworks.frameworks_study`) as ``layers.parquet``,
``runs.parquet``, ``training.parquet``, ``training_runs.parquet`` and ``conventions.parquet``
beside ``meta.json`` (kind ``"frameworks"``); the last three are absent from directories
written before they existed, and load empty. Never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

from initsuite.results import columns as C
from initsuite.results.base import Result, Table

__all__ = ["KIND", "FrameworksResult"]

KIND = "frameworks"
_TABLES = (
    Table("layers", C.FRAMEWORK_LAYERS, C.FRAMEWORK_LAYERS_KEYS),
    Table("runs", C.FRAMEWORK_RUNS, C.FRAMEWORK_KEYS),
    # added later: read when present
    Table("training", C.FRAMEWORK_TRAINING, (*C.FRAMEWORK_TRAINING_KEYS, "step"), optional=True),
    Table("training_runs", C.FRAMEWORK_TRAINING_RUNS, C.FRAMEWORK_TRAINING_KEYS, optional=True),
    Table("conventions", C.FRAMEWORK_CONVENTIONS, C.FRAMEWORK_CONVENTIONS_KEYS, optional=True),
)
_BY_NAME = {t.name: t for t in _TABLES}


def _empty(name: str) -> pd.DataFrame:
    return _BY_NAME[name].empty()


@dataclass
class FrameworksResult(Result):
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

    kind: ClassVar[str] = KIND
    tables: ClassVar[tuple[Table, ...]] = _TABLES
    kind_required: ClassVar[bool] = True

    layers: pd.DataFrame
    runs: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    training: pd.DataFrame = field(default_factory=lambda: _empty("training"))
    training_runs: pd.DataFrame = field(default_factory=lambda: _empty("training_runs"))
    conventions: pd.DataFrame = field(default_factory=lambda: _empty("conventions"))

"""``TrainingResult``: the tables of a training study and their metadata. Never imports torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from initsuite.results import columns as C
from initsuite.results.base import Result, Table
from initsuite.results.loading import with_bias_law

__all__ = ["LEGACY_BIAS", "TrainingResult"]

LEGACY_BIAS = "zeros"
"""What a training study's stored ``"bias": true`` meant before bias laws had names."""


@dataclass
class TrainingResult(Result):
    """What :func:`initsuite.train` returns.

    Attributes:
        curves: one row per run and step (:data:`initsuite.results.columns.TRAINING`; stored
            as ``training.parquet``): the minibatch loss, and every ``eval_every`` steps (and
            at step 0, before any update) the full train and test loss and accuracy.
        runs: one row per run (:data:`~initsuite.results.columns.TRAINING_RUNS`).
        meta: configuration, dataset and environment.
    """

    kind: ClassVar[str] = "training"
    tables: ClassVar[tuple[Table, ...]] = (
        Table("training", C.TRAINING, (*C.TRAINING_KEYS, "step"), attr="curves"),
        Table("runs", C.TRAINING_RUNS, C.TRAINING_KEYS),
    )

    curves: pd.DataFrame
    runs: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_tables(cls, tables: dict[str, pd.DataFrame], meta: dict[str, Any],
                    path: Path) -> TrainingResult:  # fmt: skip
        """The stored ``config.bias`` read as a law's name (an older bool True: ``zeros``)."""
        return super().from_tables(tables, with_bias_law(meta, LEGACY_BIAS, path), path)

    def summary(self) -> pd.DataFrame:
        """One row per (activation, scheme): runs, how many reached the threshold and
        diverged, median steps to the threshold (over the runs that reached it), mean final
        train loss and test accuracy."""
        g = self.runs.groupby(["activation", "scheme"], observed=True, sort=True)
        out = g.agg(
            runs=("seed", "size"),
            reached=("reached", "sum"),
            diverged=("diverged", "sum"),
            median_steps_to_threshold=("steps_to_threshold", lambda s: s.dropna().median()),
            mean_final_train_loss=("final_train_loss", "mean"),
            mean_final_test_accuracy=("final_test_accuracy", "mean"),
        ).reset_index()
        return out.astype({"reached": "int64", "diverged": "int64"})

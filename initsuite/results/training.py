"""``TrainingResult``: the tables of a training study and their metadata. Never imports torch."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from initsuite.results import columns as C
from initsuite.results import store
from initsuite.results.loading import read_tables, with_bias_law

__all__ = ["LEGACY_BIAS", "TrainingResult"]

_SCHEMA = {
    "training": (C.TRAINING, (*C.TRAINING_KEYS, "step")),
    "runs": (C.TRAINING_RUNS, C.TRAINING_KEYS),
}
LEGACY_BIAS = "zeros"
"""What a training study's stored ``"bias": true`` meant before bias laws had names."""


@dataclass
class TrainingResult:
    """What :func:`initsuite.train` returns.

    Attributes:
        curves: one row per run and step (:data:`initsuite.results.columns.TRAINING`; stored
            as ``training.parquet``): the minibatch loss, and every ``eval_every`` steps (and
            at step 0, before any update) the full train and test loss and accuracy.
        runs: one row per run (:data:`~initsuite.results.columns.TRAINING_RUNS`).
        meta: configuration, dataset and environment.
    """

    curves: pd.DataFrame
    runs: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, out_dir: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write training.parquet, runs.parquet and meta.json into ``out_dir`` atomically."""
        return store.write(out_dir, {"training": self.curves, "runs": self.runs}, self.meta,
                           overwrite=overwrite)  # fmt: skip

    @classmethod
    def load(cls, in_dir: str | os.PathLike[str]) -> TrainingResult:
        """Read a directory written by :meth:`save`, each table checked against its columns;
        the stored ``config.bias`` is read as a law's name (an older bool True: ``zeros``).

        Raises:
            InitsuiteTypeError: ``in_dir`` is not a path.
            InitsuiteError: it is not a readable training directory.
        """
        tables, meta = read_tables(in_dir, _SCHEMA, "training")
        meta = with_bias_law(meta, LEGACY_BIAS, store.as_path(in_dir))
        return cls(tables["training"], tables["runs"], meta)

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

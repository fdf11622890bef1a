"""A stored sweep's grid: meta.json's configuration checked for type, and every stored row
checked against it, so that what a report says the sweep ran is what its tables hold.

:func:`grid_of` reads the grid from a sweep's meta.json (each axis a list of distinct values
of its type, the settings of theirs, the fingerprint and cell count consistent with them);
:meth:`Grid.check_rows` refuses a row whose key lies outside it (a depth the grid lacks, a
scheme of another sweep, cells with bias under a configuration without); :func:`check_unique`
refuses two rows of one key; :meth:`Grid.check_count` a complete chunked sweep that holds fewer or
more cells than its grid, :meth:`Grid.check_covered` a complete one whose grid lists a value
no cell has. Each check is vectorised (loading a sweep is on the path of every report
and compare). Never imports torch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from initsuite.core.errors import InitsuiteError
from initsuite.core.inputs import INPUT_LAWS
from initsuite.results.gates import key_text

__all__ = ["AXES", "CONFIG", "Grid", "check_config", "check_unique", "grid_of", "n_cells"]

AXES: dict[str, str] = {
    "archs": "arch", "schemes": "scheme", "activations": "activation", "depths": "depth",
    "widths": "width", "seeds": "seed", "devices": "device", "dtypes": "dtype",
}  # fmt: skip
"""Each axis of a sweep's grid (a list in meta.json's config) and the column it fills."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return _is_int(v) or isinstance(v, float)


# what each setting of meta.json's config holds (SweepConfig.to_dict writes every one of them
# and the axes; a sweep stored by an older initsuite may lack the newer ones)
_SETTINGS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "batch": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "bias": ("a bias law's name, null or a boolean",
             lambda v: v is None or isinstance(v, str | bool)),
    "explode_at": ("a number or null", lambda v: v is None or _is_number(v)),
    "vanish_at": ("a number or null", lambda v: v is None or _is_number(v)),
    "timing": ("a boolean", lambda v: isinstance(v, bool)),
    "timing_repeats": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "shared": ("a boolean", lambda v: isinstance(v, bool)),
    "pair_cosine": ("a number or null", lambda v: v is None or _is_number(v)),
    "jacobian": ("a boolean", lambda v: isinstance(v, bool)),
    "backward": ("a boolean", lambda v: isinstance(v, bool)),
    "inputs": (f"one of {', '.join(INPUT_LAWS)}", lambda v: v in INPUT_LAWS),
}  # fmt: skip
# what each axis lists: strings, or integers from a lower bound
_AXIS_VALUES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    **{a: ("strings", lambda v: isinstance(v, str))
       for a in ("archs", "schemes", "activations", "devices", "dtypes")},
    "depths": ("integers >= 1", lambda v: _is_int(v) and v >= 1),
    "widths": ("integers >= 1", lambda v: _is_int(v) and v >= 1),
    "seeds": ("integers >= 0", lambda v: _is_int(v) and v >= 0),
}  # fmt: skip
CONFIG: tuple[str, ...] = (*AXES, *_SETTINGS)
"""The keys of a sweep's stored configuration (:meth:`SweepConfig.to_dict`)."""
# the settings a sweep's fingerprint repeats (its bias: whether the layers draw torch's)
_SHARED = ("explode_at", "vanish_at", "shared", "pair_cosine", "jacobian", "backward")


def check_config(config: Mapping[str, Any], where: str) -> None:
    """Raise, naming ``where`` (meta.json) and the key, unless every axis present in
    ``config`` is a non-empty list of distinct values of its type and every setting present
    is of its type."""
    for axis, (what, ok) in _AXIS_VALUES.items():
        if axis not in config:
            continue
        values = config[axis]
        if not (isinstance(values, list) and values and all(ok(v) for v in values)):
            raise InitsuiteError(
                f"{where} has config.{axis} = {_show(values)}, not a non-empty list of {what}: "
                "damaged, or not written by initsuite"
            )
        if len(set(values)) != len(values):
            raise InitsuiteError(
                f"{where} lists a value twice in config.{axis} ({_show(values)}): damaged, or "
                "not written by initsuite"
            )
    for key, (what, ok) in _SETTINGS.items():
        if key in config and not ok(config[key]):
            raise InitsuiteError(
                f"{where} has config.{key} = {_show(config[key])}, not {what}: damaged, or not "
                "written by initsuite"
            )


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def n_cells(config: Mapping[str, Any]) -> int | None:
    """The number of cells of the grid ``config`` lists (the product of its axes); None when
    an axis is not recorded (a sweep stored before it was)."""
    if not all(isinstance(config.get(a), list) for a in AXES):
        return None
    return math.prod(len(config[a]) for a in AXES)


@dataclass(frozen=True)
class Grid:
    """The grid of a stored sweep, as its meta.json records it.

    Attributes:
        values: each key column's allowed values (only the axes recorded).
        torch_bias: whether its layers draw torch's default bias (the cells' ``bias``); None
            when not recorded.
        cells: the number of cells of the grid (None when an axis is not recorded).
        complete: whether meta.json says every cell is stored.
        where: meta.json, for messages.
    """

    values: dict[str, tuple[Any, ...]]
    torch_bias: bool | None
    cells: int | None
    complete: bool
    where: str

    def check_rows(self, table: str, df: pd.DataFrame, where: str | Callable[[int], str]) -> None:
        """Raise unless every row of ``df`` (the table ``table``) lies in the grid: each key
        column's value among its axis's, ``bias`` the configuration's, ``layer`` within the
        cell's depth. ``where`` names the file holding the table, or (a function of the row
        number) the file holding each row."""
        if isinstance(where, str):
            name = where

            def one_file(_: int) -> str:
                return name

            return self.check_rows(table, df, one_file)
        for col, allowed in self.values.items():
            if col not in df.columns:
                continue
            s = df[col]
            bad = np.flatnonzero(~s.isin(allowed).to_numpy(bool))
            if len(bad):
                i = int(bad[0])
                axis = next((a for a, c in AXES.items() if c == col), col)
                value = s.iat[i].item() if hasattr(s.iat[i], "item") else s.iat[i]
                raise InitsuiteError(
                    f"{where(i)} holds a row of {col} {value!r}, which the grid of "
                    f"{self.where} lacks ({axis} {_show(list(allowed))}): a chunk or a table of "
                    "another sweep, or an edited meta.json"
                )
        if table == "cells" and self.torch_bias is not None and len(df):
            bad = np.flatnonzero(df["bias"].to_numpy(bool) != self.torch_bias)
            if len(bad):
                said, found = ("with", "without") if self.torch_bias else ("without", "with")
                raise InitsuiteError(
                    f"{where(int(bad[0]))} holds cells computed {found} bias, {self.where} "
                    f"describes a sweep {said}: a chunk or a table of another sweep, or an edited "
                    "meta.json"
                )
        if table == "layers" and len(df):
            layer, depth = df["layer"].to_numpy(), df["depth"].to_numpy()
            bad = np.flatnonzero((layer < 1) | (layer > depth))
            if len(bad):
                i = int(bad[0])
                raise InitsuiteError(
                    f"{where(i)} holds layer {layer[i]} of a cell of depth {depth[i]}: damaged, "
                    "or not written by initsuite"
                )

    def check_count(self, stored: int, where: str) -> None:
        """Raise unless ``where`` (the chunks, or a table) holds at most the grid's cells,
        and all of them where meta.json says the sweep is complete (with every row in the
        grid and each key once: the grid itself)."""
        if self.cells is None:
            return
        if stored > self.cells:
            raise InitsuiteError(
                f"{where} holds {stored} cells, more than the {self.cells} of the sweep "
                f"{self.where} describes: cells of another sweep were added"
            )
        if self.complete and stored < self.cells:
            raise InitsuiteError(
                f"{self.where} describes a complete sweep of {self.cells} cells, but {where} "
                f"holds {stored}: a chunk is missing or was emptied"
            )

    def check_covered(self, cells: pd.DataFrame, where: str) -> None:
        """Raise when meta.json says the sweep is complete but lists an axis value that no
        cell in ``where`` has: the configuration a report shows would name what was never
        run. (A sweep saved whole may hold a subset of its grid's cells, e.g. one edited
        through the API; a chunked one is held to its count, :meth:`check_count`.)"""
        if not self.complete:
            return
        for col, allowed in self.values.items():
            found = set(pd.unique(cells[col]).tolist()) if col in cells.columns else set()
            absent = [v for v in allowed if v not in found]
            if absent:
                axis = next((a for a, c in AXES.items() if c == col), col)
                raise InitsuiteError(
                    f"{self.where} lists {axis} {_show(absent)}, which no cell in {where} has: "
                    "an edited meta.json, or a table of another sweep"
                )


def grid_of(meta: Mapping[str, Any], where: str) -> Grid:
    """The grid of a sweep's ``meta`` (read from ``where``, its meta.json, with
    ``config.bias`` read as a law's name): its configuration checked (:func:`check_config`),
    and against it the fingerprint's settings and the recorded cell count."""
    config: Mapping[str, Any] = meta.get("config") or {}
    check_config(config, where)
    torch_bias = config["bias"] == "torch_default" if "bias" in config else None
    fingerprint = meta.get("fingerprint")
    if isinstance(fingerprint, dict):
        mine = {k: config[k] for k in _SHARED if k in config}
        if torch_bias is not None:
            mine["bias"] = torch_bias
        diff = next((k for k in sorted(mine) if k in fingerprint and fingerprint[k] != mine[k]),
                    None)  # fmt: skip
        if diff is not None:
            raise InitsuiteError(
                f"{where} has config.{diff} = {_show(config.get(diff))} but a fingerprint with "
                f"{diff} = {_show(fingerprint[diff])}: damaged, or edited"
            )
    cells, stored_cells = n_cells(config), meta.get("cells")
    if cells is not None and _is_int(stored_cells) and stored_cells != cells:
        raise InitsuiteError(
            f"{where} says the sweep has {stored_cells} cells, its config's grid {cells}: "
            "damaged, or edited"
        )
    if cells is None and _is_int(stored_cells):
        cells = stored_cells
    values = {col: tuple(config[a]) for a, col in AXES.items() if a in config}
    if _is_int(config.get("batch")):
        values["batch"] = (config["batch"],)
    return Grid(values, torch_bias, cells, meta.get("complete") is not False, where)


def check_unique(df: pd.DataFrame, keys: tuple[str, ...], where: str) -> None:
    """Raise, naming ``where`` and the first such key, when two rows of ``df`` share their
    ``keys``."""
    dup = np.flatnonzero(df.duplicated(list(keys)).to_numpy(bool))
    if len(dup):
        raise InitsuiteError(
            f"{where} holds two rows of {key_text(df.iloc[int(dup[0])], keys)}: every key is "
            "stored once; damaged, or not written by initsuite"
        )

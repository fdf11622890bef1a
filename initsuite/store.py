"""Results on disk: named parquet tables plus a ``meta.json`` sidecar, written atomically.

A directory is written whole into a temporary sibling and renamed into place, so a reader
never sees half a run and an interrupted run leaves the previous results untouched. An
existing non-empty directory is only replaced when the caller asks for it. Never imports torch.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import InitsuiteError, InitsuiteTypeError

__all__ = ["as_path", "atomic_write_bytes", "atomic_write_text", "check_target", "read", "write"]

META = "meta.json"


def check_target(out_dir: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Raise unless ``out_dir`` may be written: absent, empty, or ``overwrite`` given."""
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise InitsuiteError(f"output path {str(path)!r} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise InitsuiteError(
            f"output directory {str(path)!r} already holds results; choose a new --out "
            "or pass --overwrite to replace it"
        )
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish_mode(path: Path, directory: bool) -> None:
    # mkstemp/mkdtemp create 0600/0700 entries; results are ordinary files, so give them the
    # permissions open()/mkdir() would have (0666/0777 under the umask).
    with contextlib.suppress(OSError):
        os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write(
    out_dir: str | os.PathLike[str],
    tables: Mapping[str, pd.DataFrame],
    meta: Mapping[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write ``DIR/<name>.parquet`` for each table and ``DIR/meta.json``, all or nothing."""
    path = check_target(out_dir, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        for name, df in tables.items():
            df.to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / META).write_text(json.dumps(meta, indent=2, default=str) + "\n")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        _publish_mode(tmp, directory=True)
        if path.is_dir() and any(path.iterdir()):
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            old.rmdir()
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if path.is_dir():
                path.rmdir()
            tmp.rename(path)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def as_path(value: object, what: str = "in_dir") -> Path:
    """``value`` as a path: a non-empty ``str`` or ``os.PathLike``, else an
    :class:`InitsuiteTypeError` naming the argument."""
    if isinstance(value, str | os.PathLike):
        path = Path(value)
        if str(value) == "":
            raise InitsuiteError(f"{what} is an empty path; give a results directory")
        return path
    raise InitsuiteTypeError(
        f"{what} must be a path (str or os.PathLike), got {type(value).__name__} {value!r:.60}"
    )


def read(
    in_dir: str | os.PathLike[str], names: tuple[str, ...]
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Read the named tables and the metadata of a results directory; clear errors if damaged."""
    path = as_path(in_dir)
    if not path.is_dir():
        raise InitsuiteError(f"no results directory at {str(path)!r}")
    tables: dict[str, pd.DataFrame] = {}
    for name in names:
        f = path / f"{name}.parquet"
        if not f.exists():
            raise InitsuiteError(f"{str(f)!r} is missing: {str(path)!r} is not a complete run")
        try:
            tables[name] = pd.read_parquet(f)
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise InitsuiteError(
                f"{str(f)!r} is not a readable parquet file ({_first_line(exc)})"
            ) from None
    meta_path = path / META
    if not meta_path.exists():
        raise InitsuiteError(f"{str(meta_path)!r} is missing: {str(path)!r} is not a complete run")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InitsuiteError(f"{str(meta_path)!r} is not valid JSON ({_first_line(exc)})") from None
    if not isinstance(meta, dict):
        raise InitsuiteError(
            f"{str(meta_path)!r} holds a JSON {type(meta).__name__}, not an object: damaged, "
            "or not written by initsuite"
        )
    return tables, meta


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and a rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _publish_mode(Path(tmp), directory=False)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file and a rename."""
    return atomic_write_bytes(path, text.encode("utf-8"))

"""Reading stored files: regular files only, JSON bounded in size and depth, meta.json's
shared fields checked for type.

A results directory is shared data, so no stored file is trusted: a FIFO or a device where a
table or meta.json belongs would hang a reader or fill its memory, and JSON nested thousands
deep overflows a parser's stack. :func:`read_regular` opens a file without blocking and reads
it only if it is a regular file; :func:`read_json` caps its size and nesting;
:func:`parse_parquet` turns a table's bytes into a frame; :func:`read_meta` checks the fields
every kind of meta.json shares. Never imports torch.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from initsuite.core.errors import InitsuiteError

__all__ = ["KINDS", "MAX_JSON_BYTES", "MAX_JSON_DEPTH", "first_line", "parse_parquet",
           "read_json", "read_meta", "read_regular"]  # fmt: skip

KINDS: dict[str, str] = {
    "sweep": "a sweep (initsuite sweep)",
    "training": "a training study (initsuite train)",
    "probe": "a probe (initsuite probe, initsuite reproduce zoo)",
    "tutorial": "a tutorial reproduction (initsuite reproduce tutorial)",
    "isometry": "an isometry study (initsuite reproduce isometry)",
    "frameworks": "a frameworks study (initsuite reproduce frameworks)",
    "coordcheck": "a coordinate check (initsuite coordcheck)",
    "mutransfer": "a μTransfer reproduction (initsuite reproduce mutransfer)",
    "cmap": "a c-map study (initsuite.cmap_study)",
    "kernel_shaping": "a kernel-shaping reproduction (initsuite reproduce kernel-shaping)",
}
"""What each ``kind`` of meta.json is and the command that writes it, for messages."""
MAX_JSON_BYTES = 64 * 2**20
"""The largest meta.json or chunk manifest read: far above what initsuite writes (a manifest
lists a group's cell keys, about 30 bytes each)."""
MAX_JSON_DEPTH = 64
"""The deepest nesting of lists and objects read from JSON; initsuite writes under 10."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _file_type(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "a special file")


def read_regular(path: Path, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path`` (a link to one is followed), at most ``limit``
    of them; an error naming it when it is something else or larger.

    It is opened without blocking and checked before a byte is read: opening a FIFO for
    reading waits for a writer, and a device such as /dev/zero never ends.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InitsuiteError(f"{str(path)!r} cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InitsuiteError(
                f"{str(path)!r} is {_file_type(st.st_mode)}, not a regular file: not written "
                "by initsuite; move it away"
            )
        if limit is not None and st.st_size > limit:
            raise InitsuiteError(
                f"{str(path)!r} holds {st.st_size} bytes, more than the {limit} initsuite reads "
                "from such a file: not written by initsuite"
            )
        try:
            data = fh.read() if limit is None else fh.read(limit + 1)
        except OSError as exc:
            raise InitsuiteError(f"{str(path)!r} cannot be read ({exc.strerror})") from None
    if limit is not None and len(data) > limit:  # it grew while being read
        raise InitsuiteError(f"{str(path)!r} holds more than the {limit} bytes initsuite reads")
    return data


def parse_parquet(data: bytes, path: Path) -> pd.DataFrame:
    """The table in ``data``, the bytes of the parquet file at ``path`` (named in the error).

    The bytes are copied into memory arrow owns first. Arrow's scanner releases its source on
    one of its own threads, sometimes after the caller returned; a Python file object (such as
    ``io.BytesIO``) released there must take the GIL, and if the interpreter is exiting by
    then, the thread is killed inside C++ and the process aborts ("terminate called without an
    active exception") after all its work was done.
    """
    try:
        sink = pa.BufferOutputStream()
        sink.write(data)
        return pd.read_parquet(pa.BufferReader(sink.getvalue()))
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise InitsuiteError(
            f"{str(path)!r} is not a readable parquet file ({first_line(exc)})"
        ) from None


def read_json(path: Path, limit: int = MAX_JSON_BYTES) -> Any:
    """The JSON value in the regular file ``path`` (:func:`read_regular`), nested at most
    :data:`MAX_JSON_DEPTH` deep; an error naming the file otherwise."""
    data = read_regular(path, limit)
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InitsuiteError(f"{str(path)!r} is not valid JSON ({first_line(exc)})") from None
    except RecursionError:  # the parser's own stack check, far past MAX_JSON_DEPTH
        value = None
        deep = True
    else:
        deep = _too_deep(value)
    if deep:
        raise InitsuiteError(
            f"{str(path)!r} nests lists or objects more than {MAX_JSON_DEPTH} deep: not "
            "written by initsuite"
        )
    return value


def _too_deep(value: Any) -> bool:
    """Whether ``value`` nests lists and dicts more than :data:`MAX_JSON_DEPTH` deep (walked
    without recursion, so that later code walking it recursively cannot overflow)."""
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        v, depth = stack.pop()
        items = v.values() if isinstance(v, dict) else v
        if depth > MAX_JSON_DEPTH:
            return True
        stack.extend((x, depth + 1) for x in items if isinstance(x, (dict, list)))
    return False


# meta.json's fields shared by every kind: what each must be where present
_TEXT = ((str, type(None)), "a string or null")
_COUNT = ((int, type(None)), "an integer or null")
_LIST = ((list,), "a list")
_ENVIRONMENT: dict[str, tuple[tuple[type, ...], str]] = {
    "initsuite": _TEXT, "torch": _TEXT, "cuda": _TEXT, "python": _TEXT, "platform": _TEXT,
    "cpu": _TEXT, "cpu_count": _COUNT, "torch_threads": _COUNT, "gpus": _LIST,
    "git_commit": _TEXT, "utc_time": _TEXT, "argv": _LIST,
}  # fmt: skip
_TOP: dict[str, tuple[tuple[type, ...], str]] = {
    "kind": ((str,), "a string"), "config": ((dict,), "an object"),
    "environment": ((dict,), "an object"),
}  # fmt: skip


def _misfit(fields: Mapping[str, Any], types: Mapping[str, tuple[tuple[type, ...], str]],
            prefix: str = "") -> tuple[str, Any, str] | None:  # fmt: skip
    """The first of ``fields`` that is not of its type in ``types``: (its name, its value,
    what it should be); None when all are."""
    for key, (allowed, what) in types.items():
        v = fields.get(key)
        if key in fields and (not isinstance(v, allowed) or isinstance(v, bool)):
            return prefix + key, v, what
    return None


def read_meta(path: Path) -> dict[str, Any]:
    """A results directory's meta.json (:func:`read_json`): an object whose ``kind`` is a
    string, ``config`` an object and ``environment`` an object of the fields
    :func:`initsuite.core.env.environment` writes, each of its type; an error naming the
    first that is not."""
    meta = read_json(path)
    where = repr(str(path))
    if not isinstance(meta, dict):
        raise InitsuiteError(
            f"{where} holds a JSON {type(meta).__name__}, not an object: damaged, or not "
            "written by initsuite"
        )
    bad = _misfit(meta, _TOP)
    env = meta.get("environment", {})
    if bad is None and isinstance(env, dict):
        bad = _misfit(env, _ENVIRONMENT, "environment.")
    if bad is None and isinstance(env, dict):
        gpu = ((str,), "a string")
        for i, g in enumerate(env.get("gpus") or []):
            bad = (
                _misfit(g, {"device": gpu, "name": gpu}, f"environment.gpus[{i}].")
                if isinstance(g, dict)
                else (f"environment.gpus[{i}]", g, "an object")
            )
            if bad is not None:
                break
        argv = env.get("argv") or []
        if bad is None and not all(isinstance(a, str) for a in argv):
            bad = ("environment.argv", argv, "a list of strings")
    if bad is not None:
        name, value, what = bad
        raise InitsuiteError(
            f"{where} has {name} = {json.dumps(value)[:40]} ({type(value).__name__}), not "
            f"{what}: damaged, or not written by initsuite"
        )
    return meta

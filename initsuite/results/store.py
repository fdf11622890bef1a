"""Results on disk: named parquet tables plus a ``meta.json`` sidecar, written atomically.

A directory is written whole into a temporary sibling and swapped into place, so a reader
never sees half a run and an interrupted run leaves the previous results untouched. An
existing non-empty directory is only replaced when the caller asks for it and initsuite wrote
it (:mod:`initsuite.results.outputs`); a symbolic link given as the directory keeps pointing
where it did, at the new results. Reports are written through a temporary directory inside
their output directory (:func:`staged`). Every stored file is read through
:mod:`initsuite.results.reading` (regular files only; JSON bounded in size and depth,
meta.json's shared fields typed). Never imports torch.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from initsuite.core.errors import InitsuiteError, InitsuiteTypeError
from initsuite.results.layout import META, STAGING
from initsuite.results.outputs import check_output
from initsuite.results.ownership import check_owned, real_target
from initsuite.results.reading import KINDS, first_line, parse_parquet, read_meta, read_regular

__all__ = ["as_path", "atomic_write_bytes", "atomic_write_text", "check_output",
           "check_target", "first_line", "fsync_dir", "publish_mode", "read", "read_table",
           "replacing", "staged", "write"]  # fmt: skip


def check_target(out_dir: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Raise unless ``out_dir`` may be written: absent, empty, or (``overwrite``) a directory
    initsuite wrote; see :func:`initsuite.results.outputs.check_output`."""
    return check_output(out_dir, "replace" if overwrite else "new")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish_mode(path: Path, directory: bool) -> None:
    """Give a temporary file or directory the permissions ``open()``/``mkdir()`` would have."""
    # mkstemp/mkdtemp create 0600/0700 entries; results are ordinary files (0666/0777 under
    # the umask).
    with contextlib.suppress(OSError):
        os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (a rename into it) to disk, where the platform allows."""
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
    with replacing(out_dir, overwrite) as tmp:
        for name, df in tables.items():
            df.to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / META).write_text(json.dumps(meta, indent=2, default=str) + "\n")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    return Path(out_dir)


@contextlib.contextmanager
def replacing(out_dir: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``out_dir`` to fill; when the block ends without
    error it takes ``out_dir``'s place whole (a swap, so a kill leaves the old results or the
    new ones), and on an error it is removed and ``out_dir`` is left as it was.

    Args:
        out_dir: the results directory; absent, empty, or (``overwrite``) one initsuite wrote
            (checked before and again just before the swap). A link keeps pointing where it
            did, at the new results.
        overwrite: allow replacing a directory initsuite wrote.
    """
    path = check_target(out_dir, overwrite)
    real = real_target(path)  # a link's target is replaced; the link keeps pointing at it
    created = _make_dirs(real.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{real.name}.tmp-", dir=real.parent))
    try:
        yield tmp
        publish_mode(tmp, directory=True)
        if real.is_dir() and any(real.iterdir()):
            check_target(out_dir, overwrite)  # again: nothing foreign arrived during compute
            _exchange(tmp, real)  # tmp now holds the previous results
        else:
            if real.is_dir():
                real.rmdir()
            tmp.rename(real)
        fsync_dir(real.parent)
        shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_dirs(created)
        raise


def _make_dirs(path: Path) -> list[Path]:
    """``mkdir -p path``; the directories it created, outermost first (to undo it)."""
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True)
    return missing[::-1]


def _remove_dirs(created: list[Path]) -> None:
    for d in reversed(created):
        with contextlib.suppress(OSError):
            d.rmdir()


_RENAME_EXCHANGE = 2  # linux/fs.h


def _exchange(a: Path, b: Path) -> None:
    """Swap the directories ``a`` and ``b``. On Linux in one step (renameat2 with
    RENAME_EXCHANGE), so a kill leaves one of the two at ``b``, never neither; elsewhere by
    two renames, the first undone if the second fails."""
    if _renameat2_exchange(a, b):
        return
    old = Path(tempfile.mkdtemp(prefix=f".{b.name}.old-", dir=b.parent))
    old.rmdir()
    b.rename(old)
    try:
        a.rename(b)
    except BaseException:
        old.rename(b)
        raise
    old.rename(a)


def _renameat2_exchange(a: Path, b: Path) -> bool:
    """False where the call or the flag is not supported (then the caller renames twice)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):  # a libc older than glibc 2.28
        return False
    at_fdcwd = -100
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # e.g. a filesystem without it
        return False
    raise OSError(err, os.strerror(err), str(b))


@contextlib.contextmanager
def staged(
    out_dir: str | os.PathLike[str], owned: Mapping[str, Collection[str] | None]
) -> Iterator[Path]:
    """Write some entries of ``out_dir`` (a report's ``figures/`` and ``report.md``) all or
    nothing.

    Yields a temporary directory inside ``out_dir``. When the block ends without error, each
    entry named in ``owned`` that was written there replaces the entry of that name in
    ``out_dir`` (a directory by a swap, a file by a rename, in the order of ``owned``), and an
    owned entry not written this time is removed (a figure an earlier report drew). On an
    error ``out_dir`` is left as it was. An existing owned entry that initsuite did not write
    (a symbolic link, a foreign file) is refused before anything is written.

    Args:
        out_dir: the output directory; created if absent.
        owned: entry name → for a directory, the file stems allowed in it (figure names);
            None for a file (a Markdown file must start with ``# initsuite``).
    """
    out = check_output(out_dir, "append")
    check_owned(out, owned)
    created = _make_dirs(out)
    tmp = Path(tempfile.mkdtemp(prefix=STAGING, dir=out))
    try:
        yield tmp
        check_owned(out, owned)  # again: nothing was planted while the block ran
        for name in owned:
            new, old = tmp / name, out / name
            if new.exists() and new.is_dir():
                if old.is_dir():
                    _exchange(new, old)  # the previous entry moves into tmp, removed with it
                else:
                    new.rename(old)
            elif new.exists():
                os.replace(new, old)
            elif old.exists():
                old.rename(new)  # removed with tmp: it would contradict this write
        fsync_dir(out)
        shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_dirs(created)
        raise


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
    in_dir: str | os.PathLike[str],
    names: tuple[str, ...],
    optional: tuple[str, ...] = (),
    kind: str | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Read the named tables and the metadata of a results directory; clear errors if damaged.

    Args:
        in_dir: the results directory.
        names: tables that must be there (``<name>.parquet``).
        optional: tables read when present (written by newer versions only); absent ones are
            left out of the returned tables.
        kind: the kind of results expected (a key of :data:`KINDS`): a meta.json naming
            another is refused as such, before any table is read. None: any kind.
    """
    path = as_path(in_dir)
    if not path.is_dir():
        raise InitsuiteError(f"no results directory at {str(path)!r}")
    meta_path = path / META
    has_meta = meta_path.exists() or meta_path.is_symlink()
    meta = read_meta(meta_path) if has_meta else {}
    found = meta.get("kind")
    if kind is not None and found != kind and found in KINDS:
        raise InitsuiteError(f"{str(path)!r} holds {KINDS[found]}, not {KINDS[kind]}")
    # no kind recorded, nor the kind's first table: another kind of directory
    first = path / f"{names[0]}.parquet" if names else path
    if kind is not None and found != kind and not (first.exists() or first.is_symlink()):
        raise InitsuiteError(f"{str(path)!r} has no {first.name}: is it {KINDS[kind]}?")
    if not has_meta:
        raise InitsuiteError(f"{str(meta_path)!r} is missing: {str(path)!r} is not a complete run")
    tables: dict[str, pd.DataFrame] = {}
    for name in (*names, *optional):
        f = path / f"{name}.parquet"
        if not (f.exists() or f.is_symlink()):
            if name in optional:
                continue
            raise InitsuiteError(f"{str(f)!r} is missing: {str(path)!r} is not a complete run")
        tables[name] = read_table(f)
    return tables, meta


def read_table(path: Path) -> pd.DataFrame:
    """One parquet file as a DataFrame; an error naming it when it is not readable."""
    return parse_parquet(read_regular(path), path)


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
        publish_mode(Path(tmp), directory=False)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file and a rename."""
    return atomic_write_bytes(path, text.encode("utf-8"))

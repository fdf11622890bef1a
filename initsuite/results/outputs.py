"""Where initsuite may write: output paths checked before any compute.

    >>> from initsuite.results.outputs import check_output, check_outputs
    >>> check_output("runs/demo", "new")  # doctest: +SKIP
    PosixPath('runs/demo')
    >>> check_outputs({"out": ("cmp.md", "file"), "html": ("cmp.html", "file")})  # doctest: +SKIP

:func:`check_output` is the one check every command runs on each path it writes before
computing (:func:`check_outputs` for all of a command's outputs at once, also refusing one path
given for two): the path is not empty, no component is a file or a dangling link, no name is
too long for the filesystem, and the directories the write will use accept a new file (a file
is created and removed there). Nothing is written inside a results directory (one whose
``meta.json`` names a kind initsuite writes) but its own documents: its tables, chunks and
figures are its writers' alone. An existing file is replaced only if initsuite wrote it
(:func:`~initsuite.results.ownership.written_by_initsuite`); a directory only if its
``meta.json`` names a kind initsuite writes and every entry in it is one that kind's writer
makes (:func:`~initsuite.results.ownership.first_foreign`); never the working directory or one
holding it. The names it checks against are :mod:`initsuite.results.layout`'s. Never imports
torch.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from initsuite.core.errors import Arg, InitsuiteError, InitsuiteTypeError
from initsuite.results.layout import CHUNKS, LEFTOVER, PROBE_PREFIX, REPORT_FILES
from initsuite.results.ownership import (
    check_replaceable,
    real_target,
    stored_kind,
    stored_meta,
    written_by_initsuite,
)

__all__ = ["Mode", "check_output", "check_outputs"]

Mode = Literal["new", "replace", "append", "file", "update"]
_MODES = ("new", "replace", "append", "file", "update")

_MARGIN = 32  # room for the temporary names made beside an output (".NAME.tmp-XXXXXXXX")


def check_outputs(
    outputs: Mapping[str, tuple[str | os.PathLike[str] | None, Mode]],
    home: str | os.PathLike[str] | None = None,
) -> dict[str, Path]:
    """Check every path one command writes (:func:`check_output`), and that no two of them
    name the same file; return them as Paths, by name.

    Args:
        outputs: argument name (``"out"``, ``"html"``: the command line shows its flag) →
            (its path, or None when not asked for; its mode).
        home: as for :func:`check_output`.
    """
    checked = {name: check_output(out, mode, home=home)
               for name, (out, mode) in outputs.items() if out is not None}  # fmt: skip
    seen: dict[object, str] = {}
    for name, path in checked.items():
        first = seen.setdefault(_identity(path), name)
        if first != name:
            raise InitsuiteError(Arg(first), " and ", Arg(name), f" name the same path "
                                 f"{str(path)!r}: give each output its own")  # fmt: skip
    return checked


def _identity(path: Path) -> object:
    """What makes two paths the same file: the inode of one that exists (a hard or symbolic
    link to it is the same), else its absolute path with links resolved."""
    try:
        st = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return (st.st_dev, st.st_ino)


def check_output(
    out: str | os.PathLike[str], mode: Mode = "new", home: str | os.PathLike[str] | None = None
) -> Path:
    """Raise :class:`InitsuiteError` unless ``out`` can be written; return it as a Path.

    Args:
        out: the output path.
        mode: ``"new"``: a directory that is absent or empty; ``"replace"``: also one that
            initsuite wrote (``overwrite``); ``"append"``: a directory written into as it is
            (``resume``, a report); ``"file"``: a file, replacing only one that initsuite
            wrote (:func:`written_by_initsuite`); ``"update"``: a file that initsuite's own
            tools rewrite in place whatever it holds (the marked figures of a page, a steps
            record they read first).
        home: with ``"append"``, the results directory the output belongs to (the run a
            report is of): any other directory holding results is refused.
    """
    if mode not in _MODES:
        raise InitsuiteError(f"unknown output mode {mode!r} (choose from {', '.join(_MODES)})")
    if not isinstance(out, (str, os.PathLike)) or isinstance(os.fspath(out), bytes):
        raise InitsuiteTypeError(f"an output path must be a str or Path, got {out!r}")
    text = os.fspath(out)
    what = "file" if mode == "file" else "directory"
    if not str(text).strip():
        raise InitsuiteError(f"output path {text!r} is empty: name a {what}")
    path = Path(text)
    _check_names(path)
    _nearest_existing(path)
    _check_outside_results(path, file=mode in ("file", "update"))
    if mode in ("file", "update"):
        if path.is_dir():
            raise InitsuiteError(f"output path {text!r} is a directory: name a file")
        if mode == "file" and path.exists() and not written_by_initsuite(path):
            raise InitsuiteError(
                f"output path {text!r} exists and was not written by initsuite, which replaces "
                "only its own files: move it away or name a new file"
            )
        _check_writable(path, _nearest_existing(path.parent))
        return path
    if path.exists() and not path.is_dir():
        raise InitsuiteError(f"output path {text!r} exists and is not a directory")
    if mode == "append" and home is not None:
        _check_home(path, Path(home))
    # a killed writer's temporaries alone (a meta.json never published) hold no results
    if path.is_dir() and any(not LEFTOVER.fullmatch(e.name) for e in path.iterdir()):
        if mode == "new":
            raise InitsuiteError(*_holds_results(path))
        if mode == "replace":
            check_replaceable(path)
    # written inside; a new or replaced one also through a temporary sibling of its target
    places = [_nearest_existing(path)]
    if mode != "append":
        places.append(_nearest_existing(real_target(path).parent))
    for where in dict.fromkeys(places):
        _check_writable(path, where)
    return path


def _check_outside_results(path: Path, file: bool) -> None:
    """Raise when ``path`` lies inside a results directory (links resolved): its tables,
    chunks and figures are its writers' alone, and anything else there makes it foreign
    (unloadable, or not replaceable). A file directly in it may be one of its documents
    (``report.md``, ``compare.md``, ``report.html``), which a comparison may write."""
    full = Path(os.path.realpath(path))
    for parent in full.parents:
        kind = stored_kind(parent)
        if kind is None:
            continue
        if file and full.parent == parent and full.name in REPORT_FILES:
            return
        raise InitsuiteError(
            f"output path {str(path)!r} is inside the {kind} results directory "
            f"{_shown(parent)!r}, whose files are its own: choose a path outside it"
        )


def _shown(path: Path) -> str:
    """An absolute ``path`` as the user would write it: relative to the working directory
    when below it."""
    try:
        return str(path.relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(path)


def _check_home(path: Path, home: Path) -> None:
    """Raise when the directory ``path`` holds results other than those at ``home``."""
    kind = stored_kind(path)
    if kind is not None and _identity(path) != _identity(home):
        raise InitsuiteError(
            f"output directory {str(path)!r} holds the results of another run ({kind}): a "
            f"report goes into its own run's directory ({str(home)!r}) or one that holds no "
            "results"
        )


def _holds_results(path: Path) -> tuple[str | Arg, ...]:
    """The parts of the error for an output directory that holds results."""
    meta = stored_meta(path) or {}
    if (path / CHUNKS).is_dir() or (meta.get("kind") == "sweep" and meta.get("complete") is False):
        return (f"output directory {str(path)!r} holds a sweep: pass ", Arg("resume", True),
                " to continue it, ", Arg("overwrite", True), " to replace it, or choose a new ",
                Arg("out"))  # fmt: skip
    return (f"output directory {str(path)!r} already holds results; choose a new ", Arg("out"),
            " or pass ", Arg("overwrite", True), " to replace it")  # fmt: skip


def _name_max() -> int:
    try:
        return int(os.pathconf(".", "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # not POSIX, or no limit known
        return 255


def _check_names(path: Path) -> None:
    limit = _name_max()
    for part in path.parts:
        size = len(os.fsencode(part))
        room = limit - _MARGIN if part == path.name else limit
        if size > room:
            raise InitsuiteError(
                f"output path {_short(path)!r}: the name {_short(part)!r} is {size} bytes, at "
                f"most {room} fit (the filesystem allows {limit}, less room for temporary names)"
            )
    size = len(os.fsencode(os.path.abspath(path)))
    if size > 4096 - _MARGIN:
        raise InitsuiteError(f"output path {_short(path)!r} is {size} bytes long: too long")


def _short(text: object, n: int = 60) -> str:
    s = str(text)
    return s if len(s) <= n else s[: n - 1] + "…"


def _nearest_existing(path: Path) -> Path:
    """The nearest of ``path`` and its parents that exists; raise if a dangling link or a file
    stands where a directory must be."""
    p = path
    while True:
        if p.is_symlink() and not p.exists():
            raise InitsuiteError(
                f"output path {str(path)!r}: {str(p)!r} is a symbolic link to "
                f"{os.readlink(p)!r}, which does not exist"
            )
        if p.exists() or p == p.parent:
            break
        p = p.parent
    if p != path and not p.is_dir():
        raise InitsuiteError(f"output path {str(path)!r}: {str(p)!r} is a file, not a directory")
    return p


def _check_writable(path: Path, directory: Path) -> None:
    """Create and remove a file in ``directory``: a read-only or full filesystem, or a
    pseudo-filesystem such as /proc, fails here rather than after the compute."""
    if not directory.is_dir():
        return  # ``path`` itself is an existing file (mode "file"): its parent was checked
    try:
        fd, name = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=directory)
    except OSError as exc:
        raise InitsuiteError(
            f"cannot write {str(path)!r}: {exc.strerror or exc} (creating a file in "
            f"{str(directory)!r})"
        ) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)

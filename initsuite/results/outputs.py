"""Where initsuite may write: output paths checked before any compute, and which directories
initsuite wrote (the only ones ``overwrite`` may replace).

    >>> from initsuite.outputs import check_output
    >>> check_output("runs/demo", "new")  # doctest: +SKIP
    PosixPath('runs/demo')

:func:`check_output` is the one check every command runs on its output path before computing:
the path is not empty, no component is a file or a dangling link, no name is too long for the
filesystem, and the directories the write will use accept a new file (a file is created and
removed there). A directory is replaced only if its ``meta.json`` names a kind initsuite
writes and every entry in it is one that kind's writer makes (:func:`first_foreign`); never the
working directory or one holding it. Never imports torch.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal

from initsuite.core.errors import Arg, InitsuiteError, InitsuiteTypeError

__all__ = ["CHUNKS", "FIGURES", "HTML_MARK", "LAYOUTS", "META", "SWEEP_TABLES", "THEORY_DIR",
           "THEORY_TABLES", "Mode", "check_output",
           "check_owned", "check_replaceable", "first_foreign", "first_foreign_figure",
           "real_target"]  # fmt: skip

META = "meta.json"
FIGURE_DIR = "figures"
CHUNKS = "chunks"  # a sweep's cells, one chunk per group (initsuite.chunks)
THEORY_DIR = "theory"  # a sweep's theory tables, one chunk per grid it ran (initsuite.chunks)
REPORT_FILES = ("report.md", "compare.md", "report.html")
HTML_MARK = "<!DOCTYPE html>\n<!-- initsuite report"  # how a report.html initsuite wrote starts
STAGING = ".initsuite-report-"  # a report's temporary directory inside its output directory

# a sweep's measured tables (one chunk per group of cells), and its theory tables (computed once
# from its configuration: what its report draws without recomputing)
SWEEP_TABLES: tuple[str, ...] = ("cells", "layers", "timing")
THEORY_TABLES: tuple[str, ...] = ("theory", "phase_points", "phase_grid")

# the tables each kind of results directory holds: what its ``save`` writes beside meta.json
LAYOUTS: dict[str, tuple[str, ...]] = {
    "sweep": (*SWEEP_TABLES, *THEORY_TABLES),
    "training": ("training", "runs"),
    "probe": ("probe", "blocks"),
    "tutorial": ("tutorial", "layers"),
    "isometry": ("spectra",),
    "frameworks": ("layers", "runs", "training", "training_runs", "conventions"),
}

# every figure a report draws (initsuite.report: the sweep's, the tutorial's and the training's
# figures, initsuite.report.probe_report's, the isometry and frameworks studies'); a figures/
# directory holding another was not written by initsuite
FIGURES = frozenset({
    "std_vs_layer", "grad_std_vs_layer", "weight_grad_vs_layer", "divergence_heatmap",
    "final_std_distribution", "init_time_vs_width", "cosine_vs_layer", "phase_diagram",
    "jacobian_spectra", "tutorial_std_vs_layer", "training_loss", "training_steps", "probe_std",
    "probe_blocks", "probe_scaling", "probe_blocks_std", "probe_blocks_grad",
    "frameworks_final_std", "frameworks_sigma_w2", "frameworks_training",
})  # fmt: skip

Mode = Literal["new", "replace", "append", "file"]
_MODES = ("new", "replace", "append", "file")

_RANDOM = r"[a-z0-9_]{8}"  # the random part of tempfile's names
_PROBE = ".initsuite-probe-"
# what a killed atomic write (store.atomic_write_bytes) or writability probe leaves behind
_LEFTOVER = re.compile(
    rf"\.(meta\.json|report\.md|compare\.md|report\.html)\.{_RANDOM}|{re.escape(_PROBE)}\w+"
)
_FIGURE = re.compile(rf"(\.?)([a-z0-9_]+)\.png(\.{_RANDOM})?")  # or a killed write's temporary
_CHUNK = re.compile(r"[0-9a-f]{24}|\.tmp-.+")
_MARGIN = 32  # room for the temporary names made beside an output (".NAME.tmp-XXXXXXXX")


def check_output(out: str | os.PathLike[str], mode: Mode = "new") -> Path:
    """Raise :class:`InitsuiteError` unless ``out`` can be written; return it as a Path.

    Args:
        out: the output path.
        mode: ``"new"``: a directory that is absent or empty; ``"replace"``: also one that
            initsuite wrote (``overwrite``); ``"append"``: a directory written into as it is
            (``resume``, a report); ``"file"``: a file, replaced if it exists.
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
    if mode == "file":
        if path.is_dir():
            raise InitsuiteError(f"output path {text!r} is a directory: name a file")
        _check_writable(path, _nearest_existing(path.parent))
        return path
    if path.exists() and not path.is_dir():
        raise InitsuiteError(f"output path {text!r} exists and is not a directory")
    # a killed writer's temporaries alone (a meta.json never published) hold no results
    if path.is_dir() and any(not _LEFTOVER.fullmatch(e.name) for e in path.iterdir()):
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


def _holds_results(path: Path) -> tuple[str | Arg, ...]:
    """The parts of the error for an output directory that holds results."""
    meta = _meta(path) or {}
    if (path / CHUNKS).is_dir() or (meta.get("kind") == "sweep" and meta.get("complete") is False):
        return (f"output directory {str(path)!r} holds a sweep: pass ", Arg("resume", True),
                " to continue it, ", Arg("overwrite", True), " to replace it, or choose a new ",
                Arg("out"))  # fmt: skip
    return (f"output directory {str(path)!r} already holds results; choose a new ", Arg("out"),
            " or pass ", Arg("overwrite", True), " to replace it")  # fmt: skip


def real_target(path: Path) -> Path:
    """The directory a symbolic link ``path`` points to (its contents are what is replaced, the
    link is kept); ``path`` itself otherwise."""
    return path.resolve() if path.is_symlink() else path


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
        fd, name = tempfile.mkstemp(prefix=_PROBE, dir=directory)
    except OSError as exc:
        raise InitsuiteError(
            f"cannot write {str(path)!r}: {exc.strerror or exc} (creating a file in "
            f"{str(directory)!r})"
        ) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)


# --- which directories initsuite wrote ---------------------------------------------------------


def check_replaceable(path: str | os.PathLike[str]) -> None:
    """Raise unless the directory ``path`` (or the one a link ``path`` points to) may be
    replaced: initsuite wrote it, and it is not (and does not hold) the working directory."""
    target = real_target(Path(path))
    if not target.is_dir() or not any(target.iterdir()):
        return  # nothing to replace (a file is check_output's to refuse)
    cwd = Path.cwd().resolve()
    full = target.resolve()
    if full == cwd or full in cwd.parents:
        raise InitsuiteError(
            f"cannot replace {str(path)!r}: it is (or holds) the working directory; choose "
            "another output directory"
        )
    kind = _kind(target)
    if kind is not None:
        foreign = first_foreign(target, kind)
    else:  # name the first entry that makes it foreign; meta.json itself when alone
        entries = sorted(target.iterdir())
        foreign = next((e for e in entries if e.name != META), entries[0])
    if foreign is not None:
        why = "" if kind is not None else (
            f" (and no meta.json names a {', '.join(LAYOUTS)})")  # fmt: skip
        raise InitsuiteError(
            f"cannot replace {str(path)!r}: {str(foreign)!r} was not written by initsuite{why}; "
            "move it away or choose a new output directory"
        )


def _meta(path: Path) -> dict[str, Any] | None:
    """``path/meta.json`` when it is a regular file holding a JSON object."""
    meta_path = path / META
    if meta_path.is_symlink() or not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # unreadable, not UTF-8, not JSON
        return None
    return meta if isinstance(meta, dict) else None


def _kind(path: Path) -> str | None:
    """The ``kind`` in ``path/meta.json`` when it is one of :data:`LAYOUTS`."""
    kind = (_meta(path) or {}).get("kind")
    return kind if isinstance(kind, str) and kind in LAYOUTS else None


def first_foreign(path: Path, kind: str) -> Path | None:
    """The first entry of the ``kind`` directory ``path`` that its writers do not make (a
    symbolic link anywhere counts); None when every entry is initsuite's."""
    if kind not in LAYOUTS:
        raise InitsuiteError(f"unknown kind {kind!r} (choose from {', '.join(LAYOUTS)})")
    files = {META, *REPORT_FILES, *(f"{t}.parquet" for t in LAYOUTS[kind])}
    for entry in sorted(path.iterdir()):
        name = entry.name
        if entry.is_symlink():
            return entry
        if entry.is_file() and (name in files or _LEFTOVER.fullmatch(name)):
            bad = None if _ours_file(entry) else entry
        elif entry.is_dir() and name == FIGURE_DIR:
            bad = first_foreign_figure(entry)
        elif entry.is_dir() and name in (CHUNKS, THEORY_DIR) and kind == "sweep":
            bad = _first_foreign_chunk(entry)
        elif entry.is_dir() and name.startswith(STAGING):  # left by a killed report
            bad = _first_foreign_staging(entry)
        else:
            bad = entry
        if bad is not None:
            return bad
    return None


def _ours_file(path: Path) -> bool:
    """A Markdown file initsuite wrote starts with its heading, an HTML report with
    :data:`HTML_MARK`; other names are checked by name only."""
    marks = {".md": b"# initsuite", ".html": HTML_MARK.encode()}
    mark = marks.get(path.suffix)
    if mark is None:
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(len(mark)) == mark
    except OSError:
        return False


def first_foreign_figure(path: Path, names: Collection[str] = FIGURES) -> Path | None:
    """The first entry of a figures directory that is not a PNG of one of ``names`` (or what a
    killed write of one leaves), or is a link; None when there is none."""
    for entry in sorted(path.iterdir()):
        match = _FIGURE.fullmatch(entry.name)
        if entry.is_symlink() or not entry.is_file() or match is None:
            return entry
        if match.group(2) not in names:
            return entry
    return None


def _first_foreign_chunk(path: Path) -> Path | None:
    for entry in sorted(path.iterdir()):
        if entry.is_symlink() or not entry.is_dir() or not _CHUNK.fullmatch(entry.name):
            return entry
        for f in sorted(entry.iterdir()):  # tables and their manifest
            if f.is_symlink() or not f.is_file() or f.suffix not in (".parquet", ".json"):
                return f
    return None


def _first_foreign_staging(path: Path) -> Path | None:
    for entry in sorted(path.iterdir()):
        if entry.is_symlink():
            return entry
        if entry.is_dir() and entry.name == FIGURE_DIR:
            bad = first_foreign_figure(entry)
            if bad is not None:
                return bad
        elif not (
            entry.is_file()
            and _ours_file(entry)
            and (entry.name in REPORT_FILES or _LEFTOVER.fullmatch(entry.name))
        ):
            return entry
    return None


def check_owned(out: Path, owned: Mapping[str, Collection[str] | None]) -> None:
    """Raise unless each entry of ``out`` named in ``owned`` is absent or one initsuite wrote:
    a regular file (a Markdown file starting ``# initsuite``) where ``owned`` says None, a
    real directory holding only the figures named in its collection otherwise."""
    for name, inside in owned.items():
        entry = out / name
        if not (entry.exists() or entry.is_symlink()):
            continue
        if inside is None:
            ok = not entry.is_symlink() and entry.is_file() and _ours_file(entry)
            bad = None if ok else entry
        elif entry.is_symlink() or not entry.is_dir():
            bad = entry
        else:
            bad = first_foreign_figure(entry, inside)
        if bad is not None:
            raise InitsuiteError(
                f"{str(bad)!r} was not written by initsuite (a link, or a file initsuite does "
                "not make) and would be replaced: move it away or choose another output "
                "directory"
            )

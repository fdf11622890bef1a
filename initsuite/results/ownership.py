"""Which files and directories initsuite wrote: the only ones ``overwrite`` or a report may
replace. A file is recognised by its content (:func:`written_by_initsuite`), a directory by
its ``meta.json`` and its entries (:func:`first_foreign`). Never imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from initsuite.core.errors import InitsuiteError
from initsuite.results.layout import (
    CHUNK_ENTRY,
    CHUNKS,
    FIGURE_DIR,
    FIGURE_FILE,
    FIGURES,
    HTML_MARK,
    LAYOUTS,
    LEFTOVER,
    MD_MARK,
    MD_TITLE,
    META,
    PNG_SOFTWARE,
    REPORT_FILES,
    STAGING,
    THEORY_DIR,
)
from initsuite.results.reading import read_json

__all__ = [
    "check_owned",
    "check_replaceable",
    "first_foreign",
    "first_foreign_figure",
    "real_target",
    "stored_kind",
    "stored_meta",
    "written_by_initsuite",
]


def real_target(path: Path) -> Path:
    """The directory a symbolic link ``path`` points to (its contents are what is replaced, the
    link is kept); ``path`` itself otherwise."""
    return path.resolve() if path.is_symlink() else path


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
    kind = stored_kind(target)
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


def stored_meta(path: Path) -> dict[str, Any] | None:
    """``path/meta.json`` when it is a regular file holding a JSON object."""
    meta_path = path / META
    if meta_path.is_symlink() or not meta_path.is_file():
        return None
    try:  # regular files only, size and nesting capped: a FIFO or a deep nest is no meta.json
        meta = read_json(meta_path)
    except InitsuiteError:  # unreadable, not UTF-8, not JSON
        return None
    return meta if isinstance(meta, dict) else None


def stored_kind(path: Path) -> str | None:
    """The ``kind`` in ``path/meta.json`` when it is one of
    :data:`~initsuite.results.layout.LAYOUTS`."""
    kind = (stored_meta(path) or {}).get("kind")
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
        if entry.is_file() and (name in files or LEFTOVER.fullmatch(name)):
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


def written_by_initsuite(path: str | os.PathLike[str]) -> bool:
    """Whether the file ``path`` is one initsuite wrote, by its content: a regular file (not a
    link) holding Markdown that starts with one of its titles (``# initsuite report: ...``,
    ``# initsuite compare: ...``), an HTML page that starts with
    :data:`~initsuite.results.layout.HTML_MARK`, or a PNG whose ``Software`` text starts with
    :data:`~initsuite.results.layout.PNG_SOFTWARE` (as
    :func:`initsuite.report.save_figure` writes it)."""
    p = Path(path)
    if p.is_symlink() or not p.is_file():
        return False
    try:
        with open(p, "rb") as fh:
            head = fh.read(_HEAD)
    except OSError:
        return False
    if MD_TITLE.match(head) or head.startswith(HTML_MARK.encode()):
        return True
    return _png_software(head).startswith(PNG_SOFTWARE.encode())


_HEAD = 4096  # bytes read to recognise a file: matplotlib writes its text chunks first
_PNG = b"\x89PNG\r\n\x1a\n"


def _png_software(head: bytes) -> bytes:
    """The ``Software`` text chunk of the PNG that ``head`` begins (b"" if none is there)."""
    if not head.startswith(_PNG):
        return b""
    at = len(_PNG)
    while at + 8 <= len(head):
        size, kind = int.from_bytes(head[at : at + 4], "big"), head[at + 4 : at + 8]
        if kind == b"IDAT":  # the image data: text chunks come before it
            break
        if kind == b"tEXt":
            key, _, value = head[at + 8 : at + 8 + size].partition(b"\0")
            if key == b"Software":
                return value
        at += 12 + size  # length, type, data, CRC
    return b""


def _ours_file(path: Path) -> bool:
    """A Markdown file initsuite wrote starts with its heading, an HTML report with
    :data:`HTML_MARK`; other names are checked by name only."""
    marks = {".md": MD_MARK.encode(), ".html": HTML_MARK.encode()}
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
        match = FIGURE_FILE.fullmatch(entry.name)
        if entry.is_symlink() or not entry.is_file() or match is None:
            return entry
        if match.group(2) not in names:
            return entry
    return None


def _first_foreign_chunk(path: Path) -> Path | None:
    for entry in sorted(path.iterdir()):
        if entry.is_symlink() or not entry.is_dir() or not CHUNK_ENTRY.fullmatch(entry.name):
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
            and (entry.name in REPORT_FILES or LEFTOVER.fullmatch(entry.name))
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

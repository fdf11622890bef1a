"""Where initsuite may write: output paths checked before any compute, and which directories
initsuite wrote (the only ones ``overwrite`` may replace).

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
(:func:`written_by_initsuite`); a directory only if its ``meta.json`` names a kind initsuite
writes and every entry in it is one that kind's writer makes (:func:`first_foreign`); never the
working directory or one holding it. Never imports torch.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal

from initsuite.core.errors import Arg, InitsuiteError, InitsuiteTypeError
from initsuite.results.reading import read_json

__all__ = ["CHUNKS", "FIGURES", "HTML_MARK", "LAYOUTS", "META", "PNG_SOFTWARE", "SWEEP_TABLES",
           "THEORY_DIR", "THEORY_TABLES", "Mode", "check_output", "check_outputs",
           "check_owned", "check_replaceable", "first_foreign", "first_foreign_figure",
           "real_target", "written_by_initsuite"]  # fmt: skip

META = "meta.json"
FIGURE_DIR = "figures"
CHUNKS = "chunks"  # a sweep's cells, one chunk per group (initsuite.results.chunks)
# a sweep's theory tables, one chunk per grid it ran (initsuite.results.chunks)
THEORY_DIR = "theory"
REPORT_FILES = ("report.md", "compare.md", "report.html")
HTML_MARK = "<!DOCTYPE html>\n<!-- initsuite report"  # how a report.html initsuite wrote starts
MD_MARK = "# initsuite"  # how a Markdown file initsuite wrote starts (its title)
# the titles of the Markdown documents initsuite writes: a report, a study's report, a
# comparison, a probe's report (a user's "# initsuite notes" is not one)
_MD_TITLE = re.compile(rb"# initsuite (?:[a-z]+ )?(?:report|compare|probe): ")
PNG_SOFTWARE = "initsuite"  # how the "Software" text of a PNG figure initsuite wrote starts
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
    "frameworks_final_std", "frameworks_sigma_w2", "frameworks_training", "verdict",
})  # fmt: skip

Mode = Literal["new", "replace", "append", "file", "update"]
_MODES = ("new", "replace", "append", "file", "update")

_RANDOM = r"[a-z0-9_]{8}"  # the random part of tempfile's names
_PROBE = ".initsuite-probe-"
# what a killed atomic write (store.atomic_write_bytes) or writability probe leaves behind
_LEFTOVER = re.compile(
    rf"\.(meta\.json|report\.md|compare\.md|report\.html)\.{_RANDOM}|{re.escape(_PROBE)}\w+"
)
_FIGURE = re.compile(rf"(\.?)([a-z0-9_]+)\.png(\.{_RANDOM})?")  # or a killed write's temporary
_CHUNK = re.compile(r"[0-9a-f]{24}|\.tmp-.+")
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


def _check_outside_results(path: Path, file: bool) -> None:
    """Raise when ``path`` lies inside a results directory (links resolved): its tables,
    chunks and figures are its writers' alone, and anything else there makes it foreign
    (unloadable, or not replaceable). A file directly in it may be one of its documents
    (``report.md``, ``compare.md``, ``report.html``), which a comparison may write."""
    full = Path(os.path.realpath(path))
    for parent in full.parents:
        kind = _kind(parent)
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
    kind = _kind(path)
    if kind is not None and _identity(path) != _identity(home):
        raise InitsuiteError(
            f"output directory {str(path)!r} holds the results of another run ({kind}): a "
            f"report goes into its own run's directory ({str(home)!r}) or one that holds no "
            "results"
        )


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
    try:  # regular files only, size and nesting capped: a FIFO or a deep nest is no meta.json
        meta = read_json(meta_path)
    except InitsuiteError:  # unreadable, not UTF-8, not JSON
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


def written_by_initsuite(path: str | os.PathLike[str]) -> bool:
    """Whether the file ``path`` is one initsuite wrote, by its content: a regular file (not a
    link) holding Markdown that starts with one of its titles (``# initsuite report: ...``,
    ``# initsuite compare: ...``), an HTML page that starts with :data:`HTML_MARK`, or a PNG
    whose ``Software`` text starts with :data:`PNG_SOFTWARE` (as
    :func:`initsuite.report.save_figure` writes it)."""
    p = Path(path)
    if p.is_symlink() or not p.is_file():
        return False
    try:
        with open(p, "rb") as fh:
            head = fh.read(_HEAD)
    except OSError:
        return False
    if _MD_TITLE.match(head) or head.startswith(HTML_MARK.encode()):
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

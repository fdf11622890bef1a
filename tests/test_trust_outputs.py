"""One output policy for every command (issue 27, items 5 to 8, and the output-related
tracebacks and messages): every flag that names a file or directory to write goes through
:func:`initsuite.results.outputs.check_output`, which never replaces a file initsuite did not
write, refuses paths inside a results directory, and refuses one path given for two outputs.

``test_every_output_flag_goes_through_the_check`` walks the command-line parser: an option
that names a path and is not listed as read-only must be refused when it points at a user's
file, into a results directory or onto its meta.json, so a new output flag that skips the
check fails it. Sweeps here are tiny (two schemes, tanh, depth 3, width 8, one seed).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_cli

import initsuite
from initsuite.cli import _build_parser, main
from initsuite.core.errors import InitsuiteTypeError
from initsuite.report import save_figure
from initsuite.results.outputs import check_outputs
from initsuite.results.ownership import written_by_initsuite
from initsuite.results.sweep import SweepResult

SWEEP = ["--schemes", "xavier_uniform,kaiming_normal", "--activations", "tanh", "--depths", "3",
         "--widths", "8", "--seeds", "1", "--no-timing", "--quiet"]  # fmt: skip
NOTES = "a user's notes\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny chunked sweeps, A and B, that the tests read (and must leave as they are)."""
    root = tmp_path_factory.mktemp("outputs")
    for name in ("A", "B"):
        assert main(["sweep", *SWEEP, "--out", str(root / name)]) == 0
    return {"A": root / "A", "B": root / "B"}


def tree(*roots: Path) -> dict[str, str]:
    """Every entry under ``roots``: a directory, a link, or a file's content hash."""
    out = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_symlink() or not path.is_file():
                out[str(path)] = "link" if path.is_symlink() else "dir"
            else:
                out[str(path)] = hashlib.sha1(path.read_bytes()).hexdigest()
    return out


def refused(code: int, err: str, *needles: str) -> None:
    """Exit 2 with one line on stderr, no traceback, holding each of ``needles``."""
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    for needle in needles:
        assert needle in lines[0], lines[0]


# --- the parser walk: every output flag goes through the check -------------------------------

# options that name a path initsuite only reads
READS = {("report", "--tutorial"), ("report", "--training"), ("report", "--compare"),
         ("report", "--benchmarks"), ("report", "--benchmarks-previous")}  # fmt: skip
# a valid command line of each command that writes (a run needs only its output flag added);
# {A}, {B}: the stored sweeps
BASE = {
    "phase": ["phase", "--activation", "relu", "--schemes", "normal"],
    "sweep": ["sweep", *SWEEP],
    "train": ["train", "--schemes", "kaiming_normal", "--depth", "2", "--width", "4", "--seeds",
              "1", "--steps", "1", "--quiet"],
    "probe": ["probe", "no_such_module:f", "--input-shape", "2,3", "--quiet"],
    "coordcheck": ["coordcheck", "--parametrizations", "sp", "--widths", "8", "--steps", "1",
                   "--seeds", "1", "--quiet"],
    "cmap": ["cmap", "--net", "relu", "kaiming_normal", "--depths", "2", "--widths", "4",
             "--seeds", "1", "--quiet"],
    "report": ["report", "{A}"],
    "compare": ["compare", "{A}", "{B}"],
    "reproduce": ["reproduce", "tutorial", "--quiet"],
    "conventions": ["conventions", "torch"],
}  # fmt: skip
# what says an option names a path: its name or metavar, or a verb or noun in its help
_PATH_NAME = re.compile(r"(^|_)(out|output|html|file|dir|path)(_|$)|FILE|DIR|PATH")
_PATH_HELP = re.compile(r"\b(write|writes|save|saves|file|directory|folder)\b", re.IGNORECASE)


def path_options() -> list[tuple[str, str]]:
    """(command, flag) of every option that looks like it names a path (its name, metavar or
    help says so), read-only ones (:data:`READS`) left out."""
    _, commands = _build_parser()
    found = []
    for name, parser in commands.items():
        for action in parser._actions:
            if not action.option_strings or action.nargs == 0:
                continue  # positionals are the inputs; switches name no path
            flag = action.option_strings[-1]
            named = _PATH_NAME.search(action.dest) or _PATH_NAME.search(str(action.metavar or ""))
            if (named or _PATH_HELP.search(action.help or "")) and (name, flag) not in READS:
                found.append((name, flag))
    return found


def test_the_parser_walk_finds_every_known_output_flag() -> None:
    """The heuristic of :func:`path_options` finds the output flags there are today, and a
    command line to run each with (a new command with an output needs one in :data:`BASE`)."""
    found = set(path_options())
    assert found >= {("phase", "--out"), ("sweep", "--out"), ("train", "--out"),
                     ("probe", "--out"), ("coordcheck", "--out"), ("cmap", "--out"),
                     ("report", "--out"),
                     ("compare", "--out"),
                     ("compare", "--html"), ("reproduce", "--out"),
                     ("conventions", "--html")}  # fmt: skip
    assert {command for command, _ in found} <= set(BASE), "add the command to BASE"


def test_every_output_flag_goes_through_the_check(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Each output flag pointed at a user's file, inside a results directory, or at its
    meta.json is refused (exit 2, one line naming the path) and nothing changes; a command
    with several output flags given one path for all is refused too."""
    monkeypatch.chdir(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text(NOTES)
    A = runs["A"]
    targets = [str(notes), str(A / "chunks" / "new"), str(A / "meta.json")]
    before = tree(tmp_path, *runs.values())
    by_command: dict[str, list[str]] = {}
    for command, flag in path_options():
        by_command.setdefault(command, []).append(flag)
        base = [a.format(**runs) for a in BASE[command]]
        for target in targets:  # refused by initsuite (not argparse), naming the path
            code, _, err = run_cli([*base, flag, target], capsys)
            refused(code, err, "initsuite: error: ", target)
    for command, flags in by_command.items():
        if len(flags) > 1:
            same = str(tmp_path / "same.out")
            args = [a.format(**runs) for a in BASE[command]]
            for flag in flags:
                args += [flag, same]
            refused(*run_cli(args, capsys)[::2], "name the same path")
    assert tree(tmp_path, *runs.values()) == before


# --- items 5 to 8 ----------------------------------------------------------------------------


def test_compare_html_onto_a_runs_meta_json_is_refused(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 5: ``compare A B --html A/meta.json`` turned A's meta.json into HTML (exit 0)."""
    A, B = runs["A"], runs["B"]
    before = tree(A)
    code, _, err = run_cli(["compare", str(A), str(B), "--html", str(A / "meta.json")], capsys)
    refused(code, err, "meta.json", "inside the sweep results directory")
    assert tree(A) == before
    assert len(SweepResult.load(A).cells) == 2


@pytest.mark.parametrize(
    ("args", "name"),
    [(["compare", "{A}", "{B}", "--out"], "notes.txt"),
     (["conventions", "torch", "--html"], "notes.txt"),
     (["phase", "--activation", "relu", "--schemes", "normal", "--out"], "notes.png")],
    ids=["compare", "conventions", "phase"],
)  # fmt: skip
def test_an_existing_user_file_is_never_replaced(
    args: list[str], name: str, runs: dict[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Item 6: these overwrote notes.txt without a check."""
    notes = tmp_path / name
    notes.write_text(NOTES)
    code, _, err = run_cli([*(a.format(**runs) for a in args), str(notes)], capsys)
    refused(code, err, name, "was not written by initsuite")
    assert notes.read_text() == NOTES
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("name", ["phase.pdf", "phase.txt", "phase"])
def test_a_figure_is_written_only_to_a_png_name(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """phase --out x.pdf wrote PNG bytes under a PDF name."""
    code, out, err = run_cli(["phase", "--activation", "relu", "--schemes", "normal", "--out",
                              str(tmp_path / name)], capsys)  # fmt: skip
    refused(code, err, name, "name a file ending .png")
    assert out == "" and not any(tmp_path.iterdir())


def test_a_file_initsuite_wrote_is_replaced(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The other side of item 6: a comparison, a page or a figure initsuite wrote is
    recognised by its content (whatever its name) and replaced; a PNG it did not write is
    not."""
    md, page = tmp_path / "cmp.txt", tmp_path / "cmp.html"
    args = ["compare", str(runs["A"]), str(runs["B"]), "--out", str(md), "--html", str(page)]
    for _ in range(2):
        code, out, err = run_cli(args, capsys)
        assert code == 0 and f"wrote {md} and {page}" in out, err
    assert written_by_initsuite(md) and written_by_initsuite(page)
    from matplotlib.figure import Figure

    png = tmp_path / "p.png"
    for _ in range(2):
        save_figure(Figure(figsize=(1, 1)), png)
    assert written_by_initsuite(png)
    theirs = tmp_path / "theirs.png"
    Figure(figsize=(1, 1)).savefig(theirs, format="png")  # matplotlib's own mark
    data = theirs.read_bytes()
    with pytest.raises(initsuite.InitsuiteError, match="not written by initsuite"):
        save_figure(Figure(figsize=(1, 1)), theirs)
    assert theirs.read_bytes() == data
    (tmp_path / "notes.md").write_text("# initsuite notes\n")  # a user's, despite its title
    assert not written_by_initsuite(tmp_path / "notes.md")


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["compare", "{B}", "{B}", "--out", "{B}/chunks/x.md"], "inside the sweep results"),
     (["report", "{A}", "--out", "{A}/chunks/rr"], "inside the sweep results"),
     (["report", "{A}", "--out", "{B}"], "holds the results of another run"),
     (["report", "{A}", "--out", "{A}/sub"], "inside the sweep results"),
     (["sweep", *SWEEP, "--out", "{A}/chunks/s"], "inside the sweep results")],
    ids=["compare-into-chunks", "report-into-chunks", "report-into-another-run",
         "report-below-its-run", "sweep-into-chunks"],
)  # fmt: skip
def test_nothing_is_written_inside_a_results_directory(
    args: list[str], needle: str, runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Item 7: these wrote inside another results directory and made it unloadable."""
    before = tree(*runs.values())
    refused(*run_cli([a.format(**runs) for a in args], capsys)[::2], needle)
    assert tree(*runs.values()) == before


def test_a_report_and_a_comparison_write_a_runs_own_documents(
    runs: dict[str, Path], tmp_path: Path, fast_figures: None,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Inside a results directory: its own report, and its compare.md (a document the
    directory may hold); it still loads and stays replaceable."""
    run = tmp_path / "run"
    shutil.copytree(runs["B"], run)
    code, _, err = run_cli(["compare", str(runs["A"]), str(run), "--out",
                            str(run / "compare.md")], capsys)  # fmt: skip
    assert code == 0, err
    code, _, err = run_cli(["report", str(run), "--out", str(run)], capsys)
    assert code == 0, err
    assert {"compare.md", "report.md", "figures"} <= {p.name for p in run.iterdir()}
    assert main(["sweep", *SWEEP, "--out", str(run), "--overwrite"]) == 0


@pytest.mark.parametrize("html", ["x.md", "./x.md", "here/x.md"])
def test_one_path_for_two_outputs_is_refused(
    html: str, runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Item 8: ``--out x.md --html x.md`` said "wrote x.md and x.md", the page replacing the
    Markdown; the same file by another spelling or through a link is the same path."""
    monkeypatch.chdir(tmp_path)
    Path("here").symlink_to(".")
    code, out, err = run_cli(["compare", str(runs["A"]), str(runs["B"]), "--out", "x.md",
                              "--html", html], capsys)  # fmt: skip
    refused(code, err, "--out and --html name the same path")
    assert out == "" and os.listdir() == ["here"]


# --- tracebacks and misleading messages ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "spelt"),
    [(["phase", "--activation", "relu", "--schemes", "normal"], b"critical sigma_w^2 (chi1 = 1)"),
     (["gains"], b"keeps q = E[h^2] at 1")],
    ids=["phase", "gains"],
)  # fmt: skip
def test_an_ascii_standard_output_gets_ascii_spellings(
    args: list[str], spelt: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``PYTHONIOENCODING=ascii initsuite phase`` (or ``gains``) raised UnicodeEncodeError."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii")  # errors="strict", as Python opens it
    monkeypatch.setattr(sys, "stdout", stream)
    assert main(args) == 0
    stream.flush()
    assert spelt in raw.getvalue()


def test_a_full_standard_output_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``initsuite conventions > /dev/full`` said "cannot write None"."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    for args in (["conventions"], ["gains"]):  # one fails in a write, one in the last flush
        full = open("/dev/full", "w", encoding="utf-8")  # noqa: SIM115 (closed below)
        monkeypatch.setattr(sys, "stdout", full)
        code = main(args)
        monkeypatch.undo()
        with contextlib.suppress(OSError):
            full.close()
        assert code == 2, args
        refused(code, capsys.readouterr().err, "cannot write standard output: No space left")


def test_an_unknown_matplotlib_backend_is_one_line(runs: dict[str, Path], tmp_path: Path) -> None:
    """``MPLBACKEND=nope initsuite report DIR`` raised matplotlib's ValueError (a process of
    its own: matplotlib reads the variable when first imported)."""
    env = {
        **os.environ,
        "MPLBACKEND": "nope",
        "PYTHONPATH": str(Path(initsuite.__file__).parents[1]),
    }
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "initsuite", "report", str(runs["A"]), "--out",
                           str(out)], env=env, capture_output=True, text=True)  # fmt: skip
    refused(proc.returncode, proc.stderr, "MPLBACKEND='nope'", "set it to agg")
    assert not out.exists()


@pytest.mark.parametrize("out", [5, b"x"])
def test_an_api_output_of_the_wrong_type_is_a_type_error(out: object) -> None:
    """``sweep(..., out_dir=5)`` and ``out_dir=b"x"`` raised pathlib's TypeError."""
    with pytest.raises(InitsuiteTypeError, match="output path must be a str or Path"):
        initsuite.sweep(["xavier_uniform"], ["tanh"], depths=[3], widths=[8], timing=False,
                        out_dir=out)  # type: ignore[arg-type]  # fmt: skip
    with pytest.raises(InitsuiteTypeError, match="output path must be a str or Path"):
        check_outputs({"out": (out, "file")})  # type: ignore[dict-item]


def test_compare_with_gates_of_the_wrong_type_is_a_type_error(runs: dict[str, Path]) -> None:
    """``compare(r, r, 5)`` raised AttributeError."""
    r = SweepResult.load(runs["A"])
    with pytest.raises(InitsuiteTypeError, match="gates must be text such as"):
        initsuite.compare(r, r, gates=5)  # type: ignore[arg-type]


@pytest.mark.parametrize("flag", [[], ["--overwrite"]], ids=["new", "overwrite"])
def test_an_output_directory_with_a_deeply_nested_meta_json_is_one_line(
    flag: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The output check read a meta.json nested 200000 deep with json.loads: RecursionError."""
    out = tmp_path / "D"
    out.mkdir()
    text = '{"kind": ' + "[" * 200_000 + "]" * 200_000 + "}"
    (out / "meta.json").write_text(text)
    code, _, err = run_cli(["sweep", *SWEEP, "--out", str(out), *flag], capsys)
    refused(code, err, "'" + str(out))
    assert (out / "meta.json").read_text() == text and len(list(out.iterdir())) == 1

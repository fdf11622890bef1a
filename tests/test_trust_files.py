"""Output paths and results directories under hostile conditions (issue 12, items 1, 2, 8,
13, 15, 17, 18, 21): ``--overwrite`` replaces only what initsuite wrote, reports never write
through a link and are written all or nothing, a bad or unwritable ``--out`` is one line
before any compute, and a kill at any write step of ``--overwrite`` keeps either the old
results or the new ones, whole.

Figures are stubbed where the file handling is under test (drawing them takes tens of
seconds here); ``tests/test_report.py`` covers the real ones.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from helpers import run_cli

import initsuite.report.probe_models as PM
import initsuite.report.probe_report as RP
import initsuite.report.sweep as R
from initsuite.cli import main
from initsuite.core.errors import InitsuiteError
from initsuite.report import PartialReportWarning, plan, write_report
from initsuite.results import layout, store
from initsuite.results.sweep import SweepResult

SMALL = ["--activations", "relu", "--depths", "2", "--widths", "4", "--no-timing", "--quiet"]


def _sweep(out: Path | str, *extra: str, schemes: str = "kaiming_normal") -> list[str]:
    return ["sweep", "--schemes", schemes, *SMALL, "--out", str(out), *extra]


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def _tree(root: Path) -> dict[str, object]:
    """Every entry under ``root``: a file's bytes, a link's target, None for a directory."""
    out: dict[str, object] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            p = Path(dirpath) / name
            key = str(p.relative_to(root))
            if p.is_symlink():
                out[key] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[key] = None
            else:
                out[key] = p.read_bytes()
    return out


def _same_tables(a: SweepResult, b: SweepResult) -> bool:
    try:
        for t in ("cells", "layers", "timing"):
            pd.testing.assert_frame_equal(getattr(a, t), getattr(b, t))
    except AssertionError:
        return False
    return True


@pytest.fixture(scope="module")
def old_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sweep written by ``initsuite sweep --out`` (in chunks), to be copied and replaced."""
    out = tmp_path_factory.mktemp("old") / "sweep"
    assert main(_sweep(out, schemes="zeros")) == 0
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    """What ``_sweep(...)`` stores when nothing goes wrong."""
    out = tmp_path_factory.mktemp("clean") / "sweep"
    assert main(_sweep(out)) == 0
    return SweepResult.load(out)


@pytest.fixture
def sweep_dir(old_sweep: Path, tmp_path: Path) -> Path:
    out = tmp_path / "work" / "run"
    shutil.copytree(old_sweep, out)
    return out


# --- item 1: --overwrite replaces only what initsuite wrote ------------------------------------


def _plain_dir(d: Path) -> Path:
    d.mkdir(parents=True)
    (d / "thesis.tex").write_text("years of work")
    return d / "thesis.tex"


def _sweep_plus_file(d: Path) -> Path:
    (d / "thesis.tex").write_text("years of work")
    return d / "thesis.tex"


def _user_png(d: Path) -> Path:
    (d / "figures").mkdir()
    (d / "figures" / "std_vs_layer.png").write_bytes(b"ours")
    (d / "figures" / "my_plot.png").write_bytes(b"theirs")
    return d / "figures" / "my_plot.png"


def _figures_link(d: Path) -> Path:
    elsewhere = d.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "std_vs_layer.png").write_bytes(b"theirs")
    (d / "figures").symlink_to(elsewhere)
    return d / "figures"


def _foreign_chunk_file(d: Path) -> Path:
    chunk = next((d / "chunks").iterdir())
    (chunk / "notes.txt").write_text("theirs")
    return chunk / "notes.txt"


def _meta_not_initsuite(d: Path) -> Path:
    (d / "meta.json").write_text("[]")
    return d / "cells.parquet" if (d / "cells.parquet").exists() else d / "chunks"


@pytest.mark.parametrize(
    "plant",
    [_plain_dir, _sweep_plus_file, _user_png, _figures_link, _foreign_chunk_file,
     _meta_not_initsuite],
)  # fmt: skip
def test_overwrite_refuses_what_initsuite_did_not_write(
    plant: Callable[[Path], Path],
    old_sweep: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "run"
    if plant is not _plain_dir:
        shutil.copytree(old_sweep, out)
    foreign = plant(out)
    before = _tree(tmp_path)
    code, _, err = run_cli(_sweep(out, "--overwrite"), capsys)
    assert_one_line_error(code, err, "cannot replace", repr(str(foreign)), "not written by")
    assert _tree(tmp_path) == before


def test_probe_overwrite_refuses_a_foreign_directory_before_building_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = _plain_dir(tmp_path / "d")
    before = _tree(tmp_path)
    # the factory does not even exist: the output is checked first
    args = ["probe", "no_such_module:f", "--input-shape", "2,3", "--out", str(foreign.parent),
            "--overwrite"]  # fmt: skip
    code, _, err = run_cli(args, capsys)
    assert_one_line_error(code, err, "thesis.tex", "not written by")
    assert _tree(tmp_path) == before


@pytest.mark.parametrize(("cwd", "out"), [(".", "."), ("chunks", ".."), (".", "../run")])
def test_overwrite_refuses_the_working_directory(
    cwd: str,
    out: str,
    sweep_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(sweep_dir / cwd)
    before = _tree(sweep_dir.parent)
    code, _, err = run_cli(_sweep(out, "--overwrite"), capsys)
    assert_one_line_error(code, err, "working directory")
    assert _tree(sweep_dir.parent) == before


def _kind_dir(kind: str, out: Path) -> None:
    """A directory of ``kind`` written by that kind's own ``save``, with a report in it."""
    from initsuite.results.isometry import IsometryResult
    from initsuite.results.probe import ProbeResult
    from initsuite.results.training import TrainingResult
    from initsuite.results.tutorial import TutorialResult

    df = pd.DataFrame({"x": [1.0]})
    meta = {"kind": kind}
    if kind == "training":
        TrainingResult(df, df, meta).save(out)
    elif kind == "probe":
        ProbeResult(df, meta).save(out)
    elif kind == "tutorial":
        TutorialResult(df, df, meta).save(out)
    elif kind == "isometry":
        IsometryResult(df, meta).save(out)
    else:
        raise ValueError(kind)
    (out / "report.md").write_text("# initsuite probe: x\n")
    (out / "figures").mkdir()
    (out / "figures" / "probe_std.png").write_bytes(b"png")


@pytest.mark.parametrize("kind", ["training", "probe", "tutorial", "isometry"])
def test_overwrite_replaces_every_kind_initsuite_writes(kind: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    _kind_dir(kind, out)
    assert store.check_target(out, overwrite=True) == out
    store.write(out, {"new": pd.DataFrame({"y": [2]})}, {"kind": kind}, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "new.parquet"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_overwrite_replaces_a_sweep_with_its_report_and_leftovers(
    sweep_dir: Path, clean: SweepResult, capsys: pytest.CaptureFixture[str]
) -> None:
    """A chunked sweep with a report, a compare.md and what killed writers leave (a chunk's
    temporary directory, a half-written meta.json, a report's staging directory)."""
    (sweep_dir / "report.md").write_text("# initsuite report: run\n")
    (sweep_dir / "compare.md").write_text("# initsuite compare: a → b\n")
    (sweep_dir / "figures").mkdir()
    for name in layout.FIGURES:
        (sweep_dir / "figures" / f"{name}.png").write_bytes(b"png")
    (sweep_dir / ".meta.json.ab12cd_9").write_text("{")
    (sweep_dir / "chunks" / ".tmp-0123-abcdefgh").mkdir()
    (sweep_dir / "chunks" / ".tmp-0123-abcdefgh" / "cells.parquet").write_bytes(b"half")
    (sweep_dir / f"{layout.STAGING}k2j4h5g6" / "figures").mkdir(parents=True)
    code, _, err = run_cli(_sweep(sweep_dir, "--overwrite"), capsys)
    assert code == 0, err
    assert _same_tables(SweepResult.load(sweep_dir), clean)
    assert sorted(p.name for p in sweep_dir.parent.iterdir()) == ["run"]


def test_every_figure_a_report_draws_is_known_to_the_overwrite_check() -> None:
    from initsuite.report.captions import CAPTIONED
    from initsuite.report.cmap import CMAP_FIGURE
    from initsuite.report.coord_report import COORD_FIGURES
    from initsuite.report.frameworks import FRAMEWORKS_FIGURES
    from initsuite.report.isometry import ISOMETRY_FIGURE
    from initsuite.report.kernel_shaping import KERNEL_SHAPING_FIGURE
    from initsuite.report.mutransfer import MUTRANSFER_FIGURES
    from initsuite.report.training import TRAINING_FIGURES
    from initsuite.report.tutorial import TUTORIAL_FIGURE
    from initsuite.report.verdict import VERDICT_FIGURE

    drawn = {VERDICT_FIGURE, *CAPTIONED, TUTORIAL_FIGURE, *TRAINING_FIGURES, RP.PROBE_FIGURE,
             RP.BLOCKS_FIGURE, PM.SCALING_FIGURE, PM.BLOCK_STD_FIGURE, PM.BLOCK_GRAD_FIGURE,
             ISOMETRY_FIGURE, *FRAMEWORKS_FIGURES, *COORD_FIGURES,
             *MUTRANSFER_FIGURES, CMAP_FIGURE, KERNEL_SHAPING_FIGURE}  # fmt: skip
    assert drawn == set(layout.FIGURES)


# --- item 18: a symbolic link as --out ---------------------------------------------------------


def test_overwrite_through_a_link_replaces_its_target_and_keeps_the_link(
    sweep_dir: Path, clean: SweepResult, capsys: pytest.CaptureFixture[str]
) -> None:
    link = sweep_dir.parent / "latest"
    link.symlink_to("run")
    code, _, err = run_cli(_sweep(link, "--overwrite"), capsys)
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == "run"
    assert _same_tables(SweepResult.load(sweep_dir), clean)
    assert sorted(p.name for p in sweep_dir.parent.iterdir()) == ["latest", "run"]


def test_overwrite_through_a_link_to_a_foreign_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = _plain_dir(tmp_path / "d")
    (tmp_path / "link").symlink_to(foreign.parent)
    before = _tree(tmp_path)
    code, _, err = run_cli(_sweep(tmp_path / "link", "--overwrite"), capsys)
    assert_one_line_error(code, err, "thesis.tex", "not written by")
    assert _tree(tmp_path) == before


# --- item 2: a report never writes through a link, never deletes what it did not write ----------


def _report_link(d: Path) -> Path:
    return _figures_link(d)


def _figures_file(d: Path) -> Path:
    (d / "figures").write_text("not a directory")
    return d / "figures"


def _foreign_report(d: Path) -> Path:
    (d / "report.md").write_text("# My own notes\n")
    return d / "report.md"


def _report_md_link(d: Path) -> Path:
    (d.parent / "notes.md").write_text("# initsuite report: theirs\n")
    (d / "report.md").symlink_to(d.parent / "notes.md")
    return d / "report.md"


@pytest.mark.parametrize("plant", [_report_link, _user_png, _figures_file, _foreign_report,
                                   _report_md_link])  # fmt: skip
def test_report_refuses_entries_initsuite_did_not_write(
    plant: Callable[[Path], Path],
    sweep_dir: Path,
    fast_figures: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = plant(sweep_dir)
    before = _tree(sweep_dir.parent)
    code, _, err = run_cli(["report", str(sweep_dir)], capsys)
    assert_one_line_error(code, err, repr(str(bad)), "not written by initsuite")
    assert _tree(sweep_dir.parent) == before


def test_report_replaces_its_own_figures_whole(sweep_dir: Path, fast_figures: None) -> None:
    (sweep_dir / "figures").mkdir()
    (sweep_dir / "figures" / "training_loss.png").write_bytes(b"an earlier report's")
    path = write_report(sweep_dir)
    assert path == sweep_dir / "report.md" and path.read_text().startswith("# initsuite")
    figures = sorted(p.name for p in (sweep_dir / "figures").iterdir())
    assert "training_loss.png" not in figures and "std_vs_layer.png" in figures
    assert not [p for p in sweep_dir.iterdir() if p.name.startswith(".")]


def _probe_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "tiny_factory.py").write_text(
        "import torch\n\ndef make():\n    return torch.nn.Sequential(torch.nn.Linear(3, 4))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "probe"
    args = ["probe", "tiny_factory:make", "--input-shape", "2,3", "--no-report", "--quiet",
            "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    return out


def test_probe_report_refuses_a_planted_link_and_is_all_or_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_figures: None
) -> None:
    out = _probe_dir(tmp_path, monkeypatch)
    link = _figures_link(out)
    before = _tree(tmp_path)
    with pytest.raises(InitsuiteError, match="not written by initsuite") as info:
        RP.write_probe_report(out)
    assert repr(str(link)) in str(info.value)
    assert _tree(tmp_path) == before
    link.unlink()
    with monkeypatch.context() as m:  # the report fails after its figure was drawn
        m.setattr(RP, "render_probe", _boom)
        with pytest.raises(RuntimeError, match="boom"):
            RP.write_probe_report(out)
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "probe.parquet"]
    assert RP.write_probe_report(out) == out / "report.md"
    assert sorted(p.name for p in out.iterdir()) == ["figures", "meta.json", "probe.parquet",
                                                     "report.md"]  # fmt: skip


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("boom")


# --- item 13 (report side): a report that fails leaves nothing ---------------------------------


@pytest.mark.parametrize("earlier", [False, True])
def test_failing_report_leaves_the_directory_as_it_was(
    earlier: bool, sweep_dir: Path, fast_figures: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if earlier:  # with an earlier report in place, which must survive whole
        write_report(sweep_dir)
    before = _tree(sweep_dir.parent)
    # the second figure raises, after the first was drawn
    monkeypatch.setattr(R, "divergence_heatmap", _boom)
    with pytest.raises(RuntimeError, match="boom"):
        write_report(sweep_dir)
    with pytest.raises(RuntimeError, match="boom"):
        write_report(sweep_dir, out_dir=sweep_dir.parent / "new" / "report")
    assert _tree(sweep_dir.parent) == before  # no partial figures, no empty figures/


# --- item 8: a report of a sweep that did not finish ------------------------------------------


@pytest.fixture
def unfinished(tmp_path: Path) -> Path:
    """What a sweep killed after its first of two chunks leaves."""
    out = tmp_path / "run"
    assert main(["sweep", "--schemes", "kaiming_normal", *SMALL, "--widths", "4,8", "--out",
                 str(out)]) == 0  # fmt: skip
    meta = json.loads((out / "meta.json").read_text())
    keep = {k: meta[k] for k in ("kind", "config", "fingerprint", "cells")}
    (out / "meta.json").write_text(json.dumps({**keep, "complete": False}))
    shutil.rmtree(sorted((out / "chunks").iterdir())[0])
    assert len(SweepResult.load(out).cells) == 1
    return out


def test_report_refuses_an_unfinished_sweep_without_partial(
    unfinished: Path, fast_figures: None, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _tree(unfinished)
    code, _, err = run_cli(["report", str(unfinished)], capsys)
    assert_one_line_error(code, err, "incomplete sweep (1 of 2 cells)", "--partial")
    assert _tree(unfinished) == before
    with pytest.raises(InitsuiteError, match=r"incomplete sweep \(1 of 2 cells\)"):
        write_report(unfinished)


def test_report_of_an_unfinished_sweep_with_partial_says_so(
    unfinished: Path, fast_figures: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["report", str(unfinished), "--partial"], capsys)
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("initsuite: warning: ")
    assert "incomplete sweep (1 of 2 cells)" in lines[0]
    text = (unfinished / "report.md").read_text().splitlines()
    assert text[0].startswith("# initsuite report")
    assert text[2].startswith("> **Incomplete sweep:** this report covers 1 of 2 cells")
    with pytest.warns(PartialReportWarning, match="1 of 2 cells"):
        write_report(unfinished, partial=True)


# --- item 17: report on another kind of directory ---------------------------------------------


@pytest.mark.parametrize(
    ("kind", "needles"),
    [
        ("training", ("is not a sweep but a training directory", "--training DIR")),
        ("tutorial", ("is not a sweep but a tutorial", "--tutorial DIR")),
    ],
)
def test_report_names_the_kind_of_directory_and_its_command(
    kind: str, needles: tuple[str, ...], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / kind
    _kind_dir(kind, out)
    before = _tree(tmp_path)
    code, _, err = run_cli(["report", str(out)], capsys)
    assert_one_line_error(code, err, *needles)
    assert _tree(tmp_path) == before


# --- items 15, 21: output paths checked before any compute -------------------------------------


def _commands(out: str, run: Path) -> list[list[str]]:
    """Every command that writes, with ``out`` as its output (``run``: a sweep to read)."""
    return [
        _sweep(out),
        _sweep(out, "--overwrite"),
        _sweep(out, "--resume"),
        ["train", "--schemes", "kaiming_normal", "--steps", "1", "--out", out],
        ["probe", "no_such_module:f", "--input-shape", "2,3", "--out", out],
        ["reproduce", "tutorial", "--out", out],
        ["report", str(run), "--out", out],
        ["phase", "--activation", "tanh", "--out", out],
        ["compare", str(run), str(run), "--out", out],
    ]


@pytest.mark.parametrize("blank", ["", "  "])
def test_empty_out_is_refused_by_every_command(
    blank: str,
    old_sweep: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    for args in _commands(blank, old_sweep):
        code, _, err = run_cli(args, capsys)
        assert_one_line_error(code, err, f"output path {blank!r} is empty")
    assert list(tmp_path.iterdir()) == []


_LONG = "x" * 300


@pytest.mark.parametrize(
    ("out", "needle"),
    [
        ("/proc/initsuite-out", "cannot write '/proc/initsuite-out'"),
        ("dangling", "is a symbolic link to"),
        ("afile/sub", "'afile' is a file, not a directory"),
        (_LONG, "is 300 bytes"),
    ],
    ids=["proc", "dangling-link", "file-component", "300-characters"],
)
def test_unwritable_out_is_one_line_before_compute(
    out: str,
    needle: str,
    old_sweep: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("dangling").symlink_to("nowhere")
    Path("afile").write_text("a file")
    before = _tree(tmp_path)
    for args in _commands(out, old_sweep):
        code, _, err = run_cli(args, capsys)
        assert_one_line_error(code, err, needle)
    assert _tree(tmp_path) == before


def test_out_of_the_wrong_type_is_one_line(
    old_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "afile").write_text("a file")
    code, _, err = run_cli(["report", str(old_sweep), "--out", str(tmp_path / "afile")], capsys)
    assert_one_line_error(code, err, "exists and is not a directory")
    (tmp_path / "adir").mkdir()
    for args in (
        ["phase", "--activation", "tanh", "--out", str(tmp_path / "adir")],
        ["compare", str(old_sweep), str(old_sweep), "--out", str(tmp_path / "adir")],
    ):
        code, _, err = run_cli(args, capsys)
        assert_one_line_error(code, err, "is a directory: name a file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "afile"]
    assert list((tmp_path / "adir").iterdir()) == []


@pytest.fixture
def read_only(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """Arm: creating a file in DIR fails with EROFS (tests run as root, which chmod does not
    stop)."""

    def arm(directory: Path) -> None:
        real = tempfile.mkstemp

        def mkstemp(*args: Any, dir: Any = None, **kwargs: Any) -> Any:
            if dir is not None and Path(dir).resolve() == directory.resolve():
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
            return real(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)

    return arm


def _no_compute(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("computed before checking the output")


def test_read_only_out_is_refused_before_compute(
    sweep_dir: Path,
    read_only: Callable[[Path], None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import importlib

    # (initsuite.studies.sweep.runner is the function: the modules from sys.modules)
    for module, name in (("initsuite.studies.sweep.runner", "run"),
                         ("initsuite.studies.training", "train"),
                         ("initsuite.theory.phase", "scheme_points")):  # fmt: skip
        monkeypatch.setattr(importlib.import_module(module), name, _no_compute)
    parent = sweep_dir.parent
    read_only(parent)
    before = _tree(parent)
    cases = [
        _sweep(sweep_dir, "--overwrite"),
        _sweep(parent / "new"),
        ["train", "--schemes", "kaiming_normal", "--out", str(parent / "t")],
        ["phase", "--activation", "tanh", "--out", str(parent / "p.png")],
        ["compare", str(sweep_dir), str(sweep_dir), "--out", str(parent / "c.md")],
    ]
    for args in cases:
        code, _, err = run_cli(args, capsys)
        assert_one_line_error(code, err, "cannot write", "Read-only file system")
    read_only(sweep_dir)  # the directory itself, where a report goes
    code, _, err = run_cli(["report", str(sweep_dir)], capsys)
    assert_one_line_error(code, err, "cannot write", "Read-only file system")
    assert _tree(parent) == before


def _enospc(*args: Any, **kwargs: Any) -> Any:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_is_one_line_and_leaves_no_partial_file(
    sweep_dir: Path, fast_figures: None, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    parent = sweep_dir.parent
    before = _tree(parent)
    full = f"cannot write {sweep_dir}: No space left on device"
    with monkeypatch.context() as m:  # --overwrite: the old results stay
        m.setattr(pd.DataFrame, "to_parquet", _enospc)
        assert_one_line_error(*run_cli(_sweep(sweep_dir, "--overwrite"), capsys)[::2], full)
        assert _tree(parent) == before
        new = parent / "new"  # in chunks: no temporary chunk left
        code, _, err = run_cli(_sweep(new), capsys)
        assert_one_line_error(code, err, f"cannot write {new}: No space left")
        for d in ("theory", "chunks"):
            assert not (new / d).exists() or [p.name for p in (new / d).iterdir()] == []
        shutil.rmtree(new)
    with monkeypatch.context() as m:  # a report: no partial figures, no empty figures/
        m.setattr(plan, "write_figure", _enospc)
        assert_one_line_error(*run_cli(["report", str(sweep_dir)], capsys)[::2], full)
        assert _tree(parent) == before
    with monkeypatch.context() as m:  # files: the temporary is removed
        m.setattr(os, "replace", _enospc)
        args = ["compare", str(sweep_dir), str(sweep_dir), "--out", str(parent / "c.md")]
        code, _, err = run_cli(args, capsys)
        assert_one_line_error(code, err, f"cannot write {parent / 'c.md'}: No space left")
    assert _tree(parent) == before


# --- fault injection: a kill at every write step of --overwrite --------------------------------


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing on the way catches it."""


_STEPS = [(pd.DataFrame, "to_parquet"), (Path, "write_text"), (os, "fsync"),
          (store, "_exchange"), (Path, "rename"), (os, "replace"), (shutil, "rmtree")]  # fmt: skip


@pytest.fixture
def kill_at(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], list[str]]]:
    """Arm: the k-th call of any write step (each parquet table, meta.json, each fsync, the
    swap, each rename, the clean-up) raises :class:`Killed`. Returns the steps called."""

    def arm(k: int) -> list[str]:
        steps: list[str] = []
        for owner, name in _STEPS:
            real = getattr(owner, name)

            def step(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
                steps.append(_name)
                if len(steps) == k:
                    raise Killed(_name)
                return _real(*args, **kwargs)

            monkeypatch.setattr(owner, name, step)
        return steps

    yield arm
    monkeypatch.undo()


def test_a_kill_at_every_write_step_of_overwrite_keeps_old_or_new_whole(
    old_sweep: Path,
    clean: SweepResult,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kill_at: Callable[[int], list[str]],
) -> None:
    old = SweepResult.load(old_sweep)
    killed_at: list[str] = []
    for k in range(1, 40):
        root = tmp_path / str(k)
        out = root / "results" / "run"
        shutil.copytree(old_sweep, out)
        (root / "results" / "notes.txt").write_text("a neighbour")
        outside = {n: v for n, v in _tree(root).items() if not n.startswith("results/run")}
        steps = kill_at(k)
        with contextlib.suppress(Killed):
            main(_sweep(out, "--overwrite"))
        monkeypatch.undo()
        if len(steps) < k:  # the run finished before step k: every step was tried
            break
        killed_at.append(steps[k - 1])  # (the clean-up after it is recorded too)
        now = SweepResult.load(out)
        assert _same_tables(now, old) or _same_tables(now, clean), f"kill at {steps[k - 1]}"
        after = {n: v for n, v in _tree(root).items() if not n.startswith("results/run")}
        assert after == outside, f"kill at {steps[k - 1]}"
        assert main(_sweep(out, "--overwrite")) == 0  # a rerun gives the clean run's tables
        assert _same_tables(SweepResult.load(out), clean)
    else:
        pytest.fail("the run never finished")
    # each table, each manifest, meta.json, the fsyncs, the swap and the clean-up were all cut
    for name in ("to_parquet", "write_text", "fsync", "replace", "_exchange", "rmtree"):
        assert name in killed_at, killed_at
    assert killed_at.count("to_parquet") == 6  # the theory chunk's 3 tables, the cells' 3


def test_swap_without_renameat2_undoes_a_failed_second_rename(
    sweep_dir: Path, clean: SweepResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the one-step exchange is missing (not Linux, an old libc, a filesystem without
    it), the swap is two renames, and a failure of the second puts the first back."""
    monkeypatch.setattr(store, "_renameat2_exchange", lambda a, b: False)
    old = SweepResult.load(sweep_dir)
    before = _tree(sweep_dir.parent)
    real, calls = Path.rename, []

    def rename(self: Path, target: Any) -> Any:
        if sweep_dir in (self, Path(target)):  # the swap's renames (chunks are renamed too)
            calls.append(target)
            if len(calls) == 2:  # the new directory into place
                raise Killed("rename")
        return real(self, target)

    with monkeypatch.context() as m:
        m.setattr(Path, "rename", rename)
        with pytest.raises(Killed):
            main(_sweep(sweep_dir, "--overwrite"))
    assert len(calls) == 3  # the third put the old directory back
    assert _tree(sweep_dir.parent) == before and _same_tables(SweepResult.load(sweep_dir), old)
    assert main(_sweep(sweep_dir, "--overwrite")) == 0
    assert _same_tables(SweepResult.load(sweep_dir), clean)
    assert sorted(p.name for p in sweep_dir.parent.iterdir()) == ["run"]


def test_overwrite_writes_a_sweep_in_chunks_like_any_other(
    sweep_dir: Path, clean: SweepResult, capsys: pytest.CaptureFixture[str]
) -> None:
    """What --overwrite stores is a sweep in chunks (never tables written whole): it resumes,
    compares and reports like any sweep."""
    from initsuite.results import chunks

    code, _, err = run_cli(_sweep(sweep_dir, "--overwrite"), capsys)
    assert code == 0, err
    assert chunks.layout(sweep_dir) == "chunked" and not list(sweep_dir.glob("*.parquet"))
    meta = json.loads((sweep_dir / "meta.json").read_text())
    assert meta["complete"] is True and meta["command"].startswith("initsuite")
    assert (sweep_dir / "theory" / meta["theory_chunk"]).is_dir()
    before = _tree(sweep_dir / "chunks")
    code, _, err = run_cli(_sweep(sweep_dir, "--resume"), capsys)  # nothing left to compute
    assert code == 0, err
    assert _tree(sweep_dir / "chunks") == before
    assert _same_tables(SweepResult.load(sweep_dir), clean)
    code, _, err = run_cli(["compare", str(sweep_dir), str(sweep_dir), "--fail",
                            "final_std:0%,divergence_layer:0,missing:0"], capsys)  # fmt: skip
    assert code == 0, err

"""The report stage: figures, summary table and report.md from a small real sweep."""

from __future__ import annotations

import json
import re
import statistics
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import initsuite
from initsuite.core.errors import InitsuiteError
from initsuite.report import (
    divergence_heatmap,
    final_std_distribution,
    init_time_vs_width,
    render,
    std_vs_layer,
    summary_table,
    tutorial_std_vs_layer,
    write_report,
)
from initsuite.report.families import family
from initsuite.results import store

SCHEMES = ["normal", "kaiming_normal", "zeros"]
ACTIVATIONS = ["tanh", "relu"]
DEPTHS = [5, 40]
WIDTHS = [32, 64]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # explode_at makes normal+relu diverge within a few layers (its std grows ~√(width/2) per
    # layer); zeros underflows at layer 1; kaiming_normal and normal+tanh never diverge.
    res = initsuite.sweep(
        SCHEMES, ACTIVATIONS, DEPTHS, WIDTHS, seeds=2, timing_repeats=2, explode_at=1e6
    )
    out = tmp_path_factory.mktemp("sweep") / "run"
    res.save(out)
    return out


@pytest.fixture(scope="module")
def result(run_dir: Path) -> initsuite.SweepResult:
    return initsuite.SweepResult.load(run_dir)


@pytest.fixture(scope="module")
def report(run_dir: Path) -> Path:
    """The report written into the run directory itself (no ``out_dir``), once per module."""
    return write_report(run_dir)


def _tutorial_dir(path: Path) -> Path:
    """A synthetic tutorial reproduction: one experiment that overflows, one that holds."""
    rows = []
    for seed in range(3):
        for layer in range(1, 41):
            rows.append(("xavier_tanh", seed, layer, 0.98**layer * (1 + 0.01 * seed), 0.0))
        for layer in range(1, 32):
            std = float("nan") if layer == 31 else 16.0**layer * (1 + 0.1 * seed)
            rows.append(("normal_linear", seed, layer, std, 0.0))
    layers = pd.DataFrame(rows, columns=["experiment", "seed", "layer", "std", "mean"])
    tutorial = pd.DataFrame(
        {
            "experiment": ["normal_linear", "xavier_tanh"],
            "quantity": ["first non-finite layer", "std at layer 40"],
            "tutorial": ["nan at layer 31 (0-based loop index)", "about 0.45 | roughly"],
            "expected": [32.0, 0.45],
            "measured_mean": [31.0, 0.4502],
            "measured_sd": [0.0, 0.0045],
            "measured_min": [31.0, 0.4457],
            "measured_max": [31.0, 0.4547],
            "seeds": [3, 3],
            "tolerance": [0.5, 0.05],
            "agree": [False, True],
            "note": ["the tutorial counts from 0", ""],
        }
    )
    return store.write(path, {"tutorial": tutorial, "layers": layers}, {"kind": "tutorial"})


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _plot_axes(fig) -> list:  # the panels, without colorbars
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


# --- report.md and its figures ---------------------------------------------------------------


def test_report_references_every_figure_and_each_is_a_real_png(run_dir: Path, report: Path):
    assert report == run_dir / "report.md"
    text = report.read_text()
    pngs = sorted((run_dir / "figures").glob("*.png"))
    assert {p.stem for p in pngs} == {
        "verdict", "std_vs_layer", "divergence_heatmap", "final_std_distribution",
        "init_time_vs_width", "cosine_vs_layer", "phase_diagram",
    }  # fmt: skip
    referenced = set(re.findall(r"\]\((figures/[\w.-]+\.png)\)", text))
    assert referenced == {f"figures/{p.name}" for p in pngs}
    for p in pngs:
        assert 10_000 < p.stat().st_size < 3_000_000, p.name
        w, h = _png_size(p)
        assert 400 <= w <= 4000 and 250 <= h <= 3000, (p.name, w, h)
    assert not [p for p in run_dir.rglob(".*") if p.is_file()], "temporary files left behind"
    assert "Tutorial reproduction" not in text


def test_report_states_metadata_and_configuration(report: Path):
    text = report.read_text()
    for needle in ("Date (UTC)", "torch", "Git commit", "batch", "`kaiming_normal`", "`40`"):
        assert needle in text, needle
    assert "How to read this" in text and "geometric mean of the per-layer std ratio" in text
    summary = text.split("## Summary")[1].split("## Theory vs measurement")[0]
    assert not re.search(r"\bnan\b", summary)  # missing medians print as —
    assert summary.count("\n| ") == 1 + len(SCHEMES) * len(ACTIVATIONS)  # header + rows
    theory = text.split("## Theory vs measurement")[1].split("## Timing")[0]
    assert "### Where theory and measurement disagree" in theory


def test_tutorial_section_only_with_a_tutorial_dir(small_sweep_dir: Path, tmp_path: Path):
    tut = _tutorial_dir(tmp_path / "tutorial")
    out = tmp_path / "out"
    text = write_report(small_sweep_dir, tutorial_dir=tut, out_dir=out).read_text()
    section = text.split("## Tutorial reproduction")[1]
    assert "31 ± 0 [31, 31] over 3 seeds" in section
    assert "| ✗" in section and "| ✓" in section
    assert r"about 0.45 \| roughly" in section  # a pipe in a cell must not split the table
    assert "1 of 2" in section
    assert "](figures/tutorial_std_vs_layer.png)" in section
    assert _png_size(out / "figures" / "tutorial_std_vs_layer.png")[0] > 400

    # a later report without the tutorial drops its section and its stale figure
    text = write_report(small_sweep_dir, out_dir=out).read_text()
    assert "Tutorial reproduction" not in text
    assert not (out / "figures" / "tutorial_std_vs_layer.png").exists()


# --- the summary table -----------------------------------------------------------------------


def test_summary_table_matches_an_independent_count(result: initsuite.SweepResult):
    table = summary_table(result.cells)
    assert len(table) == len(SCHEMES) * len(ACTIVATIONS)
    assert set(zip(table["scheme"], table["activation"], strict=True)) == {
        (s, a) for s in SCHEMES for a in ACTIVATIONS
    }
    records = result.cells.to_dict("records")
    for row in table.itertuples(index=False):
        mine = [
            r for r in records
            if r["scheme"] == row.scheme and r["activation"] == row.activation
            and r["depth"] == max(DEPTHS)
        ]  # fmt: skip
        layers = [int(r["divergence_layer"]) for r in mine if not pd.isna(r["divergence_layer"])]
        assert row.cells == len(mine) == len(WIDTHS) * 2
        assert row.frac_diverged == pytest.approx(len(layers) / len(mine))
        if layers:
            assert row.median_div_layer == statistics.median(layers)
        else:
            assert np.isnan(row.median_div_layer)
    by = table.set_index(["scheme", "activation"])
    assert by.loc[("zeros", "tanh"), "frac_diverged"] == 1.0
    assert by.loc[("zeros", "tanh"), "div_kinds"] == "underflow"
    assert by.loc[("normal", "relu"), "div_kinds"] == "explode"
    assert by.loc[("kaiming_normal", "tanh"), "frac_diverged"] == 0.0


def test_failed_cells_are_counted_and_listed(result: initsuite.SweepResult):
    cells = result.cells.copy()
    boom = (cells["scheme"] == "normal") & (cells["seed"] == 0)
    cells.loc[boom, "error"] = "RuntimeError: boom | bang"
    broken = initsuite.SweepResult(cells, result.layers, result.timing, result.meta)
    table = summary_table(cells).set_index(["scheme", "activation"])
    assert table.loc[("normal", "tanh"), "failed"] == len(WIDTHS)  # one seed of two failed
    assert table.loc[("normal", "relu"), "frac_diverged"] == 1.0  # over the cells that ran
    text = render(broken, figures=[])
    assert r"RuntimeError: boom \| bang" in text.split("## Failed cells")[1]
    with pytest.raises(InitsuiteError, match="unknown figure 'std_vs_layr'"):
        render(broken, figures=["std_vs_layr"])


# --- figure functions ------------------------------------------------------------------------


def test_std_vs_layer_has_one_column_per_activation(result: initsuite.SweepResult):
    fig = std_vs_layer(result.layers)
    # one row of panels per scheme family, one column per activation
    families = {family(s) for s in result.layers["scheme"].unique()}
    assert len(fig.axes) == len(ACTIVATIONS) * len(families)
    assert {ax.get_title(loc="left").split(" · ")[-1] for ax in fig.axes} == set(ACTIVATIONS)
    assert all(ax.get_yscale() == "log" for ax in fig.axes)
    assert f"width {max(WIDTHS)}" in fig.get_suptitle()
    assert "width 32" in std_vs_layer(result.layers, width=32).get_suptitle()
    with pytest.raises(InitsuiteError, match=r"unknown width 48.*32, 64"):
        std_vs_layer(result.layers, width=48)


def test_divergence_heatmap_marks_cells_that_never_diverged(result: initsuite.SweepResult):
    fig = divergence_heatmap(result.cells)
    left, right = _plot_axes(fig)
    top = result.cells[result.cells["depth"] == max(DEPTHS)]
    never = top.groupby(["scheme", "activation"])["divergence_layer"].apply(
        lambda s: s.isna().all()
    )
    texts = [t.get_text() for t in left.texts]
    assert texts.count("—") == int(never.sum())
    assert "1" in texts  # zeros underflows at layer 1
    assert len(right.texts) == len(DEPTHS) * len(WIDTHS)
    assert "Median divergence layer at depth 40" in left.get_title(loc="left")


def test_final_std_distribution_counts_the_cells_left_out(result: initsuite.SweepResult):
    fig = final_std_distribution(result.cells)
    (ax,) = fig.axes
    top = result.cells[result.cells["depth"] == max(DEPTHS)]
    n_div = int(top["divergence_layer"].notna().sum())
    assert f"{n_div} diverged cells left out" in ax.get_title(loc="left")
    assert f"{len(top) - n_div} non-diverged cells" in ax.get_title(loc="left")
    assert any(t.get_text() == "all diverged" for t in ax.texts)  # the zeros scheme


def test_init_time_vs_width_has_one_column_per_device_and_dtype(result: initsuite.SweepResult):
    fig = init_time_vs_width(result.timing)
    families = sorted({family(s) for s in result.timing["scheme"].unique()})  # one row each
    assert len(fig.axes) == len(families) == 2  # normal, structured
    assert fig.axes[0].get_xscale() == fig.axes[0].get_yscale() == "log"
    half = result.timing.assign(dtype="float64", init_ms=result.timing["init_ms"] * 2)
    fig = init_time_vs_width(pd.concat([result.timing, half], ignore_index=True))
    assert [ax.get_title(loc="left") for ax in fig.axes] == [
        f"{f} · cpu, {t}" for f in families for t in ("float32", "float64")
    ]


def test_tutorial_std_vs_layer_draws_one_line_per_experiment(tmp_path: Path):
    layers = pd.read_parquet(_tutorial_dir(tmp_path / "t") / "layers.parquet")
    fig = tutorial_std_vs_layer(layers)
    (ax,) = fig.axes
    # one line per experiment plus the × ending normal_linear, which overflows at layer 31
    assert len(ax.lines) == 3
    assert ax.get_yscale() == "log"


# --- errors and import weight ----------------------------------------------------------------


def test_missing_run_dir_is_one_clear_error(tmp_path: Path):
    missing = tmp_path / "nope"
    with pytest.raises(InitsuiteError, match="no results directory") as info:
        write_report(missing)
    assert str(missing) in str(info.value) and "\n" not in str(info.value)


def test_a_tutorial_dir_is_not_a_run_dir(tmp_path: Path):
    tut = _tutorial_dir(tmp_path / "tutorial")
    # says what it is and how to report it (issue 12, item 17)
    with pytest.raises(InitsuiteError, match=r"is not a sweep but a tutorial.*--tutorial DIR"):
        write_report(tut)


def test_run_dir_as_tutorial_dir_is_rejected(run_dir: Path, tmp_path: Path):
    # says what it is, not "not a complete run" (issue 27)
    with pytest.raises(InitsuiteError, match=r"holds a sweep \(initsuite sweep\), not a "
                       r"tutorial reproduction"):  # fmt: skip
        write_report(run_dir, tutorial_dir=run_dir, out_dir=tmp_path)


def test_importing_the_report_package_stays_light():
    code = (
        "import initsuite.report, sys; "
        "assert 'seaborn' not in sys.modules and 'matplotlib' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_report_says_how_weights_were_drawn() -> None:
    kw = dict(activations="relu", depths=3, widths=16, timing=False)
    shared = initsuite.sweep(["kaiming_normal", "xavier_normal"], **kw)
    own = initsuite.sweep(["kaiming_normal", "xavier_normal"], shared=False, **kw)
    half = initsuite.sweep("kaiming_normal", dtypes=["float32", "float16"], **kw)
    assert "**paired**" in render(shared) and "independent samples" not in render(shared)
    assert "independent samples" in render(own) and "paired" not in render(own)
    assert "Cells in float16 drew every scheme on its own." in render(half)


def test_a_sweep_report_runs_no_study_of_its_own(run_dir: Path, report: Path) -> None:
    """The isometry study is a directory of its own now: a sweep's report neither runs it nor
    draws its figure."""
    assert "jacobian_spectra" not in report.read_text()
    assert not (run_dir / "figures" / "jacobian_spectra.png").exists()


def test_the_isometry_study_is_reported_from_its_directory(tmp_path: Path) -> None:
    from initsuite.report.isometry import spectra_table
    from initsuite.results.isometry import IsometryResult
    from initsuite.studies.isometry import isometry_study

    study = isometry_study(
        ["orthogonal", "xavier_normal"], ["linear", "relu"], depths=(2, 6), width=24, seeds=2
    )
    run = study.save(tmp_path / "iso")
    back = IsometryResult.load(run)
    pd.testing.assert_frame_equal(back.spectra, study.spectra, check_exact=True)
    assert len(back.spectra) == 2 * 2 * 2 * 2 * 24  # schemes × acts × depths × seeds × width
    assert back.meta["kind"] == "isometry" and back.meta["config"]["depths"] == [2, 6]
    text = write_report(run).read_text()
    assert text.startswith("# initsuite isometry report: iso")
    assert "](figures/jacobian_spectra.png)" in text and "at depths 2 and 6" in text
    assert _png_size(run / "figures" / "jacobian_spectra.png")[0] > 400
    table = spectra_table(back.spectra).set_index(["scheme", "activation", "depth"])
    # orthogonal linear nets are exactly isometric: every singular value 1
    assert table.loc[("orthogonal", "linear", 6), "var σ²"] < 1e-20
    assert table.loc[("orthogonal", "linear", 6), "mean σ²"] == pytest.approx(1.0)
    # ReLU zeroes about half the directions at every layer
    assert table.loc[("orthogonal", "relu", 6), "near zero"] > 0.5
    assert table.loc[("xavier_normal", "linear", 6), "values"] == 2 * 24
    with pytest.raises(InitsuiteError, match="isometry study: a tutorial, training"):
        write_report(run, training_dir=run)


def test_reproduce_isometry_writes_a_directory_that_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`initsuite reproduce isometry` (a small width stands in for 256 to keep this fast)."""
    import functools

    import initsuite.studies.isometry as iso
    from initsuite.cli import main

    monkeypatch.setattr(iso, "isometry_study", functools.partial(iso.isometry_study, width=12))
    out = tmp_path / "iso"
    assert main(["reproduce", "isometry", "--out", str(out), "--seeds", "1"]) == 0
    assert f"wrote {2 * 3 * 2 * 12} singular values to {out}" in capsys.readouterr().out
    meta = json.loads((out / "meta.json").read_text())
    assert meta["kind"] == "isometry" and meta["config"]["seeds"] == [0]
    assert meta["command"] == f"initsuite reproduce isometry --out {out} --seeds 1"
    assert main(["report", str(out)]) == 0
    assert (out / "figures" / "jacobian_spectra.png").read_bytes()[:8] == PNG_MAGIC


def test_backward_sweeps_get_gradient_figures_and_table(
    tmp_path: Path, small_sweep_dir: Path
) -> None:
    """With --backward: two gradient figures and a Gradients table whose numbers are the
    cells' own (geometric mean of input_grad_std, median weight_grad_ratio); without it,
    neither (and the figures of an earlier backward report are removed)."""
    from initsuite.report import write_report
    from initsuite.report.theory_sections import gradient_table

    kw = dict(activations=["relu", "tanh"], depths=[4, 12], widths=32, seeds=3, timing=False)
    res = initsuite.sweep(["kaiming_normal", "xavier_normal"], backward=True, **kw)
    table = gradient_table(res.cells).set_index(["scheme", "activation"])
    deep = res.cells[res.cells["depth"] == 12].set_index(["scheme", "activation"])
    for key, row in table.iterrows():
        cells = deep.loc[[key]]
        assert row["cells"] == 3
        geo = float(np.exp(np.log(cells["input_grad_std"].astype(float)).mean()))
        assert row["input grad std"] == pytest.approx(geo)
        assert row["weight-grad ratio"] == pytest.approx(cells["weight_grad_ratio"].median())
        assert row["backward diverged"] == "0/3"
    run = res.save(tmp_path / "run")
    text = write_report(run).read_text()
    assert "## Gradients" in text
    for name in ("grad_std_vs_layer", "weight_grad_vs_layer"):
        assert f"figures/{name}.png" in text
        assert (run / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    fig = std_vs_layer(res.layers, quantity="grad_std")
    assert len(_plot_axes(fig)) == 2
    with pytest.raises(InitsuiteError, match="quantity"):
        std_vs_layer(res.layers, quantity="grad")
    assert initsuite.SweepResult.load(small_sweep_dir).meta["config"]["backward"] is False
    # a sweep without backward, reported over that report (a report of another run goes into a
    # directory that holds no results: the report's files are moved out of the run first)
    rep = tmp_path / "rep"
    rep.mkdir()
    for name in ("report.md", "figures"):
        (run / name).rename(rep / name)
    text = write_report(small_sweep_dir, out_dir=rep).read_text()
    assert "## Gradients" not in text and "grad_std_vs_layer" not in text
    assert not (rep / "figures" / "grad_std_vs_layer.png").exists()


def test_jacobian_sweeps_get_a_spectrum_table() -> None:
    """The report's Jacobian table is the cells' own jac_* columns (mean over seeds of the
    moments, median of σ_min and condition); orthogonal linear nets show var σ² ≈ 0."""
    from initsuite.report.theory_sections import jacobian_table

    res = initsuite.sweep(["orthogonal", "xavier_normal"], ["linear", "relu"], [3, 12], 32,
                          seeds=2, timing=False, jacobian=True)  # fmt: skip
    table = jacobian_table(res.cells).set_index(["scheme", "activation", "depth"])
    assert len(table) == 8 and (table["cells"] == 2).all()
    c = res.cells.set_index(["scheme", "activation", "depth"])
    key = ("xavier_normal", "linear", 12)
    assert table.loc[key, "sv2_var"] == pytest.approx(c.loc[key, "jac_sv2_var"].mean())
    assert table.loc[key, "condition"] == pytest.approx(c.loc[key, "jac_condition"].median())
    assert table.loc[("orthogonal", "linear", 12), "sv2_var"] < 1e-9
    assert "## Jacobian spectra" in render(res)
    assert "## Jacobian spectra" not in render(initsuite.sweep("orthogonal", "linear", 3, 16,
                                                               timing=False))  # fmt: skip


def test_final_std_distribution_is_the_same_every_time() -> None:
    """seaborn jitters strip plots from NumPy's global generator: drawn twice from one table,
    the points must land in the same places, and the caller's generator must be untouched."""
    import numpy as np

    from initsuite.report.cell_figures import final_std_distribution

    res = initsuite.sweep(["kaiming_normal", "xavier_normal"], ["relu", "tanh"], 6, 16, seeds=4,
                          timing=False)  # fmt: skip
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a, b = final_std_distribution(res.cells), final_std_distribution(res.cells)
    offsets = [[c.get_offsets().data.copy() for c in f.axes[0].collections] for f in (a, b)]
    assert len(offsets[0]) > 0
    for x, y in zip(*offsets, strict=True):
        np.testing.assert_array_equal(x, y)
    assert (np.random.get_state()[1] == before).all()

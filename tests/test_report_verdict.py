"""The verdict a sweep's report opens with, against the cells it is read from."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import initsuite
from initsuite.report.verdict import verdict_section, verdict_table
from initsuite.report.verdict_figure import STATUS_COLORS, verdict_figure
from initsuite.report.verdict_text import BAND, times, verdict_sentences

pytest.importorskip("tabulate")


@pytest.fixture(scope="module")
def run() -> initsuite.SweepResult:
    """Width 256, depths 10/40, 2 seeds: N(0, 1) without an activation overflows float32 at
    layer 32 (×16 a layer); He keeps ReLU; Xavier halves ReLU's variance a layer (2^-20 in
    std at 40); PyTorch's default shrinks everything."""
    return initsuite.sweep(["normal", "kaiming_normal", "xavier_normal", "torch_default"],
                           ["linear", "relu"], [10, 40], 256, seeds=2, backward=True,
                           timing=False, progress=False)  # fmt: skip


def _status(table: pd.DataFrame, scheme: str, act: str) -> pd.Series:
    row = table[(table["scheme"] == scheme) & (table["activation"] == act)]
    assert len(row) == 1
    return row.iloc[0]


def test_statuses_follow_the_cells(run: initsuite.SweepResult) -> None:
    table = verdict_table(run.cells)
    assert set(table["depth"]) == {40}
    assert len(table) == 4 * 2 and (table["cells"] == 2).all()
    normal = _status(table, "normal", "linear")
    assert normal["status"] == "diverges" and normal["kind"] == "overflow"
    assert normal["layer"] == 32 and normal["direction"] == "forward"
    assert normal["theory_layer"] == 32  # 16^L·c leaves float32's range at 32 (c ≈ 2-6)
    assert _status(table, "kaiming_normal", "relu")["status"] == "keeps"
    for scheme in ("xavier_normal", "torch_default"):
        assert _status(table, scheme, "relu")["status"] == "drifts"
    # each status against a plain reading of the deepest cells
    deep = run.cells[run.cells["depth"] == 40]
    for _, r in table.iterrows():
        g = deep[(deep["scheme"] == r["scheme"]) & (deep["activation"] == r["activation"])]
        signal = g["final_std"] / g["input_std"]
        np.testing.assert_allclose(r["signal"], signal.median(), rtol=1e-12)
        np.testing.assert_allclose(r["gradient"], g["input_grad_std"].median(), rtol=1e-12)
        if g["divergence_kind"].notna().any() or g["grad_divergence_kind"].notna().any():
            assert r["status"] == "diverges"
        else:  # the medians over seeds decide
            lo, hi = BAND
            inside = lo <= signal.median() <= hi and lo <= g["input_grad_std"].median() <= hi
            assert r["status"] == ("keeps" if inside else "drifts")


def test_xavier_relu_drifts_by_the_halving(run: initsuite.SweepResult) -> None:
    """Var halves a layer: the std after 40 layers is about 2^-20 of the input's, and the
    mean-field prediction beside it says the same."""
    r = _status(verdict_table(run.cells), "xavier_normal", "relu")
    assert 0.2 < r["signal"] / 2.0**-20 < 5
    assert 0.5 < r["signal"] / r["theory_signal"] < 2


def test_the_medians_at_the_largest_width_decide(run: initsuite.SweepResult) -> None:
    cells = run.cells.copy()
    he = (cells["scheme"] == "kaiming_normal") & (cells["activation"] == "relu")
    deep = he & (cells["depth"] == 40)
    # a narrower width out of the band does not count: the widest cells are judged
    narrow = cells[deep].assign(width=64, final_std=cells.loc[deep, "input_std"] * 50.0)
    with_narrow = pd.concat([cells, narrow], ignore_index=True)
    assert _status(verdict_table(with_narrow), "kaiming_normal", "relu")["status"] == "keeps"
    # one seed of two far out moves the median (their mean) out of the band
    first = cells.index[deep][0]
    cells.loc[first, "final_std"] = cells.loc[first, "input_std"] * 30.0
    assert _status(verdict_table(cells), "kaiming_normal", "relu")["status"] == "drifts"
    cells.loc[he, "error"] = "boom"
    assert _status(verdict_table(cells), "kaiming_normal", "relu")["status"] == "failed"


def test_the_section_names_each_scheme_in_its_place(run: initsuite.SweepResult) -> None:
    text = verdict_section(run)
    assert text.startswith("## Verdict")
    # the table whole in the Markdown, between the lines that fold it in report.html
    table = text.split("<!-- fold: The verdict as a table -->\n")[1].split("<!-- /fold -->")[0]
    assert "| relu" in table and "| linear" in table
    relu = next(line for line in text.splitlines() if line.startswith("| relu"))
    keeps, diverges, drifts = (c.strip() for c in relu.strip("|").split("|")[1:])
    assert keeps == "kaiming_normal"
    layer, theory = map(int, re.fullmatch(r"normal: overflow @(\d+) \(theory (\d+)\)",
                                          diverges).groups())  # fmt: skip
    assert abs(layer - theory) <= 1  # ReLU halves 16² a layer: about 36
    assert drifts.startswith("torch_default: ") and "; xavier_normal: " in drifts
    assert "[" in drifts  # the theory's factors beside the measured ones
    assert "gradient" in text.splitlines()[2]  # with --backward the band covers gradients


def test_the_report_opens_with_the_verdict(tmp_path: Path, run: initsuite.SweepResult) -> None:
    """The report's text as write_report writes it into report.md (its plan's text; the
    figures, not drawn here, do not change it)."""
    from initsuite.report import sweep_plan

    out = tmp_path / "run"
    initsuite.sweep(["normal", "kaiming_normal"], "relu", 6, 32, timing=False, out_dir=out,
                    progress=False)  # fmt: skip
    text = sweep_plan(out).text
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[0] == "## Verdict"
    assert "signal" in text.split("## ", 2)[1] and "gradient std" not in text.split("## ")[1]


def test_comparison_is_summarised_in_the_verdict(run: initsuite.SweepResult) -> None:
    cmp = initsuite.compare(run, run)
    text = verdict_section(run, cmp)
    assert "Since the compared run:" in text and f"{len(run.cells)} same" in text


def test_architectures_get_a_row_each() -> None:
    res = initsuite.sweep("kaiming_normal", "relu", [4], 16, archs=["mlp", "resmlp"],
                          timing=False, progress=False)  # fmt: skip
    table = verdict_table(res.cells)
    assert sorted(table["arch"]) == ["mlp", "resmlp:branch=2,scale=1"]
    text = verdict_section(res)
    assert "| arch" in text and not math.isnan(table["signal"].iloc[0])


def test_the_figure_has_a_coloured_labelled_cell_per_scheme_and_activation(
    run: initsuite.SweepResult,
) -> None:
    from matplotlib.colors import to_rgb

    table = verdict_table(run.cells)
    ax = verdict_figure(run.cells).axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    columns = [t.get_text() for t in ax.get_xticklabels()]
    assert sorted(rows) == ["kaiming_normal", "normal", "torch_default", "xavier_normal"]
    assert columns == ["linear", "relu"]
    rgb = ax.images[0].get_array()
    assert rgb.shape == (4, 2, 3)
    labels = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
              for t in ax.texts}  # fmt: skip
    assert len(labels) == 8
    for _, r in table.iterrows():
        i, j = rows.index(r["scheme"]), columns.index(r["activation"])
        np.testing.assert_allclose(rgb[i, j], to_rgb(STATUS_COLORS[r["status"]]))
        if r["status"] == "diverges":  # its kind and layer
            assert labels[i, j] == f"{r['kind']} @{r['layer']}"
        else:  # its factor (all signals here: with gradients in the band or out with them)
            assert labels[i, j] == times(r["signal"])
    assert labels[rows.index("normal"), 0] == "overflow @32"
    assert re.fullmatch(r"×\S+e-\d+", labels[rows.index("xavier_normal"), 1])  # about 2^-20


def test_one_sentence_per_activation_with_its_schemes(run: initsuite.SweepResult) -> None:
    linear, relu = verdict_sentences(verdict_table(run.cells))
    assert relu.startswith("relu at depth 40: kaiming_normal keeps the signal and gradient; ")
    # Xavier halves the variance a layer, PyTorch's default more: both vanish, as predicted,
    # each in its own clause (2^-20 and about 1e-16 are not one magnitude)
    for scheme in ("torch_default", "xavier_normal"):
        assert re.search(rf"; {scheme} vanishes \(×\S+e-\d+, as the theory predicts\)", relu)
    layer, theory = map(int, re.search(r"; normal overflows \(at layer (\d+), theory (\d+)\)",
                                       linear).groups())  # fmt: skip
    assert (layer, theory) == (32, 32)
    assert linear.startswith("linear at depth 40: ") and relu.endswith(".")


def test_a_namesakes_schemes_are_named_once_where_all_of_them_agree() -> None:
    def table(statuses: dict[str, str]) -> pd.DataFrame:
        signal = {"keeps": 1.0, "drifts": 1e-31}
        return pd.DataFrame({
            "arch": "mlp", "activation": "relu", "depth": 200, "scheme": list(statuses),
            "status": list(statuses.values()), "gradient": math.nan,
            "signal": [signal[s] for s in statuses.values()], "theory_gradient": math.nan,
            "theory_signal": [signal[s] * 3 for s in statuses.values()],
        })  # fmt: skip

    both = {"kaiming_normal": "keeps", "lecun_normal": "drifts", "lecun_uniform": "drifts",
            "xavier_normal": "drifts", "xavier_uniform": "drifts"}  # fmt: skip
    assert verdict_sentences(table(both)) == [
        "relu at depth 200: kaiming_normal keeps the signal; the LeCun and Xavier schemes "
        "vanish (×1e-31, as the theory predicts)."
    ]
    far = table(both).assign(signal=[1.0, 1e-31, 1e-31, 1e-31, 1e-9])  # not one magnitude
    assert verdict_sentences(far.assign(theory_signal=far["signal"])) == [
        "relu at depth 200: kaiming_normal keeps the signal; the LeCun schemes and "
        "xavier_normal vanish (×1e-31, as the theory predicts); xavier_uniform vanishes "
        "(×1e-9, as the theory predicts)."
    ]
    split = {**both, "xavier_uniform": "keeps"}  # the Xavier schemes disagree: named each
    assert verdict_sentences(table(split)) == [
        "relu at depth 200: kaiming_normal and xavier_uniform keep the signal; the LeCun "
        "schemes and xavier_normal vanish (×1e-31, as the theory predicts)."
    ]

"""The training study (``initsuite.train`` / ``initsuite train``): the classic result in kind,
at a size that runs in seconds; determinism; the network and data it trains on; bad input."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import count_parses

import initsuite
from initsuite import activations, schemes
from initsuite.cli import main
from initsuite.core.errors import InitsuiteError
from initsuite.results.training import TrainingResult
from initsuite.studies.fit import SGD_MOMENTUM, FitConfig, load_dataset, make_mlp
from initsuite.studies.training import train

# Small but deep enough to show the effect: 16 ReLU layers of 48 units, 120 SGD steps.
SMALL = dict(depth=16, width=48, steps=120, lr=0.005, eval_every=10)
CHANCE = math.log(10)


@pytest.fixture(scope="module")
def classic() -> TrainingResult:
    return train(["kaiming_normal", "xavier_normal", "torch_default"], "relu", seeds=[0],
                 **SMALL)  # fmt: skip


def test_deep_relu_trains_from_kaiming_and_stalls_from_xavier_and_default(
    classic: TrainingResult,
) -> None:
    """He et al. 2015 in kind: Kaiming's loss falls far below chance; Xavier (gain 1) and
    PyTorch's default start at chance (their output is ~2^-8 and smaller) and stay there,
    within 0.1% of ln 10, after the same 120 steps on the same batches."""
    runs = classic.runs.set_index("scheme")
    assert runs.loc["kaiming_normal", "final_train_loss"] < 1.0
    assert runs.loc["kaiming_normal", "final_test_accuracy"] > 0.5
    for stalled in ("xavier_normal", "torch_default"):
        assert runs.loc[stalled, "final_train_loss"] == pytest.approx(CHANCE, rel=1e-3)
        assert runs.loc[stalled, "initial_train_loss"] == pytest.approx(CHANCE, rel=1e-3)
        assert not runs.loc[stalled, "reached"]
        assert pd.isna(runs.loc[stalled, "steps_to_threshold"])
    assert not runs["diverged"].any()


def test_tanh_trains_from_xavier_with_the_tanh_gain() -> None:
    res = train("xavier_normal:gain=auto", "tanh", seeds=[0], threshold=0.4, **SMALL)
    run = res.runs.iloc[0]
    assert run["final_train_loss"] < 0.4 and run["reached"]
    # steps_to_threshold is the first evaluated step at or below the threshold
    ev = res.curves[res.curves["train_loss"].notna()]
    first = int(ev.loc[ev["train_loss"] <= 0.4, "step"].min())
    assert run["steps_to_threshold"] == first
    assert (ev.loc[ev["step"] < first, "train_loss"] > 0.4).all()


def test_same_seed_same_curves_and_seeds_differ() -> None:
    kw = dict(depth=4, width=16, steps=30, eval_every=5)
    a = train("kaiming_normal", "relu", seeds=[0, 1], **kw)
    b = train("kaiming_normal", "relu", seeds=[0, 1], **kw)
    pd.testing.assert_frame_equal(a.curves, b.curves)
    pd.testing.assert_frame_equal(a.runs, b.runs)
    s0 = a.curves[a.curves["seed"] == 0]["batch_loss"].to_numpy()
    s1 = a.curves[a.curves["seed"] == 1]["batch_loss"].to_numpy()
    assert not np.allclose(s0[1:], s1[1:])


def test_training_resolves_each_spec_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The specs are parsed when the study is configured, once each, not once per run."""
    parsed = count_parses(monkeypatch)
    runs = train(["kaiming_normal", "xavier_normal:gain=auto"], ["relu", "tanh"], seeds=[0, 1],
                 depth=3, width=8, steps=2, eval_every=1).runs  # fmt: skip
    assert len(runs) == 8
    assert parsed == Counter({
        ("scheme", "kaiming_normal"): 1, ("scheme", "xavier_normal:gain=auto"): 1,
        ("activation", "relu"): 1, ("activation", "tanh"): 1,
    })  # fmt: skip


def test_tables_are_tidy(classic: TrainingResult) -> None:
    curves, runs = classic.curves, classic.runs
    assert tuple(curves.columns) == initsuite.results.columns.TRAINING
    assert tuple(runs.columns) == initsuite.results.columns.TRAINING_RUNS
    for _, g in curves.groupby(["scheme", "seed"]):
        assert g["step"].tolist() == list(range(0, SMALL["steps"] + 1))
        evaluated = g.loc[g["train_loss"].notna(), "step"].tolist()
        assert evaluated == list(range(0, SMALL["steps"] + 1, SMALL["eval_every"]))
        assert math.isnan(g["batch_loss"].iloc[0])  # no batch before the first update
    assert (runs["steps"] == SMALL["steps"]).all() and len(runs) == 3


def test_a_run_that_blows_up_is_marked_diverged() -> None:
    res = train("kaiming_normal", "relu", depth=6, width=32, seeds=[0], steps=60, lr=50.0,
                momentum=0.0)  # fmt: skip
    run = res.runs.iloc[0]
    assert run["diverged"] and not run["reached"]
    step = int(run["diverged_step"])
    assert 1 <= step <= 60
    assert math.isnan(run["final_train_loss"])
    assert int(res.curves["step"].max()) == step  # nothing recorded after it


def test_the_network_is_drawn_by_the_scheme_in_layer_order() -> None:
    """make_mlp: depth Linear layers 64 → width … → 10, each weight the scheme's own draw
    from one generator in order (so the first layer uses fan_in 64)."""
    gen = torch.Generator().manual_seed(5)
    net = make_mlp("kaiming_normal", "relu", 4, 32, 64, 10, gen)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(32, 64), (32, 32), (32, 32), (10, 32)]
    assert all(m.bias is None for m in linears)
    ref = torch.Generator().manual_seed(5)
    init = schemes.get("kaiming_normal")
    for m in linears:
        w = torch.empty_like(m.weight)
        init(w, activation=activations.get("relu"), generator=ref)
        torch.testing.assert_close(m.weight.detach(), w, rtol=0, atol=0)
    assert len(net) == 4 + 3  # an activation after all but the last layer


@pytest.mark.parametrize("bias", [None, "zeros"])
def test_bias_law_zeros_starts_every_bias_at_zero_and_changes_no_weight(bias: str | None) -> None:
    """``bias="zeros"``: each Linear has a bias, all 0, and the weights are the bias-free
    net's (the bias draws nothing from the generator)."""
    nets = [make_mlp("kaiming_normal", "relu", 3, 8, 64, 10, torch.Generator().manual_seed(1),
                     bias=b) for b in (None, bias)]  # fmt: skip
    linears = [[m for m in net if isinstance(m, torch.nn.Linear)] for net in nets]
    for plain, other in zip(*linears, strict=True):
        assert torch.equal(plain.weight, other.weight)
        if bias is None:
            assert other.bias is None
        else:
            assert other.bias is not None and not other.bias.any()


def test_training_with_zero_biases_is_recorded_by_the_laws_name(tmp_path: Path) -> None:
    kw = dict(depth=3, width=8, seeds=[0], steps=5, eval_every=5)
    res = train("kaiming_normal", "relu", bias="zeros", **kw)
    assert res.meta["config"]["bias"] == "zeros"
    assert train("kaiming_normal", "relu", **kw).meta["config"]["bias"] is None
    back = TrainingResult.load(res.save(tmp_path / "t"))
    assert back.meta["config"]["bias"] == "zeros"


@pytest.mark.parametrize(
    ("bias", "message"),
    [
        (True, "bias must name its law ('zeros', None), got True; did you mean bias='zeros'?"),
        ("zero", "unknown bias law 'zero'; did you mean 'zeros'?"),
        ("torch_default", "training does not draw bias 'torch_default' (choose from 'zeros', "
                          "None)"),
    ],
)  # fmt: skip
def test_a_bias_that_names_no_law_training_draws_is_refused(bias: object, message: str) -> None:
    with pytest.raises(InitsuiteError) as info:
        train("kaiming_normal", "relu", depth=3, width=8, steps=2, bias=bias)  # type: ignore[arg-type]
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_a_training_directory_stored_with_bias_true_loads_as_zeros(tmp_path: Path) -> None:
    """Training directories written before bias laws had names stored ``"bias": true``,
    which meant zero biases; they load with the law's name."""
    res = train("kaiming_normal", "relu", depth=3, width=8, seeds=[0], steps=2)
    for stored, law in ((True, "zeros"), (False, None)):
        meta = {**res.meta, "config": {**res.meta["config"], "bias": stored}}
        out = TrainingResult(res.curves, res.runs, meta).save(tmp_path / str(stored))
        assert TrainingResult.load(out).meta["config"]["bias"] == law
    meta = {**res.meta, "config": {**res.meta["config"], "bias": 3}}
    out = TrainingResult(res.curves, res.runs, meta).save(tmp_path / "bad")
    with pytest.raises(InitsuiteError, match=r"meta\.json'.*got 3: damaged"):
        TrainingResult.load(out)


def test_cli_bias_flag_names_zeros_by_default(tmp_path: Path) -> None:
    base = ["train", "--schemes", "kaiming_normal", "--depth", "3", "--width", "8",
            "--steps", "2", "--seeds", "1", "--quiet"]  # fmt: skip
    assert main([*base, "--bias", "--out", str(tmp_path / "a")]) == 0
    assert main([*base, "--bias", "zeros", "--out", str(tmp_path / "b")]) == 0
    for d in ("a", "b"):
        assert TrainingResult.load(tmp_path / d).meta["config"]["bias"] == "zeros"


def test_digits_split_and_standardisation() -> None:
    data = load_dataset("digits")
    assert (len(data.x_train), len(data.x_test)) == (1438, 359)
    assert data.classes == 10 and data.features == 64
    mean, std = data.x_train.mean(dim=0), data.x_train.std(dim=0)
    assert mean.abs().max() < 1e-12
    varying = std > 0
    torch.testing.assert_close(std[varying], torch.ones_like(std[varying]))
    again = load_dataset("digits")
    assert torch.equal(again.y_test, data.y_test)  # a fixed split


def test_save_load_and_report_section(
    classic: TrainingResult, tmp_path: Path, small_sweep_dir: Path
) -> None:
    from initsuite.report import write_report

    classic.save(str(tmp_path / "train"))
    back = TrainingResult.load(str(tmp_path / "train"))
    pd.testing.assert_frame_equal(back.curves, classic.curves)
    pd.testing.assert_frame_equal(back.runs, classic.runs)
    run = tmp_path / "r"
    text = write_report(small_sweep_dir, training_dir=tmp_path / "train", out_dir=run).read_text()
    assert "## Training" in text
    for name in ("training_loss", "training_steps"):
        assert f"figures/{name}.png" in text
        assert (run / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    row = next(line for line in text.splitlines() if "| xavier_normal" in line)
    assert "0/1" in row  # reached threshold: 0 of 1 run
    with pytest.raises(InitsuiteError, match=r"holds a sweep .*, not a training study"):
        TrainingResult.load(str(small_sweep_dir))


def test_cli_train_writes_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "t"
    code = main(["train", "--schemes", "kaiming_normal", "--activations", "relu",
                 "--depth", "3", "--width", "16", "--seeds", "1", "--steps", "20",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    assert "wrote 1 runs" in capsys.readouterr().out
    res = TrainingResult.load(str(out))
    assert res.meta["config"]["steps"] == 20 and res.meta["kind"] == "training"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--optimizer", "adamw"], "unknown optimizer 'adamw'; did you mean 'adam'?"),
        (["--depth", "1"], "depth must be >= 2, got 1"),
        (["--dtype", "float16"], "use 'float32'"),
        (["--lr", "0"], "lr must be a positive finite number, got 0.0"),
        (["--lr", "inf"], "lr must be a positive finite number, got inf"),
        (["--threshold", "inf"], "threshold must be a positive finite number, got inf"),
        (["--momentum", "1.5"], "momentum must be a number in [0, 1), got 1.5"),
        (
            ["--optimizer", "adam", "--momentum", "0.5"],
            "--momentum 0.5 is SGD's: --optimizer adam has no momentum; "
            "drop --momentum or use --optimizer sgd",
        ),
        (["--dataset", "digit"], "did you mean 'digits'?"),
        (["--batch-size", "5000"], "exceeds the 1438 training examples"),
        (["--schemes", "kaiming_nromal"], "did you mean 'kaiming_normal'?"),
        (["--bias", "torch_default"], "training does not draw bias 'torch_default'"),
    ],
)
def test_cli_bad_input_is_one_line_and_writes_nothing(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    base = ["train", "--schemes", "kaiming_normal", "--depth", "3", "--width", "8",
            "--steps", "2", "--out", str(tmp_path / "t")]  # fmt: skip
    code = main(base + argv)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert not (tmp_path / "t").exists()


def test_momentum_is_sgds_alone() -> None:
    """SGD takes 0.9 unless given another; Adam has no momentum, so one given with it (which
    it would ignore) is refused, and its run records none."""
    assert FitConfig().momentum == SGD_MOMENTUM == 0.9
    assert FitConfig(momentum=0.0).momentum == 0.0
    with pytest.raises(InitsuiteError) as exc:
        FitConfig(optimizer="adam", momentum=0.9)
    assert str(exc.value) == ("momentum=0.9 is SGD's: optimizer='adam' has no momentum; drop "
                              "momentum or use optimizer='sgd'")  # fmt: skip
    res = train("kaiming_normal", "relu", depth=3, width=8, seeds=1, steps=2, optimizer="adam")
    assert res.meta["config"]["optimizer"] == "adam" and res.meta["config"]["momentum"] is None


def test_missing_scikit_learn_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import fails
    with pytest.raises(InitsuiteError, match=r"pip install 'initsuite\[train\]'"):
        load_dataset("digits")


def test_the_batch_is_stored_as_batch_and_an_older_batch_size_still_reports(
    classic: TrainingResult, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``batch`` in every study (train took ``batch_size``); a directory written before says
    ``batch_size``, and its report still reads it. ``--batch-size`` stays the flag's old name."""
    import dataclasses

    from initsuite.report.training import training_section

    cfg = classic.meta["config"]
    said = f"batches of {cfg['batch']},"
    assert "batch_size" not in cfg and said in training_section(classic, [], 0)
    old = {**cfg, "batch_size": cfg["batch"]}
    del old["batch"]
    older = dataclasses.replace(classic, meta={**classic.meta, "config": old})
    assert said in training_section(older, [], 0)
    base = ["train", "--schemes", "kaiming_normal", "--depth", "3", "--width", "8", "--seeds",
            "1", "--steps", "2"]  # fmt: skip
    for flag in ("--batch", "--batch-size"):
        out = tmp_path / flag.strip("-")
        assert main([*base, flag, "16", "--out", str(out), "--quiet"]) == 0
        assert TrainingResult.load(out).meta["config"]["batch"] == 16

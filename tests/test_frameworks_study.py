"""The frameworks study (``initsuite reproduce frameworks``): what it measures against plain
torch, σ_w² against each law's formula, its divergence rule, its directory and report."""

from __future__ import annotations

import functools
import itertools
import json
import math
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest
import torch

from initsuite.core.errors import InitsuiteError
from initsuite.engine.reinit import apply
from initsuite.results.frameworks import FrameworksResult
from initsuite.schemes import conventions
from initsuite.studies import frameworks as FW
from initsuite.studies.probe import INPUT_SEED_OFFSET
from tests.helpers import run_cli
from tests.test_report_directory import NO_TORCH

ROOT = Path(__file__).resolve().parents[1]
# small nets keep the file to a few seconds; the study's own are 4-10x wider and deeper
SMALL = (
    FW.ModelSpec("mlp_relu_8", "mlp", "relu", 8, 128, 11),
    FW.ModelSpec("conv_relu_3", "conv", "relu", 3, 8, 13),
    FW.ModelSpec("resmlp_relu_3", "resmlp", "relu", 3, 32, 14),
    FW.ModelSpec("transformer_1", "transformer", "relu", 1, 16, 15),
)


@pytest.fixture(scope="module")
def study() -> FrameworksResult:
    return FW.frameworks_study(["torch_default", "kaiming_normal"], seeds=1, models=SMALL,
                               train_steps=0)  # fmt: skip


@pytest.fixture(scope="module")
def trained() -> FrameworksResult:
    """Two conventions, each law's digits MLP trained (200 steps: keras' tanh net reaches the
    threshold near step 100)."""
    return FW.frameworks_study(["keras", "hf_bert"], seeds=1, models=SMALL[:1], train_steps=200)


def test_layer_stds_match_a_plain_forward_loop(study: FrameworksResult) -> None:
    """Each layer's std is torch.std of the block's output, the net built and drawn by hand."""
    spec, seed = SMALL[0], 0
    model = FW.build_model(spec)
    apply(model, "kaiming_normal", generator=torch.Generator().manual_seed(seed))
    h = torch.randn(
        64, spec.width, generator=torch.Generator().manual_seed(seed + INPUT_SEED_OFFSET)
    )
    want = []
    with torch.no_grad():
        for block in model:
            h = block(h)
            want.append(float(h.double().std()))
    got = study.layers.query("law == 'kaiming_normal' and model == @spec.name and seed == @seed")
    assert got["layer"].tolist() == list(range(1, spec.depth + 1))
    # float32 forward both ways; the statistics differ only in their float64 accumulation
    assert got["std"].to_numpy() == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize(("law", "sigma_w2"), [("torch_default", 1 / 3), ("kaiming_normal", 2.0)])
def test_sigma_w2_is_the_laws_variance_times_fan_in(
    study: FrameworksResult, law: str, sigma_w2: float
) -> None:
    """torch_default: U(±1/√fan_in), variance 1/(3 fan_in); kaiming_normal: N(0, 2/fan_in).
    Biases stay torch's U(±1/√fan_in) under a scheme spec: σ_b² = 1/(3·fan_in)."""
    runs = study.runs.query("law == @law and model == 'mlp_relu_8'")
    # 8 × 128² draws: the sd of the mean of W² is √(2/n) ≈ 0.4% (normal); 3% is > 7 sd
    assert runs["sigma_w2"].to_numpy() == pytest.approx(sigma_w2, rel=0.03)
    # 8 × 128 biases: sd of their mean square ≈ 3%; 15% is 5 sd
    assert runs["sigma_b2"].to_numpy() == pytest.approx(1 / (3 * 128), rel=0.15)
    assert runs["critical_sigma_w2"].to_numpy() == pytest.approx(2.0, rel=1e-6)  # ReLU: 2


def test_only_plain_stacks_have_a_critical_sigma_w2(study: FrameworksResult) -> None:
    crit = study.runs.groupby("model")["critical_sigma_w2"].first()
    assert crit[["resmlp_relu_3", "transformer_1"]].isna().all()
    assert crit[["mlp_relu_8", "conv_relu_3"]].notna().all()


def test_divergence_is_the_first_layer_out_of_the_engines_range(study: FrameworksResult) -> None:
    """torch_default on a ReLU stack (σ_w² = 1/3, critical 2) vanishes at the first layer whose
    std falls below VANISH_AT × the input's; He's init stays in range."""
    for (law, model, seed), run in study.runs.groupby(["law", "model", "seed"]):
        layers = study.layers.query("law == @law and model == @model and seed == @seed")
        std = layers["std"].to_numpy() / run["input_std"].iloc[0]
        out = (std < FW.VANISH_AT) | (std > FW.EXPLODE_AT)
        want = int(out.argmax()) + 1 if out.any() else None
        got = run["divergence_layer"].iloc[0]
        assert (None if pd.isna(got) else int(got)) == want, (law, model, seed)
    relu = study.runs.query("model == 'mlp_relu_8'").set_index(["law", "seed"])
    assert (relu.loc["torch_default", "divergence_kind"] == "vanish").all()
    assert relu.loc["kaiming_normal", "divergence_kind"].isna().all()


def test_store_round_trip_and_a_damaged_table_refused(
    study: FrameworksResult, tmp_path: Path
) -> None:
    path = study.save(tmp_path / "fw")
    back = FrameworksResult.load(path)
    pd.testing.assert_frame_equal(back.runs, study.runs)
    pd.testing.assert_frame_equal(back.layers, study.layers)
    assert back.meta["kind"] == "frameworks"
    runs = pd.read_parquet(path / "runs.parquet")
    runs["final_std"] = runs["final_std"].astype(str)
    runs.to_parquet(path / "runs.parquet", index=False)
    with pytest.raises(InitsuiteError, match=r"column 'final_std' of .*runs\.parquet"):
        FrameworksResult.load(path)


def test_the_report_renders_from_the_directory_alone(
    study: FrameworksResult, tmp_path: Path
) -> None:
    """``initsuite report DIR`` with torch unavailable: the directory is all it reads."""
    path = study.save(tmp_path / "fw")
    code = (
        NO_TORCH + "import sys\n"
        "from initsuite.cli import main\n"
        f"sys.exit(main(['report', {str(path)!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = (path / "report.md").read_text()
    assert text.startswith("# initsuite frameworks report: fw")
    assert "## Which defaults keep a deep unnormalised net in range" in text
    assert "- **torch_default** keeps in range:" in text
    assert "mlp_relu_8: σ_w² 0.33" in text and "ordered" in text
    assert sorted(p.name for p in (path / "figures").iterdir()) == [
        "frameworks_final_std.png", "frameworks_sigma_w2.png"]  # fmt: skip


def test_reproduce_frameworks_writes_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`initsuite reproduce frameworks` (one small net stands in for the study's seven, and
    two SGD steps for the study's TRAIN_STEPS, which the command asks for by default)."""
    asked: list[int] = []
    study = FW.frameworks_study

    def small(laws: Sequence[str], *, seeds: int = FW.SEEDS,
              train_steps: int = FW.TRAIN_STEPS) -> FrameworksResult:  # fmt: skip
        asked.append(train_steps)
        return study(laws, seeds=seeds, models=SMALL[:1], train_steps=2)

    monkeypatch.setattr(FW, "frameworks_study", small)
    out = tmp_path / "fw"
    args = ["reproduce", "frameworks", "--out", str(out), "--laws",
            "torch_default,xavier_uniform", "--seeds", "1"]  # fmt: skip
    code, stdout, err = run_cli(args, capsys)
    assert code == 0, err
    assert asked == [FW.TRAIN_STEPS]  # no --train-steps: the study's own
    meta = json.loads((out / "meta.json").read_text())
    assert meta["config"]["laws"] == ["torch_default", "xavier_uniform"]
    assert meta["config"]["seeds"] == [0]
    assert len(FrameworksResult.load(out).runs) == 2
    assert "wrote 2 runs" in stdout and "and 4 training runs" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--laws", "torch_default,kaimng_normal"],
         "law 'kaimng_normal': unknown scheme or convention 'kaimng_normal'; did you mean "
         "'kaiming_normal'?"),
        (["--laws", "hf-bert"], "unknown scheme or convention 'hf-bert'; did you mean 'hf_bert'?"),
        (["--laws", "torch", "--train-steps", "-1"], "train_steps must be >= 0, got -1"),
        (["--laws", "torch_default", "--seeds", "0"], "seeds must be >= 1, got 0"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_writes_nothing(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fw"
    code, stdout, err = run_cli(["reproduce", "frameworks", "--out", str(out), *args], capsys)
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []


def test_laws_are_checked_before_any_net_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    def built(_spec: object) -> None:
        raise AssertionError("a net was built before the laws were checked")

    monkeypatch.setattr(FW, "build_model", built)
    with pytest.raises(InitsuiteError, match=r"^law 'nope': unknown scheme or convention 'nope'"):
        FW.frameworks_study(["torch_default", "nope"], seeds=1, models=SMALL)
    with pytest.raises(InitsuiteError, match="laws must not be empty"):
        FW.frameworks_study([], seeds=1, models=SMALL)


def test_training_follows_sigma_w2_against_the_critical_value(trained: FrameworksResult) -> None:
    """Keras' Glorot uniform puts a tanh net on the critical line (σ_w² ≈ 1) and it trains;
    BERT's N(0, 0.02²) at width 128 gives σ_w² = 128·4e-4 = 0.05, deep in the ordered phase,
    and the net sits at chance; no framework default reaches ReLU's critical 2."""
    runs = trained.training_runs.set_index(["law", "activation"])
    assert len(runs) == 4 and (runs["depth"] == FW.TRAIN_DEPTH).all()
    assert bool(runs.loc[("keras", "tanh"), "reached"].item())
    assert runs.loc[("keras", "tanh"), "final_test_accuracy"].item() > 0.85
    for key in [("hf_bert", "tanh"), ("hf_bert", "relu"), ("keras", "relu")]:
        assert not bool(runs.loc[key, "reached"].item()), key
        assert abs(runs.loc[key, "final_train_loss"].item() - math.log(10)) < 0.05, key
    # σ_w² = fan_in·E[W²] averaged over the 30 layers: Glorot's 2·fan_in/(fan_in + fan_out)
    dims = [64] + [FW.TRAIN_WIDTH] * (FW.TRAIN_DEPTH - 1) + [10]
    glorot = sum(2 * a / (a + b) for a, b in itertools.pairwise(dims)) / FW.TRAIN_DEPTH
    assert runs.loc[("keras", "tanh"), "sigma_w2"].item() == pytest.approx(glorot, rel=0.02)
    assert runs.loc[("hf_bert", "tanh"), "sigma_w2"].item() == pytest.approx(
        sum(a * 4e-4 for a in dims[:-1]) / FW.TRAIN_DEPTH, rel=0.02)  # fmt: skip
    assert runs.loc[("keras", "tanh"), "critical_sigma_w2"].item() == pytest.approx(1, abs=1e-6)
    assert runs.loc[("keras", "relu"), "critical_sigma_w2"].item() == pytest.approx(2, abs=1e-6)


def test_training_curves_are_fit_on_the_law_drawn_net(trained: FrameworksResult) -> None:
    """The stored curve of (keras, tanh) is what fit() records on the net drawn by hand:
    torch builds it, apply re-draws it with the seed, the training study's loop trains it."""
    from initsuite.studies.fit import FitConfig, fit, load_dataset

    data = load_dataset()
    net = FW.digits_mlp("tanh", FW.TRAIN_DEPTH, FW.TRAIN_WIDTH, data)
    apply(net, "keras", generator=torch.Generator().manual_seed(0))
    assert isinstance(net[0], torch.nn.Linear) and net[0].bias is not None
    assert float(net[0].bias.detach().abs().max()) == 0.0  # Keras: zero bias
    rows, _ = fit(net, data, 0, FitConfig(steps=200))
    stored = trained.training[(trained.training["law"] == "keras")
                              & (trained.training["activation"] == "tanh")]  # fmt: skip
    assert stored["train_loss"].tolist() == pytest.approx([r["train_loss"] for r in rows],
                                                          nan_ok=True)  # fmt: skip
    assert stored["step"].tolist() == [r["step"] for r in rows]


def test_training_and_rules_round_trip_and_older_directories_load(
    trained: FrameworksResult, tmp_path: Path
) -> None:
    path = trained.save(tmp_path / "fw")
    back = FrameworksResult.load(path)
    for name in ("training", "training_runs", "conventions"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(trained, name))
    rules = back.conventions.set_index(["convention", "layer_type", "parameter"])
    assert rules.loc[("keras", "linear", "weight"), "rule"] == "xavier_uniform"
    assert rules.loc[("hf_bert", "embedding", "weight"), "rule"] == "normal:std=0.02"
    assert len(rules) == 2 * sum(len(p) for p in conventions.PARAMETERS.values())
    bad = pd.read_parquet(path / "training_runs.parquet").drop(columns="reached")
    bad.to_parquet(path / "training_runs.parquet", index=False)
    with pytest.raises(InitsuiteError, match=r"training_runs\.parquet' lacks column 'reached'"):
        FrameworksResult.load(path)
    for name in ("training", "training_runs", "conventions"):  # as written before they existed
        (path / f"{name}.parquet").unlink()
    old = FrameworksResult.load(path)
    assert old.training.empty and old.training_runs.empty and old.conventions.empty
    assert list(old.training_runs.columns) == list(trained.training_runs.columns)


def test_the_report_answers_which_defaults_train(trained: FrameworksResult, tmp_path: Path) -> None:
    from initsuite.report.frameworks import frameworks_plan

    plan = frameworks_plan(trained, str(tmp_path))
    assert [f.name for f in plan.figures] == [
        "frameworks_final_std", "frameworks_sigma_w2", "frameworks_training"]  # fmt: skip
    text = plan.text
    assert "## Training on digits" in text
    assert (
        "- **tanh**, depth 30 (critical σ_w² ≈ 1): trains from keras (σ_w² 1.02, critical)" in text
    )
    assert "does not (within 200 steps) from hf_bert (σ_w² 0.05" in text
    assert "- **relu**, depth 30 (critical σ_w² ≈ 2): trains from no law" in text
    assert "## The conventions applied" in text
    assert "| keras        | linear              | weight          | xavier_uniform" in text
    untrained = FrameworksResult(trained.layers, trained.runs, trained.meta)
    assert "Not trained in this study" in frameworks_plan(untrained, str(tmp_path)).text


def test_apply_suggests_the_convention_a_typo_meant() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(4, 4))
    with pytest.raises(
        InitsuiteError, match=r"did you mean 'hf_bert'\? \(conventions: torch, flax"
    ):
        apply(net, "hf-bert")
    with pytest.raises(InitsuiteError, match=r"did you mean 'kaiming_normal'\?"):
        apply(net, "kaiming_norml")


def test_train_steps_belongs_to_the_frameworks_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "iso"
    code, _, err = run_cli(["reproduce", "isometry", "--out", str(out), "--train-steps", "5"],
                           capsys)  # fmt: skip
    assert code == 2 and "--train-steps belongs to 'reproduce frameworks'" in err
    assert not out.exists()


def test_overwrite_replaces_a_frameworks_directory_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every table the study writes (training, conventions too) is known to be initsuite's."""
    monkeypatch.setattr(FW, "frameworks_study",
                        functools.partial(FW.frameworks_study, models=SMALL[:1]))  # fmt: skip
    out = tmp_path / "fw"
    args = ["reproduce", "frameworks", "--out", str(out), "--laws", "keras", "--seeds", "1",
            "--train-steps", "2"]  # fmt: skip
    assert run_cli(args, capsys)[0] == 0
    assert (out / "conventions.parquet").exists() and (out / "training.parquet").exists()
    code, _, err = run_cli([*args, "--overwrite"], capsys)
    assert code == 0, err
    assert len(FrameworksResult.load(out).training_runs) == 2


def test_every_net_of_the_study_is_a_kind_and_an_unknown_kind_names_the_nearest() -> None:
    """Each model's kind builds its blocks and its input from one table (no dispatch on the
    arch's name): depth blocks, an input the first block takes."""
    for spec in FW.MODELS:
        net = FW.build_model(FW.ModelSpec(spec.name, spec.arch, spec.activation, 2, 8, 0))
        assert len(net) == 2
        x = torch.zeros(FW.NET_KINDS[spec.arch].input_shape(8))
        assert net(x).shape == x.shape
    assert {s.arch for s in FW.MODELS} == set(FW.NET_KINDS)
    with pytest.raises(InitsuiteError, match=r"unknown arch 'resmpl'.*'resmlp'"):
        FW.build_model(FW.ModelSpec("x", "resmpl", "relu", 2, 8, 0))

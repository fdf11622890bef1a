"""The coordinate check (``initsuite.coord_check`` / ``initsuite coordcheck``): its statistics
against mup's own ``get_coord_data`` on the same model, data and seeds; what it records at
each step; its models' roles; its stored form; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import initsuite
from initsuite.cli import main
from initsuite.core.errors import InitsuiteError
from initsuite.results import columns as C
from initsuite.results.coordcheck import CoordCheckResult
from initsuite.studies import coordcheck as CC
from initsuite.studies.coord_engine import coord_data
from initsuite.studies.coord_models import ROLES, declared_roles
from initsuite.studies.coord_sources import get_model
from initsuite.studies.recorder import ROOT

mup = pytest.importorskip("mup")
from mup.coord_check import get_coord_data  # noqa: E402

# Both sides run the same float32 operations in the same order on the same tensors, so their
# l1 agree to the bit in practice; the tolerance only admits a reduction split otherwise.
RTOL = 1e-6
SMALL = dict(widths=[16, 64], steps=3, seeds=1)


@pytest.fixture(scope="module")
def sp() -> CoordCheckResult:
    return initsuite.coord_check("mlp", "sp", optimizer="adam", lr=0.01, **SMALL)  # type: ignore[arg-type]


def _mup_rows(df: pd.DataFrame) -> pd.DataFrame:
    """mup's records keyed as initsuite's: its t is the step + 1; its seeds are the order of
    the records (seed-major) and its root module is named ''."""
    df = df.assign(seed=df.groupby(["width", "module", "t"]).cumcount(), step=df["t"] - 1)
    return df.assign(module=df["module"].replace("", ROOT))


def _paired_l1(ours: pd.DataFrame, theirs: pd.DataFrame) -> pd.DataFrame:
    """mup's records beside initsuite's of the same (width, seed, step, module)."""
    keys = ["width", "seed", "step", "module"]
    return _mup_rows(theirs).merge(ours, on=keys, suffixes=("_mup", ""), validate="one_to_one")


class _MuMLP(nn.Module):
    """mup's MLP of its tests: 32 → w → w → 10, ReLU, MuReadout."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc1, self.act1 = nn.Linear(32, width), nn.ReLU()
        self.fc2, self.act2 = nn.Linear(width, width), nn.ReLU()
        self.readout = mup.MuReadout(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.act2(self.fc2(self.act1(self.fc1(x)))))


@pytest.mark.live("mup")
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_l1_equals_mups_get_coord_data_under_mup(optimizer: str) -> None:
    """mup's own μP setup (set_base_shapes, MuReadout, MuAdam/MuSGD), recorded by both."""
    base = mup.make_base_shapes(_MuMLP(8), _MuMLP(16))

    def lazy(width: int):  # type: ignore[no-untyped-def]
        def build() -> nn.Module:
            return mup.set_base_shapes(_MuMLP(width), base)

        return build

    models = {w: lazy(w) for w in (16, 64, 256)}
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 32, generator=g), torch.randint(10, (32,), generator=g)
    opt, lr = {"adam": (mup.MuAdam, 0.01), "sgd": (mup.MuSGD, 0.1)}[optimizer]
    theirs = get_coord_data(models, [(x, y)], optimizer=optimizer, lr=lr, mup=True, nsteps=3,
                            nseeds=2, cuda=False, show_progress=False)  # fmt: skip
    ours = coord_data(models, lambda m, s: opt(m.parameters(), lr=lr), (x, y),
                      nn.functional.cross_entropy, 3, (0, 1), seeding="mup")  # fmt: skip
    both = _paired_l1(ours, theirs)
    assert len(both) == len(theirs) > 0
    np.testing.assert_allclose(both["l1"], both["l1_mup"], rtol=RTOL)
    assert set(ours["step"]) == {0, 1, 2, 3}  # and one step more than mup records


@pytest.mark.live("mup")
def test_sp_of_the_api_equals_mups_get_coord_data(sp: CoordCheckResult) -> None:
    """The API's sp (the model as built, torch's Adam) on its own batch, against mup's
    get_coord_data(mup=False) on the same model and batch: one width at a time, since mup
    draws every width of a seed from one global stream and initsuite seeds each run."""
    model = get_model("mlp")
    x, y = CC.make_batch(CC.CoordCheckConfig(model="mlp", parametrizations=("sp",)))
    for width in SMALL["widths"]:  # type: ignore[attr-defined]
        theirs = get_coord_data({width: lambda w=width: model.build(w, 3)}, [(x, y)],
                                optimizer="adam", lr=0.01, mup=False, nsteps=3, nseeds=1,
                                cuda=False, show_progress=False)  # fmt: skip
        both = _paired_l1(sp.coords, theirs)
        assert len(both) == len(theirs) > 0, width
        np.testing.assert_allclose(both["l1"], both["l1_mup"], rtol=RTOL)


def test_each_step_records_every_module_its_change_and_the_loss(sp: CoordCheckResult) -> None:
    c = sp.coords
    assert list(c.columns) == list(C.COORDS)
    assert set(c["step"]) == {0, 1, 2, 3} and set(c["width"]) == {16, 64}
    modules = {"input", "acts.0", "hidden.0", "acts.1", "output", ROOT}
    assert set(c["module"]) == modules
    assert not c.duplicated(list(C.COORDS_KEYS)).any()
    roles = c.drop_duplicates("module").set_index("module")["role"]
    assert roles["input"] == "input" and roles["hidden.0"] == "hidden"
    assert roles["output"] == "output" and pd.isna(roles["acts.0"])
    # step 0 is the model as built: its output recomputed here, from the same seed
    x, y = CC.make_batch(CC.CoordCheckConfig(model="mlp", parametrizations=("sp",)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = get_model("mlp").build(64, 3)
    with torch.no_grad():
        h, out = net.input(x), net(x)
    at0 = c[(c["width"] == 64) & (c["step"] == 0)].set_index("module")
    assert at0.loc["input", "l1"] == pytest.approx(h.abs().mean().item(), rel=1e-6)
    assert at0.loc["input", "rms"] == pytest.approx(h.double().pow(2).mean().sqrt().item(),
                                                    rel=1e-6)  # fmt: skip
    loss = nn.functional.cross_entropy(out, y).item()
    assert at0.loc["output", "loss"] == pytest.approx(loss, rel=1e-6)
    assert (at0["delta_rms"] == 0).all()
    later = c[c["step"] > 0]
    assert (later["delta_rms"] > 0).all()  # Adam moves every weight from the first step
    # the change grows step by step, and the loss falls, on the one batch
    out = c[(c["module"] == "output") & (c["width"] == 64)].sort_values("step")
    assert out["delta_rms"].is_monotonic_increasing and out["loss"].is_monotonic_decreasing


def test_a_run_is_the_same_whatever_else_runs(sp: CoordCheckResult) -> None:
    """Each (width, seed) is seeded by itself: width 64 alone equals width 64 beside 16, and
    the caller's global RNG is left as it was."""
    state = torch.get_rng_state()
    alone = initsuite.coord_check("mlp", "sp", widths=[64], steps=3, seeds=1).coords
    assert torch.equal(torch.get_rng_state(), state)
    both = sp.coords[sp.coords["width"] == 64].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, both)


@pytest.mark.parametrize("name", ["mlp", "resmlp", "transformer"])
def test_every_parameter_of_a_built_in_model_has_a_role(name: str) -> None:
    net = get_model(name).build(32, 2)
    roles = declared_roles(net)
    assert set(roles) == {n for n, _ in net.named_parameters()}
    assert set(roles.values()) <= set(ROLES)
    # a residual branch's last weight carries the depth multiplier
    assert ("branch" in roles.values()) == (name != "mlp")


def test_resmlp_and_transformer_run_over_depth() -> None:
    res = initsuite.coord_check("transformer", "sp", widths=[16, 32], depths=[1, 2], steps=1,
                                seeds=1, batch=2)  # fmt: skip
    c = res.coords
    assert set(zip(c["width"], c["depth"], strict=True)) == {(16, 1), (16, 2), (32, 1), (32, 2)}
    assert {"wte", "blocks.1.attn.proj", "lm_head"} <= set(c["module"])
    assert c["l1"].notna().all() and np.isfinite(c["loss"]).all()


def test_an_hf_source_takes_its_width_and_depth_from_the_grid() -> None:
    """``hf:gpt2``: the width is n_embd with heads of 16, the depth n_layer; a source that
    sets them itself is refused."""
    pytest.importorskip("transformers")
    spec = "hf:gpt2,vocab_size=64,n_positions=32"
    net = get_model(spec).build(32, 1)
    config = net.model.config  # type: ignore[union-attr]
    assert (config.n_embd, config.n_head, config.n_layer) == (32, 2, 1)
    c = initsuite.coord_check(spec, "sp", widths=[16, 32], depths=1, steps=1, seeds=1).coords
    assert set(c["width"]) == {16, 32} and (c["model"] == spec).all()
    assert {"model.h.0.attn.c_attn", "lm_head", ROOT} <= set(c["module"])
    assert np.isfinite(c["loss"]).all()
    with pytest.raises(InitsuiteError, match=r"sets 'n_embd' from the width and depth"):
        get_model("hf:gpt2,n_embd=64")


def test_save_and_load_round_trip(sp: CoordCheckResult, tmp_path: Path) -> None:
    sp.save(tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["coords.parquet",
                                                                    "meta.json"]  # fmt: skip
    back = initsuite.CoordCheckResult.load(tmp_path / "run")
    pd.testing.assert_frame_equal(back.coords, sp.coords)
    assert back.meta == json.loads(json.dumps(sp.meta)) and back.meta["kind"] == "coordcheck"
    assert initsuite.result_class("coordcheck") is CoordCheckResult


def test_digits_feed_the_fixed_batch() -> None:
    """``data="digits"``: the first rows of a seeded permutation of the training split of
    scikit-learn's digits, standardised (the training study's loader)."""
    cfg = CC.CoordCheckConfig(model="mlp", parametrizations=("sp",), data="digits", batch=32)
    x, y = CC.make_batch(cfg)
    assert x.shape == (32, 64) and x.dtype == torch.float32 and set(y.tolist()) <= set(range(10))
    assert abs(x.mean().item()) < 0.5  # standardised features (the split's mean is 0)
    c = initsuite.coord_check("mlp", "sp", widths=[8], steps=1, seeds=1, data="digits").coords
    assert np.isfinite(c["loss"]).all() and (c["loss"] < 10).all()


def test_the_cli_writes_the_coords(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cc"
    argv = ["coordcheck", "--parametrizations", "sp", "--widths", "8,16", "--steps", "1",
            "--seeds", "1", "--options", "activation=tanh,inputs=8", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    back = CoordCheckResult.load(out)
    assert set(back.coords["width"]) == {8, 16} and back.meta["config"]["options"] == {
        "activation": "tanh", "inputs": 8}  # fmt: skip
    assert back.meta["command"].startswith("initsuite coordcheck")
    assert "l1@16" in capsys.readouterr().out


BAD = {
    "unknown parametrization": (["--parametrizations", "sp,mupp"],
                                "unknown parametrization 'mupp'; did you mean 'mup'? (choose "
                                "from completep, depth_mup, mean_field, mup, ntk, sp)"),
    "base larger than the model": (["--widths", "16,32", "--base-width", "32"],
                                   "--base-width 32 is larger than the model at width 16"),
    "widths that do not divide the heads": (["--model", "transformer", "--widths", "32,40"],
                                            "transformer width 40 is not a multiple of the head "
                                            "dimension 16"),
    "steps <= 0": (["--steps", "0"], "steps must be >= 1, got 0"),
    "a non-finite lr": (["--lr", "inf"], "lr must be a positive finite number, got inf"),
    "unknown model": (["--model", "mpl"], "unknown model 'mpl'; did you mean 'mlp'?"),
    "unknown data": (["--data", "digts"], "unknown data 'digts'; did you mean 'digits'?"),
    "unknown device": (["--device", "gpu"], "unknown device 'gpu'; did you mean 'cpu'?"),
    "digits on a transformer": (["--model", "transformer", "--widths", "16", "--data", "digits"],
                                "data 'digits' feeds 8×8 images (64 inputs, 10 classes)"),
    "unknown option": (["--options", "activaton=tanh"],
                       "model 'mlp' has no parameter 'activaton'; did you mean 'activation'?"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_writes_nothing(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags, message = BAD[case]
    out = tmp_path / "cc"
    assert main(["coordcheck", "--parametrizations", "sp", *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_a_user_factory_runs_and_its_errors_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "umods.py").write_text(
        "from torch import nn\n"
        "def good(width, depth, inputs=64):\n"
        "    return nn.Sequential(nn.Linear(inputs, width), nn.Tanh(), nn.Linear(width, 10))\n"
        "def narrow(width, depth):\n"
        "    return nn.Sequential(nn.Linear(32, width), nn.Linear(width, 10))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    c = initsuite.coord_check("umods:good", "sp", widths=[8, 16], steps=1, seeds=1,
                              options={"inputs": 16}).coords  # fmt: skip
    assert {"0", "1", "2", ROOT} == set(c["module"]) and (c["model"] == "umods:good").all()
    out = tmp_path / "cc"
    argv = ["coordcheck", "--model", "umods:narrow", "--parametrizations", "sp", "--widths",
            "8", "--steps", "1", "--seeds", "1", "--out", str(out)]  # fmt: skip
    assert main(argv) == 2 and not out.exists()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert ("model 'umods:narrow' failed at depth 3 (the check feeds it 64×64 features; options "
            "inputs=N, classes=N change them): RuntimeError: ") in err  # fmt: skip


def test_a_parametrization_without_rules_for_the_optimizer_is_one_line() -> None:
    """completep defines Adam's learning rates only: refused before any run computes."""
    with pytest.raises(InitsuiteError, match=r"^parametrization 'completep' defines learning "
                       r"rates for adam only, not 'sgd'"):  # fmt: skip
        initsuite.coord_check("mlp", ["sp", "completep"], widths=[8], optimizer="sgd")


def test_sp_grows_with_width_where_mup_stays_flat() -> None:
    """Tensor Programs V's figure in kind: after 3 Adam steps the readout's l1 grows about as
    width under SP (slope ≈ 1 in log-log, measured 1.0 on 64..1024) and stays flat under μP."""
    res = initsuite.coord_check("mlp", ["sp", "mup"], widths=[64, 256, 1024], steps=3, seeds=1)
    last = res.coords.query("module == 'output' and step == 3")
    for name, bound in (("sp", (0.6, 1.4)), ("mup", (-0.2, 0.2))):
        rows = last[last["parametrization"] == name]
        slope = np.polyfit(np.log(rows["width"]), np.log(rows["l1"]), 1)[0]
        assert bound[0] < slope < bound[1], (name, slope)


def test_a_dask_executor_runs_each_run_as_a_task_and_equals_the_local_check(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One task per parametrization × depth × width × seed (its config sent as plain data):
    the table equals the in-process one. An in-process cluster keeps the test quick; the task
    and its arguments pickle, as a cluster of processes needs."""
    import pickle

    pytest.importorskip("dask.distributed")
    from dask.distributed import Client

    from initsuite.studies.sweep.executors import DaskExecutor

    grid = dict(widths=[8, 16], depths=[2, 3], steps=1, seeds=2)
    local = initsuite.coord_check("mlp", ["sp", "mup"], **grid)
    cfg = CC.CoordCheckConfig(model="mlp", parametrizations=("sp", "mup"), widths=(8, 16),
                              depths=(2, 3), steps=1, seeds=(0, 1))  # fmt: skip
    task, config, key = pickle.loads(pickle.dumps((CC.coord_task, cfg.to_dict(),
                                                   ["mup", 3, 16, 1])))  # fmt: skip
    one = task(config, key)
    assert set(one["width"]) == {16} and set(one["seed"]) == {1}
    client = Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None)
    with DaskExecutor(client=client) as ex:
        remote = initsuite.coord_check("mlp", ["sp", "mup"], **grid, executor=ex)
    pd.testing.assert_frame_equal(remote.coords, local.coords)
    assert main(["coordcheck", "--scheduler", "tcp://x:1", "--out", "never"]) == 2
    assert "--scheduler is for --executor dask" in capsys.readouterr().err

"""``initsuite reproduce kernel-shaping``: its runs equal a plain torch loop's, its steps to
the threshold are read off the stored curves, the CLI writes the tables and a report that
opens with the verdict, and bad input is one line."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import initsuite
from initsuite import activations, schemes
from initsuite.cli import main
from initsuite.core.errors import InitsuiteError
from initsuite.report.kernel_shaping import steps_to_threshold
from initsuite.results.kernel_shaping import KernelShapingResult
from initsuite.studies.fit import ORDER_SEED_OFFSET, load_dataset
from initsuite.studies.kernel_shaping import NETS

# tiny nets, deep enough for TAT's C(0) = 0.9 (a leaky-ReLU chain of 15 layers reaches it)
TINY = {"depths": [16], "width": 8, "seeds": 2, "steps": 6, "batch": 32, "eval_every": 2}


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every net of the study, tiny, written by the CLI and reported once per module."""
    out = tmp_path_factory.mktemp("kshaping") / "run"
    argv = ["reproduce", "kernel-shaping", "--depths", "16", "--width", "8", "--seeds", "2",
            "--steps", "6", "--lr", "0.01", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert main(["report", str(out)]) == 0
    return out


def _plain_loop(net: str, depth: int, width: int, seed: int, steps: int, batch: int,
                lr: float) -> list[float]:  # fmt: skip
    """The minibatch loss of every step of ``net``, written here as a plain torch loop: the
    weights in layer order from one generator, the act and the input as the papers say."""
    data = load_dataset()
    x, y = data.x_train.float(), data.y_train
    dims = [x.shape[1]] + [width] * (depth - 1) + [10]
    g = torch.Generator().manual_seed(seed)
    weights = []
    for fan_in, fan_out in itertools.pairwise(dims):
        w = torch.empty(fan_out, fan_in)
        if net == "relu_he":  # He et al.: N(0, 2 / fan_in)
            torch.nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g)
        else:  # DKS's SUO, as initsuite's scheme draws it (checked against dks elsewhere)
            schemes.get("scaled_orthogonal")(w, generator=g)
        weights.append(w.requires_grad_())
    if net == "relu_he":
        act = torch.relu
    else:  # γ·(tanh(α·x + β) + δ), the constants solved for the net's depth − 1 tanh layers
        s = activations.get(f"dks:tanh:zeta=1.5,depth={depth - 1}").shaping
        act = lambda t: s.gamma * (torch.tanh(s.alpha * t + s.beta) + s.delta)  # noqa: E731
        x = x / x.square().mean(dim=1, keepdim=True).sqrt()  # q = 1 per example
    opt = torch.optim.Adam(weights, lr=lr)
    order_gen = torch.Generator().manual_seed(seed + ORDER_SEED_OFFSET)
    order = torch.randperm(len(x), generator=order_gen)
    losses = []
    for step in range(steps):
        idx = order[step * batch : (step + 1) * batch]
        h = x[idx]
        for w in weights[:-1]:
            h = act(h @ w.T)
        loss = F.cross_entropy(h @ weights[-1].T, y[idx])
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses


@pytest.mark.parametrize("net", ["relu_he", "dks_tanh"])
def test_a_run_equals_a_plain_torch_loop_and_leaves_the_callers_rng_alone(net: str) -> None:
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    res = initsuite.reproduce("kernel-shaping", nets=[net], **{**TINY, "seeds": 1, "lr": 1e-3})
    assert torch.equal(torch.random.get_rng_state(), before)
    measured = res.curves.dropna(subset=["batch_loss"]).sort_values("step")["batch_loss"]
    expected = _plain_loop(net, 16, 8, 0, TINY["steps"], TINY["batch"], 1e-3)
    # the same operations in the same order on one CPU: equal to float32 rounding of a
    # 16-layer product chain (the plain loop's matmul vs nn.Linear's addmm-free linear)
    torch.testing.assert_close(torch.tensor(measured.to_list()), torch.tensor(expected),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    assert res.runs["activation"].tolist() == [
        "relu" if net == "relu_he" else "dks:tanh:zeta=1.5,depth=15"
    ]


def test_steps_to_threshold_are_the_first_evaluated_step_at_or_below_it(study_dir: Path) -> None:
    res = KernelShapingResult.load(study_dir)
    threshold = json.loads((study_dir / "meta.json").read_text())["config"]["fit"]["threshold"]
    curves = res.curves.dropna(subset=["train_loss"])
    for run in res.runs.itertuples():
        c = curves[(curves["net"] == run.net) & (curves["seed"] == run.seed)]
        hit = c.loc[c["train_loss"] <= threshold, "step"]
        if hit.empty:
            assert pd.isna(run.steps_to_threshold) and not run.reached
        else:
            assert run.steps_to_threshold == hit.min() and run.reached
    # the table's seed spread, by hand: one net reaching it at steps 10 and 30, one never
    two = res.runs[res.runs["net"].isin(["relu_he", "dks_tanh"]) & (res.runs["depth"] == 16)]
    two = two.assign(reached=two["net"] == "relu_he",
                     steps_to_threshold=[10, 30, pd.NA, pd.NA])  # fmt: skip
    table = steps_to_threshold(two).set_index("net")
    assert table.loc["relu_he", ["reached", "median_steps", "min_steps", "max_steps"]].tolist() \
        == [2, 20.0, 10.0, 30.0]  # fmt: skip
    assert table.loc["dks_tanh", "reached"] == 0 and pd.isna(table.loc["dks_tanh", "median_steps"])
    hand = two.groupby("net")["final_train_loss"].median()
    assert table.loc[hand.index, "final_train_loss"].tolist() == hand.tolist()


def test_the_cli_writes_every_net_and_a_report_that_opens_with_the_verdict(
    study_dir: Path,
) -> None:
    res = KernelShapingResult.load(study_dir)
    assert list(dict.fromkeys(res.runs["net"])) == list(NETS) and len(res.runs) == 2 * len(NETS)
    assert set(res.curves["step"]) == set(range(7)) and res.meta["config"]["fit"]["lr"] == 0.01
    by_net = res.runs.set_index(["net", "seed"])
    assert by_net.loc[("tat_leaky_relu", 0), "activation"] == "tat:leaky_relu:eta=0.9,depth=15"
    assert by_net.loc[("dks_tanh", 0), "normalized"]
    assert by_net.loc[("resmlp_fixup", 0), "arch"] == "resmlp"
    text = (study_dir / "report.md").read_text()
    assert text.index("## Verdict") < text.index("## Loss curves") < text.index("## Steps to")
    assert "Depth 16, adam (lr 0.01, 6 steps of batch 128)" in text and "K-FAC" in text
    assert (study_dir / "figures" / "kernel_shaping_loss.png").exists()


def test_the_study_stores_the_vanilla_nets_cmaps_and_reports_them_beside_the_theory(
    study_dir: Path,
) -> None:
    """The c-map at init of each vanilla net (not the residual one), as deep as its nonlinear
    layers, over the study's width and seeds: the standalone c-map study's rows, stored as
    cmap.parquet and shown after the training with its figure."""
    from initsuite.studies.cmap import cmap_study

    res = KernelShapingResult.load(study_dir)
    vanilla = [(n.activation, n.scheme) for n in NETS.values() if n.arch == "mlp"]
    alone = cmap_study(vanilla, depths=[15], widths=[8], seeds=2)
    pd.testing.assert_frame_equal(res.cmap, alone.cmap)
    assert set(res.cmap["activation"]) == {a for a, _ in vanilla} and len(vanilla) == 4
    assert res.meta["shaping"] == alone.meta["shaping"]
    text = (study_dir / "report.md").read_text()
    assert text.index("## Steps to") < text.index("## Why: the vanilla nets' c-maps")
    assert (
        "![The network's c-map](figures/network_cmap.png)\n\n*Figure 2: The network's c-map.*"
        in text
    )
    assert (study_dir / "figures" / "network_cmap.png").exists()
    skipped = initsuite.reproduce("kernel-shaping", nets=["relu_he"], **{**TINY, "seeds": 1,
                                  "steps": 1}, cmap=False)  # fmt: skip
    assert skipped.cmap.empty


def test_a_residual_nets_branches_start_at_zero_under_fixup() -> None:
    from initsuite.studies.kernel_shaping import build_net

    net = build_net(NETS["resmlp_fixup"], 8, 16, 64, 10, torch.Generator().manual_seed(0))
    assert len(net.blocks) == 3 and sum(isinstance(m, torch.nn.Linear) for m in net.modules()) == 8
    assert all(not b.fc2.weight.any() and b.fc1.weight.any() for b in net.blocks)


BAD = {
    "steps <= 0": (["--steps", "0"], "steps must be >= 1, got 0"),
    "unknown net": (["--nets", "relu_he,tanh_xavierr"],
                    "unknown net 'tanh_xavierr'; did you mean 'tanh_xavier'?"),
    "a non-finite lr": (["--lr", "nan"], "lr must be a positive finite number, got nan"),
    "unknown optimizer": (["--optimizer", "adamm"], "unknown optimizer 'adamm'; did you mean"),
    "TAT's target out of reach": (["--depths", "8"], "eta=0.9 is out of reach for 7 leaky-ReLU"),
    "a flag of another study": (["--models", "mlp"], "--models belongs to 'reproduce zoo' or"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_writes_nothing(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags, message = BAD[case]
    out = tmp_path / "ks"
    assert main(["reproduce", "kernel-shaping", *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_bad_settings_of_the_api_are_one_line() -> None:
    with pytest.raises(InitsuiteError, match=r"depths is empty"):
        initsuite.reproduce("kernel-shaping", depths=[])
    with pytest.raises(InitsuiteError, match=r"takes no setting 'depth'; did you mean 'depths'"):
        initsuite.reproduce("kernel-shaping", depth=50)


def test_a_dask_executor_trains_each_net_as_a_task_and_equals_the_local_study() -> None:
    pytest.importorskip("dask.distributed")
    from dask.distributed import Client

    from initsuite.studies.sweep.executors import DaskExecutor

    settings = {"nets": ["relu_he", "dks_tanh"], "depths": [4], "width": 4, "seeds": 1,
                "steps": 2, "batch": 16}  # fmt: skip
    local = initsuite.reproduce("kernel-shaping", **settings)
    client = Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None)
    with DaskExecutor(client=client) as ex:
        remote = initsuite.reproduce("kernel-shaping", **settings, executor=ex)
    pd.testing.assert_frame_equal(remote.curves, local.curves)
    pd.testing.assert_frame_equal(remote.runs, local.runs)
    assert len(local.runs) == 2 and len(local.curves) == 2 * 3

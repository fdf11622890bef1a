"""``initsuite reproduce mutransfer``: its runs (seeded, diverged runs marked), its tasks, the
CLI with its report, and bad input."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

import initsuite
from initsuite.cli import main
from initsuite.core.errors import InitsuiteError
from initsuite.results.mutransfer import MuTransferResult
from initsuite.studies.coord_sources import get_model
from initsuite.studies.mutransfer import bigram_task, digits_task, train_runs


@pytest.fixture(scope="module")
def digits():
    return digits_task()


def _runs(task, lrs, seeds=(0,), parametrizations=("sp", "mup")):
    return train_runs(get_model("mlp").build, parametrizations, [16, 32], [3], lrs, seeds, task,
                      model="mlp", steps=3, batch=32)  # fmt: skip


def test_runs_are_seeded_and_leave_the_callers_rng_alone(digits) -> None:
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = _runs(digits, [2.0**-6], seeds=(0, 1))
    assert torch.equal(torch.random.get_rng_state(), before)
    b = _runs(digits, [2.0**-6], seeds=(0, 1))
    assert a.equals(b)
    losses = a.set_index(["parametrization", "width", "seed"])["final_train_loss"]
    assert losses[("sp", 16, 0)] != losses[("sp", 16, 1)]  # each seed its own draw
    # at the base width mup is sp: the same draw, the same learning rates
    assert losses[("sp", 16, 0)] == losses[("mup", 16, 0)]
    assert losses[("sp", 32, 0)] != losses[("mup", 32, 0)]


def test_a_run_that_leaves_the_range_is_marked_diverged(digits) -> None:
    runs = _runs(digits, [2.0**-6, 2.0**100], parametrizations=("sp",))
    big = runs[runs["lr"] == 2.0**100]
    assert big["diverged"].all() and big["final_train_loss"].isna().all()
    small = runs[runs["lr"] == 2.0**-6]
    assert not small["diverged"].any() and (small["final_train_loss"] < math.log(10) + 1).all()


def test_the_bigram_task_is_a_fixed_chain_its_targets_the_next_token() -> None:
    a, b = bigram_task(vocab=8, seq=5, train=16, test=4), bigram_task(vocab=8, seq=5, train=16,
                                                                      test=4)  # fmt: skip
    assert torch.equal(a.x_train, b.x_train) and a.x_train.shape == (16, 5)
    assert torch.equal(a.y_train[:, :-1], a.x_train[:, 1:])
    assert int(a.x_train.max()) < 8 and a.x_test.shape == (4, 5)


def test_reproduce_mutransfer_writes_runs_and_a_report(tmp_path) -> None:
    out = tmp_path / "mt"
    code = main(["reproduce", "mutransfer", "--models", "mlp", "--seeds", "1", "--train-steps",
                 "2", "--out", str(out), "--quiet"])  # fmt: skip
    assert code == 0
    res = MuTransferResult.load(out)
    assert set(res.runs["parametrization"]) == {"sp", "mup"}
    assert sorted(set(res.runs["width"])) == [64, 256, 1024]
    assert len(res.runs) == 2 * 3 * 9 and set(res.runs["steps"]) == {2}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["kind"] == "mutransfer" and meta["config"]["experiments"]["mlp"]["steps"] == 2
    assert main(["report", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert text.index("## Verdict") < text.index("## mlp") < text.index("## Run")
    assert "**sp** (mlp, adam, depth 3): the best learning rate" in text
    assert (out / "figures" / "mutransfer_mlp.png").exists()


@pytest.mark.parametrize(("settings", "message"), [
    ({"models": ["mlpp"]}, "unknown model 'mlpp'; did you mean 'mlp'?"),
    ({"seeds": 0}, "seeds must be"),
    ({"lrs": []}, "lrs is empty"),
    ({"lrs": [math.inf]}, "lr must be a positive finite number, got inf"),
    ({"optimizer": "adagrad"}, "unknown optimizer 'adagrad'"),
])  # fmt: skip
def test_bad_settings_are_one_line(settings, message) -> None:
    with pytest.raises(InitsuiteError, match=message.replace("?", r"\?")):
        initsuite.reproduce("mutransfer", **{"train_steps": 1, **settings})


def test_a_dask_executor_trains_each_model_as_a_task_and_equals_the_local_study() -> None:
    pytest.importorskip("dask.distributed")
    from dask.distributed import Client

    from initsuite.studies.sweep.executors import DaskExecutor

    settings = {"models": ["mlp"], "seeds": 1, "lrs": [2.0**-6, 2.0**-4], "train_steps": 1}
    local = initsuite.reproduce("mutransfer", **settings)
    client = Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None)
    with DaskExecutor(client=client) as ex:
        remote = initsuite.reproduce("mutransfer", **settings, executor=ex)
    pd.testing.assert_frame_equal(remote.runs, local.runs)
    assert len(local.runs) == 2 * 3 * 2

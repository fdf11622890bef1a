"""Zero by design is not underflow: a residual branch that starts at exactly zero (timm's
``zero_init_last``, torchvision's ``zero_init_residual``, Fixup, SkipInit, ReZero) is a zero
branch in the probe's tables and report, while a real underflow and an exact zero nothing
explains stay divergences (initsuite.studies.zero_branch)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

import initsuite
from initsuite.report.probe_report import render_probe
from initsuite.report.probe_tables import verdict_table
from initsuite.report.probe_verdict import model_names, pass_table, probe_verdict_sentences
from initsuite.results import columns as C
from initsuite.results.probe import ProbeResult, name_patterns, probe_summary


class _ZeroLast(nn.Module):
    """A residual block whose last BatchNorm starts at weight 0 (timm's zero_init_last)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.fc = nn.Linear(n, n, bias=False)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(n, n, bias=False)
        self.bn = nn.BatchNorm1d(n)
        nn.init.zeros_(self.bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn(self.fc2(self.act(self.fc(x))))


class _ReZero(nn.Module):
    """x + α·f(x) with α = 0 (ReZero, SkipInit)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(()))
        self.f = nn.Sequential(nn.Linear(n, n), nn.Tanh(), nn.Linear(n, n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.alpha * self.f(x)


def _net(dead: bool = False) -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), _ZeroLast(16), _ZeroLast(16), _ReZero(16),
                        nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))  # fmt: skip
    if dead:  # the ReLU's input all negative: its output exactly 0, nothing by design
        with torch.no_grad():
            net[4].bias.fill_(-1e3)
    return net


@pytest.fixture(scope="module")
def zero_pass() -> ProbeResult:
    return initsuite.probe(_net(), torch.randn(32, 8), backward=True, name="net")


def _row(calls: pd.DataFrame, module: str) -> pd.Series:
    return calls[calls["module"] == module].iloc[0]


def test_zero_branches_are_recorded_and_named_never_underflow(zero_pass: ProbeResult) -> None:
    calls = zero_pass.calls
    assert calls["divergence_kind"].isna().all() and calls["grad_divergence_kind"].isna().all()
    # the BatchNorm at weight 0 outputs exactly 0, and says why
    bn = _row(calls, "1.bn")
    assert bn["std"] == 0 and bn["mean"] == 0 and bn["zero_by"] == "1.bn.weight"
    assert pd.isna(bn["grad_zero_by"])  # its own gradient is the block's
    # the gradient upstream of it in its branch is exactly 0 for the same reason, along
    # the chain fc → act → fc2 → bn; the block's input (shared with the identity) is not
    for module in ("1.fc", "1.act", "1.fc2"):
        r = _row(calls, module)
        assert r["grad_std"] == 0 and r["grad_zero_by"] == "1.bn.weight", module
        assert pd.isna(r["zero_by"]) and r["std"] > 0
    assert _row(calls, "0")["grad_std"] > 0 and pd.isna(_row(calls, "0")["grad_zero_by"])
    # ReZero's α = 0: the branch's gradient is 0 inside the module that holds α
    for module in ("3.f.0", "3.f.1", "3.f.2"):
        assert _row(calls, module)["grad_zero_by"] == "3.alpha", module
    assert _row(calls, "3")["std"] > 0 and pd.isna(_row(calls, "3")["zero_by"])
    s = probe_summary(calls).iloc[0]
    assert pd.isna(s["divergence_kind"]) and pd.isna(s["grad_divergence_kind"])
    assert s["zero_by"] == "*.bn.weight (2), 3.alpha"


def test_zero_branches_survive_storage_and_old_directories_load(
    zero_pass: ProbeResult, tmp_path: object
) -> None:
    from pathlib import Path

    out = Path(str(tmp_path))
    zero_pass.save(out / "new")
    back = ProbeResult.load(out / "new")
    pd.testing.assert_series_equal(back.calls["zero_by"], zero_pass.calls["zero_by"])
    # a directory written before the columns: they load null
    old = zero_pass.calls.drop(columns=["zero_by", "grad_zero_by"])
    ProbeResult(old, zero_pass.meta).save(out / "old")  # type: ignore[arg-type]
    loaded = ProbeResult.load(out / "old").calls
    assert loaded["zero_by"].isna().all() and list(loaded.columns) == list(C.PROBE)


def test_real_underflow_and_unexplained_zeros_stay_divergences() -> None:
    # an exact zero nothing by design explains (a dead ReLU) beside zero branches
    calls = initsuite.probe(_net(dead=True), torch.randn(32, 8), backward=True).calls
    relu = _row(calls, "5")
    assert relu["std"] == 0 and pd.isna(relu["zero_by"])
    assert relu["divergence_kind"] == "underflow"
    assert calls["divergence_kind"].notna().sum() == 1
    assert calls.loc[calls["grad_divergence_kind"].notna(), "module"].tolist() == ["4"]
    # a weight a scheme zeroes without meaning to: its zeros are not by design
    net = nn.Sequential(nn.Linear(8, 8, bias=False), nn.Linear(8, 4, bias=False))
    calls = initsuite.probe(net, torch.randn(4, 8), scheme="normal:std=0").calls
    assert calls["zero_by"].isna().all()
    assert _row(calls, "0")["divergence_kind"] == "underflow"
    # a tiny non-zero std is numeric underflow, whatever zero branch the model has
    net = _net()
    with torch.no_grad():
        net[0].weight.mul_(1e-30)
        net[0].bias.zero_()
    calls = initsuite.probe(net, torch.full((32, 8), 1e-10) * torch.randn(32, 8)).calls
    first = _row(calls, "0")
    assert 0 < first["std"] < torch.finfo(torch.float32).tiny
    assert first["divergence_kind"] == "underflow" and pd.isna(first["zero_by"])


def test_the_verdict_names_zero_by_design_apart_from_underflow(zero_pass: ProbeResult) -> None:
    other = initsuite.probe(_net(), torch.randn(32, 8), scheme="kaiming_normal", backward=True,
                            name="net")  # fmt: skip
    r = ProbeResult.concat([zero_pass, other], zero_pass.meta)
    table = pass_table(r.calls, r.blocks)
    # as built the gradient shrinks ×0.09 from the last call to the first (item 6: its own
    # factor across the model, judged against the band as the stream's is)
    assert list(table["status"]) == ["drifts", "keeps"]
    assert list(table["direction"].fillna("")) == ["backward", ""]
    [sentence] = probe_verdict_sentences(table, model_names({}, ["net"]))
    assert "underflow at" not in sentence and "underflows" not in sentence
    assert sentence.startswith("net: kaiming_normal keeps the output's std (×1.4) and the "
                               "gradient (×0.72); as_built shrinks the gradient (×0.095 from "
                               "the last call to the first).")  # fmt: skip
    assert "As built it drifts, where kaiming_normal keeps both." in sentence
    assert (
        "Zero by design, each such branch starting at 0 (a zero branch, not an underflow): "
        "`*.bn.weight (2)`, `3.alpha` = 0 as built and under kaiming_normal"
    ) in sentence
    cells = verdict_table(r.calls).iloc[0]  # the model × scheme table under the verdict
    assert cells["as_built"] == "ok (0.096); zero branch: `*.bn.weight (2), 3.alpha`"
    text = render_probe(r.calls, {}, [], r.blocks)  # the summary of one model's probe
    assert "| zero branches" in text and "`*.bn.weight (2), 3.alpha`" in text
    assert "underflow at" not in text


def test_name_patterns_group_numbered_names() -> None:
    names = [f"layer{i}.{j}.bn3.weight" for i in (1, 2) for j in range(3)] + ["head.weight"]
    assert name_patterns(names) == [("layer*.*.bn3.weight", 6), ("head.weight", 1)]
    assert name_patterns(["blocks.0.ls1.gamma"]) == [("blocks.0.ls1.gamma", 1)]


def test_timm_zero_init_last_is_a_zero_branch_not_underflow() -> None:
    from timm.models.resnet import BasicBlock, ResNet  # in the locked environment: no skip

    torch.manual_seed(0)
    net = ResNet(
        BasicBlock, [1, 1, 1, 1], num_classes=10, channels=(8, 8, 8, 8), stem_width=8
    )  # timm's zero_init_last=True
    calls = initsuite.probe(net, torch.randn(2, 3, 16, 16), backward=True).calls
    assert calls["divergence_kind"].isna().all() and calls["grad_divergence_kind"].isna().all()
    zero = dict(zip(calls["module"], calls["zero_by"], strict=True))
    assert zero["layer1.0.bn2"] == "layer1.0.bn2.weight"
    assert _row(calls, "layer4.0.conv2")["grad_zero_by"] == "layer4.0.bn2.weight"
    assert probe_summary(calls).iloc[0]["zero_by"] == "layer*.0.bn2.weight (4)"

"""``initsuite.probe`` / ``initsuite.apply`` / ``initsuite probe`` on models initsuite did not
write: a ResNet-style CNN defined here, deep linear stacks with known growth, attention, and a
Hugging Face BERT built from its config (when transformers is installed)."""

from __future__ import annotations

import copy
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from helpers import Amplify, module_on_path, run_cli
from torch import nn

import initsuite
from initsuite.core.errors import InitsuiteError
from initsuite.engine.backward import GRAD_SEED_OFFSET
from initsuite.engine.reinit import apply
from initsuite.report.probe_report import write_probe_report
from initsuite.results import columns as C
from initsuite.results.probe import ProbeResult, probe_summary
from initsuite.studies.probe import probe

# --- models initsuite did not write ---------------------------------------------------------


class Block(nn.Module):
    """torchvision's BasicBlock: conv-BN-ReLU-conv-BN plus an identity or 1×1 projection
    shortcut, then the same in-place ReLU module again."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.relu(out + identity)


class SmallResNet(nn.Module):
    def __init__(self, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True))  # fmt: skip
        self.layer1 = Block(width, width, 1)
        self.layer2 = Block(width, 2 * width, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


# every leaf call in the order it returns; each block's ReLU module runs twice
RESNET_CALLS = [
    "stem.0", "stem.1", "stem.2",
    "layer1.conv1", "layer1.bn1", "layer1.relu", "layer1.conv2", "layer1.bn2", "layer1.relu",
    "layer2.conv1", "layer2.bn1", "layer2.relu", "layer2.conv2", "layer2.bn2",
    "layer2.shortcut.0", "layer2.shortcut.1", "layer2.relu",
    "pool", "fc",
]  # fmt: skip


def resnet() -> SmallResNet:
    with torch.random.fork_rng():  # its own default init, reproducible, no global change
        torch.manual_seed(0)
        return SmallResNet()


def images(batch: int = 4, size: int = 8) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))


def hooks_left(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def stack(depth: int, width: int, dtype: torch.dtype = torch.float32) -> nn.Sequential:
    return nn.Sequential(*[nn.Linear(width, width, bias=False, dtype=dtype)
                           for _ in range(depth)])  # fmt: skip


# --- probe: rows, statistics, the model left as found ----------------------------------------


def test_every_leaf_call_has_a_row_in_execution_order() -> None:
    frame = probe(resnet(), images()).calls
    assert tuple(frame.columns) == C.PROBE
    assert frame["module"].tolist() == RESNET_CALLS
    assert frame["call"].tolist() == list(range(1, len(RESNET_CALLS) + 1))
    assert frame.set_index("call").loc[19, "type"] == "Linear"
    assert frame["shape"].tolist()[:2] == ["4,8,8,8", "4,8,8,8"]
    assert frame["shape"].iloc[-1] == "4,10"
    assert (frame["numel"] == [math.prod(map(int, s.split(","))) for s in frame["shape"]]).all()
    assert (frame["scheme"] == "as_built").all() and not frame["reinitialised"].any()
    assert (frame["nonfinite_fraction"] == 0).all() and frame["divergence_kind"].isna().all()
    assert frame["grad_std"].isna().all()  # no backward asked


def _manual_forward(model: SmallResNet, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The outputs of some modules, computed by calling the submodules by hand (ReLU not in
    place, so the BN outputs the model's in-place ReLU overwrites are kept)."""
    out = {}
    s0 = model.stem[0](x)
    h = F.relu(model.stem[1](s0))
    b = model.layer1
    c1 = b.conv1(h)
    bn1 = b.bn1(c1)
    r = b.bn2(b.conv2(F.relu(bn1)))
    h = F.relu(r + h)
    b2 = model.layer2
    assert b2.shortcut is not None
    r = b2.bn2(b2.conv2(F.relu(b2.bn1(b2.conv1(h)))))
    sc = b2.shortcut[0](h)
    h = F.relu(r + b2.shortcut[1](sc))
    fc = model.fc(torch.flatten(model.pool(h), 1))
    out.update({"stem.0": s0, "layer1.conv1": c1, "layer1.bn1": bn1, "layer2.shortcut.0": sc,
                "fc": fc})  # fmt: skip
    return out


def test_stats_equal_a_manual_computation_of_each_modules_output() -> None:
    model, x = resnet(), images()
    frame = probe(model, x).calls.set_index("module")
    with torch.no_grad():
        manual = _manual_forward(model, x)
    for name, y in manual.items():
        row = frame.loc[name]
        row = row.iloc[0] if isinstance(row, pd.DataFrame) else row
        y64 = y.double()
        # float64 moments of float32 data: both sides exact to ~1e-15 relative
        assert row["std"] == pytest.approx(float(y64.std()), rel=1e-10), name
        assert row["mean"] == pytest.approx(float(y64.mean()), rel=1e-8, abs=1e-12), name
        assert row["numel"] == y.numel()
    # layer1.bn1's output is overwritten by the in-place ReLU after it: the row is pre-ReLU
    assert frame.loc["layer1.bn1", "mean"] == pytest.approx(0.0, abs=1e-6)  # BN (train) centres


def test_backward_grad_std_equals_autograd_through_the_same_modules() -> None:
    """grad_std of a module = std of dLoss/d(its output) computed by autograd on a manual
    forward pass, Loss = Σ R ⊙ y with R drawn here from seed + GRAD_SEED_OFFSET."""
    model, x = resnet(), images()
    frame = probe(model, x, backward=True, seed=7).calls.set_index("module")
    manual = _manual_forward(model, x)
    y = manual["fc"]
    r = torch.randn(y.shape, generator=torch.Generator().manual_seed(7 + GRAD_SEED_OFFSET))
    names = list(manual)
    grads = torch.autograd.grad(y, [manual[n] for n in names], grad_outputs=r)
    for name, g in zip(names, grads, strict=True):
        # same kernels on the same float32 values; 1e-6 covers any change of summation order
        assert frame.loc[name, "grad_std"] == pytest.approx(float(g.double().std()), rel=1e-6)
    # the output's gradient is R itself: its std, bit for bit through float64
    assert frame.loc["fc", "grad_std"] == pytest.approx(float(r.double().std()), rel=1e-12)
    assert frame["grad_std"].notna().all() and frame["grad_divergence_kind"].isna().all()


def test_grad_std_matches_hand_written_backprop_through_a_linear_tanh_stack() -> None:
    """Independent of autograd: g_L = R, g_{k-1} = (g_k ⊙ tanh'(z_k)) W_k by matrix products."""
    torch.manual_seed(0)  # the stack's own default init (not what is tested)
    layers = [nn.Linear(32, 32, bias=False, dtype=torch.float64) for _ in range(4)]
    model = nn.Sequential(layers[0], nn.Tanh(), layers[1], nn.Tanh(), layers[2], nn.Tanh(),
                          layers[3])  # fmt: skip
    x = torch.randn(16, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    frame = probe(model, x, backward=True, seed=2).calls
    with torch.no_grad():
        z, h, outs = [], x, []
        for k, lin in enumerate(layers):
            zk = h @ lin.weight.T
            z.append(zk)
            outs.append(zk)
            if k < 3:
                h = torch.tanh(zk)
                outs.append(h)
        g = torch.randn(outs[-1].shape, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(2 + GRAD_SEED_OFFSET))  # fmt: skip
        grads = [g]
        for k in range(3, 0, -1):
            g_h = g @ layers[k].weight  # gradient at tanh output h_{k}
            grads.append(g_h)
            g = g_h * (1 - torch.tanh(z[k - 1]) ** 2)  # at the Linear output z_{k-1}
            grads.append(g)
    expected = [float(t.std()) for t in reversed(grads)]
    # float64 throughout: agreement to rounding
    assert frame["grad_std"].tolist() == pytest.approx(expected, rel=1e-12)
    assert frame["std"].tolist() == pytest.approx([float(t.std()) for t in outs], rel=1e-12)


def test_probe_leaves_the_model_and_the_global_rng_as_found() -> None:
    model = resnet().train()
    before = copy.deepcopy(model.state_dict())
    rng = torch.get_rng_state()
    frame = probe(model, images(), backward=True).calls
    assert len(frame) == len(RESNET_CALLS)
    assert hooks_left(model) == 0
    after = model.state_dict()
    for key, value in before.items():  # running stats and batch counts restored too
        assert torch.equal(after[key], value), key
    assert all(p.grad is None for p in model.parameters())  # autograd.grad, not backward()
    assert torch.equal(torch.get_rng_state(), rng)


def test_hooks_are_removed_and_buffers_restored_when_forward_raises() -> None:
    class Breaks(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = resnet()
            self.head = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.net(x))  # 10 features into a Linear(3, 3): raises

    model = Breaks()
    stats = model.net.stem[1].running_mean.clone()
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        probe(model, images(), backward=True)
    assert hooks_left(model) == 0
    assert torch.equal(model.net.stem[1].running_mean, stats)
    assert int(model.net.stem[1].num_batches_tracked) == 0


def test_same_seed_same_rows_dropout_included() -> None:
    model = nn.Sequential(nn.Linear(64, 64), nn.Dropout(0.5), nn.Linear(64, 8)).train()
    x = torch.randn(32, 64, generator=torch.Generator().manual_seed(0))
    a, b = probe(model, x, seed=4).calls, probe(model, x, seed=4).calls
    pd.testing.assert_frame_equal(a, b)
    c = probe(model, x, seed=5).calls  # another dropout mask
    assert c.loc[1, "std"] != a.loc[1, "std"]


def test_tuple_and_dict_outputs_attention_and_uncalled_modules() -> None:
    """MultiheadAttention holds parameters of its own, so it is probed (its out_proj is never
    called as a module: no row); a module returning (ints, floats) is recorded by its first
    floating tensor; inputs given as a dict reach forward as keywords."""

    class Tagged(nn.Module):
        def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"index": h.argmax(-1), "value": 3 * h, "other": h}

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
            self.tag = Tagged()
            self.norm = nn.LayerNorm(16)

        def forward(self, *, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h, _ = self.attn(tokens, tokens, tokens)
            h = self.tag(h)["value"]
            return h.argmax(-1), self.norm(h)

    model = Net()
    x = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(0))
    frame = probe(model, {"tokens": x}, backward=True).calls
    assert frame["module"].tolist() == ["attn", "tag", "norm"]
    assert frame["type"].tolist() == ["MultiheadAttention", "Tagged", "LayerNorm"]
    with torch.no_grad():
        attn_out, _ = model.attn(x, x, x)
    assert frame.loc[0, "std"] == pytest.approx(float(attn_out.double().std()), rel=1e-10)
    assert frame.loc[1, "std"] == pytest.approx(3 * frame.loc[0, "std"], rel=1e-6)
    # the loss reads the model's first floating output (the LayerNorm's, not the argmax)
    assert frame["grad_std"].notna().all()


# --- divergence ------------------------------------------------------------------------------


def test_overflow_is_found_at_the_predicted_layer() -> None:
    """N(0, 1) weights of width 256 multiply the std by √256 = 16 per layer: float32 overflows
    when 16^k reaches finfo.max, at k = log(max)/log(16) ≈ 32. ±1: the largest of the
    8 × 256 outputs is ~4σ (half a layer early) and each layer's ratio fluctuates by a few
    percent around 16."""
    frame = probe(stack(40, 256), torch.randn(8, 256), scheme="normal").calls
    predicted = math.log(torch.finfo(torch.float32).max) / math.log(16)
    flagged = frame[frame["divergence_kind"].notna()]
    assert len(flagged) == 1 and flagged["divergence_kind"].iloc[0] == "overflow"
    call = int(flagged["call"].iloc[0])
    assert abs(call - predicted) <= 1
    assert frame.loc[frame["call"] == call, "nonfinite_fraction"].iloc[0] > 0
    assert (frame.loc[frame["call"] < call, "nonfinite_fraction"] == 0).all()
    assert frame.loc[frame["call"] < call, "std"].notna().all()


def test_underflow_is_found_at_the_predicted_layer() -> None:
    """std 0.001 × √256 = 0.016 per layer: below float32's smallest normal (1.2e-38) after
    log(tiny)/log(0.016) ≈ 21.1 layers, so at layer 22 (±1 as above)."""
    frame = probe(stack(40, 256), torch.randn(8, 256), scheme="normal:std=0.001").calls
    predicted = math.log(torch.finfo(torch.float32).tiny) / math.log(0.016)
    flagged = frame[frame["divergence_kind"].notna()]
    assert flagged["divergence_kind"].tolist() == ["underflow"]
    assert abs(int(flagged["call"].iloc[0]) - predicted) <= 1


def test_backward_is_skipped_when_the_output_overflowed() -> None:
    frame = probe(stack(40, 256), torch.randn(8, 256), scheme="normal", backward=True).calls
    assert frame["grad_std"].isna().all() and frame["grad_divergence_kind"].isna().all()


def test_gradient_overflow_is_marked_walking_back_from_the_output() -> None:
    """Each Amplify multiplies the gradient by 1e15 on the way back: 1e15 at call 7, 1e30 at
    call 5, 1e45 (> float32's 3.4e38) at call 3, the first overflow walking back."""
    model = nn.Sequential(*[m for _ in range(4) for m in (nn.Linear(16, 16), Amplify(1e15))],
                          nn.Linear(16, 16))  # fmt: skip
    frame = probe(model, torch.randn(8, 16), backward=True).calls
    flagged = frame[frame["grad_divergence_kind"].notna()]
    assert flagged["call"].tolist() == [3] and flagged["grad_divergence_kind"].iloc[0] == "overflow"
    assert frame["divergence_kind"].isna().all()  # the forward pass is fine
    assert frame.loc[frame["call"] >= 4, "grad_std"].map(math.isfinite).all()


# --- apply -----------------------------------------------------------------------------------


class Mixed(nn.Module):
    """Every weight type apply draws, and what it must leave alone."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 8, padding_idx=0)
        self.conv1d = nn.Conv1d(8, 6, 3)
        self.deconv = nn.ConvTranspose2d(6, 4, 3, stride=2, groups=2)
        self.conv3d = nn.Conv3d(2, 3, (1, 2, 3))
        self.attn = nn.MultiheadAttention(8, 2)
        self.kv = nn.MultiheadAttention(8, 2, kdim=5, vdim=7)
        self.norm = nn.LayerNorm(8)
        self.gn = nn.GroupNorm(2, 6)
        self.head = nn.Linear(8, 3)


# (module, parameter) in the order apply draws them: named_modules order
MIXED_DRAWN = [
    "conv1d.weight", "deconv.weight", "conv3d.weight", "attn.in_proj_weight",
    "attn.out_proj.weight", "kv.q_proj_weight", "kv.k_proj_weight", "kv.v_proj_weight",
    "kv.out_proj.weight", "head.weight",
]  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "torch_fn"),
    [
        ("kaiming_normal", torch.nn.init.kaiming_normal_),
        ("xavier_uniform", torch.nn.init.xavier_uniform_),
        ("orthogonal", torch.nn.init.orthogonal_),
    ],
    ids=["kaiming_normal", "xavier_uniform", "orthogonal"],
)
@pytest.mark.parametrize("make", [resnet, Mixed], ids=["resnet", "mixed"])
def test_apply_matches_torch_nn_init_layer_by_layer(spec: str, torch_fn: object,
                                                     make: object) -> None:  # fmt: skip
    """The same values as torch.nn.init on each weight in module order from the same
    generator (so the fans are torch's for Linear, Conv1d/2d/3d, grouped ConvTranspose and
    attention), and nothing else touched."""
    model = make()  # type: ignore[operator]
    reference, before = copy.deepcopy(model), copy.deepcopy(model.state_dict())
    drawn = apply(model, spec, generator=torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    expected = []
    for name, m in reference.named_modules():
        for pname in ("weight", "in_proj_weight", "q_proj_weight", "k_proj_weight",
                      "v_proj_weight"):  # fmt: skip
            w = getattr(m, pname, None)
            if isinstance(m, nn.Embedding | nn.LayerNorm | nn.GroupNorm | nn.BatchNorm2d):
                continue
            if isinstance(w, torch.Tensor):
                with torch.no_grad():
                    torch_fn(w, generator=gen)  # type: ignore[operator]
                expected.append(f"{name}.{pname}")
    assert drawn == expected
    if make is Mixed:
        assert drawn == MIXED_DRAWN
    state, ref = model.state_dict(), reference.state_dict()
    for key in state:
        assert torch.equal(state[key], ref[key]), key
        if key not in drawn:  # biases, norms, embeddings, BN buffers: untouched
            assert torch.equal(state[key], before[key]), key


def test_apply_default_generator_is_a_fresh_one_seeded_zero() -> None:
    a, b, c = resnet(), resnet(), resnet()
    apply(a, "kaiming_uniform")
    apply(b, "kaiming_uniform", generator=torch.Generator().manual_seed(0))
    apply(c, "kaiming_uniform", generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.fc.weight, b.fc.weight) and torch.equal(a.stem[0].weight,
                                                                 b.stem[0].weight)  # fmt: skip
    assert not torch.equal(a.fc.weight, c.fc.weight)


def test_apply_draws_embeddings_only_when_asked_and_zeroes_the_padding_row() -> None:
    model = Mixed()
    with torch.no_grad():
        model.embed.weight.fill_(7.0)
    apply(model, "normal")
    assert (model.embed.weight == 7.0).all()
    drawn = apply(model, "normal", include_embeddings=True)
    assert drawn[0] == "embed.weight"
    assert (model.embed.weight[0] == 0).all() and model.embed.weight[1:].std() > 0.5


def test_apply_auto_gain_uses_the_activation() -> None:
    a, b = nn.Linear(64, 64), nn.Linear(64, 64)
    apply(a, "xavier_normal:gain=auto", activation="tanh")
    torch.nn.init.xavier_normal_(b.weight, gain=5 / 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a.weight, b.weight)


def test_probe_with_a_scheme_applies_it_in_place_from_the_seed() -> None:
    model, reference = resnet(), resnet()
    frame = probe(model, images(), scheme="kaiming_normal", seed=3).calls
    apply(reference, "kaiming_normal", generator=torch.Generator().manual_seed(3))
    for (key, value), ref in zip(model.state_dict().items(), reference.state_dict().values(),
                                 strict=True):  # fmt: skip
        assert torch.equal(value, ref), key
    assert (frame["scheme"] == "kaiming_normal").all()
    drawn = set(frame.loc[frame["reinitialised"], "type"])
    assert drawn == {"Conv2d", "Linear"}
    assert not frame.loc[frame["type"].isin(["BatchNorm2d", "ReLU"]), "reinitialised"].any()


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: apply(nn.Linear(4, 4), "xavier_uniform:gain=auto"), "needs the activation"),
        (lambda: apply(nn.Conv2d(3, 3, 3), "eye"), "applies to none"),
        (lambda: apply(nn.LazyLinear(4), "normal"), "lazy parameter"),
        (lambda: apply(nn.Linear(4, 4), "kaimng_normal"), "did you mean 'kaiming_normal'"),
        (lambda: apply("not a model", "normal"), "needs a torch.nn.Module"),  # type: ignore[arg-type]
        (lambda: probe(nn.Linear(4, 4), 3), "inputs must be a tensor"),  # type: ignore[arg-type]
        (lambda: probe(nn.Linear(4, 4), torch.ones(2, 4), seed=-1), "seed must be"),
        (lambda: probe(nn.Linear(4, 4).requires_grad_(False), torch.ones(2, 4), backward=True),
         "does not require grad"),
    ],
    ids=["auto-without-activation", "no-weight-accepted", "lazy", "unknown-scheme",
         "not-a-module", "bad-inputs", "negative-seed", "frozen-backward"],
)  # fmt: skip
def test_bad_input_raises_one_clear_error(call: object, needle: str) -> None:
    with pytest.raises(InitsuiteError, match=needle):
        call()  # type: ignore[operator]


@pytest.mark.parametrize("scheme", ["flax", "kaiming_normal", "gpt2"])
def test_a_model_on_the_meta_device_is_refused_before_any_draw(scheme: str) -> None:
    """Issue 27: ``apply(nn.Linear(4, 4, device="meta"), "flax")`` raised torch's
    RuntimeError ("META device type not an accelerator"); every scheme, convention and probe
    now refuses it up front, naming the first tensor without storage."""
    net = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4, device="meta"))
    before = net[0].weight.detach().clone()
    for call in (lambda: apply(net, scheme),
                 lambda: apply(net, scheme, generator=torch.Generator().manual_seed(0)),
                 lambda: probe(net, torch.ones(2, 4), scheme=scheme)):  # fmt: skip
        with pytest.raises(InitsuiteError, match=r"'1\.weight' is on the meta device: "
                           r"materialise it first, e\.g\. model\.to_empty"):  # fmt: skip
            call()
    assert torch.equal(net[0].weight, before)  # refused before the first draw
    with pytest.raises(InitsuiteError, match="'running_mean' is on the meta device"):
        probe(nn.BatchNorm1d(4, affine=False, device="meta"), torch.ones(2, 4))


# --- Hugging Face ----------------------------------------------------------------------------


def test_hugging_face_bert_built_from_its_config() -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64,
                                     max_position_embeddings=64)  # fmt: skip
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = transformers.BertModel(config).eval()
    ids = torch.randint(0, 100, (2, 8), generator=torch.Generator().manual_seed(0))
    embeddings = model.embeddings.word_embeddings.weight.clone()
    frame = probe(model, {"input_ids": ids}, scheme="kaiming_normal", backward=True, seed=1).calls
    types = frame.groupby("type").size()
    # 2 layers × (query, key, value, attention output, intermediate, output) + the pooler
    assert types["Linear"] >= 13 and types["LayerNorm"] >= 5 and types["Embedding"] >= 3
    measured = frame[frame["numel"].notna()]
    assert measured["std"].map(math.isfinite).all() and (measured["std"] > 0).all()
    assert frame["divergence_kind"].isna().all()
    assert frame.loc[frame["type"] == "Linear", "reinitialised"].all()
    assert not frame.loc[frame["type"].isin(["LayerNorm", "Embedding"]), "reinitialised"].any()
    assert torch.equal(model.embeddings.word_embeddings.weight, embeddings)
    # the loss reads last_hidden_state (the ModelOutput's first tensor): the last encoder
    # LayerNorm's gradient is R itself; the pooler's output does not reach it
    r = torch.randn(2, 8, 32, generator=torch.Generator().manual_seed(1 + GRAD_SEED_OFFSET))
    hit = frame[(frame["grad_std"] - float(r.double().std())).abs() < 1e-9]
    assert set(hit["type"]) == {"LayerNorm"}
    assert frame.loc[frame["module"].str.startswith("pooler"), "grad_std"].isna().all()
    encoder_linear = frame[frame["module"].str.startswith("encoder") & (frame["type"] == "Linear")]
    assert encoder_linear["grad_std"].map(math.isfinite).all()


def test_hugging_face_gpt2_conv1d_is_drawn_as_the_linear_it_is() -> None:
    """GPT-2's Conv1D stores its weight (in, out): apply draws it as the (out, in) Linear,
    the values torch.nn.init gives that Linear's weight, stored transposed."""
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=2,
                                     n_positions=64, bos_token_id=0, eos_token_id=0)  # fmt: skip
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = transformers.GPT2Model(config).eval()
    reference = copy.deepcopy(model)
    drawn = apply(model, "kaiming_normal", generator=torch.Generator().manual_seed(2))
    gen, expected = torch.Generator().manual_seed(2), []
    for name, m in reference.named_modules():
        if type(m).__name__ == "Conv1D":
            linear = torch.empty(m.weight.shape[::-1])
            torch.nn.init.kaiming_normal_(linear, generator=gen)
            assert torch.equal(model.get_submodule(name).weight, linear.T), name
            expected.append(f"{name}.weight")
    assert drawn == expected and len(drawn) == 2 * 4  # c_attn, c_proj, c_fc, c_proj per layer
    # fan_in is the input width, 32 for c_attn (32 → 96): std √(2/32) = 0.25 (torch's fans
    # on the stored (32, 96) shape would give 0.14); 3072 draws: 1.3% per σ, so 5% is ~4σ
    assert float(model.h[0].attn.c_attn.weight.detach().std()) == pytest.approx(0.25, rel=0.05)
    ids = torch.randint(0, 100, (2, 8), generator=torch.Generator().manual_seed(0))
    frame = probe(model, ids, backward=True).calls
    conv = frame[frame["type"] == "Conv1D"]
    assert len(conv) == 8 and conv["grad_std"].map(math.isfinite).all()
    assert frame["divergence_kind"].isna().all()


# --- the command line ------------------------------------------------------------------------

FACTORIES = "initsuite_probe_test_factories"
FACTORY_SOURCE = """
from torch import nn


def cnn():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


def text():
    return nn.Sequential(nn.Embedding(50, 16), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 4))


def not_a_module():
    return 42


def broken():
    raise RuntimeError("no weights here\\nsecond line")


NOT_CALLABLE = 3


class Zoo:
    @staticmethod
    def cnn():
        return cnn()
"""


@pytest.fixture
def factories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The factory module, written into its own folder on sys.path."""
    yield from module_on_path(tmp_path, monkeypatch, FACTORIES, FACTORY_SOURCE)


def test_cli_probe_writes_tables_report_and_figure(
    factories: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs" / "cnn"
    args = ["probe", f"{FACTORIES}:cnn", "--input-shape", "4,3,8,8", "--schemes",
            "kaiming_normal,xavier_uniform:gain=auto", "--activation", "relu", "--backward",
            "--out", str(out)]  # fmt: skip
    code, stdout, err = run_cli(args, capsys)
    assert code == 0, err
    assert "wrote 18 module calls" in stdout and "kaiming_normal" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["figures", "meta.json", "probe.parquet",
                                                     "report.md"]  # fmt: skip
    assert (out / "figures" / "probe_std.png").stat().st_size > 10_000
    result = ProbeResult.load(out)
    frame = result.calls
    assert tuple(frame.columns) == C.PROBE
    assert list(dict.fromkeys(frame["scheme"])) == ["as_built", "kaiming_normal",
                                                    "xavier_uniform:gain=auto"]  # fmt: skip
    assert frame.groupby("scheme").size().tolist() == [6, 6, 6]
    assert not frame.loc[frame["scheme"] == "as_built", "reinitialised"].any()
    assert frame["grad_std"].notna().all()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["kind"] == "probe" and meta["config"]["backward"] is True
    assert meta["model"] == {"type": "Sequential", "parameters": 8 * 27 + 8 + 16 + 90,
                             "probed_modules": 6}  # fmt: skip
    assert "command" in meta and "environment" in meta
    report = (out / "report.md").read_text()
    assert f"# initsuite probe: {FACTORIES}:cnn" in report
    assert "figures/probe_std.png" in report and "## Summary" in report
    assert "xavier_uniform:gain=auto" in report
    # the same command gives the same rows: the factory's own init included
    again = tmp_path / "runs" / "again"
    assert run_cli([*args[:-1], str(again), "--quiet", "--no-report"], capsys)[0] == 0
    assert not (again / "report.md").exists()
    pd.testing.assert_frame_equal(ProbeResult.load(again).calls, frame)
    assert [p.name for p in (tmp_path / "runs").iterdir() if p.name.startswith(".")] == []


def test_cli_probe_token_inputs(
    factories: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "text"
    code, _, err = run_cli(["probe", f"{FACTORIES}:text", "--input-shape", "2,7", "--tokens",
                            "50", "--schemes", "orthogonal", "--out", str(out),
                            "--quiet"], capsys)  # fmt: skip
    assert code == 0, err
    frame = ProbeResult.load(out).calls
    rows = frame[frame["scheme"] == "orthogonal"]
    assert rows["type"].tolist() == ["Embedding", "Linear", "Tanh", "Linear"]
    assert rows["reinitialised"].tolist() == [False, True, False, True]
    assert rows["shape"].iloc[0] == "2,7,16"


def test_cli_probe_finds_a_factory_in_the_current_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "here"
    folder.mkdir()
    (folder / f"{FACTORIES}.py").write_text(FACTORY_SOURCE)
    monkeypatch.chdir(folder)
    monkeypatch.delitem(sys.modules, FACTORIES, raising=False)
    path = list(sys.path)
    code, _, err = run_cli(["probe", f"{FACTORIES}:Zoo.cnn", "--input-shape", "2,3,4,4",
                            "--out", str(tmp_path / "o"), "--quiet", "--no-report"],
                           capsys)  # fmt: skip
    sys.modules.pop(FACTORIES, None)
    assert code == 0, err
    assert sys.path == path  # put back


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        ([f"{FACTORIES}.cnn"], ["must be 'package.module:callable'"]),
        (["no_such_module_xyz:cnn"], ["no module named 'no_such_module_xyz'"]),
        ([f"{FACTORIES}:cnm"], ["has no attribute 'cnm'", "did you mean 'cnn'"]),
        ([f"{FACTORIES}:NOT_CALLABLE"], ["is a int, not a callable"]),
        ([f"{FACTORIES}:not_a_module"], ["returned a int, not a torch.nn.Module"]),
        ([f"{FACTORIES}:broken"], ["raised RuntimeError: no weights here"]),
        ([f"{FACTORIES}:cnn", "--input-shape", "4,5,8,8"],
         ["failed on an input of shape 4,5,8,8", "RuntimeError"]),
        ([f"{FACTORIES}:cnn", "--input-shape", "4,x"], ["--input-shape", "integers"]),
        ([f"{FACTORIES}:cnn", "--input-shape", "4,0,8"], ["input_shape must be >= 1, got 0"]),
        ([f"{FACTORIES}:cnn", "--schemes", "kaimng_normal"], ["did you mean 'kaiming_normal'"]),
        ([f"{FACTORIES}:cnn", "--schemes", "xavier_uniform:gain=auto"],
         ["needs the activation"]),
        ([f"{FACTORIES}:cnn", "--tokens", "0"], ["tokens"]),
        ([f"{FACTORIES}:cnn", "--mode", "evaluate"], ["unknown mode 'evaluate'", "'eval'"]),
        ([f"{FACTORIES}:cnn", "--dtype", "float8"], ["unknown dtype"]),
        ([f"{FACTORIES}:text", "--input-shape", "2,7", "--tokens", "50", "--schemes", "dirac"],
         ["'dirac'", "applies to none"]),
    ],
    ids=["no-colon", "missing-module", "missing-attribute", "not-callable", "not-a-module",
         "factory-raises", "forward-fails", "shape-syntax", "zero-dimension", "unknown-scheme",
         "auto-without-activation", "zero-tokens", "unknown-mode", "unknown-dtype",
         "scheme-fits-no-weight"],
)  # fmt: skip
def test_cli_probe_bad_input_is_one_line_exit_2_and_writes_nothing(
    args: list[str], needles: list[str], factories: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    runs = tmp_path / "runs"
    runs.mkdir()
    shape = [] if "--input-shape" in args else ["--input-shape", "4,3,8,8"]
    code, _, err = run_cli(["probe", *args, *shape, "--out", str(runs / "o"), "--quiet"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert list(runs.iterdir()) == []


# --- results and report ----------------------------------------------------------------------


def test_python_api_frames_save_report_and_summarise(tmp_path: Path) -> None:
    frames = [probe(stack(40, 256), torch.randn(8, 256), scheme=s, backward=True).calls
              for s in ("normal", "kaiming_normal:nonlinearity=linear")]  # fmt: skip
    frame = C.coerce(pd.concat(frames, ignore_index=True), C.PROBE)
    path = ProbeResult(frame, {}).save(tmp_path / "p")
    loaded = ProbeResult.load(path)
    pd.testing.assert_frame_equal(loaded.calls, frame)
    assert loaded.meta == {}
    summary = loaded.summary().set_index("scheme")
    pd.testing.assert_frame_equal(summary, probe_summary(frame).set_index("scheme"))
    assert summary.loc["normal", "divergence_kind"] == "overflow"
    assert summary.loc["normal", "divergence_module"] == str(
        int(summary.loc["normal", "divergence_call"]) - 1
    )  # Sequential names from 0
    assert pd.isna(summary.loc["kaiming_normal:nonlinearity=linear", "divergence_call"])
    # variance-preserving: the end-to-end backward gain stays within a factor 2 of 1 at
    # depth 40 (each layer's gain fluctuates by a few percent around 1, √40 of them)
    assert 0.5 < summary.loc["kaiming_normal:nonlinearity=linear", "first_grad_std"] < 2
    assert summary.loc["normal", "calls"] == 40 and summary.loc["normal", "reinitialised"] == 40
    report = write_probe_report(path)
    text = report.read_text()
    assert "Median output std by module type" in text and "overflow" in text
    assert (path / "figures" / "probe_std.png").exists()


def test_report_of_a_non_probe_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "cells.parquet").write_bytes(b"")
    with pytest.raises(InitsuiteError, match=r"no probe\.parquet"):
        write_probe_report(tmp_path / "sweep")
    with pytest.raises(InitsuiteError, match="no results directory"):
        ProbeResult.load(tmp_path / "missing")


def test_package_exports() -> None:
    assert initsuite.probe is probe and initsuite.apply is apply


def test_lsuv_through_probe_reaches_unit_std_layer_by_layer() -> None:
    """LSUV on a model initsuite did not write: after the start draws, each Conv/Linear, in
    forward order, is rescaled until its output std on the probe's batch is within tol of 1
    (BatchNorm's running statistics left as they were); apply needs the batch."""
    model = resnet()
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    x = torch.randn((8, 3, 16, 16), generator=torch.Generator().manual_seed(1))
    frame = probe(model, x, scheme="lsuv:tol=0.05").calls
    layers = frame[frame["type"].isin(["Conv2d", "Linear"])].drop_duplicates("module")
    assert len(layers) >= 5
    np.testing.assert_allclose(layers["std"], 1.0, atol=0.05)
    for k, v in model.state_dict().items():
        if "running" in k:
            torch.testing.assert_close(v, before[k])
    deep = nn.Sequential(*[m for _ in range(30) for m in (nn.Linear(64, 64), nn.ReLU())])
    frame = probe(deep, torch.randn(32, 64), scheme="lsuv:start=normal").calls  # N(0,1) start
    assert frame["divergence_kind"].isna().all()
    np.testing.assert_allclose(frame.loc[frame["type"] == "Linear", "std"], 1.0, atol=0.1)
    with pytest.raises(InitsuiteError, match="data-dependent: pass inputs="):
        apply(deep, "lsuv")


def _lsuv_by_the_paper(model: nn.Module, x: torch.Tensor, tol: float, max_iter: int) -> None:
    """Mishkin & Matas' loop as written: each layer in forward order, a full forward pass per
    rescaling, the running statistics put back after each pass."""
    order: list[nn.Module] = []
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    hooks = [m.register_forward_hook(lambda m, i, o: order.append(m)) for m in layers]
    state = copy.deepcopy(model.state_dict())
    with torch.no_grad():
        model(x)
        for h in hooks:
            h.remove()
        for layer in dict.fromkeys(order):
            seen: list[torch.Tensor] = []
            hook = layer.register_forward_hook(lambda m, i, o, seen=seen: seen.append(o))
            for _ in range(max_iter):
                seen.clear()
                model(x)
                model.load_state_dict(
                    {
                        **state,
                        **{
                            k: v
                            for k, v in model.state_dict().items()
                            if "running" not in k and "num_batches" not in k
                        },
                    }
                )
                std = float(seen[0].double().std())
                if abs(std * std - 1) < tol:
                    break
                layer.weight.div_(std)
            hook.remove()


def test_lsuv_in_one_pass_equals_the_papers_loop_of_full_passes() -> None:
    """apply's LSUV rescales each layer at its first call inside one forward pass: the
    weights equal those of the paper's loop (a full pass per rescaling), bit for bit, on a
    residual net with BatchNorm in train mode and a layer called twice; the model's forward
    runs once."""

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = resnet()
            self.shared = nn.Linear(10, 10)
            self.out = nn.Linear(10, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.shared(self.shared(self.body(x))))

    x = images(8, 16)
    for spec, tol, max_iter in (
        ("lsuv:start=normal", 0.1, 10),
        ("lsuv:start=normal,tol=0.001,max_iter=2", 0.001, 2),
    ):
        with torch.random.fork_rng():
            torch.manual_seed(3)
            ours = Twice()
        start = copy.deepcopy(ours)
        apply(
            start, "lsuv:start=normal,tol=1e9", generator=torch.Generator().manual_seed(5), inputs=x
        )  # the start draws alone: the first std is within 1e9 of 1
        reference = copy.deepcopy(start)
        _lsuv_by_the_paper(reference, x, tol, max_iter)
        passes: list[int] = []
        ours.register_forward_hook(lambda m, i, o, passes=passes: passes.append(1))
        apply(ours, spec, generator=torch.Generator().manual_seed(5), inputs=x)
        assert len(passes) == 1
        for (name, a), b in zip(
            ours.state_dict().items(), reference.state_dict().values(), strict=True
        ):
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
        for a, b in zip(ours.parameters(), start.parameters(), strict=True):
            assert a.dim() < 2 or not torch.equal(a, b)  # every weight rescaled


def test_probe_returns_a_result_that_saves_loads_and_reports(tmp_path: Path) -> None:
    """``probe`` on a model gives what ``probe_factory`` gives: a ProbeResult with the calls
    table and its metadata, saved, loaded (validated) and reported alike."""
    from initsuite.studies.probe import LOSS, probed_modules

    model = stack(6, 32)
    result = probe(model, torch.randn(8, 32), scheme="kaiming_normal", backward=True, seed=2)
    assert isinstance(result, ProbeResult) and tuple(result.calls.columns) == C.PROBE
    assert result.meta["kind"] == "probe" and result.meta["loss"] == LOSS
    assert result.meta["config"] == {
        "scheme": "kaiming_normal", "activation": None, "backward": True, "seed": 2,
        "include_embeddings": False, "mode": "train", "autocast": "float32",
    }  # fmt: skip
    assert result.meta["model"] == {"type": "Sequential", "parameters": 6 * 32 * 32,
                                    "probed_modules": len(probed_modules(model))}  # fmt: skip
    assert result.meta["environment"]["torch"] == torch.__version__
    path = result.save(tmp_path / "p")
    back = ProbeResult.load(path)
    pd.testing.assert_frame_equal(back.calls, result.calls, check_exact=True)
    assert back.meta == json.loads(json.dumps(result.meta))
    assert "## Summary" in write_probe_report(path).read_text()


def test_probed_modules_are_leaves_and_owners_of_parameters() -> None:
    from initsuite.studies.probe import ROOT, probed_modules

    class Owner(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.token = nn.Parameter(torch.zeros(4))
            self.body = nn.Sequential(nn.Linear(4, 4), nn.ReLU())

    names = [name for name, _ in probed_modules(Owner())]
    assert names == [ROOT, "body.0", "body.1"]  # `body` has children and no own parameter


def test_seeded_global_rng_seeds_inside_and_restores_after() -> None:
    from initsuite.engine.reinit import seeded_global_rng

    torch.manual_seed(123)
    expected_after = torch.rand(3)
    torch.manual_seed(123)
    with seeded_global_rng(7, [torch.device("cpu")]):
        inside = torch.rand(3)
    assert torch.equal(torch.rand(3), expected_after)  # the caller's stream goes on untouched
    torch.manual_seed(7)
    assert torch.equal(inside, torch.rand(3))


def test_apply_names_its_scheme_argument_as_probe_does() -> None:
    a, b = nn.Linear(8, 8), nn.Linear(8, 8)
    apply(a, scheme="orthogonal", generator=torch.Generator().manual_seed(0))
    probe(b, torch.randn(2, 8), scheme="orthogonal", seed=0)
    assert torch.equal(a.weight, b.weight)

"""The parametrization registry, ``initsuite parametrizations``, ``initsuite.parametrize``'s
roles, hooks and bad input (issue 30, items 1 and 2)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import initsuite
from initsuite.schemes import parametrizations as P
from tests.helpers import run_cli

ROLES = {"0.weight": "input", "2.weight": "hidden", "4.weight": "output", "*.bias": "bias"}


def mlp(width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, 3))  # fmt: skip


class ResMLP(nn.Module):
    """x + W2 relu(W1 x) blocks, declaring its roles as the coordinate-check models do."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        self.inp = nn.Linear(8, width, bias=False)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(width, width, bias=False), nn.ReLU(),
                                                  nn.Linear(width, width, bias=False))
                                    for _ in range(depth))  # fmt: skip
        self.out = nn.Linear(width, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)

    def parametrization_roles(self) -> dict[str, str]:
        return {"inp.*": "input", "blocks.*.0.*": "hidden", "blocks.*.2.*": "branch",
                "out.*": "output"}  # fmt: skip


def test_registry_lists_the_entries_with_their_papers() -> None:
    assert P.list_parametrizations() == ["completep", "depth_mup", "mean_field", "mup", "ntk", "sp"]
    assert P.list_parametrizations("*mup") == ["depth_mup", "mup"]
    for row in P.table():
        assert row["papers"] and all(row[f"rule_{r}"] for r in P.ROLES), row["parametrization"]
    with pytest.raises(ValueError, match="already registered"):
        P.register_parametrization(P.get_parametrization("sp"))


def test_cli_lists_parametrizations_and_one_with_its_rules(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(["parametrizations"], capsys)
    assert code == 0 and all(n in out for n in P.list_parametrizations())
    code, out, _ = run_cli(["parametrizations", "depth_mup"], capsys)
    assert code == 0 and "(L/L_base)^(-1/2)" in out and "Tensor Programs VI" in out
    code, out, _ = run_cli(["parametrizations", "--json", "mup"], capsys)
    assert code == 0 and json.loads(out)[0]["rule_output"].startswith("init × √m_in")
    code, _, err = run_cli(["parametrizations", "zzz*"], capsys)
    assert code == 1 and "no parametrization matches 'zzz*'" in err


def test_unknown_parametrization_is_one_line_with_the_nearest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(initsuite.InitsuiteError, match=r"unknown parametrization 'mu'; did you "
                       r"mean 'mup'\? \(choose from completep, .*, sp\)"):  # fmt: skip
        initsuite.parametrize(mlp(32), "mu", base=mlp(16), roles=ROLES)


def test_bad_optimizer_and_sgd_for_completep() -> None:
    with pytest.raises(initsuite.InitsuiteError, match=r"unknown optimizer 'adagrad'.*sgd, adam"):
        initsuite.parametrize(mlp(32), "mup", base=mlp(16), roles=ROLES, optimizer="adagrad")
    with pytest.raises(initsuite.InitsuiteError, match=r"'completep' .* adam only, not 'sgd'"):
        initsuite.parametrize(mlp(32), "completep", base=mlp(16), roles=ROLES, optimizer="sgd")


def test_ntk_under_adam_trains_sps_function_with_per_layer_rates() -> None:
    """The abc-symmetry, exactly: ntk under Adam (N(0, 1) hidden and readout weights times
    1/√m, their lr / √m) takes the same steps as the plain model of the same effective
    weights trained with Everett et al.'s SP rates (lr / m on hidden and readout weights,
    lr elsewhere), Adam's ε too small to count. float64; m = 4."""
    torch.manual_seed(0)
    with torch.device("cpu"):
        model, ref = mlp(64).double(), mlp(64).double()
    p = initsuite.parametrize(model, "ntk", base=mlp(16), roles=ROLES, optimizer="adam")
    assert p.lr_mult == {"0.weight": 1.0, "0.bias": 1.0, "2.weight": 0.5, "2.bias": 1.0,
                         "4.weight": 0.5, "4.bias": 1.0}  # fmt: skip
    with torch.no_grad():
        for i, scale in ((0, 1.0), (2, 0.5), (4, 0.5)):  # the effective weight w / √m_in
            ref[i].weight.copy_(model[i].weight * scale)
            ref[i].bias.copy_(model[i].bias)
    lr, eps = 1e-2, 1e-30
    rates = {"2.weight": lr / 4, "4.weight": lr / 4}
    opt_ref = torch.optim.Adam([{"params": [q], "lr": rates.get(n, lr)}
                                for n, q in ref.named_parameters()], eps=eps)  # fmt: skip
    opt = p.optimizer(lr, eps=eps)
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 8, generator=gen, dtype=torch.float64), torch.randint(0, 3, (16,))
    for _ in range(4):
        for net, o in ((model, opt), (ref, opt_ref)):
            o.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            o.step()
        torch.testing.assert_close(model(x), ref(x), rtol=1e-12, atol=1e-12)
    assert not torch.allclose(model(x), mlp(64).double()(x))  # it did train


def test_base_larger_than_the_model_is_refused_before_any_draw() -> None:
    model = mlp(16)
    before = [q.clone() for q in model.parameters()]
    with pytest.raises(initsuite.InitsuiteError, match=r"base's 0.weight is \(32, 8\), the "
                       r"model's \(16, 8\).*no larger"):  # fmt: skip
        initsuite.parametrize(model, "mup", base=mlp(32), roles=ROLES)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_parameter_without_a_role_names_it_and_counts_the_rest() -> None:
    with pytest.raises(initsuite.InitsuiteError, match=r"parameter '0.weight' \(and 2 others\) "
                       r"of the Sequential has no parametrization role: pass roles=.*input, "
                       r"hidden, output, bias, norm, branch"):  # fmt: skip
        initsuite.parametrize(mlp(32), "mup", base=mlp(16), roles={"*.bias": "bias"})
    with pytest.raises(initsuite.InitsuiteError, match=r"role 'readout' for '4\.weight'"):
        initsuite.parametrize(mlp(32), "mup", base=mlp(16), roles={"4.weight": "readout"})


def test_a_learning_rate_that_is_not_finite_is_one_line() -> None:
    p = initsuite.parametrize(mlp(32), "mup", base=mlp(16), roles=ROLES)
    for lr in (float("nan"), float("inf"), 0.0):
        with pytest.raises(initsuite.InitsuiteError, match="lr must be a positive finite number"):
            p.optimizer(lr)


def test_parametrize_again_replaces_the_hooks() -> None:
    model, x = mlp(64), torch.randn(4, 8)
    first = initsuite.parametrize(model, "mup", base=mlp(16), roles=ROLES)
    y = model(x)
    second = initsuite.parametrize(model, "mup", base=mlp(16), roles=ROLES)
    assert torch.equal(model(x), y)  # the same draw (seed 0), one multiplier, not two
    assert first._handles == [] and len(second._handles) == 1
    second.remove()
    bias = model[4].bias
    torch.testing.assert_close(model(x), (y - bias) / second.output_mult + bias)


def test_depth_rules_scale_branches_and_block_learning_rates() -> None:
    """depth_mup: a branch × 1/√L, Adam's lr in blocks × 1/√L (TP6); completep: × 1/L, lr
    depth-free (Dey et al., α = 1). L counted from the blocks holding a branch weight."""
    model, base = ResMLP(32, 4), ResMLP(16, 4)
    p = initsuite.parametrize(model, "depth_mup", base=base, optimizer="adam")
    assert p.roles["blocks.3.2.weight"] == "branch" and p.output_mult == 0.5
    assert p.lr_mult["blocks.0.2.weight"] == pytest.approx(1 / 2 / math.sqrt(4))
    assert p.lr_mult["inp.weight"] == 1.0  # outside the blocks
    h = torch.randn(2, 32)
    block = model.blocks[0]
    assert torch.allclose(block[2](h), h @ block[2].weight.T * 0.5)
    p = initsuite.parametrize(model, "completep", base=base, optimizer="adam", depth=8,
                              base_depth=2)  # fmt: skip
    assert torch.allclose(block[2](h), h @ block[2].weight.T * 0.25)
    assert p.lr_mult["blocks.0.2.weight"] == 0.5  # 1/m only


def test_gpt2_roles_are_inferred_and_its_tied_readout_scaled() -> None:
    transformers = pytest.importorskip("transformers")

    def gpt2(width: int) -> nn.Module:
        cfg = transformers.GPT2Config(n_layer=2, n_embd=width, n_head=2, vocab_size=40,
                                      n_positions=8)  # fmt: skip
        return transformers.GPT2LMHeadModel(cfg)

    model = gpt2(32)
    p = initsuite.parametrize(model, "mup", base=gpt2(16), optimizer="adam")
    want = {"transformer.wte.weight": "input", "transformer.wpe.weight": "input",
            "transformer.h.0.ln_1.weight": "norm", "transformer.h.0.ln_1.bias": "bias",
            "transformer.h.0.attn.c_attn.weight": "hidden",
            "transformer.h.0.attn.c_attn.bias": "bias",
            "transformer.h.0.attn.c_proj.weight": "branch", "transformer.h.1.mlp.c_fc.weight":
            "hidden", "transformer.h.1.mlp.c_proj.weight": "branch",
            "transformer.ln_f.weight": "norm", "lm_head.weight": "output"}  # fmt: skip
    assert {n: p.roles[n] for n in want} == want
    assert p.output_mult == 0.5  # the tied readout: 1 / (32/16)
    # a Conv1D weight is (in, out): its fan_in multiplier is dim 0's
    assert p.lr_mult["transformer.h.0.attn.c_attn.weight"] == 0.5
    assert p.lr_mult["transformer.wte.weight"] == 1.0
    ids = torch.arange(6).reshape(1, 6)
    assert torch.isfinite(model(ids).logits).all()


def test_docs_page_shows_every_rule_and_paper() -> None:
    """docs/parametrizations.md holds each entry's rules table: it cannot drift from the
    registry."""
    from pathlib import Path

    page = (Path(__file__).parents[1] / "docs" / "parametrizations.md").read_text("utf-8")
    for row in P.table():
        assert f"## `{row['parametrization']}`" in page
        for role in P.ROLES:
            assert f"| `{role}` | {row['rule_' + role]} |" in page, (row["parametrization"], role)
        assert all(paper in page for paper in row["papers"].split("; "))


def _bert(width: int) -> nn.Module:
    import transformers

    return transformers.BertForMaskedLM(transformers.BertConfig(
        vocab_size=40, hidden_size=width, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=2 * width, max_position_embeddings=16))  # fmt: skip


def _llama(width: int) -> nn.Module:
    import transformers

    return transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=40, hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=16))  # fmt: skip


def _vit(width: int) -> nn.Module:
    import timm

    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32,
                             patch_size=8, embed_dim=width, num_heads=2, depth=2,
                             num_classes=5)  # fmt: skip


@pytest.mark.parametrize(("make", "want"), [
    (_bert, {"bert.embeddings.word_embeddings.weight": "input",
             "bert.encoder.layer.1.attention.self.key.weight": "hidden",
             "bert.encoder.layer.1.output.dense.weight": "branch",
             "bert.encoder.layer.0.output.LayerNorm.weight": "norm",
             "cls.predictions.transform.dense.weight": "hidden",
             "cls.predictions.decoder.weight": "output", "cls.predictions.bias": "bias"}),
    (_llama, {"model.embed_tokens.weight": "input", "model.layers.0.mlp.gate_proj.weight":
              "hidden", "model.layers.0.self_attn.o_proj.weight": "branch",
              "model.layers.1.mlp.down_proj.weight": "branch", "model.norm.weight": "norm",
              "lm_head.weight": "output"}),
    (_vit, {"cls_token": "input", "pos_embed": "input", "patch_embed.proj.weight": "input",
            "blocks.0.attn.qkv.weight": "hidden", "blocks.1.mlp.fc2.weight": "branch",
            "blocks.1.norm2.bias": "bias", "norm.weight": "norm", "head.weight": "output"}),
])  # fmt: skip
def test_bert_llama_and_timm_vit_roles_from_their_structure(make, want) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("timm" if make is _vit else "transformers")
    p = initsuite.parametrize(make(32), "depth_mup", base=make(16))
    assert {n: p.roles[n] for n in want} == want
    assert p.output_mult == 0.5
    # two blocks: a branch weight's Adam lr is 1/m_in · 1/√L
    branch = next(n for n, r in want.items() if r == "branch")
    assert p.lr_mult[branch] == pytest.approx(1 / 2 / math.sqrt(2))


def test_a_forward_multiplier_no_hook_can_apply_is_refused_before_any_draw() -> None:
    """ntk multiplies every hidden weight's term by 1/√m: nn.MultiheadAttention's stacked
    in_proj_weight has no layer of its own to hook, so that is one line, not a silent 1."""

    def layer(width: int) -> nn.Module:
        return nn.TransformerEncoderLayer(width, 2, 2 * width, dropout=0.0, batch_first=True)

    model = layer(32)
    before = [q.clone() for q in model.parameters()]
    want = r"in_proj_weight \(hidden\) has forward multiplier 0\.7071.*MultiheadAttention's"
    with pytest.raises(initsuite.InitsuiteError, match=want):
        initsuite.parametrize(model, "ntk", base=layer(16), optimizer="sgd")
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert initsuite.parametrize(model, "mup", base=layer(16)).output_mult == 1.0


def _depth_slopes(name: str, optimizer: str) -> tuple[float, float]:
    """Slopes in log L of the residual stream's rms at init and of its change after one
    step (a ResMLP of width 64, L = 2, 8, 32)."""
    import numpy as np

    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 8, generator=gen), torch.randint(0, 3, (16,), generator=gen)
    depths, init, delta = (2, 8, 32), [], []
    for depth in depths:
        model = ResMLP(64, depth)
        p = initsuite.parametrize(model, name, base=ResMLP(16, depth), optimizer=optimizer)

        def stream(model: ResMLP = model) -> torch.Tensor:
            h = model.inp(x)
            for block in model.blocks:
                h = h + block(h)
            return h.detach()

        h0 = stream()
        opt = p.optimizer(0.05 if optimizer == "sgd" else 1e-3)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        init.append(h0.pow(2).mean().sqrt().item())
        delta.append((stream() - h0).pow(2).mean().sqrt().item())
    lw = np.log(depths)
    return np.polyfit(lw, np.log(init), 1)[0], np.polyfit(lw, np.log(delta), 1)[0]


DEPTH_CASES = [("depth_mup", "sgd"), ("depth_mup", "adam"), ("completep", "adam"), ("mup", "adam")]


@pytest.mark.parametrize(("name", "optimizer"), DEPTH_CASES)
def test_depth_rules_keep_the_residual_stream_and_its_update_flat_in_depth(
    name: str, optimizer: str
) -> None:
    """Depth-μP (1/√L branches; SGD's lr depth-free, Adam's × 1/√L) and CompleteP (1/L,
    Adam's lr depth-free) hold the stream and its one-step change at Θ(1) from L = 2 to 32
    (measured slopes within 0.15 of 0); μP alone lets both grow (the change about as L)."""
    init, delta = _depth_slopes(name, optimizer)
    if name == "mup":
        assert init > 0.2 and delta > 0.8
    else:
        assert abs(init) < 0.15 and abs(delta) < 0.15


def test_a_branch_multiplier_scales_the_whole_branch_bias_included() -> None:
    """x + a·f(x) (TP6; Dey et al.): a resmlp block's last Linear under depth_mup at L = 8
    over a base of 2 returns a·(W h + b), a = (8 / 2)^-½; the readout keeps MuReadout's
    W·(c x) + b."""
    from initsuite.studies.coord_models import resmlp

    model, base = resmlp(32, depth=8, bias=True), resmlp(16, depth=8, bias=True)
    p = initsuite.parametrize(model, "depth_mup", base=base, depth=8, base_depth=2)
    branch = next(n for n, r in p.roles.items() if r == "branch" and n.endswith("weight"))
    layer = model.get_submodule(branch.rpartition(".")[0])
    h = torch.randn(5, 32, generator=torch.Generator().manual_seed(0))
    assert layer.bias is not None and layer.bias.abs().sum() > 0
    expected = 0.5 * torch.nn.functional.linear(h, layer.weight, layer.bias)
    torch.testing.assert_close(layer(h), expected, rtol=0, atol=0)

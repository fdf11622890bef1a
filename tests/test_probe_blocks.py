"""Residual blocks of real models (issue 16): the residual roles ``apply`` passes to ``gpt2``
and ``fixup`` in Hugging Face's GPT-2, BERT and LLaMA layers and torch's transformer layers,
and the per-block table ``probe`` records (the stream's std after each block, what the block
added, the gradient at its output), stored, loaded and drawn."""

from __future__ import annotations

import copy
import functools
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from torch import nn

from initsuite import schemes as S
from initsuite.core.errors import InitsuiteError
from initsuite.engine.backward import GRAD_SEED_OFFSET
from initsuite.engine.reinit import apply
from initsuite.engine.roles import residual_roles
from initsuite.report.probe_report import BLOCKS_FIGURE, write_probe_report
from initsuite.results import columns as C
from initsuite.results.probe import ProbeResult
from initsuite.studies.blocks import BlockRecorder
from initsuite.studies.probe import probe

transformers = pytest.importorskip("transformers")

IDS = torch.randint(0, 100, (2, 12), generator=torch.Generator().manual_seed(0))


def _built(make: Any, config: Any) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return make(config).eval()


def gpt2(n_layer: int = 4) -> nn.Module:
    config = transformers.GPT2Config(n_layer=n_layer, n_embd=64, n_head=2, vocab_size=100,
                                     n_positions=64, bos_token_id=0, eos_token_id=0)  # fmt: skip
    return _built(transformers.GPT2Model, config)


def bert(layers: int = 3) -> nn.Module:
    config = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=layers,
                                     num_attention_heads=2, intermediate_size=64,
                                     max_position_embeddings=64)  # fmt: skip
    return _built(transformers.BertModel, config)


def llama(layers: int = 2) -> nn.Module:
    config = transformers.LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=48,
                                      num_hidden_layers=layers, num_attention_heads=2,
                                      num_key_value_heads=2, max_position_embeddings=64,
                                      bos_token_id=0, eos_token_id=0, pad_token_id=0)  # fmt: skip
    return _built(transformers.LlamaModel, config)


def encoder(layers: int = 3) -> nn.Module:
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=24, dropout=0.0,
                                       batch_first=True)  # fmt: skip
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False).eval()


def _outs(roles: dict[str, S.LayerContext]) -> list[str]:
    return [k for k, c in roles.items() if c.role == "branch_out"]


# --- roles -----------------------------------------------------------------------------------


def test_gpt2_roles_name_every_branch_weight_with_its_context() -> None:
    roles = residual_roles(gpt2(3))
    per_layer = ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]
    assert list(roles) == [f"h.{i}.{p}.weight" for i in range(3) for p in per_layer]
    assert _outs(roles) == [f"h.{i}.{p}.c_proj.weight" for i in range(3) for p in ("attn", "mlp")]
    for k, (name, c) in enumerate(roles.items()):
        # two residual branches per layer, each one block of m = 2 stages; N = 2·n_layer
        assert (c.blocks, c.branch_depth, c.residual_projections) == (6, 2, 6), name
        assert (c.block, c.position, c.index, c.depth) == (k // 2 + 1, k % 2 + 1, k + 1, 12)
        assert c.role == ("branch_out" if name.endswith("c_proj.weight") else "branch")
    # Conv1D's fans are its (out, in) Linear's: c_attn 64 → 192, c_proj of the MLP 256 → 64
    assert (roles["h.0.attn.c_attn.weight"].fan_in, roles["h.0.attn.c_attn.weight"].fan_out) == (
        64, 192)  # fmt: skip
    assert (roles["h.0.mlp.c_proj.weight"].fan_in, roles["h.0.mlp.c_proj.weight"].fan_out) == (
        256, 64)  # fmt: skip


def test_roles_use_apply_s_names_in_a_head_model() -> None:
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100,
                                     n_positions=64, bos_token_id=0, eos_token_id=0)  # fmt: skip
    model = _built(transformers.GPT2LMHeadModel, config)
    roles = residual_roles(model)
    drawn = apply(model, "kaiming_normal")
    assert set(roles) < set(drawn) and "lm_head.weight" not in roles
    assert _outs(roles)[0] == "transformer.h.0.attn.c_proj.weight"


def test_bert_and_llama_roles() -> None:
    roles = residual_roles(bert(3))
    assert _outs(roles) == [f"encoder.layer.{i}.{p}.dense.weight" for i in range(3)
                            for p in ("attention.output", "output")]  # fmt: skip
    q = roles["encoder.layer.0.attention.self.query.weight"]
    v = roles["encoder.layer.0.attention.self.value.weight"]
    assert (q.role, q.position, v.position, q.branch_depth, q.blocks) == ("branch", 1, 1, 2, 6)
    assert roles["encoder.layer.2.intermediate.dense.weight"].block == 6
    assert len(roles) == 3 * 6 and all(c.residual_projections == 6 for c in roles.values())
    roles = residual_roles(llama(2))
    assert _outs(roles) == [f"layers.{i}.{p}.weight" for i in range(2)
                            for p in ("self_attn.o_proj", "mlp.down_proj")]  # fmt: skip
    gate, up = roles["layers.1.mlp.gate_proj.weight"], roles["layers.1.mlp.up_proj.weight"]
    assert (gate.position, up.position, gate.branch_depth, gate.block, gate.blocks) == (
        1, 1, 2, 4, 4)  # fmt: skip
    assert len(roles) == 2 * 7


def test_torch_transformer_layers_roles() -> None:
    roles = residual_roles(encoder(3))
    per_layer = ["self_attn.in_proj_weight", "self_attn.out_proj.weight", "linear1.weight",
                 "linear2.weight"]  # fmt: skip
    assert list(roles) == [f"layers.{i}.{p}" for i in range(3) for p in per_layer]
    assert _outs(roles) == [f"layers.{i}.{p}" for i in range(3)
                            for p in ("self_attn.out_proj.weight", "linear2.weight")]  # fmt: skip
    stacked = roles["layers.0.self_attn.in_proj_weight"]  # (3E, E): torch's fans
    assert (stacked.fan_in, stacked.fan_out, stacked.residual_projections) == (16, 48, 6)
    # a bare layer is a model too (names without a prefix); a decoder layer has 3 branches
    dec = nn.TransformerDecoderLayer(d_model=16, nhead=2, dim_feedforward=24)
    roles = residual_roles(dec)
    assert _outs(roles) == ["self_attn.out_proj.weight", "multihead_attn.out_proj.weight",
                            "linear2.weight"]  # fmt: skip
    assert {c.blocks for c in roles.values()} == {3}


def test_a_model_without_known_blocks_has_no_roles() -> None:
    net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))
    assert residual_roles(net) == {}


def test_a_known_block_missing_a_listed_layer_is_refused_not_guessed() -> None:
    model = gpt2(2)
    del model.h[1].mlp.c_proj  # another version of the library, say
    with pytest.raises(InitsuiteError, match=r"h\.1 is a GPT2Block .* without 'mlp\.c_proj'"):
        residual_roles(model)
    with pytest.raises(InitsuiteError, match=r"without 'mlp\.c_proj'"):
        apply(model, "gpt2")
    apply(model, "kaiming_normal")  # schemes without roles never ask
    model.h[1].mlp.c_proj = nn.Identity()
    with pytest.raises(InitsuiteError, match=r"whose 'mlp\.c_proj' holds no weight"):
        apply(model, "fixup")


# --- apply -----------------------------------------------------------------------------------


def _replay(model: nn.Module, names: list[str], seed: int, draw: Any) -> dict[str, torch.Tensor]:
    """The weights ``names`` drawn in order from one generator by ``draw(name, t, gen)``, each
    as its (out, in) Linear (a Conv1D's stored transposed): what apply must give."""
    gen, out = torch.Generator().manual_seed(seed), {}
    for name in names:
        owner, _, pname = name.rpartition(".")
        m = model.get_submodule(owner)
        w = getattr(m, pname)
        conv1d = type(m).__name__ == "Conv1D"
        t = torch.empty(w.shape[::-1] if conv1d else w.shape)
        with torch.no_grad():
            draw(name, t, gen)
        out[name] = t.T if conv1d else t
    return out


def test_apply_gpt2_draws_residual_projections_at_002_over_sqrt_2n() -> None:
    model = gpt2(4)
    names = apply(model, "gpt2", generator=torch.Generator().manual_seed(3))
    low = 0.02 / math.sqrt(2 * 4)
    expected = _replay(model, names, 3, lambda n, t, g: t.normal_(
        0.0, low if n.endswith("c_proj.weight") else 0.02, generator=g))  # fmt: skip
    for name, value in expected.items():
        assert torch.equal(model.get_parameter(name), value), name


def test_apply_gpt2_matches_hugging_face_s_own_init() -> None:
    """HF's GPT2PreTrainedModel._init_weights: Conv1D N(0, 0.02²), c_proj N(0, 0.02²/(2·n_layer)).
    Pooled over 8 layers: c_proj 8·(64² + 256·64) = 163840 draws, c_attn/c_fc 8·(3+4)·64² =
    229376: the std's relative sd is 1/√(2n) ≈ 0.18%, so 2% is > 10σ of either draw."""
    theirs, ours = gpt2(8), gpt2(8)
    apply(ours, "gpt2", generator=torch.Generator().manual_seed(1))

    def pooled(model: nn.Module, leaf: str) -> float:
        ws = [p.detach().reshape(-1) for n, p in model.named_parameters()
              if n.endswith(f"{leaf}.weight")]  # fmt: skip
        return float(torch.cat(ws).double().std())

    for leaf, want in [("c_proj", 0.02 / math.sqrt(16)), ("c_attn", 0.02), ("c_fc", 0.02)]:
        assert pooled(theirs, leaf) == pytest.approx(want, rel=0.02), leaf
        assert pooled(ours, leaf) == pytest.approx(pooled(theirs, leaf), rel=0.03), leaf


@pytest.mark.parametrize("make", [gpt2, encoder])
def test_apply_fixup_zeroes_projections_and_scales_branches(make: Any) -> None:
    model = make()
    roles = residual_roles(model)
    names = apply(model, "fixup", generator=torch.Generator().manual_seed(5))
    branches = len(_outs(roles))  # Fixup's L: the residual branches, m = 2 in each
    factor = branches ** (-1.0 / (2 * 2 - 2))

    def draw(name: str, t: torch.Tensor, gen: torch.Generator) -> None:
        if name in _outs(roles):
            t.zero_()  # the zeroed projection draws nothing: the stream moves on untouched
        else:
            torch.nn.init.kaiming_normal_(t, generator=gen)
            if name in roles:
                t.mul_(factor)

    for name, value in _replay(model, names, 5, draw).items():
        assert torch.equal(model.get_parameter(name), value), name
    assert all(not model.get_parameter(n).any() for n in _outs(roles))


def _plain_draw(scheme: S.Scheme, name: str, t: torch.Tensor, gen: torch.Generator) -> None:
    scheme(t, generator=gen)  # no context: what apply did before residual roles


def _plain(spec: str) -> bool:
    info = S.get(spec).info
    return not info.uses and info.accepts_rank(2)


@pytest.mark.parametrize("make", [gpt2, bert])
def test_schemes_without_roles_draw_bit_for_bit_as_before(make: Any) -> None:
    """Every scheme that takes no context draws each weight as scheme(weight, generator): the
    roles of the model's blocks (there are some) change nothing."""
    model = make()
    assert residual_roles(model)
    for spec in [S.info(n).example for n in S.names() if _plain(S.info(n).example)]:
        m = copy.deepcopy(model)
        try:
            names = apply(m, spec, generator=torch.Generator().manual_seed(7))
        except InitsuiteError:
            continue  # a shape the scheme refuses (eye on a non-square weight)
        draw = functools.partial(_plain_draw, S.get(spec))
        for name, value in _replay(m, names, 7, draw).items():
            assert torch.equal(m.get_parameter(name), value), (spec, name)


@pytest.mark.parametrize("spec", ["gpt2", "fixup", "skipinit"])
def test_residual_schemes_on_a_model_without_known_blocks_draw_as_before(spec: str) -> None:
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    names = apply(net, spec, generator=torch.Generator().manual_seed(2))
    for name, value in _replay(net, names, 2, functools.partial(_plain_draw, S.get(spec))).items():
        assert torch.equal(net.get_parameter(name), value), name


# --- per-block recording ---------------------------------------------------------------------


def _std(t: torch.Tensor) -> float:
    return float(t.detach().double().std())


def test_block_stats_match_the_hidden_states_hugging_face_returns() -> None:
    """BERT's hidden_states are the embeddings and each layer's output, so a reference needs
    no hooks: stream std, added std, ratio, and the gradient at each layer's output of the
    probe's loss Σ R ⊙ last_hidden_state."""
    model = bert(3)
    blocks = probe(model, {"input_ids": IDS}, backward=True, seed=4).blocks
    assert list(blocks["module"]) == [f"encoder.layer.{i}" for i in range(3)]
    assert list(blocks["block"]) == [1, 2, 3] and set(blocks["type"]) == {"BertLayer"}
    out = model(input_ids=IDS, output_hidden_states=True)
    hs = out.hidden_states
    y = out.last_hidden_state
    r = torch.randn(y.shape, generator=torch.Generator().manual_seed(4 + GRAD_SEED_OFFSET))
    grads = torch.autograd.grad(y, hs[1:], grad_outputs=r)
    for k, row in blocks.iterrows():
        i = int(k) + 1  # type: ignore[call-overload]
        added = _std(hs[i].double() - hs[i - 1].double())  # the exact difference
        # float64 statistics of the same float32 tensors: only summation order differs
        assert row["stream_std"] == pytest.approx(_std(hs[i]), rel=1e-9)
        assert row["update_std"] == pytest.approx(added, rel=1e-9)
        assert row["update_ratio"] == pytest.approx(added / _std(hs[i - 1]), rel=1e-9)
        assert row["stream_grad_std"] == pytest.approx(_std(grads[i - 1]), rel=1e-6)


@pytest.mark.parametrize("make", [gpt2, llama])
def test_decoder_blocks_match_their_hidden_states(make: Any) -> None:
    """GPT-2 and LLaMA return the last layer's output after their final norm, so the
    reference covers the layers before it; no gradient column without backward."""
    model = make()
    blocks = probe(model, {"input_ids": IDS}).blocks
    hs = model(input_ids=IDS, output_hidden_states=True).hidden_states
    assert len(blocks) == len(hs) - 1 and blocks["stream_grad_std"].isna().all()
    for k in range(len(blocks) - 1):
        assert blocks["stream_std"].iloc[k] == pytest.approx(_std(hs[k + 1]), rel=1e-9)
        added = _std(hs[k + 1].double() - hs[k].double())
        assert blocks["update_ratio"].iloc[k] == pytest.approx(added / _std(hs[k]), rel=1e-9)


def test_fixup_blocks_add_nothing_to_the_stream() -> None:
    blocks = probe(gpt2(3), {"input_ids": IDS}, scheme="fixup").blocks
    # zeroed projections and GPT-2's zero biases: each block returns its input exactly
    assert (blocks["update_std"] == 0).all() and (blocks["update_ratio"] == 0).all()


class _ByKeyword(nn.Module):
    """Calls its layers with the stream as a keyword (``src=``), not by position."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = encoder(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.inner.layers:
            x = layer(src=x)
        return x


def test_a_stream_passed_by_keyword_is_recorded() -> None:
    model = _ByKeyword().eval()
    x = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(0))
    blocks = probe(model, x).blocks
    with torch.no_grad():  # as probe runs it: torch's fast path in eval, other rounding
        h1 = model.inner.layers[0](x)
    assert list(blocks["module"]) == ["inner.layers.0", "inner.layers.1"]
    assert blocks["stream_std"].iloc[0] == pytest.approx(_std(h1), rel=1e-9)
    assert blocks["update_std"].iloc[0] == pytest.approx(_std(h1.double() - x.double()), rel=1e-9)


def test_a_block_that_changes_the_shape_records_no_row() -> None:
    rec = BlockRecorder(encoder(1), backward=False)
    rec.record("layers.0", nn.Identity(), torch.randn(2, 3), torch.randn(2, 4))
    rec.record("layers.0", nn.Identity(), torch.randn(2, 3), None)
    assert rec.frame("M", "as_built", 0).empty
    assert probe(nn.Sequential(nn.Linear(4, 4)), torch.randn(2, 4)).blocks.empty


# --- store and report ------------------------------------------------------------------------


def _result() -> ProbeResult:
    model = gpt2(2)
    return probe(model, {"input_ids": IDS}, scheme="gpt2", backward=True)


def test_blocks_round_trip_and_older_directories_load_empty(tmp_path: Path) -> None:
    result = _result()
    assert tuple(result.blocks.columns) == C.PROBE_BLOCKS and len(result.blocks) == 2
    ProbeResult(result.calls, result.meta, result.blocks).save(tmp_path / "new")
    assert (tmp_path / "new" / "blocks.parquet").exists()
    loaded = ProbeResult.load(tmp_path / "new")
    pd.testing.assert_frame_equal(loaded.blocks, result.blocks)
    ProbeResult(result.calls, result.meta).save(tmp_path / "old")  # as written before blocks
    assert not (tmp_path / "old" / "blocks.parquet").exists()
    old = ProbeResult.load(tmp_path / "old")
    assert old.blocks.empty and tuple(old.blocks.columns) == C.PROBE_BLOCKS


def test_a_damaged_blocks_table_is_refused(tmp_path: Path) -> None:
    result = _result()
    result.save(tmp_path / "p")
    stray = result.blocks.assign(scheme="xavier_normal")
    stray.to_parquet(tmp_path / "p" / "blocks.parquet", index=False)
    stray_rx = r"blocks\.parquet.* holds model, scheme and autocast \('GPT2Model', 'xavier_normal'"
    with pytest.raises(InitsuiteError, match=stray_rx):
        ProbeResult.load(tmp_path / "p")
    result.blocks.drop(columns="stream_std").to_parquet(tmp_path / "p" / "blocks.parquet")
    with pytest.raises(InitsuiteError, match=r"blocks\.parquet.* lacks column 'stream_std'"):
        ProbeResult.load(tmp_path / "p")


def test_concat_joins_calls_and_blocks() -> None:
    a = _result()
    b = probe(gpt2(2), {"input_ids": IDS}, scheme="fixup")
    both = ProbeResult.concat([a, b, probe(nn.Linear(3, 3), torch.randn(2, 3))], {"kind": "probe"})
    assert list(dict.fromkeys(both.blocks["scheme"])) == ["gpt2", "fixup"]
    assert len(both.blocks) == 4 and len(both.calls) == len(a.calls) + len(b.calls) + 1
    assert tuple(both.blocks.columns) == C.PROBE_BLOCKS and both.meta == {"kind": "probe"}
    with pytest.raises(InitsuiteError, match="at least one result"):
        ProbeResult.concat([], {})


def test_report_draws_the_blocks_figure(tmp_path: Path) -> None:
    _result().save(tmp_path / "p")
    text = write_probe_report(tmp_path / "p").read_text()
    assert (tmp_path / "p" / "figures" / f"{BLOCKS_FIGURE}.png").stat().st_size > 10_000
    assert "## Residual blocks" in text and "*Figure 2: The residual stream by block.*" in text
    assert f"figures/{BLOCKS_FIGURE}.png" in text and "first block grad std" in text
    plain = probe(nn.Sequential(nn.Linear(4, 4)), torch.randn(2, 4))
    plain.save(tmp_path / "q")
    text = write_probe_report(tmp_path / "q").read_text()
    assert "Residual blocks" not in text
    assert not (tmp_path / "q" / "figures" / f"{BLOCKS_FIGURE}.png").exists()


def test_tables_page_lists_every_blocks_column() -> None:
    page = (Path(__file__).parents[1] / "docs" / "tables.md").read_text(encoding="utf-8")
    assert [c for c in C.PROBE_BLOCKS if f"`{c}`" not in page] == []

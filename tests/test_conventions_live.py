"""Framework conventions (issue 15) checked against the frameworks' own layers, and the unit
behaviour of ``initsuite.conventions`` / ``apply(model, CONVENTION)`` / the CLI.

Live checks draw a layer in the framework and the same layer in torch after
``initsuite.apply(layer, CONVENTION)``, and compare each parameter's distribution:

* constants: exactly equal;
* variance: relative difference within 6·√(2/n) + 6·√(2/m) (the sample variance's relative
  standard error is ≈ √(2/n) for a normal, less for a uniform; 6 standard errors: a false
  failure about once in 10⁸ comparisons);
* support: max |w| of ours within the framework's bound, and the two maxima within 10% (with
  n ≥ 4096 draws the sample maximum of a bounded law is within 0.1% of its bound);
* two-sample KS: p > 1e-4 (about 30 comparisons here: a false failure < 1 in 300 runs; a
  wrong law, e.g. untruncated for truncated or a fan off by k, gives p ≈ 0 at these sizes).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp
from torch import nn

import initsuite
from initsuite.core.checked import checked
from initsuite.core.errors import InitsuiteError
from initsuite.schemes import convention_table as table
from initsuite.schemes import conventions as conv
from tests.helpers import run_cli


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy().ravel()


def assert_same_law(ref: np.ndarray, ours: np.ndarray, bounded: bool = False) -> None:
    ref, ours = np.asarray(ref, dtype=np.float64).ravel(), np.asarray(ours, np.float64).ravel()
    if np.all(ref == ref[0]):
        np.testing.assert_array_equal(ours, np.full_like(ours, ref[0]))
        return
    tol = 6 * (np.sqrt(2 / ref.size) + np.sqrt(2 / ours.size))
    assert abs(ours.var() / ref.var() - 1) < tol, (ours.var(), ref.var())
    if bounded:
        assert abs(np.abs(ours).max() / np.abs(ref).max() - 1) < 0.1
    assert ks_2samp(ref, ours).pvalue > 1e-4


def _apply(model: nn.Module, name: str, seed: int = 0) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return initsuite.apply(model, name, generator=torch.Generator().manual_seed(seed))


# --- torch: the convention is torch's own reset_parameters ------------------------------------


_LAYERS = [lambda: nn.Linear(40, 30), lambda: nn.Conv2d(6, 8, 3), lambda: nn.Conv1d(5, 7, 2),
           lambda: nn.ConvTranspose2d(6, 4, 3), lambda: nn.ConvTranspose3d(3, 4, 2),
           lambda: nn.Embedding(50, 16, padding_idx=2), lambda: nn.LayerNorm(9),
           lambda: nn.LSTM(6, 5, num_layers=2, proj_size=3)]  # fmt: skip


@pytest.mark.live("torch")
@pytest.mark.parametrize("make", _LAYERS)
def test_torch_convention_is_reset_parameters_bit_for_bit(make) -> None:
    torch.manual_seed(3)
    ref = make()
    ours = copy.deepcopy(ref)
    for p in ours.parameters():  # something else first
        nn.init.normal_(p)
    initsuite.apply(ours, "torch", generator=torch.Generator().manual_seed(3))
    for (n, a), (_, b) in zip(ref.named_parameters(), ours.named_parameters(), strict=True):
        assert torch.equal(a, b), n


@pytest.mark.live("torch")
def test_torch_convention_multihead_attention_same_law() -> None:
    # torch draws out_proj first (at construction), then in_proj: no bit-equality, same law
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(256, 4)
    m = copy.deepcopy(ref)
    _apply(m, "torch", seed=1)
    for (_, a), (_, b) in zip(ref.named_parameters(), m.named_parameters(), strict=True):
        assert_same_law(_np(a), _np(b), bounded=True)


# --- flax (linen and nnx) ----------------------------------------------------------------------


@pytest.mark.live("flax", "jax")
def test_flax_linen_layers_match() -> None:
    jax = pytest.importorskip("jax")
    linen = pytest.importorskip("flax.linen")
    key = jax.random.PRNGKey(0)

    def init(layer, x):
        return jax.tree_util.tree_map(np.asarray, layer.init(key, x)["params"])

    p = init(linen.Dense(256), np.ones((1, 512), np.float32))
    t = nn.Linear(512, 256)
    _apply(t, "flax")
    assert_same_law(p["kernel"].T, _np(t.weight), bounded=True)
    assert_same_law(p["bias"], _np(t.bias))
    p = init(linen.Conv(64, (3, 3)), np.ones((1, 8, 8, 32), np.float32))
    t = nn.Conv2d(32, 64, 3)
    _apply(t, "flax")
    assert_same_law(p["kernel"], _np(t.weight), bounded=True)
    assert_same_law(p["bias"], _np(t.bias))
    p = init(linen.ConvTranspose(64, (3, 3)), np.ones((1, 8, 8, 16), np.float32))
    t = nn.ConvTranspose2d(16, 64, 3)  # Flax fan_in 16·9 = torch's fan_out of (16, 64, 3, 3)
    _apply(t, "flax")
    assert_same_law(p["kernel"], _np(t.weight), bounded=True)
    p = init(linen.Embed(2000, 64), np.zeros((1,), np.int32))
    t = nn.Embedding(2000, 64)
    _apply(t, "flax")
    assert_same_law(p["embedding"], _np(t.weight))
    for flax_norm, torch_norm in ((linen.LayerNorm(), nn.LayerNorm(8)),
                                  (linen.BatchNorm(use_running_average=True), nn.BatchNorm1d(8)),
                                  (linen.GroupNorm(num_groups=2), nn.GroupNorm(2, 8))):  # fmt: skip
        p = init(flax_norm, np.ones((2, 8), np.float32))
        _apply(torch_norm, "flax")
        assert_same_law(p["scale"], _np(torch_norm.weight))
        assert_same_law(p["bias"], _np(torch_norm.bias))


@pytest.mark.live("flax", "jax")
def test_flax_attention_and_nnx_match() -> None:
    jax = pytest.importorskip("jax")
    linen = pytest.importorskip("flax.linen")
    nnx = pytest.importorskip("flax.nnx")
    x = np.ones((1, 4, 256), np.float32)
    p = linen.MultiHeadDotProductAttention(num_heads=4).init(jax.random.PRNGKey(0), x, x)
    p = p["params"]
    t = nn.MultiheadAttention(256, 4)
    _apply(t, "flax")
    qkv = np.concatenate([np.asarray(p[k]["kernel"]).ravel() for k in ("query", "key", "value")])
    assert_same_law(qkv, _np(t.in_proj_weight), bounded=True)
    assert_same_law(np.asarray(p["out"]["kernel"]), _np(t.out_proj.weight), bounded=True)
    assert_same_law(np.asarray(p["query"]["bias"]), _np(t.in_proj_bias))
    # nnx: the same laws as linen (no separate convention needed)
    rngs = nnx.Rngs(0)
    lin, emb = nnx.Linear(512, 256, rngs=rngs), nnx.Embed(2000, 64, rngs=rngs)
    t, e = nn.Linear(512, 256), nn.Embedding(2000, 64)
    _apply(t, "flax"), _apply(e, "flax")
    assert_same_law(np.asarray(lin.kernel[...]), _np(t.weight), bounded=True)
    assert_same_law(np.asarray(lin.bias[...]), _np(t.bias))
    assert_same_law(np.asarray(emb.embedding[...]), _np(e.weight))


# --- keras 3 (torch backend) -------------------------------------------------------------------


@pytest.mark.live("keras")
def test_keras_layers_match() -> None:
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras runs on {keras.backend.backend()}, not torch")

    def built(layer, shape):
        layer.build(shape)
        return [w.value.detach().numpy() for w in layer.weights]  # torch tensors

    k, b = built(keras.layers.Dense(256), (None, 512))
    t = nn.Linear(512, 256)
    _apply(t, "keras")
    assert_same_law(k, _np(t.weight), bounded=True)
    assert_same_law(b, _np(t.bias))
    k, b = built(keras.layers.Conv2D(64, 3), (None, 8, 8, 32))
    t = nn.Conv2d(32, 64, 3)
    _apply(t, "keras")
    assert_same_law(k, _np(t.weight), bounded=True)
    (k,) = built(keras.layers.Embedding(2000, 64), (None, 3))
    t = nn.Embedding(2000, 64)
    _apply(t, "keras")
    assert_same_law(k, _np(t.weight), bounded=True)
    g, beta = built(keras.layers.LayerNormalization(), (None, 8))
    t = nn.LayerNorm(8)
    _apply(t, "keras")
    assert_same_law(g, _np(t.weight)), assert_same_law(beta, _np(t.bias))


@pytest.mark.live("keras")
def test_keras_attention_matches() -> None:
    """Keras 3's MultiHeadAttention: Glorot uniform on each q, k, v and output kernel with
    the fans of the (E, E) projection (its EinsumDense sums the fans over the input and the
    output axes), zero biases."""
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras runs on {keras.backend.backend()}, not torch")
    e, heads = 256, 4
    layer = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=e // heads)
    x = np.zeros((1, 3, e), np.float32)
    layer(x, x)
    w = {v.path.rpartition("/")[0].rpartition("/")[2] + "/" + v.name: v.value.detach().numpy()
         for v in layer.weights}  # fmt: skip
    t = nn.MultiheadAttention(e, heads)
    drawn = _apply(t, "keras")
    assert not drawn.untouched
    qkv = np.concatenate([w[f"{k}/kernel"].ravel() for k in ("query", "key", "value")])
    assert_same_law(qkv, _np(t.in_proj_weight), bounded=True)
    for block in t.in_proj_weight.detach().chunk(3):  # each projection on its own, not stacked
        assert np.abs(_np(block)).max() <= np.sqrt(6 / (2 * e))
        assert _np(block).var() == pytest.approx(1 / e, rel=0.05)
    assert_same_law(w["attention_output/kernel"], _np(t.out_proj.weight), bounded=True)
    assert_same_law(w["query/bias"], _np(t.in_proj_bias))
    assert_same_law(w["attention_output/bias"], _np(t.out_proj.bias))


# --- transformers: _init_weights is the ground truth ------------------------------------------


def _hf_check(model: nn.Module, name: str, skip: str = "") -> None:
    ref = {n: _np(p) for n, p in model.named_parameters()}
    drawn = _apply(model, name, seed=5)
    assert not drawn.untouched, drawn.untouched
    for n, p in model.named_parameters():
        if skip and skip in n:
            continue
        assert_same_law(ref[n], _np(p))


@pytest.mark.live("transformers")
def test_hf_bert_and_gpt2_match_init_weights() -> None:
    tr = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = dict(vocab_size=1000, num_hidden_layers=2, num_attention_heads=2)
    bert = tr.BertModel(tr.BertConfig(hidden_size=128, intermediate_size=256,
                                      max_position_embeddings=64, **cfg))  # fmt: skip
    _hf_check(bert, "hf_bert")
    gpt2 = tr.GPT2Model(tr.GPT2Config(n_embd=128, n_layer=2, n_head=2, n_positions=64,
                                      vocab_size=1000))  # fmt: skip
    _hf_check(gpt2, "hf_gpt2")  # c_proj too: N(0, 0.02²/(2·n_layer))
    cproj = torch.cat([p.detach().ravel() for n, p in gpt2.named_parameters()
                       if n.endswith("c_proj.weight")])  # fmt: skip
    assert float(cproj.std()) == pytest.approx(0.02 / 2, rel=0.02)  # n_layer = 2


@pytest.fixture(scope="module")
def hf_models() -> dict[str, nn.Module]:
    """A tiny BERT and GPT-2, whose ``_init_weights`` is the ground truth per layer."""
    import transformers as tr

    bert = tr.BertModel(tr.BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                      intermediate_size=32, vocab_size=50,
                                      max_position_embeddings=8))  # fmt: skip
    gpt2 = tr.GPT2Model(tr.GPT2Config(n_embd=16, n_layer=1, n_head=2, n_positions=8,
                                      vocab_size=50))  # fmt: skip
    return {"hf_bert": bert, "hf_gpt2": gpt2}


_HF_LAYERS = {
    # _init_weights redraws ConvTranspose1d/2d only: a 3-d layer keeps torch's U(±1/√fan_in)
    "conv_transpose3d": lambda: nn.ConvTranspose3d(16, 16, 3),
    "conv_transpose2d": lambda: nn.ConvTranspose2d(32, 16, 3),
    # xavier_uniform on each weight_* matrix (fan_out 4·hidden), zero biases
    "lstm": lambda: nn.LSTM(64, 64),
}


@pytest.mark.live("transformers")
@pytest.mark.parametrize("name", ["hf_bert", "hf_gpt2"])
@pytest.mark.parametrize("layer", list(_HF_LAYERS))
def test_hf_layers_match_init_weights(hf_models, name: str, layer: str) -> None:
    torch.manual_seed(0)
    ref = _HF_LAYERS[layer]()
    ours = copy.deepcopy(ref)
    hf_models[name]._init_weights(ref)
    drawn = _apply(ours, name, seed=1)
    assert not drawn.untouched, drawn.untouched
    for (n, a), (_, b) in zip(ref.named_parameters(), ours.named_parameters(), strict=True):
        assert_same_law(_np(a), _np(b), bounded=layer != "conv_transpose2d"), n


# --- timm: each model's own init is the ground truth --------------------------------------------


def _timm_check(model: nn.Module, name: str) -> list[str]:
    """Every parameter the convention draws has the law timm gave it; returns those drawn."""
    ref = {n: _np(p) for n, p in model.named_parameters()}
    drawn = _apply(model, name, seed=5)
    params = dict(model.named_parameters())
    for n in drawn:
        assert_same_law(ref[n], _np(params[n])), n
    return drawn


@pytest.mark.live("timm")
@pytest.mark.parametrize("block", ["BasicBlock", "Bottleneck"])
def test_timm_resnet_matches_init_weights_and_zero_init_last(block: str) -> None:
    """timm's ResNet: Conv2d kaiming_normal (fan_out, relu), the rest torch's, and the last
    BatchNorm of every block (bn2, bn3) with scale 0 (zero_init_last, on by default)."""
    from timm.models import resnet

    torch.manual_seed(0)
    net = resnet.ResNet(getattr(resnet, block), [1, 1, 1, 1], channels=(16, 32, 32, 32),
                        stem_width=16, num_classes=10)  # fmt: skip
    last = "bn3" if block == "Bottleneck" else "bn2"
    zeroed = [n for n, p in net.named_parameters() if n.endswith(f"{last}.weight")]
    assert len(zeroed) == 4 and all(not net.get_parameter(n).any() for n in zeroed)
    drawn = _timm_check(net, "timm_resnet")
    assert set(drawn) == {n for n, _ in net.named_parameters()}


def test_last_norm_rule_zeroes_torchvision_blocks_only_under_timm_resnet() -> None:
    """torchvision's ResNet keeps its last BatchNorms at 1 (zero_init_residual=False, its
    default) and so does the torch convention; timm_resnet, applied to it, zeroes them as
    timm's zero_init_last would."""
    from torchvision.models.resnet import BasicBlock, Bottleneck

    net = nn.Sequential(BasicBlock(8, 8), Bottleneck(8, 2))  # its blocks, small
    last = ["0.bn2.weight", "1.bn3.weight"]
    _apply(net, "torch")
    assert all(bool((net.get_parameter(n) == 1).all()) for n in last)
    _apply(net, "timm_resnet")
    assert all(not net.get_parameter(n).any() for n in last)
    assert bool((net.get_parameter("0.bn1.weight") == 1).all())


@pytest.mark.live("timm")
def test_timm_vit_and_convnext_match_their_init() -> None:
    from timm.models.convnext import ConvNeXt
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=2,
                            num_classes=10)  # fmt: skip
    drawn = _timm_check(vit, "timm_vit")
    assert "blocks.0.attn.qkv.weight" in drawn and "patch_embed.proj.weight" in drawn
    convnext = ConvNeXt(depths=(1, 1, 1, 1), dims=(16, 32, 32, 32), num_classes=10)
    drawn = _timm_check(convnext, "timm_convnext")
    assert "stages.1.blocks.0.conv_dw.weight" in drawn and "head.fc.weight" in drawn


# --- Lua Torch, JAX -----------------------------------------------------------------------------


def test_lua_torch_embedding_draws_every_row() -> None:
    """LookupTable:reset draws N(0, 1) on every row: no padding row to zero (torch zeroes it)."""
    emb = nn.Embedding(3, 8192, padding_idx=1)
    _apply(emb, "lua_torch")
    normal = np.random.default_rng(0).standard_normal(8192)
    assert_same_law(normal, _np(emb.weight[1]))
    _apply(emb, "torch")
    assert not emb.weight[1].any()


def test_jax_is_not_a_convention(capsys, tmp_path) -> None:
    with pytest.raises(InitsuiteError, match=r"JAX has no layers.*jax:.*'flax'"):
        initsuite.apply(nn.Linear(2, 2), "jax")
    code, _, err = run_cli(["conventions", "--diff", "torch", "jax"], capsys)
    assert code == 2 and "JAX has no layers" in err and len(err.strip().splitlines()) == 1
    # the probe's schemes say the same (its list takes conventions and schemes alike)
    out = str(tmp_path / "p")
    code, _, err = run_cli(["probe", "torch.nn:Identity", "--input-shape", "2,3", "--schemes",
                            "kaiming_normal,jax", "--out", out], capsys)  # fmt: skip
    assert code == 2 and "JAX has no layers" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p").exists()


def test_residual_projections_without_a_config_count_themselves() -> None:
    """A GPT-2-style torch model of one's own (nanoGPT's names, no config): N is the number
    of ``c_proj`` weights; every other Linear keeps N(0, 0.02²)."""

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c_attn, self.c_proj = nn.Linear(64, 192), nn.Linear(64, 64)
            self.mlp = nn.Sequential()
            self.mlp.c_fc, self.mlp.c_proj = nn.Linear(64, 256), nn.Linear(256, 64)

    net = nn.Sequential(*[Block() for _ in range(4)])
    _apply(net, "hf_gpt2")
    for name, p in net.named_parameters():
        if name.endswith("weight"):
            want = 0.02 / np.sqrt(8) if name.endswith("c_proj.weight") else 0.02
            assert float(p.detach().std()) == pytest.approx(want, rel=0.1), name
    _apply(net, "hf_bert")  # BERT has no residual rule
    assert float(net[0].c_proj.weight.detach().std()) == pytest.approx(0.02, rel=0.1)


def test_residual_projections_of_known_blocks_are_found_by_their_roles() -> None:
    """In known residual blocks the residual projections are the branches' outputs
    (initsuite.engine.roles.residual_projections), whatever their names: torch's encoder
    layers have no ``c_proj``, yet hf_gpt2 draws their ``out_proj`` and ``linear2`` at
    0.02/√N, N = 2 per layer, as the gpt2 scheme does; ``linear1`` keeps 0.02."""
    torch.manual_seed(0)
    net = nn.Sequential(*[nn.TransformerEncoderLayer(64, 2, 256, batch_first=True)
                          for _ in range(2)])  # fmt: skip
    _apply(net, "hf_gpt2")
    for name, p in net.named_parameters():
        if name.endswith(("out_proj.weight", "linear2.weight")):
            want = 0.02 / 2  # N = 4
        elif name.endswith("linear1.weight"):
            want = 0.02
        else:
            continue
        assert float(p.detach().std()) == pytest.approx(want, rel=0.05), name


# --- the table, diff, errors, CLI --------------------------------------------------------------


def test_table_covers_every_convention_layer_and_parameter() -> None:
    t = initsuite.conventions()
    n = sum(len(v) for v in conv.PARAMETERS.values())
    assert len(t) == n * len(conv.names())
    assert set(t["checked"][t["convention"].isin(["lua_torch", "flux"])]) == {"not checked live"}
    assert set(t["checked"][t["convention"].str.startswith("timm_")]) == {checked("timm")}
    row = t[(t.convention == "torch") & (t.layer == "linear") & (t.parameter == "weight")]
    assert row["variance_fan_in"].item() == pytest.approx(1 / 3)
    mha = t[(t.convention == "torch") & (t.parameter == "in_proj_weight")]
    assert mha["variance_fan_in"].item() == pytest.approx(0.5)  # xavier on the stacked (3E, E)


def test_diff_torch_flax() -> None:
    d = table.diff("torch", "flax")
    assert ("linear", "bias") in set(zip(d.layer, d.parameter, strict=True))
    assert ("layer_norm", "scale") not in set(zip(d.layer, d.parameter, strict=True))


@pytest.mark.parametrize("call", [lambda: initsuite.conventions("flx"),
                                  lambda: initsuite.conventions(layer="lineer"),
                                  lambda: table.diff("torch", "torch")])  # fmt: skip
def test_bad_input_is_one_line(call) -> None:
    with pytest.raises(InitsuiteError) as exc:
        call()
    assert "\n" not in str(exc.value)


def test_uncovered_parameters_are_left_and_listed() -> None:
    net = nn.Sequential(nn.Linear(4, 4), nn.PReLU())
    before = net[1].weight.detach().clone()
    with pytest.warns(UserWarning, match="PReLU"):
        drawn = initsuite.apply(net, "flax")
    assert drawn == ["0.weight", "0.bias"]
    assert list(drawn.untouched) == ["1.weight"]
    assert torch.equal(net[1].weight, before)
    with pytest.raises(InitsuiteError, match="inputs"):
        initsuite.apply(net, "flax", inputs=torch.ones(1, 4))


def test_cli_conventions(capsys) -> None:
    code, out, _ = run_cli(["conventions", "--diff", "torch", "flax"], capsys)
    assert code == 0 and "fan_uniform" in out
    code, out, _ = run_cli(["conventions", "keras", "--layer", "embedding", "--markdown"], capsys)
    assert code == 0 and out.startswith("## ") and "uniform:a=-0.05,b=0.05" in out
    code, _, err = run_cli(["conventions", "flx"], capsys)
    assert code == 2 and "did you mean 'flux'" in err and len(err.strip().splitlines()) == 1

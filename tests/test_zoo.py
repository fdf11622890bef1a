"""The zoo study (issue 16): real architectures as their library builds them and re-drawn by
schemes, forward and backward, in one probe table; the residual blocks of Hugging Face's
ResNet, ConvNeXt and ViT; list values in model sources; ``initsuite reproduce zoo``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from initsuite import probe
from initsuite.core.errors import InitsuiteError
from initsuite.core.spec import split_items
from initsuite.engine.roles import residual_roles
from initsuite.report.probe_verdict import TABLE_TITLE
from initsuite.results.probe import ProbeResult
from initsuite.studies import sources, zoo
from initsuite.studies.zoo import ZooModel, split_models, zoo_study
from tests.helpers import run_cli

transformers = pytest.importorskip("transformers")

GPT2 = "hf:gpt2,n_embd=32,n_head=2,vocab_size=100,n_positions=16"
VIT = ("hf:vit,hidden_size=32,num_hidden_layers=2,num_attention_heads=2,intermediate_size=64,"
       "image_size=16,patch_size=8")  # fmt: skip
TINY = [ZooModel(GPT2, vary=(("n_layer", (1, 3)),), input_shape=(2, 8), stands_for="GPT-2"),
        ZooModel(VIT, input_shape=(2, 3, 16, 16), stands_for="ViT")]  # fmt: skip


@pytest.fixture(scope="module")
def tiny() -> ProbeResult:
    return zoo_study(TINY, schemes=("normal:std=0.02",), seed=1, progress=False)


def _std(t: torch.Tensor) -> float:
    return float(t.detach().double().std())


# --- the study -------------------------------------------------------------------------------


def test_every_model_as_built_and_under_each_scheme_forward_and_backward(
    tiny: ProbeResult,
) -> None:
    """The common schemes after ``as_built``, then ``gpt2`` for a text model and ``lsuv`` for
    an image model; every pass has its gradient; known blocks recorded for each."""
    summary = tiny.summary()
    g1, g3 = f"{GPT2},n_layer=1", f"{GPT2},n_layer=3"
    assert list(zip(summary["model"], summary["scheme"], strict=True)) == [
        (g1, "as_built"), (g1, "normal:std=0.02"), (g1, "gpt2"),
        (g3, "as_built"), (g3, "normal:std=0.02"), (g3, "gpt2"),
        (VIT, "as_built"), (VIT, "normal:std=0.02"), (VIT, "lsuv"),
    ]  # fmt: skip
    assert np.isfinite(summary["first_grad_std"].astype(float)).all()
    blocks = tiny.blocks.groupby(["model", "scheme"], sort=False)["type"].agg(list)
    assert blocks[(g3, "gpt2")] == ["GPT2Block"] * 3 and blocks[(VIT, "lsuv")] == ["ViTLayer"] * 2
    meta = tiny.meta
    assert meta["kind"] == "probe" and meta["study"] == "zoo"
    assert [m["model"] for m in meta["models"]] == [g1, g3, VIT]
    assert [m["stands_for"] for m in meta["config"]["models"]] == ["GPT-2", "ViT"]


def test_the_text_models_scheme_scales_residual_projections_by_depth(tiny: ProbeResult) -> None:
    """``gpt2`` on the zoo's GPT-2: the residual projections (c_proj) at 0.02/√(2L), the
    other Linear layers at 0.02, read from the recorded weight norms (‖W‖ / √numel)."""
    calls = tiny.calls[(tiny.calls["scheme"] == "gpt2")].drop_duplicates(["model", "module"])
    for layers in (1, 3):
        d = calls[calls["model"] == f"{GPT2},n_layer={layers}"]
        rms = d["weight_norm"].astype(float) / 32  # every (32, 32·k) layer: /√(32·32·k)
        proj = d["module"].str.endswith("attn.c_proj")
        np.testing.assert_allclose(rms[proj], 0.02 / np.sqrt(2 * layers), rtol=0.06)
        fc = d["module"].str.endswith("mlp.c_fc")
        np.testing.assert_allclose(rms[fc] / 2, 0.02, rtol=0.06)  # (32, 128): √4 = 2


def test_the_image_models_lsuv_puts_each_layer_at_unit_std(tiny: ProbeResult) -> None:
    calls = tiny.calls[(tiny.calls["scheme"] == "lsuv") & (tiny.calls["type"] == "Linear")]
    first = calls.drop_duplicates("module")
    assert len(first) >= 8  # 2 layers × (q, k, v, o, fc1, fc2)
    np.testing.assert_allclose(first["std"].astype(float), 1.0, atol=0.06)


def test_same_seed_same_numbers_and_a_round_trip(tiny: ProbeResult, tmp_path: Path) -> None:
    again = zoo_study(TINY, schemes=("normal:std=0.02",), seed=1, progress=False)
    pd.testing.assert_frame_equal(again.calls, tiny.calls)
    pd.testing.assert_frame_equal(again.blocks, tiny.blocks)
    path = tiny.save(tmp_path / "zoo")
    back = ProbeResult.load(path)
    pd.testing.assert_frame_equal(back.calls, tiny.calls, check_exact=True)


def test_the_report_of_the_zoo(
    tiny: ProbeResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``initsuite report`` on the zoo's directory: the verdict first (a sentence per model,
    named by what it stands for, a blank cell where a scheme was not run on a model), the
    models with what they stand for, the scaling with depth, stream and gradient by block,
    and the verdict's table per model × scheme (``—`` where a scheme was not run)."""
    path = tiny.save(tmp_path / "zoo")
    code, _, err = run_cli(["report", str(path)], capsys)
    assert code == 0, err
    text = (path / "report.md").read_text()
    assert text.startswith("# initsuite probe: the zoo study")
    for needle in ("| stands for", "| ViT ", "## Scaling with the varied key",
                   "## The residual stream, model by model",
                   f"<!-- fold: {TABLE_TITLE} -->"):  # fmt: skip
        assert needle in text, needle
    opening = text.split("## Verdict\n", 1)[1].split("\n## ", 1)[0]
    sentences = [line for line in opening.splitlines() if line.startswith("- ")]
    assert [s.split(":")[0] for s in sentences] == ["- GPT-2, n_layer=1", "- GPT-2, n_layer=3",
                                                    "- ViT"]  # fmt: skip
    assert "gpt2" not in sentences[2] and "lsuv" in sentences[2]
    verdict = text.split(f"<!-- fold: {TABLE_TITLE}")[1].split("\n\n")[1].splitlines()
    vit_row = next(r for r in verdict if r.startswith(f"| {VIT}"))
    assert vit_row.count("| —") == 1 and vit_row.count("| ok") == 3  # no gpt2 for the ViT
    for name in ("verdict.png", "probe_scaling.png", "probe_blocks_std.png",
                 "probe_blocks_grad.png"):  # fmt: skip
        assert (path / "figures" / name).stat().st_size > 0


# --- bad input: refused before any compute ---------------------------------------------------


# --- the real builds, their stand-ins, a vision depth sweep ------------------------------------


def test_the_default_zoo_probes_the_real_builds() -> None:
    """timm's and torchvision's own builds (installed here, so none is swapped), each with a
    Hugging Face stand-in; ViT-S swept over timm's ``depth``; GPT-2 and BERT kept."""
    vision = [m for m in zoo.MODELS if m.stand_in is not None]
    assert [m.spec.partition(",")[0] for m in vision] == [
        "timm:resnet50", "torchvision:resnet18", "timm:convnext_tiny",
        "timm:vit_small_patch16_224"]  # fmt: skip
    assert all(m.available() == (m, None) for m in zoo.MODELS)
    assert all(m.stand_in is not None and m.stand_in.spec.startswith("hf:") for m in vision)
    assert vision[-1].vary == (("depth", (6, 12, 24)),)
    text = [m.spec.partition(",")[0] for m in zoo.MODELS if m.stand_in is None]
    assert text == ["hf:gpt2", "hf:bert"]


TIMM_VIT = "timm:vit_small_patch16_224,embed_dim=32,num_heads=2,img_size=16,patch_size=8"


@pytest.fixture(scope="module")
def vision() -> ProbeResult:
    """A timm ViT over depth, and torchvision's ResNet-18 with torchvision hidden: probed
    through its stand-in (the tiny Hugging Face ViT)."""
    stand_in = ZooModel(VIT, schemes=(), input_shape=(2, 3, 16, 16), stands_for="ViT (HF)")
    models = [ZooModel(TIMM_VIT, vary=(("depth", (2, 4)),), schemes=(), input_shape=(2, 3, 16, 16),
                       stands_for="timm ViT over depth"),
              ZooModel("torchvision:resnet18", schemes=(), stand_in=stand_in)]  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        for name in ("torchvision", "torchvision.models"):
            mp.setitem(sys.modules, name, None)  # import torchvision raises ImportError
        return zoo_study(models, schemes=("normal:std=0.02",), seed=1, progress=False)


def test_a_missing_library_probes_the_stand_in_and_says_so(vision: ProbeResult) -> None:
    (swap,) = vision.meta["stand_ins"]
    assert swap["model"] == "torchvision:resnet18" and swap["stand_in"] == VIT
    assert "needs torchvision" in swap["reason"] and "pip install" in swap["reason"]
    assert [m["model"] for m in vision.meta["models"]] == [f"{TIMM_VIT},depth=2",
                                                           f"{TIMM_VIT},depth=4", VIT]  # fmt: skip
    assert vision.meta["config"]["models"][1]["spec"] == VIT


def test_a_timm_depth_sweep_through_the_report(vision: ProbeResult, tmp_path: Path) -> None:
    """``depth`` reaches timm's builder (2 and 4 blocks found by the probe), and the report
    draws stream and gradient against it, as for GPT-2, and names the stand-in."""
    from initsuite.report.probe_report import write_probe_report

    per = vision.blocks.groupby("model")["type"].agg(list)
    assert per[f"{TIMM_VIT},depth=2"] == ["Block"] * 4  # 2 blocks × 2 schemes
    assert per[f"{TIMM_VIT},depth=4"] == ["Block"] * 8
    path = vision.save(tmp_path / "zoo")
    text = write_probe_report(path).read_text()
    models = text.split("## Models\n", 1)[1].split("\n## ", 1)[0]
    assert f"- `{VIT}` in place of `torchvision:resnet18`: " in models
    scaling = text.split("## Scaling with the varied key", 1)[1].split("\n## ", 1)[0]
    assert "|   depth |" in scaling
    assert (path / "figures" / "probe_scaling.png").stat().st_size > 0


def _no_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: Any, **_k: Any) -> None:
        raise AssertionError("a probe ran before every model was checked")

    monkeypatch.setattr(zoo, "run_probe", refuse)


@pytest.mark.parametrize(
    ("models", "schemes", "needle"),
    [
        ([GPT2, "hf:gtp2"], ("normal",), "did you mean 'gpt2'"),
        ([GPT2, f"{GPT2},n_layers=2"], ("normal",), "did you mean 'n_layer'"),
        ([GPT2, GPT2], ("normal",), "is named twice"),
        ([GPT2], ("kaiming_nromal",), "kaiming_normal"),
        (["resnet50"], ("normal",), "is not a model source"),
        ([], ("normal",), "at least one model"),
        ("hf:gpt2", ("normal",), "write ['hf:gpt2']"),
        ([GPT2], "normal", "write ['normal']"),
    ],
)
def test_bad_input_is_one_line_before_any_probe(
    models: Any, schemes: Any, needle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_run(monkeypatch)
    with pytest.raises(InitsuiteError) as info:
        zoo_study(models, schemes=schemes, progress=False)
    message = str(info.value)
    assert needle in message and "\n" not in message


def test_model_lists_split_at_library_names() -> None:
    assert split_models("timm:resnet50, hf:gpt2,n_layer=6,n_embd=64,hf:resnet,depths=[1,2]") == [
        "timm:resnet50", "hf:gpt2,n_layer=6,n_embd=64", "hf:resnet,depths=[1,2]",
    ]  # fmt: skip
    for bad, needle in (("n_layer=6,hf:gpt2", "first item"), (" , ", "names no model"),
                        ("hf:gpt2,wide", "neither a model")):  # fmt: skip
        with pytest.raises(InitsuiteError, match=needle):
            split_models(bad)


# --- list values in a source -----------------------------------------------------------------


def test_a_list_override_builds_resnet18_and_round_trips_its_spec() -> None:
    spec = ("hf:resnet,layer_type=basic,depths=[2,2,2,2],hidden_sizes=[64,128,256,512],"
            "embedding_size=64")  # fmt: skip
    src = sources.parse(spec)
    assert src.spec == spec and sources.parse(src.spec).overrides == src.overrides
    assert dict(src.overrides)["depths"] == (2, 2, 2, 2)  # the config's own type
    # torchvision's resnet18 without its 1000-way head: 11,689,512 - 512·1000 - 1000
    assert src.parameters == 11_689_512 - 513_000
    assert split_items("a,b=[1,[2,3]],c") == ["a", "b=[1,[2,3]]", "c"]
    for bad, needle in (("hf:resnet,depths=[2,2", "unbalanced"),
                        ("hf:resnet,depths=2]", "unbalanced"),
                        ("hf:resnet,depths=[2,x]", "depths's item must be an int"),
                        ("hf:resnet,layer_type=[1]", "layer_type must be a str")):  # fmt: skip
        with pytest.raises(InitsuiteError, match=needle):
            sources.parse(bad)


# --- the residual blocks of vision models ----------------------------------------------------


def _vision(make: Any, config: Any) -> torch.nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return make(config).eval()


IMAGES = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    ("make", "config", "modules", "outputs"),
    [
        # ResNet's basic blocks: the first of stage 1 changes the shape (no row); each
        # stage's last block gives the stage's hidden state
        ("ResNetModel", {"layer_type": "basic", "depths": [2, 2], "hidden_sizes": [8, 16],
                         "embedding_size": 8},
         ["encoder.stages.0.layers.0", "encoder.stages.0.layers.1",
          "encoder.stages.1.layers.1"], {1: 1, 2: 2}),
        ("ConvNextModel", {"depths": [2, 2], "hidden_sizes": [8, 16], "num_stages": 2,
                           "layer_scale_init_value": 1.0},
         ["encoder.stages.0.layers.0", "encoder.stages.0.layers.1",
          "encoder.stages.1.layers.0", "encoder.stages.1.layers.1"], {1: 1, 3: 2}),
        ("ViTModel", {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
                      "intermediate_size": 32, "image_size": 16, "patch_size": 8},
         ["layers.0", "layers.1"], {0: 1, 1: 2}),
    ],
)  # fmt: skip
def test_vision_blocks_match_the_hidden_states_hugging_face_returns(
    make: str, config: dict[str, Any], modules: list[str], outputs: dict[int, int]
) -> None:
    """The stream after a block is the hidden state the model returns for it (``outputs``:
    block row → hidden state)."""
    kind = make.removesuffix("Model")
    model = _vision(getattr(transformers, make), getattr(transformers, f"{kind}Config")(**config))
    blocks = probe(model, IMAGES).blocks
    assert list(blocks["module"]) == modules
    hidden = model(pixel_values=IMAGES, output_hidden_states=True).hidden_states
    for row, state in outputs.items():
        assert blocks["stream_std"].iloc[row] == pytest.approx(_std(hidden[state]), rel=1e-9)


def test_vision_residual_projections_get_their_roles() -> None:
    """The last layer of each known branch is its residual projection, and a residual scheme
    (``fixup``) zeroes it: ResNet's last conv, ConvNeXt's pwconv2, ViT's o_proj and fc2."""
    cases = (
        ("ResNetModel", {"layer_type": "bottleneck", "depths": [2], "hidden_sizes": [16],
                         "embedding_size": 8}, "layer.2.convolution.weight", 2),
        ("ConvNextModel", {"depths": [3], "hidden_sizes": [8], "num_stages": 1},
         "pwconv2.weight", 3),
        ("ViTModel", {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
                      "intermediate_size": 32, "image_size": 16, "patch_size": 8},
         ("attention.o_proj.weight", "mlp.fc2.weight"), 4),
    )  # fmt: skip
    for make, config, suffix, count in cases:
        kind = make.removesuffix("Model")
        model = _vision(getattr(transformers, make),
                        getattr(transformers, f"{kind}Config")(**config))  # fmt: skip
        outs = [k for k, c in residual_roles(model).items() if c.role == "branch_out"]
        assert len(outs) == count and all(k.endswith(suffix) for k in outs), (make, outs)
        from initsuite import apply

        apply(model, "fixup")
        weights = dict(model.named_parameters())
        assert all(bool((weights[k] == 0).all()) for k in outs), make


# --- the command -----------------------------------------------------------------------------


def test_reproduce_zoo_writes_a_probe_directory_the_report_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "zoo"
    args = ["reproduce", "zoo", "--models", f"{GPT2},n_layer=2", "--schemes", "normal:std=0.02"]
    code, stdout, err = run_cli([*args, "--out", str(out)], capsys)
    assert code == 0, err
    assert "module calls of 1 model to" in stdout
    result = ProbeResult.load(out)
    assert result.meta["study"] == "zoo" and result.meta["command"].startswith(
        "initsuite reproduce zoo"
    )
    assert list(result.summary()["scheme"]) == ["as_built", "normal:std=0.02", "gpt2"]
    assert run_cli(["report", str(out)], capsys)[0] == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["reproduce", "zoo", "--seeds", "2"], "--seeds does not apply to 'reproduce zoo'"),
        (["reproduce", "tutorial", "--models", "hf:gpt2"], "--models belongs to 'reproduce zoo'"),
        (["reproduce", "isometry", "--schemes", "normal"], "--schemes belongs to 'reproduce zoo'"),
        (["reproduce", "zoo", "--models", "hf:gtp2"], "did you mean 'gpt2'"),
        (["reproduce", "zoo", "--models", "gpt2"], "neither a model"),
        # issue 29: the nearest names, the keys a builder takes, the size guard on meta
        (["reproduce", "zoo", "--models", "timm:resnet5O"],
         "did you mean 'resnet50'? (nearest: resnet51q, "),
        (["reproduce", "zoo", "--models", "torchvision:resnet19"],
         "did you mean 'resnet18'? (nearest: resnet152, "),
        (["reproduce", "zoo", "--models", "hf:gpt3"], "(nearest: gpt2, "),
        (["reproduce", "zoo", "--models", "timm:vit_small_patch16_224,dpth=3"],
         "VisionTransformer takes no key 'dpth'; did you mean 'depth'? (its keys: img_size, "),
        (["reproduce", "zoo", "--models", "torchvision:resnet18,foo=1"],
         "ResNet takes no key 'foo' (its keys: block, layers, num_classes, "),
        (["reproduce", "zoo", "--models", "timm:resnet50", "--max-parameters", "1e6"],
         "timm:resnet50 has 2.56e+07 parameters (0.102 GB in float32), more than the limit"),
        (["reproduce", "zoo", "--models", "torchvision:resnet18", "--max-parameters", "1e6"],
         "(e.g. a smaller builder: torchvision:mobilenet_v3_small)"),
        # issue 27: the size limit's message named --max-parameters, which reproduce lacked
        (["reproduce", "zoo", "--models", "hf:gpt2,n_layer=2,n_embd=32,n_head=2",
          "--max-parameters", "1e3"], "more than the limit 1e+03: make it smaller with "
         "overrides (e.g. hf:llama,num_hidden_layers=4,hidden_size=256,intermediate_size=688) "
         "or raise the limit (--max-parameters)"),
        (["reproduce", "tutorial", "--max-parameters", "1e3"],
         "--max-parameters belongs to 'reproduce zoo'"),
    ],
)  # fmt: skip
def test_reproduce_zoo_bad_input_exits_2_in_one_line_writing_nothing(
    args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "zoo"
    code, _, err = run_cli([*args, "--out", str(out)], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and needle in lines[0], err
    assert not out.exists()


def test_report_of_a_probe_refuses_what_belongs_to_a_sweep(
    tiny: ProbeResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tiny.save(tmp_path / "zoo")
    for extra, needle in ((["--tutorial", str(path)], "goes with a sweep's report"),
                          (["--partial"], "--partial is for an unfinished sweep")):  # fmt: skip
        code, _, err = run_cli(["report", str(path), *extra], capsys)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not (path / "report.md").exists()


def test_a_sweep_of_strings_or_lists_is_reported_in_the_order_swept(tmp_path: Path) -> None:
    """--vary over a string (an activation) or a list value (ResNet's depths) draws the
    scaling figure on evenly spaced, labelled positions instead of failing on a log axis."""
    from initsuite.report.probe_figures import _value_axis
    from initsuite.report.probe_report import write_probe_report
    from initsuite.studies.probe_factory import probe_factory

    assert _value_axis([[2, 2], [1, 1], [2, 2]]) == ([0.0, 1.0, 0.0], [0.0, 1.0],
                                                     ["[2,2]", "[1,1]"], False)  # fmt: skip
    assert _value_axis([12, 3, 6]) == ([12.0, 3.0, 6.0], [3.0, 6.0, 12.0], ["3", "6", "12"], True)
    assert sources.parse_vary(["depths=[1,1],[2,2]"]) == (("depths", ([1, 1], [2, 2])),)
    for vary in ({"activation_function": ["gelu_new", "relu"]}, {"n_layer": [1, 2]}):
        result = probe_factory(f"{GPT2},n_layer=1" if "n_layer" not in vary else GPT2,
                               (2, 8), schemes=("gpt2",), vary=vary, progress=False)  # fmt: skip
        path = result.save(tmp_path / next(iter(vary)))
        text = write_probe_report(path).read_text()
        assert "## Scaling with the varied key" in text
        assert (path / "figures" / "probe_scaling.png").stat().st_size > 0

"""Real models by name (issue 16): ``hf:``/``timm:``/``torchvision:`` sources with overrides,
their inferred inputs, the size guard, the as-built baseline, conventions in a probe, and the
one-line errors. transformers is installed here (the ``conventions`` extra); timm and
torchvision are not (PyPI's torchvision is a CUDA build), so their tests skip with the reason
and their error paths are checked with the libraries hidden."""

from __future__ import annotations

import builtins
import math
import sys
from pathlib import Path

import pytest
import torch

from initsuite.core.errors import InitsuiteError
from initsuite.studies import sources
from initsuite.studies.probe_factory import ProbeConfig, probe_factory
from tests.helpers import run_cli

transformers = pytest.importorskip("transformers")

TINY_GPT2 = "hf:gpt2,n_layer=2,n_embd=32,n_head=2,vocab_size=100,n_positions=64"


def test_hf_source_builds_the_config_with_its_overrides() -> None:
    src = sources.parse(TINY_GPT2)
    assert src.spec == TINY_GPT2 and src.library == "hf" and src.name == "gpt2"
    assert src.tokens == 100 and src.input_shape(3) == (3, 64)  # 128 tokens capped at 64
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = src.build()
    assert type(model).__name__ == "GPT2Model" and len(model.h) == 2
    assert model.config.n_embd == 32
    assert src.parameters == sum(p.numel() for p in model.parameters())
    # the library's own init: GPT-2's residual projections at 0.02/√(2·n_layer)
    assert float(model.h[0].attn.c_proj.weight.detach().std()) == pytest.approx(0.01, rel=0.15)
    assert float(model.h[0].attn.c_attn.weight.detach().std()) == pytest.approx(0.02, rel=0.1)


def test_hf_vision_and_default_text_inputs() -> None:
    vit = sources.parse("hf:vit,num_hidden_layers=1,hidden_size=32,num_attention_heads=2,"
                        "intermediate_size=64,image_size=32,patch_size=8")  # fmt: skip
    assert vit.tokens is None and vit.input_shape(2) == (2, 3, 32, 32)
    bert = sources.parse("hf:bert")  # counted on the meta device: nothing is allocated
    assert bert.tokens == 30522 and bert.sample_shape == (128,)
    assert bert.parameters == 109_482_240


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("hf:gpt3", "unknown model 'gpt3' in 'hf:gpt3'; did you mean"),
        ("hf:gpt2,n_layers=4", "GPT2Config has no key 'n_layers'; did you mean 'n_layer'? "
         "(its keys: activation_function,"),
        ("hf:gpt2,n_layer=4.5", "n_layer must be an int (its default is 12), got 4.5"),
        ("hf:gpt2,n_layer", "override 'n_layer' is not KEY=VALUE"),
        ("hf:gpt2,n_layer=2,n_layer=3", "override 'n_layer' is given twice"),
        ("hf:", "names no model: write hf:NAME, e.g. hf:gpt2"),
        ("hf:llama", "hf:llama has 6.61e+09 parameters (26.4 GB in float32), more than the "
         "limit 5e+08: make it smaller with overrides (e.g. hf:llama,num_hidden_layers=4"),
        ("hf:gpt2,n_embd=64", "the constructor refused it: ValueError"),
    ],
)  # fmt: skip
def test_bad_sources_are_one_line(spec: str, needle: str) -> None:
    with pytest.raises(InitsuiteError, match=None) as exc:
        sources.parse(spec)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_a_missing_library_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = builtins.__import__

    def hidden(name: str, *args: object, **kwargs: object) -> object:
        if name.split(".")[0] in ("timm", "torchvision"):
            raise ModuleNotFoundError(f"No module named {name.split('.')[0]!r}")
        return real(name, *args, **kwargs)

    for mod in [m for m in sys.modules if m.split(".")[0] in ("timm", "torchvision")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(builtins, "__import__", hidden)
    for spec, lib in (("timm:resnet50", "timm"), ("torchvision:resnet18", "torchvision")):
        with pytest.raises(InitsuiteError, match=rf"^{spec} needs {lib} .*pip install "
                           r"'initsuite\[zoo\]'"):  # fmt: skip
            sources.parse(spec)


def test_unknown_library_lists_the_valid_ones() -> None:
    assert not sources.is_source("mymodels:resnet") and sources.is_source(" hf:gpt2")
    with pytest.raises(InitsuiteError, match="unknown model library 'tim'; did you mean 'timm'"):
        sources.parse("tim:resnet50")


def test_timm_source_live() -> None:
    timm = pytest.importorskip("timm", reason="timm is not installed (initsuite[zoo])")
    src = sources.parse("timm:vit_small_patch16_224,depth=2")
    assert src.sample_shape == (3, 224, 224) and src.version == timm.__version__
    assert len(src.build().blocks) == 2
    with pytest.raises(InitsuiteError, match="did you mean 'resnet50'"):
        sources.parse("timm:resnet5O")


def test_torchvision_source_live() -> None:
    pytest.importorskip("torchvision", reason="torchvision is not installed (initsuite[zoo])")
    src = sources.parse("torchvision:resnet18,num_classes=10")
    assert src.sample_shape == (3, 224, 224)
    assert src.build().fc.out_features == 10


# --- probing a source ---------------------------------------------------------------------------


def test_probe_a_source_as_built_against_schemes_and_a_convention() -> None:
    result = probe_factory(TINY_GPT2, schemes=["default", "normal:std=0.02", "flax"],
                           backward=True, batch=2)  # fmt: skip
    calls = result.calls
    assert list(dict.fromkeys(calls["scheme"])) == ["as_built", "normal:std=0.02", "flax"]
    assert result.meta["config"]["input_shape"] == [2, 64]
    assert result.meta["config"]["tokens"] == 100
    assert result.meta["model"]["source"]["spec"] == TINY_GPT2
    assert result.meta["model"]["source"]["version"] == transformers.__version__
    assert not calls.loc[calls["scheme"] == "as_built", "reinitialised"].any()
    # flax draws every Conv1D from LeCun normal and the LayerNorms too (ones and zeros)
    flax = calls[calls["scheme"] == "flax"]
    assert flax.loc[flax["type"].isin(["Conv1D", "LayerNorm"]), "reinitialised"].all()
    assert calls["std"].dropna().map(math.isfinite).all()
    # every scheme's residual blocks are kept (two GPT-2 blocks each)
    assert result.blocks.groupby("scheme", observed=True).size().to_dict() == {
        "as_built": 2, "normal:std=0.02": 2, "flax": 2}  # fmt: skip


def test_source_input_shape_and_tokens_can_be_overridden() -> None:
    cfg = ProbeConfig(TINY_GPT2, input_shape=(1, 16), tokens=10)
    assert cfg.input_shape == (1, 16) and cfg.tokens == 10
    with pytest.raises(InitsuiteError, match="input_shape is needed for factory"):
        ProbeConfig("torch.nn:Linear")


def test_cli_probe_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p"
    code, stdout, err = run_cli(["probe", TINY_GPT2, "--schemes", "as_built,gpt2", "--batch",
                                 "1", "--out", str(out), "--no-report"], capsys)  # fmt: skip
    assert code == 0, err
    assert "wrote" in stdout and (out / "probe.parquet").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["hf:gpt2,n_layers=4"], "GPT2Config has no key 'n_layers'; did you mean 'n_layer'?"),
        (["hf:llama"], "more than the limit 5e+08"),
        (["hf:llama", "--max-parameters", "1e3"], "more than the limit 1e+03"),
        (["hf:gpt2", "--max-parameters", "1.5"], "expected a whole number of parameters"),
        (["mymodels:net"], "cannot import module 'mymodels'"),
    ],
)  # fmt: skip
def test_cli_bad_sources_are_one_line_exit_2(
    args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p"
    code, _, err = run_cli(["probe", *args, "--out", str(out), "--no-report"], capsys)
    assert code == 2 and needle in err and err.count("\n") == 1, err
    assert not out.exists()

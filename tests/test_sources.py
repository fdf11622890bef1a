"""Real models by name (issue 16): ``hf:``/``timm:``/``torchvision:`` sources with overrides,
their inferred inputs, the size guard, the as-built baseline, conventions in a probe, and the
one-line errors. transformers, timm and torchvision are in the locked environment (the
``zoo`` extra), so their tests never skip; a missing library is checked with it hidden."""

from __future__ import annotations

import builtins
import math
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import timm
import torch

from initsuite.core.errors import InitsuiteError
from initsuite.studies import source_checks, sources
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
    src = sources.parse("timm:vit_small_patch16_224,depth=2")
    assert src.sample_shape == (3, 224, 224) and src.version == timm.__version__
    assert len(src.build().blocks) == 2
    with pytest.raises(InitsuiteError, match="did you mean 'resnet50'"):
        sources.parse("timm:resnet5O")


def test_torchvision_source_live() -> None:
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


# --- issue 27: values checked by what their key names; sizes counted before a long build -------


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("hf:gpt2,n_layer=-1", "'hf:gpt2,n_layer=-1': n_layer must be a whole number >= 0, got -1"),
        (f"{TINY_GPT2},attn_pdrop=nan", "attn_pdrop must be a finite number, got nan"),
        (f"{TINY_GPT2},resid_pdrop=1.5", "resid_pdrop must be a probability in [0, 1], got 1.5"),
        ("hf:gpt2,n_embd=0", "n_embd must be a whole number >= 1, got 0"),
        (f"{TINY_GPT2},n_inner=-5", "n_inner must be a whole number >= 1, got -5"),
        (f"{TINY_GPT2},initializer_range=-1", "initializer_range must be a number >= 0, got -1"),
        (f"{TINY_GPT2},layer_norm_epsilon=inf", "layer_norm_epsilon must be a finite number"),
        (f"{TINY_GPT2},activation_function=<b>x</b>", "activation_function: unknown "
         "transformers activation '<b>x</b>' (choose from gelu, gelu_10,"),
        (f"{TINY_GPT2},activation_function=gelu_nw", "did you mean 'gelu_new'?"),
    ],
)  # fmt: skip
def test_override_values_are_refused_by_what_their_key_names(spec: str, needle: str) -> None:
    """``n_layer=-1`` failed in the forward pass (blaming the input's shape), ``attn_pdrop=nan``
    in the attention (blaming dropout), an unknown activation name raised transformers'
    KeyError, ``initializer_range=-1`` its strict-field error: each is one line up front."""
    with pytest.raises(InitsuiteError) as info:
        sources.parse(spec)
    assert needle in str(info.value) and "\n" not in str(info.value), info.value


def test_values_a_library_means_are_accepted() -> None:
    """The kinds follow the library's default: a key whose default lies outside its kind's
    range means something else there (a window of 0, an index of -2)."""
    check = source_checks.check_value
    check("s", "num_classes", 0)  # timm: no head
    check("s", "depth", 0)
    check("s", "vision_feature_layer", -3, -2)  # an index from the end
    check("s", "max_relative_positions", -1, -1)  # DeBERTa: -1 is "as the positions"
    check("s", "window_size", 0, 0)
    check("s", "time_step_limit", [0.0, math.inf], (0.0, math.inf))
    check("s", "out_features", "stage4")  # text and flags are the library's to check
    check("s", "use_head", True)
    with pytest.raises(InitsuiteError, match="window_size must be a whole number >= 0, got -1"):
        check("s", "window_size", -1, 0)
    with pytest.raises(InitsuiteError, match=r"depths must be a whole number >= 0, got -2"):
        check("s", "depths", [2, -2], [2, 2])
    src = sources.parse(f"{TINY_GPT2},initializer_range=1,attn_pdrop=0")  # ints for floats
    assert src.build().config.initializer_range == 1.0


def test_a_constructor_raising_anything_is_one_line() -> None:
    def build() -> torch.nn.Module:
        return {"gelu": torch.nn.GELU()}["<b>x</b>"]  # a library's lookup: KeyError

    with pytest.raises(InitsuiteError, match=r"^'s': the constructor refused it: KeyError: "
                       r"'<b>x</b>'$"):  # fmt: skip
        source_checks.count(build, "s", None, "")


def _gpt2_parameters(layers: int, d: int = 32, vocab: int = 100, positions: int = 64) -> int:
    """GPT-2's count by hand: token and position embeddings, per block two LayerNorms (4d),
    attention (3d² + 3d, d² + d) and MLP (4d² + 4d, 4d² + d), the final LayerNorm (2d)."""
    return vocab * d + positions * d + layers * (12 * d * d + 13 * d) + 2 * d


@pytest.fixture
def modules_built() -> Iterator[list[int]]:
    """The modules registered while it is active (failing a build past 5000: the old code
    built every layer of a deep model, for minutes)."""
    from torch.nn.modules import module

    seen = [0]

    def watch(parent: object, name: str, sub: object) -> None:
        seen[0] += 1
        if seen[0] > 5000:
            raise RuntimeError("built 5000 modules: the model is being built whole")

    handle = module.register_module_module_registration_hook(watch)
    yield seen
    handle.remove()


def test_a_deep_model_is_refused_by_arithmetic_without_being_built(
    modules_built: list[int],
) -> None:
    """Issue 27, item 16: ``--vary n_layer=100000`` built the model on the meta device for
    minutes before the size check. Counted at 1, 2 and 16 layers, its size is refused at
    once, to the parameter: accepted at exactly the limit, refused one below."""
    deep = TINY_GPT2.replace("n_layer=2", "n_layer=100000")
    with pytest.raises(InitsuiteError) as info:
        sources.parse(deep)
    n = _gpt2_parameters(100000)
    assert str(info.value).startswith(f"{deep} has {n:.3g} parameters ({4 * n / 1e9:.3g} GB in "
                                      f"float32; {_gpt2_parameters(1):,} at one layer and "
                                      f"{_gpt2_parameters(2) - _gpt2_parameters(1):,} per "
                                      "further layer), more than the limit 5e+08")  # fmt: skip
    with pytest.raises(InitsuiteError, match=r"n_layer=100000,.* has 1\.27e\+09 parameters"):
        ProbeConfig(TINY_GPT2, vary=["n_layer=2,100000"])  # type: ignore[arg-type]
    with pytest.raises(InitsuiteError, match=r"has 1,300,006 modules \(19 at one layer and 13 "
                       r"per further layer\), more than the 100,000 a probe takes"):  # fmt: skip
        sources.parse(deep, max_parameters=None)
    assert modules_built[0] < 2000
    just = TINY_GPT2.replace("n_layer=2", "n_layer=65")  # the shallowest counted by arithmetic
    with pytest.raises(InitsuiteError, match=r"at one layer and .* per further layer"):
        sources.parse(just, max_parameters=_gpt2_parameters(65) - 1)
    assert modules_built[0] < 2000  # refused without building its 65 layers
    assert sources.parse(just, max_parameters=_gpt2_parameters(65)).parameters == (
        _gpt2_parameters(65))  # fmt: skip


def _stack(pattern: Callable[[int], int]) -> Callable[[int], Callable[[], torch.nn.Module]]:
    """A builder of ``d`` Linear layers of width ``pattern(i)`` (a model whose layers differ)."""
    return lambda d: lambda: torch.nn.Sequential(
        *(torch.nn.Linear(pattern(i), pattern(i)) for i in range(d)))  # fmt: skip


def test_layers_unlike_each_other_are_counted_whole_not_extrapolated() -> None:
    """Every fourth layer narrow: from 1 and 2 layers the count would be overestimated, and a
    model within the limit refused; the check at 16 layers sees the layers differ."""
    at = _stack(lambda i: 4 if i % 4 == 3 else 16)
    n = 75 * (16 * 16 + 16) + 25 * (4 * 4 + 4)
    assert source_checks.count(at(100), "s", n, "", (100, at))[0] == n
    with pytest.raises(InitsuiteError, match=re.escape(f"s has {n:.3g} parameters (")):
        source_checks.count(at(100), "s", n - 1, "", (100, at))


def test_the_build_stops_past_the_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model of too many modules, or far too many parameters, is not built to the end."""
    monkeypatch.setattr(source_checks, "MAX_MODULES", 50)
    with pytest.raises(InitsuiteError, match=r"^s counted on the meta device until stopped at "
                       r"51 modules, more than the 50 a probe takes"):  # fmt: skip
        source_checks.count(_stack(lambda i: 2)(1000), "s", None, "")
    wide = _stack(lambda i: 1000)(3)  # 1e6 parameters a layer, stopped at 100 × the limit
    with pytest.raises(InitsuiteError, match=r"^s counted on the meta device until stopped at "
                       r"1e\+06 parameters .* more than the limit 10"):  # fmt: skip
        source_checks.count(wide, "s", 10, "")


def test_cli_refuses_a_deep_vary_and_bad_values_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], modules_built: list[int]
) -> None:
    for args, needle in (
        (["--vary", "n_layer=100000"], "n_layer=100000,n_embd=32,n_head=2,vocab_size=100,"
         "n_positions=64 has 1.27e+09 parameters"),
        (["--vary", "activation_function=<b>x</b>"], "unknown transformers activation"),
        (["--vary", "attn_pdrop=nan"], "attn_pdrop must be a finite number, got nan"),
        (["--vary", "n_layer=-1"], "n_layer must be a whole number >= 0, got -1"),
    ):  # fmt: skip
        out = tmp_path / "p"
        code, _, err = run_cli(["probe", TINY_GPT2, *args, "--out", str(out), "--no-report"],
                               capsys)  # fmt: skip
        assert code == 2 and needle in err and err.count("\n") == 1, err
        assert not out.exists()

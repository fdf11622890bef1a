"""A scheme's metadata is a SchemeInfo declared beside its function; framework aliases are
rows (name, target law, defaults, source); the older keyword form of register still works."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import Tensor

from initsuite import schemes
from initsuite.core.errors import InitsuiteError
from initsuite.schemes import frameworks, registry, zoo
from initsuite.schemes.frameworks import Alias

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guides" / "schemes.md"


@pytest.fixture
def scratch() -> Iterator[None]:
    """Remove whatever a test registers (a snapshot that loads no plugin)."""
    before = set(registry._REGISTRY)
    yield
    for name in set(registry._REGISTRY) - before:
        del registry._REGISTRY[name]


def test_the_guide_s_example_registers_a_scheme(scratch: None) -> None:
    block = re.search(r"## Adding a scheme.*?```python\n(.*?)```", GUIDE.read_text(), re.S)
    assert block is not None
    exec(compile(block.group(1), str(GUIDE), "exec"), {})
    scheme = schemes.get("my_normal:scale=2")
    assert scheme.info.name == "my_normal" and scheme.info.example == "my_normal"
    assert scheme.variance((64, 16)) == pytest.approx(4 / 16)
    w = scheme(torch.empty(64, 16), generator=torch.Generator().manual_seed(0))
    assert w.std().item() == pytest.approx(0.5, rel=0.1)  # 1024 draws: std within ~3%
    with pytest.raises(InitsuiteError, match="scale must be >= 0"):
        schemes.get("my_normal:scale=-1").resolve()


def test_a_declaration_is_data_and_register_binds_it(scratch: None) -> None:
    law = schemes.SchemeInfo(family="constant", variance_formula="0", paper="-",
                             variance=lambda shape: 0.0)  # fmt: skip
    assert law.name == "" and law.params == {}

    def fives_law(tensor: Tensor, val: float = 5.0, *, generator: object = None) -> Tensor:
        return tensor.fill_(val)

    assert schemes.register(law)(fives_law) is fives_law
    bound = schemes.info("fives_law")
    assert bound == law.bind(fives_law) and bound.fn is fives_law
    assert list(bound.params) == ["val"] and bound.uses == frozenset()
    assert law.name == "" and law.params == {}  # the declaration is unchanged (frozen)
    with pytest.raises(dataclasses.FrozenInstanceError):
        bound.family = "normal"  # type: ignore[misc]
    with pytest.raises(ValueError, match="already registered"):
        schemes.register(law)(fives_law)
    with pytest.raises(ValueError, match="unknown taps 'middle'"):
        dataclasses.replace(law, taps="middle")  # refused where it is declared


def test_the_older_keyword_form_still_registers_and_warns(scratch: None) -> None:
    def old_form_law(tensor: Tensor, scale: float = 1.0, *, generator: object = None) -> Tensor:
        return tensor.fill_(scale)

    with pytest.warns(DeprecationWarning, match=r"register\(SchemeInfo"):
        schemes.register("old_form_law", family="constant", variance="0",
                         variance_fn=lambda shape, scale=1.0: 0.0, paper="-",
                         mean_fn=lambda shape, scale=1.0: scale, example=None,
                         )(old_form_law)  # fmt: skip
    info = schemes.info("old_form_law")
    assert (info.variance_formula, info.example, info.mean((2,), scale=3.0)) == (
        "0", "old_form_law", 3.0)  # fmt: skip
    with pytest.raises(TypeError, match="unexpected keyword argument 'variance_fun'"), \
            pytest.warns(DeprecationWarning):  # fmt: skip
        schemes.register("x", family="c", variance="0", variance_fun=None, paper="-")


ROWS = (*frameworks.PRESETS, *frameworks.JAX, *frameworks.KERAS, *zoo.TIMM, zoo.HF, *zoo.OLDER)


@pytest.mark.parametrize("alias", ROWS, ids=lambda a: f"{a.framework}:{a.local}")
def test_an_alias_draws_its_target_law(alias: Alias) -> None:
    info = schemes.info(f"{alias.framework}:{alias.local}")
    assert (info.framework, info.source) == (alias.framework, frameworks.SOURCES[alias.framework])
    assert {k: p.default for k, p in info.params.items()} == {
        k: d for k, (_, d) in alias.params.items()}  # fmt: skip
    # the framework's defaults (doubled, to see them mapped) against the target's own call
    given = {k: 2 * d for k, (_, d) in alias.params.items()}
    target_args = {**alias.fixed, **{ours: given[k] for k, (ours, _) in alias.params.items()}}
    shape = (8, 4, 3) if info.min_rank == 3 else (8, 6)
    got = schemes.get(info.name)(torch.empty(shape), generator=torch.Generator().manual_seed(3),
                                 **given)  # fmt: skip
    want = alias.target(torch.empty(shape), **target_args,
                        generator=torch.Generator().manual_seed(3))  # fmt: skip
    assert torch.equal(got, want)


def test_43_of_the_51_framework_schemes_are_alias_rows() -> None:
    qualified = [n for n in schemes.names() if ":" in n]
    assert len(qualified) == 51 and len(ROWS) == 43
    rows = sorted(f"{a.framework}:{a.local}" for a in ROWS)
    assert rows == [n for n in qualified if schemes.info(n).fn.__qualname__.startswith("_alias")]

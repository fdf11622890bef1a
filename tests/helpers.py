"""Helpers shared by test modules (pytest puts this directory on sys.path)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from initsuite import schemes
from initsuite.cli import main
from initsuite.schemes import registry


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``initsuite ARGS``, argparse's own exits included."""
    try:
        code = main(args)
    except SystemExit as exc:  # argparse exits itself
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def module_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str
) -> Iterator[Path]:
    """Write module ``name`` into its own folder on sys.path (for fixtures: ``yield from``);
    it is imported afresh by the test and forgotten afterwards."""
    folder = tmp_path / "factories"
    folder.mkdir()
    (folder / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, name, raising=False)
    yield folder
    sys.modules.pop(name, None)


@dataclass
class FakeEntryPoint:
    """An entry point of a scheme plugin that runs ``load_fn`` when loaded."""

    name: str
    value: str
    group: str
    load_fn: Callable[[], Any]
    loads: int = 0

    def load(self) -> Any:
        self.loads += 1
        return self.load_fn()


def patch_entry_points(monkeypatch: pytest.MonkeyPatch, *eps: FakeEntryPoint) -> None:
    """Make the scheme registry see ``eps`` as its installed plugins, not yet loaded."""

    def entry_points(**kwargs: Any) -> list[FakeEntryPoint]:
        assert kwargs == {"group": schemes.ENTRY_POINT_GROUP}
        return [ep for ep in eps if ep.group == kwargs["group"]]

    monkeypatch.setattr(registry.metadata, "entry_points", entry_points)
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.setattr(registry, "_loaded_plugins", set())


class _Scale(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, factor: float) -> torch.Tensor:
        ctx.factor = factor
        return x.clone()

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:
        return g * ctx.factor, None


class Amplify(torch.nn.Module):
    """The identity forward; backward, the gradient times ``factor``: an overflow (or
    underflow) walking back from the output at a known call."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Scale.apply(x, self.factor)

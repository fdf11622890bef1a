"""The examples in the package's docstrings run, and show what they print (doctest).

Each module with an example is one test. The examples see ``initsuite`` and ``torch`` imported,
as a reader has them (PyTorch's docs assume ``import torch`` the same way); anything else they
import or build themselves. Outputs compare with ``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``.

An example that cannot run here carries ``# doctest: +SKIP``: one that needs a results
directory that is not there, an optional library (transformers, timm), a GPU, or a study of
seconds to minutes (a sweep, a training run): each of the suite's tests of those covers it.
Every ``>>>`` of a module is one of doctest's examples, so none escapes unseen (a docstring
doctest does not find: an object imported from elsewhere, or text that is no docstring).
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest
import torch

import initsuite

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "initsuite"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


WITH_EXAMPLES = sorted(
    _module_name(p) for p in PACKAGE.rglob("*.py") if ">>>" in p.read_text(encoding="utf-8")
)


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    found = doctest.DocTestFinder().find(
        module, name, extraglobs={"initsuite": initsuite, "torch": torch}
    )
    examples = sum(len(t.examples) for t in found)
    source = Path(module.__file__ or "").read_text(encoding="utf-8")
    assert examples == sum(line.lstrip().startswith(">>>") for line in source.splitlines())
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in found:
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)

"""A report is a function of its directory: it needs neither the sweep's plugins nor torch
nor theory, only what the sweep stored."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import initsuite
from initsuite.report import write_report

# what a process that cannot import torch runs first (import torch then raises ImportError)
BLOCK_TORCH = "import sys; sys.modules['torch'] = None\n"
# the same, by an import hook: scipy (under seaborn) looks torch up in sys.modules, and a None
# there breaks it, while a machine without torch has no entry at all
NO_TORCH = """
import importlib.abc, sys
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError(f"{name} is not installed here")
sys.meta_path.insert(0, NoTorch())
"""


REPORT = """
import sys
from initsuite.report import write_report
write_report(sys.argv[1], out_dir=sys.argv[2])
for name in ("torch", "initsuite.schemes", "initsuite.theory", "initsuite.engine"):
    assert name not in sys.modules, name
"""


def _python(code: str, *args: object) -> None:
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr


@pytest.fixture
def plugin_scheme() -> Iterator[str]:
    """A scheme registered as a plugin would register it, for one test (unregistered after)."""
    from initsuite import schemes

    @schemes.register(
        schemes.SchemeInfo(
            name="third_party_normal",
            family="normal",
            variance_formula="1.5/fan_in",
            variance=lambda shape: 1.5 / shape[1],
            paper="a plugin",
        )
    )
    def third_party_normal(tensor: torch.Tensor, *, generator: object = None) -> torch.Tensor:
        with torch.no_grad():
            return tensor.normal_(0.0, (1.5 / tensor.shape[1]) ** 0.5, generator=generator)

    try:
        yield "third_party_normal"
    finally:
        schemes.unregister("third_party_normal")


def test_a_plugin_sweep_is_reported_where_the_plugin_and_torch_are_missing(
    tmp_path: Path, plugin_scheme: str
) -> None:
    """Swept and reported here, where the plugin is registered; reported again in a fresh
    process that has neither the plugin nor torch: the same report, figure for figure."""
    import pandas as pd

    from initsuite.theory import phase

    run, with_plugin, without = tmp_path / "run", tmp_path / "a", tmp_path / "b"
    res = initsuite.sweep([plugin_scheme, "kaiming_normal"], ["tanh", "relu"], [3, 8], [8, 16],
                          seeds=2, timing=False, out_dir=run)  # fmt: skip
    # the stored points are what theory computes while the plugin is registered, bit for bit
    live = pd.concat([phase.scheme_points(a, ["kaiming_normal", plugin_scheme], 16)
                      for a in ["relu", "tanh"]], ignore_index=True)  # fmt: skip
    stored = res.phase_points.drop(columns="width")
    assert stored["scheme"].tolist() == live["scheme"].tolist(), stored
    for c in ("sigma_w2", "sigma_b2", "q_star", "chi1", "depth_scale"):
        assert stored[c].tolist() == live[c].tolist(), c
    write_report(run, out_dir=with_plugin)
    _python(NO_TORCH + REPORT, run, without)  # a fresh process: no plugin, no torch
    text = (with_plugin / "report.md").read_text()
    assert "third_party_normal" in text and "](figures/phase_diagram.png)" in text
    assert (without / "report.md").read_text() == text
    for name in ("phase_diagram", "std_vs_layer", "cosine_vs_layer"):  # drawn the same
        figure = f"figures/{name}.png"
        assert (without / figure).read_bytes() == (with_plugin / figure).read_bytes(), name


def test_a_sweep_stored_before_its_theory_tables_reports_without_them(tmp_path: Path) -> None:
    res = initsuite.sweep("kaiming_normal", "relu", [3, 8], 16, seeds=3, timing=False)
    run = res.save(tmp_path / "run")
    for name in ("theory", "phase_points", "phase_grid"):  # as an older initsuite wrote it
        (run / f"{name}.parquet").unlink()
    old = initsuite.SweepResult.load(run)
    assert old.theory.empty and old.phase_grid.empty and old.phase_points.empty
    pytest.importorskip("seaborn")
    text = write_report(run).read_text()
    assert "phase_diagram" not in text
    assert "stored without its theory tables" in text.split("## Theory vs measurement")[1]
    with_tables = write_report(res.save(tmp_path / "new"), out_dir=tmp_path / "r").read_text()
    assert "stored without its theory tables" not in with_tables
    assert "](figures/phase_diagram.png)" in with_tables
    assert json.loads((run / "meta.json").read_text())["kind"] == "sweep"

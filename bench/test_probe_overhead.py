"""What ``initsuite.probe(..., backward=True)`` costs over the pass it watches.

Two models as transformers builds them from their default configs, no download: ResNet-50
(``ResNetModel(ResNetConfig())``: bottleneck blocks, depths 3, 4, 6, 3) on 8 images of
128 × 128, and GPT-2 small (``GPT2Model(GPT2Config())``, train mode) on 4 × 128 tokens. In
each group ``test_a_plain_pass`` is the reference: the same forward pass and the same
backward (``torch.autograd.grad`` of Σ R ⊙ y with respect to every parameter, as the probe
does), without hooks; ``test_probe`` is the whole probe, table included. The summary prints
the probe as a multiple of the plain pass (the issue's bound: 1.3×).

``test_probe_peak_rss`` runs each of the two on ResNet-50 in a fresh process and records its
peak resident memory (the issue's bound: 1.2×); ``extra_info`` holds both peaks and what the
pass itself added to the memory held before it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import initsuite

pytest.importorskip("transformers")

HERE = str(Path(__file__).resolve().parent)

# name -> (full config, --bench-quick config): the sizes, and a smoke-run stand-in.
SIZES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "resnet50": ({"batch": 8, "image": 128}, {"batch": 2, "image": 64, "depths": [1, 1, 1, 1]}),
    "gpt2": ({"batch": 4, "tokens": 128}, {"batch": 2, "tokens": 32, "n_layer": 2}),
}


def build(name: str, cfg: dict[str, Any], device: torch.device | str) -> tuple[Any, Any]:
    """The model (train mode) and its inputs, from fixed seeds."""
    from transformers import GPT2Config, GPT2Model, ResNetConfig, ResNetModel

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    if name == "resnet50":
        conf = ResNetConfig(**({"depths": cfg["depths"]} if "depths" in cfg else {}))
        x = torch.randn(cfg["batch"], 3, cfg["image"], cfg["image"], generator=g)
        return ResNetModel(conf).to(device).train(), x.to(device)
    conf = GPT2Config(**({"n_layer": cfg["n_layer"]} if "n_layer" in cfg else {}))
    ids = torch.randint(0, conf.vocab_size, (cfg["batch"], cfg["tokens"]), generator=g)
    return GPT2Model(conf).to(device).train(), {"input_ids": ids.to(device)}


def plain(model: torch.nn.Module, inputs: Any) -> None:
    """The pass the probe watches, without hooks: forward, then dLoss/d(every parameter) of
    Loss = Σ R ⊙ y (y: the first output) by torch.autograd.grad, as the probe computes it."""
    out = model(**inputs) if isinstance(inputs, dict) else model(inputs)
    y = out[0]
    r = torch.randn(y.shape, device=y.device, dtype=y.dtype)
    params = [p for p in model.parameters() if p.requires_grad]
    torch.autograd.grad(y, params, grad_outputs=r, allow_unused=True)


@pytest.fixture(scope="module", params=list(SIZES))
def model_and_inputs(request, quick, device) -> tuple[str, dict[str, Any], Any, Any]:
    """Module scope: one build per model; its plain pass and its probe are timed together."""
    name = request.param
    cfg = SIZES[name][1 if quick else 0]
    model, inputs = build(name, cfg, device)
    return name, cfg, model, inputs


def _label(benchmark, name: str, cfg: dict[str, Any], method: str, device) -> None:
    benchmark.group = f"probe overhead {name}"
    benchmark.extra_info.update({"model": name, **cfg, "method": method, "device": str(device)})


def test_a_plain_pass(benchmark, run_timed, model_and_inputs, device):
    name, cfg, model, inputs = model_and_inputs
    _label(benchmark, name, cfg, "forward + autograd.grad, no hooks", device)
    run_timed(lambda: plain(model, inputs), reference=True)


def test_probe(benchmark, run_timed, model_and_inputs, device):
    name, cfg, model, inputs = model_and_inputs
    _label(benchmark, name, cfg, "initsuite.probe(backward=True)", device)
    run_timed(lambda: initsuite.probe(model, inputs, backward=True))


_CHILD = """
import json, resource, sys
sys.path.insert(0, sys.argv[3])
import torch
import initsuite
from test_probe_overhead import build, plain

def rss_mb(key):  # the process's own figures: ru_maxrss would carry over from the parent
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

method, cfg = sys.argv[1], json.loads(sys.argv[2])
# both children load what a probe imports (pandas, pyarrow), so the peaks differ by the pass
initsuite.probe(torch.nn.Linear(2, 2), torch.randn(1, 2), backward=True)
model, x = build("resnet50", cfg, "cpu")
before = rss_mb("VmRSS")
for _ in range(2):  # the second pass runs on the allocator's warm pools, as in a study
    if method == "probe":
        initsuite.probe(model, x, backward=True)
    else:
        plain(model, x)
print(json.dumps({"peak_rss_mb": rss_mb("VmHWM"), "before_mb": before}))
"""


@pytest.mark.long_reference
def test_probe_peak_rss(benchmark, quick, device):
    """Peak RSS of a ResNet-50 probe and of its plain pass, each in a fresh process."""
    if device.type != "cpu" or not os.path.exists("/proc/self/status"):
        pytest.skip("the memory check runs on a CPU under Linux")
    cfg = SIZES["resnet50"][1 if quick else 0]
    benchmark.group = "probe memory resnet50"
    out: dict[str, dict[str, float]] = {}

    def run() -> None:
        for method in ("plain", "probe"):
            proc = subprocess.run(
                [sys.executable, "-c", _CHILD, method, json.dumps(cfg), HERE],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            out[method] = json.loads(proc.stdout.strip().splitlines()[-1])

    benchmark.pedantic(run, rounds=1, iterations=1)
    plain_, probe_ = out["plain"], out["probe"]
    ratio = probe_["peak_rss_mb"] / plain_["peak_rss_mb"]
    added = [d["peak_rss_mb"] - d["before_mb"] for d in (plain_, probe_)]
    added_mb = {"plain": added[0], "probe": added[1]}
    benchmark.extra_info.update(
        {**cfg, "plain": plain_, "probe": probe_, "peak_ratio": ratio, "pass_added_mb": added_mb}
    )
    print(f"\nResNet-50 {cfg}: peak RSS plain {plain_['peak_rss_mb']:.0f} MB, probe "
          f"{probe_['peak_rss_mb']:.0f} MB ({ratio:.2f}x); the pass added {added[0]:.0f} MB "
          f"and {added[1]:.0f} MB")  # fmt: skip

"""What ``initsuite.probe(model, inputs, backward=True)`` costs over the pass it watches.

The real builds, from code, no weights downloaded: timm's ResNet-50 (8 images of 128 × 128)
and ViT-S/16 (4 images of 224 × 224), and GPT-2 small (``GPT2Model(GPT2Config())``, 2 × 128
tokens), each in train mode. The plain pass is what the probe watches, without hooks: the
forward pass, then dLoss/d(every parameter) of Loss = Σ R ⊙ y (y: the output's first floating
tensor, R ~ N(0, 1)) by ``torch.autograd.grad``, as the probe computes it.

Time (``test_probe_time``): in one process, rounds alternate plain, probe (``stats="exact"``),
probe (``stats="fast"``), so that the shared machine's noise falls on all three alike; each is
its best round (the least disturbed), and each probe is divided by the plain pass. The issue's
bound, 1.3×, is asserted on the fast statistics; the exact ones are recorded beside it. The
rounds run on one thread, whatever ``--bench-threads`` says: on the shared 2-vCPU machine a
second thread measures the other processes more than the probe (each of the probe's hundreds
of small reductions waits for a core another process may hold, so its ratio moved by ±0.1
between runs, to 1.35-1.45× for ResNet-50 where one thread gave 1.29×).

Peak memory (``test_probe_peak_memory``, ``long_reference``): each measurement in a fresh
process, reading the process's own peak resident set (``VmHWM``), up to ViT-B/16, ResNet-152
and GPT-2 medium. torch's CPU allocator takes every tensor from malloc, so the resident set is
what the pass really holds (tracemalloc does not see those allocations, and torch.profiler's
memory records slow the pass and count its own bookkeeping). The child loads what a probe
imports and builds the model before its baseline (``VmRSS``), then runs the pass twice (the
second on warm allocator pools, as in a study). Bound: the probe's peak at most 1.1× the plain
pass's, both the whole process's peak and what the pass added to it. Under ``--bench-quick``
the small stand-ins' passes are mostly the probe's fixed cost: both tests only record them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

import initsuite
from initsuite.engine.forward import first_float

pytest.importorskip("timm")
pytest.importorskip("transformers")

HERE = str(Path(__file__).resolve().parent)
TIME_BOUND, MEMORY_BOUND = 1.3, 1.1

# name -> (full config, --bench-quick stand-in); "build": what to build, the rest its inputs
TIMED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "resnet50": ({"timm": "resnet50", "batch": 8, "image": 128},
                 {"timm": "resnet18", "batch": 2, "image": 64}),
    "vit_s16": ({"timm": "vit_small_patch16_224", "batch": 4, "image": 224},
                {"timm": "vit_small_patch16_224", "depth": 2, "batch": 2, "image": 224}),
    "gpt2": ({"gpt2": {}, "batch": 2, "tokens": 128},
             {"gpt2": {"n_layer": 2}, "batch": 2, "tokens": 32}),
}  # fmt: skip
LARGE: dict[str, dict[str, Any]] = {
    "vit_b16": {"timm": "vit_base_patch16_224", "batch": 4, "image": 224},
    "resnet152": {"timm": "resnet152", "batch": 8, "image": 128},
    "gpt2_medium": {"gpt2": {"n_layer": 24, "n_embd": 1024, "n_head": 16}, "batch": 2,
                    "tokens": 128},
}  # fmt: skip
ROUNDS, QUICK_ROUNDS = 5, 2
METHODS = ("plain", "exact", "fast")


def build(cfg: dict[str, Any]) -> tuple[torch.nn.Module, Any]:
    """The model (train mode, CPU) and its inputs, from fixed seeds."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    if "timm" in cfg:
        import timm

        extra = {"depth": cfg["depth"]} if "depth" in cfg else {}
        model = timm.create_model(cfg["timm"], pretrained=False, **extra)
        x = torch.randn(cfg["batch"], 3, cfg["image"], cfg["image"], generator=g)
        return model.train(), x
    from transformers import GPT2Config, GPT2Model

    conf = GPT2Config(**cfg["gpt2"])
    ids = torch.randint(0, conf.vocab_size, (cfg["batch"], cfg["tokens"]), generator=g)
    return GPT2Model(conf).train(), {"input_ids": ids}


def plain(model: torch.nn.Module, inputs: Any) -> None:
    """The pass the probe watches, without hooks (see the module's docstring)."""
    out = model(**inputs) if isinstance(inputs, dict) else model(inputs)
    y = first_float(out)
    assert y is not None
    r = torch.randn(y.shape, generator=torch.Generator().manual_seed(0), dtype=y.dtype)
    params = [p for p in model.parameters() if p.requires_grad]
    torch.autograd.grad(y, params, grad_outputs=r, allow_unused=True)


def run(method: str, model: torch.nn.Module, inputs: Any) -> None:
    """One pass of ``method``: ``plain`` or the probe with ``stats=method``."""
    if method == "plain":
        plain(model, inputs)
    else:
        initsuite.probe(model, inputs, backward=True, stats=method)


@pytest.mark.parametrize("name", list(TIMED))
def test_probe_time(benchmark, quick, device, name):
    """Best of alternated rounds of the plain pass and the two probes; the probe / plain."""
    if device.type != "cpu":
        pytest.skip("the probe's cost is measured on a CPU")
    cfg = TIMED[name][1 if quick else 0]
    model, inputs = build(cfg)
    best = dict.fromkeys(METHODS, float("inf"))

    def alternate() -> None:
        for method in METHODS:  # warm-up: the allocator's pools, the probe's imports
            run(method, model, inputs)
        for _ in range(QUICK_ROUNDS if quick else ROUNDS):
            for method in METHODS:
                start = time.perf_counter()
                run(method, model, inputs)
                best[method] = min(best[method], time.perf_counter() - start)

    benchmark.group = "probe cost"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see the module's docstring
    try:
        benchmark.pedantic(alternate, rounds=1, iterations=1)
    finally:
        torch.set_num_threads(threads)
    ratios = {m: best[m] / best["plain"] for m in ("exact", "fast")}
    benchmark.extra_info.update({"model": name, **cfg, "best_s": best, "ratio": ratios,
                                 "threads": 1})  # fmt: skip
    print(f"\n{name}: probe / plain pass, best of alternated rounds: exact "
          f"{ratios['exact']:.2f}x, fast {ratios['fast']:.2f}x")  # fmt: skip
    if not quick:  # the smoke run's small stand-ins are mostly the probe's fixed cost
        assert ratios["fast"] <= TIME_BOUND, (name, ratios)


_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[3])
import torch
import initsuite
from test_bench_probe_cost import build, run

def kib(key):  # the child's own figures (ru_maxrss could carry the parent's over)
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(key)

method, cfg = sys.argv[1], json.loads(sys.argv[2])
# every child loads what a probe imports (pandas, pyarrow): the peaks differ by the pass
initsuite.probe(torch.nn.Linear(2, 2), torch.randn(1, 2), backward=True)
model, inputs = build(cfg)
before = kib("VmRSS")
for _ in range(2):
    run(method, model, inputs)
print(json.dumps({"peak_mb": kib("VmHWM") / 1024, "before_mb": before / 1024}))
"""


def _peak(method: str, cfg: dict[str, Any]) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", _CHILD, method, json.dumps(cfg), HERE],
                          check=True, capture_output=True, text=True)  # fmt: skip
    out: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["pass_mb"] = out["peak_mb"] - out["before_mb"]
    return out


@pytest.mark.long_reference
@pytest.mark.parametrize("name", [*TIMED, *LARGE])
def test_probe_peak_memory(benchmark, quick, device, name):
    """Peak resident memory of the plain pass and of each probe, each in a fresh process."""
    if device.type != "cpu" or not os.path.exists("/proc/self/status"):
        pytest.skip("the memory check runs on a CPU under Linux")
    cfg = TIMED[name][1] if quick and name in TIMED else TIMED[name][0] if name in TIMED \
        else LARGE[name]  # fmt: skip
    if quick and name in LARGE:
        pytest.skip("--bench-quick measures the small models only")
    out: dict[str, dict[str, float]] = {}

    def measure() -> None:
        for method in METHODS:
            out[method] = _peak(method, cfg)

    benchmark.group = "probe memory"
    benchmark.pedantic(measure, rounds=1, iterations=1)
    base = out["plain"]
    ratios = {m: {"peak": out[m]["peak_mb"] / base["peak_mb"],
                  "pass": out[m]["pass_mb"] / base["pass_mb"]}
              for m in ("exact", "fast")}  # fmt: skip
    benchmark.extra_info.update({"model": name, **cfg, "memory": out, "ratio": ratios})
    print(f"\n{name}: peak RSS plain {base['peak_mb']:.0f} MB (the pass {base['pass_mb']:.0f}); "
          + ", ".join(f"{m} {r['peak']:.3f}x (the pass {r['pass']:.3f}x)"
                      for m, r in ratios.items()))  # fmt: skip
    for m, r in ratios.items():  # the smoke run's passes add tens of MB: the probe's fixed part
        assert quick or (r["peak"] <= MEMORY_BOUND and r["pass"] <= MEMORY_BOUND), (name, m, ratios)

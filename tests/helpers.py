"""Helpers shared by test modules (pytest puts this directory on sys.path)."""

from __future__ import annotations

import sys
from collections import Counter
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


def stub_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every figure function returns nothing and the report writer saves a stub PNG (the
    ``fast_figures`` fixture; in a fixture of wider scope:
    ``with pytest.MonkeyPatch.context() as mp: stub_figures(mp)``)."""
    import initsuite.report.probe_report as RP
    import initsuite.report.sweep as R
    import initsuite.report.verdict_figure as VF
    from initsuite.report import plan
    from initsuite.results import store

    def stub_save(fig: object, path: str | Path) -> Path:
        return store.atomic_write_bytes(path, b"\x89PNG stub")

    for name in ("std_vs_layer", "divergence_heatmap", "final_std_distribution",
                 "init_time_vs_width", "cosine_vs_layer", "phase_figure",
                 "tutorial_std_vs_layer", "loss_curves", "steps_to_threshold"):  # fmt: skip
        monkeypatch.setattr(R, name, lambda *a, **k: None)
    monkeypatch.setattr(plan, "write_figure", stub_save)
    monkeypatch.setattr(RP, "probe_std", lambda *a, **k: None)
    monkeypatch.setattr(VF, "verdict_figure", lambda *a, **k: None)


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


def kernel_rtol(dtype: torch.dtype | str, length: int, depth: int = 1) -> float:
    """The relative tolerance between two computations of the same values that take different
    kernel paths: a stacked (k·batch, n) product against k separate (batch, n) ones, another
    blocking of the GEMM on another CPU (AVX-512, AVX2, or torch's portable kernels under
    ``ATEN_CPU_CAPABILITY=default``), another thread count, another summation order. Exactness
    belongs only to the same operations in the same order (common random numbers, resume,
    determinism on one machine); everything else compares with this.

    Why this wide. A dot product of ``length`` terms summed in another order moves by about
    ``length · u_acc`` of Σ|xᵢwᵢ| (u_acc: the accumulator's unit roundoff; a CPU accumulates
    float16 and bfloat16 products in float32), and Σ|xᵢwᵢ| is about √length times |Σxᵢwᵢ| for
    terms of random sign, so relative to the value ``length^1.5 · u_acc`` at worst, ``length ·
    u_acc`` typically; the value is then rounded once to the output dtype, u_out. Either side
    may do it differently: twice that per layer. The statistics of a layer (std, mean over many
    values) move by the same relative amount. In a net that does not amplify perturbations
    (every net compared this way: χ₁ ≤ 1, or saturated), the layers' errors add up over
    ``depth``. A factor of 4 covers activations whose slope exceeds 1 locally (SELU's λ, GELU's
    bump). A real defect (a wrong gain, fan or draw) moves a std by percents, far past this."""
    dt = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    u_out = torch.finfo(dt).eps / 2
    u_acc = torch.finfo(torch.float32).eps / 2 if dt in (torch.float16, torch.bfloat16) else u_out
    per_layer = 2 * (u_out + length**1.5 * u_acc)
    return max(1e-12, 4 * depth * per_layer)


WARM_SWEEP = (
    "import initsuite, torch\n"
    "initsuite.sweep('kaiming_normal', 'relu', 2, 512, timing=False, backward=True,"
    " pair_cosine=None)"
)
"""A process's set-up for :func:`peak_growth_mb`: the imports and one tiny sweep, so that lazy
imports, thread pools and the allocator's first arenas are in the baseline."""


def peak_growth_mb(code: str, setup: str = WARM_SWEEP) -> tuple[float, str]:
    """Run ``setup`` then ``code`` in a fresh Python process; return (the process's peak
    resident memory beyond what it held after ``setup``, in MB; what ``code`` printed last).

    The peak is VmHWM from /proc/self/status (reset by exec), the baseline VmRSS after the
    set-up: what importing torch costs differs between its builds (a CUDA build maps far more)
    and is not what a memory test is about. After :data:`WARM_SWEEP` a 200-layer sweep at
    width 512 grew the peak by 2-6 MB (forward and backward) on the project's machine, while
    keeping its weights would take 200 MB. ru_maxrss is no use here: it survives exec and
    reports the forking parent's peak."""
    import json
    import subprocess

    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux's /proc/self/status")
    child = (
        f"{setup}\n"
        "def _kb(key):\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith(key):\n"
        "            return int(line.split()[1])\n"
        "_base = _kb('VmRSS:')\n"
        f"{code}\n"
        "import json as _json\n"
        "print(_json.dumps((_kb('VmHWM:') - _base) / 1024))\n"
    )
    out = subprocess.run([sys.executable, "-c", child], check=True, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    lines = out.stdout.strip().splitlines()
    return float(json.loads(lines[-1])), (lines[-2] if len(lines) > 1 else "")


def _signature(fn: Callable[..., Any] | None) -> object:
    """What decides a function's behaviour: its code, the values it closes over and its
    defaults (two closures made by one factory with equal arguments are one function)."""
    if fn is None:
        return None
    cells = tuple(
        c.cell_contents if callable(c.cell_contents) else repr(c.cell_contents)
        for c in (fn.__closure__ or ())
    )
    return (
        fn.__code__,
        cells,
        repr(fn.__defaults__),
        repr(sorted((fn.__kwdefaults__ or {}).items())),
    )


def distinct_laws(names: list[str]) -> list[str]:
    """``names`` less the schemes whose registration is another's in all but its name and
    framework metadata: the same fill, variance, mean, check and shared-draw functions (code,
    closure values, defaults), ranks, family, parameters and uses. ``flax:he_normal``,
    ``jax:he_normal`` and ``keras:he_normal`` are built by one factory with equal arguments,
    so a per-scheme contract (fills in place, draws only from its generator, takes exactly its
    ranks, works in every dtype) run on one of them has run on all; their names and metadata
    are checked per name elsewhere. The first name of each group (in ``names``' order) stays."""
    seen: set[object] = set()
    out = []
    for name in names:
        i = schemes.info(name)
        key = (
            *(_signature(f) for f in (i.fn, i.variance, i.check, i.mean, i.shared,
                                      i.role_variance)),
            i.min_rank, i.max_rank, i.family, i.uses, i.taps, repr(i.params),
            i.residual_scale, i.torch_fn, i.example.removeprefix(f"{i.framework}:"),
        )  # fmt: skip
        if key not in seen:
            seen.add(key)
            out.append(name)
    return out


# --- HTML pages: what runs in them ------------------------------------------------------------

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def dump_dom(path: Path) -> str:
    """The page's DOM after its scripts ran, from headless Chromium (skip, saying so, where
    no browser is installed)."""
    import shutil
    import subprocess

    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    if browser is None:
        pytest.skip(f"no headless browser ({', '.join(BROWSERS)}) installed: apt-get install "
                    "chromium to run the browser checks")  # fmt: skip
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
           "--dump-dom", path.resolve().as_uri()]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


# the tags python-markdown writes for initsuite's Markdown, plotly's figure and the page
_PAGE_TAGS = frozenset({
    "html", "head", "meta", "title", "style", "script", "body", "pre", "h1", "h2", "h3", "h4",
    "p", "ul", "ol", "li", "strong", "em", "code", "blockquote", "table", "thead", "tbody", "tr",
    "th", "td", "figure", "img", "div", "a", "br", "hr", "details", "summary",
})  # fmt: skip


_PLOTLY_CONFIG = "window.PlotlyConfig = {MathJaxConfig: 'local'};"


def foreign_markup(page: str, own_scripts: tuple[str, ...]) -> list[str]:
    """What in an HTML page initsuite wrote did not come from initsuite: a tag outside the
    tags its pages use, an event-handler attribute (``onerror=``), a link or image with a URL
    that runs or fetches (``javascript:``, another host), or a script that is neither one of
    ``own_scripts`` nor a plotly figure (plotly's bundle, or its ``Plotly.newPlot`` call
    carrying the figure as escaped JSON). Empty for a safe page."""
    from html.parser import HTMLParser

    found: list[str] = []

    class Tags(HTMLParser):
        script: list[str] | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag not in _PAGE_TAGS:
                found.append(f"tag <{tag}>")
            for name, value in attrs:
                url = (value or "").strip().lower()
                if name.startswith("on"):
                    found.append(f"attribute {name}= on <{tag}>")
                elif name == "href" and not url.startswith(("#", "http://", "https://")):
                    found.append(f"link {value!r}")
                elif name == "src" and not url.startswith("data:image/png;base64,"):
                    found.append(f"source {value!r} on <{tag}>")
            if tag == "script":
                self.script = []

        def handle_data(self, data: str) -> None:
            if self.script is not None:
                self.script.append(data)

        def handle_endtag(self, tag: str) -> None:
            if tag == "script" and self.script is not None:
                text, self.script = "".join(self.script), None
                plotly = ("Plotly.newPlot(" in text or text.startswith(_PLOTLY_CONFIG)
                          or text.startswith("/**\n* plotly.js"))  # fmt: skip
                if text not in own_scripts and not plotly:
                    found.append(f"script {text[:80]!r}")

    Tags().feed(page)
    return found


def load_error(run: Path) -> str:
    """The one-line message of the InitsuiteError that loading the sweep ``run`` raises (no
    chained traceback)."""
    from initsuite.core.errors import InitsuiteError
    from initsuite.results.sweep import SweepResult

    with pytest.raises(InitsuiteError) as info:
        SweepResult.load(run)
    msg = str(info.value)
    assert "\n" not in msg and info.value.__cause__ is None
    return msg


def count_parses(monkeypatch: pytest.MonkeyPatch) -> Counter[tuple[str, str]]:
    """A counter that, from now on, counts every (kind, text) of a scheme, activation or
    architecture spec that is parsed (each parser's ``parse_spec``, patched)."""
    import initsuite.activations.registry
    import initsuite.engine.archs.base
    from initsuite.core import spec

    parsed: Counter[tuple[str, str]] = Counter()
    real = spec.parse_spec

    def counting(text: str, *args: Any, **kwargs: Any) -> Any:
        parsed[(kwargs["kind"], text)] += 1
        return real(text, *args, **kwargs)

    for module in (initsuite.activations.registry, initsuite.engine.archs.base, registry):
        monkeypatch.setattr(module, "parse_spec", counting)
    return parsed

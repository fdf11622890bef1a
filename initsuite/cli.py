"""The ``initsuite`` command: parses arguments, calls the Python API, prints.

Bad input exits with status 2 and one line on stderr, before anything is computed or written;
an argument the library's message names is shown as the command's flag.
``initsuite compare --fail`` exits with status 1 when a regression gate is exceeded, and
``initsuite schemes PATTERN`` when no scheme matches.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from initsuite.core.errors import Arg, InitsuiteError
from initsuite.core.spec import plain_float, plain_int, split_specs
from initsuite.core.version import __version__

if TYPE_CHECKING:
    import pandas as pd

    from initsuite.results.outputs import Mode

__all__ = ["main"]


# every character str.splitlines breaks at, shown escaped in an error message
_LINE_BREAKS = {c: ascii(chr(c))[1:-1] for c in map(ord, "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")}


def _one_line(message: str) -> str:
    """``message`` on one line: a line break the user typed (a newline or U+0085 in a spec,
    which argparse and some errors quote as is) is shown escaped."""
    return message.strip().translate(_LINE_BREAKS)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors, recording its flags (:func:`_flag`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.flags: set[str] = set()  # before argparse adds --help
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.flags.update(action.option_strings)
        return action

    def error(self, message: str) -> NoReturn:
        # One line, like every other input error, instead of argparse's usage block.
        self.exit(2, _one_line(f"{self.prog}: error: {message} (see {self.prog} --help)") + "\n")


# how text is spelt on a standard output whose encoding cannot hold it (PYTHONIOENCODING=ascii);
# Greek letters by name (σ → sigma), accents dropped, anything else escaped
_ASCII = {"—": "-", "–": "-", "−": "-", "±": "+/-", "√": "sqrt", "·": "*", "×": "x", "÷": "/",
          "²": "^2", "³": "^3", "⁴": "^4", "≈": "~", "≤": "<=", "≥": ">=", "≠": "!=",
          "→": "->", "←": "<-", "↦": "->", "↔": "<->", "…": "...", "‖": "||", "′": "'",
          "✓": "yes", "✗": "no"}  # fmt: skip


def _spell(char: str) -> str:
    """``char`` in ASCII: its spelling in :data:`_ASCII`, a Greek letter's name, the letter
    without its accent, or a backslash escape."""
    if char in _ASCII:
        return _ASCII[char]
    name = unicodedata.name(char, "")
    if name.startswith("GREEK"):
        letter = name.split()[-1].lower()
        return letter.capitalize() if "CAPITAL" in name else letter
    if "SUBSCRIPT" in name or "SUPERSCRIPT" in name:  # χ₁ → chi1
        digit = unicodedata.digit(char, None)
        if digit is not None:
            return str(digit)
    plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
    return plain or char.encode("ascii", "backslashreplace").decode()


@contextlib.contextmanager
def _named_stdout() -> Iterator[None]:
    """A failed write to standard output as an error naming it (a closed pipe: as it is)."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise InitsuiteError(f"cannot write standard output: {exc.strerror or exc}") from None


class _Stdout:
    """What a command prints goes through this: text the stream's encoding cannot hold is
    spelt in ASCII (:func:`_spell`) instead of failing, and a failed write (a full device) is
    an error naming standard output; a closed pipe stays a ``BrokenPipeError``."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        with _named_stdout():
            try:
                return self.stream.write(text)
            except UnicodeEncodeError:  # raised before anything is written
                return self.stream.write(self._encodable(text))

    def flush(self) -> None:
        with _named_stdout():
            self.stream.flush()

    def _encodable(self, text: str) -> str:
        encoding = self.stream.encoding or "ascii"
        out = []
        for char in text:
            try:
                char.encode(encoding)
            except UnicodeEncodeError:
                char = _spell(char)
            out.append(char)
        return "".join(out)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


AddParser = Callable[..., _Parser]
"""``add_parser(name, help=...)``: a new subcommand's parser."""


def _flag(flags: set[str]) -> Callable[[Arg], str]:
    """How an error names an argument: as its flag where the command has one (``allow_large``
    → ``--allow-large``, ``shared=False`` → ``--no-shared``), else as Python spells it."""

    def spell(arg: Arg) -> str:
        dashed = arg.name.replace("_", "-")
        flag = f"--no-{dashed}" if arg.value is False else f"--{dashed}"
        if flag not in flags:
            return str(arg)
        return flag if arg.value is None or isinstance(arg.value, bool) else f"{flag} {arg.value}"

    return spell


def _split_specs(text: str) -> list[str]:
    """A comma list of specs (:func:`initsuite.core.spec.split_specs`), as an argparse type."""
    try:
        return split_specs(text)
    except InitsuiteError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# Every numeric flag's type is built on these four, which read plain ASCII decimal syntax as
# specs do (core.spec.plain_int/plain_float): "1_0" is not read as 10 nor "１６" as 16.
# tests/test_cli_numbers.py finds any flag whose type reads numbers otherwise.
_PLAIN = "in plain ASCII digits"


def _int_arg(text: str) -> int:
    """An argparse type: an integer written in plain ASCII digits."""
    number = plain_int(text)
    if number is None:
        raise argparse.ArgumentTypeError(f"expected an integer {_PLAIN}, got {text!r}")
    return number


def _float_arg(text: str) -> float:
    """An argparse type: a number written in plain ASCII decimal or exponent syntax (nan and
    inf pass here: the library refuses them where a finite number goes, naming the flag)."""
    number = plain_float(text)
    if number is None:
        raise argparse.ArgumentTypeError(f"expected a number {_PLAIN}, got {text!r}")
    return number


def _int_list(text: str) -> list[int]:
    """An argparse type: comma-separated integers (:func:`_int_arg`)."""
    try:
        return [_int_arg(t) for t in text.split(",") if t.strip()]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers {_PLAIN}, got {text!r}"
        ) from None


def _number_or_none(expected: str) -> Callable[[str], float | None]:
    """An argparse type: a number (as :func:`_float_arg` reads it), or None for 'none';
    ``expected`` names the number."""

    def parse(text: str) -> float | None:
        if text.strip().lower() == "none":
            return None
        number = plain_float(text)
        if number is None:
            raise argparse.ArgumentTypeError(
                f"expected {expected} {_PLAIN} or 'none', got {text!r}"
            )
        return number

    return parse


_cosine_arg = _number_or_none("a number in [-1, 1]")


PROBE_TIMEOUT = 600.0
"""``initsuite probe --timeout``'s default: seconds per model (the Python API has none), where
the timeout is available (SIGALRM: not on Windows); else no limit unless one is asked for."""


_timeout_arg = _number_or_none("a number of seconds")


def _max_parameters(text: str) -> int | None:
    """``--max-parameters``: a whole number (``5e8`` is fine) or ``none``."""
    value = _number_or_none("a number of parameters")(text)
    if value is None:
        return None
    if not (value >= 1 and float(value).is_integer()):
        raise argparse.ArgumentTypeError(f"expected a whole number of parameters >= 1 or "
                                         f"'none', got {text!r}")  # fmt: skip
    return int(value)


def _str_list(text: str) -> list[str]:
    out = [t.strip() for t in text.split(",") if t.strip()]
    if not out:  # an empty list of devices or dtypes would be a sweep of no cells
        raise argparse.ArgumentTypeError(f"empty list {text!r}")
    return out


def _add_schemes(add_parser: AddParser) -> None:
    s = add_parser("schemes", help="list registered initialization schemes")
    s.add_argument(
        "pattern",
        nargs="?",
        default="*",
        help="wildcard filter, e.g. 'kaiming*' (exit 1 when none matches)",
    )
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(run=_cmd_schemes)


def _add_activations(add_parser: AddParser) -> None:
    a = add_parser("activations", help="list activations and their gains")
    a.add_argument("--json", action="store_true", help="machine-readable output")
    a.set_defaults(run=_cmd_activations)


def _add_gains(add_parser: AddParser) -> None:
    gn = add_parser("gains", help="gains per activation and what each preserves")
    gn.add_argument("--json", action="store_true", help="machine-readable output")
    gn.set_defaults(run=_cmd_gains)


def _add_phase(add_parser: AddParser) -> None:
    ph = add_parser("phase", help="order-chaos phase diagram of an activation")
    ph.add_argument("--activation", required=True, help="activation spec, e.g. tanh")
    ph.add_argument("--schemes", type=_split_specs, default=["all"],
                    help="schemes to place (comma list or 'all')")  # fmt: skip
    ph.add_argument(
        "--width", type=_int_arg, default=256, help="layer width for σ_w² (default 256)"
    )
    ph.add_argument("--bias", action="store_true", help="with nn.Linear's default bias")
    ph.add_argument("--out", help="also write the figure (PNG) to this file")
    ph.add_argument("--json", action="store_true", help="machine-readable output")
    ph.set_defaults(run=_cmd_phase)


def _add_sweep(add_parser: AddParser) -> None:
    w = add_parser("sweep", help="run a sweep and save its tables")
    w.add_argument(
        "--schemes",
        type=_split_specs,
        required=True,
        help="comma list of scheme specs, wildcards, or 'all'",
    )
    w.add_argument("--activations", type=_split_specs, default=["linear", "tanh", "relu"])
    w.add_argument("--depths", type=_int_list, default=[10, 100])
    w.add_argument("--widths", type=_int_list, default=[256])
    w.add_argument("--batch", type=_int_arg, default=16)
    w.add_argument("--seeds", type=_int_arg, default=1, help="number of seeds (0..N-1)")
    w.add_argument("--devices", type=_str_list, default=["cpu"])
    w.add_argument("--dtypes", type=_str_list, default=["float32"])
    w.add_argument("--archs", "--arch", dest="archs", type=_split_specs, default=["mlp"],
                   help="comma list of architectures: mlp, conv:kernel=3,image=8, "
                   "resmlp:branch=2,scale=1|inv_sqrt_depth|zero (--arch: its old name, "
                   "deprecated)")  # fmt: skip
    w.add_argument("--bias", nargs="?", const="torch_default", default=None, metavar="LAW",
                   help="Linear layers with bias drawn by LAW (torch_default: nn.Linear's "
                   "U(±1/√fan_in), the default)")  # fmt: skip
    w.add_argument(
        "--explode-at",
        type=_float_arg,
        default=None,
        help="also flag std above this multiple of the input std",
    )
    w.add_argument(
        "--vanish-at",
        type=_float_arg,
        default=None,
        help="also flag std below this multiple of the input std",
    )
    w.add_argument("--no-timing", action="store_true", help="skip the timing pass")
    w.add_argument("--jacobian", action="store_true",
                   help="also record each cell's input-output Jacobian spectrum")  # fmt: skip
    w.add_argument("--backward", action="store_true",
                   help="also back-propagate a random read-out: gradient std and weight-"
                   "gradient norm per layer")  # fmt: skip
    w.add_argument("--pair-cosine", type=_cosine_arg, default=0.5,
                   help="cosine of the c-map's input pair (0.5; 'none': no pair)")  # fmt: skip
    w.add_argument("--no-shared", action="store_true",
                   help="draw every scheme on its own (no common random numbers)")  # fmt: skip
    w.add_argument("--timing-repeats", type=_int_arg, default=7)
    _add_sweep_run(w)
    w.set_defaults(run=_cmd_sweep)


def _add_sweep_run(w: argparse.ArgumentParser) -> None:
    """``sweep``'s options on where and how it runs (the grid's are in :func:`_add_sweep`)."""
    w.add_argument("--out", required=True,
                   help="results directory, written in chunks as cells finish")  # fmt: skip
    w.add_argument(
        "--resume",
        action="store_true",
        help="continue a sweep in --out: skip the cells already stored there",
    )
    w.add_argument("--overwrite", action="store_true",
                   help="replace a results directory initsuite wrote")  # fmt: skip
    w.add_argument(
        "--executor",
        choices=["local", "dask"],
        default="local",
        help="run groups of cells in process (local) or on a Dask cluster",
    )
    w.add_argument(
        "--scheduler",
        default=None,
        help="Dask scheduler address (default: a local cluster of 2 workers)",
    )
    w.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    w.add_argument("--verbose", action="store_true", help="log each chunk written")
    w.add_argument("--allow-large", action="store_true",
                   help="run a sweep estimated to take over an hour (its estimate is "
                   "printed first); without it such a sweep exits 2")  # fmt: skip


def _add_train(add_parser: AddParser) -> None:
    n = add_parser("train", help="train the MLP from each scheme (does the init learn?)")
    n.add_argument(
        "--schemes",
        type=_split_specs,
        required=True,
        help="comma list of scheme specs, wildcards, or 'all'",
    )
    n.add_argument("--activations", type=_split_specs, default=["relu"])
    n.add_argument("--depth", type=_int_arg, default=30, help="Linear layers in all (30)")
    n.add_argument("--width", type=_int_arg, default=128, help="hidden units (128)")
    n.add_argument("--seeds", type=_int_arg, default=3, help="number of seeds (0..N-1)")
    n.add_argument("--steps", type=_int_arg, default=400)
    n.add_argument("--lr", type=_float_arg, default=0.002)
    n.add_argument("--optimizer", default="sgd", help="sgd (with --momentum) or adam")
    n.add_argument("--momentum", type=_float_arg, default=None,
                   help="SGD's momentum, in [0, 1) (default 0.9); adam takes none")  # fmt: skip
    n.add_argument("--batch", "--batch-size", dest="batch", type=_int_arg, default=64,
                   help="examples per SGD step (64; --batch-size is its old name)")  # fmt: skip
    n.add_argument(
        "--threshold",
        type=_float_arg,
        default=0.5,
        help="train loss to reach (steps_to_threshold; chance is ln 10 = 2.30)",
    )
    n.add_argument(
        "--eval-every", type=_int_arg, default=10, help="steps between full train/test evaluations"
    )
    n.add_argument("--bias", nargs="?", const="zeros", default=None, metavar="LAW",
                   help="Linear layers with bias starting at LAW (zeros, the default)")  # fmt: skip
    n.add_argument("--dataset", default="digits")
    n.add_argument("--device", default="cpu")
    n.add_argument("--dtype", default="float32")
    n.add_argument("--out", required=True, help="results directory (must not hold results)")
    n.add_argument("--overwrite", action="store_true")
    n.add_argument("--quiet", action="store_true")
    n.set_defaults(run=_cmd_train)


def _add_probe(add_parser: AddParser) -> None:
    pb = add_parser("probe", help="probe any model: per-module std of its forward "
                        "(and backward) pass, from its own init and from schemes")  # fmt: skip
    pb.add_argument("factory", help="a model by name, built from code with no download: "
                    "timm:NAME, torchvision:NAME or hf:MODEL_TYPE, each with KEY=VALUE "
                    "overrides (hf:gpt2,n_layer=24,n_embd=256); or package.module:callable "
                    "returning an nn.Module (the current directory is importable)")  # fmt: skip
    pb.add_argument("--input-shape", type=_int_list, default=None,
                    help="shape of the model's one input, e.g. 16,3,32,32 (inferred for a "
                    "model by name: --batch images of its size, or --batch × 128 "
                    "tokens)")  # fmt: skip
    pb.add_argument("--batch", type=_int_arg, default=2,
                    help="examples in an inferred input (default 2)")  # fmt: skip
    pb.add_argument("--tokens", type=_int_arg, default=None, metavar="VOCAB",
                    help="integer token ids in [0, VOCAB) instead of N(0, 1) values (a text "
                    "model's vocabulary by default)")  # fmt: skip
    pb.add_argument("--max-parameters", type=_max_parameters, default=argparse.SUPPRESS,
                    metavar="N",
                    help="refuse a model by name with more parameters (default 5e8; 'none': "
                    "no limit)")  # fmt: skip
    pb.add_argument("--schemes", type=_split_specs, default=[],
                    help="comma list of scheme specs, wildcards or framework conventions "
                    "(flax, keras, ...); the model's own init ('as_built') is always probed "
                    "first")  # fmt: skip
    pb.add_argument("--activation", default=None,
                    help="activation after the layers, for gain=auto")  # fmt: skip
    pb.add_argument("--include-embeddings", action="store_true",
                    help="let the schemes draw nn.Embedding weights too")  # fmt: skip
    pb.add_argument("--mode", default="train", help="train (default) or eval")
    pb.add_argument("--backward", action="store_true",
                    help="also back-propagate a random read-out: gradient std per "
                    "module")  # fmt: skip
    pb.add_argument("--seed", type=_int_arg, default=0)
    pb.add_argument("--timeout", type=_timeout_arg, default=argparse.SUPPRESS, metavar="SECONDS",
                    help=f"limit for importing the factory's module and for each model, built "
                    f"and probed (default {PROBE_TIMEOUT:g}; 'none': no limit)")  # fmt: skip
    pb.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2,...",
                    help="sweep an override of a model by name, e.g. n_layer=6,12,24 (repeat "
                    "for a grid): one model per point, in one table")  # fmt: skip
    pb.add_argument("--autocasts", "--dtypes", dest="autocasts", type=_split_specs,
                    default=["float32"], metavar="P1,P2,...",
                    help="precisions of the forward pass: float32 (no autocast), bfloat16, "
                    "float16 (torch.autocast); each model is probed at each (default "
                    "float32; --dtypes: its old name, deprecated)")  # fmt: skip
    pb.add_argument("--device", default="cpu")
    pb.add_argument("--dtype", default="float32",
                    help="dtype of the model's parameters (default float32)")  # fmt: skip
    pb.add_argument("--out", required=True, help="results directory (must not hold results)")
    pb.add_argument("--overwrite", action="store_true")
    pb.add_argument("--no-report", action="store_true", help="write the tables only")
    pb.add_argument("--quiet", action="store_true")
    pb.set_defaults(run=_cmd_probe)


def _add_report(add_parser: AddParser) -> None:
    r = add_parser("report", help="write report.md and figures for a results directory")
    r.add_argument("dir", help="results directory: a sweep, a probe, or 'initsuite reproduce "
                   "isometry/frameworks/zoo'")  # fmt: skip
    r.add_argument("--tutorial", default=None, help="a 'reproduce tutorial' directory to include")
    r.add_argument("--training", default=None, help="an 'initsuite train' directory to include")
    r.add_argument("--compare", default=None, metavar="BASE",
                   help="an earlier sweep to compare with (a 'Compared with' section)")  # fmt: skip
    r.add_argument("--out", default=None, help="where to write (default: DIR)")
    r.add_argument("--partial", action="store_true",
                   help="report a sweep that did not finish (a note says how much)")  # fmt: skip
    r.add_argument("--html", action="store_true",
                   help="also write report.html: one self-contained page, interactive figures, "
                   "sortable tables (needs plotly)")  # fmt: skip
    r.add_argument("--benchmarks", default=None, metavar="FILE.json",
                   help="a pytest-benchmark JSON file (make bench: RUN/benchmarks.json): a "
                   "'Benchmarks' section, each median over its group's reference")  # fmt: skip
    r.add_argument("--benchmarks-previous", default=None, metavar="FILE.json",
                   help="the previous run's JSON: this run over it per benchmark, rows past "
                   "--benchmark-gate marked")  # fmt: skip
    r.add_argument("--benchmark-gate", default=None, metavar="GATE",
                   help="in pytest-benchmark's --benchmark-compare-fail syntax (default "
                   "median:25%%; 'none': no gate)")  # fmt: skip
    r.set_defaults(run=_cmd_report)


def _add_compare(add_parser: AddParser) -> None:
    c = add_parser("compare", help="line up the cells of two sweeps: what changed, and "
                       "regression gates for CI")  # fmt: skip
    c.add_argument("base", help="results directory compared against (e.g. the previous run)")
    c.add_argument("new", help="results directory under test")
    c.add_argument("--fail", default=None, metavar="GATES",
                   help="exit 1 when a gate is exceeded, e.g. final_std:10%%,divergence_layer:0,"
                   "init_ms:20%%; metrics: final_std, growth_per_layer (band on new/base), "
                   "divergence_layer (layers moved), init_ms, forward_ms (slower only), "
                   "missing (base cells absent from new)")  # fmt: skip
    c.add_argument("--partial", action="store_true",
                   help="compare a sweep that did not finish (a note says how much; the cells "
                   "it lacks fail only a missing:N gate)")  # fmt: skip
    c.add_argument(
        "--top", type=_int_arg, default=10, help="changed cells to list (10; also in --out)"
    )
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.add_argument("--out", default=None, metavar="FILE.md",
                   help="also write the comparison as Markdown")  # fmt: skip
    c.add_argument("--html", default=None, metavar="FILE.html",
                   help="also write the comparison as one self-contained HTML page (sortable "
                   "tables)")  # fmt: skip
    c.set_defaults(run=_cmd_compare)


def _add_reproduce(add_parser: AddParser) -> None:
    t = add_parser("reproduce", help="reproduce a classic study")
    t.add_argument("study", choices=["tutorial", "isometry", "frameworks", "zoo"],
                   help="which study")  # fmt: skip
    t.add_argument("--out", required=True, help="results directory (must not hold results)")
    t.add_argument("--seeds", type=_int_arg, default=None,
                   help="number of seeds (tutorial: 10, isometry: 2, frameworks: 2)")  # fmt: skip
    t.add_argument("--laws", type=_split_specs, default=None,
                   help="frameworks: conventions or scheme specs to apply, comma-separated "
                   "(default: torch,flax,keras,hf_bert,timm_vit)")  # fmt: skip
    t.add_argument("--train-steps", type=_int_arg, default=None,
                   help="frameworks: SGD steps of each law's digits MLP (default 400; 0: no "
                   "training)")  # fmt: skip
    t.add_argument("--models", default=None, metavar="SOURCES",
                   help="zoo: model sources, comma-separated, a KEY=VALUE item overriding the "
                   "model before it, e.g. timm:resnet50,hf:gpt2,n_layer=6 (default: ResNet-50, "
                   "ConvNeXt-T, ViT-S, GPT-2 and BERT depth sweeps from transformers)")  # fmt: skip
    t.add_argument("--schemes", type=_split_specs, default=None,
                   help="zoo: schemes every model gets after as_built (default: kaiming_normal,"
                   "xavier_normal,normal:std=0.02; gpt2 or lsuv added by kind)")  # fmt: skip
    t.add_argument("--max-parameters", type=_max_parameters, default=argparse.SUPPRESS,
                   metavar="N", help="zoo: refuse a model with more parameters (default 5e8; "
                   "'none': no limit)")  # fmt: skip
    t.add_argument("--overwrite", action="store_true")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(run=_cmd_reproduce)


def _add_conventions(add_parser: AddParser) -> None:
    c = add_parser("conventions", help="each framework's layer defaults (torch, flax, keras, "
                   "timm, hf, ...), or where two differ")  # fmt: skip
    c.add_argument("framework", nargs="*", help="conventions to show (default: all)")
    c.add_argument("--diff", nargs=2, metavar=("A", "B"),
                   help="only the layers and parameters where A and B differ")  # fmt: skip
    c.add_argument("--layer", help="one layer type, e.g. linear, embedding, layer_norm")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.add_argument("--markdown", action="store_true", help="a Markdown report section")
    c.add_argument("--html", default=None, metavar="FILE.html",
                   help="also write it as one self-contained HTML page")  # fmt: skip
    c.set_defaults(run=_cmd_conventions)


_COMMANDS = (_add_schemes, _add_activations, _add_gains, _add_phase, _add_sweep, _add_train,
             _add_probe, _add_report, _add_compare, _add_reproduce,
             _add_conventions)  # fmt: skip
"""One ``_add_<command>`` per subcommand, in ``initsuite --help``'s order."""


def _build_parser() -> tuple[_Parser, dict[str, _Parser]]:
    """The ``initsuite`` parser, and each subcommand's parser by name."""
    p = _Parser(prog="initsuite", description="Benchmark neural-network weight initialization.")
    p.add_argument("--version", action="version", version=f"initsuite {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands: dict[str, _Parser] = {}

    def add_parser(name: str, **kwargs: Any) -> _Parser:
        commands[name] = sub.add_parser(name, **kwargs)
        return commands[name]

    for add in _COMMANDS:
        add(add_parser)
    return p, commands


def _print_table(df: pd.DataFrame, as_json: bool) -> None:
    import pandas as pd

    if as_json:
        print(json.dumps(df.to_dict(orient="records"), indent=2, default=str))
    else:
        options = ("display.width", 200, "display.max_colwidth", 60, "display.max_rows", None,
                   "display.float_format", "{:.4g}".format)  # fmt: skip
        with pd.option_context(*options):
            print(df.to_string(index=False))


def _check_outputs(**outputs: tuple[str | None, Mode]) -> None:
    """A command's output flags (``out=(args.out, "file")``; None: not given) through the one
    output check, before anything is computed: no file replaced that initsuite did not write,
    nothing inside a results directory, no path given for two outputs."""
    from initsuite.results.outputs import check_outputs

    check_outputs(outputs)


def _cmd_schemes(args: argparse.Namespace) -> int:
    from initsuite.core import catalog, patterns

    rows = catalog.load()  # the built-in schemes without torch, when no package adds any
    if rows is None:
        from initsuite import schemes

        matched = schemes.list(args.pattern)  # a malformed pattern raises: exit 2
        if matched:
            table = schemes.table()
            rows = table[table["scheme"].isin(matched)].to_dict(orient="records")
    else:
        if args.pattern is not None:
            patterns.check_pattern(args.pattern)
        rows = [r for r in rows if args.pattern is None
                or patterns.matches(str(r["scheme"]), args.pattern)]  # fmt: skip
        matched = [str(r["scheme"]) for r in rows]
    if not matched:  # like grep: exit 1 when nothing matches
        if args.json:
            print("[]")
        print(f"initsuite: no scheme matches {args.pattern!r} (initsuite schemes lists all)",
              file=sys.stderr)  # fmt: skip
        return 1
    if args.json:  # no pandas either
        print(json.dumps(rows, indent=2, default=str))
        return 0
    import pandas as pd

    _print_table(pd.DataFrame.from_records(rows).drop(columns=["summary"]), False)
    return 0


def _cmd_conventions(args: argparse.Namespace) -> None:
    from initsuite.schemes import conventions as conv

    if args.json and args.markdown:
        raise InitsuiteError("--json and --markdown: pick one")
    if args.diff and args.framework:
        raise InitsuiteError("--diff A B compares two conventions: give no others")
    if args.html is not None:
        from initsuite.report.comparison import check_tabulate
        from initsuite.report.html import check_markdown

        check_tabulate()
        check_markdown()
    _check_outputs(html=(args.html, "file"))
    if args.diff:
        table = conv.diff(args.diff[0], args.diff[1], layer=args.layer)
    else:
        table = conv.conventions(args.framework or None, layer=args.layer)
    title = f"{args.diff[0]} vs {args.diff[1]}" if args.diff else "Framework conventions"
    if args.html is not None:
        from initsuite.report.conventions import conventions_page
        from initsuite.results import store

        store.atomic_write_text(args.html, conventions_page(table, title))
    if args.markdown:
        from initsuite.report.conventions import conventions_section

        print(conventions_section(table, title))
    elif args.json:
        _print_table(table, True)
    else:
        drop = ["note", "framework", "source"] if not args.diff else []
        _print_table(table.drop(columns=drop), False)
        if args.html is not None:  # not after --json or --markdown: they are read by machines
            print(f"wrote {args.html}")


def _cmd_activations(args: argparse.Namespace) -> None:
    from initsuite import activations

    _print_table(activations.table(), args.json)


def _cmd_gains(args: argparse.Namespace) -> None:
    from initsuite.theory.gains import gains

    _print_table(gains(), args.json)
    if not args.json:
        print(
            "\nvariance_gain keeps q = E[h²] at 1; std_ratio keeps the first layer's output std"
            "\nat the input's; fixed_point_* is where a deep net with auto_gain settles; chi1 > 1"
            "\nmeans chaotic (inputs decorrelate), < 1 ordered. 'any (scale-invariant)': for"
            "\nReLU, leaky ReLU and linear every q is a fixed point at the auto gain, so a net"
            "\nkeeps the scale its input gives it; the values shown are for a unit-variance"
            "\ninput (q = gain² at every layer). See initsuite/theory/gains.py."
        )


def _cmd_phase(args: argparse.Namespace) -> None:
    from initsuite import activations, schemes
    from initsuite.core import validate
    from initsuite.theory import phase

    _check_outputs(out=(args.out, "file"))
    if args.out:
        from initsuite.report.figures import check_png_name

        check_png_name(args.out)
    act = activations.get(args.activation)
    width = validate.count("width", args.width)
    points = phase.scheme_points(act, args.schemes, width, args.bias)
    _print_table(points, args.json)
    if not args.json:
        sigma_b2 = schemes.default_bias_variance(width) if args.bias else 0.0
        crit = phase.critical_sigma_w2(act, sigma_b2)
        print(f"\ncritical σ_w² (χ₁ = 1) for {act.spec} at this σ_b²: {crit:.4g}")
    if args.out:
        from initsuite.report import plot_phase_diagram, save_figure

        save_figure(plot_phase_diagram(phase.phase_diagram(act), points), args.out)
        if not args.json:
            print(f"wrote {args.out}")


def _cmd_sweep(args: argparse.Namespace) -> None:
    import logging
    from pathlib import Path

    from initsuite.results import store
    from initsuite.studies.sweep import SweepConfig, sweep

    if args.verbose:
        logging.basicConfig(format="%(name)s: %(message)s")
        logging.getLogger("initsuite").setLevel(logging.INFO)
    if args.resume and args.overwrite:
        raise InitsuiteError("--resume continues a sweep and --overwrite replaces it: pick one")
    if args.scheduler and args.executor != "dask":
        raise InitsuiteError("--scheduler is for --executor dask")
    cfg = SweepConfig.build(
        args.schemes, args.activations, args.depths, args.widths,
        batch=args.batch, seeds=args.seeds, devices=args.devices, dtypes=args.dtypes,
        archs=args.archs, bias=args.bias, explode_at=args.explode_at, vanish_at=args.vanish_at,
        timing=not args.no_timing, timing_repeats=args.timing_repeats,
        shared=not args.no_shared, jacobian=args.jacobian, pair_cosine=args.pair_cosine,
        backward=args.backward,
    )  # fmt: skip
    if args.overwrite and args.executor != "local":
        raise InitsuiteError("--overwrite runs in process; use a new --out for --executor")
    store.check_output(args.out, "replace" if args.overwrite else
                       "append" if args.resume else "new")  # fmt: skip
    command = args.command_line
    progress = False if args.quiet else None
    executor = None
    if args.executor == "dask":
        from initsuite.studies.sweep.executors import DaskExecutor

        executor = DaskExecutor(args.scheduler)
    try:
        result = sweep(cfg, progress=progress, out_dir=args.out, resume=args.resume,
                       overwrite=args.overwrite, executor=executor,
                       allow_large=args.allow_large, command=command)  # fmt: skip
    finally:
        if executor is not None:
            executor.close()
    path = Path(args.out)
    if not args.quiet:
        _print_table(result.summary(), as_json=False)
        print(f"\nwrote {len(result.cells)} cells, {len(result.layers)} layer rows to {path}")


def _cmd_report(args: argparse.Namespace) -> None:
    import warnings

    from initsuite.report import PartialReportWarning, write_report

    gate: dict[str, str | None] = {}  # absent: the API's default gate; "none": no gate
    if args.benchmark_gate is not None:
        gate["benchmark_gate"] = None if args.benchmark_gate == "none" else args.benchmark_gate
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PartialReportWarning)
        path = write_report(args.dir, tutorial_dir=args.tutorial, training_dir=args.training,
                            compare_dir=args.compare, out_dir=args.out,
                            partial=args.partial, html=args.html, benchmarks=args.benchmarks,
                            benchmarks_previous=args.benchmarks_previous, **gate)  # fmt: skip
    for w in caught:  # ours as one line; any other warning as Python would show it
        if issubclass(w.category, PartialReportWarning):
            print(f"initsuite: warning: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    print(f"wrote {path}" + (f" and {path.with_name('report.html')}" if args.html else ""))


def _cmd_compare(args: argparse.Namespace) -> int:
    from initsuite.report.comparison import (
        check_tabulate,
        check_top,
        compare_document,
        compare_page,
        compare_text,
    )
    from initsuite.results import store
    from initsuite.results.comparison import compare
    from initsuite.results.gates import parse_gates
    from initsuite.results.sweep import SweepResult

    gates = parse_gates(args.fail) if args.fail is not None else None
    check_top(args.top)
    if args.out is not None or args.html is not None:
        check_tabulate()
    if args.html is not None:
        from initsuite.report.html import check_markdown

        check_markdown()
    _check_outputs(out=(args.out, "file"), html=(args.html, "file"))
    result = compare(SweepResult.load(args.base), SweepResult.load(args.new), gates=gates,
                     labels=(args.base, args.new), partial=args.partial)  # fmt: skip
    if args.out is not None:
        store.atomic_write_text(args.out, compare_document(result, top=args.top))
    if args.html is not None:
        store.atomic_write_text(args.html, compare_page(result, top=args.top))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(compare_text(result, top=args.top))
        written = [p for p in (args.out, args.html) if p is not None]
        if written:
            print(f"\nwrote {' and '.join(written)}")
    return 0 if result.passed else 1


def _cmd_train(args: argparse.Namespace) -> None:
    from initsuite.results import store
    from initsuite.studies.training import train

    store.check_output(args.out, "replace" if args.overwrite else "new")
    result = train(
        args.schemes, args.activations, args.depth, args.width, seeds=args.seeds, steps=args.steps,
        lr=args.lr, optimizer=args.optimizer, momentum=args.momentum,
        batch=args.batch, threshold=args.threshold, eval_every=args.eval_every,
        bias=args.bias, dataset=args.dataset, device=args.device, dtype=args.dtype,
        progress=False if args.quiet else None,
    )  # fmt: skip
    result.meta["command"] = args.command_line
    path = result.save(args.out, overwrite=args.overwrite)
    if not args.quiet:
        _print_table(result.summary(), as_json=False)
        print(f"\nwrote {len(result.runs)} runs to {path}")


def _cmd_probe(args: argparse.Namespace) -> None:
    import os

    from initsuite.results import store
    from initsuite.studies.probe_factory import probe_factory
    from initsuite.studies.user_code import timeout_available

    # not given: the default limit, where the platform has one
    timeout = getattr(args, "timeout", PROBE_TIMEOUT if timeout_available() else None)
    store.check_output(args.out, "replace" if args.overwrite else "new")
    if not args.no_report:
        from initsuite.report.probe_report import check_dependencies

        check_dependencies()
    # like `python -m`, let FACTORY name a module in the current directory
    saved_path = list(sys.path)
    sys.path.insert(0, os.getcwd())
    try:
        limit = {"max_parameters": args.max_parameters} if "max_parameters" in args else {}
        result = probe_factory(
            args.factory, args.input_shape, schemes=args.schemes, tokens=args.tokens,
            batch=args.batch, **limit,
            activation=args.activation, backward=args.backward, seed=args.seed,
            device=args.device, dtype=args.dtype, mode=args.mode,
            include_embeddings=args.include_embeddings, autocasts=args.autocasts, vary=args.vary,
            progress=False if args.quiet else None, timeout=timeout,
        )  # fmt: skip
    finally:
        sys.path[:] = saved_path
    result.meta["command"] = args.command_line
    path = result.save(args.out, overwrite=args.overwrite)
    if not args.no_report:
        from initsuite.report.probe_report import write_probe_report

        write_probe_report(path)
    if not args.quiet:
        _print_table(result.summary(), as_json=False)
        print(f"\nwrote {len(result.calls)} module calls to {path}")


def _cmd_reproduce(args: argparse.Namespace) -> None:
    from initsuite.results import store
    from initsuite.studies.reproduce import reproduce

    store.check_output(args.out, "replace" if args.overwrite else "new")
    for flag, value, owner in (("--laws", args.laws, "frameworks"),
                               ("--train-steps", args.train_steps, "frameworks"),
                               ("--models", args.models, "zoo"),
                               ("--schemes", args.schemes, "zoo"),
                               ("--max-parameters", True if "max_parameters" in args else None,
                                "zoo")):  # fmt: skip
        if value is not None and args.study != owner:
            raise InitsuiteError(f"{flag} belongs to 'reproduce {owner}', not {args.study!r}")
    if args.seeds is not None and args.study == "zoo":
        raise InitsuiteError("--seeds does not apply to 'reproduce zoo' (one seed, 0: its "
                             "models differ by architecture, not by draw)")  # fmt: skip
    study = reproduce(args.study, **_reproduce_settings(args))
    study.meta["command"] = args.command_line
    path = study.save(args.out, overwrite=args.overwrite)
    if args.quiet:
        return
    if args.study == "tutorial":
        cols = ["experiment", "quantity", "expected", "measured_mean", "measured_sd",
                "tolerance", "agree"]  # fmt: skip
        _print_table(study.claims[cols], as_json=False)
        print(f"\nwrote {path}")
    elif args.study == "isometry":
        print(f"wrote {len(study.spectra)} singular values to {path}")
    elif args.study == "frameworks":
        print(f"wrote {len(study.runs)} runs, {len(study.layers)} layer rows and "
              f"{len(study.training_runs)} training runs to {path}")  # fmt: skip
    else:
        n = len(study.meta["models"])
        print(f"wrote {len(study.calls)} module calls of {n} model{'s' if n != 1 else ''} "
              f"to {path} ({study.meta['seconds']:.0f} s)")  # fmt: skip


def _reproduce_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword settings of ``initsuite.reproduce(args.study, ...)`` that the flags give (a
    flag left out keeps the study's default; each flag's study was checked)."""
    models = args.models
    if models is not None:
        from initsuite.studies.zoo import split_models

        models = split_models(models)
    given = {"seeds": args.seeds, "laws": args.laws, "train_steps": args.train_steps,
             "models": models, "schemes": args.schemes}  # fmt: skip
    settings = {k: v for k, v in given.items() if v is not None}
    if "max_parameters" in args:
        settings["max_parameters"] = args.max_parameters
    if args.study in ("tutorial", "zoo"):
        settings["progress"] = False if args.quiet else None
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``initsuite`` command; returns the exit status."""
    parser, commands = _build_parser()
    args = parser.parse_args(argv)
    # what meta.json records: the arguments parsed here, not the host process's (pytest, Dask)
    args.command_line = " ".join(["initsuite", *(sys.argv[1:] if argv is None else argv)])
    stdout, sys.stdout = sys.stdout, _Stdout(sys.stdout)
    try:
        code = args.run(args)
        sys.stdout.flush()  # a full device fails here, named, not at exit
    except InitsuiteError as exc:
        message = exc.render(_flag(commands[args.command].flags))
        print(_one_line(f"initsuite: error: {message}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("initsuite: interrupted; what was stored is complete (a sweep with --out keeps "
              "its finished chunks: rerun it with --resume)", file=sys.stderr)  # fmt: skip
        return 130
    except BrokenPipeError:  # e.g. `initsuite schemes | head`
        return 0
    except OSError as exc:  # what the checks before computing could not foresee (disk full)
        # the path the command was writing: its output flag's (a report's --html is a switch)
        named = (getattr(args, dest, None) for dest in ("out", "html", "dir"))
        where = next((p for p in named if isinstance(p, str)), None) or exc.filename
        print(_one_line(f"initsuite: error: cannot write {where}: {exc.strerror or exc}"),
              file=sys.stderr)  # fmt: skip
        return 2
    finally:
        sys.stdout = stdout
    return code or 0  # compare returns 1 when a gate is exceeded, schemes when none matches


if __name__ == "__main__":
    sys.exit(main())

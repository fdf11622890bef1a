"""Property-based fuzzing of the command line (issue 12): argument lists for every subcommand,
mixing valid values with bad ones (unknown flags, negative, zero, fractional, huge, 'nan' and
unicode numbers, malformed specs, empty strings, missing required arguments).

The property, for every generated list run in process through ``main``:

- exit 0 (a command that is not ``--quiet`` printed something), or exit 1 where that is a
  verdict (``compare`` gates, ``schemes`` matching nothing); or
- exit 2 with exactly one line on stderr, starting ``initsuite``, no traceback, and nothing
  written: the example's directory and the stored runs it reads are byte for byte as before.

Files that were there before (a user's file, a directory holding one) are never changed,
whatever the exit status. Every generated sweep is tiny (depths and widths of a few units), so
the suite's time budget holds; commands whose valid run takes seconds (phase, report, train,
reproduce) always get at least one bad argument. The example budget is fixed and derandomised
(tests/conftest.py), so every run tries the same lists. Values listed as bad must be refused
(exit 2; checked one at a time too); dubious ones and random text may go either way. Bad
input that each item of issue 12 fixed is a named family: see ``FAMILIES``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import run_cli
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import initsuite

# Families of bad input, each with the item of issue 12 that fixed it. All are on;
# INITSUITE_FUZZ_SKIP (a comma list of families) leaves some out while bisecting a regression.
FAMILIES: dict[str, str] = {
    "scheme_params_out_of_range": "items 3, 10, 14: normal:std=-1, uniform:a=1,b=0, "
                                  "xavier_uniform:gain=-1, sparse:sparsity=2 give numbers or a "
                                  "traceback instead of exit 2",
    "huge_sizes": "item 11: --widths 1000000, --depths 1000000000, --batch, --seeds, "
                  "--steps of 10^9 allocate or run until killed",
    "empty_out": "item 21 (second bullet): --out '' writes into the current directory",
    "bad_out_paths": "item 15: --out under a file, in /proc, a 300-character name, "
                     "phase --out DIR: OSError tracebacks",
    "overwrite_foreign": "item 1: --overwrite deletes a directory initsuite did not write",
    "foreign_outputs": "issue 27, items 5-8: compare --out/--html, conventions --html and phase "
                       "--out replace a user's file, write into a stored run, or take one path "
                       "for two outputs",
}  # fmt: skip
_skipped = {f for f in os.environ.get("INITSUITE_FUZZ_SKIP", "").split(",") if f}
ENABLED: frozenset[str] = frozenset(FAMILIES) - _skipped

# examples per subcommand: a few seconds in all (each valid sweep is ~0.1 s); the variable
# INITSUITE_FUZZ_EXAMPLES multiplies them for a longer search by hand
_SCALE = int(os.environ.get("INITSUITE_FUZZ_EXAMPLES", "1"))
EXAMPLES = 12 * _SCALE
HEAVY_EXAMPLES = 8 * _SCALE  # commands that always get a bad argument: cheap


def family(name: str, *values: str) -> list[str]:
    """``values`` unless the family ``name`` is skipped."""
    assert name in FAMILIES, name
    return list(values) if name in ENABLED else []


# --- the vocabulary --------------------------------------------------------------------------
# Placeholders, filled per example: {out} a fresh path in the example's directory, {file} a
# user's file there, {full} a directory holding a user's file, {missing} a path that does not
# exist, {base}/{new} two stored tiny sweeps, {probe} a stored probe run, {factory} the test's
# model factory module, {same} one fresh path that two output flags may both draw.

UNKNOWN_FLAGS = ["--bogus", "-z", "--schemes-x", "--jsn", "--quiet=1"]
ODD_FLAGS = ["--", "—out"]  # may be read as a positional value: refused or not
BAD_NUMBERS = ["0", "-1", "-0", "2.5", "1e3", "nan", "inf", "x", "", " ", "1,", "٣.٥", "１.５",
               "0x10", "1_0e"]  # fmt: skip
BAD_SIZES = ["0", "-1", "2.5", "nan", "x", "", ",", "1,,0", "3,-2", "²", "1e2"]
BAD_FLOATS = ["nan", "-1", "-inf", "x", "", "1,5"]
ODD_FLOATS = ["inf", "1e400", "٣"]  # infinity (never flag), an Arabic-Indic 3: either way
BAD_SCHEMES = ["", ",", "nope", "kaimng_normal", "normal:", "normal:std", "normal:std=",
               "normal:std=x", "normal:bogus=1", "normal:std=1,std=2", ":", "[", "normal:=1",
               "ü", "orthogonal:gain=nan", "normal:std=inf",
               "constant", "eye:gain=1", *family("scheme_params_out_of_range",
               "normal:std=-1", "uniform:a=1,b=0", "xavier_uniform:gain=-1",
               "sparse:sparsity=2", "trunc_normal:a=2,b=1")]  # fmt: skip
BAD_ACTIVATIONS = ["", "nope", "leaky_relu:negative_slope=x", "tanh:", "relu:x=1", "ReLU!", "ж"]
BAD_PATHS_OUT = ["{file}", "{full}", *family("empty_out", ""),
                 *family("bad_out_paths", "{file}/sub", "/proc/initsuite-fuzz/x",
                          "{out}" + "n" * 300)]  # fmt: skip
# a file output onto a user's file or into a stored run (its meta.json, a new file in it, its
# figures): refused, and neither changes (issue 27)
FOREIGN_FILES = family("foreign_outputs", "{file}", "{base}/meta.json", "{base}/x.md",
                       "{new}/figures/x.png")  # fmt: skip
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)


@dataclass(frozen=True)
class Opt:
    """One argument: its flag (None: positional), values that work, values that do not."""

    flag: str | None
    valid: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # must be refused: exit 2
    odd: list[str] = field(default_factory=list)  # dubious: exit 0 or a clean exit 2
    required: bool = False
    switch: bool = False  # a flag without a value
    small: bool = False  # always given (valid or bad): its default would make a run long
    text: bool = False  # also random text as a bad value (never a number: that could be huge)


@dataclass(frozen=True)
class Command:
    name: str
    opts: list[Opt]
    heavy: bool = False  # a valid run takes seconds: always give it something bad
    always: list[str] = field(default_factory=list)  # e.g. --quiet, --no-report
    verdict: bool = False  # exit 1 is an answer, not an error


SCHEMES = Opt("--schemes", ["normal", "kaiming_normal,zeros", "xavier_uniform:gain=auto",
                            "kaiming*", "orthogonal:gain=2"], BAD_SCHEMES, required=True,
              text=True)  # fmt: skip
OUT = Opt("--out", ["{out}"], BAD_PATHS_OUT, required=True)

COMMANDS: dict[str, Command] = {c.name: c for c in [
    Command("schemes", [Opt(None, ["*", "kaiming*", "normal", "xavier_?niform", "[kx]*",
                                   "foo*", "[]x]avier_normal"],
                            ["[", "", "kai[", "[!", "x[]"], text=True),
                        Opt("--json", switch=True)], verdict=True),
    Command("activations", [Opt("--json", switch=True)]),
    Command("gains", [Opt("--json", switch=True)]),
    Command("phase", [
        Opt("--activation", ["relu", "linear"], BAD_ACTIVATIONS, required=True, text=True),
        Opt("--schemes", ["normal", "kaiming_normal,orthogonal"], BAD_SCHEMES, text=True),
        Opt("--width", ["4", "64"], BAD_NUMBERS),
        Opt("--bias", switch=True), Opt("--json", switch=True),
        Opt("--out", ["{out}.png"], [*family("bad_out_paths", "{full}", "{file}/x.png"),
                                     *FOREIGN_FILES]),
    ], heavy=True),
    Command("sweep", [
        SCHEMES,
        Opt("--activations", ["tanh", "relu,linear"], BAD_ACTIVATIONS, text=True, small=True),
        Opt("--depths", ["1", "2,3"], [*BAD_SIZES, *family("huge_sizes", "1000000000")],
            small=True),
        Opt("--widths", ["2", "4,3"], [*BAD_SIZES, *family("huge_sizes", "1000000")],
            small=True),
        Opt("--batch", ["1", "3"], [*BAD_NUMBERS, *family("huge_sizes", "1000000000")]),
        Opt("--seeds", ["1", "2"], [*BAD_NUMBERS, *family("huge_sizes", "1000000000")]),
        Opt("--dtypes", ["float32", "float64,float32"], ["float8", "int32", "", "bfloat17"],
            text=True),
        Opt("--devices", ["cpu"], ["gpu", "tpu", "", "cpu,cpu:x"], text=True),
        Opt("--arch", ["mlp"], ["cnn", "conv:kernel=0", "resmlp:scale=bogus", ""], text=True),
        Opt("--explode-at", ["10"], BAD_FLOATS, ODD_FLOATS),
        Opt("--vanish-at", ["0.1"], BAD_FLOATS, ODD_FLOATS),
        Opt("--pair-cosine", ["0.5", "none", "-1"], ["2", "-1.5", "nan", "inf", "x", ""]),
        Opt("--timing-repeats", ["1"], ["0", "-1", "x"], small=True),
        Opt("--executor", ["local"], ["threads", ""]), Opt("--scheduler", [], ["tcp://x:1"]),
        *[Opt(f, switch=True) for f in ("--bias", "--backward", "--jacobian", "--no-shared",
                                        "--no-timing", "--resume", "--overwrite")],
        OUT,
    ], always=["--quiet"]),
    Command("report", [
        # a probe directory is reported too (initsuite reproduce zoo): not a bad value
        Opt(None, [], ["{missing}", "{file}", "{full}", ""], required=True),
        Opt("--tutorial", [], ["{missing}", "{file}"]),
        Opt("--training", [], ["{missing}", "{file}"]),
        Opt("--compare", ["{new}"], ["{missing}", "{file}"]),
        Opt("--out", ["{out}"], family("bad_out_paths", "{file}")),
        Opt("--html", switch=True),
    ], heavy=True),
    Command("compare", [
        Opt(None, ["{base}"], ["{missing}", "{file}", "{full}", ""], required=True),
        Opt(None, ["{new}", "{base}"], ["{missing}", "{file}", ""], required=True),
        Opt("--fail", ["final_std:10%", "missing:0", "divergence_layer:0,init_ms:20%"],
            ["", "final_std", "final_std:x", "bogus:1", "final_std:10%,final_std:5%",
             "missing:1.5", "missing:-1", "final_std:-5%", "final_std:nan%"], text=True),
        Opt("--top", ["0", "3"], ["-1", "x", "2.5"]),
        Opt("--json", switch=True),
        Opt("--out", ["{out}.md", "{same}"], ["{full}", *family("bad_out_paths", "{file}/x.md"),
                                              *FOREIGN_FILES]),
        Opt("--html", ["{out}.html", "{same}"], ["{full}", *FOREIGN_FILES]),
    ], verdict=True),
    Command("conventions", [
        Opt(None, ["torch", "flax"], ["nope", ""], text=True),
        Opt("--layer", ["linear", "embedding"], ["nope", ""], text=True),
        Opt("--json", switch=True), Opt("--markdown", switch=True),
        Opt("--html", ["{out}.html"], ["{full}", *FOREIGN_FILES]),
    ]),
    Command("reproduce", [
        Opt(None, ["tutorial"], ["tutorials", "", "Tutorial"], required=True),
        Opt("--seeds", ["2"], ["1", *BAD_NUMBERS]),
        Opt("--overwrite", switch=True), OUT,
    ], heavy=True, always=["--quiet"]),
    Command("train", [
        SCHEMES,
        Opt("--activations", ["relu"], BAD_ACTIVATIONS, text=True),
        Opt("--depth", ["2"], BAD_NUMBERS, small=True),
        Opt("--width", ["4"], BAD_NUMBERS, small=True),
        Opt("--seeds", ["1"], BAD_NUMBERS, small=True),
        Opt("--steps", ["2"], BAD_NUMBERS, small=True),
        Opt("--lr", ["0.01"], ["0", "inf", "1e400", *BAD_FLOATS], ["٣"]),
        Opt("--optimizer", ["sgd", "adam"], ["rmsprop", "", "SGD!"], text=True),
        Opt("--momentum", ["0.9"], ["2", *BAD_FLOATS], ODD_FLOATS),
        Opt("--batch-size", ["8"], BAD_NUMBERS, small=True),
        Opt("--threshold", ["0.5"], ["nan", "-1", "x", ""]),
        Opt("--eval-every", ["1"], BAD_NUMBERS, small=True), Opt("--bias", switch=True),
        Opt("--dataset", ["digits"], ["mnist", ""], text=True),
        Opt("--device", ["cpu"], ["gpu", ""], text=True),
        Opt("--dtype", ["float32"], ["float8", ""], text=True),
        Opt("--overwrite", switch=True), OUT,
    ], heavy=True, always=["--quiet"]),
    Command("probe", [
        Opt(None, ["{factory}:tiny"], ["x", ":", "{factory}:nope", "{factory}:exits",
                                       "{factory}:raises", "{factory}:not_a_module",
                                       "no_such_module_xyz:f", "os:getcwd"],
            required=True, text=True),
        Opt("--input-shape", ["2,4", "3,4"], ["", "0", "-1,4", "x", "2,5", "2,4,5"], ["4"],
            required=True),
        Opt("--tokens", [], ["0", "-1", "x", "3"]),
        Opt("--schemes", ["kaiming_normal", "normal,orthogonal"], BAD_SCHEMES, text=True),
        Opt("--activation", ["relu"], BAD_ACTIVATIONS, text=True),
        Opt("--mode", ["train", "eval"], ["test", "", "TRAIN"], text=True),
        Opt("--seed", ["0", "3"], ["-1", "x", "1.5"]),
        Opt("--timeout", ["30", "none"], ["0", "-1", "nan", "x", "inf"]),
        Opt("--device", ["cpu"], ["gpu", ""], text=True),
        Opt("--dtype", ["float32", "float64"], ["float8", ""], text=True),
        *[Opt(f, switch=True) for f in ("--include-embeddings", "--backward", "--overwrite")],
        OUT,
    ], always=["--quiet", "--no-report"]),
]}  # fmt: skip

FACTORY_MODULE = "initsuite_fuzz_cli_factories"
FACTORY_SOURCE = """
import sys

from torch import nn


def tiny():
    return nn.Sequential(nn.Linear(4, 4), nn.Tanh())


def exits():
    sys.exit(7)


def raises():
    raise RuntimeError("boom")


def not_a_module():
    return 3
"""


# --- drawing argument lists ------------------------------------------------------------------


@dataclass(frozen=True)
class Drawn:
    """An argument list, and whether it holds something that must be refused (exit 2)."""

    args: list[str]
    must_fail: bool


@st.composite
def arguments(draw: st.DrawFn, command: Command) -> Drawn:
    """An argument list for ``command``: zero to two bad elements (a bad value, a required
    argument left out, an unknown flag), every other option omitted or valid. A heavy
    command always gets at least one element that must be refused."""
    opts = command.opts
    # slots that can be made bad; len(opts) stands for an unknown flag
    refusable = [i for i, o in enumerate(opts) if o.invalid or o.required] + [len(opts)]
    can_fail = [i for i, o in enumerate(opts) if o.odd or o.text] + refusable
    n_bad = draw(st.sampled_from([0, 0, 1, 1, 2]))
    bad = set(draw(st.lists(st.sampled_from(can_fail), min_size=min(n_bad, len(can_fail)),
                            max_size=n_bad, unique=True)))  # fmt: skip
    if command.heavy:
        bad.add(draw(st.sampled_from(refusable)))
    forced = bad & set(refusable) if command.heavy else set()
    args: list[str] = []
    must_fail = False
    for i, opt in enumerate(opts):
        if i in bad:
            if not (opt.invalid or opt.odd or opt.text) or (i in forced and not opt.invalid):
                must_fail = must_fail or opt.required
                continue  # a required argument left out
            refused = st.sampled_from(opt.invalid) if opt.invalid else st.nothing()
            either = st.sampled_from(opt.odd) if opt.odd else st.nothing()
            anything = refused | either | (TEXT if opt.text else st.nothing())
            value: str | None = draw(refused if i in forced else anything)
            must_fail = must_fail or value in opt.invalid
        elif opt.required or opt.small or draw(st.booleans()):
            if not (opt.valid or opt.switch):
                continue
            value = None if opt.switch else draw(st.sampled_from(opt.valid))
        else:
            continue
        if opt.flag is not None:
            args.append(opt.flag)
        if value is not None:
            args.append(value)
    if len(opts) in bad:
        flag = draw(st.sampled_from(UNKNOWN_FLAGS if len(opts) in forced else
                                    [*UNKNOWN_FLAGS, *ODD_FLAGS]))  # fmt: skip
        args.insert(draw(st.integers(0, len(args))), flag)
        must_fail = must_fail or flag in UNKNOWN_FLAGS
    return Drawn([command.name, *args, *command.always], must_fail)


# --- the property ----------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root``: a directory, or a file's content hash."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink() or not path.is_file():
            out[rel] = "dir" if path.is_dir() else "other"
        else:
            out[rel] = hashlib.sha1(path.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Runs the fuzzed commands read (never write): two tiny sweeps, a probe run, and the
    factory module's folder."""
    root = tmp_path_factory.mktemp("stored")
    grid = dict(activations=["tanh"], depths=[2], widths=[4], seeds=1, timing_repeats=1,
                progress=False)  # fmt: skip
    initsuite.sweep(schemes=["normal", "zeros"], **grid).save(root / "base")
    initsuite.sweep(schemes=["normal", "orthogonal"], **grid).save(root / "new")
    (root / "factories").mkdir()
    (root / "factories" / f"{FACTORY_MODULE}.py").write_text(FACTORY_SOURCE)
    sys.path.insert(0, str(root / "factories"))
    from initsuite.studies.probe_factory import probe_factory

    probe_factory(f"{FACTORY_MODULE}:tiny", (2, 4)).save(root / "probe")
    yield {"root": root, "base": root / "base", "new": root / "new", "probe": root / "probe"}
    sys.path.remove(str(root / "factories"))
    sys.modules.pop(FACTORY_MODULE, None)


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """The tests' working directory (a relative --out lands here), restored after."""
    before = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(before)


def _fill(args: list[str], here: Path, stored: dict[str, Path]) -> list[str]:
    values = {"out": str(here / "o"), "file": str(here / "afile.txt"), "full": str(here / "full"),
              "missing": str(here / "missing" / "run"), "base": str(stored["base"]),
              "new": str(stored["new"]), "probe": str(stored["probe"]),
              "factory": FACTORY_MODULE, "same": str(here / "same.out")}  # fmt: skip
    out = []
    for a in args:
        for k, v in values.items():
            a = a.replace("{" + k + "}", v)
        out.append(a)
    return out


def check(drawn: Drawn, command: Command, workdir: Path, stored: dict[str, Path],
          capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """Run one argument list in a fresh directory and check the property."""
    args = drawn.args
    here = Path(tempfile.mkdtemp(dir=workdir))
    (here / "afile.txt").write_text("a user's file\n")
    (here / "full").mkdir()
    (here / "full" / "thesis.tex").write_text("a user's thesis\n")
    os.chdir(here)
    filled = _fill(args, here, stored)
    before, stored_before = snapshot(here), snapshot(stored["root"])
    code, out, err = run_cli(filled, capsys)
    if os.environ.get("INITSUITE_FUZZ_LOG"):  # by hand: what the examples exercised
        with open(os.environ["INITSUITE_FUZZ_LOG"], "a") as log:
            log.write(f"{command.name} {code} {drawn.must_fail} {filled} {err.strip()[:200]!r}\n")
    after = snapshot(here)
    assert snapshot(stored["root"]) == stored_before, filled  # stored runs are only read
    for user_file in ("afile.txt", "full/thesis.tex"):  # never touched, whatever the status
        assert after.get(user_file) == before[user_file], (filled, code, err)
    assert "Traceback" not in err, (filled, err)
    assert code == 2 or not drawn.must_fail, ("accepted", filled, code, out[-300:], err)
    if code == 0:
        assert out.strip() or "--quiet" in filled, (filled, err)
    elif code == 1:
        assert command.verdict, (filled, code, err)
    else:
        assert code == 2, (filled, code, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("initsuite"), (filled, err)
        assert after == before, (filled, err)  # nothing written


def _test(name: str, examples: int):  # type: ignore[no-untyped-def]
    command = COMMANDS[name]

    @settings(max_examples=examples)
    @given(drawn=arguments(command))
    def test(drawn: Drawn, workdir: Path, stored: dict[str, Path],
             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
        # item 1: --overwrite onto a directory initsuite did not write deletes it (pending)
        assume("overwrite_foreign" in ENABLED or not {"--overwrite", "{full}"} <= {*drawn.args})
        check(drawn, command, workdir, stored, capsys)

    test.__name__ = f"test_cli_fuzz_{name}"
    test.__doc__ = f"``initsuite {name}``: exit 0/1 with output, or 2, one line, nothing written."
    return test


test_cli_fuzz_schemes = _test("schemes", EXAMPLES)
test_cli_fuzz_activations = _test("activations", 4)
test_cli_fuzz_gains = _test("gains", 4)
test_cli_fuzz_phase = _test("phase", HEAVY_EXAMPLES)
test_cli_fuzz_sweep = _test("sweep", EXAMPLES)
test_cli_fuzz_report = _test("report", HEAVY_EXAMPLES)
test_cli_fuzz_compare = _test("compare", EXAMPLES)
test_cli_fuzz_conventions = _test("conventions", HEAVY_EXAMPLES)
test_cli_fuzz_reproduce = _test("reproduce", HEAVY_EXAMPLES)
test_cli_fuzz_train = _test("train", HEAVY_EXAMPLES)
test_cli_fuzz_probe = _test("probe", EXAMPLES)


def alone(command: Command) -> Iterator[Drawn]:
    """Each value of each option's ``invalid`` list, in an otherwise valid argument list."""
    for i, opt in enumerate(command.opts):
        for bad in opt.invalid:
            args: list[str] = []
            for j, other in enumerate(command.opts):
                value = bad if i == j else (other.valid or ["{base}"])[0]
                if i == j or other.required or other.small:
                    args += [value] if other.flag is None else [other.flag, value]
            yield Drawn([command.name, *args, *command.always], must_fail=True)


def test_every_bad_value_alone_is_refused(
    workdir: Path, stored: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Deterministic companion of the fuzzing: every value the generators call bad is refused
    on its own (exit 2, one line, nothing written), so a fuzzed list holding one must fail."""
    for command in COMMANDS.values():
        for drawn in alone(command):
            check(drawn, command, workdir, stored, capsys)


def test_families_are_named_and_on() -> None:
    """Each family names the item that fixed it, and every one is fuzzed unless skipped."""
    assert all("item" in why for why in FAMILIES.values())
    assert set(ENABLED) <= set(FAMILIES)
    if not _skipped:  # CI skips none: every family is fuzzed
        assert set(FAMILIES) == set(ENABLED)

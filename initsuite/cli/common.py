"""What every command shares: the one-line-error parser, how an error names a flag, the
argparse types of numbers and lists (plain ASCII), and printing a table."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from initsuite.core.errors import Arg, InitsuiteError
from initsuite.core.spec import plain_float, plain_int, split_specs

if TYPE_CHECKING:
    import pandas as pd

    from initsuite.results.outputs import Mode

__all__ = [
    "PLAIN",
    "AddParser",
    "Parser",
    "check_output_flags",
    "cosine_arg",
    "flag",
    "float_arg",
    "int_arg",
    "int_list",
    "max_parameters_arg",
    "number_or_none",
    "one_line",
    "print_table",
    "spec_list",
    "str_list",
    "timeout_arg",
]


# every character str.splitlines breaks at, shown escaped in an error message
_LINE_BREAKS = {c: ascii(chr(c))[1:-1] for c in map(ord, "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")}


def one_line(message: str) -> str:
    """``message`` on one line: a line break the user typed (a newline or U+0085 in a spec,
    which argparse and some errors quote as is) is shown escaped."""
    return message.strip().translate(_LINE_BREAKS)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors, recording its flags (:func:`flag`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.flags: set[str] = set()  # before argparse adds --help
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.flags.update(action.option_strings)
        return action

    def error(self, message: str) -> NoReturn:
        # One line, like every other input error, instead of argparse's usage block.
        self.exit(2, one_line(f"{self.prog}: error: {message} (see {self.prog} --help)") + "\n")


AddParser = Callable[..., Parser]
"""``add_parser(name, help=...)``: a new subcommand's parser."""


def flag(flags: set[str]) -> Callable[[Arg], str]:
    """How an error names an argument: as its flag where the command has one (``allow_large``
    → ``--allow-large``, ``shared=False`` → ``--no-shared``), else as Python spells it."""

    def spell(arg: Arg) -> str:
        dashed = arg.name.replace("_", "-")
        flag = f"--no-{dashed}" if arg.value is False else f"--{dashed}"
        if flag not in flags:
            return str(arg)
        return flag if arg.value is None or isinstance(arg.value, bool) else f"{flag} {arg.value}"

    return spell


def spec_list(text: str) -> list[str]:
    """A comma list of specs (:func:`initsuite.core.spec.split_specs`), as an argparse type."""
    try:
        return split_specs(text)
    except InitsuiteError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# Every numeric flag's type is built on these four, which read plain ASCII decimal syntax as
# specs do (core.spec.plain_int/plain_float): "1_0" is not read as 10 nor "１６" as 16.
# tests/test_cli_numbers.py finds any flag whose type reads numbers otherwise.
PLAIN = "in plain ASCII digits"


def int_arg(text: str) -> int:
    """An argparse type: an integer written in plain ASCII digits."""
    number = plain_int(text)
    if number is None:
        raise argparse.ArgumentTypeError(f"expected an integer {PLAIN}, got {text!r}")
    return number


def float_arg(text: str) -> float:
    """An argparse type: a number written in plain ASCII decimal or exponent syntax (nan and
    inf pass here: the library refuses them where a finite number goes, naming the flag)."""
    number = plain_float(text)
    if number is None:
        raise argparse.ArgumentTypeError(f"expected a number {PLAIN}, got {text!r}")
    return number


def int_list(text: str) -> list[int]:
    """An argparse type: comma-separated integers (:func:`int_arg`)."""
    try:
        return [int_arg(t) for t in text.split(",") if t.strip()]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers {PLAIN}, got {text!r}"
        ) from None


def float_list(text: str) -> list[float]:
    """An argparse type: comma-separated numbers (:func:`float_arg`)."""
    try:
        return [float_arg(t) for t in text.split(",") if t.strip()]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers {PLAIN}, got {text!r}"
        ) from None


def number_or_none(expected: str) -> Callable[[str], float | None]:
    """An argparse type: a number (as :func:`float_arg` reads it), or None for 'none';
    ``expected`` names the number."""

    def parse(text: str) -> float | None:
        if text.strip().lower() == "none":
            return None
        number = plain_float(text)
        if number is None:
            raise argparse.ArgumentTypeError(f"expected {expected} {PLAIN} or 'none', got {text!r}")
        return number

    return parse


cosine_arg = number_or_none("a number in [-1, 1]")


timeout_arg = number_or_none("a number of seconds")


def max_parameters_arg(text: str) -> int | None:
    """``--max-parameters``: a whole number (``5e8`` is fine) or ``none``."""
    value = number_or_none("a number of parameters")(text)
    if value is None:
        return None
    if not (value >= 1 and float(value).is_integer()):
        raise argparse.ArgumentTypeError(f"expected a whole number of parameters >= 1 or "
                                         f"'none', got {text!r}")  # fmt: skip
    return int(value)


def str_list(text: str) -> list[str]:
    out = [t.strip() for t in text.split(",") if t.strip()]
    if not out:  # an empty list of devices or dtypes would be a sweep of no cells
        raise argparse.ArgumentTypeError(f"empty list {text!r}")
    return out


def print_table(df: pd.DataFrame, as_json: bool) -> None:
    import pandas as pd

    if as_json:
        print(json.dumps(df.to_dict(orient="records"), indent=2, default=str))
    else:
        options = ("display.width", 200, "display.max_colwidth", 60, "display.max_rows", None,
                   "display.float_format", "{:.4g}".format)  # fmt: skip
        with pd.option_context(*options):
            print(df.to_string(index=False))


def check_output_flags(**outputs: tuple[str | None, Mode]) -> None:
    """A command's output flags (``out=(args.out, "file")``; None: not given) through the one
    output check, before anything is computed: no file replaced that initsuite did not write,
    nothing inside a results directory, no path given for two outputs."""
    from initsuite.results.outputs import check_outputs

    check_outputs(outputs)

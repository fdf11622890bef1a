"""The ``initsuite`` command: parses arguments, calls the Python API, prints.

Bad input exits with status 2 and one line on stderr, before anything is computed or written;
an argument the library's message names is shown as the command's flag.
``initsuite compare --fail`` exits with status 1 when a regression gate is exceeded, and
``initsuite schemes PATTERN`` when no scheme matches.

One module per group of commands, each ``add_<command>`` building its parser and naming the
function that runs it: :mod:`initsuite.cli.listing` (schemes, parametrizations, activations, gains,
phase),
:mod:`initsuite.cli.sweep`, :mod:`initsuite.cli.train`, :mod:`initsuite.cli.probe`,
:mod:`initsuite.cli.coordcheck`, :mod:`initsuite.cli.cmap`,
:mod:`initsuite.cli.report` (report, compare), :mod:`initsuite.cli.reproduce` and
:mod:`initsuite.cli.conventions`. They share :mod:`initsuite.cli.common` (the parser with
one-line errors, flag types, tables) and :mod:`initsuite.cli.stdout` (what they print).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from initsuite.cli.cmap import add_cmap
from initsuite.cli.common import Parser, flag, one_line
from initsuite.cli.conventions import add_conventions
from initsuite.cli.coordcheck import add_coordcheck
from initsuite.cli.listing import (
    add_activations,
    add_gains,
    add_parametrizations,
    add_phase,
    add_schemes,
)
from initsuite.cli.probe import add_probe
from initsuite.cli.report import add_compare, add_report
from initsuite.cli.reproduce import add_reproduce
from initsuite.cli.stdout import Stdout
from initsuite.cli.sweep import add_sweep
from initsuite.cli.train import add_train
from initsuite.core.errors import InitsuiteError
from initsuite.core.version import __version__

__all__ = ["main"]


_COMMANDS = (add_schemes, add_parametrizations, add_activations, add_gains, add_phase,
             add_sweep, add_train, add_probe, add_coordcheck, add_cmap, add_report, add_compare,
             add_reproduce, add_conventions)  # fmt: skip
"""One ``add_<command>`` per subcommand, in ``initsuite --help``'s order."""


def _build_parser() -> tuple[Parser, dict[str, Parser]]:
    """The ``initsuite`` parser, and each subcommand's parser by name."""
    p = Parser(prog="initsuite", description="Benchmark neural-network weight initialization.")
    p.add_argument("--version", action="version", version=f"initsuite {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    commands: dict[str, Parser] = {}

    def add_parser(name: str, **kwargs: Any) -> Parser:
        commands[name] = sub.add_parser(name, **kwargs)
        return commands[name]

    for add in _COMMANDS:
        add(add_parser)
    return p, commands


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``initsuite`` command; returns the exit status."""
    parser, commands = _build_parser()
    args = parser.parse_args(argv)
    # what meta.json records: the arguments parsed here, not the host process's (pytest, Dask)
    args.command_line = " ".join(["initsuite", *(sys.argv[1:] if argv is None else argv)])
    stdout, sys.stdout = sys.stdout, Stdout(sys.stdout)
    try:
        code = args.run(args)
        sys.stdout.flush()  # a full device fails here, named, not at exit
    except InitsuiteError as exc:
        message = exc.render(flag(commands[args.command].flags))
        print(one_line(f"initsuite: error: {message}"), file=sys.stderr)
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
        print(one_line(f"initsuite: error: cannot write {where}: {exc.strerror or exc}"),
              file=sys.stderr)  # fmt: skip
        return 2
    finally:
        sys.stdout = stdout
    return code or 0  # compare returns 1 when a gate is exceeded, schemes when none matches

"""MkDocs hook: replace ``<!-- cli-help: COMMAND -->`` with ``initsuite COMMAND --help``.

The CLI page then shows the parser's own help, so it cannot drift from the code; a command
that no longer exists fails the build.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

_MARKER = re.compile(r"<!-- cli-help:(?P<args>[^>]*)-->")
_COLUMNS = "100"  # argparse wraps its help to $COLUMNS


def help_text(args: list[str]) -> str:
    """The text ``initsuite ARGS --help`` prints."""
    from initsuite.cli import main

    out = io.StringIO()
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = _COLUMNS
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()) as err:
            try:
                main([*args, "--help"])
            except SystemExit as stop:
                if stop.code not in (0, None):
                    raise PluginError(
                        f"cli_help: 'initsuite {' '.join(args)} --help' exited {stop.code}: "
                        f"{err.getvalue().strip()}"
                    ) from None
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    return out.getvalue().rstrip()


def on_config(config: Any, **_: Any) -> Any:
    """Document the initsuite beside mkdocs.yml, the one mkdocstrings reads (``paths: [.]``)."""
    root = str(Path(config.config_file_path).resolve().parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    return config


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Expand every marker of a page into a fenced block of the command's help."""

    def block(m: re.Match[str]) -> str:
        args = m.group("args").split()
        return f"```text\n$ initsuite {' '.join([*args, '--help'])}\n{help_text(args)}\n```"

    return _MARKER.sub(block, markdown)

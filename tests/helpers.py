"""Helpers shared by test modules (pytest puts this directory on sys.path)."""

from __future__ import annotations

import pytest

from initsuite.cli import main


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``initsuite ARGS``, argparse's own exits included."""
    try:
        code = main(args)
    except SystemExit as exc:  # argparse exits itself
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err

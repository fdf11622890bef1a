"""The style's size rules, checked: no module over 400 lines, no function over 60 lines
without a ``# long:`` comment saying why (no architecture dispatch on a name:
tests/test_archs.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "initsuite"
MODULE_LINES = 400
FUNCTION_LINES = 60


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _long_functions(text: str) -> list[str]:
    """The functions of ``text`` over the limit with no ``# long:`` comment, in them or on
    the line above."""
    lines = text.splitlines()
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            body = lines[start - 1 : node.end_lineno]
            said = lines[max(start - 2, 0) : node.end_lineno]  # the line above may say why
            if len(body) > FUNCTION_LINES and not any("# long:" in line for line in said):
                found.append(f"{node.name} (line {node.lineno}, {len(body)} lines)")
    return found


def test_no_module_is_over_the_limit() -> None:
    over = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in _sources()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MODULE_LINES
    }
    assert over == {}


def test_no_long_function_goes_unexplained() -> None:
    over = {
        str(p.relative_to(PACKAGE.parent)): found
        for p in _sources()
        if (found := _long_functions(p.read_text(encoding="utf-8")))
    }
    assert over == {}


@pytest.mark.parametrize("commented", [False, True])
def test_the_function_check_sees_a_long_function(commented: bool) -> None:
    above = "# long: a table of cases\n" if commented else ""
    text = above + "def f():\n" + "    x = 1\n" * FUNCTION_LINES
    line = 1 + commented
    assert _long_functions(text) == (
        [] if commented else [f"f (line {line}, {FUNCTION_LINES + 1} lines)"]
    )
    assert _long_functions("def g():\n" + "    x = 1\n" * (FUNCTION_LINES - 1)) == []

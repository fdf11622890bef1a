"""Every dotted ``initsuite.…`` name that the package's text and the docs cite resolves, so a
module that moves cannot leave its old name behind in a docstring, a caption or a page.

What counts as a name: ``initsuite`` and one or more ``.identifier`` parts, with no letter,
digit, ``_``, ``.``, ``/`` or ``-`` just before it and none of them (but ``.``) just after.
So file paths (``initsuite/results/columns.py``, ``src/initsuite.x``) and ``initsuite.egg-info``
are not names, and a sentence's full stop ends one. A placeholder is written
``initsuite.<name>``, which is not a name.

Where: every string literal of every module of the package (docstrings of modules, classes
and functions, and the text a report writes) and every comment; README.md and every Markdown
page under docs/, code blocks and mkdocstrings directives (``::: initsuite.x``) included, and
the reference reports that docs/reference links to.

How a name resolves: from ``initsuite``, each part is the submodule of that name where the
object so far is a package with one (``initsuite.results.columns``), else an attribute
(``initsuite.results.columns.CELLS``, and the package root's lazy names, ``initsuite.sweep``).
An entry-point group named like a module (``initsuite.schemes``) resolves to that module.

A package whose docstring is a map of its modules (it cites one of them by its dotted name)
cites them all, so a module added, moved or removed shows there too.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import io
import os
import pkgutil
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"(?<![\w./-])initsuite(?:\.[A-Za-z_]\w*)+(?![\w-])")


def _python_texts(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of each string literal and comment of one module."""
    source = path.read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string


def _pages() -> Iterator[Path]:
    """README.md and the Markdown under docs/, through its links (docs/reference)."""
    yield ROOT / "README.md"
    for folder, _, files in sorted(os.walk(ROOT / "docs", followlinks=True)):
        yield from (Path(folder) / f for f in sorted(files) if f.endswith(".md"))


def cited_names() -> dict[str, list[str]]:
    """Each dotted name cited, with where: ``file:line`` relative to the repository."""
    where: dict[str, list[str]] = {}

    def add(path: Path, line: int, text: str) -> None:
        for m in NAME.finditer(text):
            at = f"{os.path.relpath(path, ROOT)}:{line + text.count(chr(10), 0, m.start())}"
            where.setdefault(m.group(0), []).append(at)

    for path in sorted((ROOT / "initsuite").rglob("*.py")):
        for line, text in _python_texts(path):
            add(path, line, text)
    for page in _pages():
        add(page, 1, page.read_text(encoding="utf-8"))
    return where


def resolves(name: str) -> bool:
    """Whether ``name`` names a module or an object (see the module's docstring)."""
    parts = name.split(".")
    obj: Any = importlib.import_module(parts[0])
    for part in parts[1:]:
        sub = f"{obj.__name__}.{part}" if hasattr(obj, "__path__") else None
        if sub is not None and importlib.util.find_spec(sub) is not None:
            obj = importlib.import_module(sub)
        elif hasattr(obj, part):
            obj = getattr(obj, part)
        else:
            return False
    return True


def test_the_rule_of_what_a_name_is() -> None:
    text = (
        "see initsuite.results.columns. Paths: initsuite/results/columns.py, src/initsuite.x,"
        " initsuite.egg-info; `::: initsuite.sweep` and initsuite.<name>"
    )
    assert NAME.findall(text) == ["initsuite.results.columns", "initsuite.sweep"]
    assert resolves("initsuite.results.columns.CELLS")
    assert resolves("initsuite.SweepResult.load")  # a lazy name of the root, then attributes
    assert resolves("initsuite.schemes.list")
    assert not resolves("initsuite.columns.CELLS")  # moved to initsuite.results
    assert not resolves("initsuite.results.columns.NO_SUCH_TABLE")


def test_every_cited_name_resolves() -> None:
    cited = cited_names()
    assert len(cited) > 100  # the scan reads what it should (over 300 names on writing this)
    stale = {name: where for name, where in sorted(cited.items()) if not resolves(name)}
    assert not stale, "names that do not resolve:\n" + "\n".join(
        f"  {name}  ({', '.join(where)})" for name, where in stale.items()
    )


def test_a_package_that_maps_its_modules_maps_them_all() -> None:
    maps: dict[str, set[str]] = {}
    for path in sorted((ROOT / "initsuite").rglob("__init__.py")):
        package = ".".join(path.parent.relative_to(ROOT).parts)
        modules = {f"{package}.{m.name}" for m in pkgutil.iter_modules([str(path.parent)])}
        cited = set(NAME.findall(ast.get_docstring(ast.parse(path.read_text("utf-8"))) or ""))
        if cited & modules:
            maps[package] = modules - cited
    assert {"initsuite.schemes", "initsuite.theory"} <= set(maps)
    assert not {package: missing for package, missing in maps.items() if missing}

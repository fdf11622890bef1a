"""The package's shape: stages import one way (import-linter), results and reports load without
torch, the root is lazy and no public name hides a submodule, and no module reaches into
another's private names."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import initsuite

PACKAGE = Path(initsuite.__file__).resolve().parent
ROOT = PACKAGE.parent


def _modules(package: str = "initsuite") -> list[str]:
    pkg = importlib.import_module(package)
    found = pkgutil.walk_packages(pkg.__path__, f"{package}.")
    return [package] + [m.name for m in found if not m.name.endswith("__main__")]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT
    )


def test_import_contracts_hold() -> None:
    """The layers and forbidden-import contracts of pyproject.toml ([tool.importlinter])."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is part of the test extra"
    proc = subprocess.run([exe], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_import_linter_catches_a_back_arrow(tmp_path: Path) -> None:
    """The contract is live: a copy of the package with core importing the CLI fails it."""
    proc = _lint_copy(tmp_path, {"core/errors.py": "import initsuite.cli"})
    assert proc.returncode != 0
    assert "initsuite.core.errors -> initsuite.cli" in proc.stdout


# the other contracts, each broken: (module, line appended, what lint-imports says)
_BREAKS = [
    ("results/columns.py", "import initsuite.engine",
     "initsuite.results.columns -> initsuite.engine"),
    # a lazy import counts: the report reads what a run stored, never the theory
    ("report/style.py", "def f():\n    import initsuite.theory.phase",
     "initsuite.report.style -> initsuite.theory.phase"),
    # the circle cut in issue 28: plan imports html, never the reverse
    ("report/html.py", "import initsuite.report.plan",
     "initsuite.report.html -> initsuite.report.plan -> initsuite.report.html"),
    # a module importing its own package's __init__, which imports it
    ("schemes/lsuv.py", "import initsuite.schemes",
     "initsuite.schemes -> initsuite.schemes.lsuv -> initsuite.schemes"),
]  # fmt: skip


def test_import_linter_catches_each_broken_contract(tmp_path: Path) -> None:
    """The other contracts are live: a copy of the package where results reaches the engine,
    the report the theory, and two import cycles close fails them all, and no more."""
    proc = _lint_copy(tmp_path, {module: line for module, line, _ in _BREAKS})
    said = " ".join(proc.stdout.split())  # lint-imports wraps long lines
    assert proc.returncode != 0 and "1 kept, 3 broken" in said, proc.stdout
    for message in [m for _, _, m in _BREAKS] + ["No cycles are allowed in initsuite.report."]:
        assert message in said, message


def _lint_copy(tmp_path: Path, lines: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """lint-imports on a copy of the package with each line appended to its module."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is part of the test extra"
    shutil.copytree(PACKAGE, tmp_path / "initsuite", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "tests").mkdir()  # our own contract type (pyproject's contract_types)
    shutil.copy(ROOT / "tests" / "import_contracts.py", tmp_path / "tests")
    for module, line in lines.items():
        path = tmp_path / "initsuite" / module
        path.write_text(path.read_text() + f"\n\n{line}  # noqa\n")
    env = {"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(tmp_path)}
    return subprocess.run([exe], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)


def test_results_and_report_import_without_torch() -> None:
    """Every module of initsuite.results and initsuite.report imports with torch unavailable."""
    code = (
        "import sys, importlib, pkgutil\n"
        "sys.modules['torch'] = None\n"
        "import initsuite.results, initsuite.report\n"
        "for pkg in (initsuite.results, initsuite.report):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "print('ok')\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "ok"


def test_package_root_is_lazy() -> None:
    """``import initsuite`` (and its version) costs no torch, pandas or matplotlib import."""
    code = (
        "import sys, initsuite\n"
        "assert initsuite.__version__\n"
        "print(sorted(m for m in ('torch', 'pandas', 'matplotlib', 'numpy') if m in sys.modules))\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_public_names_resolve_and_shadow_no_submodule() -> None:
    """Every name in ``__all__`` resolves, and no attribute of any package is a function or
    class named like one of its submodules (``import initsuite.x as m`` is always the module)."""
    for name in initsuite.__all__:
        assert getattr(initsuite, name) is not None, name
    for module in _modules():
        mod = importlib.import_module(module)
        if not hasattr(mod, "__path__"):
            continue
        for sub in pkgutil.iter_modules(mod.__path__):
            if sub.name == "__main__":
                continue
            full = f"{module}.{sub.name}"
            importlib.import_module(full)
            assert getattr(mod, sub.name) is sys.modules[full], f"{module}.{sub.name} is shadowed"


def test_root_names_are_not_submodule_names() -> None:
    submodules = {m.name for m in pkgutil.iter_modules(initsuite.__path__)}
    functions = {n for n in initsuite.__all__ if n not in ("activations", "schemes")}
    assert not functions & submodules


def test_no_module_imports_another_modules_private_names() -> None:
    found = [(str(p), f) for p in sorted(PACKAGE.rglob("*.py")) for f in _private_imports_of(p)]
    assert not found, found


def test_private_import_check_sees_one(tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text("from initsuite.results.store import _hidden\n")
    assert _private_imports_of(tmp_path / "x.py") == ["initsuite.results.store._hidden"]


def _private_imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{n.module}.{a.name}"
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("initsuite")
        for a in n.names
        if a.name.startswith("_") and not a.name.startswith("__")
    ]


def test_python_dash_m_runs_the_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "initsuite", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and initsuite.__version__ in proc.stdout + proc.stderr


# --- the schemes' catalog: `initsuite schemes` without torch ---------------------------------


def test_the_shipped_catalog_is_the_registry_s_table() -> None:
    """``initsuite schemes`` reads the built-in schemes' table from a JSON file; it must be
    what the registry gives (read in a fresh process: no scheme a test registered). After
    adding or changing a scheme: ``python -c "import initsuite.schemes as s;
    s.write_catalog()"``."""
    import json
    import subprocess
    import sys

    import pandas as pd

    from initsuite.core import catalog

    code = ("import json, initsuite.schemes as s; "
            "print(json.dumps(s.table().to_dict(orient='records')))")  # fmt: skip
    live = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                          text=True).stdout  # fmt: skip
    shipped = catalog.load()
    assert shipped is not None, "no catalog, or a package declares schemes"
    stale = "initsuite/core/scheme_catalog.json (stale: write_catalog())"
    pd.testing.assert_frame_equal(pd.DataFrame(shipped), pd.DataFrame(json.loads(live)),
                                  obj=stale)  # fmt: skip


def test_listing_schemes_imports_no_torch() -> None:
    import subprocess
    import sys

    code = ("import sys; from initsuite.cli import main; "
            "assert main(['schemes', 'kaiming*', '--json']) == 0; "
            "assert main(['schemes', 'xavier*']) == 0; "
            "print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.splitlines()  # fmt: skip
    assert '"scheme": "kaiming_normal"' in "\n".join(out) and out[-1] == "['pandas']"


def test_a_package_that_adds_schemes_is_listed_from_the_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Third-party schemes (entry points) may be any: the registry lists them, not the file."""
    from importlib import metadata

    from initsuite.core import catalog

    assert catalog.load() is not None
    ep = metadata.EntryPoint("mine", "my_pkg.schemes:mine", catalog.ENTRY_POINT_GROUP)
    ours = catalog.ENTRY_POINT_GROUP
    monkeypatch.setattr(catalog.metadata, "entry_points", lambda group: [ep] * (group == ours))
    assert catalog.load() is None

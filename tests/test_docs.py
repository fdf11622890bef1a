"""The documentation site: it builds strictly, fails on a broken link or a missing page, and
what it documents (the pandas one-liners, the CLI, the public API, the columns) is true."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

import initsuite
from initsuite.results import columns as C

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TESTED = "<!-- tested by tests/test_docs.py"


def _mkdocs(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of ``config`` into ``site``, in a subprocess."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True, text=True, env=env, timeout=120, cwd=config.parent,
    )  # fmt: skip


def test_site_builds_strictly_with_cli_help_and_api_pages(tmp_path: Path) -> None:
    done = _mkdocs(ROOT / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stderr
    cli = (tmp_path / "site" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "usage: initsuite sweep" in cli  # the hook put the parser's help in
    assert "<!-- cli-help" not in cli
    api = (tmp_path / "site" / "api" / "studies" / "index.html").read_text(encoding="utf-8")
    assert 'id="initsuite.sweep"' in api  # mkdocstrings rendered the docstring
    assert (tmp_path / "site" / "reference" / "figures" / "std_vs_layer.png").is_file()


def test_strict_build_fails_on_a_broken_link_and_a_missing_page(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copytree(DOCS, copy / "docs", symlinks=True)  # docs/reference links to results/
    for name in ("initsuite", "results"):
        (copy / name).symlink_to(ROOT / name, target_is_directory=True)
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    (copy / "mkdocs.yml").write_text(
        config.replace("  - CLI: cli.md\n", "  - CLI: cli.md\n  - Gone: no-such-page.md\n"),
        encoding="utf-8",
    )
    index = copy / "docs" / "index.md"
    index.write_text(index.read_text(encoding="utf-8") + "\n[broken](not-a-page.md)\n")
    # the API pages without their mkdocstrings directives (half this build's time): the build
    # above renders them cleanly, and what this one checks is the links and the nav
    for api in (copy / "docs" / "api").glob("*.md"):
        lines = api.read_text(encoding="utf-8").splitlines(keepends=True)
        api.write_text("".join(ln for ln in lines if not ln.startswith(":::")), encoding="utf-8")
    done = _mkdocs(copy / "mkdocs.yml", tmp_path / "site")
    said = done.stdout + done.stderr
    assert done.returncode != 0
    assert "'not-a-page.md'" in said  # the broken link
    assert "'no-such-page.md'" in said  # the missing page
    assert "Aborted with 2 warnings in strict mode" in said


def _tested_block(page: Path) -> str:
    """The fenced Python block that follows the 'tested' marker of ``page``."""
    text = page.read_text(encoding="utf-8")
    after = text[text.index(TESTED) :]
    match = re.search(r"```python\n(.*?)```", after, re.S)
    assert match is not None, f"no python block after the marker in {page}"
    return match.group(1)


def _without_initsuite(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a Python that cannot import initsuite: no site (so no editable-install
    .pth), only the directories holding pandas and pyarrow on its path, initsuite blocked."""
    paths = {str(Path(importlib.util.find_spec(m).origin).parent.parent)  # type: ignore[union-attr, arg-type]
             for m in ("pandas", "pyarrow")}  # fmt: skip
    guard = (
        "import sys, importlib.util\n"
        "sys.modules['initsuite'] = None  # in case it is installed beside pandas\n"
    )
    check = "\nassert 'torch' not in sys.modules\n"
    env = {"PYTHONPATH": os.pathsep.join(sorted(paths)), "PATH": os.environ.get("PATH", "")}
    return subprocess.run([sys.executable, "-S", "-c", guard + code + check], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip


def _sorted(df: pd.DataFrame, keys: tuple[str, ...]) -> pd.DataFrame:
    return df.sort_values(list(keys), kind="stable").reset_index(drop=True)


def test_documented_pandas_lines_read_a_sweep_without_initsuite(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "demo"
    initsuite.sweep(["kaiming_normal", "xavier_normal"], ["relu", "tanh"], depths=[3, 5],
                    widths=[8, 16], seeds=2, out_dir=str(out), progress=False)  # fmt: skip
    first = sorted((out / "chunks").iterdir())[0]
    shutil.copytree(first, out / "chunks" / f".tmp-{first.name}-x")  # a killed writer's copy
    block = _tested_block(DOCS / "tables.md")
    dump = "".join(f"\n{t}.to_pickle({t!r} + '.pkl')" for t in ("cells", "layers", "timing"))
    done = _without_initsuite(block + dump, tmp_path)
    assert done.returncode == 0, done.stderr
    stored = initsuite.SweepResult.load(out)
    keys = {
        "cells": C.CELL_KEYS,
        "layers": (*C.CELL_KEYS, "layer"),
        "timing": C.TIMING_KEYS,
    }
    for table, by in keys.items():
        read = pd.read_pickle(tmp_path / f"{table}.pkl")
        assert len(read) > 0
        assert_frame_equal(_sorted(read, by), _sorted(getattr(stored, table), by),
                           check_exact=True)  # fmt: skip


def test_readme_shows_the_tested_pandas_line() -> None:
    block = _tested_block(DOCS / "tables.md")
    cells_line = next(line for line in block.splitlines() if line.startswith("cells ="))
    assert cells_line in (ROOT / "README.md").read_text(encoding="utf-8")


def _load_hook():
    spec = importlib.util.spec_from_file_location("cli_help", DOCS / "hooks" / "cli_help.py")
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    return hook


def test_cli_help_hook_expands_a_command_and_fails_on_an_unknown_one() -> None:
    from mkdocs.exceptions import PluginError

    hook = _load_hook()
    page = hook.on_page_markdown("before\n<!-- cli-help: schemes -->\nafter")
    assert "$ initsuite schemes --help\nusage: initsuite schemes" in page
    assert page.startswith("before\n```text\n") and page.endswith("```\nafter")
    with pytest.raises(PluginError, match="no-such-command"):
        hook.on_page_markdown("<!-- cli-help: no-such-command -->")


def test_cli_page_documents_every_command() -> None:
    usage = _load_hook().help_text([])
    commands = re.search(r"\{([\w,-]+)\}", usage)
    assert commands is not None, usage
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    missing = [c for c in commands.group(1).split(",") if f"<!-- cli-help: {c} -->" not in page]
    assert not missing, f"docs/cli.md lacks the help of {missing}"


def test_api_pages_cover_the_public_api() -> None:
    pages = "".join(p.read_text(encoding="utf-8") for p in (DOCS / "api").glob("*.md"))
    documented = set(re.findall(r"^::: initsuite\.(\w+)", pages, re.M))
    public = {n for n in initsuite.__all__ if not n.startswith("__")}
    assert public - documented == set()
    assert documented - public == set()  # every page points at a public name


@pytest.mark.parametrize(
    "table",
    [
        "CELLS",
        "LAYERS",
        "TIMING",
        "THEORY",
        "TRAINING",
        "TRAINING_RUNS",
        "PROBE",
        "COORDS",
        "KSHAPING_CURVES",
        "KSHAPING_RUNS",
    ],
)
def test_tables_page_lists_every_column(table: str) -> None:
    page = (DOCS / "tables.md").read_text(encoding="utf-8")
    missing = [c for c in getattr(C, table) if f"`{c}`" not in page]
    assert not missing, f"docs/tables.md does not describe {missing}"


@pytest.mark.parametrize("page", ["README.md", "bench/README.md"])
def test_readme_links_resolve(page: str) -> None:
    """The READMEs lie outside the site's strict build: their relative links are checked here."""
    path = ROOT / page
    targets = re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8"))
    local = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:|#", t)]
    assert local, f"{page} links nowhere"
    missing = [t for t in local if not (path.parent / t).exists()]
    assert not missing, f"{page} links to missing files {missing}"

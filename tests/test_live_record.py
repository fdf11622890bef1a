"""The record of confirmed library versions (initsuite.core.checked, tests/live_record.py):
a newer installed version is compared, never failed by itself; a run with
INITSUITE_RECORD_CHECKED=1 records a library only when every one of its live tests passed."""

from __future__ import annotations

import json
from pathlib import Path

import live_record
import pytest

from initsuite.core import checked


def test_confirmed_needs_every_phase_passed_and_one_test_run() -> None:
    outcomes = {
        "jax": ["passed", "passed"],
        "flax": ["passed", "failed"],
        "keras": ["passed", "skipped"],
        "timm": [],
    }
    assert live_record.confirmed(outcomes) == {"jax"}


def test_write_merges_and_load_validates(tmp_path: Path) -> None:
    path = tmp_path / "versions.json"
    path.write_text('{"jax": "0.1", "keras": "3.0"}')
    assert checked.write({"jax": "0.2", "timm": "1.0"}, path) == {
        "jax": "0.2", "keras": "3.0", "timm": "1.0"}  # fmt: skip
    assert checked.load(path) == {"jax": "0.2", "keras": "3.0", "timm": "1.0"}
    assert not list(tmp_path.glob("*.tmp"))
    path.write_text('{"jax": 2}')
    with pytest.raises(ValueError, match=r"versions\.json"):
        checked.load(path)


def test_the_shipped_record_names_every_live_library() -> None:
    record = checked.load()
    for lib in ("torch", "jax", "flax", "keras", "transformers", "timm"):
        assert lib in record and record[lib][0].isdigit(), lib
    assert checked.checked("flax", "jax") == f"flax {record['flax']}, jax {record['jax']}"
    assert checked.checked() == checked.NOT_CHECKED_LIVE


LIVE_TESTS = """
import pytest

@pytest.mark.live("alpha")
def test_alpha_one(): pass

@pytest.mark.live("alpha", "beta")
def test_alpha_and_beta(): pass

@pytest.mark.live("gamma")
def test_gamma_fails(): assert False

@pytest.mark.live("delta")
def test_delta_skips(): pytest.skip("not installed")

def test_unmarked(): pass
"""


@pytest.mark.parametrize("record", [True, False])
def test_a_recording_run_records_only_what_passed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, record: bool
) -> None:
    seen: list[set[str]] = []
    monkeypatch.setattr(live_record, "record", lambda libs: seen.append(set(libs)) or {})
    if record:
        monkeypatch.setenv(live_record.RECORD_ENV, "1")
    else:
        monkeypatch.delenv(live_record.RECORD_ENV, raising=False)
    pytester.makepyfile(LIVE_TESTS)
    pytester.makeini("[pytest]\nmarkers =\n    live: live\n")
    result = pytester.runpytest_inprocess("-p", "live_record", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    assert seen == ([{"alpha", "beta"}] if record else [])


def test_the_catalog_quotes_the_record() -> None:
    rows = json.loads(Path(checked.PATH).with_name("scheme_catalog.json").read_text())
    record = checked.load()
    jax_rows = [r for r in rows if r["scheme"].startswith("jax:")]
    assert jax_rows and {r["checked"] for r in jax_rows} == {f"jax {record['jax']}"}

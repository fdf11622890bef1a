"""pytest plugin: record the library versions that the live tests confirm.

A live test carries ``@pytest.mark.live("jax", ...)``: it compares initsuite's laws with the
installed library. With ``INITSUITE_RECORD_CHECKED=1`` (``make lock``, ``make test-latest``),
a library all of whose live tests passed in the run (at least one ran; none failed, errored or
skipped) has its installed version written to ``initsuite/core/checked_versions.json``, and
the shipped scheme catalog, which quotes it, is rewritten. Other runs only compare.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from importlib import metadata

import pytest

from initsuite.core import checked

RECORD_ENV = "INITSUITE_RECORD_CHECKED"


def confirmed(outcomes: Mapping[str, Iterable[str]]) -> set[str]:
    """The libraries whose live tests all passed: ``outcomes`` maps a library to the outcome
    (``passed``, ``failed``, ``skipped``) of each of its tests' phases."""
    return {lib for lib, seen in outcomes.items() if (s := set(seen)) and s == {"passed"}}


def record(libraries: Iterable[str]) -> dict[str, str]:
    """Write the installed versions of ``libraries`` to the record and rewrite the scheme
    catalog in a fresh process (this one's registry still quotes the old record)."""
    updates = {lib: metadata.version(lib) for lib in sorted(libraries)}
    if updates:
        checked.write(updates)
        code = "import initsuite.schemes as s; s.write_catalog()"
        subprocess.run([sys.executable, "-c", code], check=True)
    return updates


class _Recorder:
    def __init__(self) -> None:
        self.outcomes: defaultdict[str, list[str]] = defaultdict(list)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
        outcome = yield
        libs = [lib for mark in item.iter_markers("live") for lib in mark.args]
        if libs:  # user_properties travel with the report to xdist's controller
            outcome.get_result().user_properties.append(("live", libs))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, libs in report.user_properties:
            if key == "live" and (report.when == "call" or not report.passed):
                for lib in libs:
                    self.outcomes[lib].append(report.outcome)

    def pytest_terminal_summary(self, terminalreporter, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
        if hasattr(config, "workerinput") or os.environ.get(RECORD_ENV) != "1":
            return
        updates = record(confirmed(self.outcomes))
        failed = sorted(set(self.outcomes) - set(updates))
        terminalreporter.write_line(
            f"live checks confirmed: {updates or 'none'}; not confirmed: {failed or 'none'}"
        )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_Recorder(), "initsuite-live-record")

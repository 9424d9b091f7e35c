"""Shared test set-up: markers, the hardware skip, and a private data directory per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# No per-example deadline: speed is measured by the benchmarks, never by a test's stopwatch
# (hypothesis's 200 ms default failed test_cpr once on a machine busy with other suites).
settings.register_profile("kontaktstation", deadline=None)
settings.load_profile("kontaktstation")


def _on_raspberry_pi() -> bool:
    model = Path("/proc/device-tree/model")
    try:
        return b"Raspberry Pi" in model.read_bytes()
    except OSError:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _on_raspberry_pi():
        return
    skip = pytest.mark.skip(reason="hardware test: runs only on a Raspberry Pi")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty station data directory, also exported as KONTAKTSTATION_DATA_DIR."""
    path = tmp_path / "data"
    path.mkdir(mode=0o700)
    monkeypatch.setenv("KONTAKTSTATION_DATA_DIR", str(path))
    yield path


@pytest.fixture(autouse=True)
def _language_per_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """A language one test chose (set_language, a configuration applied in-process) ends with
    it: the next test starts from KONTAKTSTATION_LANG or Danish."""
    from station import i18n

    monkeypatch.setattr(i18n, "_language", i18n._language)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI a skip is a failure: every tool a test needs is installed by the project's own
    scripts there, so a skip would only hide a test that never ran."""
    outcome = yield
    report = outcome.get_result()
    if (
        os.environ.get("CI")
        and report.skipped
        and "hardware" not in item.keywords
        and not hasattr(report, "wasxfail")
    ):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in CI, where nothing may be skipped: {reason}"

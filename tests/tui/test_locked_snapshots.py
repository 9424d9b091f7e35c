"""What the locked UI looks like (pytest-textual-snapshot), at the station's 100x30 terminal.

Fixed clock (:data:`T0`, 09:50 in Copenhagen) and fixed data (the demo care home, seeded into
a real stationd). Each test also checks the drawn screen for personal data: none of the
seeded residents' names, CPR numbers, rooms, birth dates or reasons may appear.
Update after an intended change with ``pytest tests/tui/test_locked_snapshots.py
--snapshot-update`` and look at the SVGs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from station import i18n
from tests.tui.test_locked_harness import (
    PERSONAL,
    SIZE,
    DaemonThread,
    make_app,
    screen_text,
    station,
    wait_until,
)
from tui.locked.app import LockedApp
from tui.locked.link import DaemonStation, Enrollment

__all__ = ["station"]


@pytest.fixture(autouse=True)
def danish(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(i18n, "_language", "da")


def settled(app: LockedApp, text: str, seen: list[str]) -> Callable[[Any], Any]:
    """A ``run_before`` that waits until ``text`` is drawn, and keeps the SVG for checks."""

    async def run_before(pilot: Any) -> None:
        await wait_until(lambda: app.loaded and text in screen_text(app), pilot)
        await pilot.pause()
        seen.append(app.export_screenshot())

    return run_before


def assert_no_personal_data(seen: list[str]) -> None:
    assert seen, "the screen was never captured"
    assert not [p for p in PERSONAL if p in seen[-1]]


class TestLockScreen:
    def test_with_a_consultation_due_soon(self, station: DaemonThread, snap_compare: Any) -> None:
        station.run(station.seed())
        app = make_app(station)
        seen: list[str] = []
        assert snap_compare(
            app, terminal_size=SIZE, run_before=settled(app, "Videokonsultation om 10", seen)
        )
        assert_no_personal_data(seen)

    def test_without_a_reminder(self, station: DaemonThread, snap_compare: Any) -> None:
        station.run(station.seed(round_in=timedelta(hours=2)))
        app = make_app(station)
        seen: list[str] = []
        assert snap_compare(app, terminal_size=SIZE, run_before=settled(app, "11:50", seen))
        assert "Videokonsultation om" not in seen[-1]
        assert_no_personal_data(seen)

    def test_not_yet_provisioned_shows_the_enrollment_code(
        self, station: DaemonThread, snap_compare: Any
    ) -> None:
        class Unprovisioned(DaemonStation):
            # stationd's /v1/enrollment answers 404 until provisioning lands; this is the
            # shape it will answer with.
            async def enrollment(self) -> Enrollment | None:
                return Enrollment(code="KS-7Q4M-2XPA", qr_payload="ks-enrol:KS-7Q4M-2XPA")

        app = make_app(station, link=Unprovisioned.connect(station.socket_path))
        seen: list[str] = []
        assert snap_compare(app, terminal_size=SIZE, run_before=settled(app, "KS-7Q4M", seen))
        assert_no_personal_data(seen)


class TestPrivateCallScreen:
    def test_the_residents_controls(self, station: DaemonThread, snap_compare: Any) -> None:
        seeded = station.run(station.seed())
        assert station.run(station.go_private(seeded[0].id)) == "in_call_private"
        app = make_app(station)
        seen: list[str] = []
        assert snap_compare(
            app, terminal_size=SIZE, run_before=settled(app, "Kald personalet", seen)
        )
        assert_no_personal_data(seen)

"""What both screens look like when the GP has left (pytest-textual-snapshot, 100x30).

Fixed clock and data as in the other snapshot tests; stationd runs on a thread of its own and
publishes the call engine's ``gp_left`` status on its event stream. Update after an intended
change with ``pytest tests/tui/test_gp_left_snapshots.py --snapshot-update`` and look at the
SVGs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from station import i18n
from tests.integration.daemon_harness import short_socket_dir
from tests.tui.test_locked_harness import (
    PERSONAL,
    SIZE,
    DaemonThread,
    make_app,
    screen_text,
    station,
    wait_until,
)
from tests.tui.test_staff_snapshots import settle, to_precheck
from tests.tui.test_staff_support import (
    Station,
    on_call_screen,
    press_leaving,
    seed,
    threaded_station,
    wait_for,
)
from tui.staff.screens.call import CallScreen

__all__ = ["station"]

LEFT = "Lægen har forladt samtalen"


@pytest.fixture(autouse=True)
def danish(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(i18n, "_language", "da")


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    with short_socket_dir() as path:
        yield path


@pytest.fixture
def staff(data_dir: Path, socket_dir: Path) -> Iterator[Station]:
    with threaded_station(data_dir, socket_dir, prepare=seed) as running:
        yield running


def test_staff_call_screen_after_the_gp_left(staff: Station, snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await to_precheck(pilot)
        await press_leaving(pilot, "ctrl+s")
        await on_call_screen(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, CallScreen)
        staff.in_daemon(staff.service.call_gp_admitted)
        await wait_for(pilot, lambda: screen.admitted and screen.current is not None)
        staff.in_daemon(
            lambda: staff.service.publish_call_status(
                "gp_left", reason="left", ends_in=60.0, attempt=1
            )
        )
        status = screen.query_one("#call-status", Static)
        await wait_for(pilot, lambda: LEFT in str(status.render()))
        pilot.app.clear_notifications()
        await settle(pilot)

    assert snap_compare(staff.app(live_interval=0), terminal_size=SIZE, run_before=run_before)


def test_private_screen_after_the_gp_left(station: DaemonThread, snap_compare: Any) -> None:
    seeded = station.run(station.seed())
    assert station.run(station.go_private(seeded[0].id)) == "in_call_private"
    app = make_app(station)
    seen: list[str] = []

    async def publish() -> None:
        assert station.running is not None
        station.running.daemon.service.publish_call_status(
            "gp_left", reason="left", ends_in=60.0, attempt=1
        )

    async def run_before(pilot: Any) -> None:
        await wait_until(lambda: app.loaded and "Kald personalet" in screen_text(app), pilot)
        await station.arun(publish())
        await wait_until(lambda: LEFT in screen_text(app), pilot)
        await pilot.pause()
        seen.append(app.export_screenshot())

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    assert seen and not [p for p in PERSONAL if p in seen[-1]]

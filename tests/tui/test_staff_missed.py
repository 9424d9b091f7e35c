"""Issue 17, item 2 (the part on the screen): a booked consultation whose slot passed without
a call is recorded by stationd (its own reminder loop, on the shared FakeClock) and shown to
staff at the next log-in, in Danish, with time and clinic only; the log-in after does not
show it again, while the heartbeat's count keeps it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from textual.widgets import Static

from tests.integration.daemon_harness import CLINIC, short_socket_dir
from tests.tui.fit import assert_fits
from tests.tui.station_screen import STATION_SIZES
from tests.tui.test_staff_support import SIZE, Station, seed, staff_station, unlock, wait_for
from tui.staff.screens.today import TodayScreen
from tui.staff.widgets.banner import MissedNotice, UndocumentedReminder

#: Whether each log-in showed both banners at once (the tightest Today).
both: list[bool] = []


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    with short_socket_dir() as path:
        yield path


@pytest.fixture
async def station(data_dir: Path, socket_dir: Path) -> AsyncIterator[Station]:
    async with staff_station(data_dir, socket_dir, reminder_tick_seconds=0.05) as running:
        await seed(running)
        yield running


async def notice_after_log_in(station: Station, size: tuple[int, int] = SIZE) -> tuple[bool, str]:
    """Log in, read the notice on Today (which still fits the screen), lock again."""
    app = station.app(live_interval=0)
    async with app.run_test(size=size) as pilot:
        await unlock(pilot)
        screen = app.screen
        assert isinstance(screen, TodayScreen)
        notice = screen.query_one(MissedNotice)
        await pilot.pause(0.3)
        shown, text = notice.display, str(Static.render(notice))
        both.append(shown and screen.query_one(UndocumentedReminder).display)
        assert_fits(screen)
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: app.exit_code is not None)
    return shown, text


async def test_a_missed_slot_is_shown_at_the_next_log_in(station: Station) -> None:
    service = station.service
    # Booked for 09:00-09:20 Danish time (the clock says 09:50): nobody called.
    await service.db(
        service.store.create_consultation,
        consultation_id="missed-1",
        clinic_id=CLINIC.id,
        starts_at=station.clock.now() - timedelta(minutes=50),
        ends_at=station.clock.now() - timedelta(minutes=30),
        consultation_type="video_consultation",
    )
    async with asyncio.timeout(10):
        while not service.missed_since_start:
            await asyncio.sleep(0.05)
    assert service.missed_since_start == 1
    # The smaller station screen (1280x720), with the undocumented banner beside it.
    await service.db(service.store.set_consultation_status, station.round_id, "ended")
    shown, text = await notice_after_log_in(station, STATION_SIZES["1280x720"])
    assert shown, text
    assert both[-1] is True  # and it fitted, with "Mangler dokumentation" above the table
    assert text.startswith("Glemte videokonsultationer (1): ") and CLINIC.name in text
    assert "09:00" in text and "kontakt klinikken" in text
    # Seen: the next log-in is quiet, and IT still counts it.
    assert await notice_after_log_in(station) == (False, "")
    assert (await service.attendance_counts())[0] == 1

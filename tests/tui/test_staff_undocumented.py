"""Issue 17, item 3 (the part on the screen): a consultation whose call ended without a note
appears under "Mangler dokumentation" at every log-in, until it is documented or cancelled.

The state is stationd's store (status ``ended``), so it survives the staff UI's exit at every
lock and stationd's restarts; the banner names time and clinic only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from textual.widgets import Static

from tests.integration.daemon_harness import CLINIC, short_socket_dir
from tests.tui.test_staff_support import SIZE, Station, seed, staff_station, unlock, wait_for
from tui.staff.screens.today import TodayScreen
from tui.staff.widgets.banner import UndocumentedReminder


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    with short_socket_dir() as path:
        yield path


@pytest.fixture
async def station(data_dir: Path, socket_dir: Path) -> AsyncIterator[Station]:
    async with staff_station(data_dir, socket_dir) as running:
        await seed(running)
        yield running


async def banner_after_log_in(station: Station) -> tuple[bool, str]:
    """Log in, read the banner on Today, lock again."""
    app = station.app(live_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        screen = app.screen
        assert isinstance(screen, TodayScreen)
        banner = screen.query_one(UndocumentedReminder)
        await pilot.pause(0.2)
        shown, text = banner.display, str(Static.render(banner))
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: app.exit_code is not None)
    return shown, text


async def test_an_ended_call_without_a_note_is_shown_at_every_log_in_until_documented(
    station: Station,
) -> None:
    store = station.service.store
    assert await banner_after_log_in(station) == (False, "")
    await station.service.db(store.set_consultation_status, station.round_id, "ended")
    for _ in range(2):  # every log-in, not once
        shown, text = await banner_after_log_in(station)
        assert shown, text
        assert text.startswith("Mangler dokumentation (1): ") and CLINIC.name in text
        assert "10:00" in text  # the round's time, Danish
    await station.service.db(store.mark_documented, station.round_id, station.clock.now())
    assert await banner_after_log_in(station) == (False, "")


async def test_a_cancelled_consultation_leaves_the_list(station: Station) -> None:
    store = station.service.store
    for cid in (station.round_id, station.cpr_id):
        await station.service.db(store.set_consultation_status, cid, "ended")
    shown, text = await banner_after_log_in(station)
    assert shown and text.startswith("Mangler dokumentation (2): ")
    await station.service.db(store.set_consultation_status, station.cpr_id, "cancelled")
    shown, text = await banner_after_log_in(station)
    assert shown and text.startswith("Mangler dokumentation (1): ")

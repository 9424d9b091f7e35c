"""Issue 17, item 4: every staff screen and dialog fits the station's screen, without scrolling.

At the kiosk's real sizes (``tests/tui/station_screen.py``: 97 x 28 cells at 1280x720, 146 x 42
at 1920x1080, foot with DejaVu Sans Mono 16 pt) each screen is reached as staff reach it,
checked with :func:`tests.tui.fit.assert_fits` (no scroll bar, every control drawn whole:
this fails when a form grows a scroll bar, whatever the picture) and then compared with its
snapshot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, RadioButton, Select, Static, TextArea

from station.core.session import CallOutcome
from tests.integration.daemon_harness import STAFF_NUMBER, short_socket_dir
from tests.tui.fit import assert_fits
from tests.tui.station_screen import STATION_SIZES
from tests.tui.test_staff_snapshots import gradient
from tests.tui.test_staff_support import (
    Station,
    on_call_screen,
    press_leaving,
    seed,
    threaded_station,
    unlock,
    wait_for,
)
from tui.staff.screens.booking import AppointmentDialog
from tui.staff.screens.call import CallScreen
from tui.staff.screens.dialogs import ConfirmDialog
from tui.staff.screens.enroll import EnrollScreen
from tui.staff.screens.precheck import PreCheckScreen
from tui.staff.screens.resident import ResidentDetail, ResidentDialog
from tui.staff.screens.wrapup import WrapUpScreen
from tui.staff.widgets.meter import LevelMeter
from tui.staff.widgets.preview import CameraPreview
from tui.video import VIDEO_TOP_ENV, video_rows

SIZES = sorted(STATION_SIZES.items())
IDS = [name for name, _size in SIZES]


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    with short_socket_dir() as path:
        yield path


@pytest.fixture
def station(data_dir: Path, socket_dir: Path) -> Iterator[Station]:
    with threaded_station(data_dir, socket_dir, prepare=seed) as running:
        yield running


async def settle(pilot: Pilot[Any]) -> None:
    # A blinking cursor is drawn or not depending on when the picture is taken.
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    for area in pilot.app.screen.query(TextArea):
        area.cursor_blink = False
    await pilot.pause(0.5)
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


async def log_in_screen(pilot: Pilot[Any], station: Station) -> None:
    pilot.app.screen.query_one("#staff-number", Input).value = STAFF_NUMBER
    pilot.app.screen.query_one("#pin", Input).focus()


async def enroll_screen(pilot: Pilot[Any], station: Station) -> None:
    pilot.app.screen.query_one("#enroll", Button).press()
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, EnrollScreen))
    # Mounted (it focuses the code field itself) before the focus moves on.
    await wait_for(pilot, lambda: getattr(pilot.app.focused, "id", None) == "enroll-code")
    pilot.app.screen.query_one("#enroll-code", Input).value = "K7QM-2XPA"
    pilot.app.screen.query_one("#new-pin", Input).value = "4829"
    await pilot.pause(0.3)  # the screen's own focus settles first (it can come late)
    pilot.app.screen.query_one("#new-pin", Input).focus()
    await wait_for(pilot, lambda: getattr(pilot.app.focused, "id", None) == "new-pin")


async def today(pilot: Pilot[Any], station: Station) -> None:
    await unlock(pilot)


async def appointment_dialog(pilot: Pilot[Any], station: Station) -> None:
    await unlock(pilot)
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, AppointmentDialog))


async def resident_without_cpr(pilot: Pilot[Any], station: Station) -> None:
    await unlock(pilot)
    await pilot.press("r")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ResidentDialog))


async def resident_with_cpr(pilot: Pilot[Any], station: Station) -> None:
    """The dialog the issue names: with CPR, a warning shown, the buttons in sight."""
    await resident_without_cpr(pilot, station)
    dialog = pilot.app.screen
    dialog.query_one("#with", RadioButton).value = True
    dialog.query_one("#name", Input).value = "Bent Holm"
    dialog.query_one("#cpr", Input).value = "010190-1235"
    status = dialog.query_one("#cpr-status", Static)
    await wait_for(pilot, lambda: bool(str(status.render()).strip()))


async def resident_record(pilot: Pilot[Any], station: Station) -> None:
    await unlock(pilot)
    pilot.app.screen.query_one("#queue", DataTable).focus()
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ResidentDetail))


async def precheck(pilot: Pilot[Any], station: Station) -> None:
    await unlock(pilot)
    await press_leaving(pilot, "c")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, PreCheckScreen))
    screen = pilot.app.screen
    assert isinstance(screen, PreCheckScreen)
    await wait_for(pilot, lambda: None not in [ok for ok, _hint in screen.results.values()])
    await wait_for(pilot, lambda: "hub" in screen.results)  # the network check answered
    # Fixed stand-ins for the live camera picture and microphone level.
    screen.query_one(CameraPreview).frame = gradient()
    screen.query_one(LevelMeter).level = -23.5


async def attended_call(pilot: Pilot[Any], station: Station) -> None:
    await precheck(pilot, station)
    await press_leaving(pilot, "ctrl+s")
    await on_call_screen(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, CallScreen)
    station.in_daemon(station.service.call_gp_admitted)
    await wait_for(pilot, lambda: screen.admitted and screen.current is not None)
    pilot.app.clear_notifications()


async def wrap_up(pilot: Pilot[Any], station: Station) -> None:
    await precheck(pilot, station)
    await press_leaving(pilot, "ctrl+s")
    await on_call_screen(pilot)
    station.in_daemon(station.service.call_gp_admitted)
    station.clock.advance(540)
    station.in_daemon(lambda: station.service.call_ended(CallOutcome.HUNG_UP_GP))
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, WrapUpScreen))
    screen = pilot.app.screen
    assert isinstance(screen, WrapUpScreen)
    await wait_for(pilot, lambda: screen.appointment is not None and bool(screen.call_events))
    screen.query_one("#note-text", TextArea).text = "Blodtryk fint. Ny kontrol om 3 mdr."
    screen.query_one("#outcome", Select).value = "follow_up"
    pilot.app.clear_notifications()


async def confirm_dialog(pilot: Pilot[Any], station: Station) -> None:
    """A yes-or-no question: marking the round documented with residents without a note."""
    await wrap_up(pilot, station)
    await pilot.press("f2")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog))


SCREENS: dict[str, Callable[[Pilot[Any], Station], Awaitable[None]]] = {
    "log_in": log_in_screen,
    "enroll": enroll_screen,
    "today": today,
    "appointment_dialog": appointment_dialog,
    "resident_without_cpr": resident_without_cpr,
    "resident_with_cpr": resident_with_cpr,
    "resident_record": resident_record,
    "precheck": precheck,
    "attended_call": attended_call,
    "wrap_up": wrap_up,
    "confirm_dialog": confirm_dialog,
}


@pytest.mark.parametrize(("screen_name", "size"), SIZES, ids=IDS)
@pytest.mark.parametrize("name", sorted(SCREENS))
def test_every_staff_screen_fits_the_station(
    station: Station, snap_compare: Any, name: str, screen_name: str, size: tuple[int, int]
) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await SCREENS[name](pilot, station)
        await settle(pilot)
        assert_fits(pilot.app.screen)

    assert snap_compare(station.app(live_interval=0), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize(("screen_name", "size"), SIZES, ids=IDS)
async def test_the_call_screen_stays_below_the_video_in_the_kiosk(
    station: Station, monkeypatch: pytest.MonkeyPatch, screen_name: str, size: tuple[int, int]
) -> None:
    """In the kiosk the UI has the whole screen and the GP's video window covers its top 60 %
    during the call (``KONTAKTSTATION_VIDEO_TOP``, as the kiosk unit sets it): the call's
    content starts below it, and its controls are drawn whole there."""
    monkeypatch.setenv(VIDEO_TOP_ENV, "60")
    covered = video_rows(size[1])
    async with station.app(live_interval=0).run_test(size=size) as pilot:
        await attended_call(pilot, station)
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, CallScreen)
        assert screen.query_one("#call").region.y == covered, screen_name
        for button in screen.query(Button):
            region = button.region
            assert region.y >= covered and region.bottom <= size[1], (button.id, region)

"""What every staff screen looks like at the station's terminal size (100x30).

Fixed clock (Monday 10 March 2025, 09:50), fixed data; stationd runs on a thread of its own
(the snapshot plugin runs the app in its own loop). The camera thumbnail and the level meter
are live in the product: here they are given fixed values after the checks settle, so the
picture of the screen is stable. Update with ``pytest --snapshot-update`` after a deliberate
change, and look at the SVGs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, RadioButton, Select, TextArea

from station.core.session import CallOutcome
from tests.integration.daemon_harness import short_socket_dir
from tests.tui.test_staff_injection import ANSI, BIDI, CONTROL, EMOJI, HUGE, MARKUP
from tests.tui.test_staff_support import (
    SIZE,
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
from tui.staff.screens.precheck import PreCheckScreen
from tui.staff.screens.resident import ResidentDetail, ResidentDialog
from tui.staff.screens.wrapup import WrapUpScreen
from tui.staff.widgets.meter import LevelMeter
from tui.staff.widgets.preview import CameraPreview


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    with short_socket_dir() as path:
        yield path


@pytest.fixture
def station(data_dir: Path, socket_dir: Path) -> Iterator[Station]:
    with threaded_station(data_dir, socket_dir, prepare=seed) as running:
        yield running


@pytest.fixture
def hostile_station(data_dir: Path, socket_dir: Path) -> Iterator[Station]:
    async def prepare(station: Station) -> None:
        await seed(station, raw_names=(MARKUP, ANSI, CONTROL, BIDI, EMOJI, HUGE))

    with threaded_station(data_dir, socket_dir, prepare=prepare) as running:
        yield running


def gradient(width: int = 64, height: int = 48) -> tuple[int, int, bytes]:
    """A fixed stand-in picture: a colour gradient with a dark "face" in the middle."""
    data = bytearray()
    for y in range(height):
        for x in range(width):
            inside = (x - width / 2) ** 2 / 150 + (y - height / 2) ** 2 / 200 < 1
            data += bytes((40, 40, 40)) if inside else bytes((x * 4 % 256, y * 5 % 256, 160))
    return width, height, bytes(data)


async def settle(pilot: Pilot[Any]) -> None:
    await pilot.pause(0.3)
    await pilot.wait_for_scheduled_animations()
    # The text cursor blinks every 0.5 s: under load the picture could catch it off. Stop it
    # where a quiet machine sees it (shown in the focused input, as just after focus).
    for field in pilot.app.screen.query(Input):
        field._pause_blink(visible=field.has_focus)
    # Then until the picture stops changing: under the whole suite on two cores a late
    # refresh (focus styles, the footer's bindings) once landed after the fixed pause.
    picture = pilot.app.export_screenshot()
    for _ in range(50):
        await pilot.pause(0.1)
        again = pilot.app.export_screenshot()
        if again == picture:
            return
        picture = again
    raise AssertionError("the screen did not settle within 5 s")


class TestPinSnapshots:
    def test_pin_entry(self, station: Station, snap_compare: Any) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            pilot.app.screen.query_one("#staff-number", Input).value = "101"
            pilot.app.screen.query_one("#pin", Input).value = "47"
            pilot.app.screen.query_one("#pin", Input).focus()

        assert snap_compare(station.app(live_interval=0), terminal_size=SIZE, run_before=run_before)

    def test_new_staff_member(self, station: Station, snap_compare: Any) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            pilot.app.screen.query_one("#enroll", Button).press()
            # Wait for the enrolment screen itself, not a fixed pause: under load (the whole
            # suite on two cores) 0.2 s was not always enough for the screen to be pushed.
            for _ in range(100):
                if pilot.app.screen.query("#enroll-code"):
                    break
                await pilot.pause(0.05)
            # Mounted: the screen focuses the code field itself; only then move the focus.
            await wait_for(pilot, lambda: getattr(pilot.app.focused, "id", None) == "enroll-code")
            # And let the screen's start finish: CI once caught Textual's auto-focus on the
            # screen's resume landing after the move below (the code field focused, its text
            # selected), and the picture then settled on that.
            await settle(pilot)
            pilot.app.screen.query_one("#enroll-code", Input).value = "K7QM-2XPA"
            pilot.app.screen.query_one("#new-pin", Input).value = "4829"
            pilot.app.screen.query_one("#new-pin", Input).focus()
            await wait_for(pilot, lambda: getattr(pilot.app.focused, "id", None) == "new-pin")
            await settle(pilot)
            assert getattr(pilot.app.focused, "id", None) == "new-pin"

        assert snap_compare(
            station.app(live_interval=0), terminal_size=(100, 44), run_before=run_before
        )


class TestTodaySnapshots:
    def test_today(self, station: Station, snap_compare: Any) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            await unlock(pilot)
            await settle(pilot)

        assert snap_compare(station.app(live_interval=0), terminal_size=SIZE, run_before=run_before)

    def test_today_with_hostile_names(self, hostile_station: Station, snap_compare: Any) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            await unlock(pilot)
            pilot.app.screen.query_one("#queue", DataTable).focus()
            await settle(pilot)

        assert snap_compare(
            hostile_station.app(live_interval=0), terminal_size=SIZE, run_before=run_before
        )

    def test_new_appointment_dialog(self, station: Station, snap_compare: Any) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            await unlock(pilot)
            await pilot.press("a")
            await wait_for(pilot, lambda: isinstance(pilot.app.screen, AppointmentDialog))
            pilot.app.screen.query_one("#time", Input).value = "13:30"
            await settle(pilot)

        assert snap_compare(station.app(live_interval=0), terminal_size=SIZE, run_before=run_before)

    def test_add_resident_with_cpr_warning(self, station: Station, snap_compare: Any) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            await unlock(pilot)
            await pilot.press("r")
            await wait_for(pilot, lambda: isinstance(pilot.app.screen, ResidentDialog))
            dialog = pilot.app.screen
            dialog.query_one("#with", RadioButton).value = True
            dialog.query_one("#name", Input).value = "Bent Holm"
            dialog.query_one("#cpr", Input).value = "010190-1235"
            await settle(pilot)

        assert snap_compare(station.app(live_interval=0), terminal_size=SIZE, run_before=run_before)

    def test_resident_record(self, station: Station, snap_compare: Any) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            await unlock(pilot)
            pilot.app.screen.query_one("#queue", DataTable).focus()
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(pilot.app.screen, ResidentDetail))
            await settle(pilot)

        assert snap_compare(station.app(live_interval=0), terminal_size=SIZE, run_before=run_before)


async def to_precheck(pilot: Pilot[Any]) -> PreCheckScreen:
    await unlock(pilot)
    await press_leaving(pilot, "c")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, PreCheckScreen))
    screen = pilot.app.screen
    assert isinstance(screen, PreCheckScreen)
    await wait_for(pilot, lambda: None not in [ok for ok, _hint in screen.results.values()])
    await wait_for(pilot, lambda: "hub" in screen.results)  # the network check answered
    return screen


class TestCallSnapshots:
    def test_pre_call_check(self, station: Station, snap_compare: Any) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            screen = await to_precheck(pilot)
            screen.query_one(CameraPreview).frame = gradient()
            screen.query_one(LevelMeter).level = -23.5
            await settle(pilot)

        assert snap_compare(station.app(live_interval=0), terminal_size=SIZE, run_before=run_before)

    def test_attended_call(self, station: Station, snap_compare: Any) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            await to_precheck(pilot)
            await press_leaving(pilot, "ctrl+s")
            await on_call_screen(pilot)
            screen = pilot.app.screen
            assert isinstance(screen, CallScreen)
            station.in_daemon(station.service.call_gp_admitted)
            await wait_for(pilot, lambda: screen.admitted and screen.current is not None)
            pilot.app.clear_notifications()
            await settle(pilot)

        assert snap_compare(station.app(live_interval=0), terminal_size=SIZE, run_before=run_before)

    def test_wrap_up(self, station: Station, snap_compare: Any) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            await to_precheck(pilot)
            await press_leaving(pilot, "ctrl+s")
            await on_call_screen(pilot)
            station.in_daemon(station.service.call_gp_admitted)
            station.clock.advance(540)
            station.in_daemon(lambda: station.service.call_ended(CallOutcome.HUNG_UP_GP))
            await wait_for(pilot, lambda: isinstance(pilot.app.screen, WrapUpScreen))
            screen = pilot.app.screen
            assert isinstance(screen, WrapUpScreen)
            await wait_for(
                pilot, lambda: screen.appointment is not None and bool(screen.call_events)
            )
            screen.query_one("#note-text", TextArea).text = "Blodtryk fint. Ny kontrol om 3 mdr."
            screen.query_one("#outcome", Select).value = "follow_up"
            pilot.app.clear_notifications()
            await settle(pilot)

        assert snap_compare(station.app(live_interval=0), terminal_size=SIZE, run_before=run_before)

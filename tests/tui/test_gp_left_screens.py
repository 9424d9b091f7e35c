"""Both screens tell the truth when the GP leaves: stationd's ``call`` events drive them.

stationd runs for real (fake hardware, real socket); the call engine's statuses are published
on its event stream exactly as :class:`station.daemon.call_api.CallController` does
(``service.publish_call_status``), so these tests check the UIs' side of the contract: the
staff call screen and the locked UI's private screen say "Lægen har forladt samtalen" and what
to do, and stop saying it when the GP is back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
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
from tests.tui.test_staff_support import (
    Station,
    on_call_screen,
    press_leaving,
    seed,
    staff_station,
    unlock,
    wait_for,
)
from tui.locked.screens import PrivateCallScreen
from tui.staff.screens.call import CallScreen
from tui.staff.screens.precheck import PreCheckScreen

__all__ = ["station"]  # the locked UI's fixture, re-exported for pytest

LEFT = "Lægen har forladt samtalen"


@pytest.fixture(autouse=True)
def danish(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(i18n, "_language", "da")


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    with short_socket_dir() as path:
        yield path


@pytest.fixture
async def staff(data_dir: Path, socket_dir: Path) -> AsyncIterator[Station]:
    async with staff_station(data_dir, socket_dir) as running:
        await seed(running)
        yield running


def text_of(widget: Static) -> str:
    return str(widget.render())


async def in_call(pilot: Any, staff: Station) -> CallScreen:
    """Unlock, pass the check, start the call; the GP admits the station."""
    app = pilot.app
    await unlock(pilot)
    await press_leaving(pilot, "c")
    await wait_for(pilot, lambda: isinstance(app.screen, PreCheckScreen))
    await press_leaving(pilot, "ctrl+s")
    await on_call_screen(pilot)
    call = app.screen
    assert isinstance(call, CallScreen)
    staff.service.call_gp_admitted()
    await wait_for(pilot, lambda: call.admitted)
    return call


async def test_staff_call_screen_says_the_gp_left_and_what_to_do(staff: Station) -> None:
    app = staff.app(live_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        call = await in_call(pilot, staff)
        status = call.query_one("#call-status", Static)
        assert LEFT not in text_of(status)

        staff.service.publish_call_status("gp_left", reason="left", ends_in=60.0, attempt=1)
        await wait_for(pilot, lambda: LEFT in text_of(status))
        text = text_of(status)
        assert "Lægen har lukket videosiden." in text
        assert "Opkaldet afsluttes af sig selv om 60 sekunder" in text
        assert "ringe til lægehuset" in text

        # The GP answered the station's re-dial: the message goes, the call goes on.
        staff.service.publish_call_status("gp_back", attempt=2)
        await wait_for(pilot, lambda: LEFT not in text_of(status))
        assert "I samtale" in text_of(status)

        # The GP's network is gone for good: said differently.
        staff.service.publish_call_status("gp_left", reason="gone", ends_in=45.0, attempt=3)
        await wait_for(pilot, lambda: LEFT in text_of(status))
        assert "Forbindelsen til lægen er tabt." in text_of(status)
        assert "om 45 sekunder" in text_of(status)
        staff.service.publish_call_status("connected", attempt=4)
        await wait_for(pilot, lambda: LEFT not in text_of(status))


async def test_staff_call_screen_says_what_the_gp_does_not_send(staff: Station) -> None:
    app = staff.app(live_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        call = await in_call(pilot, staff)
        status = call.query_one("#call-status", Static)
        staff.service.publish_call_status("gp_media", video=False, audio=False)
        await wait_for(pilot, lambda: "Lægen sender hverken billede eller lyd" in text_of(status))
        staff.service.publish_call_status("gp_media", video=False, audio=True)
        await wait_for(pilot, lambda: "Lægens kamera er slukket" in text_of(status))
        staff.service.publish_call_status("gp_media", video=True, audio=True)
        await wait_for(pilot, lambda: "Lægens kamera" not in text_of(status))
        staff.service.publish_call_status("video_stalled", attempt=1, frozen_for=2.0)
        await wait_for(pilot, lambda: "Billedet er frosset" in text_of(status))


async def test_staff_call_screen_in_english(
    staff: Station, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(i18n, "_language", "en")
    app = staff.app(live_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        call = await in_call(pilot, staff)
        status = call.query_one("#call-status", Static)
        staff.service.publish_call_status("gp_left", reason="left", ends_in=30.0, attempt=1)
        await wait_for(pilot, lambda: "The doctor has left the call" in text_of(status))
        assert "in 30 seconds" in text_of(status)


async def _publish(station: DaemonThread, status: str, **data: Any) -> None:
    async def publish() -> None:
        assert station.running is not None
        station.running.daemon.service.publish_call_status(status, **data)

    await station.arun(publish())


async def test_private_screen_says_the_gp_left_and_clears_when_back(
    station: DaemonThread,
) -> None:
    seeded = await station.arun(station.seed())
    app = make_app(station)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.loaded, pilot)
        assert await station.arun(station.go_private(seeded[0].id)) == "in_call_private"
        await wait_until(lambda: isinstance(app.screen, PrivateCallScreen), pilot)
        await wait_until(lambda: "Privat samtale med din læge" in screen_text(app), pilot)
        assert LEFT not in screen_text(app)

        await _publish(station, "gp_left", reason="left", ends_in=60.0, attempt=1)
        await wait_until(lambda: LEFT in screen_text(app), pilot)
        text = screen_text(app)
        assert "Du behøver ikke gøre noget" in text
        assert "Tryk på «Kald personalet», hvis du har brug for hjælp." in text
        assert "Privat samtale med din læge" not in text
        # The resident's controls stay: calling staff or ending still works.
        assert "Kald personalet" in text and "Afslut samtalen" in text
        assert not [p for p in PERSONAL if p in text]

        await _publish(station, "gp_back", attempt=2)
        await wait_until(lambda: "Privat samtale med din læge" in screen_text(app), pilot)
        assert LEFT not in screen_text(app)


async def test_gp_who_left_before_staff_went_out_is_said_at_once(station: DaemonThread) -> None:
    seeded = await station.arun(station.seed())
    app = make_app(station)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.loaded, pilot)
        # The locked UI hears the call's events while the lock screen shows.
        await _publish(station, "gp_left", reason="gone", ends_in=60.0, attempt=1)
        await wait_until(lambda: app.gp_left, pilot)
        await station.arun(station.go_private(seeded[0].id))
        await wait_until(lambda: isinstance(app.screen, PrivateCallScreen), pilot)
        await wait_until(lambda: LEFT in screen_text(app), pilot)
        # The call ended: the next private call starts without the message.
        await _publish(station, "ended", outcome="connection_lost")
        await wait_until(lambda: not app.gp_left, pilot)


async def test_staff_back_in_a_call_the_gp_already_left_are_told_at_once(
    staff: Station, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Staff unlock while the GP is away (they were called back to a private call): the call
    # screen reads GET /v1/call when it opens, not only the events that follow.
    calls = staff.running.daemon.calls
    snapshot = {"available": True, "active": True, "phase": "gp_left"}
    snapshot["gp"] = {"left": "gone", "ends_in": 42.0, "media": None, "video_stalled": False}
    monkeypatch.setattr(calls, "call_status", lambda: snapshot)
    app = staff.app(live_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        call = await in_call(pilot, staff)
        status = call.query_one("#call-status", Static)
        await wait_for(pilot, lambda: LEFT in text_of(status))
        assert "Forbindelsen til lægen er tabt." in text_of(status)
        assert "om 42 sekunder" in text_of(status)


async def test_private_screen_says_audio_only_and_why(station: DaemonThread) -> None:
    """Issue 18: the link cannot carry video (or someone chose sound only): the GP's picture
    above stands still, and the resident reads why; it goes when video is back. Audio only
    that began before the private call is said at once."""
    seeded = await station.arun(station.seed())
    app = make_app(station)
    controls = {"muted": False, "camera_off": False, "volume": 5}
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.loaded, pilot)
        poor = {"audio_only": True, "audio_only_reason": "poor_connection"}
        await _publish(station, "controls", **controls, **poor)
        await wait_until(lambda: app.audio_only == "poor_connection", pilot)
        await station.arun(station.go_private(seeded[0].id))
        await wait_until(lambda: isinstance(app.screen, PrivateCallScreen), pilot)
        await wait_until(lambda: "Kun lyd — dårlig forbindelse" in screen_text(app), pilot)
        assert "Din mikrofon er tændt." in screen_text(app)
        await _publish(station, "controls", **controls, audio_only=False, audio_only_reason=None)
        await wait_until(lambda: "Kun lyd" not in screen_text(app), pilot)
        await _publish(station, "controls", **controls, audio_only=True, audio_only_reason="choice")
        await wait_until(lambda: "Kun lyd" in screen_text(app), pilot)
        assert "dårlig forbindelse" not in screen_text(app)
        await _publish(station, "ended", outcome="hung_up_gp")
        await wait_until(lambda: app.audio_only is None, pilot)

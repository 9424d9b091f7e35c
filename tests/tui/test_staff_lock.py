"""The lock: on every staff screen, every way the station locks ends the staff UI.

The app zeroes its keys and exits; stationd has already revoked the token, so nothing the
process might still send is answered. One test runs the real ``python -m tui.staff`` process
in a pseudo-terminal and checks the process itself ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from station.core.session import LockReason
from stationapi.errors import StationLocked
from stationapi.staff import StaffClient
from tests.integration.daemon_harness import STAFF_NUMBER, STAFF_PIN, short_socket_dir
from tests.tui.test_staff_support import (
    SIZE,
    Station,
    on_call_screen,
    press_leaving,
    seed,
    staff_station,
    unlock,
    wait_for,
)
from tui.staff.app import ExitCode, StaffApp
from tui.staff.screens.precheck import PreCheckScreen
from tui.staff.screens.resident import ResidentDialog
from tui.staff.screens.today import TodayScreen
from tui.staff.screens.wrapup import WrapUpScreen


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    with short_socket_dir() as path:
        yield path


@pytest.fixture
async def station(data_dir: Path, socket_dir: Path) -> AsyncIterator[Station]:
    async with staff_station(data_dir, socket_dir, tick_seconds=0.05) as running:
        await seed(running)
        yield running


# --------------------------------------------------------------------------- reaching a screen


async def on_today(pilot: Pilot[Any], station: Station) -> None:
    assert isinstance(pilot.app.screen, TodayScreen)


async def on_dialog(pilot: Pilot[Any], station: Station) -> None:
    await pilot.press("r")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ResidentDialog))


async def on_precheck(pilot: Pilot[Any], station: Station) -> None:
    await press_leaving(pilot, "c")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, PreCheckScreen))


async def on_call(pilot: Pilot[Any], station: Station) -> None:
    await on_precheck(pilot, station)
    await press_leaving(pilot, "ctrl+s")
    await on_call_screen(pilot)
    station.service.call_gp_admitted()


async def on_wrapup(pilot: Pilot[Any], station: Station) -> None:
    from station.core.session import CallOutcome

    await on_call(pilot, station)
    station.service.call_ended(CallOutcome.HUNG_UP_GP)
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, WrapUpScreen))


SCREENS: dict[str, Callable[[Pilot[Any], Station], Awaitable[None]]] = {
    "today": on_today,
    "dialog": on_dialog,
    "precheck": on_precheck,
    "call": on_call,
    "wrapup": on_wrapup,
}


# --------------------------------------------------------------------------- locking


async def press_button(station: Station) -> None:
    pin = station.running.daemon.hardware.hw.button.pin  # type: ignore[union-attr]
    pin.drive_low()
    await asyncio.sleep(0.05)
    pin.drive_high()


async def lock_api(station: Station) -> None:
    response = await station.running.http.post("/v1/lock", json={"reason": "staff_action"})
    assert response.status_code == 200


async def lock_remote(station: Station) -> None:
    station.service.request_lock(LockReason.REMOTE)


async def lock_idle(station: Station) -> None:
    station.clock.advance(timedelta(minutes=6))  # the daemon's tick locks an idle session


LOCKS: dict[str, Callable[[Station], Awaitable[None]]] = {
    "button": press_button,
    "api": lock_api,
    "remote": lock_remote,
    "idle": lock_idle,
}


async def assert_token_dead(station: Station, app: StaffApp) -> None:
    token = app.station.token  # type: ignore[attr-defined]
    assert token
    async with StaffClient(station.socket_path, token=token) as client:
        with pytest.raises(StationLocked):
            await client.consultations()


@pytest.mark.parametrize("screen", list(SCREENS))
@pytest.mark.parametrize("how", ["button", "api"])
async def test_locking_on_any_staff_screen_ends_the_staff_ui(
    station: Station, screen: str, how: str
) -> None:
    app = station.app(live_interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await SCREENS[screen](pilot, station)
        assert app.vault is not None and not app.vault.is_zeroed
        await LOCKS[how](station)
        await wait_for(pilot, lambda: app.exit_code is not None)
    assert app.return_value == ExitCode.LOCKED
    assert app.vault is not None and app.vault.is_zeroed
    assert app.records is not None and not app.records._keys
    assert station.service.session.state.value in ("locked", "in_call_private")
    await assert_token_dead(station, app)


@pytest.mark.parametrize("how", ["remote", "idle"])
async def test_remote_and_idle_locks_end_the_staff_ui(station: Station, how: str) -> None:
    app = station.app(live_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await LOCKS[how](station)
        await wait_for(pilot, lambda: app.exit_code is not None)
    assert app.return_value == ExitCode.LOCKED
    assert app.vault is not None and app.vault.is_zeroed


async def test_a_refused_request_locks_the_ui_out(station: Station) -> None:
    """Without the event stream, a 401 on any request is enough to exit."""
    app = station.app(live_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        app.workers.cancel_group(app, "events")  # as if the stream had stalled
        await pilot.pause()
        station.service.tokens.revoke_all()  # stationd's side of any lock
        await pilot.press("f5")
        await wait_for(pilot, lambda: app.exit_code is not None)
    assert app.return_value == ExitCode.LOCKED
    assert app.vault is not None and app.vault.is_zeroed


async def test_staff_lock_action_logs_out(station: Station) -> None:
    app = station.app(live_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: app.exit_code is not None)
    assert app.return_value == ExitCode.LOGGED_OUT
    assert station.service.session.state.value == "locked"
    assert app.vault is not None and app.vault.is_zeroed


async def test_daemon_shutdown_ends_the_staff_ui(data_dir: Path, socket_dir: Path) -> None:
    async with staff_station(data_dir, socket_dir) as station:
        await seed(station)
        app = station.app(live_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            await unlock(pilot)
            await station.running.daemon.stop()
            await wait_for(pilot, lambda: app.exit_code is not None)
    assert app.return_value in (ExitCode.LOCKED, ExitCode.UNAVAILABLE)
    assert app.vault is not None and app.vault.is_zeroed


# --------------------------------------------------------------------------- the real process


class Pty:
    """A child process on a pseudo-terminal; its output is drained so it never blocks."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        os.set_inheritable(slave, True)
        self.process = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True
        )
        os.close(slave)
        self.output = bytearray()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        with contextlib.suppress(OSError):
            while chunk := os.read(self.master, 65536):
                self.output += chunk

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        with contextlib.suppress(OSError):
            os.close(self.master)


async def test_the_staff_process_exits_when_the_button_is_pressed(station: Station) -> None:
    env = {
        **os.environ,
        "KONTAKTSTATION_SOCKET": str(station.socket_path),
        "TERM": "xterm-256color",
        "COLUMNS": "100",
        "LINES": "30",
    }
    child = Pty([sys.executable, "-m", "tui.staff"], env)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while b"PIN" not in child.output:  # drawn
            assert child.process.poll() is None, child.output.decode(errors="replace")[-2000:]
            assert loop.time() < deadline, "the staff UI never drew its PIN screen"
            await asyncio.sleep(0.1)
        child.type(STAFF_NUMBER + "\r")
        await asyncio.sleep(0.3)
        child.type(STAFF_PIN + "\r")
        while station.service.session.state.value != "staff":
            assert loop.time() < deadline, "the staff UI never unlocked"
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # drawing Today
        assert child.process.poll() is None
        await press_button(station)
        while child.process.poll() is None:
            assert loop.time() < deadline + 30, "the staff UI did not exit after the lock"
            await asyncio.sleep(0.05)
        assert child.process.returncode == ExitCode.LOCKED
    finally:
        child.close()


# --------------------------------------------------------------------------- the idle lock


async def idle_minutes(pilot: Pilot[Any], station: Station, minutes: int, *, press: bool) -> None:
    """Let ``minutes`` of station time pass a minute at a time, with the screens' own polling
    running in between (and a key press each minute when ``press``)."""
    for _ in range(minutes):
        station.clock.advance(timedelta(minutes=1))
        await asyncio.sleep(0.3)  # the screen's refresh requests reach stationd meanwhile
        if press:
            await pilot.press("shift+f12")  # a key a person presses (no binding)
            await pilot.pause()


@pytest.mark.parametrize("screen", ["today", "precheck", "wrapup"])
async def test_only_a_person_s_input_postpones_the_idle_lock(station: Station, screen: str) -> None:
    """The pre-call check polls its camera thumbnail and level meter, the wrap-up polls the
    export: none of that is a person at the station, so the idle lock still comes."""
    app = station.app(live_interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await SCREENS[screen](pilot, station)
        # Eight minutes with a key press each minute: never idle (the timeout is five).
        await idle_minutes(pilot, station, 8, press=True)
        assert app.exit_code is None, "input every minute must keep the station unlocked"
        assert station.service.session.state.value != "locked"
        # Then nobody touches it, while the screen goes on polling: locked after five minutes.
        await idle_minutes(pilot, station, 4, press=False)
        assert app.exit_code is None
        await idle_minutes(pilot, station, 2, press=False)
        await wait_for(pilot, lambda: app.exit_code is not None)
    assert app.return_value == ExitCode.LOCKED
    assert station.service.session.state.value == "locked"

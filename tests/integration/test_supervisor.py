"""The UI supervisor with a real tmux server, a real stationd and real UI processes.

The locked UI is the real one (``python -m tui.locked``); the staff UI is a stand-in process
(a staff screen marker and a sleep; one variant ignores SIGTERM), because what is tested here
is the supervisor: the lock edge shows the locked window and the staff process is gone.

Every test with a station runs twice: with both UIs in the supervisor's own tmux (the demo,
development) and with each UI in a tmux server of its own (``kontaktstation ui-host``, as
the units start them on the appliance; here all one user, the booted appliance in
``tests/vm`` has the users, and shows one UI's user reading nothing of the other's).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.daemon_harness import (
    Running,
    enrol,
    running_daemon,
    short_socket_dir,
    ui_hosts,
)
from tui.locked.link import SupervisorSocket
from tui.supervisor import Supervisor, SupervisorConfig, tmux_config

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

STAFF_MARK = "STAFF SCREEN 4711"


def staff_stand_in(*, ignore_term: bool, draws_after: float = 0.0) -> list[str]:
    """A process that draws a staff marker (after ``draws_after`` seconds, as a slow board
    starts Textual) and waits (optionally deaf to SIGTERM)."""
    code = (
        "import signal, sys, time\n"
        + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if ignore_term else "")
        + f"time.sleep({draws_after})\n"
        + f"print({STAFF_MARK!r}, flush=True)\n"
        + "time.sleep(600)\n"
    )
    return [sys.executable, "-c", code]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (tmux reaps it).
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


async def eventually(check: Any, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@pytest.fixture(params=["one tmux", "own servers"])
async def station(request: pytest.FixtureRequest, data_dir: Path) -> AsyncIterator[Running]:
    enrol(data_dir)
    with short_socket_dir() as socket_dir:
        async with running_daemon(data_dir, socket_dir) as running:
            if request.param == "one tmux":
                running.ui_hosts = None  # type: ignore[attr-defined]
                yield running
                return
            with ui_hosts(socket_dir / "ui") as hosts:
                running.ui_hosts = hosts  # type: ignore[attr-defined]
                yield running


async def start_supervisor(
    station: Running, *, ignore_term: bool, grace: float, draws_after: float = 0.0
) -> Supervisor:
    hosts: tuple[Path, Path] | None = station.ui_hosts  # type: ignore[attr-defined]
    supervisor = Supervisor(
        SupervisorConfig(
            socket_path=station.socket_path,
            staff_command=staff_stand_in(ignore_term=ignore_term, draws_after=draws_after),
            grace_seconds=grace,
            attach=False,
            environ={"KONTAKTSTATION_LANG": "da", "KONTAKTSTATION_STATION_NAME": "Testhjemmet"},
            locked_host=hosts[0] if hosts else None,
            staff_host=hosts[1] if hosts else None,
        )
    )
    await supervisor.start()
    # The locked UI is up and drawn before anything else happens.
    await eventually(lambda: _shows(supervisor, "Stationen er låst"))
    return supervisor


async def _shows(supervisor: Supervisor, text: str) -> bool:
    return text in await supervisor.capture()


async def log_in(supervisor: Supervisor, station: Running) -> int:
    """Press "log in" (the locked UI's request), then unlock as the staff UI would."""
    assert await SupervisorSocket(supervisor.control_socket).request_login()
    assert await supervisor.current_window() == "staff"
    assert await _shows(supervisor, STAFF_MARK)
    await station.unlock()
    assert supervisor.staff_pid is not None
    return supervisor.staff_pid


async def test_a_slow_staff_screen_and_a_second_press_are_not_failures(station: Running) -> None:
    """On a Pi the staff UI takes seconds to draw, and a care worker presses "Log ind" again
    meanwhile: neither press may say "could not be started" (the locked UI shows that text
    when the request returns False)."""
    supervisor = await start_supervisor(station, ignore_term=False, grace=5.0, draws_after=4.0)
    try:
        first = asyncio.create_task(SupervisorSocket(supervisor.control_socket).request_login())
        await eventually(lambda: supervisor.staff_pid is not None)
        second = await SupervisorSocket(supervisor.control_socket).request_login()
        assert second, "a second press while the staff UI starts was called a failure"
        assert await first, "a staff UI that drew after 4 s was called a failure"
        assert await supervisor.current_window() == "staff"
        assert await _shows(supervisor, STAFF_MARK)
    finally:
        await supervisor.stop()


def press_button(station: Running) -> None:
    pin = station.daemon.hardware.hw.button.pin  # type: ignore[union-attr]
    pin.drive_low()
    pin.drive_high()


async def test_privacy_button_shows_the_locked_window_and_ends_the_staff_ui(
    station: Running,
) -> None:
    supervisor = await start_supervisor(station, ignore_term=False, grace=5.0)
    try:
        staff_pid = await log_in(supervisor, station)
        await asyncio.to_thread(press_button, station)
        await eventually(lambda: supervisor.staff_pid is None)
        assert await supervisor.current_window() == "locked"
        assert not alive(staff_pid)
        timing = supervisor.timings[-1]
        assert timing.shown is not None and timing.staff_gone is not None
        assert timing.shown <= timing.staff_gone  # the screen switched before the wait
        assert not timing.killed  # it honoured SIGTERM, inside the grace period
        assert await _shows(supervisor, "Stationen er låst")
        assert STAFF_MARK not in await supervisor.capture()
        assert (await station.http.get("/v1/state")).json()["state"] == "locked"
    finally:
        await supervisor.stop()
    assert not supervisor.runtime_dir.exists()


async def test_a_staff_ui_that_ignores_sigterm_is_killed(station: Running) -> None:
    supervisor = await start_supervisor(station, ignore_term=True, grace=0.5)
    try:
        staff_pid = await log_in(supervisor, station)
        response = await station.http.post("/v1/lock", json={})
        assert response.status_code == 200
        await eventually(lambda: supervisor.staff_pid is None)
        assert await supervisor.current_window() == "locked"
        assert not alive(staff_pid)
        assert supervisor.timings[-1].killed
    finally:
        await supervisor.stop()


async def test_a_staff_ui_that_dies_while_unlocked_locks_the_station(station: Running) -> None:
    supervisor = await start_supervisor(station, ignore_term=False, grace=1.0)
    try:
        staff_pid = await log_in(supervisor, station)
        await eventually(lambda: supervisor.state == "staff")
        os.kill(staff_pid, 9)
        await eventually(
            lambda: _state_is(station, "locked"),
        )
        await eventually(lambda: supervisor.staff_pid is None)
        assert await supervisor.current_window() == "locked"
    finally:
        await supervisor.stop()


async def _state_is(station: Running, state: str) -> bool:
    return bool((await station.http.get("/v1/state")).json()["state"] == state)


async def test_a_crashed_locked_ui_is_restarted(station: Running) -> None:
    supervisor = await start_supervisor(station, ignore_term=False, grace=1.0)
    try:
        first = supervisor.locked_pid
        assert first is not None
        os.kill(first, 9)
        await eventually(lambda: supervisor.locked_pid not in (None, first))
        await eventually(lambda: _shows(supervisor, "Stationen er låst"))
    finally:
        await supervisor.stop()


def test_the_kiosk_tmux_config_binds_no_key() -> None:
    text = tmux_config()
    assert "bind-key -n" not in text
    for table in ("prefix", "root", "copy-mode", "copy-mode-vi"):
        assert f"unbind-key -a -T {table}" in text
    assert "set -g status off" in text and "set -g prefix None" in text
    assert "bind-key -n C-c detach-client" in tmux_config(exit_key="C-c")


async def test_the_kiosk_tmux_server_has_no_key_bindings(tmp_path: Path) -> None:
    sock, conf = tmp_path / "t.sock", tmp_path / "t.conf"
    conf.write_text(tmux_config())
    tmux = shutil.which("tmux")
    assert tmux
    start = await asyncio.create_subprocess_exec(
        tmux, "-S", str(sock), "-f", str(conf), "new-session", "-d", "sleep 30"
    )
    assert await start.wait() == 0
    try:
        listing = await asyncio.create_subprocess_exec(
            tmux, "-S", str(sock), "list-keys", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await listing.communicate()
        assert out.decode().strip() == ""
    finally:
        kill = await asyncio.create_subprocess_exec(tmux, "-S", str(sock), "kill-server")
        await kill.wait()


async def test_the_windows_run_even_when_the_login_shell_is_nologin(tmp_path: Path) -> None:
    """The kiosk's user has /usr/sbin/nologin as its shell, and tmux runs a window's command
    with the login shell ($SHELL) unless told otherwise: the UI would never start."""
    sock, conf = tmp_path / "t.sock", tmp_path / "t.conf"
    conf.write_text(tmux_config())
    tmux = shutil.which("tmux")
    assert tmux
    marker = tmp_path / "ran"
    env = {**os.environ, "SHELL": "/usr/sbin/nologin"}
    start = await asyncio.create_subprocess_exec(
        tmux, "-S", str(sock), "-f", str(conf), "new-session", "-d", f"touch {marker}; sleep 30",
        env=env,
    )  # fmt: skip
    assert await start.wait() == 0
    try:
        for _ in range(100):
            if marker.exists():
                break
            await asyncio.sleep(0.05)
        assert marker.exists()
    finally:
        kill = await asyncio.create_subprocess_exec(tmux, "-S", str(sock), "kill-server")
        await kill.wait()

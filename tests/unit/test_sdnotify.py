"""sd_notify and the watchdog against a real datagram socket standing in for systemd."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.daemon.sdnotify import Notifier, watchdog_interval


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    yield sock, path
    sock.close()


def _drain(sock: socket.socket) -> list[str]:
    out: list[str] = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


def test_without_notify_socket_everything_is_a_noop() -> None:
    n = Notifier(environ={})
    assert not n.enabled
    assert n.notify("READY=1") is False


def test_ready_and_status_reach_the_socket(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    n = Notifier(environ={"NOTIFY_SOCKET": path})
    n.ready("locked")
    n.status("in call (private)")
    assert _drain(sock) == ["READY=1\nSTATUS=locked", "STATUS=in call (private)"]


def test_abstract_namespace_socket() -> None:
    name = f"kontaktstation-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    try:
        Notifier(environ={"NOTIFY_SOCKET": "@" + name}).notify("READY=1")
        assert sock.recv(100) == b"READY=1"
    finally:
        sock.close()


def test_watchdog_interval_is_half_and_respects_pid() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "2000000"}) == 1.0
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}) is None
    pid = str(os.getpid())
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": pid}) == 1.0
    assert watchdog_interval({"WATCHDOG_USEC": "nonsense"}) is None
    assert watchdog_interval({}) is None


async def test_watchdog_pings_while_the_loop_runs_and_stops_when_it_stalls(
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    # 100 ms watchdog: pings every 50 ms.
    n = Notifier(environ={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})
    n.start_watchdog()
    await asyncio.sleep(0.3)
    healthy = [m for m in _drain(sock) if m == "WATCHDOG=1"]
    assert len(healthy) >= 2

    # Block the event loop: no ping may be sent while it is stalled.
    time.sleep(0.4)
    assert _drain(sock) == []

    await asyncio.sleep(0.2)  # the loop runs again, so the pings resume
    assert "WATCHDOG=1" in _drain(sock)
    await n.stop_watchdog()
    await asyncio.sleep(0.15)
    _drain(sock)
    await asyncio.sleep(0.15)
    assert _drain(sock) == []


def test_a_missing_socket_never_raises(tmp_path: Path) -> None:
    n = Notifier(environ={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert n.notify("READY=1") is False

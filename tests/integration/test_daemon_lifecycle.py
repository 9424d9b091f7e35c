"""stationd as systemd runs it: a subprocess, a notify socket, the watchdog, signals, a crash.

The notify socket is a real datagram socket in the test standing in for systemd. The daemon
runs ``python -m station.daemon.app`` with the shipped fake hardware.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from station.core.clock import SystemClock
from station.keys.crypto import FieldRef, seal_field
from station.storage.audit import AuditLog
from station.storage.store import BlindStore
from tests.integration.daemon_harness import (
    CLINIC,
    STAFF_NUMBER,
    STAFF_PIN,
    enrol,
    short_socket_dir,
    uds_client,
)

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Notify:
    """A datagram socket playing systemd's NOTIFY_SOCKET."""

    sock: socket.socket
    path: Path
    messages: list[str]

    def expect(self, wanted: str, within: float = 30.0) -> list[str]:
        """Receive until a message contains the line ``wanted``; everything received so far."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                message = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            self.messages.append(message)
            if wanted in message.split("\n"):
                return self.messages
        raise AssertionError(f"no {wanted!r} from stationd; got {self.messages}")


@pytest.fixture
def run_dir() -> Iterator[Path]:
    with short_socket_dir() as path:
        yield path


@pytest.fixture
def notify(run_dir: Path) -> Iterator[Notify]:
    path = run_dir / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    yield Notify(sock, path, [])
    sock.close()


def start_daemon(
    data_dir: Path,
    socket_path: Path,
    notify: Notify | None,
    watchdog_usec: int | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NOTIFY_", "WATCHDOG_", "KONTAKTSTATION_"))
    }
    env["GPIOZERO_PIN_FACTORY"] = "mock"
    env |= extra_env or {}
    env["PYTHONPATH"] = str(REPO)
    if notify is not None:
        env["NOTIFY_SOCKET"] = str(notify.path)
    if watchdog_usec is not None:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    log_path = socket_path.with_suffix(".log")
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "station.daemon.app",
                "--data-dir",
                str(data_dir),
                "--socket",
                str(socket_path),
                "--hardware",
                "fake",
            ],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def output_of(socket_path: Path) -> str:
    """What the daemon logged (to stderr, as under systemd's journal)."""
    return socket_path.with_suffix(".log").read_text(errors="replace")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(10)


async def test_ready_watchdog_and_clean_sigterm(
    data_dir: Path, run_dir: Path, notify: Notify
) -> None:
    enrol(data_dir)
    socket_path = run_dir / "stationd.sock"
    # 400 ms watchdog: a ping every 200 ms.
    process = start_daemon(data_dir, socket_path, notify, watchdog_usec=400_000)
    try:
        before_ready = await asyncio.to_thread(notify.expect, "READY=1")
        ready = next(m for m in before_ready if "READY=1" in m.split("\n"))
        assert "STATUS=locked" in ready
        # READY=1 means the socket listens: the very next request is answered.
        async with uds_client(socket_path) as http:
            assert (await http.get("/v1/state")).json()["state"] == "locked"
            await asyncio.to_thread(notify.expect, "WATCHDOG=1")
            await asyncio.to_thread(notify.expect, "WATCHDOG=1")
            await asyncio.to_thread(notify.expect, "WATCHDOG=1")
            response = await http.post(
                "/v1/unlock", json={"staff_number": STAFF_NUMBER, "pin": STAFF_PIN}
            )
            assert response.status_code == 200
            status = await asyncio.to_thread(notify.expect, "STATUS=staff; 0 UI stream(s)")
            assert status
            # A UI's event stream is open when SIGTERM comes: it is told, then ended.
            lines: list[str] = []
            opened = asyncio.Event()

            async def stream() -> None:
                async with (
                    uds_client(socket_path, timeout=30) as events,
                    events.stream("GET", "/v1/events") as response,
                ):
                    async for line in response.aiter_lines():
                        lines.append(line)
                        opened.set()

            reader = asyncio.create_task(stream())
            await asyncio.wait_for(opened.wait(), 10)
            process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(notify.expect, "STOPPING=1")
            await asyncio.wait_for(reader, 20)
            assert "event: shutdown" in lines
        # Bounded: the daemon's own budget is 5 s; anything near 20 s is a hang.
        code = await asyncio.to_thread(process.wait, 20)
        output = output_of(socket_path)
        assert code == 0, output
        assert not socket_path.exists()
        assert "Traceback" not in output
    finally:
        stop(process)


async def test_sigint_also_stops_cleanly(data_dir: Path, run_dir: Path, notify: Notify) -> None:
    socket_path = run_dir / "stationd.sock"
    process = start_daemon(data_dir, socket_path, notify)
    try:
        await asyncio.to_thread(notify.expect, "READY=1")
        process.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(process.wait, 20) == 0
    finally:
        stop(process)


async def test_sigkill_mid_writes_then_restart_boots_locked_with_intact_store(
    data_dir: Path, run_dir: Path, notify: Notify
) -> None:
    enrol(data_dir)
    with BlindStore.open(data_dir, clock=SystemClock()) as store:
        store.put_clinic(CLINIC)
    socket_path = run_dir / "stationd.sock"
    process = start_daemon(data_dir, socket_path, notify)
    acknowledged: list[str] = []
    try:
        await asyncio.to_thread(notify.expect, "READY=1")
        async with uds_client(socket_path) as http:
            response = await http.post(
                "/v1/unlock", json={"staff_number": STAFF_NUMBER, "pin": STAFF_PIN}
            )
            token = response.json()["token"]
            headers = {"Authorization": f"Bearer {token}"}
            now = datetime.now(UTC)

            async def writer(n: int) -> None:
                while True:
                    cid = f"c{n}-{secrets.token_hex(4)}"
                    try:
                        r = await http.post(
                            "/v1/consultations",
                            headers=headers,
                            json={
                                "id": cid,
                                "clinic_id": CLINIC.id,
                                "starts_at": (now + timedelta(hours=1)).isoformat(),
                                "ends_at": (now + timedelta(hours=2)).isoformat(),
                                "consultation_type": "video_consultation",
                            },
                        )
                        assert r.status_code == 201
                        blob = seal_field(
                            secrets.token_bytes(32), b"x" * 2000, FieldRef("q", cid, "note")
                        )
                        r = await http.post(
                            f"/v1/consultations/{cid}/entries",
                            headers=headers,
                            json={"sealed": {"note": base64.b64encode(blob).decode()}},
                        )
                        assert r.status_code == 201
                    except httpx.TransportError:
                        return  # the daemon died under us
                    acknowledged.append(cid)

            writers = [asyncio.create_task(writer(n)) for n in range(4)]
            while len(acknowledged) < 20:
                await asyncio.sleep(0.01)
            process.send_signal(signal.SIGKILL)
            await asyncio.gather(*writers)
        assert await asyncio.to_thread(process.wait, 10) == -signal.SIGKILL
    finally:
        stop(process)
    # The killed daemon's socket file is stale; the next one replaces it and boots locked.
    assert socket_path.exists()
    notify.messages.clear()
    process = start_daemon(data_dir, socket_path, notify)
    try:
        await asyncio.to_thread(notify.expect, "READY=1")
        async with uds_client(socket_path) as http:
            state = (await http.get("/v1/state")).json()
            assert state["state"] == "locked" and state["locked"] is True
            # The old token died with the old process.
            response = await http.get("/v1/clinics", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 20) == 0
    finally:
        stop(process)
    # Every acknowledged write is there, whole; the files pass their integrity checks.
    with BlindStore.open(data_dir, clock=SystemClock()) as store:
        store.check_integrity()
        for cid in acknowledged:
            entries = store.list_entries(cid)
            assert len(entries) == 1 and len(entries[0].sealed["note"]) == 1 + 12 + 2000 + 16
        for consultation in store.list_consultations():
            # A consultation created just before the kill may lack its entry, never half of one.
            for entry in store.list_entries(consultation.id):
                assert entry.sealed["note"][0] == 1
    with AuditLog.open(data_dir, clock=SystemClock()) as audit:
        report = audit.verify()
        assert report.ok, report
        assert [e.action for e in audit.entries()].count("station_started") == 2


async def test_refuses_to_start_on_a_missing_data_dir(run_dir: Path) -> None:
    process = start_daemon(run_dir / "missing", run_dir / "stationd.sock", None)
    try:
        code = await asyncio.to_thread(process.wait, 30)
        output = output_of(run_dir / "stationd.sock")
        assert code == 1
        assert "data directory" in output and "Traceback" not in output
    finally:
        stop(process)


async def test_the_entry_point_draws_calls_into_the_surface_s_shared_memory(
    data_dir: Path, run_dir: Path
) -> None:
    """``main()`` chooses the frame sink by name, as every other port: with calls configured
    and nothing named, the shared memory the video surface reads, never a recording fake."""
    surface = run_dir / "surface"
    socket_path = run_dir / "stationd.sock"
    env = {
        "KONTAKTSTATION_HUB_URL": "http://127.0.0.1:9",  # nothing listens: no call is made
        "KONTAKTSTATION_HUB_STATION_TOKEN": secrets.token_urlsafe(32),
        "KONTAKTSTATION_SURFACE_DIR": str(surface),
    }
    process = start_daemon(data_dir, socket_path, None, extra_env=env)
    try:
        async with uds_client(socket_path) as http:
            async with asyncio.timeout(30):
                while not socket_path.exists() or process.poll() is not None:
                    assert process.poll() is None, output_of(socket_path)
                    await asyncio.sleep(0.05)
                while True:
                    try:
                        health = (await http.get("/v1/health")).json()
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.05)
            assert (await http.get("/v1/call")).json()["available"] is True
        assert health["ports"] == {
            "camera": "testpattern",
            "audio": "fake",
            "gpio": "mock",
            "frame_sink": "shm",
            "hub": "configured",
            "export": "summary",
            "device_secret": "file",
        }
        assert sorted(p.name for p in surface.glob("*.frames")) == ["remote.frames", "self.frames"]
    finally:
        stop(process)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"KONTAKTSTATION_FRAME_SINK": "sdl"}, "KONTAKTSTATION_FRAME_SINK='sdl' is not one of"),
        ({"KONTAKTSTATION_SURFACE_DIR": "/proc/kontaktstation"}, "cannot prepare"),
    ],
)
async def test_a_screen_that_cannot_be_used_stops_stationd_loudly(
    data_dir: Path, run_dir: Path, env: dict[str, str], expected: str
) -> None:
    socket_path = run_dir / "stationd.sock"
    env = {
        "KONTAKTSTATION_HUB_URL": "http://127.0.0.1:9",
        "KONTAKTSTATION_HUB_STATION_TOKEN": secrets.token_urlsafe(32),
        "KONTAKTSTATION_SURFACE_DIR": str(run_dir / "surface"),
        **env,
    }
    process = start_daemon(data_dir, socket_path, None, extra_env=env)
    try:
        code = await asyncio.to_thread(process.wait, 30)
        output = output_of(socket_path)
        assert code == 1, output
        assert expected in output and "Traceback" not in output
    finally:
        stop(process)


async def test_the_fake_button_of_a_stationd_process_is_pressed_through_its_socket(
    data_dir: Path, run_dir: Path
) -> None:
    """With gpiozero's mock pins, another process (the system test, the demo) presses the
    privacy button through the mock-pin socket; the press locks as a real one does."""
    from hardware.mock_control import press_mock_pin

    enrol(data_dir)
    control = run_dir / "gpio.sock"
    socket_path = run_dir / "stationd.sock"
    process = start_daemon(
        data_dir,
        socket_path,
        None,
        extra_env={"KONTAKTSTATION_MOCK_GPIO_SOCKET": str(control)},
    )
    try:
        async with asyncio.timeout(30):
            while not control.exists():
                assert process.poll() is None, output_of(socket_path)
                await asyncio.sleep(0.05)
        assert oct(control.stat().st_mode & 0o777) == "0o600"
        async with uds_client(socket_path) as http:
            response = await http.post(
                "/v1/unlock", json={"staff_number": STAFF_NUMBER, "pin": STAFF_PIN}
            )
            assert response.status_code == 200
            press_mock_pin(control, "GPIO17", "drive_low")
            async with asyncio.timeout(10):
                while (await http.get("/v1/state")).json()["state"] != "locked":
                    await asyncio.sleep(0.02)
            press_mock_pin(control, "GPIO17", "drive_high")
            press_mock_pin(control, "GPIO99", "drive_low")  # no such pin: refused, logged
            await asyncio.sleep(0.2)
            assert (await http.get("/v1/state")).json()["state"] == "locked"
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 20)
        stop(process)
    assert not control.exists()
    assert "Traceback" not in output_of(socket_path)

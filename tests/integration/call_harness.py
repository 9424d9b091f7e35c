"""Shared set-up for the call tests: stationd with its call engine, a booked consultation, coturn.

Everything runs in the test's loopback-only namespace (``netns.py``): the hub and stationd on
127.0.0.1, Chromium with fake devices, coturn on 127.0.0.1 when a test needs TURN.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from hardware.video import FrameRole, FrameSink, OverlayState, RecordingFrameSink
from station.call.config import CallConfig
from station.call.ice import IceServerConfig
from station.daemon.app import Daemon, DaemonConfig
from station.daemon.hardware import HardwareLink
from station.daemon.sdnotify import Notifier
from station.keys.crypto import FieldRef, seal_field
from station.keys.device_secret import device_secret_source

from .daemon_harness import (
    CLINIC,
    PROVISIONING_TEST_KDF,
    STAFF_NUMBER,
    STAFF_PIN,
    enrol,
    fake_hardware,
    uds_client,
)
from .hub_server import STATION_TOKEN

__all__ = [
    "RESIDENTS",
    "Coturn",
    "StationD",
    "TeeFrameSink",
    "call_config",
    "free_udp_port",
    "running_coturn",
    "running_stationd",
    "terminate",
    "wait_for",
]

RESIDENTS: list[dict[str, Any]] = [
    {
        "display_name": "Anna <b>Hansen</b>",
        "birth_date": "1931-04-02",
        "room": "Stue 12",
        "reason": "Hoste & feber",
    },
    {"display_name": "Karl Åge Jensen", "birth_date": "1940-01-15", "room": "Stue 7"},
]


def call_config(hub_url: str, **overrides: Any) -> CallConfig:
    """A loopback-only call configuration for tests."""
    values: dict[str, Any] = {
        "hub_url": hub_url,
        "station_token": STATION_TOKEN,
        "loopback_only": True,
    }
    values.update(overrides)
    return CallConfig(**values)


async def wait_for(
    probe: Any, *, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Poll ``probe()`` (sync or async) until it returns something truthy; bounded."""
    async with asyncio.timeout(timeout):
        while True:
            value = probe()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(interval)
    raise AssertionError(f"{what} did not happen")  # pragma: no cover


@dataclass
class StationD:
    """A running stationd (with its call engine) and a staff session on it."""

    daemon: Daemon
    http: httpx.AsyncClient
    sink: RecordingFrameSink
    token: str = ""
    consultation_id: str = ""

    @property
    def auth(self) -> dict[str, str]:
        """The staff member's Authorization header."""
        return {"Authorization": f"Bearer {self.token}"}

    async def unlock(self) -> None:
        """Unlock through the API and keep the token."""
        response = await self.http.post(
            "/v1/unlock", json={"staff_number": STAFF_NUMBER, "pin": STAFF_PIN}
        )
        assert response.status_code == 200, response.text
        self.token = response.json()["token"]

    async def book_and_check(self, consultation_type: str = "assisted_consultation") -> str:
        """A consultation starting now with one queued resident, and its pre-call check."""
        service = self.daemon.service
        await service.db(service.store.put_clinic, CLINIC)
        now = datetime.now(UTC)
        response = await self.http.post(
            "/v1/consultations",
            headers=self.auth,
            json={
                "clinic_id": CLINIC.id,
                "starts_at": (now - timedelta(minutes=1)).isoformat(),
                "ends_at": (now + timedelta(minutes=30)).isoformat(),
                "consultation_type": consultation_type,
            },
        )
        assert response.status_code == 201, response.text
        cid = response.json()["id"]
        # The staff UI seals the resident's name under the consultation's key; the daemon
        # stores bytes it cannot read.
        blob = seal_field(secrets.token_bytes(32), b"Anna", FieldRef("queue_entries", "e1", "x"))
        response = await self.http.post(
            f"/v1/consultations/{cid}/entries",
            headers=self.auth,
            json={"id": "e1", "sealed": {"display_name": base64.b64encode(blob).decode()}},
        )
        assert response.status_code == 201, response.text
        response = await self.http.post(
            "/v1/session/begin-check", headers=self.auth, json={"appointment_id": cid}
        )
        assert response.status_code == 200, response.text
        self.consultation_id = cid
        return cid

    async def start_call(self, residents: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """``POST /v1/call/start``; the response (room id, GP link)."""
        response = await self.http.post(
            "/v1/call/start",
            headers=self.auth,
            json={
                "consultation_id": self.consultation_id,
                "residents": residents if residents is not None else RESIDENTS,
            },
        )
        assert response.status_code == 202, response.text
        return dict(response.json())

    async def call(self) -> dict[str, Any]:
        """``GET /v1/call``."""
        response = await self.http.get("/v1/call")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def state(self) -> dict[str, Any]:
        """``GET /v1/state``."""
        response = await self.http.get("/v1/state")
        assert response.status_code == 200, response.text
        return dict(response.json())


@contextlib.contextmanager
def _short_dir() -> Iterator[Path]:
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="ks-call-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class TeeFrameSink:
    """Shows every frame to each of several sinks (a recording one beside the real one)."""

    def __init__(self, *sinks: FrameSink) -> None:
        self._sinks = sinks

    def show(self, frame: av.VideoFrame, role: FrameRole) -> None:
        for sink in self._sinks:
            sink.show(frame, role)

    def clear(self, role: FrameRole) -> None:
        for sink in self._sinks:
            sink.clear(role)

    def set_overlay(self, state: OverlayState) -> None:
        for sink in self._sinks:
            sink.set_overlay(state)


@contextlib.asynccontextmanager
async def running_stationd(
    data_dir: Path,
    config: CallConfig | None,
    *,
    hardware: HardwareLink | None = None,
    also_show: FrameSink | None = None,
    hub_url: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> AsyncIterator[StationD]:
    """stationd in this loop with fake hardware, a recording frame sink and ``config``.

    ``hardware`` replaces the shipped fakes; ``also_show`` gets every frame the recording
    sink gets (e.g. the real shared-memory sink of the video surface); ``environ`` is added
    to stationd's environment (e.g. the device secret's source: the keyring is made with it).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    extra = dict(environ or {})
    enrol(data_dir, secret=device_secret_source(data_dir, extra).load() if extra else None)
    sink = RecordingFrameSink()
    with _short_dir() as socket_dir:
        socket_path = socket_dir / "stationd.sock"
        daemon = Daemon(
            DaemonConfig(
                data_dir=data_dir,
                socket_path=socket_path,
                hardware="fake",
                environ={**os.environ, "GPIOZERO_PIN_FACTORY": "mock", **extra},
                call=config,
                **(
                    {
                        "hub_url": hub_url,
                        "provisioning": {"kdf_params": PROVISIONING_TEST_KDF, "check_turn": False},
                    }
                    if hub_url is not None
                    else {}
                ),
            ),
            notifier=Notifier(environ={}),
            hardware=hardware if hardware is not None else await fake_hardware(),
            frame_sink=TeeFrameSink(sink, also_show) if also_show is not None else sink,
        )
        await daemon.start()
        http = uds_client(socket_path, timeout=30.0)
        try:
            yield StationD(daemon=daemon, http=http, sink=sink)
        finally:
            await http.aclose()
            await asyncio.wait_for(daemon.stop(), 15)


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 nobody listens on (now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Coturn:
    """A coturn on 127.0.0.1 and the ICE server entry that uses it."""

    port: int
    username: str
    password: str

    def ice_server(self, password: str | None = None) -> IceServerConfig:
        """The station's TURN server entry (optionally with another password)."""
        return IceServerConfig(
            urls=f"turn:127.0.0.1:{self.port}",
            username=self.username,
            credential=password if password is not None else self.password,
        )


@contextlib.asynccontextmanager
async def running_coturn(log_dir: Path, *, auth_secret: str | None = None) -> AsyncIterator[Coturn]:
    """coturn on 127.0.0.1 (PLATFORM-NOTES' command), stopped by its PID afterwards.

    ``auth_secret``: coturn's REST scheme (``use-auth-secret``) instead of a static user; the
    hub then issues per-call credentials (:func:`hub.station_auth.turn_credential`)."""
    binary = shutil.which("turnserver")
    if binary is None:
        pytest.skip("needs coturn (scripts/ensure-system-deps installs it)")
    port = free_udp_port()
    password = secrets.token_hex(8)
    log = (log_dir / "coturn.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            "-n",
            "--listening-ip=127.0.0.1",
            f"--listening-port={port}",
            "--relay-ip=127.0.0.1",
            "--allow-loopback-peers",
            "--min-port=49160",
            "--max-port=49200",
            *(
                ["--use-auth-secret", f"--static-auth-secret={auth_secret}"]
                if auth_secret is not None
                else ["--lt-cred-mech", f"--user=station:{password}"]
            ),
            "--realm=carehome.test",
            "--fingerprint",
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            "--no-multicast-peers",
            "--log-file=stdout",
            "--simple-log",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        from station.call.probe import probe_url

        await wait_for(
            lambda: _answered(probe_url(f"turn:127.0.0.1:{port}", 0.5)),
            timeout=15,
            what="coturn listening",
        )
        yield Coturn(port=port, username="station", password=password)
    finally:
        terminate(process, timeout=5)
        log.close()


def terminate(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM, wait ``timeout`` seconds, then SIGKILL: a helper process is always gone."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


async def _answered(result: Any) -> bool:
    return bool((await result).reachable)

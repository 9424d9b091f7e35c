"""stationd with parts missing: degraded, not dead, and whole again when the part is back.

* in-process, with the shipped fake picamera2 API: boot with no camera on the connector, the
  pre-call check and the call refused with the reason, the camera "plugged in", the
  ``hardware`` and ``health`` events, the call allowed (through a real hub, in a
  loopback-only namespace);
* in-process, without a GPIO chip (no privacy button, no lamp): the staff UI's lock, the idle
  lock and IT's remote lock (through a real hub) still lock, and the heartbeat says so;
* as systemd starts it (``kontaktstation daemon --hardware real`` as a subprocess) on this
  machine, which has no camera, no sound card and no GPIO chip: it stays up, answers, refuses
  calls with the reason, reports the faults to a real hub, and logs no traceback;
* a misspelt backend still stops stationd with one line and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from hardware.camera import FakeCameraState, fake_picamera2_api
from hardware.video import RecordingFrameSink
from hub.admin import Admin
from hub.provisioning.service import ProvisioningService
from provisioning.identity import FileIdentity
from provisioning.schema import CommandKind, Heartbeat
from station.core.clock import FakeClock, SystemClock
from station.daemon.app import Daemon, DaemonConfig
from station.daemon.events import EventKind
from station.daemon.hardware import HardwareLink, build_hardware_link
from station.daemon.sdnotify import Notifier
from station.keys.crypto import FieldRef, seal_field
from station.storage.store import BlindStore
from tests.integration.call_harness import StationD, call_config, wait_for
from tests.integration.daemon_harness import (
    CLINIC,
    STAFF_NUMBER,
    STAFF_PIN,
    enrol,
    provisioned_daemon,
    running_daemon,
    short_socket_dir,
    uds_client,
)
from tests.integration.hub_server import STATION_TOKEN, provisioning_hub, running_hub
from tests.integration.netns import delegated_to_loopback_namespace
from tests.integration.test_daemon_lifecycle import Notify

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A short directory for the socket, the log and systemd's notify socket."""
    with short_socket_dir() as path:
        yield path


@pytest.fixture
def systemd(run_dir: Path) -> Iterator[Notify]:
    """A datagram socket playing systemd's NOTIFY_SOCKET."""
    path = run_dir / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    yield Notify(sock, path, [])
    sock.close()


#: The station as assembled, minus what each test takes away (``--hardware real``).
ENV = {
    "KONTAKTSTATION_CAMERA": "picamera2",
    "KONTAKTSTATION_CAMERA_ENCODING": "raw",
    "KONTAKTSTATION_AUDIO": "fake",
    "GPIOZERO_PIN_FACTORY": "mock",
}
#: A pin factory gpiozero knows that cannot load here (no RPi.GPIO): no GPIO chip.
NO_GPIO = {"GPIOZERO_PIN_FACTORY": "rpigpio"}


async def real_link(env: Mapping[str, str], camera: FakeCameraState) -> HardwareLink:
    """The hardware as ``--hardware real`` builds it, with the fake picamera2 API."""
    return await build_hardware_link(
        "real",
        {**os.environ, **env},
        asyncio.get_running_loop(),
        picamera2_api=fake_picamera2_api(camera),
    )


class Events:
    """Every event the daemon publishes from now on (read from its broker in-process)."""

    def __init__(self, daemon: Daemon) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        subscription = daemon.service.broker.subscribe(512)

        async def pump() -> None:
            async for event in subscription:
                self.seen.append((event.kind, dict(event.data)))

        self._task = asyncio.get_running_loop().create_task(pump())

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [data for k, data in self.seen if k == kind]


def health_check(body: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in body["checks"] if c["name"] == name)


@contextlib.asynccontextmanager
async def stationd_with_calls(
    data_dir: Path, hub_url: str, hardware: HardwareLink
) -> AsyncIterator[StationD]:
    """stationd in this loop with its call engine and this hardware, re-probing every 0.2 s."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    enrol(data_dir)
    with short_socket_dir() as socket_dir:
        daemon = Daemon(
            DaemonConfig(
                data_dir=data_dir,
                socket_path=socket_dir / "stationd.sock",
                hardware="real",
                reprobe_seconds=0.2,
                call=call_config(hub_url),
            ),
            notifier=Notifier(environ={}),
            hardware=hardware,
            frame_sink=RecordingFrameSink(),
        )
        await daemon.start()
        http = uds_client(socket_dir / "stationd.sock", timeout=30.0)
        try:
            yield StationD(daemon=daemon, http=http, sink=daemon.frame_sink)
        finally:
            await http.aclose()
            await asyncio.wait_for(daemon.stop(), 15)


async def _hub_room_state(hub_url: str, room_id: str) -> str:
    async with httpx.AsyncClient(base_url=hub_url) as http:
        response = await http.get(
            f"/api/station/rooms/{room_id}", headers={"Authorization": f"Bearer {STATION_TOKEN}"}
        )
        return str(response.json()["state"])


# ---------------------------------------------------------------- the camera comes back


def test_boot_without_a_camera_refuses_the_call_then_allows_it_when_the_camera_appears(
    request: pytest.FixtureRequest, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if delegated_to_loopback_namespace(request):
        return
    caplog.set_level(logging.INFO)

    async def run() -> None:
        camera = FakeCameraState(cameras=0)
        async with running_hub(tmp_path / "hub") as hub:
            link = await real_link(ENV, camera)
            async with stationd_with_calls(tmp_path / "station", hub.base_url, link) as st:
                events = Events(st.daemon)
                body = (await st.http.get("/v1/health")).json()
                assert body["ok"] is False and body["ports"]["camera"] == "missing"
                row = health_check(body, "camera")
                assert row["missing"] is True and row["ok"] is False
                assert "no camera is connected" in row["detail"]
                assert row["hint"].startswith("Kameraet er ikke fundet")
                assert health_check(body, "button")["ok"] is True  # the rest works
                assert (await st.call())["missing"] == ["camera"]

                # Staff may open the pre-call check; the camera's part of it says why not.
                await st.unlock()
                await st.book_and_check()
                frame = await st.http.get("/v1/precheck/frame", headers=st.auth)
                assert frame.status_code == 503 and frame.json()["code"] == "hardware_missing"
                assert "Kameraet er ikke fundet" in frame.json()["user_message"]
                assert (await st.http.get("/v1/precheck/microphone", headers=st.auth)).is_success

                refused = await st.http.post(
                    "/v1/call/start",
                    headers=st.auth,
                    json={
                        "consultation_id": st.consultation_id,
                        "residents": [{"display_name": "A"}],
                    },
                )
                assert refused.status_code == 503, refused.text
                error = refused.json()
                assert error["code"] == "hardware_missing"
                assert error["error"].startswith("call refused: camera is missing (")
                assert "Tjek at kameraets kabel sidder i" in error["user_message"]
                assert (await st.state())["state"] == "pre_call_check"  # nothing moved on
                assert st.daemon.calls.engine.room_id is None  # the hub was not asked

                camera.cameras = 1  # plugged in
                await wait_for(
                    lambda: events.of(EventKind.HARDWARE), what="the camera's hardware event"
                )
                assert events.of(EventKind.HARDWARE) == [
                    {"part": "camera", "present": True, "backend": "picamera2"}
                ]
                await wait_for(
                    lambda: any(
                        {"name": "camera", "ok": True, "missing": False} in e["checks"]
                        for e in events.of(EventKind.HEALTH)
                    ),
                    what="a health event with the camera back",
                )
                body = (await st.http.get("/v1/health")).json()
                assert body["ports"]["camera"] == "picamera2" and body["ok"] is True
                # The pre-call check may hold the camera: its own check waits for the next
                # round; the row says so rather than pretending it ran.
                assert health_check(body, "camera")["detail"] == "found again; not checked yet"

                frame = await st.http.get("/v1/precheck/frame", headers=st.auth)
                assert frame.status_code == 200, frame.text
                started = await st.start_call([{"display_name": "A"}])
                await wait_for(
                    lambda: _room_is(hub.base_url, started["room_id"], "waiting"),
                    what="the station's offer at the hub",
                )
                assert (await st.call())["missing"] == []
                assert (await st.http.post("/v1/call/end", headers=st.auth)).status_code == 200

        # One line when the camera was found missing, one when it came back: not one a probe.
        lines = [r.getMessage() for r in caplog.records if r.name == "station.daemon.hardware"]
        assert [line.split(":")[0] for line in lines] == ["camera missing", "camera is back"]
        assert not [r for r in caplog.records if r.exc_info]

    asyncio.run(run())


async def _room_is(hub_url: str, room_id: str, state: str) -> bool:
    return await _hub_room_state(hub_url, room_id) == state


# ---------------------------------------------------------------- no privacy button


async def test_without_a_button_the_screen_idle_and_remote_locks_still_lock(
    tmp_path: Path, data_dir: Path
) -> None:
    camera = FakeCameraState(cameras=1)
    enrol(data_dir)

    # The staff UI's lock and the idle lock, on a station's clock.
    clock = FakeClock(datetime.now(UTC))
    with short_socket_dir() as socket_dir:
        async with running_daemon(
            data_dir,
            socket_dir,
            clock=clock,
            hardware=await real_link({**ENV, **NO_GPIO}, camera),
            idle_timeout=timedelta(minutes=5),
            tick_seconds=0.02,
        ) as station:
            body = (await station.http.get("/v1/health")).json()
            assert body["ports"]["gpio"] == "missing"
            button = health_check(body, "button")
            assert button["missing"] is True
            assert button["hint"].startswith("Privatlivsknappen virker ikke")
            assert health_check(body, "camera")["ok"] is True

            await station.unlock()
            locked = await station.http.post("/v1/lock", json={})
            assert locked.json() == {"state": "locked", "changed": True}

            await station.unlock()
            clock.advance(timedelta(minutes=5, seconds=1))
            await wait_for(lambda: station.daemon.service.session.is_locked, what="the idle lock")

    # IT's remote lock, and the heartbeats that tell IT what is missing and what came back.
    hub_camera = FakeCameraState(cameras=0)
    async with (
        provisioning_hub(tmp_path / "hub") as (hub, admin),
        provisioned_daemon(
            data_dir,
            hub.base_url,
            config={"reprobe_seconds": 0.2},
            hardware=await real_link({**ENV, **NO_GPIO}, hub_camera),
        ) as daemon,
    ):
        agent = daemon.provisioning
        await wait_for(lambda: agent.status == "pending", what="enrollment")
        await admin.preauthorise(agent.identity.fingerprint, "solhaven", "Stue 1", "it")
        agent.wake()
        await wait_for(lambda: agent.status == "approved", what="approval")
        await agent.heartbeat_once()
        beat = await _last_heartbeat(admin, agent.identity.station_id)
        assert beat.ports["gpio"] == "missing" and beat.ports["camera"] == "missing"
        health = {h.name.value: h.ok for h in beat.health}
        assert health["button"] is False and health["led"] is False
        assert health["camera"] is False

        async with uds_client(daemon.config.socket_path) as http:
            response = await http.post(
                "/v1/unlock", json={"staff_number": STAFF_NUMBER, "pin": STAFF_PIN}
            )
            assert response.status_code == 200, response.text
            await admin.issue_command(agent.identity.station_id, CommandKind.LOCK, "it")
            await agent.heartbeat_once()
            assert daemon.service.session.is_locked

        # The camera is plugged in: the hub hears of it at once (the agent is woken), not at
        # the next regular heartbeat a minute later.
        hub_camera.cameras = 1
        await wait_for(
            lambda: _camera_reported_back(admin, agent.identity.station_id),
            timeout=15,
            what="a heartbeat with the camera back",
        )


async def _camera_reported_back(admin: ProvisioningService, station_id: str) -> bool:
    beat = await _last_heartbeat(admin, station_id)
    return (
        beat.ports["camera"] == "picamera2"
        and {"camera": True}.items() <= {h.name.value: h.ok for h in beat.health}.items()
    )


async def _last_heartbeat(admin: ProvisioningService, station_id: str) -> Heartbeat:
    record = await admin.get_station(station_id)
    assert record.heartbeat_json is not None
    return Heartbeat.model_validate_json(record.heartbeat_json)


# ---------------------------------------------------------------- as systemd starts it


def start_real(
    data_dir: Path,
    socket_path: Path,
    notify: Notify | None,
    env: Mapping[str, str],
    *,
    reprobe: float = 0.3,
) -> subprocess.Popen[bytes]:
    """``kontaktstation daemon --hardware real``, as the unit runs it, on this machine's
    (absent) hardware: no GPIOZERO_PIN_FACTORY, no KONTAKTSTATION_* from the test's
    environment."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NOTIFY_", "WATCHDOG_", "KONTAKTSTATION_", "GPIOZERO_"))
    }
    clean |= {"PYTHONPATH": str(REPO), **env}
    if notify is not None:
        clean["NOTIFY_SOCKET"] = str(notify.path)
    log = socket_path.with_suffix(".log")
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kontaktstation.cli",
                "daemon",
                "--hardware",
                "real",
                "--data-dir",
                str(data_dir),
                "--socket",
                str(socket_path),
                "--reprobe-interval",
                str(reprobe),
            ],
            env=clean,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(10)


@pytest.mark.skipif(
    Path("/dev/video0").exists() or Path("/dev/snd").exists() or Path("/dev/gpiochip0").exists(),
    reason="this test needs a machine without camera, sound card and GPIO chip",
)
async def test_stationd_as_systemd_starts_it_without_any_hardware_stays_up_and_says_why(
    tmp_path: Path, data_dir: Path, run_dir: Path, systemd: Notify
) -> None:
    enrol(data_dir)
    with BlindStore.open(data_dir, clock=SystemClock()) as store:
        store.put_clinic(CLINIC)  # the signed configuration's clinic, put in directly
    identity = FileIdentity(data_dir).load()  # what stationd will find; IT preauthorises it
    socket_path = run_dir / "stationd.sock"
    async with provisioning_hub(tmp_path / "hub") as (hub, admin):
        await admin.preauthorise(identity.fingerprint, "solhaven", "Stue 1", "it")
        env = {
            "KONTAKTSTATION_HUB_URL": hub.base_url,
            "KONTAKTSTATION_HUB_STATION_TOKEN": STATION_TOKEN,
            "KONTAKTSTATION_ICE_SERVERS": "[]",
            "KONTAKTSTATION_CALL_LOOPBACK": "1",
            "KONTAKTSTATION_SURFACE_DIR": str(tmp_path / "surface"),
        }
        started = time.monotonic()
        process = start_real(data_dir, socket_path, systemd, env)
        try:
            await asyncio.to_thread(systemd.expect, "READY=1")
            async with uds_client(socket_path) as http:
                state = (await http.get("/v1/state")).json()
                assert state["state"] == "locked" and state["locked"] is True
                body = (await http.get("/v1/health")).json()
                assert body["ok"] is False
                # (The spoken reminders' row, "speech", depends on espeak-ng, not on a device.)
                assert {
                    c["name"]: (c["ok"], c["missing"])
                    for c in body["checks"]
                    if c["name"] != "speech"
                } == {
                    name: (False, True)
                    for name in ("camera", "microphone", "loudspeaker", "button", "led")
                }
                hints = {c["name"]: c["hint"] for c in body["checks"]}
                assert hints["camera"].startswith("Kameraet er ikke fundet")
                assert hints["microphone"].startswith("Højttaleren med mikrofon er ikke fundet")
                assert hints["button"].startswith("Privatlivsknappen virker ikke")
                assert "/dev/video0 does not exist" in health_check(body, "camera")["detail"]
                assert {k: body["ports"][k] for k in ("camera", "audio", "gpio")} == {
                    "camera": "missing",
                    "audio": "missing",
                    "gpio": "missing",
                }

                # Records, the pre-call check and the call: only the call is refused.
                token = (
                    await http.post(
                        "/v1/unlock", json={"staff_number": STAFF_NUMBER, "pin": STAFF_PIN}
                    )
                ).json()["token"]
                auth = {"Authorization": f"Bearer {token}"}
                cid = await _book(http, auth)
                check = await http.post(
                    "/v1/session/begin-check", headers=auth, json={"appointment_id": cid}
                )
                assert check.status_code == 200, check.text
                tone = await http.post("/v1/precheck/tone", headers=auth, json={})
                assert tone.status_code == 503 and tone.json()["code"] == "hardware_missing"
                refused = await http.post(
                    "/v1/call/start",
                    headers=auth,
                    json={"consultation_id": cid, "residents": [{"display_name": "A"}]},
                )
                assert refused.status_code == 503, refused.text
                error = refused.json()
                assert error["code"] == "hardware_missing"
                assert "camera is missing" in error["error"]
                assert "audio is missing" in error["error"]
                assert "Kameraet er ikke fundet" in error["user_message"]
                assert "Højttaleren med mikrofon er ikke fundet" in error["user_message"]
                cancelled = await http.post("/v1/session/cancel", headers=auth, json={})
                assert cancelled.json()["state"] == "staff"
                assert (await http.post("/v1/lock", json={})).json()["state"] == "locked"

            # IT sees it: the heartbeat reached the hub with the faults.
            beat = await wait_for(
                lambda: _heartbeat_or_none(admin, identity.station_id), what="a heartbeat"
            )
            ports = {k.value: v for k, v in beat.ports.items()}
            assert [ports[k] for k in ("camera", "audio", "gpio")] == ["missing"] * 3
            health = {h.name.value: h.ok for h in beat.health}
            for part in ("camera", "microphone", "loudspeaker", "button", "led"):
                assert health[part] is False, part
            # ... and reads it with `kontaktstation admin`: the button first and loud.
            listing, shown = io.StringIO(), io.StringIO()
            await Admin(admin, "it", listing).stations_list(argparse.Namespace(all=False))
            row = next(line for line in listing.getvalue().splitlines() if "Stue 1" in line)
            assert "FAIL camera,microphone,loudspeaker,button,led" in row
            assert row.rstrip().endswith("BUTTON!")
            await Admin(admin, "it", shown).stations_show(
                argparse.Namespace(station=identity.station_id)
            )
            assert "camera=missing" in shown.getvalue() and "gpio=missing" in shown.getvalue()

            # Still up, not restarting, well past systemd's RestartSec=2 and many re-probes.
            while time.monotonic() - started < 6:
                assert process.poll() is None, socket_path.with_suffix(".log").read_text()
                await asyncio.sleep(0.2)
            assert process.poll() is None
        finally:
            stop(process)
    log = socket_path.with_suffix(".log").read_text(errors="replace")
    assert "Traceback" not in log, log
    assert log.count("camera missing") == 1 and log.count("audio missing") == 1, log
    assert log.count("gpio missing") == 1 and "button missing" not in log, log
    assert log.count("READY") == 0  # systemd's messages go to the socket, not the log


async def _heartbeat_or_none(admin: ProvisioningService, station_id: str) -> Heartbeat | None:
    record = await admin.get_station(station_id)
    if record.heartbeat_json is None:
        return None
    return Heartbeat.model_validate_json(record.heartbeat_json)


async def _book(http: httpx.AsyncClient, auth: dict[str, str]) -> str:
    """A consultation starting now with one (sealed) resident, as the staff UI makes it."""
    now = datetime.now(UTC)
    response = await http.post(
        "/v1/consultations",
        headers=auth,
        json={
            "clinic_id": CLINIC.id,
            "starts_at": (now - timedelta(minutes=1)).isoformat(),
            "ends_at": (now + timedelta(minutes=30)).isoformat(),
            "consultation_type": "assisted_consultation",
        },
    )
    assert response.status_code == 201, response.text
    cid = str(response.json()["id"])
    blob = seal_field(secrets.token_bytes(32), b"Anna", FieldRef("queue_entries", "e1", "x"))
    response = await http.post(
        f"/v1/consultations/{cid}/entries",
        headers=auth,
        json={"id": "e1", "sealed": {"display_name": base64.b64encode(blob).decode()}},
    )
    assert response.status_code == 201, response.text
    return cid


async def test_a_misspelt_backend_stops_stationd_with_one_line(
    data_dir: Path, run_dir: Path
) -> None:
    socket_path = run_dir / "stationd.sock"
    process = start_real(data_dir, socket_path, None, {"KONTAKTSTATION_CAMERA": "webcam"})
    try:
        code = await asyncio.to_thread(process.wait, 30)
    finally:
        stop(process)
    log = socket_path.with_suffix(".log").read_text(errors="replace")
    assert code == 1, log
    assert "Traceback" not in log, log
    errors = [line for line in log.splitlines() if line.startswith("ERROR")]
    assert errors == [
        "ERROR station.daemon: stationd could not start: "
        "KONTAKTSTATION_CAMERA='webcam' is not one of: picamera2, v4l2, testpattern"
    ], log
    assert "missing" not in log  # a typo is not reported as a missing camera

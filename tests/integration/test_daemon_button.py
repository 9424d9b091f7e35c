"""The privacy button through a running stationd: gpiozero MockFactory pin → lock → SSE event.

The pin is driven from a worker thread, as gpiozero's own threads would call back on a Pi;
the button hands each edge to the daemon's loop. Whatever the pin does (bounces, a thousand
presses, presses while the daemon shuts down) the session only ever locks.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import threading
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from station.core.ports import LedPattern
from station.core.session import CallOutcome
from station.daemon.errors import ApiError
from station.daemon.hardware import GpioHardwareLink
from station.keys.boxes import sealed_event_context
from station.keys.crypto import FieldRef, seal_field
from station.keys.vault import VaultKey
from stationapi.events import ApiEvent
from stationapi.locked import LockedClient
from tests.integration.daemon_harness import (
    CLINIC,
    Running,
    enrol,
    fake_hardware,
    running_daemon,
    short_socket_dir,
)

UNLOCKED_STATES = {"staff", "pre_call_check", "waiting_for_gp", "in_call_attended", "wrap_up"}


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    with short_socket_dir() as path:
        yield path


@pytest.fixture
def vault_key(data_dir: Path) -> VaultKey:
    return enrol(data_dir)


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """Everything the loop would report as an unhandled error (a crash in a callback)."""
    errors: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield errors
    loop.set_exception_handler(None)


class EventLog:
    """An SSE client over the socket, recording every event until stopped."""

    def __init__(self, station: Running) -> None:
        self.events: list[ApiEvent] = []
        self._station = station
        self._started = asyncio.Event()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> EventLog:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._started.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        async with LockedClient(self._station.socket_path) as client:
            async for event in client.events():
                self.events.append(event)
                self._started.set()
                self._changed.set()

    async def wait_for(self, kind: str, count: int = 1) -> list[ApiEvent]:
        """Wait (bounded) until ``count`` events of ``kind`` arrived."""
        async with asyncio.timeout(20):
            while len(self.of(kind)) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.of(kind)

    def of(self, kind: str) -> list[ApiEvent]:
        return [e for e in self.events if e.kind == kind]

    def unlocks(self) -> int:
        """Transitions into a state that shows personal data, caused by an unlock."""
        return sum(1 for e in self.of("state") if e.data["transition"] == "unlock")


@pytest.fixture
async def station(data_dir: Path, socket_dir: Path, vault_key: VaultKey) -> AsyncIterator[Running]:
    async with running_daemon(data_dir, socket_dir, hardware=await fake_hardware()) as running:
        await running.put_clinic()
        yield running


def button_pin(station: Running) -> Any:
    link = station.daemon.hardware
    assert isinstance(link, GpioHardwareLink)
    return link.hw.button.pin


def press(pin: Any, times: int = 1) -> None:
    """Press and release, ``times`` times, from the calling thread (run it in a worker)."""
    for _ in range(times):
        pin.drive_low()
        pin.drive_high()


async def test_press_while_unlocked_locks_and_the_event_reaches_an_sse_client(
    station: Running, loop_errors: list[dict[str, Any]]
) -> None:
    token = await station.unlock()
    async with EventLog(station) as log:
        assert log.events[0].kind == "snapshot" and log.events[0].data["state"] == "staff"
        await asyncio.to_thread(press, button_pin(station))
        locked = await log.wait_for("locked")
        await log.wait_for("lock_requested")
    assert locked[0].data == {
        "seq": locked[0].seq,
        "kind": "locked",
        "at": locked[0].data["at"],
        "reason": "button",
        "state": "locked",
        "private": False,
    }
    # The token died with the lock.
    response = await station.http.get("/v1/clinics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["user_message"] == "Stationen er låst. Lås op med din PIN-kode."
    assert len(station.daemon.service.tokens) == 0
    # The LED shows "idle" (locked: nothing is live).
    link = station.daemon.hardware
    assert isinstance(link, GpioHardwareLink) and link.pattern is LedPattern.IDLE
    assert loop_errors == []


async def test_bouncing_contacts_lock_once_and_never_unlock(
    station: Running, loop_errors: list[dict[str, Any]]
) -> None:
    await station.unlock()
    pin = button_pin(station)
    async with EventLog(station) as log:
        # A bouncing contact: 50 edges within a millisecond or so.
        await asyncio.to_thread(press, pin, 25)
        await log.wait_for("locked")
        await log.wait_for("lock_requested")
        await asyncio.sleep(0.1)
        assert len(log.of("locked")) == 1
        assert log.unlocks() == 0
    button = station.daemon.hardware.hw.button  # type: ignore[union-attr]
    assert button.lock_requests + button.suppressed + button.coalesced == 25
    assert (await station.http.get("/v1/state")).json()["state"] == "locked"
    assert loop_errors == []


async def test_a_thousand_rapid_presses_never_unlock_or_crash(
    data_dir: Path, socket_dir: Path, vault_key: VaultKey, loop_errors: list[dict[str, Any]]
) -> None:
    # event_gap=0: every edge reaches the daemon's lock path (none is suppressed as a repeat).
    hardware = await fake_hardware(event_gap=0.0)
    async with running_daemon(data_dir, socket_dir, hardware=hardware) as station:
        service = station.daemon.service
        pin = hardware.hw.button.pin
        await station.unlock()
        successful_unlocks = 1
        async with EventLog(station) as log:
            presser = asyncio.create_task(asyncio.to_thread(press, pin, 1000))
            # Staff keep trying to unlock while the button is hammered: only a PIN unlocks,
            # and an unlock whose PIN check spans a press is refused.
            attempts = 0
            while not presser.done():
                response = await station.http.post(
                    "/v1/unlock", json={"staff_number": "101", "pin": "4711"}
                )
                attempts += 1
                assert response.status_code in (200, 409), response.text
                successful_unlocks += response.status_code == 200
            await presser
            await asyncio.sleep(0.2)  # the last presses' callbacks run on the loop
            if service.session.state.value != "locked":
                # The last unlock came after the last press: one more press ends it.
                await asyncio.to_thread(press, pin)
            async with asyncio.timeout(10):
                while service.session.state.value != "locked":
                    await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)
            assert log.unlocks() == successful_unlocks - 1  # the first was before the log
        button = hardware.hw.button
        # Every edge reached the lock path, or was folded into a lock request on its way.
        assert button.lock_requests + button.coalesced >= 1000
        assert button.lock_requests == service.button_presses
        assert len(service.tokens) == 0
        assert (await station.http.get("/v1/state")).json()["state"] == "locked"
        assert attempts >= 1
    assert loop_errors == []


async def test_long_press_asks_to_pause_media(
    data_dir: Path, socket_dir: Path, vault_key: VaultKey
) -> None:
    hardware = await fake_hardware(hold_seconds=0.2)
    async with running_daemon(data_dir, socket_dir, hardware=hardware) as station:
        await station.unlock()
        pin = hardware.hw.button.pin
        async with EventLog(station) as log:
            await asyncio.to_thread(pin.drive_low)
            await log.wait_for("locked")
            pause = await log.wait_for("pause_media")
            await asyncio.to_thread(pin.drive_high)
        assert pause[0].data["source"] == "button"
        # The press that started the hold locked first.
        kinds = [e.kind for e in log.events]
        assert kinds.index("locked") < kinds.index("pause_media")
        assert station.daemon.service.long_presses == 1


async def test_presses_during_shutdown_never_unlock_or_crash(
    data_dir: Path, socket_dir: Path, vault_key: VaultKey, loop_errors: list[dict[str, Any]]
) -> None:
    hardware = await fake_hardware(event_gap=0.0)
    pin = hardware.hw.button.pin
    stop = threading.Event()
    failures: list[BaseException] = []

    def hammer() -> None:
        while not stop.is_set():
            try:
                pin.drive_low()
                pin.drive_high()
            except Exception as exc:  # a closed pin may refuse; the daemon must not care
                failures.append(exc)
                return

    async with running_daemon(data_dir, socket_dir, hardware=hardware) as station:
        service = station.daemon.service
        token = await station.unlock()
        thread = threading.Thread(target=hammer, daemon=True)
        thread.start()
        try:
            await asyncio.sleep(0.05)
            await station.daemon.stop()
        finally:
            stop.set()
            thread.join(5)
        assert service.session.is_locked
        assert len(service.tokens) == 0
        assert hardware.hw.button.closed
        with pytest.raises(ApiError) as refused:
            service.authenticate(token)
        assert refused.value.status == 401
    assert loop_errors == []
    # The finger may be refused by the closed pin, or lose gpiozero's own check-then-call race
    # in MockPin.drive_low (`_when_changed` set to None by close between the check and the
    # call): both inside gpiozero. A frame of ours at the top of the traceback would mean the
    # daemon's handler raised into the pin.
    assert all(_raised_inside_gpiozero(f) for f in failures), [
        traceback.format_exception(f) for f in failures
    ]


def _raised_inside_gpiozero(exc: BaseException) -> bool:
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and f"{os.sep}gpiozero{os.sep}" in frames[-1].filename


async def test_press_during_a_call_goes_private_and_the_call_end_is_sealed(
    station: Running, vault_key: VaultKey, loop_errors: list[dict[str, Any]]
) -> None:
    service = station.daemon.service
    token = await station.unlock()
    h = {"Authorization": f"Bearer {token}"}
    now = datetime.now(UTC)
    created = await station.http.post(
        "/v1/consultations",
        headers=h,
        json={
            "clinic_id": CLINIC.id,
            "starts_at": (now + timedelta(minutes=5)).isoformat(),
            "ends_at": (now + timedelta(minutes=25)).isoformat(),
            "consultation_type": "video_consultation",
        },
    )
    cid = created.json()["id"]
    blob = seal_field(secrets.token_bytes(32), b"Anna Hansen", FieldRef("q", "e1", "display_name"))
    response = await station.http.post(
        f"/v1/consultations/{cid}/entries",
        headers=h,
        json={"id": "e1", "sealed": {"display_name": base64.b64encode(blob).decode()}},
    )
    assert response.status_code == 201
    response = await station.http.post(
        "/v1/session/begin-check", headers=h, json={"appointment_id": cid}
    )
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "pre_call_check"
    response = await station.http.post("/v1/session/check-passed", headers=h)
    assert response.json()["state"] == "waiting_for_gp"
    admitted_at = time.monotonic()
    service.call_gp_admitted()  # the call engine's side
    async with EventLog(station) as log:
        await asyncio.to_thread(press, button_pin(station))
        locked = await log.wait_for("locked")
        assert locked[0].data["private"] is True and locked[0].data["state"] == "in_call_private"
        assert (await station.http.get("/v1/clinics", headers=h)).status_code == 401
        link = station.daemon.hardware
        assert isinstance(link, GpioHardwareLink) and link.pattern is LedPattern.PRIVATE_CALL
        # A second press during the private call (after the button's 0.25 s repeat gap)
        # changes nothing.
        await asyncio.sleep(0.3)
        await asyncio.to_thread(press, button_pin(station))
        await log.wait_for("lock_requested", 2)
        assert (await station.http.get("/v1/state")).json()["state"] == "in_call_private"
        service.call_ended(CallOutcome.HUNG_UP_GP)
        call_seconds = time.monotonic() - admitted_at
        ended = await log.wait_for("state", 2)
    assert ended[-1].data["transition"] == "call_ended" and ended[-1].data["state"] == "locked"

    # Recorded while locked: a sealed box only the vault key opens.
    token = await station.unlock()
    h = {"Authorization": f"Bearer {token}"}
    async with asyncio.timeout(10):
        while not (
            items := (
                await station.http.get(f"/v1/consultations/{cid}/sealed-events", headers=h)
            ).json()["items"]
        ):
            await asyncio.sleep(0.02)
    assert [i["kind"] for i in items] == ["call_ended"]
    sealed_box = base64.b64decode(items[0]["blob"])
    assert b"call_ended" not in sealed_box
    opened = json.loads(
        vault_key.open_sealed_box(sealed_box, sealed_event_context(cid, "call_ended"))
    )
    assert opened["kind"] == "call_ended" and opened["outcome"] == "hung_up_gp"
    # The call lasted from the admission to the end, as the test saw it (a second of slack for
    # the clocks' rounding): neither negative, nor the time since the station started.
    assert isinstance(opened["duration_seconds"], int | float)
    assert 0 <= opened["duration_seconds"] <= call_seconds + 1
    consultation = (await station.http.get(f"/v1/consultations/{cid}", headers=h)).json()
    assert consultation["status"] == "ended"
    state = (await station.http.get("/v1/state")).json()
    assert state["pending_wrap_ups"] == [cid]
    response = await station.http.post("/v1/session/resume-wrap-up", headers=h, json={})
    assert response.json()["state"] == "wrap_up"
    response = await station.http.post("/v1/session/finish-wrap-up", headers=h)
    assert response.json()["state"] == "staff"
    assert loop_errors == []

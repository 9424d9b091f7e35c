"""Shared set-up for the staff UI's tests (no tests here): a real stationd, seeded records.

stationd runs with the shipped fake hardware (gpiozero MockFactory, test-pattern camera,
tone microphone, recording loudspeaker), a real keyring with cheap Argon2 parameters, and a
FakeClock shared with the app, so "today" and the call window are fixed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from station.core.clock import FakeClock
from station.core.cpr import parse_cpr
from station.core.model import Resident, WithCpr, WithoutCpr
from station.i18n import set_language
from station.keys.keyslots import KdfParams
from station.keys.records import ConsultationKey, seal_entry
from station.keys.vault import VaultKey
from station.storage.store import Clinic
from tests.integration.daemon_harness import (
    CLINIC,
    STAFF_ID,
    STAFF_NUMBER,
    STAFF_PIN,
    TEST_KDF,
    Running,
    enrol,
    running_daemon,
)
from tui.staff.app import StaffApp
from tui.staff.main import create_app
from tui.staff.screens.call import CallScreen
from tui.staff.screens.gp_link import GpLinkScreen

__all__ = [
    "NOW",
    "SIZE",
    "STAFF_ID",
    "STAFF_NUMBER",
    "STAFF_PIN",
    "Station",
    "seed",
    "staff_station",
    "threaded_station",
    "unlock",
    "wait_for",
]

#: 09:50 Danish time (CET) on a Monday: ten minutes before the 10:00 round.
NOW = datetime(2025, 3, 10, 8, 50, tzinfo=UTC)
#: The station's terminal.
SIZE = (100, 30)
ROUND = (
    ("Karen Jensen", date(1931, 4, 2), "12"),
    ("Poul Madsen", date(1938, 11, 23), "14B"),
    ("Inger Nielsen", date(1942, 7, 9), "3"),
)


@dataclass
class Station:
    """A running stationd, its vault key, clock and the seeded consultation ids."""

    running: Running
    vault: VaultKey
    clock: FakeClock
    environ: dict[str, str]
    round_id: str = ""
    cpr_id: str = ""
    #: The daemon's loop when it runs on a thread of its own (``threaded_station``).
    loop: asyncio.AbstractEventLoop | None = None

    def in_daemon(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the daemon's loop (its own thread) and wait for it."""
        assert self.loop is not None
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()

        self.loop.call_soon_threadsafe(run)
        done.wait(10)

    @property
    def socket_path(self) -> Path:
        """stationd's socket."""
        return self.running.socket_path

    @property
    def service(self) -> Any:
        """The daemon's service (session, store, audit)."""
        return self.running.daemon.service

    def app(self, live_interval: float = 0.2) -> StaffApp:
        """A staff app on this station (same clock)."""
        return create_app(self.socket_path, clock=self.clock, live_interval=live_interval)


async def seed(
    station: Station,
    *,
    residents: tuple[tuple[str, date, str], ...] = ROUND,
    extra_appointments: int = 0,
    per_appointment: int = 10,
    raw_names: tuple[str, ...] = (),
) -> None:
    """Book the 10:00 round (without CPR) and an 11:00 appointment with CPR, in the store.

    ``raw_names`` are sealed directly (bypassing the domain's validation), as if a faulty or
    hostile writer had put them there: the UI must still show them safely.
    """
    service = station.service
    starts = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)

    async def book(when: datetime, kind: str) -> tuple[str, ConsultationKey]:
        from station.core.ids import new_id

        cid = new_id()
        await service.db(
            service.store.create_consultation,
            consultation_id=cid,
            clinic_id=CLINIC.id,
            starts_at=when,
            ends_at=when + timedelta(minutes=30),
            consultation_type=kind,
        )
        key, wrapped = ConsultationKey.new(station.vault, cid)
        await service.db(service.store.put_consultation_key, cid, wrapped)
        return cid, key

    async def queue(cid: str, key: ConsultationKey, resident: Resident, reason: str | None) -> None:
        sealed = seal_entry(key, resident.id, resident, reason)
        await service.db(
            service.store.add_entry, entry_id=resident.id, consultation_id=cid, sealed=sealed
        )

    station.round_id, key = await book(starts, "video_consultation")
    for name, born, room in residents:
        await queue(station.round_id, key, Resident.new(WithoutCpr(name, born, room)), "Kontrol")
    for name in raw_names:
        from station.core.ids import new_id
        from station.keys.crypto import FieldRef

        eid = new_id()
        sealed = {
            field: key.seal(value, FieldRef("queue_entries", eid, field))
            for field, value in (
                ("display_name", name),
                ("birth_date", "1940-01-01"),
                ("room", name),
                ("reason", name),
            )
        }
        await service.db(
            service.store.add_entry, entry_id=eid, consultation_id=station.round_id, sealed=sealed
        )
    station.cpr_id, key2 = await book(starts + timedelta(hours=1), "assisted_consultation")
    await queue(
        station.cpr_id,
        key2,
        Resident.new(WithCpr(parse_cpr("010190-1234"), "Anna Hansen", room="7")),
        "Hjertebanken",
    )
    for n in range(extra_appointments):
        cid, k = await book(starts + timedelta(hours=2, minutes=30 * n), "video_conference")
        for i in range(per_appointment):
            resident = Resident.new(
                WithoutCpr(f"Beboer {n}-{i}", date(1940, 1, 1 + i % 28), str(100 + i))
            )
            await queue(cid, k, resident, None)


@contextlib.contextmanager
def tcp_listener() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections (a stand-in hub/TURN address)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


@contextlib.asynccontextmanager
async def staff_station(
    data_dir: Path,
    socket_dir: Path,
    *,
    clock: FakeClock | None = None,
    kdf: KdfParams = TEST_KDF,
    ice_servers: list[dict[str, Any]] | None = None,
    **daemon: Any,
) -> AsyncIterator[Station]:
    """stationd with a keyring (cheap Argon2 unless ``kdf`` says otherwise), a clinic and a
    hub address that answers. No TURN server unless ``ice_servers`` names one: the pre-call
    check tries a real TURN allocation, which only a real TURN server (coturn) grants."""
    set_language("da")
    clock = clock or FakeClock(NOW)
    vault = enrol(data_dir, kdf=kdf)
    with tcp_listener() as port:
        environ = {
            **os.environ,
            "GPIOZERO_PIN_FACTORY": "mock",
            "KONTAKTSTATION_HUB_URL": f"http://127.0.0.1:{port}",
            "KONTAKTSTATION_ICE_SERVERS": json.dumps(ice_servers or []),
        }
        async with running_daemon(
            data_dir, socket_dir, clock=clock, environ=environ, **daemon
        ) as running:
            await running.put_clinic(CLINIC)
            await running.put_clinic(
                Clinic(
                    id="clinic-2",
                    name="Lægerne i Vestergade",
                    provider_number="123456",
                    video_room="room-2",
                )
            )
            yield Station(running, vault, clock, environ)


async def wait_for(pilot: Pilot[Any], predicate: Callable[[], bool], within: float = 15.0) -> None:
    """Let the app run until ``predicate`` holds (generous: machines are busy)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("the app did not get there in time")
        await pilot.pause(0.05)


async def press_leaving(pilot: Pilot[Any], key: str) -> None:
    """Press a key that takes staff to another screen; the caller then waits for that screen.

    ``Pilot.press`` waits for every widget of the screen in front to run a callback. A key that
    switches screens can close that screen while a widget on it is still being mounted or
    reloaded, and the wait then runs out after 30 s (seen once in CI: ``WaitForScreenTimeout``
    after "c" on Today). The key goes in as the terminal would send it; the caller's own wait
    for the next screen is what proves it arrived.
    """
    pilot.app.simulate_key(key)
    await pilot.pause()


async def on_call_screen(pilot: Pilot[Any]) -> CallScreen:
    """The call screen after "start call": with a hub, staff first close the GP's code screen
    (it stays until closed, so nobody loses the code while reading it out)."""
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, CallScreen | GpLinkScreen))
    if isinstance(app.screen, GpLinkScreen):
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, CallScreen))
    screen = app.screen
    assert isinstance(screen, CallScreen)
    return screen


async def unlock(pilot: Pilot[Any], number: str = STAFF_NUMBER, pin: str = STAFF_PIN) -> None:
    """Type staff number and PIN on the log-in screen and wait for Today."""
    from tui.staff.screens.today import TodayScreen

    await type_pin(pilot, number, pin)
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, TodayScreen))
    await wait_for(pilot, lambda: bool(pilot.app.screen.appointments), 15)  # type: ignore[attr-defined]


async def type_pin(pilot: Pilot[Any], number: str, pin: str) -> None:
    """Type into the log-in screen's two fields and submit."""
    from textual.widgets import Input

    app = pilot.app
    app.screen.query_one("#staff-number", Input).value = number
    app.screen.query_one("#pin", Input).focus()
    await pilot.pause()
    await pilot.press(*pin, "enter")


@contextlib.contextmanager
def threaded_station(
    data_dir: Path,
    socket_dir: Path,
    *,
    prepare: Callable[[Station], Any] | None = None,
) -> Iterator[Station]:
    """A station on its own thread and loop (for snapshot tests, whose app owns the loop)."""
    ready = threading.Event()
    stop: list[asyncio.Event] = []
    holder: list[Station] = []
    errors: list[BaseException] = []
    loop = asyncio.new_event_loop()

    async def serve() -> None:
        try:
            async with staff_station(data_dir, socket_dir) as station:
                if prepare is not None:
                    await prepare(station)
                station.loop = asyncio.get_running_loop()
                holder.append(station)
                stop.append(asyncio.Event())
                ready.set()
                await stop[0].wait()
        except BaseException as exc:
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    ready.wait(60)
    if errors:
        raise errors[0]
    try:
        yield holder[0]
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(30)
        loop.close()

"""Shared set-up for the locked UI's tests: a real stationd, seeded like the demo.

The daemon runs on its own event loop in a thread (:class:`DaemonThread`), because
``snap_compare`` runs the app in a loop of its own; Pilot tests use the same helper so
every locked-UI test talks to the real API over a real Unix socket. The two tests at the
bottom check the helper itself.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest

from kontaktstation.demo_data import (
    DEMO_CLINIC,
    DEMO_CPR_RESIDENT,
    DEMO_ROUND,
    SeededConsultation,
    seed_demo,
)
from station.core.clock import FakeClock
from station.daemon.hardware import REPROBE_SECONDS, HardwareLink
from stationapi.locked import LockedClient
from stationapi.staff import StaffClient
from tests.integration.daemon_harness import (
    STAFF_ID,
    STAFF_PIN,
    Running,
    enrol,
    running_daemon,
    short_socket_dir,
)
from tui.locked.app import LockedApp
from tui.locked.link import CallAction, DaemonStation

T = TypeVar("T")

#: 09:50 in Copenhagen: the demo round (10 minutes later) is due soon.
T0 = datetime(2026, 11, 25, 8, 50, tzinfo=UTC)
ZONE = ZoneInfo("Europe/Copenhagen")
SIZE = (100, 30)
#: Every personal value the daemon holds (sealed): none may ever be drawn by the locked UI.
PERSONAL = tuple(
    value
    for r in (*DEMO_ROUND, DEMO_CPR_RESIDENT)
    for value in (
        r.display_name,
        r.display_name.split()[0],
        r.cpr,
        r.cpr.replace("-", "") if r.cpr else None,
        r.reason,
        f"Værelse {r.room}",
        r.birth_date.isoformat() if r.birth_date else None,
    )
    if value
)


class DaemonThread:
    """stationd (fake hardware, fake clock) on an event loop of its own, in a thread.

    ``hardware`` builds another hardware link on the daemon's loop (a station with a part
    missing); ``reprobe_seconds`` is how often stationd looks for it again.
    """

    def __init__(
        self,
        data_dir: Path,
        socket_dir: Path,
        clock: FakeClock,
        *,
        hardware: Callable[[], Awaitable[HardwareLink]] | None = None,
        reprobe_seconds: float = REPROBE_SECONDS,
    ) -> None:
        self.data_dir = data_dir
        self.socket_dir = socket_dir
        self.clock = clock
        self._hardware = hardware
        self._reprobe_seconds = reprobe_seconds
        self.running: Running | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="stationd-test", daemon=True)

    @property
    def socket_path(self) -> Path:
        """The daemon's API socket."""
        return self.socket_dir / "stationd.sock"

    def _main(self) -> None:
        async def serve() -> None:
            self.loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            link = None if self._hardware is None else await self._hardware()
            async with running_daemon(
                self.data_dir,
                self.socket_dir,
                clock=self.clock,
                hardware=link,
                reprobe_seconds=self._reprobe_seconds,
            ) as r:
                self.running = r
                self._ready.set()
                await self._stop.wait()

        try:
            asyncio.run(serve())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    def __enter__(self) -> DaemonThread:
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None or self.running is None:
            raise RuntimeError(f"stationd did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "stationd thread did not stop"

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the daemon's loop (from any thread) and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """:meth:`run` from async code (does not block the caller's loop)."""
        assert self.loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    # -- what the tests do to the station ------------------------------------------------

    async def seed(
        self, *, round_in: timedelta = timedelta(minutes=10), clinic_name: str | None = None
    ) -> list[SeededConsultation]:
        """The demo's care home: a clinic, a round without CPR, an appointment with CPR."""
        assert self.running is not None
        vault = self._vault
        clinic = DEMO_CLINIC
        if clinic_name is not None:
            clinic = type(DEMO_CLINIC)(
                id=DEMO_CLINIC.id,
                name=clinic_name,
                provider_number=DEMO_CLINIC.provider_number,
                video_room=DEMO_CLINIC.video_room,
            )
        await self.running.put_clinic(clinic)
        async with StaffClient(self.socket_path) as client:
            await client.unlock(STAFF_ID, STAFF_PIN)
            seeded = await seed_demo(client, vault, self.clock.now(), round_in=round_in)
            await client.lock()
        return seeded

    async def go_private(self, consultation_id: str) -> str:
        """Staff start the call and leave: the state becomes IN_CALL_PRIVATE."""
        async with StaffClient(self.socket_path) as client:
            await client.unlock(STAFF_ID, STAFF_PIN)
            await client.begin_check(consultation_id)
            await client.check_passed()
            result = await client.lock("leave")
        return result.state

    async def unlock(self) -> str:
        """A staff member logs in (STAFF)."""
        async with StaffClient(self.socket_path) as client:
            return (await client.unlock(STAFF_ID, STAFF_PIN)).state

    async def end_private_call(self) -> None:
        """The call engine reports the end of the call (LOCKED, wrap-up pending)."""
        from station.core.session import CallOutcome

        assert self.running is not None
        self.running.daemon.service.call_ended(CallOutcome.HUNG_UP_GP)


@pytest.fixture
def station(data_dir: Path) -> Iterator[DaemonThread]:
    """A seeded-later stationd with the staff member enrolled, at :data:`T0`."""
    clock = FakeClock(T0)
    with short_socket_dir() as socket_dir:
        thread = DaemonThread(data_dir, socket_dir, clock)
        thread._vault = enrol(data_dir)  # type: ignore[attr-defined]
        with thread:
            yield thread


class RecordingCallStation(DaemonStation):
    """The real daemon link, except that call controls are recorded instead of sent.

    Used where the test is about the screen (the escape test), not the call engine: a
    stray "end call" must not end the session under the test's feet.
    """

    def __init__(self, socket_path: Path) -> None:
        super().__init__(LockedClient(socket_path))
        self.sent: list[CallAction] = []

    async def call_control(self, action: CallAction) -> Mapping[str, Any]:
        self.sent.append(action)
        return {}


def make_app(
    station: DaemonThread, *, link: DaemonStation | None = None, **kwargs: Any
) -> LockedApp:
    """The locked app on the test daemon, with its clock and a fixed time zone."""
    return LockedApp(
        link or DaemonStation.connect(station.socket_path),
        clock=station.clock,
        zone=ZONE,
        station_name=kwargs.pop("station_name", "Plejecenter Solbakken"),
        **kwargs,
    )


async def wait_until(predicate: Any, pilot: Any = None, timeout: float = 30.0) -> None:
    """Poll ``predicate`` (letting the app run) until true; fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        if pilot is not None:
            await pilot.pause(0.02)
        else:
            await asyncio.sleep(0.02)


def screen_text(app: LockedApp) -> str:
    """Everything drawn on the app's screen now, as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


# ------------------------------------------------------------------ checks of the helper


def test_the_thread_daemon_serves_upcoming_with_times_and_clinic_only(
    station: DaemonThread,
) -> None:
    seeded = station.run(station.seed())
    assert len(seeded) == 2

    async def read() -> Any:
        async with StaffClient(station.socket_path) as client:
            return await client.upcoming()

    upcoming = station.run(read())
    assert [i.starts_at for i in upcoming.items] == [s.starts_at for s in seeded]
    body = upcoming.model_dump_json()
    assert DEMO_CLINIC.name in body
    assert not [p for p in PERSONAL if p in body]


def test_going_private_reaches_the_private_state(station: DaemonThread) -> None:
    seeded = station.run(station.seed(round_in=timedelta(minutes=5)))
    assert station.run(station.go_private(seeded[0].id)) == "in_call_private"

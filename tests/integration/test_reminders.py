"""Reminders no one can miss, and missed slots (issue 17, item 2), through stationd as
assembled: its own reminder loop on an injected clock, the shipped fake hardware (gpiozero's
MockFactory pins for the lamp, the recording loudspeaker) and the real espeak-ng."""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hardware.audio.fake import RecordingSpeaker
from hardware.audio.speech import MissingSpeech, probe_espeak
from hardware.bundle import build_hardware
from station.core.clock import FakeClock
from station.core.ports import LedPattern
from station.core.session import CallOutcome
from station.daemon.hardware import GpioHardwareLink, hardware_environ
from station.keys.crypto import FieldRef, seal_field
from tests.integration.daemon_harness import (
    CLINIC,
    Running,
    enrol,
    running_daemon,
    short_socket_dir,
)

pytestmark = pytest.mark.skipif(
    probe_espeak() is not None, reason="espeak-ng with its Danish voice is not installed"
)

SOON = (
    "Videokonsultation med Lægehuset Åboulevarden om {minutes} minutter. "
    "Personale, log venligst ind på stationen."
)
NOW = "Videokonsultation med Lægehuset Åboulevarden nu. Personale, log venligst ind på stationen."


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    with short_socket_dir() as path:
        yield path


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def until(predicate: Callable[[], Any], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def book(station: Running, token: str, starts_at: datetime, minutes: int = 30) -> str:
    response = await station.http.post(
        "/v1/consultations",
        headers=bearer(token),
        json={
            "clinic_id": CLINIC.id,
            "starts_at": starts_at.isoformat(),
            "ends_at": (starts_at + timedelta(minutes=minutes)).isoformat(),
            "consultation_type": "video_consultation",
        },
    )
    assert response.status_code == 201, response.text
    cid: str = response.json()["id"]
    return cid


def parts(station: Running) -> tuple[GpioHardwareLink, RecordingSpeaker]:
    link = station.daemon.hardware
    assert isinstance(link, GpioHardwareLink)
    speaker = link.hw.speaker
    assert isinstance(speaker, RecordingSpeaker)
    return link, speaker


def on_edges(link: GpioHardwareLink, since: int) -> tuple[int, float]:
    """Rising edges the lamp's mock pin went through after its ``since``-th state, and the
    longest time it stayed in one state meanwhile (the mock records the time since the
    previous change)."""
    assert link.hw.led is not None
    states = link.hw.led.pin.states[since:]
    rising = sum(1 for a, b in itertools.pairwise(states) if not a.state and b.state)
    return rising, max((s.timestamp for s in states[1:]), default=0.0)


async def test_a_due_consultation_flashes_chimes_and_speaks_until_someone_logs_in(
    data_dir: Path, socket_dir: Path
) -> None:
    enrol(data_dir)
    clock = FakeClock(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))
    async with running_daemon(
        data_dir, socket_dir, clock=clock, reminder_tick_seconds=0.02
    ) as station:
        link, speaker = parts(station)
        reminders = station.daemon.reminders
        await station.put_clinic()
        token = await station.unlock()
        await book(station, token, clock.now() + timedelta(minutes=20))
        await station.http.post("/v1/lock")
        await asyncio.sleep(0.2)
        # 20 minutes ahead: quiet.
        assert reminders.sounded == 0 and speaker.spoken == []
        assert link.pattern is not LedPattern.DUE

        # 15 minutes ahead: lamp, chime and the sentence, at once.
        clock.advance(timedelta(minutes=5))
        await until(lambda: reminders.sounded == 1)
        assert speaker.spoken == [SOON.format(minutes=15)]
        await until(lambda: link.hw.led is not None and link.hw.led.pattern is LedPattern.DUE)
        # The lamp really flashes: three rising edges within one 1.2 s cycle of the pattern.
        assert link.hw.led is not None
        start = len(link.hw.led.pin.states)
        await asyncio.sleep(2.5)  # two cycles of the pattern (slack for a busy machine)
        rising, longest = on_edges(link, start)
        assert rising >= 3 and longest < 1.0, (rising, longest)
        # What reached the loudspeaker: the chime and the speech, loud enough, whole.
        await until(lambda: not speaker.playing, within=10.0)
        reading = speaker.meter.reading()
        seconds = reading.samples / 48_000
        assert 2.5 < seconds < 12.0, seconds  # chime (1.2 s) + a sentence of speech
        assert reading.rms_dbfs > -35.0 and reading.peak_dbfs > -12.0
        await until(lambda: speaker.track is None)  # played, and the device released

        # Not again within the repeat interval; again after it, with the minutes left.
        clock.advance(timedelta(minutes=1))
        await asyncio.sleep(0.2)
        assert reminders.sounded == 1
        clock.advance(timedelta(minutes=1, seconds=31))
        await until(lambda: reminders.sounded == 2)
        assert speaker.spoken[-1] == SOON.format(minutes=13)

        # A log-in silences it at once: lamp back, the sentence cut off.
        token = await station.unlock()
        await until(lambda: link.hw.led is not None and link.hw.led.pattern is LedPattern.IDLE)
        await until(lambda: not speaker.playing)
        assert reminders.active is None
        # Locked again in the same phase: the log-in acknowledged it.
        await station.http.post("/v1/lock")
        clock.advance(timedelta(minutes=3))
        await asyncio.sleep(0.2)
        assert reminders.sounded == 2

        # At the start: "now", lamp again.
        clock.advance(timedelta(minutes=10))
        await until(lambda: reminders.sounded == 3)
        assert speaker.spoken[-1] == NOW
        await until(lambda: link.hw.led is not None and link.hw.led.pattern is LedPattern.DUE)
        # Nothing said ever holds more than the clinic and the time.
        assert all(
            text in (SOON.format(minutes=15), SOON.format(minutes=13), NOW)
            for text in speaker.spoken
        )

        # The slot passes without a call: quiet, and recorded as missed.
        clock.advance(timedelta(minutes=31))
        await until(lambda: reminders.active is None)
        await until(lambda: link.hw.led is not None and link.hw.led.pattern is not LedPattern.DUE)
        missed, undocumented = await station.daemon.service.attendance_counts()
        assert (missed, undocumented) == (1, 0)


async def test_without_speech_the_chime_still_plays_and_health_says_so(
    data_dir: Path, socket_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    enrol(data_dir)
    loop = asyncio.get_running_loop()
    hw = await asyncio.to_thread(
        build_hardware, hardware_environ("fake", dict(os.environ)), loop=loop
    )
    # The real probe, for an espeak-ng that is not installed.
    reason = probe_espeak("espeak-ng-not-installed")
    assert reason is not None and "not installed" in reason
    link = GpioHardwareLink(hw, speech=MissingSpeech("missing", reason))
    clock = FakeClock(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))
    caplog.set_level(logging.ERROR, logger="station.daemon.reminders")
    async with running_daemon(
        data_dir, socket_dir, clock=clock, hardware=link, reminder_tick_seconds=0.02
    ) as station:
        speaker = link.hw.speaker
        assert isinstance(speaker, RecordingSpeaker)
        body = (await station.http.get("/v1/health")).json()
        speech = next(c for c in body["checks"] if c["name"] == "speech")
        assert (speech["ok"], speech["missing"]) == (False, True)
        assert "espeak-ng-not-installed is not installed" in speech["detail"]
        assert speech["hint"].startswith("Stationen kan ikke sige sine påmindelser")
        assert body["ok"] is False
        await station.put_clinic()
        token = await station.unlock()
        # Booked for later (while someone is logged in, what is due counts as seen).
        await book(station, token, clock.now() + timedelta(minutes=20))
        await station.http.post("/v1/lock")
        reminders = station.daemon.reminders
        clock.advance(timedelta(minutes=5))
        await until(lambda: reminders.sounded == 1)
        assert speaker.spoken == [None]  # nothing said: the chime alone
        await until(lambda: link.hw.led is not None and link.hw.led.pattern is LedPattern.DUE)
        await until(lambda: not speaker.playing)
        reading = speaker.meter.reading()
        assert 1.0 < reading.samples / 48_000 < 1.5 and reading.peak_dbfs > -12.0
    assert any("chime only" in r.getMessage() for r in caplog.records)


async def test_a_missed_slot_is_recorded_once_and_survives_a_restart(
    data_dir: Path, socket_dir: Path
) -> None:
    enrol(data_dir)
    clock = FakeClock(datetime(2026, 12, 7, 12, 0, tzinfo=UTC))
    async with running_daemon(
        data_dir, socket_dir, clock=clock, reminder_tick_seconds=0.02
    ) as station:
        await station.put_clinic()
        token = await station.unlock()
        # Booked this morning; a second one was called (its call ended), so it is not missed.
        missed = await book(station, token, clock.now() - timedelta(hours=3))
        called = await book(station, token, clock.now() - timedelta(hours=2))
        service = station.daemon.service
        await service.db(service.store.set_consultation_status, called, "ended")
        await until(lambda: service.missed_since_start == 1)
    async with running_daemon(
        data_dir, socket_dir, clock=clock, reminder_tick_seconds=0.02
    ) as station:
        service = station.daemon.service
        await asyncio.sleep(0.3)  # many steps of the new stationd's loop
        assert service.missed_since_start == 0  # not recorded twice
        assert await service.attendance_counts() == (0 + 1, 0)
        token = await station.unlock()
        listed = (await station.http.get("/v1/missed", headers=bearer(token))).json()
        assert [i["consultation_id"] for i in listed["items"]] == [missed]
        assert listed["items"][0]["clinic_name"] == CLINIC.name
        assert set(listed["items"][0]) == {"consultation_id", "clinic_name", "starts_at", "ends_at"}
        acked = await station.http.post(
            "/v1/missed/acknowledge", headers=bearer(token), json={"consultation_ids": [missed]}
        )
        assert acked.json() == {"acknowledged": 1}
        listed = (await station.http.get("/v1/missed", headers=bearer(token))).json()
        assert listed["items"] == []
        # Seen, still counted for IT; and the 401 without a token.
        assert await service.attendance_counts() == (1, 0)
        assert (await station.http.get("/v1/missed")).status_code == 401


async def test_a_resident_s_private_call_is_never_talked_over(
    data_dir: Path, socket_dir: Path
) -> None:
    enrol(data_dir)
    clock = FakeClock(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))
    async with running_daemon(
        data_dir, socket_dir, clock=clock, reminder_tick_seconds=0.02
    ) as station:
        link, speaker = parts(station)
        service = station.daemon.service
        reminders = station.daemon.reminders
        await station.put_clinic()
        token = await station.unlock()
        later = await book(station, token, clock.now() + timedelta(minutes=20))
        now = await book(station, token, clock.now() - timedelta(minutes=5))
        # A resident waits (sealed: stationd cannot read the name, let alone say it).
        entry = "entry-1"
        name = seal_field(
            secrets.token_bytes(32),
            b"Karen Jensen",
            FieldRef("queue_entries", entry, "display_name"),
        )
        added = await station.http.post(
            f"/v1/consultations/{now}/entries",
            headers=bearer(token),
            json={"id": entry, "sealed": {"display_name": base64.b64encode(name).decode()}},
        )
        assert added.status_code == 201, added.text
        # The current one is called; staff leave the resident alone with the GP.
        begun = await station.http.post(
            "/v1/session/begin-check", headers=bearer(token), json={"appointment_id": now}
        )
        assert begun.status_code == 200, begun.text
        passed = await station.http.post("/v1/session/check-passed", headers=bearer(token))
        assert passed.status_code == 200, passed.text
        service.call_gp_admitted()
        service.leave()
        assert service.session.state.value == "in_call_private"
        # The next one becomes due during the private call: not a sound, not a flash.
        clock.advance(timedelta(minutes=5))
        await asyncio.sleep(0.3)
        assert reminders.sounded == 0 and speaker.spoken == []
        assert link.hw.led is not None and link.hw.led.pattern is LedPattern.PRIVATE_CALL
        # The call ends, the station is locked and nobody has seen the next one: now it rings.
        service.call_ended(CallOutcome.HUNG_UP_GP)
        assert service.session.is_locked
        await until(lambda: reminders.sounded == 1)
        assert reminders.active is not None and reminders.active.consultation_id == later
        assert speaker.spoken == [SOON.format(minutes=15)]

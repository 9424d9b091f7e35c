"""Reminders no one can miss, and slots nobody kept (issue 17, item 2).

:class:`Reminders` runs on stationd's loop, one step every ``tick`` seconds, on the injected
clock:

- **Due**: from :data:`REMINDER_LEAD` (15 minutes) before a booked consultation's start (the
  *soon* phase) and from its start to the end of its slot (the *now* phase), while the station
  is locked (nobody logged in, no call running), the status lamp shows
  ``LedPattern.DUE`` and the loudspeaker plays a chime and a short spoken sentence:
  "Videokonsultation med <klinik> om 12 minutter" / "... nu" — the clinic and the time only,
  never anything about a resident (stationd cannot read that anyway: it is sealed). The
  sound is repeated every :data:`REPEAT` until someone logs in or the slot passes. A log-in
  acknowledges the phase that is due then (and any phase that begins while someone is logged
  in), so the *now* phase still sounds at the start if staff locked again and left.
- **Missed**: a booked consultation whose slot ended without a call (still ``booked``; the
  one being called right now excepted) is recorded once in the store's ``missed_slots``
  (clear metadata: times and the clinic), which survives restarts and the consultation's
  purge. Staff see it at their next log-in; the heartbeat counts it.

Speech: :mod:`hardware.audio.speech` (espeak-ng). Without it the chime still plays, the
health row ``speech`` fails with the reason, and the log says so once: never a silent miss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np

from hardware.audio.speech import SoundTrack, Speech, chime, silence
from station.core.session import SessionState, Transition
from station.i18n import _

__all__ = ["REMINDER_LEAD", "REPEAT", "Due", "Reminders", "reminder_text"]

_log = logging.getLogger(__name__)

#: The first reminder comes this long before a consultation starts.
REMINDER_LEAD: Final = timedelta(minutes=15)
#: A reminder nobody answered sounds again after this long (on the injected clock).
REPEAT: Final = timedelta(minutes=2, seconds=30)
#: Due consultations looked at for a reminder (the first few only).
_LOOK_AHEAD: Final = 20


@dataclass(frozen=True, slots=True)
class Due:
    """A booked consultation that is due now: which, which phase, its clinic and times."""

    consultation_id: str
    phase: str  # "soon" or "now"
    clinic_name: str
    starts_at: datetime
    ends_at: datetime

    @property
    def key(self) -> tuple[str, str]:
        """What a log-in acknowledges."""
        return self.consultation_id, self.phase


def reminder_text(due: Due, now: datetime) -> str:
    """The spoken sentence (in the language in use): the clinic and the time, nothing else."""
    if due.phase == "now":
        first = _("Video consultation with {clinic} now.").format(clinic=due.clinic_name)
    else:
        seconds = (due.starts_at - now).total_seconds()
        minutes = max(1, int(-(-seconds // 60)))  # rounded up: "in 15 minutes" at 14:45:00
        first = _("Video consultation with {clinic} in {minutes} minutes.").format(
            clinic=due.clinic_name, minutes=minutes
        )
    return first + " " + _("Staff, please log in at the station.")


class Reminders:
    """See the module docs. ``speaker`` gives the loudspeaker now (it may be rebuilt when the
    speakerphone comes back); ``speech`` makes the sentence."""

    def __init__(
        self,
        service: Any,
        *,
        speaker: Callable[[], Any],
        speech: Speech,
        repeat: timedelta = REPEAT,
        lead: timedelta = REMINDER_LEAD,
    ) -> None:
        self.service = service
        self._speaker = speaker
        self.speech = speech
        self.repeat = repeat
        self.lead = lead
        self._acknowledged: set[tuple[str, str]] = set()
        self._active: Due | None = None
        self._last_sounded: datetime | None = None
        self._track: SoundTrack | None = None
        self._chime = np.concatenate([chime(), silence(0.3)])
        #: How many reminders were sounded, and the last sentence (tests, bench).
        self.sounded = 0
        self.last_text: str | None = None
        #: Why the last reminder was not spoken or played (English), None when it was.
        self.speech_error: str | None = self.speech.reason
        self._audio_error: str | None = None
        self._clinics: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        if self.speech.reason is not None:
            _log.error("spoken reminders unavailable, chime only: %s", self.speech.reason)
        service.session.subscribe(self._on_transition)

    @property
    def active(self) -> Due | None:
        """The reminder sounding now (None when quiet)."""
        return self._active

    # ------------------------------------------------------------------ the loop

    async def run(self, tick: float) -> None:
        """Step every ``tick`` seconds until cancelled; a failing step is logged, not fatal."""
        failing: str | None = None
        while True:
            try:
                await self.step()
                failing = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if failing != type(exc).__name__:
                    failing = type(exc).__name__
                    _log.error("reminder step failed: %s: %s", failing, exc)
            await asyncio.sleep(tick)

    async def step(self) -> None:
        """Record missed slots, then start, repeat or end the reminder for what is due now."""
        service = self.service
        now: datetime = service.clock.now()
        await self._record_missed(now)
        due = await self._due(now)
        state = service.session.state
        if state is SessionState.IN_CALL_PRIVATE:
            # A resident's private call: never talk over it, and nobody has seen anything.
            await self._quiet()
            return
        if state is not SessionState.LOCKED:
            # Someone is logged in: what is due now is theirs to see.
            self._acknowledged.update(d.key for d in due)
            await self._quiet()
            return
        current = next((d for d in due if d.key not in self._acknowledged), None)
        if current is None:
            await self._quiet()
            return
        fresh = self._active is None or self._active.key != current.key
        self._active = current
        service.set_reminder(True)
        if (
            fresh
            or self._last_sounded is None
            or now - self._last_sounded >= self.repeat
            or now < self._last_sounded  # the clock was set back
        ):
            self._last_sounded = now
            await self._sound(current, now)

    # ------------------------------------------------------------------ what is due

    async def _due(self, now: datetime) -> list[Due]:
        service = self.service
        rows = await service.db(
            service.store.list_consultations,
            starts_from=now - timedelta(days=1),
            starts_before=now + self.lead + timedelta(seconds=1),  # the bound is exclusive
            statuses=["booked"],
        )
        due: list[Due] = []
        for row in rows:
            if row.ends_at <= now or row.starts_at - now > self.lead:
                continue
            if len(due) == _LOOK_AHEAD:
                break
            phase = "now" if row.starts_at <= now else "soon"
            due.append(
                Due(row.id, phase, await self._clinic(row.clinic_id), row.starts_at, row.ends_at)
            )
        return due

    async def _clinic(self, clinic_id: str) -> str:
        name = self._clinics.get(clinic_id)
        if name is None:
            service = self.service
            try:
                name = str((await service.db(service.store.get_clinic, clinic_id)).name)
            except Exception:
                return _("the doctor")  # a clinic no longer configured: still remind
            self._clinics[clinic_id] = name
        return name

    async def _record_missed(self, now: datetime) -> None:
        service = self.service
        session = service.session
        keep = {session.appointment_id} if session.appointment_id else set()
        missed = await service.db(service.store.record_missed, now, keep=keep)
        if missed:
            # A count only: which clinic a care home missed is IT's to ask staff, not the log's.
            _log.warning("%d booked consultation(s) passed without a call", len(missed))
            service.missed_recorded(len(missed))

    # ------------------------------------------------------------------ sound and lamp

    async def _sound(self, due: Due, now: datetime) -> None:
        text = reminder_text(due, now)
        samples = self._chime
        spoken: str | None = None
        try:
            speech = await self.speech.synthesize(text, self.service.language)
        except Exception as exc:
            if self.speech_error != str(exc):
                _log.error("reminder not spoken, chime only: %s", exc)
            self.speech_error = str(exc)
        else:
            samples = np.concatenate([self._chime, speech])
            spoken = text
            self.speech_error = None
        track = SoundTrack(samples, spoken)
        speaker = self._speaker()
        if speaker is None:
            return
        try:
            await speaker.start(track)
        except Exception as exc:
            if self._audio_error != type(exc).__name__:
                _log.error("reminder not played: %s", exc)
            self._audio_error = type(exc).__name__
            return
        self._audio_error = None
        self._track = track
        self.sounded += 1
        self.last_text = spoken
        self._spawn(self._release_when_done(speaker, track))

    async def _release_when_done(self, speaker: Any, track: SoundTrack) -> None:
        """Close the output device once the reminder has played (a real speakerphone held
        open would be busy for the health check and the next call)."""
        # Paced at real time; a call that takes the loudspeaker meanwhile just replaces it.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(track.finished.wait(), track.seconds + 5.0)
        if getattr(speaker, "track", None) is track:
            with contextlib.suppress(Exception):
                await speaker.stop()
        if self._track is track:
            self._track = None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _quiet(self) -> None:
        if self._active is None:
            return
        self._active = None
        self._last_sounded = None
        self.service.set_reminder(False)
        await self._stop_sound()

    async def _stop_sound(self) -> None:
        track, self._track = self._track, None
        if track is None or track.readyState != "live":
            return
        speaker = self._speaker()
        # Only our own track: a call that took the loudspeaker since is left alone.
        if speaker is not None and getattr(speaker, "track", None) is track:
            with contextlib.suppress(Exception):
                await speaker.stop()

    def _on_transition(self, transition: Transition) -> None:
        """A log-in (or a call) silences the reminder at once, not at the next step."""
        if transition.to_state is SessionState.LOCKED or self._active is None:
            return
        self._acknowledged.add(self._active.key)
        self._active = None
        self._last_sounded = None
        self.service.set_reminder(False)
        with contextlib.suppress(RuntimeError):
            self._spawn(self._stop_sound())

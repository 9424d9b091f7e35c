"""The call engine: one GP call, from the station's offer to its end, re-dialling by itself.

A :class:`CallEngine` runs at most one call at a time. :meth:`CallEngine.start` begins a
call in a room on the hub (:meth:`CallEngine.create_room` makes one for a booking) and runs a
supervisor task:

1. **An attempt** is one ``RTCPeerConnection``, always with an explicit configuration
   (:mod:`station.call.ice`): the STUN/TURN servers that answered a short probe
   (:mod:`station.call.probe`; a dead server cannot stall set-up), fresh camera and microphone
   tracks, a data channel. aiortc gathers every candidate before ``setLocalDescription``
   returns (bounded by ``gather_timeout_seconds``); an offer without candidates, or without a
   relay candidate when TURN is configured (the symptom of a wrong TURN password, which aiortc
   swallows), is a clear error. The complete offer goes to the hub, with who is waiting; the
   engine long-polls for the answer.
2. **The media watchdog**: once answered, inbound media (decoded frames, audio or video) must
   arrive; none for ``media_timeout_seconds`` (or none within ``connect_timeout_seconds`` of the
   answer) ends the attempt. aiortc notices a dead path only after ~30 s and has no ICE restart,
   so the engine publishes "reconnecting" and re-dials with a NEW peer connection (a new offer
   generation in the same room; the GP page takes it by itself), backing off 0.5, 1, 2, 4, 5 s
   … until someone ends the call, the hub ends the room, or the slot is over.
3. **Statistics** every ``stats_interval_seconds`` from ``getStats()`` and the media clock: round
   trip, loss, frames per second, bitrate, and a quality level (good/fair/poor/lost).
4. **The GP's presence** (:mod:`station.call.liveness` says what aiortc can and cannot see):
   the GP page's data-channel heartbeat counts as a sign of life beside media, so a GP without
   camera and microphone is not re-dialled; the page's goodbye (``pagehide``: data channel
   and hub) ends the attempt at once and puts the call in ``gp_left``; while nothing is heard
   from the GP, the hub is asked when the GP's page last reached it, and a page silent for
   ``gp_absent_seconds`` is ``gp_left`` too ("gone"). Re-dialling goes on meanwhile: a GP who
   answers again is back and the call continues; otherwise the call ends after
   ``gp_left_end_seconds``.
5. **Frozen video**: while the GP says it sends video (the answer's direction, the page's
   camera flag) and the call is otherwise alive, no decoded frame for ``video_stall_seconds``
   asks the GP's browser for a keyframe (RTCP PLI, every second), and no frame
   ``video_keyframe_wait_seconds`` after the first request re-dials.

The engine reports through a :class:`CallObserver` (the daemon maps it onto the session and its
event stream). Nothing it logs or publishes names a resident: waiting info goes to the hub and
the data channel only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime

from station.call.attempt import AttemptRunner, passthrough_codec_preferences
from station.call.errors import CallError, CallFinished, HubUnreachable
from station.call.hub import CreatedRoom, RendezvousClient, RoomView, Sealer
from station.call.quality import Quality, grade_quality
from station.call.state import END_TIMEOUT, CallMedia, CallObserver, CallPhase
from station.core.session import CallOutcome
from station.core.waiting_room import WaitingResident
from station.i18n import N_

__all__ = [
    "CallEngine",
    "CallMedia",
    "CallObserver",
    "CallPhase",
    "Quality",
    "grade_quality",
    "passthrough_codec_preferences",
]

_log = logging.getLogger(__name__)


class CallEngine(AttemptRunner):
    """Runs one call at a time; see the module docs. Everything runs on the daemon's loop.

    The call's life is here: rooms, start and end, the supervisor that re-dials, the room
    watch and the GP's presence. One attempt is :class:`~station.call.attempt.AttemptRunner`,
    notices and controls :class:`~station.call.controls.CallControls`, the state they share
    :class:`~station.call.state.CallState`.
    """

    # ------------------------------------------------------------------ rooms

    async def create_room(self, starts_at: datetime, ends_at: datetime) -> CreatedRoom:
        """A room and GP link on the hub for a booking (raises the hub's errors)."""
        hub = self._hub()
        try:
            return await hub.create_room(starts_at, ends_at, self.config.language)
        finally:
            await hub.aclose()

    async def revoke_room(self, room_id: str) -> None:
        """Revoke a room's GP link (best effort is the caller's choice: this raises)."""
        hub = self._hub()
        try:
            await hub.revoke(room_id)
        finally:
            await hub.aclose()

    # ------------------------------------------------------------------ the call

    async def start(
        self,
        room_id: str,
        residents: Sequence[WaitingResident],
        *,
        seal: Sealer,
        slot_ends_at: datetime | None = None,
    ) -> None:
        """Begin calling in ``room_id``; returns at once (the supervisor task dials).

        ``seal`` seals who is waiting and the current resident for the GP page (the hub only
        relays the boxes): stationd's :class:`station.keys.room_seal.RoomSealer` for the room.
        """
        if self.active:
            raise CallError("a call is already running", N_("A call is already running."))
        self._reset_call()
        self.room_id = room_id
        self._residents = tuple(residents)
        self._seal = seal
        self._slot_ends_at = slot_ends_at
        self.phase = CallPhase.DIALING
        loop = asyncio.get_running_loop()
        self._supervisor = loop.create_task(self._supervise(), name="call-supervisor")
        self._watcher = loop.create_task(self._watch_room(), name="call-room-watch")
        self._presence = loop.create_task(self._watch_presence(), name="call-gp-presence")

    async def hang_up(self) -> None:
        """The station ends the call: tell the GP (data channel, hub), then tear down."""
        await self._end(CallOutcome.HUNG_UP_STATION)

    async def _end(self, outcome: CallOutcome) -> None:
        if not self.active:
            return
        self._outcome = outcome
        self._send({"type": "call_ended"})
        room_id = self.room_id
        await self._stop_supervisor()
        if room_id is not None:
            hub = self._hub()
            try:
                async with asyncio.timeout(END_TIMEOUT):
                    await hub.end(room_id)
            except (TimeoutError, CallError) as exc:
                _log.warning("could not tell the hub the call ended: %s", exc)
            finally:
                await hub.aclose()

    async def aclose(self) -> None:
        """Shutdown: end a running call (hung up by the station) and wait for background work."""
        await self.hang_up()
        if self._background:
            await asyncio.wait(tuple(self._background), timeout=END_TIMEOUT)

    async def _stop_supervisor(self) -> None:
        for task in (self._watcher, self._supervisor):
            if task is not None and not task.done():
                task.cancel()
        for task in (self._watcher, self._supervisor):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _supervise(self) -> None:
        delay = self.config.redial_initial_seconds
        try:
            while True:
                if self._slot_over():
                    _log.info("call: the slot is over; no more re-dialling")
                    self._outcome = self._outcome or (
                        CallOutcome.CONNECTION_LOST if self._admitted else CallOutcome.FAILED
                    )
                    return
                flowed = False
                self._hub_lost = False
                try:
                    flowed = await self._run_attempt()
                except CallFinished as exc:
                    self._outcome = self._outcome or _outcome_for(exc.reason, self._admitted)
                    return
                except CallError as exc:
                    # The hub did not answer: the station's own network (or the hub) is away.
                    # The back-off below ends as soon as the hub answers the presence check
                    # or the room watch again.
                    self._hub_lost = isinstance(exc, HubUnreachable)
                    self._error = {
                        "code": exc.code,
                        "message": str(exc),
                        "user_message": exc.user_message,
                    }
                    _log.warning("call attempt %d failed: %s", self._attempts, exc)
                    self._publish("error", **self._error)
                # Media is lost (or the attempt failed): a new peer connection, after a pause.
                reason = self._attempt.end_reason if self._attempt is not None else "error"
                # A closed tab often ends the peer connection (DTLS close) before the
                # media falls silent: if the hub already has the page's goodbye, the GP left.
                if reason == "gp_left" or self._hub_says_gp_left:
                    self._gp_gone("left")
                self._send({"type": "reconnecting"})
                if flowed:
                    delay = self.config.redial_initial_seconds
                    self._error = None
                # Said before the (up to END_TIMEOUT) teardown, so the screens and the
                # presence check do not wait for it.
                self._set_phase(CallPhase.RECONNECTING, retry_in=delay, reason=reason)
                await self._close_attempt()
                await self._back_off(delay)
                delay = min(delay * 2, self.config.redial_max_seconds)
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("call supervisor failed")
            self._outcome = self._outcome or CallOutcome.FAILED
        finally:
            await self._close_attempt()
            await self._drop_warm()
            await self._finish()

    async def _back_off(self, delay: float) -> None:
        """Wait ``delay`` before the next attempt; while the hub is unreachable, only until it
        answers again (the network is back: dialling at once saves up to the whole back-off,
        5 s after a long outage, ``bench/redial.py``)."""
        if not self._hub_lost:
            await asyncio.sleep(delay)
            return
        self._hub_back.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hub_back.wait(), delay)

    def _hub_answered(self) -> None:
        """A hub request of the call succeeded: if the hub was lost, it is back."""
        if self._hub_lost:
            self._hub_lost = False
            self._hub_back.set()

    async def _finish(self) -> None:
        for task in (self._watcher, self._presence, self._gp_left_timer):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        outcome = self._outcome or CallOutcome.FAILED
        self.phase = CallPhase.ENDED
        self._publish(CallPhase.ENDED, outcome=outcome.value)
        # Who was waiting is dropped with the call: stationd keeps none of it.
        self._residents = ()
        self._seal = None
        try:
            self._observer.ended(outcome)
        except Exception:
            _log.exception("call observer failed on ended")

    def _slot_over(self) -> bool:
        return self._slot_ends_at is not None and self._clock.now() >= self._slot_ends_at

    async def _watch_room(self) -> None:
        """Long-poll the room, so a GP hang-up ends the call even while nothing else moves."""
        assert self.room_id is not None
        since = -1
        while True:
            hub = self._hub()
            try:
                while True:
                    view = await hub.room(
                        self.room_id, since=since, wait=self.config.hub_long_poll_seconds
                    )
                    since = view.version
                    self._hub_answered()
                    if view.final:
                        self._end_remotely(view.end_reason or view.state)
                        return
                    self._judge_presence(view)
            except CallFinished as exc:
                self._end_remotely(exc.reason)
                return
            except CallError:
                await asyncio.sleep(1.0)  # the hub is away; the attempt copes, so do we
            finally:
                await hub.aclose()

    async def _watch_presence(self) -> None:
        """While nothing is heard from the admitted GP, ask the hub about the GP's page.

        Runs for the whole call but asks only in ``reconnecting`` (one short request every
        ``presence_check_seconds``). A hub the station cannot reach says nothing: the
        station's own network trouble is never blamed on the GP.
        """
        assert self.room_id is not None
        hub: RendezvousClient | None = None
        try:
            while True:
                await asyncio.sleep(self.config.presence_check_seconds)
                if not self._admitted or self.phase != CallPhase.RECONNECTING:
                    continue
                if hub is None:
                    hub = self._hub()
                try:
                    view = await hub.room(self.room_id)
                except CallFinished:
                    return  # the room watch ends the call
                except CallError:
                    await hub.aclose()
                    hub = None
                    continue
                self._hub_answered()
                self._judge_presence(view)
        finally:
            if hub is not None:
                await hub.aclose()

    def _judge_presence(self, view: RoomView) -> None:
        """The hub's word on the GP's page, believed only while the station hears nothing.

        While an answer or media arrive the GP is demonstrably there, whatever an older view
        of the room says (a reload marks the room "left" for a moment).
        """
        if not self._admitted or not view.gp_admitted:
            return
        # Connected, the attempt's watchdog weighs this against what it still hears.
        self._hub_says_gp_left = view.gp_left
        if self._gp_left is not None or self.phase != CallPhase.RECONNECTING:
            return
        if view.gp_left:
            self._gp_gone("left")
        elif (
            view.gp_seen_seconds_ago is not None
            and view.gp_seen_seconds_ago >= self.config.gp_absent_seconds
        ):
            self._gp_gone("gone")

    def _gp_gone(self, reason: str) -> None:
        """The GP left ("left": the page said so; "gone": unheard by the station and the hub)."""
        if self._gp_left is not None or not self._admitted or not self.active:
            return
        loop = asyncio.get_running_loop()
        self._gp_left = reason
        ends_in = self.config.gp_left_end_seconds
        self._gp_left_deadline = loop.time() + ends_in
        self.phase = CallPhase.GP_LEFT
        _log.info(
            "call: the GP left (%s); the call ends in %.0f s unless they return", reason, ends_in
        )
        self._publish(CallPhase.GP_LEFT, reason=reason, ends_in=ends_in, attempt=self._attempts)
        self._gp_left_timer = loop.create_task(self._end_unless_gp_returns(), name="call-gp-left")

    async def _end_unless_gp_returns(self) -> None:
        await asyncio.sleep(self.config.gp_left_end_seconds)
        reason = self._gp_left
        if reason is None:
            return
        # This task now ends the call: _finish must not cancel it half-way.
        self._gp_left_timer = None
        _log.info("call: the GP did not come back; ending the call")
        await self._end(CallOutcome.HUNG_UP_GP if reason == "left" else CallOutcome.CONNECTION_LOST)

    def _end_remotely(self, reason: str) -> None:
        if self._outcome is None:
            self._outcome = _outcome_for(reason, self._admitted)
        if self._supervisor is not None and not self._supervisor.done():
            self._supervisor.cancel()


def _outcome_for(reason: str, admitted: bool) -> CallOutcome:
    if reason in ("gp_hung_up", "call_ended"):
        return CallOutcome.HUNG_UP_GP if admitted else CallOutcome.FAILED
    if reason == "station_ended":
        return CallOutcome.HUNG_UP_STATION
    return CallOutcome.CONNECTION_LOST if admitted else CallOutcome.FAILED

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
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx
from aiortc import RTCPeerConnection, RTCRtpCodecCapability, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from hardware.audio.base import Microphone, Speaker
from hardware.camera.base import Camera, forward_keyframe_requests
from hardware.video import FrameSink
from station.call.config import CallConfig
from station.call.errors import CallError, CallFinished, GatheringFailed
from station.call.hub import CreatedRoom, RendezvousClient, RoomView, hub_ssl_context
from station.call.ice import build_rtc_configuration, restrict_host_candidates_to_loopback
from station.call.liveness import (
    GpMedia,
    GpSignals,
    StallAction,
    VideoWatch,
    answer_sends_video,
    parse_gp_message,
    request_keyframe,
)
from station.call.media import (
    DEFAULT_VOLUME,
    VOLUME_STEPS,
    CameraFeed,
    MediaClock,
    MicrophoneGate,
    VolumeTrack,
    pump_remote_video,
)
from station.call.models import WaitingResident
from station.call.probe import probe_ice_servers
from station.call.tuning import install_prompt_ice_completion, use_frame_end_jitter_buffer
from station.core.clock import Clock, SystemClock
from station.core.session import CallOutcome

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

#: How often the attempt checks its media clock and connection state.
_WATCH_TICK = 0.1
#: A hang-up tells the hub within this long (the call is over locally either way).
_END_TIMEOUT = 3.0
#: Frozen video is judged only while audio or the page's heartbeat (1/s) came this recently:
#: otherwise the whole connection is silent, which is the media watchdog's case.
_OTHERS_ALIVE_WITHIN = 1.5
#: The hub has the GP page's goodbye but the data channel did not bring it: believed once
#: nothing (media, heartbeat) has come from the GP for this long (a live page sends 1/s).
_HUB_GOODBYE_SILENCE = 0.5


class CallPhase:
    """Where a call is (the ``status`` of the engine's ``call`` events)."""

    IDLE = "idle"
    DIALING = "dialing"
    WAITING_FOR_GP = "waiting_for_gp"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    #: The GP closed the page or is gone from the network: the call ends after
    #: ``gp_left_end_seconds`` unless the GP comes back (the event says ``reason`` and
    #: ``ends_in``).
    GP_LEFT = "gp_left"
    ENDED = "ended"


class CallMedia(Protocol):
    """The hardware a call uses (``hardware.bundle.Hardware`` is one)."""

    speaker: Speaker

    def new_camera(self) -> Camera:
        """A fresh camera track."""
        ...

    def new_microphone(self) -> Microphone:
        """A fresh microphone track."""
        ...


class CallObserver(Protocol):
    """What the engine tells its owner; called on the loop, must not block."""

    def admitted(self) -> None:
        """The GP admitted the station (first answer of the call)."""
        ...

    def ended(self, outcome: CallOutcome) -> None:
        """The call is over (called exactly once per started call)."""
        ...

    def status(self, status: str, data: dict[str, Any]) -> None:
        """A status change or a statistics sample (no personal data)."""
        ...


@dataclass(frozen=True, slots=True)
class Quality:
    """One statistics sample and the level the UIs show."""

    level: str
    rtt_ms: float | None
    loss: float
    fps: float
    bitrate_kbps: float

    def as_json(self) -> dict[str, Any]:
        """The event's data."""
        return {
            "level": self.level,
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 1),
            "loss": round(self.loss, 4),
            "fps": round(self.fps, 1),
            "bitrate_kbps": round(self.bitrate_kbps, 1),
        }


def grade_quality(
    rtt_ms: float | None,
    loss: float,
    fps: float,
    media_age: float | None,
    *,
    video_expected: bool = True,
) -> str:
    """good / fair / poor / lost, with the GP page's thresholds (so both sides agree).

    ``media_age`` is the age of the last sign of life (media or the page's heartbeat); the
    frame rate counts only while the GP sends video (a GP without a camera is not "poor").
    """
    if media_age is None or media_age > 1.5:
        return "lost"
    slow = video_expected and fps < 10
    if (rtt_ms is not None and rtt_ms > 400) or loss > 0.08 or slow:
        return "poor"
    slowish = video_expected and fps < 20
    if (rtt_ms is not None and rtt_ms > 150) or loss > 0.02 or slowish:
        return "fair"
    return "good"


@dataclass
class _Attempt:
    """One peer connection and what hangs off it."""

    number: int
    pc: Any
    hub: RendezvousClient
    clock: MediaClock = field(default_factory=MediaClock)
    channel: Any = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    tracks: list[MediaStreamTrack] = field(default_factory=list)
    camera: CameraFeed | None = None
    #: What the GP page said on this attempt's data channel.
    gp: GpSignals = field(default_factory=GpSignals)
    #: The GP's answer has an active video section the GP sends on.
    sends_video: bool = False
    #: Why the attempt ended (``reconnecting`` events say it; no personal data).
    end_reason: str = "error"

    def video_expected(self) -> bool:
        """The GP sends video: the answer says so and the page's last word was "camera on"."""
        return self.sends_video and (self.gp.media is None or self.gp.media.video)

    def last_sign_of_life(self) -> float | None:
        """When media or a word from the GP page last arrived (loop time)."""
        times = [t for t in (self.clock.last_at, self.gp.heard_at) if t is not None]
        return max(times) if times else None


class CallEngine:
    """Runs one call at a time; see the module docs. Everything runs on the daemon's loop."""

    def __init__(
        self,
        config: CallConfig,
        media: CallMedia,
        sink: FrameSink,
        observer: CallObserver,
        *,
        clock: Clock | None = None,
        hub_transport: Callable[[], httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        self.config = config
        self._media = media
        self._sink = sink
        self._observer = observer
        self._clock: Clock = clock or SystemClock()
        self._hub_transport = hub_transport
        # Made once: every attempt has its own HTTP client, and each would load the CAs.
        self._ssl = hub_ssl_context()
        install_prompt_ice_completion()
        self._supervisor: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._attempt: _Attempt | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._reset_call()

    def _reset_call(self) -> None:
        self.room_id: str | None = None
        self.phase = CallPhase.IDLE
        self._residents: tuple[WaitingResident, ...] = ()
        self._current = 0
        self._slot_ends_at: datetime | None = None
        self._admitted = False
        self._private = False
        self.muted = False
        self.camera_off = False
        self.volume = DEFAULT_VOLUME
        self._attempts = 0
        self._generation = 0
        self._outcome: CallOutcome | None = None
        self._quality: Quality | None = None
        self._error: dict[str, str] | None = None
        self._selected_pair: dict[str, str] | None = None
        self._remote_frames = 0
        #: "left" (the page said goodbye) or "gone" (unheard, and the hub has not heard from
        #: the page either) while the GP is away; None while the GP is there.
        self._gp_left: str | None = None
        self._gp_left_deadline: float | None = None
        self._gp_left_timer: asyncio.Task[None] | None = None
        self._presence: asyncio.Task[None] | None = None
        self._gp_media: GpMedia | None = None
        #: The hub's latest view says the GP page said goodbye (see _judge_presence).
        self._hub_says_gp_left = False
        self._video_stalled = False
        self._keyframe_requests = 0

    # ------------------------------------------------------------------ what the UIs read

    @property
    def active(self) -> bool:
        """True while a call runs (from start to its end)."""
        return self._supervisor is not None and not self._supervisor.done()

    @property
    def admitted(self) -> bool:
        """Whether the GP admitted the station in this call."""
        return self._admitted

    def status(self) -> dict[str, Any]:
        """A snapshot for ``GET /v1/call``: no personal data (positions, not names)."""
        attempt = self._attempt
        clock = attempt.clock if attempt is not None else None
        return {
            "active": self.active,
            "phase": self.phase,
            "room_id": self.room_id,
            "attempt": self._attempts,
            "generation": self._generation,
            "admitted": self._admitted,
            "private": self._private,
            "muted": self.muted,
            "camera_off": self.camera_off,
            "volume": self.volume,
            "volume_max": VOLUME_STEPS,
            "resident": self._position(),
            "quality": self._quality.as_json() if self._quality else None,
            "media": {
                "remote_video_frames": (clock.video_frames if clock else 0) + self._remote_frames,
                "remote_audio_frames": clock.audio_frames if clock else 0,
                "first_remote_video_at": clock.first_video_wall if clock else None,
                "sent_video_frames": attempt.camera.frames_sent
                if attempt and attempt.camera
                else 0,
            },
            "selected_pair": self._selected_pair,
            "error": self._error,
            "gp": {
                "left": self._gp_left,
                "ends_in": self._gp_left_ends_in(),
                "media": self._gp_media.as_json() if self._gp_media else None,
                "video_stalled": self._video_stalled,
            },
            "keyframe_requests": self._keyframe_requests,
        }

    def _gp_left_ends_in(self) -> float | None:
        if self._gp_left_deadline is None or self._gp_left is None:
            return None
        remaining = self._gp_left_deadline - asyncio.get_running_loop().time()
        return round(max(0.0, remaining), 1)

    def _position(self) -> dict[str, int] | None:
        if not self._residents:
            return None
        return {"position": self._current + 1, "of": len(self._residents)}

    # ------------------------------------------------------------------ rooms

    def _hub(self) -> RendezvousClient:
        transport = self._hub_transport() if self._hub_transport is not None else None
        return RendezvousClient(self.config, transport=transport, ssl_context=self._ssl)

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
        slot_ends_at: datetime | None = None,
    ) -> None:
        """Begin calling in ``room_id``; returns at once (the supervisor task dials)."""
        if self.active:
            raise CallError("a call is already running", "Der er allerede et opkald i gang.")
        self._reset_call()
        self.room_id = room_id
        self._residents = tuple(residents)
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
                async with asyncio.timeout(_END_TIMEOUT):
                    await hub.end(room_id)
            except (TimeoutError, CallError) as exc:
                _log.warning("could not tell the hub the call ended: %s", exc)
            finally:
                await hub.aclose()

    async def aclose(self) -> None:
        """Shutdown: end a running call (hung up by the station) and wait for background work."""
        await self.hang_up()
        if self._background:
            await asyncio.wait(tuple(self._background), timeout=_END_TIMEOUT)

    async def _stop_supervisor(self) -> None:
        for task in (self._watcher, self._supervisor):
            if task is not None and not task.done():
                task.cancel()
        for task in (self._watcher, self._supervisor):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _publish(self, status: str, **data: Any) -> None:
        try:
            self._observer.status(status, data)
        except Exception:
            _log.exception("call observer failed on %s", status)

    def _set_phase(self, phase: str, **data: Any) -> None:
        if self._gp_left is not None and phase in (
            CallPhase.DIALING,
            CallPhase.WAITING_FOR_GP,
            CallPhase.RECONNECTING,
        ):
            # Re-dialling for a GP who left: the screens keep saying that the GP left.
            return
        self.phase = phase
        self._publish(phase, attempt=self._attempts, **data)

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
                try:
                    flowed = await self._run_attempt()
                except CallFinished as exc:
                    self._outcome = self._outcome or _outcome_for(exc.reason, self._admitted)
                    return
                except CallError as exc:
                    self._error = {
                        "code": exc.code,
                        "message": str(exc),
                        "user_message": exc.user_message,
                    }
                    _log.warning("call attempt %d failed: %s", self._attempts, exc)
                    self._publish("error", **self._error)
                # Media is lost (or the attempt failed): a new peer connection, after a pause.
                reason = self._attempt.end_reason if self._attempt is not None else "error"
                if reason == "gp_left":
                    self._gp_gone("left")
                self._send({"type": "reconnecting"})
                await self._close_attempt()
                if flowed:
                    delay = self.config.redial_initial_seconds
                    self._error = None
                self._set_phase(CallPhase.RECONNECTING, retry_in=delay, reason=reason)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.redial_max_seconds)
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("call supervisor failed")
            self._outcome = self._outcome or CallOutcome.FAILED
        finally:
            await self._close_attempt()
            await self._finish()

    async def _finish(self) -> None:
        for task in (self._watcher, self._presence, self._gp_left_timer):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        outcome = self._outcome or CallOutcome.FAILED
        self.phase = CallPhase.ENDED
        self._publish(CallPhase.ENDED, outcome=outcome.value)
        # Who was waiting is dropped with the call: stationd keeps none of it.
        self._residents = ()
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

    def _gp_returned(self) -> None:
        """The GP's page answered again: the call goes on."""
        if self._gp_left is None:
            return
        self._gp_left = None
        self._gp_left_deadline = None
        if self._gp_left_timer is not None:
            self._gp_left_timer.cancel()
            self._gp_left_timer = None
        _log.info("call: the GP is back")
        self._publish("gp_back", attempt=self._attempts)

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

    # ------------------------------------------------------------------ one attempt

    async def _run_attempt(self) -> bool:
        """Dial once; returns when media is lost (True if it flowed at all)."""
        assert self.room_id is not None
        self._attempts += 1
        servers: list[Any] = []
        if self.config.ice_servers:
            servers, results = await probe_ice_servers(
                self.config.ice_servers, self.config.server_probe_seconds
            )
            for result in results:
                if not result.reachable:
                    self._publish("ice_server_unreachable", url=result.url, detail=result.detail)
        pc = RTCPeerConnection(build_rtc_configuration(servers, relay_only=self.config.relay_only))
        attempt = _Attempt(number=self._attempts, pc=pc, hub=self._hub())
        hub = attempt.hub
        self._attempt = attempt
        self._selected_pair = None
        self._set_phase(CallPhase.DIALING if not self._admitted else CallPhase.RECONNECTING)
        self._add_tracks(attempt)
        self._listen_to_gp(attempt)
        use_frame_end_jitter_buffer(pc)

        sdp = await self._gather(attempt)
        self._check_candidates(sdp, servers)
        residents = [r.for_hub() for r in self._residents] if self._attempts == 1 else None
        self._generation = await hub.post_offer(self.room_id, sdp, residents or None)
        if not self._admitted:
            self._set_phase(CallPhase.WAITING_FOR_GP, generation=self._generation)
        answer = None
        while answer is None:
            answer = await hub.answer(
                self.room_id, self._generation, wait=self.config.hub_long_poll_seconds
            )
        if not self._admitted:
            self._admitted = True
            try:
                self._observer.admitted()
            except Exception:
                _log.exception("call observer failed on admitted")
        # An answer is the GP's page, there and working: a GP who left is back.
        self._hub_says_gp_left = False
        self._gp_returned()
        attempt.sends_video = answer_sends_video(answer)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        self._set_phase(CallPhase.CONNECTING, generation=self._generation)
        attempt.tasks.append(asyncio.create_task(self._sample_stats(attempt), name="call-stats"))
        return await self._watch_media(attempt)

    def _add_tracks(self, attempt: _Attempt) -> None:
        pc = attempt.pc
        camera = self._media.new_camera()
        feed = CameraFeed(
            camera,
            self._sink,
            self_view_fps=self.config.self_view_fps,
            enabled=lambda: not self.camera_off,
        )
        attempt.camera = feed
        attempt.tracks.append(feed)
        microphone = MicrophoneGate(self._media.new_microphone(), muted=lambda: self.muted)
        attempt.tracks.append(microphone)
        video_sender = pc.addTrack(feed)
        pc.addTrack(microphone)
        codec = getattr(camera, "passthrough_codec", None)
        if codec:
            # Pre-encoded packets (the Pi 4's hardware H.264): exactly that codec (with its
            # retransmission stream), and the GP's keyframe requests must reach the encoder.
            preferred = passthrough_codec_preferences(codec)
            for transceiver in pc.getTransceivers():
                if transceiver.sender is video_sender:
                    transceiver.setCodecPreferences(preferred)
            forward_keyframe_requests(video_sender, camera)
        channel = pc.createDataChannel("control")
        attempt.channel = channel
        channel.on("open", lambda: self._on_channel_open(attempt))

        def on_track(track: MediaStreamTrack) -> None:
            if self._attempt is not attempt:
                return
            if track.kind == "video":
                attempt.tasks.append(
                    asyncio.create_task(
                        pump_remote_video(track, self._sink, attempt.clock), name="call-video"
                    )
                )
            elif track.kind == "audio":
                volume = VolumeTrack(track, attempt.clock, volume=lambda: self.volume)
                attempt.tracks.append(volume)
                attempt.tasks.append(
                    asyncio.create_task(self._media.speaker.start(volume), name="call-speaker")
                )

        pc.on("track", on_track)

    async def _gather(self, attempt: _Attempt) -> str:
        pc = attempt.pc
        offer = await pc.createOffer()
        loopback = (
            restrict_host_candidates_to_loopback()
            if self.config.loopback_only
            else contextlib.nullcontext()
        )
        try:
            with loopback:
                async with asyncio.timeout(self.config.gather_timeout_seconds):
                    await pc.setLocalDescription(offer)
        except TimeoutError:
            raise GatheringFailed(
                f"ICE gathering took longer than {self.config.gather_timeout_seconds:g} s"
            ) from None
        return str(pc.localDescription.sdp)

    def _check_candidates(self, sdp: str, servers: Sequence[Any]) -> None:
        candidates = [line for line in sdp.splitlines() if line.startswith("a=candidate:")]
        turn_configured = any(
            url.startswith(("turn:", "turns:")) for server in servers for url in server.urls
        )
        has_relay = any(" typ relay" in line for line in candidates)
        if turn_configured and not has_relay:
            error = GatheringFailed(
                "the TURN server gave no relay address (wrong credentials, or it refused)"
            )
            if self.config.relay_only or not candidates:
                raise error
            # Host/server-reflexive candidates may still do; say so, and go on.
            self._publish("turn_failed", message=str(error), user_message=error.user_message)
        if not candidates:
            raise GatheringFailed("no ICE candidates at all (no network address, no relay)")

    async def _watch_media(self, attempt: _Attempt) -> bool:
        loop = asyncio.get_running_loop()
        answered_at = loop.time()
        flowed = False
        video = VideoWatch(self.config.video_stall_seconds, self.config.video_keyframe_wait_seconds)
        video_since = answered_at  # when video was last expected to start
        was_expected = False
        while True:
            await asyncio.sleep(_WATCH_TICK)
            now = loop.time()
            state = attempt.pc.connectionState
            if state in ("failed", "closed"):
                _log.info("call attempt %d: connection %s", attempt.number, state)
                attempt.end_reason = f"connection_{state}"
                return flowed
            # Media or the page's heartbeat: a GP without camera and microphone is alive too.
            last = attempt.last_sign_of_life()
            hub_goodbye = (
                self._hub_says_gp_left and last is not None and now - last > _HUB_GOODBYE_SILENCE
            )
            if attempt.gp.leaving or hub_goodbye:
                _log.info("call attempt %d: the GP page was closed", attempt.number)
                attempt.end_reason = "gp_left"
                return flowed
            if last is None or last < answered_at:
                if now - answered_at > self.config.connect_timeout_seconds:
                    _log.info("call attempt %d: no media after the answer", attempt.number)
                    attempt.end_reason = "no_media"
                    return flowed
                continue
            if not flowed:
                flowed = True
                video_since = now
                self._error = None
                self._selected_pair = _selected_pair(attempt.pc)
                self._set_phase(CallPhase.CONNECTED, selected_pair=self._selected_pair)
            if now - last > self.config.media_timeout_seconds:
                _log.info("call attempt %d: no media for %.1f s", attempt.number, now - last)
                attempt.end_reason = "media_lost"
                return flowed
            expected = attempt.video_expected()
            if expected and not was_expected:
                video_since = now  # the camera (re)started: give it the full stall window
            was_expected = expected
            reference = max(video_since, attempt.clock.last_video_at or video_since)
            others = [t for t in (attempt.clock.last_audio_at, attempt.gp.heard_at) if t]
            others_alive = bool(others) and now - max(others) <= _OTHERS_ALIVE_WITHIN
            action = video.judge(
                now, expected=expected, reference=reference, others_alive=others_alive
            )
            if action is StallAction.KEYFRAME:
                await self._request_keyframe(attempt, video.requests, now - reference)
            elif action is StallAction.RECOVERED:
                _log.info("call attempt %d: video moves again", attempt.number)
                self._video_stalled = False
                self._publish("video_recovered", attempt=self._attempts)
            elif action is StallAction.REDIAL:
                _log.info(
                    "call attempt %d: video frozen for %.1f s despite %d keyframe requests",
                    attempt.number,
                    now - reference,
                    video.requests,
                )
                self._video_stalled = False
                attempt.end_reason = "video_frozen"
                return flowed

    async def _request_keyframe(self, attempt: _Attempt, request: int, frozen_for: float) -> None:
        self._keyframe_requests += 1
        if request == 1:
            _log.info(
                "call attempt %d: no video for %.1f s while the GP is heard; asking for a keyframe",
                attempt.number,
                frozen_for,
            )
            self._video_stalled = True
            self._publish("video_stalled", attempt=self._attempts, frozen_for=round(frozen_for, 1))
        try:
            await request_keyframe(attempt.pc)
        except Exception as exc:  # a closing transport: the watchdog decides what follows
            _log.debug("keyframe request failed: %s", type(exc).__name__)

    def _listen_to_gp(self, attempt: _Attempt) -> None:
        """The GP page's heartbeats and goodbye on this attempt's data channel."""
        channel = attempt.channel
        if channel is not None:
            channel.on("message", lambda message: self._on_gp_message(attempt, message))

    def _on_gp_message(self, attempt: _Attempt, text: Any) -> None:
        if self._attempt is not attempt:
            return
        message = parse_gp_message(text)
        if message is None:
            return
        attempt.gp.heard_at = asyncio.get_running_loop().time()
        kind = message.get("type")
        if kind == "gp_alive":
            media = GpMedia(video=message.get("video") is True, audio=message.get("audio") is True)
            attempt.gp.media = media
            if media != self._gp_media:
                self._gp_media = media
                self._publish("gp_media", **media.as_json())
        elif kind == "gp_leaving":
            attempt.gp.leaving = True

    async def _sample_stats(self, attempt: _Attempt) -> None:
        loop = asyncio.get_running_loop()
        previous: tuple[float, int, int, int, int] | None = None
        while True:
            await asyncio.sleep(self.config.stats_interval_seconds)
            try:
                report = await attempt.pc.getStats()
            except Exception as exc:
                # A closing connection has no stats; the watchdog handles it.
                _log.debug("call statistics unavailable: %s", type(exc).__name__)
                continue
            received = lost = transport_bytes = 0
            rtts: list[float] = []
            for stats in report.values():
                kind = getattr(stats, "type", "")
                if kind == "inbound-rtp":
                    received += int(stats.packetsReceived)
                    lost += max(0, int(stats.packetsLost))
                elif kind == "remote-inbound-rtp" and stats.roundTripTime is not None:
                    rtts.append(float(stats.roundTripTime))
                elif kind == "transport":
                    transport_bytes += int(stats.bytesReceived)
            now = loop.time()
            frames = attempt.clock.video_frames
            if previous is not None:
                then, frames0, received0, lost0, bytes0 = previous
                span = max(now - then, 1e-3)
                got, missed = received - received0, lost - lost0
                loss = missed / (got + missed) if got + missed > 0 else 0.0
                fps = (frames - frames0) / span
                bitrate = (transport_bytes - bytes0) * 8 / span / 1000
                rtt_ms = max(rtts) * 1000 if rtts else None
                last = attempt.last_sign_of_life()
                age = None if last is None else now - last
                level = grade_quality(
                    rtt_ms, max(0.0, loss), fps, age, video_expected=attempt.video_expected()
                )
                self._quality = Quality(level, rtt_ms, max(0.0, loss), fps, bitrate)
                self._publish("quality", **self._quality.as_json())
            previous = (now, frames, received, lost, transport_bytes)

    async def _close_attempt(self) -> None:
        attempt, self._attempt = self._attempt, None
        if attempt is None:
            return
        self._remote_frames += attempt.clock.video_frames
        for task in attempt.tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await self._media.speaker.stop()
        for task in attempt.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        try:
            async with asyncio.timeout(_END_TIMEOUT):
                await attempt.pc.close()
        except Exception:
            _log.warning("call attempt %d: peer connection did not close cleanly", attempt.number)
        for track in attempt.tracks:
            with contextlib.suppress(Exception):
                track.stop()
        await attempt.hub.aclose()

    # ------------------------------------------------------------------ notices and controls

    def _send(self, message: dict[str, Any]) -> bool:
        attempt = self._attempt
        channel = attempt.channel if attempt is not None else None
        if channel is None or channel.readyState != "open":
            return False
        try:
            channel.send(json.dumps(message, separators=(",", ":")))
        except Exception:
            return False
        return True

    def _on_channel_open(self, attempt: _Attempt) -> None:
        # A new peer connection (a re-dial) has a new channel: bring the page up to date.
        if self._attempt is not attempt:
            return
        if self._residents:
            self._send(self._resident_message())
        self._send({"type": "private" if self._private else "staff_present"})

    def _resident_message(self) -> dict[str, Any]:
        resident = self._residents[self._current]
        message: dict[str, Any] = {
            "type": "current_resident",
            "display_name": resident.display_name,
            "position": self._current + 1,
            "of": len(self._residents),
        }
        if resident.birth_date is not None:
            message["birth_date"] = resident.birth_date.isoformat()
        if resident.room is not None:
            message["room"] = resident.room
        return message

    def _post_notice(self, notice: dict[str, Any]) -> None:
        """The hub's copy (the page's fallback path); best effort, in the background."""
        room_id = self.room_id
        if room_id is None:
            return

        async def post() -> None:
            hub = self._hub()
            try:
                await hub.notice(room_id, notice)
            except CallError as exc:
                _log.warning("notice %s not copied to the hub: %s", notice.get("type"), exc)
            finally:
                await hub.aclose()

        task = asyncio.get_running_loop().create_task(post())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def set_private(self, private: bool) -> None:
        """Staff left (the call is private) or came back: tell the GP page."""
        if not self.active or private == self._private:
            self._private = private
            return
        self._private = private
        notice = {"type": "private" if private else "staff_present"}
        self._send(notice)
        self._post_notice(notice)
        self._publish("private" if private else "staff_present")

    def move_resident(self, step: int) -> dict[str, int]:
        """Next (+1) or previous (-1) resident of a round; the GP page follows."""
        if not self.active:
            raise CallError("no call is running", "Der er ikke noget opkald i gang.")
        if not self._residents:
            raise CallError("this call has no residents", "Opkaldet har ingen beboere.")
        target = self._current + step
        if not 0 <= target < len(self._residents):
            raise CallError(
                "no such resident in the round", "Der er ikke flere beboere i den retning."
            )
        self._current = target
        message = self._resident_message()
        self._send(message)
        self._post_notice({k: message[k] for k in ("type", "display_name", "position", "of")})
        position = self._position()
        assert position is not None
        self._publish("resident", **position)
        return position

    def set_muted(self, muted: bool) -> None:
        """Microphone off (silence is sent) or on."""
        self.muted = muted
        self._publish("controls", **self._controls())

    def set_camera_off(self, off: bool) -> None:
        """Camera off (black pictures are sent) or on."""
        self.camera_off = off
        self._publish("controls", **self._controls())

    def change_volume(self, step: int) -> int:
        """Louder (+1) or softer (-1); returns the new volume step (0..VOLUME_STEPS)."""
        self.volume = max(0, min(VOLUME_STEPS, self.volume + step))
        self._publish("controls", **self._controls())
        return self.volume

    def _controls(self) -> dict[str, Any]:
        return {"muted": self.muted, "camera_off": self.camera_off, "volume": self.volume}


def passthrough_codec_preferences(mime_type: str) -> list[RTCRtpCodecCapability]:
    """The video codec preferences for a camera that sends ``mime_type`` packets as they are.

    Every variant aiortc has of that codec, then ``video/rtx``: aiortc pairs an RTX format
    with each preferred codec (``apt``) only when RTX is among the preferences. With RTX
    negotiated, Chromium sends its bandwidth-probe padding on the RTX stream instead of the
    video stream, and lost packets can be resent in both directions (NACK, RFC 4588).
    """
    codecs = RTCRtpSender.getCapabilities("video").codecs
    wanted = [c for c in codecs if c.mimeType.lower() == mime_type.lower()]
    if not wanted:
        raise ValueError(f"aiortc cannot send {mime_type}")
    return wanted + [c for c in codecs if c.mimeType.lower() == "video/rtx"]


def _outcome_for(reason: str, admitted: bool) -> CallOutcome:
    if reason in ("gp_hung_up", "call_ended"):
        return CallOutcome.HUNG_UP_GP if admitted else CallOutcome.FAILED
    if reason == "station_ended":
        return CallOutcome.HUNG_UP_STATION
    return CallOutcome.CONNECTION_LOST if admitted else CallOutcome.FAILED


def _selected_pair(pc: Any) -> dict[str, str] | None:
    """The candidate types of the nominated pair (aioice's internals, read only; aiortc pinned)."""
    try:
        for transceiver in pc.getTransceivers():
            ice = transceiver.sender.transport.transport
            nominated = ice._connection._nominated
            for pair in nominated.values():
                return {
                    "local": str(pair.local_candidate.type),
                    "remote": str(pair.remote_candidate.type),
                }
    except AttributeError:
        return None
    return None

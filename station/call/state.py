"""The call engine's state, what it needs from outside, and what the UIs read of it.

:class:`CallState` holds everything one call knows (its room, its residents' order, the GP's
presence, the current :class:`Attempt`) and the few helpers every part of the engine uses:
publishing to the :class:`CallObserver`, the phase, a client for the hub. The engine is this
state with three parts on top, each a module: the notices and controls
(:mod:`station.call.controls`), one attempt (:mod:`station.call.attempt`) and the call's life
from start to end (:mod:`station.call.engine`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx
from aiortc.mediastreams import MediaStreamTrack

from hardware.audio.base import Microphone, Speaker
from hardware.camera.base import Camera
from hardware.video import FrameSink
from station.call.audiorate import AudioRate
from station.call.config import CallConfig
from station.call.hub import RendezvousClient, Sealer, StationCredentials, hub_ssl_context
from station.call.ladder import VideoLadder
from station.call.linkjudge import AudioOnlyJudge
from station.call.liveness import (
    GpMedia,
    GpSignals,
)
from station.call.media import (
    DEFAULT_VOLUME,
    VOLUME_STEPS,
    CameraFeed,
    MediaClock,
)
from station.call.opus import install_fec_opus_encoder
from station.call.quality import Quality
from station.call.roundtrip import RoundTrips
from station.call.tuning import install_prompt_ice_completion
from station.call.warm import WarmPeer
from station.core.clock import Clock, SystemClock
from station.core.session import CallOutcome
from station.core.waiting_room import WaitingResident

__all__ = ["END_TIMEOUT", "Attempt", "CallMedia", "CallObserver", "CallPhase", "CallState"]

_log = logging.getLogger(__name__)

#: A hang-up tells the hub within this long (the call is over locally either way).
END_TIMEOUT = 3.0


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


@dataclass
class Attempt:
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
    #: The station's video sender (paused while the call is audio only).
    video_sender: Any = None
    #: Audio only: neither side sends video, so none is expected.
    audio_only: bool = False
    #: The round trip per receiver report, both senders (:mod:`station.call.roundtrip`).
    round_trips: RoundTrips = field(default_factory=RoundTrips)
    #: Chromium's latest REMB for the station's video (bit/s), and when video last started.
    remb_bps: float | None = None
    remb_at: float | None = None
    #: The station's video rate and size following REMB (issue 18 item 1), the arrival of the
    #: REMB it last took, and the bitrate last given to a camera that encodes itself.
    ladder: VideoLadder | None = None
    ladder_remb_at: float | None = None
    ladder_video_at: float | None = None  # the video start the ladder last warmed up for
    camera_bitrate: int | None = None
    #: What the station's video sent in the last statistics interval (bit/s, RTP payload).
    sent_bps: float = 0.0
    video_started_at: float | None = None
    #: The station's Opus settings following the GP's receiver reports (issue 18 item 2),
    #: and the arrival time of the last report used.
    audio_rate: AudioRate = field(default_factory=AudioRate)
    audio_report_at: Any = None
    #: Why the attempt ended (``reconnecting`` events say it; no personal data).
    end_reason: str = "error"
    #: Its peer connection was prepared while the previous attempt ran (already gathered).
    warm: bool = False
    #: When the whole connection was last silent for a moment (loop time; see _judge_link).
    paused_at: float | None = None

    def video_expected(self) -> bool:
        """The GP sends video: the answer says so and the page's last word was "camera on"."""
        if self.audio_only:
            return False
        return self.sends_video and (self.gp.media is None or self.gp.media.video)

    def last_sign_of_life(self) -> float | None:
        """When media or a word from the GP page last arrived (loop time)."""
        times = [t for t in (self.clock.last_at, self.gp.heard_at) if t is not None]
        return max(times) if times else None


class CallState:
    """One call's state and the helpers every part of the engine uses (see the module docs)."""

    def __init__(
        self,
        config: CallConfig,
        media: CallMedia,
        sink: FrameSink,
        observer: CallObserver,
        *,
        clock: Clock | None = None,
        hub_transport: Callable[[], httpx.AsyncBaseTransport] | None = None,
        credentials: StationCredentials | None = None,
    ) -> None:
        self.config = config
        #: The station's rendezvous credentials (its identity); None: the legacy shared token.
        self.credentials = credentials
        self._media = media
        self._sink = sink
        self._observer = observer
        self._clock: Clock = clock or SystemClock()
        self._hub_transport = hub_transport
        # Made once: every attempt has its own HTTP client, and each would load the CAs.
        self._ssl = hub_ssl_context()
        install_prompt_ice_completion()
        install_fec_opus_encoder()
        self._supervisor: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._attempt: Attempt | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._reset_call()

    def _reset_call(self) -> None:
        self.room_id: str | None = None
        self.phase = CallPhase.IDLE
        self._residents: tuple[WaitingResident, ...] = ()
        self._seal: Sealer | None = None
        self._current = 0
        self._slot_ends_at: datetime | None = None
        self._admitted = False
        self._private = False
        self.muted = False
        self.camera_off = False
        #: Audio only by choice (staff or the GP; either can end it) and by the link.
        self.audio_only_chosen = False
        self.audio_only_auto = False
        #: While automatic audio only tries video again (the label stays).
        self.audio_only_probing = False
        self._link_judge = AudioOnlyJudge()
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
        #: The next attempt's peer connection, prepared while this one is connected
        #: (:mod:`station.call.warm`), the task that keeps it, and the camera's codec.
        self._warm: WarmPeer | None = None
        self._warming: asyncio.Task[None] | None = None
        self._camera_codec: str | None = None
        #: The last attempt failed because the hub did not answer; set when it answers again.
        self._hub_lost = False
        self._hub_back = asyncio.Event()

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
            "audio_only": self.audio_only,
            "audio_only_reason": self.audio_only_reason,
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
                "sent_video": _sent_video(attempt),
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
            "next_attempt_prepared": self._warm is not None,
            "attempt_prepared": attempt.warm if attempt is not None else False,
        }

    @property
    def audio_only(self) -> bool:
        """Video paused both ways, audio goes on (chosen, or the link cannot carry video)."""
        return self.audio_only_chosen or self.audio_only_auto

    @property
    def video_paused(self) -> bool:
        """Whether video is paused now (audio only, except while a probe tries video)."""
        return self.audio_only_chosen or (self.audio_only_auto and not self.audio_only_probing)

    @property
    def audio_only_reason(self) -> str | None:
        """``choice`` or ``poor_connection`` (the label the UIs show), None with video."""
        if self.audio_only_chosen:
            return "choice"
        if self.audio_only_auto:
            return "poor_connection"
        return None

    def _gp_left_ends_in(self) -> float | None:
        if self._gp_left_deadline is None or self._gp_left is None:
            return None
        remaining = self._gp_left_deadline - asyncio.get_running_loop().time()
        return round(max(0.0, remaining), 1)

    def _position(self) -> dict[str, int] | None:
        if not self._residents:
            return None
        return {"position": self._current + 1, "of": len(self._residents)}

    def _hub(self) -> RendezvousClient:
        transport = self._hub_transport() if self._hub_transport is not None else None
        return RendezvousClient(
            self.config, transport=transport, ssl_context=self._ssl, credentials=self.credentials
        )

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


def _sent_video(attempt: Attempt | None) -> dict[str, Any] | None:
    """The video ladder's rung and the size of the last picture sent (None: packets)."""
    if attempt is None or attempt.ladder is None:
        return None
    rung = attempt.ladder.rung
    size = attempt.camera.sent_size if attempt.camera is not None else None
    return {
        "bitrate": rung.bitrate,
        "scale": rung.scale if size is not None else 1.0,  # packets keep the camera's size
        "size": list(size) if size is not None else None,
        "sent_kbps": round(attempt.sent_bps / 1000, 1),
    }

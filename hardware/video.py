"""The video surface port: where the GP's video and the station's self-view are shown.

The call engine hands every decoded frame to a :class:`FrameSink` and moves on: ``show``
never blocks and keeps only the newest frame per role, so latency never builds up behind
a slow screen. ``clear`` takes a role off the screen (a call's last picture must not stay
on a locked station), ``set_overlay`` shows the private-call badge and the line quality.

Two sinks, chosen by name at stationd's composition root
(:func:`hardware.surface.select.build_frame_sink`, ``KONTAKTSTATION_FRAME_SINK``):

- ``shm`` (the default, on every station and in the demo):
  :class:`~hardware.surface.transport.SharedMemoryFrameSink` sends frames to the separate
  video-surface process through shared memory in tmpfs (a crash there never drops the call);
- ``recording``: :class:`RecordingFrameSink`, the shipped fake, which only remembers what it
  was shown. It is used only when named: a station never falls back to it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol, get_args

import av

__all__ = [
    "AUDIO_ONLY_REASONS",
    "FRAME_SINKS",
    "FRAME_SINK_ENV",
    "QUALITIES",
    "AudioOnly",
    "FrameRole",
    "FrameSink",
    "OverlayState",
    "Quality",
    "RecordingFrameSink",
    "SinkStats",
]

#: ``remote``: the GP's video, drawn large. ``self``: the station's own camera, drawn small.
FrameRole = Literal["remote", "self"]

#: The line quality the surface shows (the call engine's levels, plus "reconnecting").
Quality = Literal["unknown", "good", "fair", "poor", "reconnecting"]
QUALITIES: Final[tuple[str, ...]] = get_args(Quality)
#: Why the call's video is paused (audio goes on): staff or the GP chose it, or the link
#: cannot carry video (issue 18).
AudioOnly = Literal["choice", "poor_connection"]
AUDIO_ONLY_REASONS: Final[tuple[str, ...]] = get_args(AudioOnly)

FRAME_SINK_ENV: Final = "KONTAKTSTATION_FRAME_SINK"
FRAME_SINKS: Final = ("shm", "recording")


@dataclass(frozen=True)
class OverlayState:
    """What the surface draws over the video: the private-call badge, the line quality and
    the audio-only label."""

    private_call: bool = False
    quality: Quality = "unknown"
    #: Set while the video is paused (audio only), with why; None while video runs.
    audio_only: AudioOnly | None = None

    def __post_init__(self) -> None:
        if self.quality not in QUALITIES:
            raise ValueError(f"unknown quality {self.quality!r}")
        if self.audio_only is not None and self.audio_only not in AUDIO_ONLY_REASONS:
            raise ValueError(f"unknown audio-only reason {self.audio_only!r}")


class FrameSink(Protocol):
    """Receives decoded video frames; every method returns at once and never raises."""

    def show(self, frame: av.VideoFrame, role: FrameRole) -> None:
        """Make ``frame`` the newest picture of ``role``."""
        ...

    def clear(self, role: FrameRole) -> None:
        """Take ``role`` off the screen (the call ended, the camera is off)."""
        ...

    def set_overlay(self, state: OverlayState) -> None:
        """Show or hide the private-call badge and the line quality."""
        ...


@dataclass
class SinkStats:
    """What a :class:`RecordingFrameSink` saw of one role."""

    frames: int = 0
    first_at: float | None = None
    last_at: float | None = None
    last_size: tuple[int, int] | None = None
    arrivals: list[float] = field(default_factory=list, repr=False)
    cleared: int = 0


class RecordingFrameSink:
    """A frame sink that remembers what it was shown: counts, times, the newest frame."""

    #: Its name for ``KONTAKTSTATION_FRAME_SINK`` and the health report.
    name: Final = "recording"

    def __init__(self, keep_arrivals: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._stats: dict[str, SinkStats] = {"remote": SinkStats(), "self": SinkStats()}
        self._newest: dict[str, av.VideoFrame] = {}
        self._keep = keep_arrivals
        self._event = threading.Event()
        #: The overlay states set, in order.
        self.overlays: list[OverlayState] = []

    def show(self, frame: av.VideoFrame, role: FrameRole) -> None:
        """Count the frame and keep it as the newest of ``role``."""
        now = time.monotonic()
        with self._lock:
            stats = self._stats[role]
            stats.frames += 1
            stats.first_at = stats.first_at if stats.first_at is not None else now
            stats.last_at = now
            stats.last_size = (frame.width, frame.height)
            if len(stats.arrivals) < self._keep:
                stats.arrivals.append(now)
            self._newest[role] = frame
        self._event.set()

    def clear(self, role: FrameRole) -> None:
        """Forget the newest frame of ``role`` (counted)."""
        with self._lock:
            self._stats[role].cleared += 1
            self._newest.pop(role, None)

    def set_overlay(self, state: OverlayState) -> None:
        """Remember the overlay state."""
        with self._lock:
            self.overlays.append(state)

    def stats(self, role: FrameRole) -> SinkStats:
        """A copy of the counters for ``role``."""
        with self._lock:
            s = self._stats[role]
            return SinkStats(
                s.frames, s.first_at, s.last_at, s.last_size, list(s.arrivals), s.cleared
            )

    def newest(self, role: FrameRole) -> av.VideoFrame | None:
        """The last frame shown for ``role`` (older ones are not kept)."""
        with self._lock:
            return self._newest.get(role)

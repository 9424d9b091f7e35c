"""The video surface port: where the GP's video and the station's self-view are shown.

The call engine hands every decoded frame to a :class:`FrameSink` and moves on: ``show``
never blocks and keeps only the newest frame per role, so latency never builds up behind
a slow screen. The real sink sends frames to the separate video-surface process (a crash
there never drops the call); :class:`RecordingFrameSink` is the shipped fake for tests and
for running without a screen.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Literal, Protocol

import av

__all__ = ["FrameRole", "FrameSink", "RecordingFrameSink", "SinkStats"]

#: ``remote``: the GP's video, drawn large. ``self``: the station's own camera, drawn small.
FrameRole = Literal["remote", "self"]


class FrameSink(Protocol):
    """Receives decoded video frames; must return at once and keep only the newest."""

    def show(self, frame: av.VideoFrame, role: FrameRole) -> None: ...


@dataclass
class SinkStats:
    """What a :class:`RecordingFrameSink` saw of one role."""

    frames: int = 0
    first_at: float | None = None
    last_at: float | None = None
    last_size: tuple[int, int] | None = None
    arrivals: list[float] = field(default_factory=list, repr=False)


class RecordingFrameSink:
    """A frame sink that remembers what it was shown: counts, times, the newest frame."""

    def __init__(self, keep_arrivals: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._stats: dict[str, SinkStats] = {"remote": SinkStats(), "self": SinkStats()}
        self._newest: dict[str, av.VideoFrame] = {}
        self._keep = keep_arrivals
        self._event = threading.Event()

    def show(self, frame: av.VideoFrame, role: FrameRole) -> None:
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

    def stats(self, role: FrameRole) -> SinkStats:
        """A copy of the counters for ``role``."""
        with self._lock:
            s = self._stats[role]
            return SinkStats(s.frames, s.first_at, s.last_at, s.last_size, list(s.arrivals))

    def newest(self, role: FrameRole) -> av.VideoFrame | None:
        """The last frame shown for ``role`` (older ones are not kept)."""
        with self._lock:
            return self._newest.get(role)

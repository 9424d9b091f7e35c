"""Sound levels in dBFS, for the pre-call check's level meter and the health checks."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamTrack

if TYPE_CHECKING:
    from .base import Microphone

__all__ = [
    "SILENCE_DBFS",
    "LevelMeter",
    "LevelReading",
    "frame_samples",
    "measure_level",
    "rms_dbfs",
]

#: The floor reported for digital silence (log of zero has no value).
SILENCE_DBFS = -120.0


def frame_samples(frame: av.AudioFrame) -> npt.NDArray[np.float64]:
    """All samples of ``frame`` as floats in -1..1 (channels interleaved or stacked)."""
    data = frame.to_ndarray()
    if data.dtype == np.int16:
        return data.astype(np.float64).ravel() / 32768.0
    if data.dtype == np.int32:
        return data.astype(np.float64).ravel() / 2147483648.0
    if data.dtype == np.uint8:
        return (data.astype(np.float64).ravel() - 128.0) / 128.0
    return data.astype(np.float64).ravel()


def _to_dbfs(value: float) -> float:
    return max(SILENCE_DBFS, 20 * math.log10(value)) if value > 0 else SILENCE_DBFS


def rms_dbfs(frame: av.AudioFrame) -> float:
    """RMS level of one frame in dBFS (a full-scale sine is -3 dBFS)."""
    samples = frame_samples(frame)
    if samples.size == 0:
        return SILENCE_DBFS
    return _to_dbfs(float(np.sqrt(np.mean(samples * samples))))


@dataclass(frozen=True, slots=True)
class LevelReading:
    """A level measured over some frames."""

    rms_dbfs: float
    peak_dbfs: float
    frames: int
    #: Samples per channel.
    samples: int


# tui/staff/widgets/meter.py has a LevelMeter too: a widget that draws a level. This one
# measures it; each is the word for the thing in its own layer, and neither imports the other.
class LevelMeter:
    """Accumulates RMS and peak over the frames fed to it (one consumer; not thread-safe)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start a new measurement."""
        self._sum_squares = 0.0
        self._count = 0
        self._peak = 0.0
        self.frames = 0
        self.samples = 0
        self.last_rms_dbfs = SILENCE_DBFS

    def feed(self, frame: av.AudioFrame) -> float:
        """Add one frame; return its own RMS level in dBFS."""
        samples = frame_samples(frame)
        self.frames += 1
        self.samples += frame.samples
        if samples.size:
            squares = float(np.dot(samples, samples))
            self._sum_squares += squares
            self._count += samples.size
            self._peak = max(self._peak, float(np.max(np.abs(samples))))
            self.last_rms_dbfs = _to_dbfs(math.sqrt(squares / samples.size))
        else:
            self.last_rms_dbfs = SILENCE_DBFS
        return self.last_rms_dbfs

    def reading(self) -> LevelReading:
        """The level over everything fed since the last reset."""
        rms = math.sqrt(self._sum_squares / self._count) if self._count else 0.0
        return LevelReading(
            rms_dbfs=_to_dbfs(rms),
            peak_dbfs=_to_dbfs(self._peak),
            frames=self.frames,
            samples=self.samples,
        )


async def measure_level(
    track: MediaStreamTrack | Microphone, duration: float = 1.0, give_up_after: float | None = None
) -> LevelReading:
    """Read ``track`` (a microphone) for ``duration`` seconds of audio and return its level.

    Counts audio time by samples, not wall time, so a device that delivers in bursts still
    measures the right stretch. Raises ``TimeoutError`` when the audio does not arrive within
    ``give_up_after`` seconds (default: twice the duration plus two seconds).
    """
    meter = LevelMeter()
    limit = give_up_after if give_up_after is not None else 2 * duration + 2.0

    async def read() -> None:
        needed: int | None = None
        while needed is None or meter.samples < needed:
            frame = await track.recv()
            assert isinstance(frame, av.AudioFrame)
            meter.feed(frame)
            # Counted in whole samples: adding up 0.02 s in floats falls just short.
            needed = needed or round(duration * (frame.sample_rate or 48000))

    await asyncio.wait_for(read(), limit)
    return meter.reading()

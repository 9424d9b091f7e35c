"""Shipped audio fakes: a microphone that plays a tone, a loudspeaker that only listens.

Both are ordinary aiortc tracks/consumers, so the demo on a laptop and the tests run the same
call code as the station. :func:`tone_track` also serves the real loudspeaker's test tone.
"""

from __future__ import annotations

import asyncio
import fractions
import math

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ._player import TrackPlayer
from .base import AUDIO_PTIME, AUDIO_SAMPLE_RATE

__all__ = ["RecordingSpeaker", "ToneMicrophone", "tone_track"]

_TIME_BASE = fractions.Fraction(1, AUDIO_SAMPLE_RATE)


class ToneMicrophone(MediaStreamTrack):
    """A microphone that "hears" a sine tone (or silence): 48 kHz mono s16, 20 ms, paced.

    ``frequency=None`` or :meth:`set_tone` with ``None`` gives digital silence, so tests can
    exercise the pre-call check's "no sound" branch.
    """

    kind = "audio"

    def __init__(
        self,
        frequency: float | None = 440.0,
        level_dbfs: float = -20.0,
        *,
        sample_rate: int = AUDIO_SAMPLE_RATE,
        paced: bool = True,
    ) -> None:
        super().__init__()
        self._sample_rate = sample_rate
        self._samples = round(AUDIO_PTIME * sample_rate)
        self._paced = paced
        self._start: float | None = None
        self._timestamp = 0
        self._phase = 0.0
        self.set_tone(frequency, level_dbfs)

    @property
    def backend(self) -> str:
        """Always ``"fake"``."""
        return "fake"

    def set_tone(self, frequency: float | None, level_dbfs: float = -20.0) -> None:
        """Change the tone; ``frequency=None`` means silence. ``level_dbfs`` is the RMS level."""
        if frequency is not None and not 0 < frequency < self._sample_rate / 2:
            raise ValueError("frequency must be between 0 and half the sample rate")
        if level_dbfs > -3.0:
            raise ValueError("a sine's RMS level cannot exceed -3 dBFS")
        self._frequency = frequency
        # Peak amplitude of a sine whose RMS is level_dbfs.
        self._amplitude = math.sqrt(2) * 10 ** (level_dbfs / 20) * 32767

    async def recv(self) -> av.AudioFrame:
        """The next 20 ms, when it is due."""
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            self._timestamp += self._samples
            due = self._start + self._timestamp / self._sample_rate
            if self._paced and due > loop.time():
                await asyncio.sleep(due - loop.time())
        if self._frequency is None:
            samples = np.zeros(self._samples, dtype=np.int16)
        else:
            step = 2 * math.pi * self._frequency / self._sample_rate
            phases = self._phase + step * np.arange(self._samples)
            samples = np.round(self._amplitude * np.sin(phases)).astype(np.int16)
            self._phase = float((self._phase + step * self._samples) % (2 * math.pi))
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self._sample_rate
        frame.pts = self._timestamp
        frame.time_base = _TIME_BASE
        return frame


class _LimitedTrack(MediaStreamTrack):
    """Ends ``source`` after ``seconds`` of audio (by sample count)."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack, seconds: float) -> None:
        super().__init__()
        self._source = source
        self._seconds = seconds
        self._samples = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._source.recv()
        assert isinstance(frame, av.AudioFrame)
        # Whole samples, not float seconds (ten times 0.02 s falls short of 0.2 s).
        if self._samples >= round(self._seconds * (frame.sample_rate or AUDIO_SAMPLE_RATE)):
            self.stop()
            raise MediaStreamError
        self._samples += frame.samples
        return frame

    def stop(self) -> None:
        super().stop()
        self._source.stop()


def tone_track(
    seconds: float, frequency: float = 440.0, level_dbfs: float = -12.0
) -> MediaStreamTrack:
    """A paced audio track that plays a tone for ``seconds`` and then ends (test tone)."""
    return _LimitedTrack(ToneMicrophone(frequency, level_dbfs), seconds)


class RecordingSpeaker(TrackPlayer):
    """A loudspeaker that plays nothing but counts and meters what it is given."""

    def __init__(self) -> None:
        super().__init__()
        #: Samples (per channel) received since construction.
        self.total_samples = 0
        #: Frames received since construction.
        self.total_frames = 0
        #: Sample rate of the last frame (0 before any).
        self.sample_rate = 0
        #: What each track given to :meth:`start` said (its ``text``; None for one without,
        #: e.g. the GP's voice or the test tone), in order: tests read what was spoken.
        self.spoken: list[str | None] = []

    async def start(self, track: MediaStreamTrack) -> None:
        """Record what ``track`` says, then play (count and meter) it."""
        text = getattr(track, "text", None)
        self.spoken.append(text if isinstance(text, str) else None)
        await super().start(track)

    @property
    def backend(self) -> str:
        """Always ``"fake"``."""
        return "fake"

    def _play(self, frame: av.AudioFrame) -> None:
        self.total_frames += 1
        self.total_samples += frame.samples
        self.sample_rate = frame.sample_rate

    async def check(self, open_within: float = 5.0) -> None:
        """The fake has no device to open; it always works."""

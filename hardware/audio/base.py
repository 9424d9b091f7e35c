"""The audio ports: a microphone is an aiortc audio track; a loudspeaker plays one."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import av
from aiortc.mediastreams import MediaStreamTrack

from .level import LevelMeter

__all__ = ["AUDIO_PTIME", "AUDIO_SAMPLE_RATE", "Microphone", "Speaker"]

#: aiortc (and Opus) work at 48 kHz in 20 ms frames.
AUDIO_SAMPLE_RATE = 48_000
AUDIO_PTIME = 0.020


@runtime_checkable
class Microphone(Protocol):
    """The station's microphone: an aiortc audio ``MediaStreamTrack`` (``kind == "audio"``).

    Frames are 48 kHz, 20 ms, signed 16-bit mono. One track per call, like the camera.
    """

    kind: str

    @property
    def readyState(self) -> str:  # aiortc's (and WebRTC's) name
        """``"live"`` or ``"ended"``."""
        ...

    @property
    def backend(self) -> str:
        """``"fake"`` or ``"pyav"``."""
        ...

    async def recv(self) -> av.AudioFrame:
        """The next 20 ms of sound."""
        ...

    def stop(self) -> None:
        """End the track and release the device."""
        ...


@runtime_checkable
class Speaker(Protocol):
    """The station's loudspeaker: plays one audio track at a time (the GP's voice)."""

    @property
    def backend(self) -> str:
        """``"fake"`` or ``"pyav"``."""
        ...

    @property
    def playing(self) -> bool:
        """True while a track is being played."""
        ...

    @property
    def meter(self) -> LevelMeter:
        """The level of what was played since the last ``start`` (for the level meter)."""
        ...

    async def start(self, track: MediaStreamTrack) -> None:
        """Play ``track`` until it ends or :meth:`stop`; replaces whatever was playing."""
        ...

    async def stop(self) -> None:
        """Stop playing (the device is released)."""
        ...

    async def check(self, open_within: float = 5.0) -> None:
        """Open and close the output device; raise ``AudioUnavailableError`` if it fails."""
        ...

"""What every loudspeaker shares: a task that reads one audio track and meters it."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .level import LevelMeter

__all__ = ["TrackPlayer"]

_log = logging.getLogger(__name__)


class TrackPlayer:
    """Reads a track on the loop, meters each frame and hands it to :meth:`_play`.

    Subclasses implement ``_play`` (called on the loop, must not block) and may override
    ``_opened``/``_closed`` to open and release their device around a track.
    """

    def __init__(self) -> None:
        self._meter = LevelMeter()
        self._task: asyncio.Task[None] | None = None
        self._track: MediaStreamTrack | None = None
        #: The error that ended playback early, if any (English, for health and logs).
        self.error: BaseException | None = None

    @property
    def meter(self) -> LevelMeter:
        """Level of what was played since the last ``start``."""
        return self._meter

    @property
    def track(self) -> MediaStreamTrack | None:
        """The track given to :meth:`start` (still set after it ended, until :meth:`stop`)."""
        return self._track

    @property
    def playing(self) -> bool:
        """True while a track is being read."""
        return self._task is not None and not self._task.done()

    async def start(self, track: MediaStreamTrack) -> None:
        """Play ``track`` (replacing the current one) until it ends or :meth:`stop`."""
        if track.kind != "audio":
            raise ValueError(f"a loudspeaker plays audio tracks, not {track.kind!r}")
        await self.stop()
        self._meter.reset()
        self.error = None
        await self._opened()  # raises if the device cannot be opened; nothing to undo then
        self._track = track
        self._task = asyncio.create_task(self._run(track), name="speaker")

    async def stop(self) -> None:
        """Stop reading the track and release the device."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._track is not None:
            self._track = None
            await self._closed()

    async def _run(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if not isinstance(frame, av.AudioFrame):
                    continue
                self._meter.feed(frame)
                self._play(frame)
        except MediaStreamError:
            return  # the track ended: the call is over
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failing device must not take the call down with it
            _log.warning("loudspeaker stopped: %s", exc)
            self.error = exc

    def _play(self, frame: av.AudioFrame) -> None:
        """Send one frame to the device (override)."""

    async def _opened(self) -> None:
        """Open the device before reading (override)."""

    async def _closed(self) -> None:
        """Release the device after reading (override)."""

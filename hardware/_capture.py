"""A device read on a thread, as an aiortc track: the PyAV microphone and the V4L2 webcam.

Both open a PyAV container on a :class:`~hardware._thread.CaptureThread` that feeds a
:class:`~hardware._queue.LatestQueue` (newest wins); ``recv()`` starts the thread on first
use and turns a failed device into the part's own error. A subclass says how to read
(``_produce``), what its thread is called and how its failure reads.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Generic, NoReturn, TypeVar

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ._queue import LatestQueue, QueueClosedError
from ._thread import CaptureThread, Emit

__all__ = ["CapturedTrack", "raise_for_closed_queue"]

T = TypeVar("T")


def raise_for_closed_queue(
    track: MediaStreamTrack,
    exc: QueueClosedError,
    own_error: type[Exception],
    failed: Callable[[BaseException | None], Exception],
) -> NoReturn:
    """What ``recv()`` raises when its queue closed: ``MediaStreamError`` once the track was
    stopped, the part's own error as it was raised, or ``failed(cause)`` for anything else."""
    if track.readyState != "live":
        raise MediaStreamError from None
    cause = exc.__cause__
    if isinstance(cause, own_error):
        raise cause from None
    raise failed(cause) from cause


class CapturedTrack(MediaStreamTrack, Generic[T]):
    """A track fed by a capture thread (see the module docs)."""

    def __init__(self, queue: LatestQueue[T]) -> None:
        super().__init__()
        self._queue = queue
        self._thread: CaptureThread[T] | None = None

    def _thread_name(self) -> str:
        """The capture thread's name (tests and logs look for it)."""
        raise NotImplementedError

    def _produce(self, emit: Emit[T], stopping: threading.Event) -> None:
        """Open the device and emit what it delivers until ``stopping`` (runs on the thread)."""
        raise NotImplementedError

    def _failed(self, cause: BaseException | None) -> Exception:
        """The part's error for a device that failed with ``cause``; a part's own error
        (already said well) is passed through by :meth:`_next`."""
        raise NotImplementedError

    def _finish(self, error: BaseException | None) -> None:
        self._queue.close(error)

    def _ensure_started(self) -> None:
        if self._thread is None:
            self._thread = CaptureThread(
                self._thread_name(),
                self._produce,
                self._queue.put_nowait,
                self._finish,
                asyncio.get_running_loop(),
            )
            self._thread.start()

    async def _next(self, own_error: type[Exception]) -> T:
        """The next item; ``MediaStreamError`` once stopped, the part's error if it failed."""
        if self.readyState != "live":
            raise MediaStreamError
        self._ensure_started()
        try:
            return await self._queue.get()
        except QueueClosedError as exc:
            raise_for_closed_queue(self, exc, own_error, self._failed)

    def stop(self) -> None:
        """End the track; the capture thread closes the device after its current read."""
        super().stop()
        if self._thread is not None:
            self._thread.stop()
        self._queue.close()

    async def aclose(self, grace: float = 5.0) -> None:
        """Stop and wait up to ``grace`` seconds until the device is closed."""
        self.stop()
        if self._thread is not None:
            await self._thread.join(grace)

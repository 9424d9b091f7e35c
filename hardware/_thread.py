"""Blocking capture loops in a thread, feeding a bounded queue on the asyncio loop.

Device reads block (PyAV's demuxer, picamera2's ``capture_array``), so they never run on the
loop: a :class:`CaptureThread` runs them and hands each item over with
``call_soon_threadsafe``. When the producer fails, the queue is closed with the error so the
consumer's ``await queue.get()`` raises instead of waiting for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["CaptureThread", "Emit"]

T = TypeVar("T")

_log = logging.getLogger(__name__)

#: What a producer calls with each item; returns False once the consumer is gone.
Emit = Callable[[T], bool]


class CaptureThread(Generic[T]):
    """Runs ``produce(emit, stopping)`` on a daemon thread until it returns or is stopped.

    ``produce`` must check ``stopping.is_set()`` between blocking reads (each read should block
    for at most about one frame). ``deliver`` runs on the loop with each item; ``finish`` runs
    on the loop once with the producer's exception, or ``None`` when it ended normally.
    """

    def __init__(
        self,
        name: str,
        produce: Callable[[Emit[T], threading.Event], None],
        deliver: Callable[[T], None],
        finish: Callable[[BaseException | None], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._produce = produce
        self._deliver = deliver
        self._finish = finish
        self._loop = loop
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def alive(self) -> bool:
        """True while the thread runs."""
        return self._thread.is_alive()

    def start(self) -> None:
        """Start the thread (once)."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the producer to stop after its current read; does not wait."""
        self.stopping.set()

    async def join(self, grace: float = 5.0) -> bool:
        """Stop and wait (off the loop) up to ``grace`` seconds; True if the thread ended."""
        self.stop()
        if self._thread.ident is None:
            return True
        await asyncio.to_thread(self._thread.join, grace)
        return not self._thread.is_alive()

    def _emit(self, item: T) -> bool:
        if self.stopping.is_set():
            return False
        try:
            self._loop.call_soon_threadsafe(self._deliver, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.stopping.set()
            return False
        return True

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            self._produce(self._emit, self.stopping)
        except Exception as exc:  # any device failure ends the capture; the consumer sees it
            error = exc
            if not self.stopping.is_set():
                _log.warning("capture thread %s failed: %s", self._thread.name, exc)
        with contextlib.suppress(RuntimeError):  # loop already closed
            self._loop.call_soon_threadsafe(self._finish, error)

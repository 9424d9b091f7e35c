"""Bounded queues between capture threads and the asyncio loop: the newest item wins.

Latency never builds up behind a slow consumer: when a queue is full the *oldest* item goes.
Both queues are used from the loop only; capture threads hand items over with
``loop.call_soon_threadsafe(queue.put_nowait, item)``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["KeyframeQueue", "LatestQueue", "QueueClosedError"]

T = TypeVar("T")


class QueueClosedError(Exception):
    """The queue was closed; ``__cause__`` holds the capture thread's error, if any."""


class LatestQueue(Generic[T]):
    """A bounded FIFO that drops the oldest item when full, for one consumer on the loop."""

    def __init__(self, maxsize: int = 1) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._error: BaseException | None = None
        #: How many items were dropped because the consumer was too slow.
        self.dropped = 0
        #: How many items were offered in all.
        self.offered = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def put_nowait(self, item: T) -> None:
        """Add ``item``; if the queue is full, drop the oldest first. Ignored once closed."""
        if self._closed:
            return
        self.offered += 1
        while len(self._items) >= self.maxsize:
            self._items.popleft()
            self.dropped += 1
        self._items.append(item)
        self._wake()

    def clear(self) -> int:
        """Drop everything queued; return how many items went."""
        count = len(self._items)
        self._items.clear()
        self.dropped += count
        return count

    def close(self, error: BaseException | None = None) -> None:
        """Close the queue; a waiting or later :meth:`get` raises ``QueueClosedError``."""
        if self._closed:
            return
        self._closed = True
        self._error = error
        self._wake()

    async def get(self) -> T:
        """Wait for the next item (oldest first among the few kept)."""
        while not self._items:
            if self._closed:
                raise QueueClosedError("queue closed") from self._error
            loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class KeyframeQueue(Generic[T]):
    """A bounded queue of encoded video packets that never hands out an undecodable one.

    Dropping one inter-coded packet breaks every later packet until the next keyframe, so when
    the queue overflows it drops *everything* queued and every later non-keyframe until a
    keyframe arrives, and calls ``on_gap`` (which requests a keyframe from the encoder) so the
    wait is short. A keyframe always goes in (it clears what is queued when the queue is full).
    """

    def __init__(self, maxsize: int = 4, on_gap: Callable[[], None] | None = None) -> None:
        self._queue: LatestQueue[T] = LatestQueue(maxsize)
        self._on_gap = on_gap
        self._waiting_for_keyframe = False
        #: Packets dropped while the queue was full or waiting for a keyframe.
        self.dropped = 0
        #: How many times the queue overflowed and started waiting for a keyframe.
        self.gaps = 0

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def waiting_for_keyframe(self) -> bool:
        """True while non-keyframes are being dropped after an overflow."""
        return self._waiting_for_keyframe

    def put_nowait(self, item: T, keyframe: bool) -> None:
        """Offer one packet; ``keyframe`` says whether it decodes on its own."""
        if self._queue.closed:
            return
        if keyframe:
            if len(self._queue) >= self._queue.maxsize:
                self.dropped += self._queue.clear()
            self._waiting_for_keyframe = False
            self._queue.put_nowait(item)
            return
        if self._waiting_for_keyframe:
            self.dropped += 1
            return
        if len(self._queue) >= self._queue.maxsize:
            self.dropped += self._queue.clear() + 1
            self._waiting_for_keyframe = True
            self.gaps += 1
            if self._on_gap is not None:
                self._on_gap()
            return
        self._queue.put_nowait(item)

    def close(self, error: BaseException | None = None) -> None:
        """Close the queue; see :meth:`LatestQueue.close`."""
        self._queue.close(error)

    async def get(self) -> T:
        """Wait for the next packet."""
        return await self._queue.get()

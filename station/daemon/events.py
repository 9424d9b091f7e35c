"""The event broker: one publisher (the daemon's loop), many bounded subscribers.

Every UI listens to ``GET /v1/events``; a UI that stops reading (a frozen process, a slow
Pi) must never make the daemon's memory grow. Each subscriber therefore has its own bounded
queue: when it is full the *oldest* event is dropped and the subscriber is told, once, with a
``lagged`` event saying how many it missed, so it can re-read ``/v1/state`` instead of trusting
a partial history. The newest event (typically "locked") always gets through.

Everything here runs on the daemon's event loop; ``publish`` is not thread-safe on purpose:
callbacks from hardware threads are handed to the loop first (``call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from station.core.clock import Clock, SystemClock

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "Event",
    "EventBroker",
    "EventKind",
    "Subscription",
]

DEFAULT_QUEUE_SIZE = 64


class EventKind:
    """The event names the API streams (``event:`` field of server-sent events)."""

    STATE = "state"
    LOCKED = "locked"
    LOCK_REQUESTED = "lock_requested"
    PAUSE_MEDIA = "pause_media"
    CALL = "call"
    HEALTH = "health"
    #: A hardware part went missing or came back (``part``, ``present``, ``backend``).
    HARDWARE = "hardware"
    LAGGED = "lagged"
    SHUTDOWN = "shutdown"

    ALL = frozenset(
        {STATE, LOCKED, LOCK_REQUESTED, PAUSE_MEDIA, CALL, HEALTH, HARDWARE, LAGGED, SHUTDOWN}
    )


@dataclass(frozen=True, slots=True)
class Event:
    """One event: a sequence number, a kind, when it happened, and clear, non-personal data."""

    seq: int
    kind: str
    at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The JSON object sent to clients."""
        return {"seq": self.seq, "kind": self.kind, "at": self.at.isoformat(), **self.data}


class Subscription:
    """One listener's bounded queue; iterate it with ``async for``."""

    def __init__(self, broker: EventBroker, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("a subscription needs room for at least one event")
        self._broker = broker
        self._queue: collections.deque[Event] = collections.deque()
        self._maxsize = maxsize
        self._wakeup = asyncio.Event()
        self._dropped = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once the broker closed or the subscriber left."""
        return self._closed

    @property
    def pending(self) -> int:
        """Events queued and not yet read."""
        return len(self._queue)

    def _offer(self, event: Event) -> None:
        if self._closed:
            return
        if len(self._queue) >= self._maxsize:
            self._queue.popleft()
            self._dropped += 1
        self._queue.append(event)
        self._wakeup.set()

    def _close(self) -> None:
        self._closed = True
        self._wakeup.set()

    def get_nowait(self) -> Event | None:
        """The next event, a ``lagged`` marker first if events were dropped, or None."""
        if self._dropped:
            missed, self._dropped = self._dropped, 0
            return self._broker.make_event(EventKind.LAGGED, {"missed": missed})
        if self._queue:
            return self._queue.popleft()
        return None

    async def get(self, wait: float | None = None) -> Event | None:
        """Wait up to ``wait`` seconds for the next event; None on timeout or when closed."""
        while True:
            event = self.get_nowait()
            if event is not None:
                return event
            if self._closed:
                return None
            self._wakeup.clear()
            try:
                async with asyncio.timeout(wait):
                    await self._wakeup.wait()
            except TimeoutError:
                return None

    def close(self) -> None:
        """Leave the broker (the client went away)."""
        self._broker._remove(self)
        self._close()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            event = await self.get()
            if event is None:
                return
            yield event


class EventBroker:
    """Fans events out to every current subscriber without ever blocking the publisher."""

    def __init__(self, clock: Clock | None = None, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._clock = clock or SystemClock()
        self._queue_size = queue_size
        self._subscribers: set[Subscription] = set()
        self._seq = itertools.count(1)
        self._closed = False

    @property
    def subscriber_count(self) -> int:
        """How many listeners are connected."""
        return len(self._subscribers)

    @property
    def closed(self) -> bool:
        """True after :meth:`close` (shutdown)."""
        return self._closed

    def make_event(self, kind: str, data: Mapping[str, Any] | None = None) -> Event:
        """Stamp an event with the next sequence number and the time."""
        return Event(seq=next(self._seq), kind=kind, at=self._clock.now(), data=dict(data or {}))

    def publish(self, kind: str, data: Mapping[str, Any] | None = None) -> Event:
        """Send an event to every subscriber; returns it (for logs and tests)."""
        event = self.make_event(kind, data)
        for sub in tuple(self._subscribers):
            sub._offer(event)
        return event

    def subscribe(self, maxsize: int | None = None) -> Subscription:
        """A new listener; closed at once if the broker is already shutting down."""
        sub = Subscription(self, maxsize or self._queue_size)
        if self._closed:
            sub._close()
        else:
            self._subscribers.add(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    def close(self) -> None:
        """End every stream (shutdown): subscribers drain what they have, then stop."""
        self._closed = True
        for sub in tuple(self._subscribers):
            sub._close()
        self._subscribers.clear()

"""Wake-ups for long-polls: "room X changed", without any polling loop.

The port is deliberately tiny so PostgreSQL ``LISTEN``/``NOTIFY`` can implement it for several
hub instances; :class:`InProcessNotifier` is the single-instance adapter (asyncio events).

Use it race-free: take a :class:`RoomWaiter` with :meth:`RoomNotifier.listen` *before* reading
the room, then wait on it only if the room had not changed. A change published between the
read and the wait still wakes the waiter.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Protocol

__all__ = ["InProcessNotifier", "RoomNotifier", "RoomWaiter"]


class RoomWaiter(Protocol):
    """One pending wake-up for one room."""

    async def wait(self, seconds: float) -> bool:
        """Wait until the room changes (True) or ``seconds`` pass (False)."""


class RoomNotifier(Protocol):
    """Publishes and awaits changes of rooms."""

    def listen(self, room_id: str) -> RoomWaiter:
        """A waiter that fires on the next change of ``room_id`` published after this call."""

    async def publish(self, room_id: str) -> None:
        """Wake everyone listening on ``room_id``."""


class _EventWaiter:
    def __init__(self, event: asyncio.Event) -> None:
        self._event = event

    async def wait(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._event.wait(), seconds)
        except TimeoutError:
            return False
        return True


class InProcessNotifier:
    """:class:`RoomNotifier` for one process: one :class:`asyncio.Event` per room and change.

    Publishing sets the room's current event and forgets it, so later listeners get a fresh
    one; events nobody holds any more vanish with their last waiter (weak references).
    """

    def __init__(self) -> None:
        self._events: weakref.WeakValueDictionary[str, asyncio.Event] = (
            weakref.WeakValueDictionary()
        )

    def listen(self, room_id: str) -> RoomWaiter:
        """A waiter for the next change of ``room_id``."""
        event = self._events.get(room_id)
        if event is None:
            event = asyncio.Event()
            self._events[room_id] = event
        return _EventWaiter(event)

    async def publish(self, room_id: str) -> None:
        """Wake everyone listening on ``room_id``."""
        event = self._events.pop(room_id, None)
        if event is not None:
            event.set()

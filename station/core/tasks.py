"""Stopping a holder's background tasks: cancel them all, then wait for each to end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(tasks: Iterable[asyncio.Task[object]]) -> None:
    """Cancel every task in ``tasks``, then await each, swallowing what it ends with.

    One function because stationd, the export service and the UI supervisor each stopped
    their tasks with these same lines. ``tasks`` is copied first: a task's done callback may
    drop it from the caller's collection while we wait, and every task is still awaited.
    Emptying the collection is the caller's.
    """
    pending = list(tasks)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

"""Stopping a holder's background tasks: cancel them all, then wait for each to end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(tasks: Iterable[asyncio.Task[object]]) -> None:
    """Cancel every task in ``tasks``, then await each, swallowing what it ends with.

    One function because stationd, the export service and the UI supervisor each stopped
    their tasks with these same lines. ``tasks`` is walked as given (a task's done callback
    may still drop it from the caller's list meanwhile); emptying the list is the caller's.
    """
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

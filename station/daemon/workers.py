"""Blocking work off the event loop: one named worker thread per resource, with timeouts.

SQLite and the audit chain are blocking (``synchronous=FULL`` means an fsync per commit), so
stationd never calls them on its loop. Each resource gets a single worker thread: calls run in
the order they were made (the audit chain's order is the order things happened) and the number
of threads stays fixed however many requests arrive.

:class:`SerialAuditSink` is the ``AuditSink`` the session is given. Entries that *open*
access to personal data (unlock, a check begun, a wrap-up resumed) must fail closed, so for
them ``record`` waits for the write and raises if it failed; everything else (a lock above
all) is queued and written a moment later, so a slow SD card never delays a lock. The queue
is drained on shutdown.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
from collections.abc import Callable
from typing import Final, ParamSpec, TypeVar

from station.core.ports import AuditSink

__all__ = ["FAIL_CLOSED_ACTIONS", "SerialAuditSink", "Worker"]

_log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

#: Audit actions whose write must succeed before the action takes effect (see module docs).
FAIL_CLOSED_ACTIONS: Final = frozenset({"unlock", "check_started", "wrap_up_started"})


class Worker:
    """One thread that runs blocking calls in submission order."""

    def __init__(self, name: str, *, timeout: float = 10.0) -> None:
        self.name = name
        self.timeout = timeout
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=name
        )
        self._closed = False

    def submit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> concurrent.futures.Future[T]:
        """Queue ``fn(*args, **kwargs)``; a ``concurrent.futures.Future`` for its result."""
        return self._executor.submit(fn, *args, **kwargs)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on the worker and await it, at most ``timeout`` seconds.

        On timeout the call still finishes on the thread (SQLite cannot be interrupted
        safely); the caller gets ``TimeoutError`` and the loop stays free.
        """
        future = self._executor.submit(fn, *args, **kwargs)
        return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)

    def close(self, *, wait: bool = True) -> None:
        """Finish queued calls (when ``wait``) and stop the thread."""
        if not self._closed:
            self._closed = True
            self._executor.shutdown(wait=wait, cancel_futures=not wait)


class SerialAuditSink:
    """An ``AuditSink`` writing through a :class:`Worker`, in order; see the module docs."""

    def __init__(
        self,
        inner: AuditSink,
        worker: Worker,
        *,
        timeout: float = 5.0,
    ) -> None:
        self._inner = inner
        self._worker = worker
        self._timeout = timeout

    def record(self, action: str, *, staff: str | None, resident: str | None, outcome: str) -> None:
        """Queue the entry; wait for it (and raise on failure) for fail-closed actions."""
        call = functools.partial(
            self._inner.record, str(action), staff=staff, resident=resident, outcome=outcome
        )
        future = self._worker.submit(call)
        if str(action) in FAIL_CLOSED_ACTIONS:
            # Blocks the loop for one fsync at most (plus earlier queued entries): only on
            # unlock-like actions, where correctness beats latency.
            future.result(timeout=self._timeout)
        else:
            future.add_done_callback(functools.partial(_log_failure, str(action)))


def _log_failure(action: str, future: concurrent.futures.Future[None]) -> None:
    error = future.exception()
    if error is not None:
        _log.error("audit write for %s failed: %s", action, error)

"""PostgreSQL for several hub instances: the SQL seam, the room store and LISTEN/NOTIFY.

* :class:`PostgresDatabase`: :class:`hub.db.Database` on psycopg 3 (a small pool of blocking
  connections used from worker threads, like SQLite's), so provisioning and the rooms
  (:class:`hub.store.RoomStore`, in its PostgreSQL dialect) run the very same SQL on both
  engines.
* :class:`PostgresNotifier`: :class:`hub.notifier.RoomNotifier` across instances. ``publish``
  sends ``NOTIFY`` (delivered after the writer's commit, to every instance, itself included)
  and wakes local waiters at once; one ``LISTEN`` connection per instance turns notifications
  into local wake-ups. A station long-polling instance A is woken by a GP's answer posted to
  instance B. If the listening connection drops, every local waiter is woken (they re-read
  the room: a spurious wake-up is harmless, a lost one is not) and it reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

import psycopg

from hub.db import Dialect, Row, Tx
from hub.errors import RoomStoreError
from hub.notifier import InProcessNotifier, RoomWaiter
from hub.provisioning.errors import ProvisioningStoreError
from hub.store import RoomStore

__all__ = [
    "CHANNEL",
    "PostgresDatabase",
    "PostgresNotifier",
    "postgres_rendezvous",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: The NOTIFY channel for room changes (payload: the room id).
CHANNEL: Final = "kontaktstation_rooms"
_PLACEHOLDER = re.compile(r"\?")


def _pg(sql: str) -> str:
    # The shared SQL uses "?"; psycopg wants "%s" (no literal "%" or "?" occurs in it).
    return _PLACEHOLDER.sub("%s", sql)


class _PgTx:
    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cur = cursor

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        self._cur.execute(_pg(sql), tuple(params))
        return self._cur.rowcount

    def one(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        self._cur.execute(_pg(sql), tuple(params))
        row = self._cur.fetchone()
        return None if row is None else tuple(row)

    def all(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        self._cur.execute(_pg(sql), tuple(params))
        return [tuple(r) for r in self._cur.fetchall()]


class PostgresDatabase:
    """:class:`hub.db.Database` on PostgreSQL; up to ``pool_size`` connections."""

    dialect: Dialect = "postgres"

    def __init__(self, dsn: str, *, pool_size: int = 8, error: type[Exception] | None = None):
        self._dsn = dsn
        self._pool: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._error = error or ProvisioningStoreError
        self._closed = False

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)

    def run_blocking(self, work: Callable[[Tx], _T]) -> _T:
        """Run ``work`` in one transaction on a pooled connection (on this thread)."""
        with self._slots:
            try:
                conn = self._pool.get_nowait()
            except queue.Empty:
                conn = None
            try:
                if conn is None or conn.closed:
                    conn = self._connect()
                with conn.transaction(), conn.cursor() as cursor:
                    return work(_PgTx(cursor))
            except psycopg.Error as exc:
                # The type only: server messages can quote values.
                raise self._error(f"PostgreSQL failed: {type(exc).__name__}") from exc
            finally:
                if conn is not None:
                    self._give_back(conn)

    def _give_back(self, conn: psycopg.Connection[Any]) -> None:
        healthy = (
            not conn.closed
            and not conn.broken
            and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        )
        if healthy and not self._closed:
            self._pool.put(conn)
        else:
            conn.close()

    async def run(self, work: Callable[[Tx], _T]) -> _T:
        """Run ``work`` in one transaction on a worker thread."""
        return await asyncio.to_thread(self.run_blocking, work)

    async def close(self) -> None:
        """Close the idle connections (busy ones close when they come back)."""
        self._closed = True

        def drain() -> None:
            while True:
                try:
                    conn = self._pool.get_nowait()
                except queue.Empty:
                    return
                conn.close()

        await asyncio.to_thread(drain)

    def __repr__(self) -> str:
        return "PostgresDatabase(<dsn hidden>)"


class PostgresNotifier:
    """:class:`hub.notifier.RoomNotifier` across hub instances (LISTEN/NOTIFY)."""

    def __init__(self, dsn: str, db: PostgresDatabase) -> None:
        self._dsn = dsn
        self._db = db
        self._local = InProcessNotifier()
        self._listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._waiting_rooms: set[str] = set()

    async def start(self) -> None:
        """Start listening; returns once ``LISTEN`` is in force (or after 10 s)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._listen_forever())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), 10)

    async def _listen_forever(self) -> None:
        delay = 0.5
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
                try:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    delay = 0.5
                    # Anything published while we were not listening: wake and re-read.
                    await self._wake_all()
                    async for notification in conn.notifies():
                        await self._local.publish(notification.payload)
                finally:
                    self._listening.clear()
                    with contextlib.suppress(Exception):
                        await conn.close()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("room notifications lost (%s); reconnecting", type(exc).__name__)
            await self._wake_all()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _wake_all(self) -> None:
        for room_id in list(self._waiting_rooms):
            await self._local.publish(room_id)

    def listen(self, room_id: str) -> RoomWaiter:
        """A waiter for the next change of ``room_id`` (from any instance)."""
        self._waiting_rooms.add(room_id)
        if len(self._waiting_rooms) > 10_000:
            self._waiting_rooms.clear()  # only used for reconnect wake-ups; bounded
            self._waiting_rooms.add(room_id)
        return self._local.listen(room_id)

    async def publish(self, room_id: str) -> None:
        """Wake local waiters now and every instance's after the change is committed."""
        await self._local.publish(room_id)
        try:
            await self._db.run(lambda tx: tx.execute("SELECT pg_notify(?, ?)", (CHANNEL, room_id)))
        except RoomStoreError as exc:
            _log.warning("room change not announced to other instances: %s", exc)

    async def aclose(self) -> None:
        """Stop listening and release the connections (shared with the room store)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        await self._db.close()


def postgres_rendezvous(dsn: str) -> tuple[RoomStore, PostgresNotifier]:
    """The room store and notifier on one PostgreSQL (``postgresql://...`` or a libpq DSN)."""
    db = PostgresDatabase(dsn, error=RoomStoreError)
    return RoomStore(db), PostgresNotifier(dsn, db)

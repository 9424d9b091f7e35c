"""One SQLite file owned by one object: the connection, its lock, and its transactions.

The blind store, the audit log and the EOJ outbox each keep one SQLite file the same way:
one connection behind a lock (callable from any thread, calls serialised), every write in
its own transaction that is rolled back on any failure (a failed COMMIT too), and SQLite's
errors turned into the owner's own errors, a damaged file named as such and never touched.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from station.core.clock import Clock
from station.errors import StationError

__all__ = ["SqliteFile", "is_damage"]

_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26


def is_damage(error: sqlite3.Error) -> bool:
    """Whether SQLite says the file itself is damaged (not busy, not full, not misused)."""
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


class SqliteFile:
    """Base of the classes that own one SQLite file (see the module docs)."""

    #: What the file is, for messages: "station store", "audit log", "export outbox".
    kind: ClassVar[str]
    #: The owner's base error and its error for a damaged file.
    error: ClassVar[type[StationError]]
    corrupt: ClassVar[type[StationError]]

    def __init__(self, conn: sqlite3.Connection, path: Path, clock: Clock) -> None:
        """Use the subclass's ``open``; this wraps an already configured, migrated connection."""
        self._conn: sqlite3.Connection | None = conn
        self._path = path
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def close(self) -> None:
        """Close the connection (SQLite checkpoints the WAL into the file on close)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _refused(self, error: sqlite3.IntegrityError) -> StationError | None:
        """The owner's error for a constraint refusal, or None to treat it like any error."""
        return None

    @contextmanager
    def _tx(self, begin: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise self.error(f"the {self.kind} is closed")
            try:
                conn.execute(begin)
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    # Also after a failed COMMIT (disk full, I/O error): never leave a
                    # transaction open for the next call to commit by accident.
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.IntegrityError as error:
                refused = self._refused(error)
                if refused is not None:
                    raise refused from None
                raise self._mapped(error) from None
            except sqlite3.Error as error:
                raise self._mapped(error) from None

    def _mapped(self, error: sqlite3.Error) -> StationError:
        if is_damage(error):
            return self.corrupt(
                f"{self.kind} {self._path} is damaged ({error}); "
                "the file was left untouched for IT to examine"
            )
        name = getattr(error, "sqlite_errorname", type(error).__name__)
        return self.error(f"{self.kind} operation failed ({name}: {error})")

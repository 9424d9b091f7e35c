"""One SQLite file owned by one object: opening it, its connection, lock and transactions.

The blind store, the audit log and the EOJ outbox each keep one SQLite file the same way:
opened only after an integrity check (:func:`open_sqlite`; a damaged or foreign file is named
as such and never touched), made durable (WAL, full sync, secure delete), its schema brought
forward by numbered steps (:func:`migrate_schema`); then one connection behind a lock
(callable from any thread, calls serialised), every write in its own transaction that is
rolled back on any failure (a failed COMMIT too), and SQLite's errors turned into the owner's
own errors.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Final, Self

from station.core.clock import Clock
from station.errors import StationError

__all__ = [
    "SqliteFile",
    "check_sqlite_integrity",
    "is_damage",
    "migrate_schema",
    "open_sqlite",
]

_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26


def is_damage(error: sqlite3.Error) -> bool:
    """Whether SQLite says the file itself is damaged (not busy, not full, not misused)."""
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


_SQLITE_MAGIC: Final = b"SQLite format 3\x00"
#: How long a write waits for another process's lock before failing (milliseconds).
_BUSY_TIMEOUT_MS: Final = 5000


def check_sqlite_integrity(
    conn: sqlite3.Connection, *, what: str, corrupt: type[StationError], quick: bool = False
) -> None:
    """Run SQLite's integrity check on ``conn``; raise ``corrupt`` unless it says ``ok``."""
    pragma = "quick_check" if quick else "integrity_check"
    try:
        rows = conn.execute(f"PRAGMA {pragma}").fetchall()
    except sqlite3.DatabaseError as error:
        if is_damage(error):
            raise corrupt(
                f"{what} is damaged ({error.sqlite_errorname}: {error}); "
                "the file was left untouched for IT to examine or restore from backup"
            ) from None
        raise
    if rows != [("ok",)]:
        first = str(rows[0][0]) if rows else "no result"
        raise corrupt(
            f"{what} failed SQLite's {pragma} ({len(rows)} problem(s), first: {first}); "
            "the file was left untouched for IT to examine or restore from backup"
        )


def open_sqlite(
    path: Path,
    *,
    what: str,
    error: type[StationError],
    corrupt: type[StationError],
    quick_check: bool = False,
) -> sqlite3.Connection:
    """Open (or create) a durable SQLite file after checking it is an intact database.

    The check runs on a read-only connection first, so a damaged file is never written to:
    a read-write connection could checkpoint its WAL into it on close. Raises ``corrupt``
    (with an English message saying what is wrong) for a damaged or foreign file, ``error``
    when the file cannot be made durable (WAL, full sync, foreign keys, secure delete).
    """
    size = path.stat().st_size if path.exists() else None
    if size:
        # Cheap check before SQLite touches the file: a file of random bytes or a truncated
        # header is refused here, with the reason in plain words.
        with path.open("rb") as handle:
            header = handle.read(len(_SQLITE_MAGIC))
        if size < 100 or header != _SQLITE_MAGIC:
            raise corrupt(
                f"{what} is not an SQLite database (size {size} bytes, header not recognised); "
                "the file was left untouched for IT to examine or restore from backup"
            )
        checked = _check_read_only(path, what=what, corrupt=corrupt, quick=quick_check)
    else:
        wal = path.with_name(path.name + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            # SQLite would replay this WAL into a fresh file: half a database. Leave it.
            raise corrupt(
                f"{what} is missing or empty but its write-ahead log {wal.name} is not; "
                "both were left untouched for IT to examine or restore from backup"
            )
        # New (or empty from a crash during creation): create it private to our user; SQLite
        # gives the -wal and -shm files the same permissions.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        checked = True
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=_BUSY_TIMEOUT_MS / 1000
    )
    try:
        if not checked:
            check_sqlite_integrity(conn, what=what, corrupt=corrupt, quick=quick_check)
        _configure(conn, what=what, error=error)
    except BaseException:
        conn.close()
        raise
    return conn


def _check_read_only(path: Path, *, what: str, corrupt: type[StationError], quick: bool) -> bool:
    """Integrity check on a read-only connection; False if read-only could not run it."""
    uri = path.resolve().as_uri() + "?mode=ro"
    try:
        ro = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error:
        return False
    try:
        check_sqlite_integrity(ro, what=what, corrupt=corrupt, quick=quick)
    except sqlite3.Error:
        # E.g. a hot rollback journal left by a crash during creation, which only a
        # read-write connection may roll back: check again after opening read-write.
        return False
    finally:
        ro.close()
    return True


def _configure(conn: sqlite3.Connection, *, what: str, error: type[StationError]) -> None:
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise error(f"{what}: could not switch to WAL journal mode (got {mode})")
    for pragma in (
        "synchronous=FULL",
        "foreign_keys=ON",
        "secure_delete=ON",
        "temp_store=MEMORY",
        f"busy_timeout={_BUSY_TIMEOUT_MS}",
    ):
        conn.execute(f"PRAGMA {pragma}")
    # PRAGMAs fail silently when unsupported; durability and erasure must not.
    expected = {"synchronous": 2, "foreign_keys": 1, "secure_delete": 1}
    for name, value in expected.items():
        got = conn.execute(f"PRAGMA {name}").fetchone()[0]
        if got != value:
            raise error(f"{what}: PRAGMA {name} is {got}, expected {value}")


def migrate_schema(
    conn: sqlite3.Connection,
    migrations: Sequence[Sequence[str]],
    *,
    what: str,
    too_new: type[StationError],
    apply: Callable[[sqlite3.Connection, int], None] | None = None,
) -> int:
    """Bring the schema forward to ``len(migrations)``; return the version now in the file.

    ``migrations[i]`` holds the SQL statements that upgrade version ``i`` to ``i + 1``
    (version 0 is an empty file). All steps run in one transaction: a crash leaves the old
    version intact. A file with a newer version than we know is refused, not touched
    (``too_new``). ``apply(conn, version)``, if given,
    runs after each step's statements, for steps that need Python (rewriting data).
    """
    target = len(migrations)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT"
        )
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        current = int(row[0]) if row else 0
        if current > target:
            raise too_new(
                f"{what} has schema version {current}, but this software knows only up to "
                f"{target}; install the newer station software (the file was not changed)"
            )
        for version in range(current, target):
            for statement in migrations[version]:
                conn.execute(statement)
            if apply is not None:
                apply(conn, version + 1)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(target),),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return target


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

    @classmethod
    def _open_in(
        cls,
        data_dir: Path,
        filename: str,
        *,
        migrations: Sequence[Sequence[str]],
        too_new: type[StationError],
        clock: Clock,
        quick_check: bool = False,
    ) -> Self:
        """Open (or create) ``filename`` in ``data_dir`` and bring its schema forward.

        Raises the owner's ``corrupt`` error for a damaged file (left untouched), ``too_new``
        for a file from newer software, and its ``error`` when ``data_dir`` does not exist (a
        missing mount must not silently get a fresh file).
        """
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise cls.error("the station data directory does not exist or is not a directory")
        path = data_dir / filename
        what = f"{cls.kind} {path}"
        conn = open_sqlite(
            path, what=what, error=cls.error, corrupt=cls.corrupt, quick_check=quick_check
        )
        try:
            migrate_schema(conn, migrations, what=what, too_new=too_new)
        except BaseException:
            conn.close()
            raise
        return cls(conn, path, clock)

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

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so a read-then-write never fails half-way
        # with SQLITE_BUSY; COMMIT returns only once the WAL is fsynced (synchronous=FULL).
        return self._tx("BEGIN IMMEDIATE")

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        # A read transaction gives multi-query reads one consistent snapshot.
        return self._tx("BEGIN")

    def _scrub_wal(self) -> bool:
        """Copy the WAL into the file and truncate it, so no old page version survives there.

        Must be called outside a transaction. False if another connection's read blocked it.
        """
        with self._lock:
            if self._conn is None:
                raise self.error(f"the {self.kind} is closed")
            for attempt in range(3):
                busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if busy == 0:
                    return True
                time.sleep(0.05 * (attempt + 1))
            return False

    def check_integrity(self) -> None:
        """Run ``PRAGMA integrity_check``; raise the owner's ``corrupt`` unless it is ok."""
        with self._lock:
            if self._conn is None:
                raise self.error(f"the {self.kind} is closed")
            check_sqlite_integrity(
                self._conn, what=f"{self.kind} {self._path}", corrupt=self.corrupt
            )

    def schema_version(self) -> int:
        """The schema version recorded in the file (:func:`migrate_schema`)."""
        with self._read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0])

    def pragmas(self) -> dict[str, object]:
        """The connection's durability and erasure settings, for the self-check and tests."""
        with self._lock:
            if self._conn is None:
                raise self.error(f"the {self.kind} is closed")
            return {
                name: self._conn.execute(f"PRAGMA {name}").fetchone()[0]
                for name in (
                    "journal_mode",
                    "synchronous",
                    "foreign_keys",
                    "secure_delete",
                    "temp_store",
                )
            }

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

"""PIN attempt counters that survive restarts and power cuts, and that strangers cannot use.

The rules (DESIGN.md "The lock, precisely"; issue 14, item 8):

- per staff id, whatever was typed: after 3 wrong PINs in a row each further attempt waits
  30 s, 60 s, 120 s, ... capped at 15 minutes; after 10 wrong PINs in a row the id is
  disabled until IT or an admin re-enables it. An id that is not enrolled is treated
  exactly alike, so the answers never reveal whether an id is enrolled;
- across the station, once 20 failures fell within the hour (whatever the ids), each next
  attempt must come at least :attr:`PinPolicy.station_spacing_seconds` (5 s) after the last
  failure. That is the whole station-wide effect: made-up ids cost the enrolled staff at most
  those few seconds, never the hour the old shared cap took from everyone, while guessing
  across many ids is held to one try per few seconds (and each enrolled id to 10 tries);
- nothing typed is stored: every id is kept as an HMAC-SHA256 under a key derived (HKDF)
  from the device secret, so the file alone says nothing about who tried, nor does it hold
  a CPR number someone typed as an id (the key is not in the file; on a Pi the secret comes
  from the OTP). Rows prune themselves: a success or IT's re-enable deletes the id's row,
  an id's failures are forgotten after :attr:`PinPolicy.forget_after_seconds` unless it is
  disabled, failure times after the window. ``secure_delete`` zeroes what is deleted, and a
  counter file of the old format (ids in clear) is converted and vacuumed when opened.

Ordering is the point: :meth:`PinGuard.begin` records the attempt *as a failure* and commits
it (WAL, ``synchronous=FULL``) *before* the caller runs the expensive KDF; only
:meth:`PinGuard.succeeded` takes it back. Cutting the power, or killing the process, during
verification therefore costs the attacker an attempt instead of giving one away.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from station.core.clock import Clock
from station.i18n import N_, LazyText
from station.keys.errors import VaultError

__all__ = [
    "PendingAttempt",
    "PinGuard",
    "PinGuardError",
    "PinPolicy",
    "PinStatus",
    "SlotDisabled",
    "Throttled",
    "WrongPin",
    "pin_id_key",
    "wait_text",
]

_SCHEMA_VERSION = 2
#: HKDF ``info`` for the key staff ids are hashed under (domain separation from the keyslots).
_ID_KEY_INFO = b"kontaktstation pin-attempts staff id v1"


def wait_text(seconds: float) -> LazyText:
    """A wait as staff read it: "30 seconds", "1 minute", "15 minutes" (rounded up)."""
    whole = max(1, math.ceil(seconds))
    if whole <= 90:
        return LazyText("1 second") if whole == 1 else LazyText("{n} seconds", n=whole)
    minutes = math.ceil(whole / 60)
    return LazyText("1 minute") if minutes == 1 else LazyText("{n} minutes", n=minutes)


class WrongPin(VaultError):
    """The PIN did not open the slot (or the staff id is unknown: the same error on purpose)."""

    default_user_message = N_("Wrong PIN.")

    def __init__(self, retry_after_seconds: float = 0.0) -> None:
        self.retry_after_seconds = retry_after_seconds
        user: str | LazyText = self.default_user_message
        if retry_after_seconds > 0:
            user = LazyText("Wrong PIN. Try again in {wait}.", wait=wait_text(retry_after_seconds))
        super().__init__("wrong PIN or unknown staff id", user)


class Throttled(VaultError):
    """Too many wrong PINs recently; the next attempt is allowed after a wait."""

    def __init__(self, retry_after_seconds: float, *, station_wide: bool = False) -> None:
        self.retry_after_seconds = retry_after_seconds
        self.station_wide = station_wide
        scope = "station-wide failure cap reached" if station_wide else "back-off after failures"
        super().__init__(
            f"PIN attempt refused: {scope}; retry in {math.ceil(retry_after_seconds)} s",
            LazyText(
                "Too many wrong attempts. Try again in {wait}.",
                wait=wait_text(retry_after_seconds),
            ),
        )


class SlotDisabled(VaultError):
    """Ten wrong PINs in a row: the slot stays shut until IT or an admin re-enables it."""

    default_user_message = N_(
        "Your PIN is blocked after too many wrong attempts. Contact your manager or IT."
    )

    def __init__(self) -> None:
        super().__init__("PIN slot disabled after too many consecutive failures")


class PinGuardError(VaultError):
    """The attempt counters cannot be read or written; unlocking fails closed."""

    default_user_message = N_("The PIN check does not work right now. Contact IT.")


@dataclass(frozen=True, slots=True)
class PinPolicy:
    """The numbers behind the rules; the defaults are the product's."""

    #: Wrong PINs in a row that cost nothing but the KDF time.
    free_failures: int = 3
    base_delay_seconds: float = 30.0
    max_delay_seconds: float = 15 * 60.0
    disable_after: int = 10
    #: Failures (any ids) per window after which attempts are spaced station-wide.
    station_failures_per_window: int = 20
    station_window_seconds: float = 3600.0
    #: The spacing then: the most a stranger's failures can ever delay anyone else.
    station_spacing_seconds: float = 5.0
    #: An id's failures (short of disabling it) are forgotten after this long.
    forget_after_seconds: float = 30 * 24 * 3600.0

    def backoff_seconds(self, consecutive_failures: int) -> float:
        """The wait before the next attempt after ``consecutive_failures`` wrong PINs."""
        if consecutive_failures < self.free_failures:
            return 0.0
        # Exponent capped so a huge count cannot build an enormous integer.
        doublings = min(consecutive_failures - self.free_failures, 32)
        return min(self.base_delay_seconds * float(1 << doublings), self.max_delay_seconds)


@dataclass(frozen=True, slots=True)
class PendingAttempt:
    """An attempt already counted as a failure; hand it back on success or rejection."""

    #: The id's keyed hash (never the typed text).
    staff_key: str
    failure_id: int


@dataclass(frozen=True, slots=True)
class PinStatus:
    """What the counters say about one staff id right now."""

    consecutive_failures: int
    retry_after_seconds: float
    disabled: bool


def pin_id_key(device_secret: bytes) -> bytes:
    """The key staff ids are hashed under in the counter file (from the device secret)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_ID_KEY_INFO).derive(
        bytes(device_secret)
    )


class PinGuard:
    """Counts PIN failures per staff id and station-wide in its own small SQLite file."""

    def __init__(
        self,
        path: Path,
        clock: Clock,
        policy: PinPolicy | None = None,
        *,
        device_secret: bytes,
    ) -> None:
        self._clock = clock
        self.policy = policy or PinPolicy()
        self._id_key = pin_id_key(device_secret)
        self._lock = threading.Lock()
        try:
            # Create it 0600 ourselves: SQLite would use the umask, and its -wal/-shm files
            # copy the main file's mode.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise PinGuardError(f"PIN counter file {path.name} refused WAL mode ({mode})")
            self._db.execute("PRAGMA synchronous=FULL")
            # What is deleted (a pruned row, a converted id) is zeroed in the file.
            self._db.execute("PRAGMA secure_delete=ON")
            self._create_schema()
        except (sqlite3.Error, OSError) as exc:
            raise PinGuardError(f"cannot open the PIN counter file {path.name}: {exc}") from None

    def _create_schema(self) -> None:
        converted = False
        with self._transaction():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, 1, _SCHEMA_VERSION):
                raise PinGuardError(f"PIN counter file has unknown schema version {version}")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS pin_counters ("
                " staff_key TEXT PRIMARY KEY,"
                " consecutive_failures INTEGER NOT NULL,"
                " last_failure_at REAL NOT NULL)"
            )
            # One row per failure (including attempts still being verified): the window's
            # count for the heartbeat and the station-wide spacing. Rows older than the
            # window are pruned.
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS pin_failures ("
                " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " at REAL NOT NULL)"
            )
            if version == 1:
                converted = True
                self._convert_from_v1()
            self._db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        if converted:
            # The old ids were in clear: rebuild the file and empty the WAL so no page keeps them.
            try:
                self._db.execute("VACUUM")
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                raise PinGuardError(f"PIN counter file could not be converted: {exc}") from None

    def _convert_from_v1(self) -> None:
        """Version 1 kept plain ids in clear (odd ones as unkeyed hashes): key them all."""
        rows = self._db.execute(
            "SELECT staff_key, consecutive_failures, last_failure_at FROM pin_counters"
        ).fetchall()
        self._db.execute("DELETE FROM pin_counters")
        for key, consecutive, last in rows:
            self._db.execute(
                "INSERT OR REPLACE INTO pin_counters VALUES (?, ?, ?)",
                (self._staff_key(str(key)), consecutive, last),
            )

    def _staff_key(self, staff_id: str) -> str:
        """An id as stored: its HMAC under the device-secret-derived key."""
        data = staff_id.encode("utf-8", "surrogatepass")
        return "k:" + hmac.new(self._id_key, data, hashlib.sha256).hexdigest()

    # -- plumbing

    class _Tx:
        def __init__(self, guard: PinGuard) -> None:
            self._guard = guard

        def __enter__(self) -> sqlite3.Connection:
            self._guard._lock.acquire()
            try:
                # IMMEDIATE: take the write lock now, so two processes cannot both read
                # "2 failures" and both be let through.
                self._guard._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                self._guard._lock.release()
                raise PinGuardError(f"PIN counter file is unusable: {exc}") from None
            return self._guard._db

        def __exit__(
            self,
            exc_type: type[BaseException] | None,
            exc: BaseException | None,
            tb: TracebackType | None,
        ) -> None:
            db = self._guard._db
            try:
                if exc_type is None:
                    db.execute("COMMIT")
                else:
                    db.execute("ROLLBACK")
            except sqlite3.Error as err:
                if exc_type is None:
                    raise PinGuardError(f"PIN counter file is unusable: {err}") from None
            finally:
                self._guard._lock.release()

    def _transaction(self) -> PinGuard._Tx:
        return PinGuard._Tx(self)

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _counter(self, db: sqlite3.Connection, key: str) -> tuple[int, float]:
        row = db.execute(
            "SELECT consecutive_failures, last_failure_at FROM pin_counters WHERE staff_key = ?",
            (key,),
        ).fetchone()
        return (int(row[0]), float(row[1])) if row else (0, 0.0)

    def _prune(self, db: sqlite3.Connection, now: float) -> None:
        window = self.policy.station_window_seconds
        db.execute("DELETE FROM pin_failures WHERE at <= ?", (now - window,))
        db.execute(
            "DELETE FROM pin_counters WHERE consecutive_failures < ? AND last_failure_at <= ?",
            (self.policy.disable_after, now - self.policy.forget_after_seconds),
        )

    def _station_wait(self, db: sqlite3.Connection, now: float) -> float:
        """The station-wide spacing once the window holds too many failures (else 0)."""
        self._prune(db, now)
        count, latest = db.execute("SELECT count(*), max(at) FROM pin_failures").fetchone()
        if count < self.policy.station_failures_per_window:
            return 0.0
        spacing = self.policy.station_spacing_seconds
        # A clock set backwards must not stretch the wait beyond the spacing.
        return max(0.0, min(float(latest) + spacing - now, spacing))

    def _id_wait(self, consecutive: int, last_failure_at: float, now: float) -> float:
        wait = self.policy.backoff_seconds(consecutive)
        return max(0.0, last_failure_at + wait - now) if wait else 0.0

    # -- the protocol: begin, then succeeded or rejected

    def begin(self, staff_id: str) -> PendingAttempt:
        """Check the rules and durably count this attempt as a failure, before verification.

        Raises :class:`SlotDisabled` or :class:`Throttled` when the attempt is not allowed
        (nothing is counted then).
        """
        key = self._staff_key(staff_id)
        failure_id: int | None = None
        refusal: VaultError | None = None
        try:
            with self._transaction() as db:
                now = self._now()
                consecutive, last = self._counter(db, key)
                if last > now:
                    # The clock went backwards (a Pi has no RTC): restart the wait from now
                    # rather than wait for the clock to catch up.
                    db.execute(
                        "UPDATE pin_counters SET last_failure_at = ? WHERE staff_key = ?",
                        (now, key),
                    )
                    last = now
                if consecutive >= self.policy.disable_after:
                    refusal = SlotDisabled()
                elif (wait := self._id_wait(consecutive, last, now)) > 0:
                    refusal = Throttled(wait)
                elif (station_wait := self._station_wait(db, now)) > 0:
                    refusal = Throttled(station_wait, station_wide=True)
                if refusal is None:
                    failure_id = db.execute(
                        "INSERT INTO pin_failures (at) VALUES (?)", (now,)
                    ).lastrowid
                    db.execute(
                        "INSERT INTO pin_counters (staff_key, consecutive_failures,"
                        " last_failure_at) VALUES (?, 1, ?) ON CONFLICT (staff_key) DO UPDATE"
                        " SET consecutive_failures = consecutive_failures + 1,"
                        " last_failure_at = excluded.last_failure_at",
                        (key, now),
                    )
        except sqlite3.Error as exc:
            raise PinGuardError(f"PIN counter file is unusable: {exc}") from None
        # Raised after COMMIT so the clock fix above is kept.
        if refusal is not None:
            raise refusal
        assert failure_id is not None
        return PendingAttempt(key, failure_id)

    def succeeded(self, attempt: PendingAttempt) -> None:
        """The PIN was right: take the provisional failure back and forget the id's count."""
        try:
            with self._transaction() as db:
                db.execute("DELETE FROM pin_failures WHERE id = ?", (attempt.failure_id,))
                db.execute("DELETE FROM pin_counters WHERE staff_key = ?", (attempt.staff_key,))
        except sqlite3.Error as exc:
            raise PinGuardError(f"PIN counter file is unusable: {exc}") from None

    def rejected(self, attempt: PendingAttempt) -> VaultError:
        """The PIN was wrong (already counted): the error to raise, :class:`WrongPin` or
        :class:`SlotDisabled` when this was the last allowed attempt."""
        try:
            with self._transaction() as db:
                now = self._now()
                consecutive, last = self._counter(db, attempt.staff_key)
                station_wait = self._station_wait(db, now)
        except sqlite3.Error as exc:
            raise PinGuardError(f"PIN counter file is unusable: {exc}") from None
        if consecutive >= self.policy.disable_after:
            return SlotDisabled()
        return WrongPin(max(self._id_wait(consecutive, last, now), station_wait))

    # -- for IT and the UI

    def status(self, staff_id: str) -> PinStatus:
        """Counters for one id (the UI may show the wait before asking for a PIN)."""
        try:
            with self._transaction() as db:
                now = self._now()
                consecutive, last = self._counter(db, self._staff_key(staff_id))
                wait = max(
                    self._id_wait(consecutive, min(last, now), now), self._station_wait(db, now)
                )
        except sqlite3.Error as exc:
            raise PinGuardError(f"PIN counter file is unusable: {exc}") from None
        return PinStatus(
            consecutive_failures=consecutive,
            retry_after_seconds=wait,
            disabled=consecutive >= self.policy.disable_after,
        )

    def station_failures(self) -> int:
        """Failures (any id) counted in the current window, for the heartbeat."""
        try:
            with self._transaction() as db:
                self._prune(db, self._now())
                return int(db.execute("SELECT count(*) FROM pin_failures").fetchone()[0])
        except sqlite3.Error as exc:
            raise PinGuardError(f"PIN counter file is unusable: {exc}") from None

    def reenable(self, staff_id: str) -> None:
        """IT or an admin re-enables a disabled (or backed-off) id: its count starts over."""
        try:
            with self._transaction() as db:
                db.execute(
                    "DELETE FROM pin_counters WHERE staff_key = ?", (self._staff_key(staff_id),)
                )
        except sqlite3.Error as exc:
            raise PinGuardError(f"PIN counter file is unusable: {exc}") from None

    def close(self) -> None:
        """Close the SQLite connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> PinGuard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PinGuard(policy={self.policy!r})"

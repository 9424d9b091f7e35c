"""The audit log: append-only, hash-chained, and free of personal data.

Every access is recorded (DESIGN.md, "The lock"): unlock, lock, each resident record opened,
call start and end, export, remote commands. An entry holds a sequence number, the time (from
the injected clock, ISO 8601 UTC), a pseudonymous staff id, the action, a pseudonymous
resident id and an outcome code, chained by ``hash = SHA-256(canonical(seq, time, staff,
action, resident, outcome, prev_hash))``. It never holds names, CPR numbers or health
content: :meth:`AuditLog.record` refuses anything that does not look like a pseudonym or a
short code, and never quotes what it refused.

Its own file, ``audit.db`` beside ``station.db``, rather than a table in the store, because
its life is different:

- the store is purged daily and may be crypto-wiped, or found damaged and left for IT; the
  record of who accessed what must outlive all three, and auditing the lock, unlock and the
  remote commands must go on while ``station.db`` is unusable;
- purging's ``secure_delete`` and WAL truncation never touch the evidence;
- the file can be copied off or exported on its own.

The cost, two fsyncs when one action both writes a record and audits it, is small (below
1 ms each here) and the two were never atomic anyway: an access is audited when it happens.

Detection: :meth:`AuditLog.verify` recomputes the chain and finds an edited entry (its hash
no longer matches), a deleted one (a gap in ``seq`` or a broken ``prev_hash``) and reordered
ones, reporting the first bad ``seq``. Removing entries from the *end* leaves a valid, shorter
chain; only a head recorded elsewhere (:meth:`AuditLog.head`, sent off the station in the
heartbeat) reveals it: ``verify(expected_head=...)``. Triggers refuse UPDATE and DELETE, so
no bug in this program can rewrite the log; someone with the file can, and the chain and the
anchored head are what catch them.

Threads: like the store, one connection per instance, calls serialised by an internal lock.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Final

from station.core.clock import Clock
from station.core.ids import is_opaque_id
from station.core.ports import AuditAction
from station.errors import StationError
from station.i18n import N_
from station.storage.datadir import DataDir
from station.storage.sqlite import SqliteFile

__all__ = [
    "AUDIT_ACTIONS",
    "AUDIT_DB_FILENAME",
    "GENESIS_HASH",
    "AuditCorrupt",
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "AuditRejected",
    "AuditReport",
    "AuditSchemaTooNew",
    "entry_hash",
]

AUDIT_DB_FILENAME: Final = DataDir.AUDIT
#: ``prev_hash`` of the first entry.
GENESIS_HASH: Final = "0" * 64
#: Part of every hashed entry, so a hash from another log format can never match.
_HASH_DOMAIN: Final = "kontaktstation-audit-v1"

#: What may be audited: every ``AuditAction`` of the domain, and the station's own actions
#: below. Clear text in the log, so a fixed set.
AUDIT_ACTIONS: Final = frozenset({action.value for action in AuditAction}) | frozenset(
    {
        # The vault's keyslots.
        "keyslot_added",
        "keyslot_removed",
        "keyslot_disabled",
        # Records.
        "note_written",
        "consultation_documented",
        "missed_acknowledged",
        "purge",
        # IT and the daemon.
        "remote_lock",
        "remote_revoke_staff",
        "remote_crypto_wipe",
        "remote_command_refused",
        "remote_decommission",
        "station_started",
        # Provisioning.
        "config_applied",
        "staff_enrollment",
    }
)

# A pseudonym is an opaque id (station.core.ids): never a space, so never "Anna Hansen",
# and never a CPR-like run of digits.
_OUTCOME_RE: Final = re.compile(r"[a-z][a-z_]{0,31}", re.ASCII)

_SCHEMA: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE audit_log (
            seq INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            staff TEXT,
            action TEXT NOT NULL,
            resident TEXT,
            outcome TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        ) STRICT""",
        # Append-only against our own bugs; tampering by hand is for the chain to catch.
        """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
        """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    ),
)


# Each error is its own class so callers and the API map them by type; alike by design.
class AuditError(StationError):
    """Base of the audit log's errors."""

    default_user_message = N_("The action could not be logged. Contact IT.")


class AuditRejected(AuditError):
    """An entry was refused: a field could hold personal data or is not a known code."""

    default_user_message = N_(
        "The action could not be logged, because the information was invalid."
    )


class AuditCorrupt(AuditError):
    """The audit file is damaged; it is left untouched for IT."""

    default_user_message = N_("The station's log is damaged. The station must be checked by IT.")


class AuditSchemaTooNew(AuditError):
    """The audit file was written by a newer version of the station software."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit entry, exactly as hashed."""

    seq: int
    #: ISO 8601 UTC with microseconds, e.g. ``2026-11-25T09:00:00.000000+00:00``.
    time: str
    staff: str | None
    action: str
    resident: str | None
    outcome: str
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The result of :meth:`AuditLog.verify`."""

    ok: bool
    #: How many entries were read.
    checked: int
    #: The first entry that is missing, edited or out of place; None when ``ok``.
    first_bad_seq: int | None
    #: What is wrong, in English, for IT; None when ``ok``.
    problem: str | None
    #: The last stored entry's (seq, hash), ``(0, GENESIS_HASH)`` for an empty log.
    head: tuple[int, str]


def entry_hash(
    seq: int,
    time: str,
    staff: str | None,
    action: str,
    resident: str | None,
    outcome: str,
    prev_hash: str,
) -> str:
    """SHA-256 (hex) over the canonical encoding of one entry.

    The encoding is a compact JSON array in fixed order, ASCII only: with nothing but
    integers, ASCII strings and null in it there is exactly one encoding per entry, and
    ``null`` and ``"null"`` differ.
    """
    canonical = json.dumps(
        [_HASH_DOMAIN, seq, time, staff, action, resident, outcome, prev_hash],
        ensure_ascii=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _check_pseudonym(value: object, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not is_opaque_id(value):
        # Never quote it: a value refused here may be a name or a CPR number.
        raise AuditRejected(
            f"{what} must be a pseudonym (1-64 of A-Z, a-z, 0-9, '.', '_', '-'; "
            "no spaces, no CPR-like digit run)"
        )
    return str(value)


class AuditLog(SqliteFile):
    """The station's audit log (see module docs). Implements the ``AuditSink`` port."""

    kind = "audit log"
    error = AuditError
    corrupt = AuditCorrupt

    @classmethod
    def open(cls, data_dir: Path, *, clock: Clock, filename: str = AUDIT_DB_FILENAME) -> AuditLog:
        """Open (or create) the audit log in ``data_dir``.

        Raises :class:`AuditCorrupt` for a damaged file (left untouched). The file check is
        SQLite's ``quick_check``: the log only grows, and the chain is verified on its own.
        """
        return cls._open_in(
            data_dir,
            filename,
            migrations=_SCHEMA,
            too_new=AuditSchemaTooNew,
            clock=clock,
            quick_check=True,
        )

    # ------------------------------------------------------------------------ writing

    def record(self, action: str, *, staff: str | None, resident: str | None, outcome: str) -> None:
        """Append one entry; returns once it is on disk. The ``AuditSink`` port."""
        self.append(action, staff=staff, resident=resident, outcome=outcome)

    def append(
        self, action: str, *, staff: str | None, resident: str | None, outcome: str
    ) -> AuditEntry:
        """Like :meth:`record`, returning the entry written (for tests and export)."""
        if not isinstance(action, str) or action not in AUDIT_ACTIONS:
            raise AuditRejected("unknown audit action (see station.storage.audit.AUDIT_ACTIONS)")
        # An AuditAction member is a str subclass; store and hash the plain value.
        action = str(action)
        staff = _check_pseudonym(staff, "staff id")
        resident = _check_pseudonym(resident, "resident id")
        if not isinstance(outcome, str) or not _OUTCOME_RE.fullmatch(outcome):
            raise AuditRejected("outcome must be a short code (1-32 of a-z and '_')")
        outcome = str(outcome)
        now = self._clock.now()
        if now.tzinfo is None or now.utcoffset() is None:
            raise AuditError("the clock gave a time without a timezone")
        time = now.astimezone(UTC).isoformat(timespec="microseconds")
        with self._write() as conn:
            row = conn.execute(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq, prev_hash = (row[0] + 1, row[1]) if row else (1, GENESIS_HASH)
            digest = entry_hash(seq, time, staff, action, resident, outcome, prev_hash)
            conn.execute(
                "INSERT INTO audit_log "
                "(seq, time, staff, action, resident, outcome, prev_hash, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, time, staff, action, resident, outcome, prev_hash, digest),
            )
        return AuditEntry(seq, time, staff, action, resident, outcome, prev_hash, digest)

    # ------------------------------------------------------------------------ reading

    def head(self) -> tuple[int, str]:
        """The last entry's ``(seq, hash)``: anchor it off the station (heartbeat)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)

    def chain_hash_at(self, seq: int) -> str:
        """The hash of the ``seq``-th entry *recomputed* from the start of the chain.

        What the station proves an anchored head with: the stored hash column is not trusted
        (someone with the file may have kept it while rewriting earlier entries). Every link
        is recomputed from the entries' content in order, so a deleted, edited or reordered
        entry anywhere up to ``seq`` gives a different hash. ``GENESIS_HASH`` (which no entry
        can have) when the log has fewer than ``seq`` entries.
        """
        if seq <= 0:
            return GENESIS_HASH
        digest = GENESIS_HASH
        count = 0
        with self._read() as conn:
            rows = conn.execute(
                "SELECT seq, time, staff, action, resident, outcome FROM audit_log "
                "ORDER BY seq LIMIT ?",
                (seq,),
            )
            for row_seq, time, staff, action, resident, outcome in rows:
                count += 1
                # The position, not the stored number: a gap left by a deletion changes it.
                number = count if row_seq == count else -int(row_seq)
                digest = entry_hash(number, time, staff, action, resident, outcome, digest)
        return digest if count == seq else GENESIS_HASH

    def entries(self, *, after_seq: int = 0, limit: int | None = None) -> list[AuditEntry]:
        """Entries with ``seq > after_seq`` in order (for export to IT)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT seq, time, staff, action, resident, outcome, prev_hash, hash "
                "FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, -1 if limit is None else limit),
            ).fetchall()
        return [AuditEntry(*row) for row in rows]

    def verify(self, expected_head: tuple[int, str] | None = None) -> AuditReport:
        """Recompute the chain and report the first entry that is missing, edited or moved.

        ``expected_head`` is a ``(seq, hash)`` recorded earlier (off the station): the log
        must still contain that entry unchanged, which also reveals entries cut off the end.
        """
        checked = 0
        expected_seq, prev_hash = 1, GENESIS_HASH
        anchor_hash: str | None = None
        bad: tuple[int, str] | None = None
        with self._read() as conn:
            rows = conn.execute(
                "SELECT seq, time, staff, action, resident, outcome, prev_hash, hash "
                "FROM audit_log ORDER BY seq"
            )
            for row in rows:
                checked += 1
                seq, time, staff, action, resident, outcome, stored_prev, stored_hash = row
                if seq != expected_seq:
                    bad = (expected_seq, f"entry {expected_seq} is missing (next stored: {seq})")
                    break
                if stored_prev != prev_hash:
                    bad = (seq, f"entry {seq} does not chain to entry {seq - 1} (deleted or moved)")
                    break
                if entry_hash(seq, time, staff, action, resident, outcome, prev_hash) != (
                    stored_hash
                ):
                    bad = (seq, f"entry {seq} does not match its hash (edited)")
                    break
                if expected_head is not None and seq == expected_head[0]:
                    anchor_hash = stored_hash
                prev_hash = stored_hash
                expected_seq += 1
            last = conn.execute(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        head = (int(last[0]), str(last[1])) if last else (0, GENESIS_HASH)
        if bad is None and expected_head is not None:
            anchor_seq, anchored = expected_head
            if anchor_seq == 0:
                if anchored != GENESIS_HASH:
                    bad = (1, "the anchored head is not a valid empty-log head")
            elif anchor_seq > head[0]:
                bad = (
                    head[0] + 1,
                    f"the log ends at entry {head[0]} but entry {anchor_seq} was anchored: "
                    "entries were removed from the end",
                )
            elif anchor_hash != anchored:
                bad = (
                    anchor_seq,
                    f"entry {anchor_seq} differs from the anchored head: "
                    "the log was rewritten up to there",
                )
        if bad is None:
            return AuditReport(True, checked, None, None, head)
        return AuditReport(False, checked, bad[0], bad[1], head)

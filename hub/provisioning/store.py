"""The provisioning tables (same SQL on SQLite and PostgreSQL) and their row types.

What the hub keeps about stations is operational metadata: keys, statuses, versions, the last
heartbeat (enums and counts by construction). The one piece of personal data is a staff
member's name next to their pseudonymous id (``prov_staff.display_name``), which never leaves
the hub: stations only ever see the id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from hub.db import Database, Row, Tx, ddl, dt

__all__ = [
    "COMMAND_COLUMNS",
    "STAFF_COLUMNS",
    "STATION_COLUMNS",
    "CommandRecord",
    "StaffRecord",
    "StationRecord",
    "command_from_row",
    "ensure_schema",
    "staff_from_row",
    "station_from_row",
]

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS prov_stations (
        station_id TEXT PRIMARY KEY,
        public_key {blob} UNIQUE,
        status TEXT NOT NULL,
        care_home_id TEXT,
        name TEXT,
        created_at TEXT NOT NULL,
        approved_at TEXT,
        first_config_at TEXT,
        last_seen_at TEXT,
        offline_at TEXT,
        last_counter BIGINT NOT NULL DEFAULT 0,
        last_digest {blob},
        clone_suspected INTEGER NOT NULL DEFAULT 0,
        enroll_code_hash {blob} UNIQUE,
        enroll_code_expires_at TEXT,
        code_failures INTEGER NOT NULL DEFAULT 0,
        code_failures_since TEXT,
        software_version TEXT,
        config_version INTEGER NOT NULL DEFAULT 0,
        config_rejected TEXT,
        published_version INTEGER NOT NULL DEFAULT 0,
        max_version INTEGER NOT NULL DEFAULT 0,
        heartbeat_json TEXT,
        audit_seq BIGINT,
        audit_hash TEXT,
        audit_alarm INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS prov_configs (
        station_id TEXT NOT NULL,
        revision INTEGER NOT NULL,
        version INTEGER NOT NULL,
        envelope_json TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        rollback_of INTEGER,
        created_at TEXT NOT NULL,
        PRIMARY KEY (station_id, revision)
    )""",
    """CREATE TABLE IF NOT EXISTS prov_layers (
        scope TEXT NOT NULL,
        scope_id TEXT NOT NULL,
        data_json TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (scope, scope_id)
    )""",
    """CREATE TABLE IF NOT EXISTS prov_commands (
        command_id TEXT PRIMARY KEY,
        station_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        staff_id TEXT,
        envelope_json TEXT NOT NULL,
        created_at TEXT NOT NULL,
        state TEXT NOT NULL,
        outcome TEXT,
        detail TEXT,
        acked_at TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS prov_commands_station ON prov_commands (station_id, state)",
    """CREATE TABLE IF NOT EXISTS prov_staff (
        staff_id TEXT PRIMARY KEY,
        station_id TEXT NOT NULL,
        display_name TEXT NOT NULL,
        rights_json TEXT NOT NULL,
        code_hash {blob} NOT NULL UNIQUE,
        code_expires_at TEXT NOT NULL,
        created_at TEXT NOT NULL,
        redeemed_at TEXT,
        revoked_at TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS prov_staff_station ON prov_staff (station_id)",
    # The history of each station's anchored audit heads (with the station's signature) and
    # of every alarm: a head that does not extend the last anchored one.
    """CREATE TABLE IF NOT EXISTS prov_audit_heads (
        station_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        hash TEXT NOT NULL,
        signature TEXT,
        received_at TEXT NOT NULL,
        verdict TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS prov_audit_heads_station ON prov_audit_heads "
    "(station_id, received_at)",
    """CREATE TABLE IF NOT EXISTS prov_admin_audit (
        seq {serial},
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        detail TEXT
    )""",
)


async def ensure_schema(db: Database) -> None:
    """Create the tables if missing (idempotent; safe for several instances at once)."""
    statements = [ddl(s, db.dialect) for s in _SCHEMA]

    def work(tx: Tx) -> None:
        if db.dialect == "postgres":
            # Several instances may start together: one creates, the others wait.
            tx.execute("SELECT pg_advisory_xact_lock(7402120)")
        for statement in statements:
            tx.execute(statement)

    await db.run(work)


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


STATION_COLUMNS: Final = (
    "station_id, public_key, status, care_home_id, name, created_at, approved_at, "
    "first_config_at, last_seen_at, offline_at, last_counter, clone_suspected, "
    "software_version, config_version, config_rejected, published_version, heartbeat_json, "
    "audit_seq, audit_hash, audit_alarm, enroll_code_expires_at"
)


@dataclass(frozen=True, slots=True)
class StationRecord:
    """One station as the hub knows it."""

    station_id: str
    public_key: bytes | None = field(repr=False)
    status: str
    care_home_id: str | None
    name: str | None
    created_at: datetime
    approved_at: datetime | None
    first_config_at: datetime | None
    last_seen_at: datetime | None
    offline_at: datetime | None
    last_counter: int
    clone_suspected: bool
    software_version: str | None
    config_version: int
    config_rejected: str | None
    published_version: int
    heartbeat_json: str | None = field(repr=False)
    audit_seq: int | None
    audit_hash: str | None
    audit_alarm: bool
    enroll_code_expires_at: datetime | None


def station_from_row(row: Row) -> StationRecord:
    """A :class:`StationRecord` from a row of :data:`STATION_COLUMNS`."""
    created = dt(row[5])
    assert created is not None
    return StationRecord(
        station_id=row[0],
        public_key=_bytes(row[1]),
        status=row[2],
        care_home_id=row[3],
        name=row[4],
        created_at=created,
        approved_at=dt(row[6]),
        first_config_at=dt(row[7]),
        last_seen_at=dt(row[8]),
        offline_at=dt(row[9]),
        last_counter=int(row[10]),
        clone_suspected=bool(row[11]),
        software_version=row[12],
        config_version=int(row[13]),
        config_rejected=row[14],
        published_version=int(row[15]),
        heartbeat_json=row[16],
        audit_seq=None if row[17] is None else int(row[17]),
        audit_hash=row[18],
        audit_alarm=bool(row[19]),
        enroll_code_expires_at=dt(row[20]),
    )


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """A remote command and how the station answered."""

    command_id: str
    station_id: str
    kind: str
    staff_id: str | None
    envelope_json: str = field(repr=False)
    created_at: datetime
    state: str
    outcome: str | None
    detail: str | None
    acked_at: datetime | None


@dataclass(frozen=True, slots=True)
class StaffRecord:
    """A staff enrollment: pseudonymous id, the name (hub only), code state."""

    staff_id: str
    station_id: str
    display_name: str = field(repr=False)
    rights: tuple[str, ...]
    code_expires_at: datetime
    created_at: datetime
    redeemed_at: datetime | None
    revoked_at: datetime | None


COMMAND_COLUMNS: Final = (
    "command_id, station_id, kind, staff_id, envelope_json, created_at, state, outcome, detail, "
    "acked_at"
)
STAFF_COLUMNS: Final = (
    "staff_id, station_id, display_name, rights_json, code_expires_at, created_at, redeemed_at, "
    "revoked_at"
)


def command_from_row(row: Row) -> CommandRecord:
    created = dt(row[5])
    assert created is not None
    return CommandRecord(
        command_id=row[0],
        station_id=row[1],
        kind=row[2],
        staff_id=row[3],
        envelope_json=row[4],
        created_at=created,
        state=row[6],
        outcome=row[7],
        detail=row[8],
        acked_at=dt(row[9]),
    )


def staff_from_row(row: Row) -> StaffRecord:
    expires, created = dt(row[4]), dt(row[5])
    assert expires is not None and created is not None
    return StaffRecord(
        staff_id=row[0],
        station_id=row[1],
        display_name=row[2],
        rights=tuple(json.loads(row[3])),
        code_expires_at=expires,
        created_at=created,
        redeemed_at=dt(row[6]),
        revoked_at=dt(row[7]),
    )

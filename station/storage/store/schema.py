"""The blind store's tables, their migrations, and a consultation row read back."""

from __future__ import annotations

from typing import Final

from station.core.model import ConsultationType
from station.storage.store.checks import dt
from station.storage.store.records import Consultation, ConsultationStatus

__all__ = ["CONSULTATION_COLUMNS", "MIGRATIONS", "STORE_SCHEMA_VERSION", "consultation_from_row"]

#: ``MIGRATIONS[i]`` upgrades schema version ``i`` to ``i + 1``. Personal data lives only in
#: the BLOB columns ``entry_fields.sealed``, ``notes.body``, ``sealed_events.blob`` (and
#: the wrapped key); every other column is clear, non-personal metadata. Enumerations are
#: checked in Python, not in CHECK constraints, so adding a value needs no table rebuild.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE clinics (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            provider_number TEXT NOT NULL,
            video_room TEXT NOT NULL
        ) STRICT""",
        """CREATE TABLE consultations (
            id TEXT PRIMARY KEY,
            clinic_id TEXT NOT NULL REFERENCES clinics (id),
            starts_at TEXT NOT NULL,
            ends_at TEXT NOT NULL,
            consultation_type TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            documented_at TEXT,
            CHECK (ends_at > starts_at)
        ) STRICT""",
        "CREATE INDEX consultations_by_start ON consultations (starts_at)",
        "CREATE INDEX consultations_by_clinic ON consultations (clinic_id)",
        "CREATE INDEX consultations_by_documented ON consultations (documented_at) "
        "WHERE documented_at IS NOT NULL",
        """CREATE TABLE consultation_keys (
            consultation_id TEXT PRIMARY KEY
                REFERENCES consultations (id) ON DELETE CASCADE,
            wrapped_key BLOB NOT NULL
        ) STRICT""",
        """CREATE TABLE queue_entries (
            id TEXT PRIMARY KEY,
            consultation_id TEXT NOT NULL REFERENCES consultations (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            status TEXT NOT NULL,
            UNIQUE (consultation_id, position)
        ) STRICT""",
        """CREATE TABLE entry_fields (
            entry_id TEXT NOT NULL REFERENCES queue_entries (id) ON DELETE CASCADE,
            field TEXT NOT NULL,
            sealed BLOB NOT NULL,
            PRIMARY KEY (entry_id, field)
        ) STRICT""",
        """CREATE TABLE notes (
            id TEXT PRIMARY KEY,
            consultation_id TEXT NOT NULL REFERENCES consultations (id) ON DELETE CASCADE,
            entry_id TEXT REFERENCES queue_entries (id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            body BLOB NOT NULL
        ) STRICT""",
        "CREATE INDEX notes_by_consultation ON notes (consultation_id, created_at)",
        "CREATE INDEX notes_by_entry ON notes (entry_id)",
        """CREATE TABLE sealed_events (
            id TEXT PRIMARY KEY,
            consultation_id TEXT NOT NULL REFERENCES consultations (id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            kind TEXT NOT NULL,
            blob BLOB NOT NULL
        ) STRICT""",
        "CREATE INDEX sealed_events_by_consultation ON sealed_events (consultation_id, created_at)",
    ),
    (
        # Booked slots that passed without a call (issue 17): clear metadata only (times, the
        # clinic), no reference to the consultation's rows so the record outlives its purge.
        """CREATE TABLE missed_slots (
            consultation_id TEXT PRIMARY KEY,
            clinic_id TEXT NOT NULL,
            starts_at TEXT NOT NULL,
            ends_at TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            acknowledged_at TEXT
        ) STRICT""",
        "CREATE INDEX missed_slots_by_start ON missed_slots (starts_at)",
    ),
)
STORE_SCHEMA_VERSION: Final = len(MIGRATIONS)

CONSULTATION_COLUMNS: Final = (
    "id, clinic_id, starts_at, ends_at, consultation_type, status, created_at, documented_at"
)


def consultation_from_row(
    row: tuple[str, str, str, str, str, str, str, str | None],
) -> Consultation:
    return Consultation(
        id=row[0],
        clinic_id=row[1],
        starts_at=dt(row[2]),
        ends_at=dt(row[3]),
        consultation_type=ConsultationType(row[4]),
        status=ConsultationStatus(row[5]),
        created_at=dt(row[6]),
        documented_at=dt(row[7]) if row[7] is not None else None,
    )

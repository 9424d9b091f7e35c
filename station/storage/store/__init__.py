"""The blind store: stationd's storage, which never holds plaintext personal data.

stationd owns this store but cannot read what matters in it. The staff UI (the only process
that holds the vault key) seals every personal field with :func:`station.keys.crypto.seal_field`
and hands the store sealed blobs plus clear, non-personal metadata: ids, times, statuses,
positions, GP clinic ids. The store orders, lists and purges by that metadata alone and
works with no key at all.

One SQLite file, ``station.db`` in the data directory:

- ``journal_mode=WAL`` and ``synchronous=FULL``: every public write method commits before it
  returns, and a commit is on disk (fsync of the WAL) when it returns, so an acknowledged
  write survives a crash or power cut.
- ``secure_delete=ON``: deleted content is overwritten with zeros in the file, and purging
  ends with ``wal_checkpoint(TRUNCATE)`` so no old page survives in the WAL either.
- ``foreign_keys=ON``, ``temp_store=MEMORY`` (no temporary files with our pages in /tmp).
- A ``meta`` table holds ``schema_version``; :data:`MIGRATIONS` upgrades older files forward,
  and a file from a newer version is refused (:class:`StoreSchemaTooNew`), never touched.
- Opening checks integrity first, on a read-only connection: a damaged file raises
  :class:`StoreCorrupt` and is left exactly as it was for IT.

Retention is crypto-erasure plus overwrite: :meth:`BlindStore.purge_documented` deletes a
consultation's wrapped data key (the only key that opens its fields) and every row of it.

Threads: a :class:`BlindStore` owns one SQLite connection, used by one process. Every method
takes an internal lock, so the instance may be called from any thread (stationd calls it via
``asyncio.to_thread``); calls are serialised, never concurrent. Do not share one instance
across ``fork()``; open a new one in the child. Several processes may open the same file
(SQLite's locking serialises writers), though stationd is meant to be its only writer.

Errors never quote the rejected value: an id typed wrongly may be a CPR number.
"""

from __future__ import annotations

# The package's face: its modules' names re-exported, so callers import from
# station.storage.store alone; these lists repeat the modules' by design.
from station.core.ids import is_opaque_id, new_id
from station.core.model import ConsultationType
from station.storage.store.attendance import MISSED_LOOKBACK, MissedSlot
from station.storage.store.checks import MAX_SEALED_BYTES
from station.storage.store.errors import (
    StoreConflict,
    StoreCorrupt,
    StoreError,
    StoreInvalid,
    StoreNotFound,
    StoreSchemaTooNew,
    StoreScrubIncomplete,
)
from station.storage.store.records import (
    ENTRY_FIELDS,
    SEALED_EVENT_KINDS,
    Clinic,
    Consultation,
    ConsultationStatus,
    Note,
    QueueEntry,
    SealedEvent,
    UpcomingConsultation,
)
from station.storage.store.repository import (
    DB_FILENAME,
    MAX_ENTRIES_PER_CONSULTATION,
    BlindStore,
)
from station.storage.store.retention import DEFAULT_RETENTION
from station.storage.store.schema import MIGRATIONS, STORE_SCHEMA_VERSION

__all__ = [
    "DB_FILENAME",
    "DEFAULT_RETENTION",
    "ENTRY_FIELDS",
    "MAX_ENTRIES_PER_CONSULTATION",
    "MAX_SEALED_BYTES",
    "MIGRATIONS",
    "MISSED_LOOKBACK",
    "SEALED_EVENT_KINDS",
    "STORE_SCHEMA_VERSION",
    "BlindStore",
    "Clinic",
    "Consultation",
    "ConsultationStatus",
    "ConsultationType",
    "MissedSlot",
    "Note",
    "QueueEntry",
    "SealedEvent",
    "StoreConflict",
    "StoreCorrupt",
    "StoreError",
    "StoreInvalid",
    "StoreNotFound",
    "StoreSchemaTooNew",
    "StoreScrubIncomplete",
    "UpcomingConsultation",
    "is_opaque_id",
    "new_id",
]

"""What leaves the station, and when: the blind store's retention (crypto-erasure + overwrite).

A consultation goes a retention after it is documented (default 24 h), or after the slot of
a cancelled one: its wrapped data key first (without it no sealed field of it opens, wherever
a copy might linger), then every row of it, in one transaction; ``secure_delete`` zeroes the
freed content and a WAL checkpoint leaves no old page behind. :class:`Retention` is the part
of :class:`~station.storage.store.repository.BlindStore` that does it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Final

from station.storage.sqlite import SqliteFile
from station.storage.store.checks import ts
from station.storage.store.errors import StoreInvalid, StoreScrubIncomplete
from station.storage.store.records import ConsultationStatus

__all__ = ["DEFAULT_RETENTION", "Retention"]

#: How long a documented consultation's data stays on the station (DESIGN.md: default 24 h).
DEFAULT_RETENTION: Final = timedelta(hours=24)


class Retention(SqliteFile):
    """The store's purge by retention (see the module docs)."""

    def due_for_purge(
        self,
        now: datetime,
        retention: timedelta = DEFAULT_RETENTION,
        *,
        keep: Collection[str] = (),
    ) -> list[str]:
        """The consultations :meth:`purge_documented` would remove now (ids; reads only)."""
        cutoff = self._purge_cutoff(now, retention)
        with self._read() as conn:
            return self._due_ids(conn, cutoff, frozenset(keep))

    @staticmethod
    def _purge_cutoff(now: datetime, retention: timedelta) -> str:
        if not isinstance(retention, timedelta) or retention < timedelta(0):
            raise StoreInvalid("retention must be a non-negative timedelta")
        ts(now, "now")
        return ts(now - retention, "purge cutoff")

    @staticmethod
    def _due_ids(conn: sqlite3.Connection, cutoff: str, kept: frozenset[str]) -> list[str]:
        # The retention rule, in one place: documented ``retention`` ago, or cancelled and
        # its slot over ``retention`` ago; never one in ``kept``.
        rows = conn.execute(
            "SELECT id FROM consultations "
            "WHERE (documented_at IS NOT NULL AND documented_at <= ?) "
            "OR (status = ? AND ends_at <= ?)",
            (cutoff, ConsultationStatus.CANCELLED.value, cutoff),
        )
        return [row[0] for row in rows if row[0] not in kept]

    def purge_documented(
        self,
        now: datetime,
        retention: timedelta = DEFAULT_RETENTION,
        *,
        keep: Collection[str] = (),
    ) -> int:
        """Remove, unrecoverably, every consultation documented at least ``retention`` ago.

        A cancelled consultation goes by the same rule, counted from the end of its slot:
        it will never be documented, and the station is not where its data lives on.

        ``keep`` names consultations to leave alone however old (the export outbox passes
        those whose note has not reached the care record yet).

        The wrapped data key goes first (crypto-erasure: without it no sealed field of the
        consultation can be opened, wherever a copy might linger), then every row of the
        consultation, in one transaction. ``secure_delete`` zeroes the freed content in the
        file, and a ``wal_checkpoint(TRUNCATE)`` leaves no old page in the WAL. Returns how
        many consultations were purged; raises :class:`StoreScrubIncomplete` if another
        connection's open read kept the WAL from being truncated (the rows are gone; the
        next purge finishes the scrub).
        """
        cutoff = self._purge_cutoff(now, retention)
        with self._write() as conn:
            ids = self._due_ids(conn, cutoff, frozenset(keep))
            for consultation_id in ids:
                params = (consultation_id,)
                conn.execute("DELETE FROM consultation_keys WHERE consultation_id = ?", params)
                conn.execute(
                    "DELETE FROM entry_fields WHERE entry_id IN "
                    "(SELECT id FROM queue_entries WHERE consultation_id = ?)",
                    params,
                )
                conn.execute("DELETE FROM notes WHERE consultation_id = ?", params)
                conn.execute("DELETE FROM sealed_events WHERE consultation_id = ?", params)
                conn.execute("DELETE FROM queue_entries WHERE consultation_id = ?", params)
                conn.execute("DELETE FROM consultations WHERE id = ?", params)
        if ids and not self._scrub_wal():
            raise StoreScrubIncomplete(
                f"purged {len(ids)} consultation(s), but another connection's open read kept "
                "the WAL from being truncated; old pages stay there until the next purge",
                purged=len(ids),
            )
        return len(ids)

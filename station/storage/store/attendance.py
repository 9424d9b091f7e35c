"""Whether booked consultations were held: slots that passed without a call, and calls that
ended without a note (issue 17). Counts and clear metadata only: times and clinic ids.

:class:`Attendance` is the part of :class:`~station.storage.store.repository.BlindStore` that
keeps them: a booked slot whose end passed while it was still ``booked`` (no call was made)
is recorded once in ``missed_slots``, which outlives the consultation's purge, so the count
IT sees in the heartbeat does not drop when staff tidy up. Staff see the ones nobody has
acknowledged yet at their next log-in.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from station.storage.sqlite import SqliteFile
from station.storage.store.checks import dt, ts
from station.storage.store.records import ConsultationStatus

__all__ = ["MISSED_LOOKBACK", "Attendance", "MissedSlot"]

#: A booked slot that ended longer ago than this is not recorded as missed any more (a
#: station switched off for weeks does not come back with a flood of old slots).
MISSED_LOOKBACK: Final = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class MissedSlot:
    """A booked consultation whose slot passed without a call: its times and clinic."""

    consultation_id: str
    clinic_id: str
    clinic_name: str | None
    starts_at: datetime
    ends_at: datetime
    recorded_at: datetime
    acknowledged_at: datetime | None


class Attendance(SqliteFile):
    """Missed slots and undocumented calls (see the module docs)."""

    def record_missed(self, now: datetime, *, keep: Collection[str] = ()) -> list[MissedSlot]:
        """Record every booked consultation whose slot ended by ``now`` without a call (once
        each, within :data:`MISSED_LOOKBACK`); the ones recorded now. ``keep`` names
        consultations not to record (the one being called right now)."""
        cutoff, oldest = ts(now, "now"), ts(now - MISSED_LOOKBACK, "lookback")
        # Read first: stationd asks every second, and a write transaction for nothing would
        # only wear the SD card.
        with self._read() as conn:
            rows = conn.execute(
                "SELECT c.id, c.clinic_id, c.starts_at, c.ends_at FROM consultations c "
                "WHERE c.status = ? AND c.ends_at <= ? AND c.ends_at > ? AND NOT EXISTS "
                "(SELECT 1 FROM missed_slots m WHERE m.consultation_id = c.id) "
                "ORDER BY c.starts_at, c.id",
                (ConsultationStatus.BOOKED.value, cutoff, oldest),
            ).fetchall()
        fresh = [r for r in rows if r[0] not in keep]
        if not fresh:
            return []
        with self._write() as conn:
            inserted = []
            for r in fresh:
                # Still booked (not called meanwhile), and not recorded by anyone since.
                added = conn.execute(
                    "INSERT INTO missed_slots (consultation_id, clinic_id, starts_at, ends_at, "
                    "recorded_at) SELECT id, clinic_id, starts_at, ends_at, ? FROM consultations "
                    "WHERE id = ? AND status = ? ON CONFLICT (consultation_id) DO NOTHING",
                    (cutoff, r[0], ConsultationStatus.BOOKED.value),
                ).rowcount
                if added:
                    inserted.append(r)
        fresh = inserted
        return [MissedSlot(r[0], r[1], None, dt(r[2]), dt(r[3]), now, None) for r in fresh]

    def list_missed(self, *, unacknowledged: bool = True, limit: int = 50) -> list[MissedSlot]:
        """Missed slots, oldest first (by default only those no staff member has seen)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT m.consultation_id, m.clinic_id, k.name, m.starts_at, m.ends_at, "
                "m.recorded_at, m.acknowledged_at FROM missed_slots m "
                "LEFT JOIN clinics k ON k.id = m.clinic_id "
                "WHERE ? = 0 OR m.acknowledged_at IS NULL "
                "ORDER BY m.starts_at, m.consultation_id LIMIT ?",
                (int(unacknowledged), max(1, min(limit, 1000))),
            ).fetchall()
        return [
            MissedSlot(r[0], r[1], r[2], dt(r[3]), dt(r[4]), dt(r[5]), dt(r[6]) if r[6] else None)
            for r in rows
        ]

    def acknowledge_missed(self, at: datetime, consultation_ids: Collection[str]) -> int:
        """Staff have seen these missed slots; how many were newly acknowledged."""
        when = ts(at, "acknowledged time")
        with self._write() as conn:
            count = 0
            for cid in consultation_ids:
                count += conn.execute(
                    "UPDATE missed_slots SET acknowledged_at = ? "
                    "WHERE consultation_id = ? AND acknowledged_at IS NULL",
                    (when, cid),
                ).rowcount
        return count

    def count_missed(self, since: datetime) -> int:
        """Missed slots that started at or after ``since`` (acknowledged or not)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM missed_slots WHERE starts_at >= ?", (ts(since, "since"),)
            ).fetchone()
        return int(row[0])

    def count_undocumented(self, ended_before: datetime) -> int:
        """Consultations whose call ended (slot over before ``ended_before``) without a note."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM consultations WHERE status = ? AND ends_at <= ?",
                (ConsultationStatus.ENDED.value, ts(ended_before, "cutoff")),
            ).fetchone()
        return int(row[0])

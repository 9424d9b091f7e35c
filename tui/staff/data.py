"""The staff UI's records: stationd's blind store, opened and sealed with the vault key.

:class:`StaffRecords` is the one place in the staff UI that touches key material and
plaintext. It talks to stationd through its port (:class:`~tui.staff.station.StationRecords`), opens
sealed fields with :mod:`station.keys.records` (each consultation's data key is unwrapped with
the vault key and cached until :meth:`StaffRecords.zero`), and hands the screens plain,
immutable view objects (:class:`ResidentView`, :class:`AppointmentView`). It imports no
Textual, so the bench and tests drive it directly.

Times: stationd stores aware UTC times; staff read the station's local time (:mod:`tui.localtime`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Final, Literal

from station.core.clock import Clock
from station.core.cpr import parse_cpr
from station.core.ids import new_id
from station.core.model import (
    ConsultationType,
    QueueEntryStatus,
    Resident,
    WithCpr,
    WithoutCpr,
)
from station.errors import StationError
from station.keys.boxes import sealed_event_context
from station.keys.crypto import FieldRef
from station.keys.records import ENTRY_TABLE, ConsultationKey, seal_entry, seal_note
from station.keys.vault import VaultKey
from stationapi import models as m
from tui.localtime import local, local_zone
from tui.safe_text import clean
from tui.staff.station import StationRecords, WaitingResident

if TYPE_CHECKING:
    from station.export.payload import ExportPayload

__all__ = [
    "DEFAULT_DURATION",
    "UNDOCUMENTED_LOOKBACK_DAYS",
    "AppointmentView",
    "ClinicView",
    "ExportOutcome",
    "ExportState",
    "MissedView",
    "NoteDraft",
    "ResidentView",
    "StaffRecords",
    "UndocumentedView",
    "waiting_resident",
]

#: A booked GP video slot unless staff say otherwise.
DEFAULT_DURATION: Final = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class ClinicView:
    """A GP clinic as staff choose it."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ResidentView:
    """One resident in a queue, opened. ``readable`` is False when the fields did not open."""

    entry_id: str
    consultation_id: str
    position: int
    status: str
    name: str = field(repr=False)
    birth_date: str = field(repr=False, default="")
    room: str = field(repr=False, default="")
    cpr: str = field(repr=False, default="")
    reason: str = field(repr=False, default="")
    note: str = field(repr=False, default="")
    readable: bool = True


#: How far back the staff UI looks for consultations still missing their note.
UNDOCUMENTED_LOOKBACK_DAYS = 60


@dataclass(frozen=True, slots=True)
class MissedView:
    """A booked consultation whose slot passed without a call: when, and with which clinic."""

    id: str
    clinic_name: str
    starts_at: datetime


@dataclass(frozen=True, slots=True)
class UndocumentedView:
    """A consultation whose call ended without a note: when, and with which clinic."""

    id: str
    clinic_name: str
    starts_at: datetime


@dataclass(frozen=True, slots=True)
class AppointmentView:
    """One booked consultation and its queue, as the Today screen shows it."""

    id: str
    clinic_id: str
    clinic_name: str
    starts_at: datetime
    ends_at: datetime
    consultation_type: str
    status: str
    residents: tuple[ResidentView, ...] = ()

    @property
    def is_round(self) -> bool:
        """Several residents in a row for one GP slot."""
        return len(self.residents) > 1


@dataclass(frozen=True, slots=True)
class NoteDraft:
    """What the care record (EOJ) needs from one resident's wrap-up."""

    entry_id: str | None
    participants: str
    outcome: str
    text: str
    #: Whether staff took part in the call (always so in an assisted consultation).
    staff_took_part: bool = True

    def render(self, appointment: AppointmentView, resident: ResidentView | None) -> str:
        """The note as stored: a small JSON document (the EOJ export reads it back)."""
        document = {
            "staff_took_part": self.staff_took_part,
            "version": 1,
            "time": local(appointment.starts_at).isoformat(timespec="minutes"),
            "gp_clinic": appointment.clinic_name,
            "consultation_type": appointment.consultation_type,
            "resident": resident.name if resident else None,
            "participants": self.participants,
            "outcome": self.outcome,
            "text": self.text,
        }
        return json.dumps(document, ensure_ascii=False, sort_keys=True)


#: How a note reached (or will reach) the care record, as the wrap-up screen shows it.
ExportState = Literal["pending", "delivered", "failed", "not_sent", "summary"]


@dataclass(frozen=True, slots=True)
class ExportOutcome:
    """What :meth:`StaffRecords.export_note` did: queued for delivery, or a summary to copy."""

    delivery: Literal["fhir", "summary", "unavailable"]
    queued: bool
    summary: str = field(repr=False, default="")


def _resident_of(view: ResidentView) -> Resident:
    """The domain resident back from what the UI opened (CPR, else name + birth date)."""
    if view.cpr:
        return Resident(view.entry_id, WithCpr(parse_cpr(view.cpr), view.name, room=view.room))
    born = datetime.strptime(view.birth_date, "%d-%m-%Y").date()
    return Resident(view.entry_id, WithoutCpr(view.name, born, view.room or ""))


def _aware(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


class StaffRecords:
    """Reads and writes the day's records for the unlocked staff member (see module docs)."""

    def __init__(self, station: StationRecords, vault: VaultKey, clock: Clock) -> None:
        self._station = station
        self._vault = vault
        self._clock = clock
        self._keys: dict[str, ConsultationKey] = {}
        self._clinics: dict[str, str] = {}
        self._providers: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"StaffRecords(<{len(self._keys)} consultation key(s)>)"

    # ------------------------------------------------------------------ keys

    def zero(self) -> None:
        """Overwrite every consultation key and the vault key (the lock)."""
        for key in self._keys.values():
            key.zero()
        self._keys.clear()
        self._vault.zero()

    async def _key(self, consultation_id: str) -> ConsultationKey:
        key = self._keys.get(consultation_id)
        if key is None:
            wrapped = await self._station.get_key(consultation_id)
            key = ConsultationKey.unwrap(self._vault, consultation_id, wrapped)
            self._keys[consultation_id] = key
        return key

    # ------------------------------------------------------------------ reading

    async def clinics(self) -> list[ClinicView]:
        """The GP clinics the station may call (cached: they change only by configuration)."""
        if not self._clinics:
            for clinic in await self._station.clinics():
                self._clinics[clinic.id] = clinic.name
                self._providers[clinic.id] = clinic.provider_number
        return [ClinicView(cid, name) for cid, name in self._clinics.items()]

    def day_bounds(self, day: date | None = None) -> tuple[datetime, datetime]:
        """Midnight to midnight of ``day`` (default: today, Danish time), as aware times."""
        day = day or local(self._clock.now()).date()
        start = datetime.combine(day, time(0), local_zone())
        return start, datetime.combine(day + timedelta(days=1), time(0), local_zone())

    async def today(self, day: date | None = None) -> list[AppointmentView]:
        """The day's consultations (not cancelled), each with its opened queue."""
        await self.clinics()
        start, end = self.day_bounds(day)
        rows = await self._station.consultations(
            starts_from=start,
            starts_before=end,
            statuses=["booked", "in_call", "ended", "documented"],
        )
        return [await self._appointment(row) for row in rows]

    async def appointment(self, consultation_id: str) -> AppointmentView:
        """One consultation with its queue."""
        await self.clinics()
        return await self._appointment(await self._station.consultation(consultation_id))

    async def undocumented(
        self, *, days: int = UNDOCUMENTED_LOOKBACK_DAYS
    ) -> list[UndocumentedView]:
        """Consultations whose call ended without a note (issue 17, item 3), oldest first:
        status ``ended`` until documented or cancelled, over the last ``days`` days. Clear
        metadata only (time and clinic): nothing is opened."""
        await self.clinics()
        now = self._clock.now()
        rows = await self._station.consultations(
            starts_from=now - timedelta(days=days),
            starts_before=now + timedelta(days=1),
            statuses=["ended"],
        )
        return [
            UndocumentedView(r.id, self._clinics.get(r.clinic_id, r.clinic_id), r.starts_at)
            for r in rows
        ]

    async def missed(self) -> list[MissedView]:
        """Booked slots that passed without a call and no staff member has seen yet (issue
        17), oldest first. Clear metadata only: nothing is opened."""
        rows = await self._station.missed()
        return [MissedView(r.consultation_id, r.clinic_name or "", r.starts_at) for r in rows]

    async def acknowledge_missed(self, missed: list[MissedView]) -> None:
        """They were shown: the next log-in does not show them again."""
        if missed:
            await self._station.acknowledge_missed([v.id for v in missed])

    async def _appointment(self, row: m.ConsultationOut) -> AppointmentView:
        entries = await self._station.entries(row.id)
        residents: list[ResidentView] = []
        if entries:
            try:
                key = await self._key(row.id)
            except StationError:
                key = None
            residents = [self._open(key, entry) for entry in entries]
        return AppointmentView(
            id=row.id,
            clinic_id=row.clinic_id,
            clinic_name=self._clinics.get(row.clinic_id, row.clinic_id),
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            consultation_type=row.consultation_type,
            status=row.status,
            residents=tuple(residents),
        )

    @staticmethod
    def _open(key: ConsultationKey | None, entry: m.EntryOut) -> ResidentView:
        """Open an entry's sealed fields; an unreadable one is shown as such, not hidden."""
        values: dict[str, str] = {}
        readable = key is not None
        if key is not None:
            for name, blob in entry.sealed.items():
                try:
                    values[name] = key.open(blob, FieldRef(ENTRY_TABLE, entry.id, name))
                except (StationError, UnicodeDecodeError):
                    readable = False
        cpr = values.get("cpr", "")
        if cpr:
            try:
                cpr = parse_cpr(cpr).formatted()
            except StationError:
                readable = False
        birth = values.get("birth_date", "")
        if birth:
            # Shown as stored (literally) if it does not parse: better than hiding it.
            with contextlib.suppress(ValueError):
                birth = date.fromisoformat(birth).strftime("%d-%m-%Y")
        elif cpr:
            try:
                birth = parse_cpr(cpr).birth_date.strftime("%d-%m-%Y")
            except StationError:
                birth = ""
        return ResidentView(
            entry_id=entry.id,
            consultation_id=entry.consultation_id,
            position=entry.position,
            status=entry.status,
            name=values.get("display_name", ""),
            birth_date=birth,
            room=values.get("room", ""),
            cpr=cpr,
            reason=values.get("reason", ""),
            note=values.get("note", ""),
            readable=readable and "display_name" in values,
        )

    async def open_resident(self, entry_id: str) -> ResidentView:
        """One resident's record, read through stationd's audited single-record endpoint."""
        entry = await self._station.entry(entry_id)
        key = await self._key(entry.consultation_id)
        return self._open(key, entry)

    async def call_events(self, consultation_id: str) -> list[dict[str, object]]:
        """What stationd sealed while locked (call ended, durations), opened."""
        events = await self._station.sealed_events(consultation_id)
        opened: list[dict[str, object]] = []
        for event in events:
            try:
                plain = self._vault.open_sealed_box(
                    event.blob, sealed_event_context(consultation_id, event.kind)
                )
                opened.append(json.loads(plain))
            except (StationError, ValueError):
                opened.append({"kind": event.kind, "unreadable": True})
        return opened

    # ------------------------------------------------------------------ writing

    async def create_appointment(
        self,
        clinic_id: str,
        starts_at: datetime,
        consultation_type: ConsultationType,
        duration: timedelta = DEFAULT_DURATION,
    ) -> str:
        """Book a consultation (date and time agreed with the GP) and give it a data key."""
        consultation_id = new_id()
        await self._station.create_consultation(
            consultation_id=consultation_id,
            clinic_id=clinic_id,
            starts_at=starts_at,
            ends_at=starts_at + duration,
            consultation_type=consultation_type.value,
        )
        key, wrapped = ConsultationKey.new(self._vault, consultation_id)
        await self._station.put_key(consultation_id, wrapped)
        self._keys[consultation_id] = key
        return consultation_id

    async def add_resident(
        self, consultation_id: str, identity: WithCpr | WithoutCpr, reason: str | None = None
    ) -> str:
        """Queue a resident (validated by the domain already), sealed under the data key."""
        entry_id = new_id()
        resident = Resident(entry_id, identity)
        key = await self._key(consultation_id)
        sealed = seal_entry(key, entry_id, resident, reason)
        await self._station.add_entry(consultation_id, sealed, entry_id=entry_id)
        return entry_id

    async def move(self, appointment: AppointmentView, entry_id: str, delta: int) -> None:
        """Move a resident ``delta`` places in the queue (clamped to the ends)."""
        order = [r.entry_id for r in appointment.residents]
        if entry_id not in order:
            return
        index = order.index(entry_id)
        target = max(0, min(len(order) - 1, index + delta))
        if target == index:
            return
        order.insert(target, order.pop(index))
        await self._station.reorder_entries(appointment.id, order)

    async def remove(self, entry_id: str) -> None:
        """Take a resident out of the queue."""
        await self._station.delete_entry(entry_id)

    async def set_status(self, entry_id: str, status: QueueEntryStatus) -> None:
        """Mark a resident waiting, in the call, done or skipped."""
        await self._station.set_entry_status(entry_id, status.value)

    async def write_note(
        self, appointment: AppointmentView, draft: NoteDraft, resident: ResidentView | None
    ) -> str:
        """Seal and store one wrap-up note; marks the resident done."""
        note_id = new_id()
        key = await self._key(appointment.id)
        body = seal_note(key, note_id, draft.render(appointment, resident))
        await self._station.add_note(appointment.id, body, note_id=note_id, entry_id=draft.entry_id)
        if draft.entry_id is not None and resident is not None and resident.status != "done":
            await self._station.set_entry_status(draft.entry_id, "done")
        return note_id

    async def notes(self, consultation_id: str) -> list[dict[str, object]]:
        """The consultation's notes, opened (for the wrap-up screen's list)."""
        from station.keys.records import open_note

        key = await self._key(consultation_id)
        opened: list[dict[str, object]] = []
        for note in await self._station.notes(consultation_id):
            try:
                document = json.loads(open_note(key, note.id, note.body))
                document["entry_id"] = note.entry_id
                document["note_id"] = note.id
                document["written_at"] = note.created_at.isoformat()
                opened.append(document)
            except (StationError, ValueError):
                opened.append({"entry_id": note.entry_id, "unreadable": True})
        return opened

    async def mark_documented(self, consultation_id: str) -> None:
        """The consultation is in the care record: stationd may purge it after retention."""
        await self._station.mark_documented(consultation_id)

    # ------------------------------------------------------------------ care-record export

    def export_payload(
        self,
        appointment: AppointmentView,
        resident: ResidentView,
        note: dict[str, object],
        *,
        staff_id: str,
        call_events: Sequence[dict[str, object]] = (),
    ) -> ExportPayload:
        """The EOJ export of one opened note (:meth:`notes`), from what the UI holds in clear.

        The contact's times are the call's (its sealed ``call_ended`` event) when known, else
        the booked slot. Staff took part if the note says so or the consultation is assisted
        or a conference (MedCom's types have staff in them).
        """
        from station.export.payload import ExportPatient, ExportPayload

        ended = next((e for e in call_events if e.get("kind") == "call_ended"), {})
        started_at = _aware(ended.get("started_at")) or appointment.starts_at
        ended_at = _aware(ended.get("ended_at")) or appointment.ends_at
        if ended_at < started_at:
            started_at, ended_at = appointment.starts_at, appointment.ends_at
        took_part = note.get("staff_took_part")
        staff_took_part = appointment.consultation_type != "video_consultation" or (
            took_part if isinstance(took_part, bool) else True
        )
        written_at = _aware(note.get("written_at")) or self._clock.now()
        return ExportPayload(
            export_id=str(note["note_id"]),
            consultation_id=appointment.id,
            entry_id=resident.entry_id,
            consultation_type=appointment.consultation_type,  # type: ignore[arg-type]
            started_at=started_at,
            ended_at=ended_at,
            clinic_name=appointment.clinic_name,
            clinic_provider_number=self._providers.get(appointment.clinic_id, ""),
            staff_id=staff_id,
            staff_took_part=staff_took_part,
            patient=ExportPatient.from_resident(_resident_of(resident)),
            note_text=str(note.get("text", "")),
            written_at=written_at,
        )

    async def export_settings(self) -> tuple[str, bytes | None]:
        """How the care record is reached: (``fhir``/``summary``/``unavailable``, key)."""
        settings = await self._station.export_settings()
        return str(settings.delivery), settings.outbox_public_key

    async def export_note(
        self, payload: ExportPayload, delivery: str, outbox_public_key: bytes | None
    ) -> ExportOutcome:
        """Hand one note to the care record: sealed into stationd's outbox, else a summary.

        With an endpoint (``fhir``) the payload is sealed to the outbox key and queued
        (``export_id`` is the note's id, so doing it again changes nothing). Without one, or
        when stationd says there is none after all, the plain-text summary is returned for
        staff to copy; nothing is sent.
        """
        from station.export.payload import seal_export
        from station.export.summary import plain_text_summary

        if delivery == "fhir" and outbox_public_key is not None:
            queued = await self._station.enqueue_export(
                export_id=payload.export_id,
                consultation_id=payload.consultation_id,
                entry_id=payload.entry_id,
                sealed=seal_export(payload, outbox_public_key),
            )
            if not queued:
                return ExportOutcome("summary", False, plain_text_summary(payload))
            return ExportOutcome("fhir", True)
        kind: Literal["summary", "unavailable"] = (
            "unavailable" if delivery == "unavailable" else "summary"
        )
        return ExportOutcome(kind, False, plain_text_summary(payload))

    async def exports(self, consultation_id: str) -> dict[str, ExportState]:
        """Each queued export's state by export (= note) id, from stationd's outbox."""
        states: dict[str, ExportState] = {}
        for item in await self._station.exports(consultation_id):
            if item.state == "delivered":
                states[item.export_id] = "delivered"
            elif (item.last_outcome or "").startswith("failed"):
                states[item.export_id] = "failed"
            else:
                states[item.export_id] = "pending"
        return states

    async def retry_export(self, export_id: str) -> None:
        """Try a waiting export now (stationd's worker wakes)."""
        await self._station.retry_export(export_id)


def waiting_resident(resident: ResidentView) -> WaitingResident:
    """What the GP's waiting room shows of one resident: name, birth date, room, reason."""
    # Cut to the waiting room's limits and controls made visible, as on this screen: a
    # stored value the domain would refuse today still reaches the GP readable and harmless.
    born: date | None = None
    with contextlib.suppress(ValueError):
        born = datetime.strptime(resident.birth_date, "%d-%m-%Y").date()
    return WaitingResident(
        display_name=clean(resident.name, 120) or "?",
        birth_date=born,
        room=clean(resident.room, 40) if resident.room else None,
        reason=clean(resident.reason, 500, keep_newlines=True) if resident.reason else None,
    )

"""The plain-text summary staff copy into the care record when no EOJ endpoint is configured.

Made from the same :class:`ExportPayload` the FHIR export uses, so both say the same thing.
The staff UI calls :func:`plain_text_summary` locally with the note it has opened: the text
holds personal data and never passes through stationd. Danish whatever the UI's language
(it goes into a Danish care record; the words come from the catalogue), times in Danish local
time (Europe/Copenhagen), dates as Danish care records write them (``25.11.2026``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from station.core.model import ConsultationType
from station.export.payload import ExportPayload
from station.i18n import N_, translate

__all__ = ["DANISH_TIME", "RECORD_LANGUAGE", "plain_text_summary", "record_text"]

#: Danish local time, for what staff read.
DANISH_TIME: Final = ZoneInfo("Europe/Copenhagen")

#: The care record's language, whatever the UI speaks.
RECORD_LANGUAGE: Final = "da"


def record_text(msgid: str, **params: object) -> str:
    """``msgid`` in the care record's language, parameters filled in."""
    text = translate(msgid, RECORD_LANGUAGE)
    return text.format(**params) if params else text


def _date(value: datetime) -> str:
    return value.astimezone(DANISH_TIME).strftime("%d.%m.%Y")


def _clock(value: datetime) -> str:
    return value.astimezone(DANISH_TIME).strftime("%H.%M")


def plain_text_summary(payload: ExportPayload) -> str:
    """The consultation and its note as plain Danish text, ready to paste into the EOJ.

    The note is reproduced exactly as written (after a blank line), so nothing is lost.
    """
    p = payload
    patient = p.patient
    if patient.cpr is not None:
        cpr = f"{patient.cpr[:6]}-{patient.cpr[6:]}"
        who = record_text(N_("{name}, CPR no. {cpr}"), name=patient.name, cpr=cpr)
    else:
        assert patient.birth_date is not None  # the model requires one without CPR
        born = patient.birth_date.strftime("%d.%m.%Y")
        who = record_text(N_("{name}, born {born} (no CPR no.)"), name=patient.name, born=born)
    start, end = p.started_at, p.ended_at
    when = record_text(
        N_("{date} at {start}–{end}"), date=_date(start), start=_clock(start), end=_clock(end)
    )
    if _date(start) != _date(end):
        when = record_text(
            N_("{start_date} at {start} – {end_date} at {end}"),
            start_date=_date(start),
            start=_clock(start),
            end_date=_date(end),
            end=_clock(end),
        )
    staff = record_text(
        N_("took part in the conversation")
        if p.staff_took_part
        else N_("set up the conversation and did not take part")
    )
    kind = ConsultationType(p.consultation_type).label_da
    lines = [
        record_text(N_("{kind} with own doctor"), kind=kind),
        record_text(N_("Resident: {who}"), who=who),
        record_text(N_("Time: {when}"), when=when),
        record_text(
            N_("Doctor: {clinic} (provider no. {number})"),
            clinic=p.clinic_name,
            number=p.clinic_provider_number,
        ),
        record_text(N_("Staff: {staff_id} ({staff})"), staff_id=p.staff_id, staff=staff),
        record_text(
            N_("Note written: {date} at {time}"),
            date=_date(p.written_at),
            time=_clock(p.written_at),
        ),
        "",
        record_text(N_("Note:")),
        p.note_text,
    ]
    return "\n".join(lines)

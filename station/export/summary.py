"""The plain-text summary staff copy into the care record when no EOJ endpoint is configured.

Made from the same :class:`ExportPayload` the FHIR export uses, so both say the same thing.
The staff UI calls :func:`plain_text_summary` locally with the note it has opened: the text
holds personal data and never passes through stationd. Danish, times in Danish local time
(Europe/Copenhagen), dates as Danish care records write them (``25.11.2026``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from station.export.payload import ExportPayload

__all__ = ["DANISH_TIME", "plain_text_summary"]

#: Danish local time, for what staff read.
DANISH_TIME: Final = ZoneInfo("Europe/Copenhagen")

_TYPE_DA: Final = {
    "video_consultation": "Videokonsultation",
    "assisted_consultation": "Assisteret videokonsultation",
    "video_conference": "Videokonference",
}


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
        who = f"{patient.name}, CPR-nr. {patient.cpr[:6]}-{patient.cpr[6:]}"
    else:
        assert patient.birth_date is not None  # the model requires one without CPR
        who = f"{patient.name}, født {patient.birth_date.strftime('%d.%m.%Y')} (uden CPR-nr.)"
    start, end = p.started_at, p.ended_at
    when = f"{_date(start)} kl. {_clock(start)}–{_clock(end)}"
    if _date(start) != _date(end):
        when = f"{_date(start)} kl. {_clock(start)} – {_date(end)} kl. {_clock(end)}"
    staff = "deltog i samtalen" if p.staff_took_part else "satte samtalen op og deltog ikke"
    lines = [
        f"{_TYPE_DA[p.consultation_type]} med egen læge",
        f"Borger: {who}",
        f"Tidspunkt: {when}",
        f"Læge: {p.clinic_name} (ydernr. {p.clinic_provider_number})",
        f"Personale: {p.staff_id} ({staff})",
        f"Notat skrevet: {_date(p.written_at)} kl. {_clock(p.written_at)}",
        "",
        "Notat:",
        p.note_text,
    ]
    return "\n".join(lines)

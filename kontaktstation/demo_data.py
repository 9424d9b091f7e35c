"""The demo's made-up care home: its clinic, its residents, and booking them as staff would.

Never real people: names, birth dates and the one CPR number are invented (the CPR number is
well-formed, so the CPR login path runs). :func:`seed_demo` books through stationd's API with
every personal field sealed, exactly as the staff UI does; the tests' harnesses use it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from station.storage.store import Clinic

__all__ = [
    "DEMO_CLINIC",
    "DEMO_CPR_RESIDENT",
    "DEMO_HOME",
    "DEMO_ROUND",
    "DEMO_STAFF_ID",
    "DemoResident",
    "SeededConsultation",
    "seed_demo",
]

DEMO_STAFF_ID: Final = "demo"
DEMO_HOME: Final = "Plejecenter Solbakken (demo)"
DEMO_CLINIC: Final = Clinic(
    id="demo-clinic",
    name="Lægerne i Søndergade (demo)",  # i18n: data (a made-up clinic's name)
    provider_number="000000",
    video_room="demo-room",
)


@dataclass(frozen=True, slots=True)
class DemoResident:
    """A made-up resident for the demo (never a real person)."""

    display_name: str
    room: str
    birth_date: date | None = None
    cpr: str | None = None
    reason: str | None = None


#: The round: three residents queued without CPR login (name, birth date, room).
#: The reasons are what staff would have typed (data, Danish as a care home writes it).
DEMO_ROUND: Final = (
    DemoResident(
        "Karen Demo-Jensen",
        "12",
        date(1936, 3, 14),
        reason="Kontrol af blodtryk",  # i18n: data
    ),
    DemoResident(
        "Poul Demo-Nielsen",
        "14",
        date(1931, 11, 2),
        reason="Sår på venstre fod",  # i18n: data
    ),
    DemoResident(
        "Inger Demo-Hansen",
        "3",
        date(1940, 7, 21),
        reason="Opfølgning på medicin",  # i18n: data
    ),
)
#: The appointment with CPR login (a made-up, well-formed CPR number).
DEMO_CPR_RESIDENT: Final = DemoResident(
    "Erik Demo-Madsen", "7", cpr="150338-4721", reason="Svimmelhed"
)


@dataclass(frozen=True, slots=True)
class SeededConsultation:
    """A consultation the demo booked: its id, times and queue entry ids (no names)."""

    id: str
    starts_at: datetime
    ends_at: datetime
    entry_ids: tuple[str, ...]


def _identity(resident: DemoResident) -> Any:
    from station.core.cpr import parse_cpr
    from station.core.model import WithCpr, WithoutCpr

    if resident.cpr is not None:
        return WithCpr(parse_cpr(resident.cpr), resident.display_name, room=resident.room)
    assert resident.birth_date is not None
    return WithoutCpr(resident.display_name, resident.birth_date, resident.room)


async def seed_demo(
    client: Any,
    vault_key: Any,
    now: datetime,
    *,
    clinic_id: str = DEMO_CLINIC.id,
    round_in: timedelta = timedelta(minutes=10),
    cpr_in: timedelta = timedelta(minutes=70),
    round_residents: Sequence[DemoResident] = DEMO_ROUND,
    cpr_resident: DemoResident = DEMO_CPR_RESIDENT,
) -> list[SeededConsultation]:
    """Book the demo's round and CPR appointment through stationd's API, as staff would.

    ``client`` is an unlocked :class:`~stationapi.client.StationClient`; ``vault_key`` a
    :class:`~station.keys.vault.VaultKey` (the caller zeroes it). Every personal field is sealed
    under a fresh per-consultation key (``station.keys.records``); stationd sees ciphertext only.
    """
    from station.core.ids import new_id
    from station.core.model import Resident
    from station.keys.records import ConsultationKey, seal_entry

    start = now.replace(second=0, microsecond=0)
    plan = [
        (start + round_in, timedelta(minutes=30), "assisted_consultation", list(round_residents)),
        (start + cpr_in, timedelta(minutes=15), "video_consultation", [cpr_resident]),
    ]
    seeded = []
    for starts_at, length, kind, residents in plan:
        consultation_id = new_id()
        await client.create_consultation(
            consultation_id=consultation_id,
            clinic_id=clinic_id,
            starts_at=starts_at,
            ends_at=starts_at + length,
            consultation_type=kind,
        )
        key, wrapped = ConsultationKey.new(vault_key, consultation_id)
        try:
            await client.put_key(consultation_id, wrapped)
            entry_ids = []
            for resident in residents:
                entry_id = new_id()
                sealed = seal_entry(
                    key, entry_id, Resident(entry_id, _identity(resident)), resident.reason
                )
                await client.add_entry(consultation_id, sealed, entry_id=entry_id)
                entry_ids.append(entry_id)
        finally:
            key.zero()
        seeded.append(
            SeededConsultation(consultation_id, starts_at, starts_at + length, tuple(entry_ids))
        )
    return seeded

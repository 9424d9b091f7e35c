"""Export payloads, sealing, the FHIR Bundle and the plain-text summary."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from station.core.cpr import parse_cpr
from station.core.model import Resident, WithCpr, WithoutCpr
from station.export import (
    CareHome,
    ExportConfig,
    ExportPatient,
    ExportPayload,
    ExportPayloadInvalid,
    OutboxKey,
    build_bundle,
    open_export,
    plain_text_summary,
    seal_export,
    validate_bundle,
)
from station.export.fhir import CPR_SYSTEM, PROFILE_ENCOUNTER, YDERNUMMER_SYSTEM
from station.export.outbox import BACKOFF_SCHEDULE, backoff_delay

START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
CONFIG = ExportConfig(
    fhir_base_url="https://eoj.example.dk/fhir",
    token_url="https://eoj.example.dk/oauth2/token",
    client_id="station-1",
    client_secret="x",  # type: ignore[arg-type]
    care_home=CareHome(name="Plejecenter Solhaven", sor="123456789012345"),
)


def make(**overrides: object) -> ExportPayload:
    data: dict[str, object] = {
        "export_id": "note-1a",
        "consultation_id": "cons-1a",
        "entry_id": "entry-1a",
        "consultation_type": "video_consultation",
        "started_at": START,
        "ended_at": START + timedelta(minutes=10),
        "clinic_name": "Lægehuset Åboulevarden",
        "clinic_provider_number": "057584",
        "staff_id": "staff-a",
        "staff_took_part": False,
        "patient": ExportPatient(name="Anna Hansen", cpr="0102301234"),
        "note_text": "Blodtryk fint. Ny tid om 3 mdr.",
        "written_at": START + timedelta(minutes=15),
    }
    data.update(overrides)
    return ExportPayload.model_validate(data)


def test_seal_and_open_roundtrip(tmp_path: Path) -> None:
    key = OutboxKey.load_or_create(tmp_path / "outbox.key")
    assert (tmp_path / "outbox.key").stat().st_mode & 0o777 == 0o600
    p = make()
    blob = seal_export(p, key.public_key)
    assert b"Anna" not in blob
    assert open_export(key, blob, export_id="note-1a", consultation_id="cons-1a") == p
    with pytest.raises(ExportPayloadInvalid):
        open_export(key, blob, export_id="note-other", consultation_id="cons-1a")
    other = OutboxKey.load_or_create(tmp_path / "other.key")
    with pytest.raises(ExportPayloadInvalid):
        open_export(other, blob, export_id="note-1a", consultation_id="cons-1a")
    # The same file gives the same key pair.
    assert OutboxKey.load_or_create(tmp_path / "outbox.key").public_key == key.public_key


def test_key_file_too_open_is_refused(tmp_path: Path) -> None:
    from station.export import ExportKeyError

    OutboxKey.load_or_create(tmp_path / "outbox.key")
    (tmp_path / "outbox.key").chmod(0o644)
    with pytest.raises(ExportKeyError):
        OutboxKey.load_or_create(tmp_path / "outbox.key")


def test_payload_never_shows_personal_data() -> None:
    p = make()
    for text in (repr(p), str(p), repr(p.patient), f"{p}"):
        assert "Anna" not in text and "0102301234" not in text
    with pytest.raises(ExportPayloadInvalid) as info:
        ExportPayload.parse({**make().model_dump(), "patient": {"name": "Bo Ek", "cpr": "9999"}})
    assert "9999" not in str(info.value) and "Bo Ek" not in str(info.value)


def test_payload_rules() -> None:
    with pytest.raises(ValueError):
        make(consultation_type="assisted_consultation", staff_took_part=False)
    with pytest.raises(ValueError):
        make(ended_at=START - timedelta(minutes=1))
    with pytest.raises(ValueError):
        ExportPatient(name="Uden Dato")  # neither CPR nor birth date
    with pytest.raises(ValueError):
        make(export_id="010230-1234")  # an id shaped like a CPR number


def test_patient_from_resident() -> None:
    with_cpr = Resident("res-1a", WithCpr(parse_cpr("010230-1234"), "Anna Hansen"))
    p = ExportPatient.from_resident(with_cpr)
    assert p.cpr == "0102301234" and p.birth_date == date(1930, 2, 1)
    without = Resident("res-2a", WithoutCpr("Bo Ek", date(1931, 5, 6), "12"))
    q = ExportPatient.from_resident(without)
    assert q.cpr is None and q.birth_date == date(1931, 5, 6)


def test_bundle_validates_and_is_stable() -> None:
    p = make()
    bundle = build_bundle(p, CONFIG)
    validate_bundle(bundle)
    assert bundle == build_bundle(make(), CONFIG)  # a retry sends the same Bundle
    assert bundle["type"] == "transaction"
    resources = {e["resource"]["resourceType"]: e for e in bundle["entry"]}
    for entry in bundle["entry"]:
        assert entry["request"]["method"] == "POST"
        assert entry["request"]["ifNoneExist"].startswith("identifier=")
    encounter = resources["Encounter"]["resource"]
    assert encounter["meta"]["profile"] == [PROFILE_ENCOUNTER]
    assert encounter["class"]["code"] == "VR"
    assert len(encounter["participant"]) == 1  # staff did not take part
    assert resources["Patient"]["resource"]["identifier"] == [
        {"system": CPR_SYSTEM, "value": "0102301234"}
    ]
    gp = [e for e in bundle["entry"] if e["resource"].get("name") == [{"text": p.clinic_name}]]
    assert gp[0]["resource"]["identifier"] == [{"system": YDERNUMMER_SYSTEM, "value": "057584"}]
    # Another note gets another Bundle id; the same consultation and entry, the same encounter.
    other = build_bundle(make(export_id="note-2b"), CONFIG)
    assert other["id"] != bundle["id"]
    enc_other = next(e for e in other["entry"] if e["resource"]["resourceType"] == "Encounter")
    assert enc_other["resource"]["identifier"] == encounter["identifier"]


def test_bundle_without_cpr_and_assisted() -> None:
    p = make(
        patient=ExportPatient(name="Bo Ek", birth_date=date(1931, 5, 6)),
        consultation_type="assisted_consultation",
        staff_took_part=True,
    )
    bundle = build_bundle(p, CONFIG)
    validate_bundle(bundle)
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    assert patient["birthDate"] == "1931-05-06"
    assert patient["identifier"][0]["system"] == "urn:ietf:rfc:3986"
    assert "meta" not in patient  # MedComCorePatient needs a CPR identifier: not claimed
    encounter = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter"
    )
    assert [pt["type"][0]["coding"][0]["code"] for pt in encounter["participant"]] == [
        "PPRF",
        "PART",
    ]
    assert encounter["type"][0]["text"] == "Assisteret videokonsultation"


def test_invalid_bundle_is_refused_without_quoting() -> None:
    bundle = build_bundle(make(), CONFIG)
    bundle["entry"][4]["resource"]["period"] = "Anna Hansen"  # a string where a Period goes
    with pytest.raises(ExportPayloadInvalid) as info:
        validate_bundle(bundle)
    assert "Anna" not in str(info.value)


def test_plain_text_summary_in_danish() -> None:
    note = "Linje 1\nLinje 2 æøå 😀\n"
    text = plain_text_summary(make(note_text=note))
    assert text.startswith("Videokonsultation med egen læge\n")
    assert "Borger: Anna Hansen, CPR-nr. 010230-1234" in text
    assert "Tidspunkt: 25.11.2026 kl. 10.00–10.10" in text  # Danish winter time, UTC+1
    assert "Læge: Lægehuset Åboulevarden (ydernr. 057584)" in text
    assert "satte samtalen op og deltog ikke" in text
    assert text.endswith("Notat:\n" + note)
    no_cpr = plain_text_summary(
        make(patient=ExportPatient(name="Bo Ek", birth_date=date(1931, 5, 6)))
    )
    assert "Borger: Bo Ek, født 06.05.1931 (uden CPR-nr.)" in no_cpr


def test_backoff_schedule_with_jitter() -> None:
    rng = random.Random(7)
    for failures, base in enumerate(BACKOFF_SCHEDULE, start=1):
        for _ in range(50):
            delay = backoff_delay(failures, rng)
            assert base * 0.8 <= delay <= base * 1.2
    assert backoff_delay(50, rng) <= timedelta(hours=1.2)
    assert backoff_delay(0) == timedelta(0)

"""Delivery to a local FHIR-shaped receiver: validation, retries, exactly one copy, no leaks."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from station.core.clock import FakeClock
from station.export import (
    CareHome,
    ExportConfig,
    ExportPatient,
    ExportPayload,
    ExportService,
    OutboxState,
    seal_export,
)
from station.export.fhir import CPR_SYSTEM, STATION_IDENTIFIER_SYSTEM, stable_uuid
from station.storage.audit import AuditLog
from tests.integration.fhir_receiver import (
    CLIENT_ID,
    CLIENT_SECRET,
    FhirReceiver,
    RunningReceiver,
    running_receiver,
)

NAME = "Karen Østergård-Bæk"
CPR = "0102301234"  # a 1930 birth date; modulus 11 is not required
NOTE = "Lægen justerer Furix til 40 mg. Ny tid om 14 dage. Pårørende (datter) orienteret."


def export_config(rr: RunningReceiver, **overrides: object) -> ExportConfig:
    data: dict[str, object] = {
        "fhir_base_url": rr.fhir_url,
        "token_url": rr.token_url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "care_home": CareHome(name="Plejecenter Solhaven", sor="123456789012345"),
        "timeout_seconds": 1.0,
        "allow_insecure_loopback": True,
    }
    data.update(overrides)
    return ExportConfig.model_validate(data)


def payload(
    export_id: str = "note-aaaa1",
    *,
    note: str = NOTE,
    cpr: str | None = CPR,
    name: str = NAME,
    entry_id: str = "entry-bbbb1",
    consultation_id: str = "cons-cccc1",
) -> ExportPayload:
    start = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    return ExportPayload(
        export_id=export_id,
        consultation_id=consultation_id,
        entry_id=entry_id,
        consultation_type="assisted_consultation",
        started_at=start,
        ended_at=start + timedelta(minutes=12),
        clinic_name="Lægehuset Åboulevarden",
        clinic_provider_number="057584",
        staff_id="staff-a",
        staff_took_part=True,
        patient=ExportPatient(name=name, cpr=cpr, birth_date=date(1930, 2, 1)),
        note_text=note,
        written_at=start + timedelta(minutes=20),
    )


async def drain(service: ExportService, clock: FakeClock, *, passes: int = 20) -> int:
    """Run delivery passes, moving the fake clock past each back-off, until nothing waits."""
    worker = service.worker
    assert worker is not None
    for n in range(passes):
        await worker.run_once()
        if service.outbox.counts()["pending"] == 0:
            return n + 1
        clock.advance(timedelta(hours=2))
    raise AssertionError("the outbox did not drain")


def enqueue(service: ExportService, p: ExportPayload) -> None:
    service.enqueue(
        export_id=p.export_id,
        consultation_id=p.consultation_id,
        entry_id=p.entry_id,
        sealed=seal_export(p, service.public_key),
        staff_id=p.staff_id,
    )


@pytest.fixture
async def receiver() -> object:
    async with running_receiver(FhirReceiver(hold_seconds=2.5)) as rr:
        yield rr


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 25, 10, 0, tzinfo=UTC))


@pytest.fixture
async def service(data_dir: Path, receiver: RunningReceiver, clock: FakeClock) -> object:
    audit = AuditLog.open(data_dir, clock=clock)
    svc = ExportService.open(data_dir, clock=clock, audit=audit, config=export_config(receiver))
    # No background loop: the tests drive run_once with the fake clock.
    assert svc.build_worker() is not None
    yield svc
    await svc.stop()
    svc.close()
    audit.close()


def communication_of(rr: RunningReceiver, export_id: str) -> list[dict[str, object]]:
    value = f"urn:uuid:{stable_uuid('communication', export_id)}"
    return rr.receiver.find("Communication", STATION_IDENTIFIER_SYSTEM, value)


async def test_delivered_resources_validate_and_link(
    service: ExportService, receiver: RunningReceiver, clock: FakeClock
) -> None:
    from fhir.resources.R4B import get_fhir_model_class

    enqueue(service, payload())
    assert await drain(service, clock) == 1
    store = receiver.receiver.resources
    assert {k: len(v) for k, v in store.items()} == {
        "Organization": 1,
        "Practitioner": 2,
        "Patient": 1,
        "Encounter": 1,
        "Communication": 1,
    }
    for rtype, items in store.items():
        for resource in items.values():
            get_fhir_model_class(rtype).model_validate(resource)
    (encounter,) = store["Encounter"].values()
    (patient,) = store["Patient"].values()
    (comm,) = store["Communication"].values()
    assert encounter["class"]["code"] == "VR"
    assert encounter["subject"]["reference"] == f"Patient/{patient['id']}"
    assert comm["encounter"]["reference"] == f"Encounter/{encounter['id']}"
    assert patient["identifier"] == [{"system": CPR_SYSTEM, "value": CPR}]
    assert comm["payload"][0]["contentString"] == NOTE
    entry = service.outbox.get("note-aaaa1")
    assert entry.state is OutboxState.DELIVERED and entry.sealed is None


async def test_every_failure_kind_retries_and_ends_with_one_copy(
    service: ExportService, receiver: RunningReceiver, clock: FakeClock, data_dir: Path
) -> None:
    behaviours = (
        "500",
        "503",
        "drop_before_store",
        "drop_after_store",
        "slow_after_store",
        "timeout_before_store",
        "400",
        "401",
    )
    receiver.receiver.fail_next(*behaviours)
    enqueue(service, payload())
    passes = await drain(service, clock)
    assert passes == len(behaviours) + 1
    assert receiver.receiver.log == [*behaviours, "ok"]
    # The Bundle sent was byte-identical every time (same id, same identifiers).
    assert len(set(receiver.receiver.bodies)) == 1
    assert len(communication_of(receiver, "note-aaaa1")) == 1
    assert receiver.receiver.count("Encounter") == 1
    assert receiver.receiver.count("Patient") == 1
    entry = service.outbox.get("note-aaaa1")
    assert entry.state is OutboxState.DELIVERED
    assert entry.attempts == len(behaviours) + 1
    # Audited: queued, each failed attempt with its outcome code, delivered; chain intact.
    with AuditLog.open(data_dir, clock=clock) as log:
        outcomes = [e.outcome for e in log.entries() if e.action == "export"]
        assert log.verify().ok
    assert outcomes == [
        "queued",
        "failed_server_error",
        "failed_server_error",
        "failed_dropped",
        "failed_dropped",
        "failed_timeout",
        "failed_timeout",
        "failed_rejected",
        "failed_auth",
        "delivered",
    ]


async def test_receiver_down_then_up(
    service: ExportService, receiver: RunningReceiver, clock: FakeClock, data_dir: Path
) -> None:
    # The endpoint refuses connections (nothing listens on the configured port).
    dead = export_config(receiver, fhir_base_url="http://127.0.0.1:9/fhir")
    assert service.worker is not None
    live_config = service.worker.config
    service.worker.config = dead
    from station.export import FhirClient

    live_client = service.worker.client
    service.worker.client = FhirClient(dead)
    enqueue(service, payload())
    for _ in range(5):
        await service.worker.run_once()
        clock.advance(timedelta(hours=1, minutes=30))
    assert service.outbox.get("note-aaaa1").state is OutboxState.PENDING
    assert service.outbox.get("note-aaaa1").last_outcome == "failed_connect"
    await service.worker.client.aclose()
    service.worker.config, service.worker.client = live_config, live_client
    await drain(service, clock)
    assert len(communication_of(receiver, "note-aaaa1")) == 1


DIFFICULT = {
    "danish": "Æbleskiver på ældrecentret – blodtryk 140/90; «tjek» igen ÆØÅ æøå é ü ß.",
    "emoji": "Glad i dag 😀👍🏽 👩‍⚕️ 🇩🇰 ❤️ — ønsker besøg 🙏",
    "markup": "<script>alert('x')</script> &amp; ]]> <![CDATA[ x ]]> {\"a\": [1]} \\n ${x} **fed**",
    "whitespace": "  indrykket\r\nwindows-linje\n\ttab\u00a0nbsp\u2028linjeskift-u2028  ",
    "combining": "Zoe\u0308 and e\u0301 vs é; RTL \u05e9\u05dc\u05d5\u05dd \u202eomvendt\u202c",
    "long": ("Lang tekst æøå 😀 <b>fed</b> " * 800)[:20_000],
}


async def test_difficult_text_survives_byte_for_byte(
    service: ExportService, receiver: RunningReceiver, clock: FakeClock
) -> None:
    assert len(DIFFICULT["long"]) == 20_000
    for n, (kind, text) in enumerate(DIFFICULT.items()):
        enqueue(service, payload(f"note-{kind}", note=text, entry_id=f"entry-{n}x"))
    await drain(service, clock)
    for kind, text in DIFFICULT.items():
        (comm,) = communication_of(receiver, f"note-{kind}")
        received = comm["payload"][0]["contentString"]  # type: ignore[index]
        assert received.encode("utf-8") == text.encode("utf-8"), kind


async def test_no_personal_data_in_logs(
    service: ExportService,
    receiver: RunningReceiver,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    data_dir: Path,
) -> None:
    secret_note = "Hemmelig notattekst: hoste og feber siden mandag, Marevan pauseret."
    name = "Ingeborg Sørensen-Holm"
    caplog.set_level(logging.DEBUG)
    receiver.receiver.fail_next("503", "drop_after_store", "slow_after_store", "400")
    enqueue(service, payload(note=secret_note, name=name))
    await drain(service, clock)
    text = caplog.text
    assert "note-aaaa1" in text  # the export id is logged ...
    for needle in (secret_note, "Marevan", name, "Sørensen", CPR, "010230-1234", "1930-02-01"):
        assert needle not in text  # ... and nothing about the person
    with AuditLog.open(data_dir, clock=clock) as log:
        dumped = json.dumps([e.__repr__() for e in log.entries()])
    for needle in (name, CPR, "Marevan"):
        assert needle not in dumped
    # The outbox file holds only ciphertext of the note.
    raw = (data_dir / "outbox.db").read_bytes() + (
        (data_dir / "outbox.db-wal").read_bytes() if (data_dir / "outbox.db-wal").exists() else b""
    )
    for needle in (secret_note, name, CPR):
        assert needle.encode() not in raw
        assert base64.b64encode(needle.encode()) not in raw


async def test_expired_token_is_renewed(
    service: ExportService, receiver: RunningReceiver, clock: FakeClock
) -> None:
    enqueue(service, payload("note-first"))
    await drain(service, clock)
    first_tokens = receiver.receiver.token_requests
    receiver.receiver.revoke_tokens()  # the EOJ rotated its keys: our cached token is dead
    enqueue(service, payload("note-second", entry_id="entry-other"))
    await drain(service, clock)
    assert receiver.receiver.token_requests == first_tokens + 1
    assert len(communication_of(receiver, "note-second")) == 1


async def test_wrong_client_secret_keeps_the_export(
    data_dir: Path, receiver: RunningReceiver, clock: FakeClock
) -> None:
    svc = ExportService.open(
        data_dir, clock=clock, config=export_config(receiver, client_secret="wrong")
    )
    worker = svc.build_worker()
    assert worker is not None
    try:
        enqueue(svc, payload())
        await worker.run_once()
        entry = svc.outbox.get("note-aaaa1")
        assert entry.state is OutboxState.PENDING
        assert entry.last_outcome == "failed_token_refused"
        assert entry.sealed is not None
        assert receiver.receiver.bodies == []
    finally:
        await svc.stop()
        svc.close()

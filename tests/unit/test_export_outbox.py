"""The outbox: durable, idempotent, sealed at rest, and the purge guard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from station.core.clock import FakeClock
from station.export import (
    ExportConfig,
    ExportConfigError,
    ExportNotConfigured,
    ExportService,
    Outbox,
    OutboxError,
    OutboxState,
    load_export_config,
)
from station.storage.store import BlindStore, Clinic

CLOCK_START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
SEALED = b"\x01" + bytes(range(200))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(CLOCK_START)


def test_enqueue_is_durable_and_idempotent(data_dir: Path, clock: FakeClock) -> None:
    with Outbox.open(data_dir, clock=clock) as outbox:
        assert outbox.pragmas() == {
            "journal_mode": "wal",
            "synchronous": 2,
            "foreign_keys": 1,
            "secure_delete": 1,
            "temp_store": 2,
        }
        entry, created = outbox.enqueue(export_id="note-1a", consultation_id="c-1a", sealed=SEALED)
        assert created and entry.state is OutboxState.PENDING
        again, created = outbox.enqueue(
            export_id="note-1a", consultation_id="c-1a", sealed=b"\x01other"
        )
        assert not created and again.sealed == SEALED
        with pytest.raises(OutboxError):
            outbox.enqueue(export_id="note-1a", consultation_id="c-2b", sealed=SEALED)
        with pytest.raises(OutboxError):
            outbox.enqueue(export_id="0102301234", consultation_id="c-1a", sealed=SEALED)
    # Reopened (a restart): still there, due now.
    with Outbox.open(data_dir, clock=clock) as outbox:
        (due,) = outbox.due(clock.now())
        assert due.id == "note-1a" and due.sealed == SEALED


def test_failure_schedules_and_delivery_drops_the_payload(data_dir: Path, clock: FakeClock) -> None:
    with Outbox.open(data_dir, clock=clock) as outbox:
        outbox.enqueue(export_id="note-1a", consultation_id="c-1a", sealed=SEALED)
        later = clock.now() + timedelta(seconds=30)
        failed = outbox.record_failure("note-1a", outcome="failed_timeout", next_attempt_at=later)
        assert failed.attempts == 1 and failed.last_outcome == "failed_timeout"
        assert outbox.due(clock.now()) == []
        assert outbox.next_due_at() == later
        assert outbox.blocking_consultations() == {"c-1a"}
        retried = outbox.retry_now("note-1a")
        assert retried.next_attempt_at == clock.now()
        delivered = outbox.mark_delivered("note-1a")
        assert delivered.state is OutboxState.DELIVERED and delivered.sealed is None
        assert outbox.blocking_consultations() == set()
        assert outbox.counts() == {"pending": 0, "delivered": 1}
        assert outbox.next_due_at() is None
    raw = (data_dir / "outbox.db").read_bytes()
    assert SEALED[1:] not in raw  # secure_delete and the WAL scrub left no copy


def _store_with_documented(data_dir: Path, clock: FakeClock, *ids: str) -> BlindStore:
    store = BlindStore.open(data_dir, clock=clock)
    store.put_clinic(Clinic("clinic-1", "Lægehuset", "057584", "room-1"))
    for cid in ids:
        store.create_consultation(
            consultation_id=cid,
            clinic_id="clinic-1",
            starts_at=CLOCK_START,
            ends_at=CLOCK_START + timedelta(minutes=15),
            consultation_type="video_consultation",
        )
        store.mark_documented(cid, CLOCK_START + timedelta(minutes=20))
    return store


def test_undelivered_export_blocks_purge(data_dir: Path, clock: FakeClock) -> None:
    store = _store_with_documented(data_dir, clock, "c-sent", "c-waiting", "c-summary")
    config = ExportConfig.model_validate(
        {
            "fhir_base_url": "https://eoj.example.dk/fhir",
            "token_url": "https://eoj.example.dk/token",
            "client_id": "a",
            "client_secret": "b",
            "care_home": {"name": "Solhaven", "sor": "123456789012345"},
        }
    )
    svc = ExportService.open(data_dir, clock=clock, config=config)
    try:
        for cid in ("c-sent", "c-waiting"):
            svc.enqueue(
                export_id=f"n-{cid}",
                consultation_id=cid,
                sealed=SEALED,
                entry_id=None,
                staff_id="s-1",
            )
        svc.outbox.mark_delivered("n-c-sent")
        # Before the retention time: nothing goes.
        assert svc.purge_documented(store, clock.now() + timedelta(hours=1)) == 0
        # After it: the delivered one and the one documented by summary go; the waiting stays.
        later = clock.now() + timedelta(days=2)
        assert svc.purge_documented(store, later) == 2
        assert [c.id for c in store.list_consultations()] == ["c-waiting"]
        assert svc.outbox.list_for_consultation("c-sent") == []  # receipt dropped too
        # Delivered at last: purged at the next pass.
        svc.outbox.mark_delivered("n-c-waiting")
        assert svc.purge_documented(store, later) == 1
        assert store.list_consultations() == []
    finally:
        svc.close()
        store.close()


def test_enqueue_refused_without_endpoint(data_dir: Path, clock: FakeClock) -> None:
    svc = ExportService.open(data_dir, clock=clock)
    try:
        assert not svc.delivery_enabled
        with pytest.raises(ExportNotConfigured):
            svc.enqueue(
                export_id="n-1a",
                consultation_id="c-1a",
                sealed=SEALED,
                entry_id=None,
                staff_id=None,
            )
    finally:
        svc.close()


def _config(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "fhir_base_url": "https://eoj.example.dk/fhir",
        "token_url": "https://eoj.example.dk/token",
        "client_id": "a",
        "client_secret": "top-secret-value",
        "care_home": {"name": "Solhaven", "sor": "123456789012345"},
    }
    data.update(overrides)
    return data


def test_config_requires_https() -> None:
    ExportConfig.parse(_config())
    with pytest.raises(ExportConfigError):
        ExportConfig.parse(_config(fhir_base_url="http://eoj.example.dk/fhir"))
    with pytest.raises(ExportConfigError):  # loopback, but without the test flag
        ExportConfig.parse(_config(fhir_base_url="http://127.0.0.1:8080/fhir"))
    with pytest.raises(ExportConfigError):  # the flag admits loopback only
        ExportConfig.parse(
            _config(fhir_base_url="http://10.0.0.5/fhir", allow_insecure_loopback=True)
        )
    ok = ExportConfig.parse(
        _config(
            fhir_base_url="http://127.0.0.1:8080/fhir",
            token_url="http://[::1]:8080/token",
            allow_insecure_loopback=True,
        )
    )
    assert "top-secret-value" not in repr(ok)


def test_config_file(tmp_path: Path) -> None:
    import json

    path = tmp_path / "export.json"
    assert load_export_config(path) is None
    path.write_text(json.dumps(_config()))
    path.chmod(0o644)
    with pytest.raises(ExportConfigError):
        load_export_config(path)  # holds a secret: must be 0600
    path.chmod(0o600)
    loaded = load_export_config(path)
    assert loaded is not None and loaded.care_home.sor == "123456789012345"

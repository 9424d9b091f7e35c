"""Residents and notes through the sealed fields of the blind store, with a real vault key."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from station.core.cpr import parse_cpr
from station.core.ids import new_id
from station.core.model import Resident, WithCpr, WithoutCpr
from station.keys.crypto import FieldRef, SealError
from station.keys.records import ConsultationKey, open_entry, open_note, seal_entry, seal_note
from station.keys.vault import VaultKey
from station.storage.store import BlindStore, Clinic

TRICKY = "Åse [bold]Ærø[/] Østergård 👵 [link=x]" + "x" * 150


@pytest.fixture
def store(data_dir: Path) -> BlindStore:
    s = BlindStore.open(data_dir)
    s.put_clinic(Clinic("clinic-1", "Lægehuset", "057584", "room-1"))
    return s


def _consultation(store: BlindStore) -> str:
    cid = new_id()
    start = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    store.create_consultation(
        consultation_id=cid,
        clinic_id="clinic-1",
        starts_at=start,
        ends_at=start + timedelta(minutes=20),
        consultation_type="video_consultation",
    )
    return cid


def test_residents_with_and_without_cpr_round_trip(store: BlindStore) -> None:
    with VaultKey.generate() as vault:
        cid = _consultation(store)
        key, wrapped = ConsultationKey.new(vault, cid)
        store.put_consultation_key(cid, wrapped)
        people = [
            WithoutCpr(TRICKY, date(1931, 2, 14), "Stue 12", note="Hører dårligt"),
            WithCpr(parse_cpr("070761-4285"), "Karen", room="Stue 7"),
        ]
        for identity in people:
            eid = new_id()
            store.add_entry(
                entry_id=eid,
                consultation_id=cid,
                sealed=seal_entry(key, eid, Resident(eid, identity), reason="Sår på benet"),
            )
        key.zero()

        reopened = ConsultationKey.unwrap(vault, cid, store.get_consultation_key(cid))
        opened = [open_entry(reopened, e) for e in store.list_entries(cid)]
    assert [o.resident.identity for o in opened] == people
    assert [o.reason for o in opened] == ["Sår på benet", "Sår på benet"]
    assert opened[1].resident.identity.cpr.formatted() == "070761-4285"  # type: ignore[union-attr]


def test_a_field_moved_to_another_entry_does_not_open(store: BlindStore) -> None:
    with VaultKey.generate() as vault:
        cid = _consultation(store)
        key, _ = ConsultationKey.new(vault, cid)
        first, second = new_id(), new_id()
        a = seal_entry(key, first, Resident(first, WithoutCpr("Anna", date(1940, 1, 1), "1")))
        b = seal_entry(key, second, Resident(second, WithoutCpr("Bent", date(1941, 1, 1), "2")))
        store.add_entry(entry_id=first, consultation_id=cid, sealed=a)
        # Anna's name pasted into Bent's row: it must fail, never show the wrong person.
        store.add_entry(
            entry_id=second, consultation_id=cid, sealed={**b, "display_name": a["display_name"]}
        )
        entries = store.list_entries(cid)
        assert open_entry(key, entries[0]).resident.display_name == "Anna"
        with pytest.raises(SealError):
            open_entry(key, entries[1])


def test_another_consultations_key_does_not_open_and_notes_survive_byte_for_byte(
    store: BlindStore,
) -> None:
    with VaultKey.generate() as vault:
        cid, other = _consultation(store), _consultation(store)
        key, wrapped = ConsultationKey.new(vault, cid)
        note_id = new_id()
        text = "Ny tid om 14 dage. <script>alert(1)</script> 💊 " + "æøå" * 6000
        store.add_note(note_id=note_id, consultation_id=cid, body=seal_note(key, note_id, text))
        (note,) = store.list_notes(cid)
        assert open_note(key, note_id, note.body) == text
        with pytest.raises(SealError):
            ConsultationKey.unwrap(vault, other, wrapped)  # a key moved to another consultation
        other_key, _ = ConsultationKey.new(vault, other)
        with pytest.raises(SealError):
            open_note(other_key, note_id, note.body)


def test_zeroed_key_is_useless_and_hides_itself() -> None:
    with VaultKey.generate() as vault:
        key, _ = ConsultationKey.new(vault, "c-1")
    assert "hidden" in repr(key)
    key.zero()
    with pytest.raises(SealError):
        key.seal("x", FieldRef("t", "r", "f"))

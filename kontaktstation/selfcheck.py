"""The station's end-to-end self-check, on a scratch data directory.

Runs the real parts in the order a day at the station uses them: make a vault and a staff
keyslot, store a round of residents sealed under a per-consultation key, lock, prove that
no personal data is readable anywhere on disk, refuse a wrong PIN, unlock with the right
one and read everything back, let the (locked) daemon write a sealed-box event only the
unlocked vault can read, verify the audit chain, purge after documentation, and check the
fake hardware. Prints one line per check; exits non-zero if any fails. Names and CPR numbers
below are invented demo data and are never printed.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from station.core.clock import FakeClock
from station.core.cpr import parse_cpr
from station.core.model import Resident, WithCpr, WithoutCpr
from station.keys.boxes import seal_to_vault
from station.keys.device_secret import DeviceSecret
from station.keys.keyring import KdfParams, Keyring, generate_escrow_keypair
from station.keys.pin_guard import PinGuard, WrongPin
from station.keys.records import ConsultationKey, open_entry, open_note, seal_entry, seal_note
from station.keys.vault import VaultKey
from station.storage.audit import AuditLog
from station.storage.datadir import DataDir
from station.storage.store import BlindStore, Clinic, new_id

__all__ = ["run_self_check"]

_DEMO_PIN = "2468"
_DEMO_STAFF = "s-demo"
#: Data as staff would type it: Danish letters on purpose (they must survive sealing).
_RESIDENTS = (
    WithoutCpr(
        "Åse Ærø Østergård",  # i18n: data
        date(1931, 2, 14),
        "Stue 12",
        note="Hører dårligt",  # i18n: data
    ),
    WithoutCpr("Jens Bøgh", date(1940, 7, 1), "Stue 3"),  # i18n: data
    WithCpr(parse_cpr("070761-4285"), "Karen Blixen-Hansen", room="Stue 7"),
)


@dataclass
class _Result:
    name: str
    ok: bool
    detail: str
    ms: float


def _files(root: Path) -> Iterator[Path]:
    for dirpath, _, names in os.walk(root):
        for name in names:
            yield Path(dirpath) / name


def _plaintext_hits(root: Path, secrets: list[str]) -> int:
    needles = [s.encode() for s in secrets] + [s.encode("utf-16-le") for s in secrets]
    return sum(1 for path in _files(root) for needle in needles if needle in path.read_bytes())


def run_self_check(*, verbose: bool = True, kdf: KdfParams | None = None) -> int:
    """Run every check on a temporary data directory; returns the process exit code."""
    with tempfile.TemporaryDirectory(prefix="kontaktstation-selfcheck-") as tmp:
        results = _run(Path(tmp), kdf)
    failed = [r for r in results if not r.ok]
    for r in results:
        if verbose or not r.ok:
            mark = "ok  " if r.ok else "FAIL"
            print(f"{mark}  {r.name:<44} {r.ms:8.1f} ms  {r.detail}")
    print(f"self-check: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def _run(root: Path, kdf: KdfParams | None) -> list[_Result]:
    results: list[_Result] = []

    def check(name: str, fn: Callable[[], str]) -> bool:
        start = time.perf_counter()
        try:
            detail, ok = fn(), True
        except Exception as exc:  # a self-check reports every failure, whatever it is
            detail, ok = f"{type(exc).__name__}: {exc}", False
        results.append(_Result(name, ok, detail, (time.perf_counter() - start) * 1000))
        return ok

    clock = FakeClock(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
    data = root / "data"
    data.mkdir(mode=0o700)
    secret = DeviceSecret.load_or_create(DataDir(data).device_secret)
    _, escrow_public = generate_escrow_keypair()
    guard = PinGuard(DataDir(data).pin_attempts, clock, device_secret=secret)
    store = BlindStore.open(data, clock=clock)
    audit = AuditLog.open(data, clock=clock)
    state: dict[str, object] = {}
    personal = [r.display_name for r in _RESIDENTS] + ["070761-4285", "0707614285", "Stue 12"]
    note_text = "Lægen justerer medicinen; ny tid om to uger. 💊"  # i18n: data

    def make_vault() -> str:
        params = {} if kdf is None else {"kdf_params": kdf}
        keyring, vault = Keyring.initialise(
            DataDir(data).keyslots, secret, escrow_public, guard=guard, **params
        )
        keyring.add_slot(vault, _DEMO_STAFF, _DEMO_PIN)
        state["keyring"], state["vault"] = keyring, vault
        audit.record("unlock", staff=_DEMO_STAFF, resident=None, outcome="ok")
        return "vault key made, staff keyslot added (Argon2id)"

    def store_round() -> str:
        vault = state["vault"]
        assert isinstance(vault, VaultKey)
        store.put_clinic(Clinic("clinic-1", "Lægehuset Demo", "057584", "room-demo"))  # i18n: data
        cid = new_id()
        start = clock.now() + timedelta(minutes=10)
        store.create_consultation(
            consultation_id=cid,
            clinic_id="clinic-1",
            starts_at=start,
            ends_at=start + timedelta(minutes=30),
            consultation_type="video_consultation",
        )
        key, wrapped = ConsultationKey.new(vault, cid)
        store.put_consultation_key(cid, wrapped)
        for identity in _RESIDENTS:
            entry_id = new_id()
            reason = "Opfølgning"  # i18n: data
            sealed = seal_entry(key, entry_id, Resident(entry_id, identity), reason)
            store.add_entry(entry_id=entry_id, consultation_id=cid, sealed=sealed)
            audit.record("record_opened", staff=_DEMO_STAFF, resident=entry_id, outcome="ok")
        note_id = new_id()
        store.add_note(
            note_id=note_id, consultation_id=cid, body=seal_note(key, note_id, note_text)
        )
        key.zero()
        state["cid"], state["note_id"] = cid, note_id
        return f"round of {len(_RESIDENTS)} residents and a note stored sealed"

    def lock() -> str:
        vault = state.pop("vault")
        assert isinstance(vault, VaultKey)
        start = time.perf_counter()
        vault.zero()
        took = (time.perf_counter() - start) * 1e6
        if not vault.is_zeroed:
            raise AssertionError("vault key not zeroed")
        audit.record("lock", staff=_DEMO_STAFF, resident=None, outcome="ok")
        return f"vault key zeroed in {took:.1f} µs"

    def no_plaintext() -> str:
        hits = _plaintext_hits(data, [*personal, note_text])
        if hits:
            raise AssertionError(f"{hits} plaintext hits in the data directory")
        return f"{sum(1 for _ in _files(data))} files searched byte by byte: no personal data"

    def daemon_writes_while_locked() -> str:
        keyring = state["keyring"]
        assert isinstance(keyring, Keyring)
        cid = str(state["cid"])
        blob = seal_to_vault(keyring.vault_public_key(), b"call ended after 14 min", cid.encode())
        store.add_sealed_event(consultation_id=cid, kind="call_ended", blob=blob)
        return "sealed-box event written with the public key only"

    def wrong_pin_refused() -> str:
        keyring = state["keyring"]
        assert isinstance(keyring, Keyring)
        try:
            keyring.unlock(_DEMO_STAFF, "9999")
        except WrongPin as exc:
            return f"refused: {exc.user_message}"
        raise AssertionError("a wrong PIN unlocked the vault")

    def unlock_and_read() -> str:
        keyring = state["keyring"]
        assert isinstance(keyring, Keyring)
        cid, note_id = str(state["cid"]), str(state["note_id"])
        with keyring.unlock(_DEMO_STAFF, _DEMO_PIN) as vault:
            key = ConsultationKey.unwrap(vault, cid, store.get_consultation_key(cid))
            names = [open_entry(key, e).resident.display_name for e in store.list_entries(cid)]
            if names != [r.display_name for r in _RESIDENTS]:
                raise AssertionError("residents did not read back in queue order")
            (note,) = store.list_notes(cid)
            if open_note(key, note_id, note.body) != note_text:
                raise AssertionError("note did not read back byte for byte")
            (event,) = store.list_sealed_events(cid)
            if vault.open_sealed_box(event.blob, cid.encode()) != b"call ended after 14 min":
                raise AssertionError("sealed-box event did not open")
            key.zero()
        return "PIN unlock; residents, note and locked-time event read back"

    def audit_chain() -> str:
        report = audit.verify()
        if not report.ok:
            raise AssertionError(f"audit chain broken at {report.first_bad_seq}: {report.problem}")
        return f"{report.checked} entries, hash chain intact"

    def purge() -> str:
        cid = str(state["cid"])
        store.mark_documented(cid, clock.now())
        clock.advance(timedelta(hours=24, seconds=1))
        purged = store.purge_documented(clock.now())
        if purged != 1:
            raise AssertionError(f"expected 1 consultation purged, got {purged}")
        return "documented consultation purged after 24 h (its key destroyed)"

    def hardware() -> str:
        from hardware.bundle import build_hardware
        from hardware.health import run_health_checks

        async def go() -> list[tuple[str, bool]]:
            hw = build_hardware(
                {"KONTAKTSTATION_HARDWARE": "fake"}, loop=asyncio.get_running_loop()
            )
            try:
                return [(r.name, r.ok) for r in await run_health_checks(hw)]
            finally:
                await hw.aclose()

        found = asyncio.run(go())
        bad = [name for name, ok in found if not ok]
        if bad:
            raise AssertionError(f"failing: {', '.join(bad)}")
        return f"{len(found)} fake hardware parts healthy"

    try:
        if check("vault and staff keyslot", make_vault):
            check("store a round sealed", store_round)
            check("lock (zero the key)", lock)
            check("no plaintext on disk", no_plaintext)
            check("daemon writes while locked", daemon_writes_while_locked)
            check("wrong PIN refused", wrong_pin_refused)
            check("unlock with PIN and read back", unlock_and_read)
            check("audit chain verifies", audit_chain)
            check("retention purge", purge)
        check("hardware health (fake parts)", hardware)
    finally:
        store.close()
        audit.close()
        guard.close()
    return results

"""Keyslots: PIN wrapping, admin changes, escrow, guarded unlock, and damaged files."""

from __future__ import annotations

import base64
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

import station.keys.keyring as keyring_module
import station.keys.keyslots as keyslots_module
from station.core.clock import FakeClock
from station.core.ids import is_opaque_id
from station.keys.boxes import open_sealed_box, seal_to_vault
from station.keys.crypto import FieldRef, SealError
from station.keys.errors import VaultError
from station.keys.keyring import (
    DEFAULT_KDF_PARAMS,
    InvalidPin,
    InvalidStaffId,
    KdfParams,
    Keyring,
    KeyringCorrupt,
    KeyringExists,
    KeyringNotFound,
    NoSuchSlot,
    SlotExists,
    WrongDeviceSecret,
    generate_escrow_keypair,
)
from station.keys.pin_guard import PinGuard, SlotDisabled, Throttled, WrongPin
from station.keys.vault import VaultKey

#: Small Argon2 cost for tests, passed explicitly; production uses DEFAULT_KDF_PARAMS.
FAST = KdfParams(memory_kib=64, time_cost=1, parallelism=1)
REF = FieldRef("residents", "r-1", "name")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def guard(tmp_path: Path, clock: FakeClock) -> Iterator[PinGuard]:
    with PinGuard(tmp_path / "pin_attempts.sqlite3", clock, device_secret=bytes(32)) as g:
        yield g


@pytest.fixture
def secret() -> bytes:
    return os.urandom(32)


@pytest.fixture
def escrow() -> tuple[bytes, bytes]:
    return generate_escrow_keypair()


@pytest.fixture
def path(data_dir: Path) -> Path:
    return data_dir / "keyslots.json"


@pytest.fixture
def made(
    path: Path, secret: bytes, escrow: tuple[bytes, bytes], guard: PinGuard
) -> Iterator[tuple[Keyring, VaultKey]]:
    """A keyring with two staff slots, and its vault key (zeroed afterwards)."""
    keyring, vault_key = Keyring.initialise(path, secret, escrow[1], guard=guard, kdf_params=FAST)
    keyring.add_slot(vault_key, "s-3f9a", "1234")
    keyring.add_slot(vault_key, "s-77c0", "987654")
    with vault_key:
        yield keyring, vault_key


def slots_by_id(path: Path) -> dict[str, str]:
    """Each slot's exact serialised text, by staff id."""
    doc = json.loads(path.read_text())
    return {slot["staff_id"]: json.dumps(slot, sort_keys=True) for slot in doc["slots"]}


# --------------------------------------------------------------------------- happy paths


def test_unlock_gives_the_vault_key(made: tuple[Keyring, VaultKey]) -> None:
    keyring, vault_key = made
    blob = vault_key.seal(b"Karen", REF)
    with keyring.unlock("s-3f9a", "1234") as opened:
        assert opened.open(blob, REF) == b"Karen"
        assert opened.public_key() == keyring.vault_public_key() == vault_key.public_key()
    assert opened.is_zeroed
    with keyring.unlock("s-77c0", "987654") as again:
        assert again.open(blob, REF) == b"Karen"


def test_unlock_with_the_real_default_parameters(
    path: Path, secret: bytes, escrow: tuple[bytes, bytes], guard: PinGuard
) -> None:
    assert DEFAULT_KDF_PARAMS.production_strength
    assert DEFAULT_KDF_PARAMS.memory_kib >= 65536
    keyring, vault_key = Keyring.initialise(path, secret, escrow[1], guard=guard)
    with vault_key:
        keyring.add_slot(vault_key, "s-real", "20260125")
        blob = vault_key.seal(b"Karen", REF)
    kdf = json.loads(path.read_text())["slots"][0]["kdf"]
    assert (kdf["memory_kib"], kdf["time_cost"], kdf["parallelism"]) == (
        DEFAULT_KDF_PARAMS.memory_kib,
        DEFAULT_KDF_PARAMS.time_cost,
        DEFAULT_KDF_PARAMS.parallelism,
    )
    with Keyring.load(path, secret, guard=guard).unlock("s-real", "20260125") as opened:
        assert opened.open(blob, REF) == b"Karen"


pins = st.from_regex(r"[0-9]{4,12}", fullmatch=True)
staff_ids = st.from_regex(r"s-[0-9a-f]{1,16}", fullmatch=True).filter(is_opaque_id)


@settings(max_examples=25, deadline=None)
@given(staff_id=staff_ids, pin=pins, other=pins)
def test_keyslot_round_trip_for_random_pins(staff_id: str, pin: str, other: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        secret = os.urandom(32)
        with PinGuard(directory / "pins.sqlite3", FakeClock(), device_secret=secret) as guard:
            keyring, vault_key = Keyring.initialise(
                directory / "keyslots.json",
                secret,
                generate_escrow_keypair()[1],
                guard=guard,
                kdf_params=FAST,
            )
            with vault_key:
                keyring.add_slot(vault_key, staff_id, pin)
                with keyring.unlock(staff_id, pin) as opened:
                    assert opened.public_key() == vault_key.public_key()
            if other != pin:
                with pytest.raises(WrongPin):
                    keyring.unlock(staff_id, other)


def test_files_are_private(made: tuple[Keyring, VaultKey], path: Path) -> None:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["keyslots.json", "keyslots.json.lock"]


def test_listing(made: tuple[Keyring, VaultKey]) -> None:
    keyring, _ = made
    assert keyring.staff_ids() == ["s-3f9a", "s-77c0"]
    assert keyring.has_slot("s-3f9a")
    assert not keyring.has_slot("s-nobody")
    assert "1234" not in repr(keyring)


def test_the_file_holds_no_pin_and_no_key(made: tuple[Keyring, VaultKey], path: Path) -> None:
    _, vault_key = made
    text = path.read_text()
    raw = vault_key._material()
    assert base64.b64encode(bytes(raw)).decode() not in text
    assert raw.hex() not in text
    assert "987654" not in text


# --------------------------------------------------------------------------- admin changes


def test_initialise_refuses_to_overwrite(
    made: tuple[Keyring, VaultKey],
    path: Path,
    secret: bytes,
    escrow: tuple[bytes, bytes],
    guard: PinGuard,
) -> None:
    before = path.read_bytes()
    with pytest.raises(KeyringExists):
        Keyring.initialise(path, secret, escrow[1], guard=guard, kdf_params=FAST)
    assert path.read_bytes() == before


def test_remove_slot_then_unlock_fails(made: tuple[Keyring, VaultKey], path: Path) -> None:
    keyring, _ = made
    keep = slots_by_id(path)["s-77c0"]
    keyring.remove_slot("s-3f9a")
    assert keyring.staff_ids() == ["s-77c0"]
    with pytest.raises(WrongPin):
        keyring.unlock("s-3f9a", "1234")
    assert slots_by_id(path)["s-77c0"] == keep
    with pytest.raises(NoSuchSlot):
        keyring.remove_slot("s-3f9a")


def test_a_removal_by_another_process_takes_effect_at_once(
    made: tuple[Keyring, VaultKey], path: Path, secret: bytes, guard: PinGuard
) -> None:
    keyring, _ = made
    keyring.unlock("s-3f9a", "1234").zero()  # warm cache
    Keyring.load(path, secret, guard=guard, kdf_params=FAST).remove_slot("s-3f9a")
    with pytest.raises(WrongPin):
        keyring.unlock("s-3f9a", "1234")


def test_add_slot_refusals(made: tuple[Keyring, VaultKey]) -> None:
    keyring, vault_key = made
    with pytest.raises(SlotExists):
        keyring.add_slot(vault_key, "s-3f9a", "4321")
    with pytest.raises(VaultError, match="does not belong"):
        keyring.add_slot(VaultKey.generate(), "s-new", "4321")
    for bad in ["", "Karen Hansen", "s/1", "x" * 65, "s-æ"]:
        with pytest.raises(InvalidStaffId):
            keyring.add_slot(vault_key, bad, "4321")
    with pytest.raises(InvalidPin):
        keyring.add_slot(vault_key, "s-new", "12a4")


def test_add_slot_gives_a_clean_count(
    made: tuple[Keyring, VaultKey], guard: PinGuard, clock: FakeClock
) -> None:
    keyring, vault_key = made
    keyring.remove_slot("s-3f9a")
    for _ in range(10):
        clock.advance(timedelta(hours=1))
        with pytest.raises((WrongPin, SlotDisabled)):
            keyring.unlock("s-3f9a", "1111")
    keyring.add_slot(vault_key, "s-3f9a", "2222")
    keyring.unlock("s-3f9a", "2222").zero()


@pytest.mark.parametrize("pin", ["123", "1234567890123", "12a4", "", " 1234", "١٢٣٤", "12.4"])
def test_pin_rules_and_no_attempt_counted(
    made: tuple[Keyring, VaultKey], guard: PinGuard, pin: str
) -> None:
    keyring, _ = made
    with pytest.raises(InvalidPin) as caught:
        keyring.unlock("s-3f9a", pin)
    assert caught.value.user_message == "PIN-koden skal være 4 til 12 cifre."
    assert pin not in str(caught.value) or pin == ""
    assert guard.status("s-3f9a").consecutive_failures == 0


# --------------------------------------------------------------------------- escrow


def _open_escrow_slot(path: Path, private: bytes) -> bytes:
    """What an offline recovery tool on IT's machine does with a station's keyslots.json."""
    document = json.loads(path.read_text("utf-8"))
    public = base64.b64decode(document["vault_public_key"])
    sealed = base64.b64decode(document["escrow"]["sealed_vault_key"])
    return open_sealed_box(
        X25519PrivateKey.from_private_bytes(private),
        sealed,
        b"kontaktstation escrow v1" + public,
    )


def test_the_escrow_slot_opens_with_its_offline_key_alone(
    made: tuple[Keyring, VaultKey], path: Path, escrow: tuple[bytes, bytes]
) -> None:
    # No device secret: only the card's keyslots.json and IT's offline private key.
    _, vault_key = made
    blob = vault_key.seal(b"Karen", REF)
    with VaultKey(bytearray(_open_escrow_slot(path, escrow[0]))) as recovered:
        assert recovered.public_key() == vault_key.public_key()
        assert recovered.open(blob, REF) == b"Karen"


def test_the_escrow_slot_refuses_another_recovery_key(
    made: tuple[Keyring, VaultKey], path: Path
) -> None:
    with pytest.raises(SealError):
        _open_escrow_slot(path, generate_escrow_keypair()[0])


def test_the_daemon_seals_with_the_public_key_from_the_file(
    made: tuple[Keyring, VaultKey], path: Path, secret: bytes, guard: PinGuard
) -> None:
    # stationd holds only the keyring (no PIN, no vault key).
    public = Keyring.load(path, secret, guard=guard).vault_public_key()
    box = seal_to_vault(public, b"call ended", b"calls/c-1")
    keyring, _ = made
    with keyring.unlock("s-77c0", "987654") as opened:
        assert opened.open_sealed_box(box, b"calls/c-1") == b"call ended"


# --------------------------------------------------------------------------- guarded unlock


def test_unknown_id_is_indistinguishable_from_a_wrong_pin(
    made: tuple[Keyring, VaultKey],
    guard: PinGuard,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keyring, _ = made
    calls: list[tuple[int, int, int]] = []
    real = keyring_module.hash_secret_raw

    def spy(**kwargs: Any) -> bytes:
        calls.append((kwargs["memory_cost"], kwargs["time_cost"], kwargs["parallelism"]))
        return real(**kwargs)

    monkeypatch.setattr(keyring_module, "hash_secret_raw", spy)

    errors: dict[str, list[Exception]] = {"s-3f9a": [], "s-nobody": []}
    for staff_id, collected in errors.items():
        for _ in range(4):
            try:
                keyring.unlock(staff_id, "0000")
            except (WrongPin, Throttled) as exc:
                collected.append(exc)
    known, unknown = errors["s-3f9a"], errors["s-nobody"]
    assert [type(e) for e in known] == [type(e) for e in unknown]
    assert [str(e) for e in known] == [str(e) for e in unknown]
    assert [e.user_message for e in known] == [e.user_message for e in unknown]  # type: ignore[attr-defined]
    # Both ran the same Argon2 work for each counted attempt (3 each, then throttled).
    assert calls == [(FAST.memory_kib, FAST.time_cost, FAST.parallelism)] * 6


def test_ten_wrong_pins_disable_the_slot_even_for_the_right_pin(
    made: tuple[Keyring, VaultKey], guard: PinGuard, clock: FakeClock
) -> None:
    keyring, _ = made
    raised = []
    for _ in range(10):
        clock.advance(timedelta(hours=1))
        with pytest.raises((WrongPin, SlotDisabled)) as caught:
            keyring.unlock("s-3f9a", "0000")
        raised.append(type(caught.value))
    assert raised == [WrongPin] * 9 + [SlotDisabled]
    with pytest.raises(SlotDisabled):
        keyring.unlock("s-3f9a", "1234")
    keyring.unlock("s-77c0", "987654").zero()  # others unaffected
    guard.reenable("s-3f9a")
    keyring.unlock("s-3f9a", "1234").zero()


def test_backoff_applies_to_the_right_pin_too(
    made: tuple[Keyring, VaultKey], clock: FakeClock
) -> None:
    keyring, _ = made
    for _ in range(3):
        with pytest.raises(WrongPin):
            keyring.unlock("s-3f9a", "0000")
    with pytest.raises(Throttled) as caught:
        keyring.unlock("s-3f9a", "1234")
    assert "30 sekunder" in caught.value.user_message
    clock.advance(30)
    keyring.unlock("s-3f9a", "1234").zero()


# --------------------------------------------------------------------------- damaged files


def _rewrite(path: Path, change: Callable[[dict[str, Any]], None], secret: bytes | None) -> None:
    """Edit the file; with ``secret``, re-sign it as someone holding the device secret would."""
    doc = json.loads(path.read_text())
    change(doc)
    if secret is not None:
        body = {k: v for k, v in doc.items() if k != "mac"}
        doc["mac"] = base64.b64encode(keyslots_module._mac(body, secret)).decode()
    path.write_text(json.dumps(doc))


def _flip_wrapped_key(doc: dict[str, Any]) -> None:
    raw = bytearray(base64.b64decode(doc["slots"][0]["wrapped_key"]))
    raw[20] ^= 1
    doc["slots"][0]["wrapped_key"] = base64.b64encode(raw).decode()


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda b: b"",
    "truncated": lambda b: b[: len(b) // 2],
    "not json": lambda b: b"\x00\xff garbage",
    "a list": lambda b: b"[]",
    "flipped byte": lambda b: b.replace(b'"s-3f9a"', b'"s-3f9b"', 1),
}


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_damaged_file_is_refused_and_left_alone(
    made: tuple[Keyring, VaultKey], path: Path, secret: bytes, guard: PinGuard, name: str
) -> None:
    damaged = DAMAGE[name](path.read_bytes())
    path.write_bytes(damaged)
    with pytest.raises(KeyringCorrupt) as caught:
        Keyring.load(path, secret, guard=guard)
    assert caught.value.user_message == "Stationens nøglefil er beskadiget. Kontakt IT."
    keyring, _ = made  # an instance loaded before the damage
    with pytest.raises(KeyringCorrupt):
        keyring.unlock("s-3f9a", "1234")
    with pytest.raises(KeyringCorrupt):
        keyring.remove_slot("s-3f9a")
    assert path.read_bytes() == damaged
    assert guard.station_failures() == 0  # a damaged file costs nobody an attempt


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.pop("escrow"),
        lambda d: d["slots"][0].pop("wrapped_key"),
        lambda d: d["slots"][0].update(wrapped_key="not base64!"),
        lambda d: d["slots"][0]["kdf"].update(memory_kib=True),
        lambda d: d["slots"][0]["kdf"].update(memory_kib=1 << 40),
        lambda d: d["slots"][0]["kdf"].update(algorithm="pbkdf2"),
        lambda d: d["slots"].append(d["slots"][0]),
        lambda d: d.update(version=2),
        lambda d: d.update(vault_public_key=base64.b64encode(os.urandom(32)).decode()),
        _flip_wrapped_key,
    ],
)
def test_edited_file_fails_the_integrity_check(
    made: tuple[Keyring, VaultKey],
    path: Path,
    secret: bytes,
    guard: PinGuard,
    change: Callable[[dict[str, Any]], None],
) -> None:
    _rewrite(path, change, secret=None)
    before = path.read_bytes()
    with pytest.raises(KeyringCorrupt):
        Keyring.load(path, secret, guard=guard)
    assert path.read_bytes() == before


def test_tampered_wrapped_key_never_opens_even_when_re_signed(
    made: tuple[Keyring, VaultKey], path: Path, secret: bytes, guard: PinGuard
) -> None:
    """Someone holding the device secret re-signs the file: AES-GCM still refuses the slot."""
    _rewrite(path, _flip_wrapped_key, secret=secret)
    keyring = Keyring.load(path, secret, guard=guard)
    with pytest.raises(WrongPin):
        keyring.unlock("s-3f9a", "1234")
    keyring.unlock("s-77c0", "987654").zero()


def test_a_slot_moved_to_another_staff_id_does_not_open(
    made: tuple[Keyring, VaultKey], path: Path, secret: bytes, guard: PinGuard
) -> None:
    def move(doc: dict[str, Any]) -> None:
        a, b = doc["slots"]
        a["wrapped_key"], b["wrapped_key"] = b["wrapped_key"], a["wrapped_key"]
        a["kdf"], b["kdf"] = b["kdf"], a["kdf"]

    _rewrite(path, move, secret=secret)
    keyring = Keyring.load(path, secret, guard=guard)
    with pytest.raises(WrongPin):
        keyring.unlock("s-3f9a", "987654")


def test_wrong_device_secret_is_its_own_clear_error(
    made: tuple[Keyring, VaultKey], path: Path, guard: PinGuard
) -> None:
    before = path.read_bytes()
    with pytest.raises(WrongDeviceSecret, match="different device secret"):
        Keyring.load(path, os.urandom(32), guard=guard)
    assert path.read_bytes() == before
    assert guard.station_failures() == 0


def test_missing_keyring(tmp_path: Path, secret: bytes, guard: PinGuard) -> None:
    with pytest.raises(KeyringNotFound):
        Keyring.load(tmp_path / "keyslots.json", secret, guard=guard)

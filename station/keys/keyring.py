"""Keyslots: the vault key wrapped once per staff member's PIN, plus IT's escrow slot.

One JSON file, ``keyslots.json`` in the data directory, written atomically. Per staff member
a slot holds the pseudonymous staff id, the Argon2id parameters and salt, and the vault key
wrapped with AES-256-GCM (associated data: the slot format and staff id) under

    KEK = HKDF-SHA256(ikm  = Argon2id(PIN, salt),
                      salt = device secret,
                      info = b"kontaktstation keyslot v1" + staff_id)

so a copied SD card without the device secret cannot be brute-forced off the station, and a
slot moved to another staff id does not open. The escrow slot is the vault key sealed (an HPKE
sealed box, :mod:`station.keys.boxes`, context ``kontaktstation escrow v1`` + the vault's public
key) to IT's offline recovery public key.

Nothing in the product opens the escrow slot. A recovery has to end either with a new keyslot
on the station (which needs the device secret, and that never leaves the station) or with
personal data opened on IT's machine (which the design rules out); and IT's private key must
never travel to a station. So it needs a station-side half and a sealed way back for the
vault key: a protocol of its own, not a function here. Until then the slot keeps the vault
key recoverable, and a test pins its format; a station nobody can unlock is crypto-wiped
(``kontaktstation admin wipe``) and its next staff member starts a new keyring.

The file itself (its format, the HMAC over it keyed from the device secret, the device check)
is :mod:`station.keys.keyslots`; it is re-read and authenticated on every use. Nothing here
ever overwrites a file it could not read.

Staff log in with a **short staff number** (issue 17): 3 or 4 digits, drawn at random when
the slot is made, unique on the station, kept in the slot (and so under the file's HMAC). The
number finds the slot, so a log-in costs exactly one Argon2id evaluation; the pseudonymous
staff id stays the identity (the KEK, the audit log, the hub). A file written before numbers
existed has its slots numbered the first time it is loaded.

Every PIN check goes through a :class:`~station.keys.pin_guard.PinGuard` the keyring is built with,
keyed on the number typed; there is no unguarded unlock.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from argon2.low_level import ARGON2_VERSION, Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from station.core.ids import is_opaque_id
from station.keys.boxes import seal_to_vault
from station.keys.device_secret import DEVICE_SECRET_BYTES
from station.keys.errors import (
    InvalidPin,
    InvalidStaffId,
    InvalidStaffNumber,
    KeyringCorrupt,
    KeyringExists,
    KeyringNotFound,
    NoSuchSlot,
    SlotExists,
    StaffNumberTaken,
    VaultError,
    WrongDeviceSecret,
)
from station.keys.keyslots import (
    DEFAULT_KDF_PARAMS,
    NONCE_BYTES,
    SALT_BYTES,
    STAFF_NUMBER,
    WRAPPED_BYTES,
    KdfParams,
    KeyslotsDocument,
    Slot,
    device_check,
    hkdf,
    parse_keyslots,
    read_keyslots_file,
    serialise_keyslots,
)
from station.keys.pin_guard import PinGuard
from station.keys.vault import VaultKey
from station.storage.datadir import DataDir
from station.storage.private_files import write_private_file

__all__ = [
    "DEFAULT_KDF_PARAMS",
    "KEYSLOTS_FILE",
    "InvalidPin",
    "InvalidStaffId",
    "InvalidStaffNumber",
    "KdfParams",
    "Keyring",
    "KeyringCorrupt",
    "KeyringExists",
    "KeyringNotFound",
    "NoSuchSlot",
    "SlotExists",
    "StaffNumberTaken",
    "WrongDeviceSecret",
    "generate_escrow_keypair",
    "validate_new_pin",
    "validate_pin",
    "validate_staff_number",
]

KEYSLOTS_FILE = DataDir.KEYSLOTS
_SLOT_INFO = b"kontaktstation keyslot v1"
_ESCROW_CONTEXT = b"kontaktstation escrow v1"
_PIN = re.compile(r"[0-9]{4,12}")


# --------------------------------------------------------------------------- KDF parameters


def validate_pin(pin: str) -> None:
    """Raise :class:`InvalidPin` unless ``pin`` is 4-12 ASCII digits."""
    if not isinstance(pin, str) or not _PIN.fullmatch(pin):
        raise InvalidPin("PIN must be 4-12 ASCII digits")


#: A PIN chosen now: at least 6 digits. Offline, against a copied SD card whose device secret
#: is a file, each guess costs one Argon2id evaluation (117 ms on this project's 2-core
#: development machine, bench/vault.py): all 4-digit PINs in ~20 min, all 6-digit ones in
#: ~33 h, per machine; a guessing farm divides that. The length only slows a copy down: the
#: OTP device secret (station.keys.device_secret) is what leaves a copy nothing to guess
#: against. Slots made before this rule keep their 4-5 digit PINs until re-enrolled.
_NEW_PIN = re.compile(r"[0-9]{6,12}")


def validate_new_pin(pin: str) -> None:
    """Raise :class:`InvalidPin` unless ``pin`` may be chosen now (6-12 ASCII digits)."""
    validate_pin(pin)
    if not _NEW_PIN.fullmatch(pin):
        raise InvalidPin("a new PIN must be 6-12 ASCII digits")


def validate_staff_number(number: str) -> None:
    """Raise :class:`InvalidStaffNumber` unless ``number`` is 3 or 4 ASCII digits."""
    if not isinstance(number, str) or not STAFF_NUMBER.fullmatch(number):
        raise InvalidStaffNumber("staff number must be 3 or 4 ASCII digits")


def _free_number(taken: set[str]) -> str:
    """A random unused staff number: 3 digits while fewer than half of them are taken, then 4.

    Random rather than counting up, so a number says nothing about who enrolled when, and a
    guesser cannot walk the numbers in order.
    """
    short = [str(n) for n in range(100, 1000) if str(n) not in taken]
    if len(short) > 450:
        return secrets.choice(short)
    return secrets.choice([str(n) for n in range(1000, 10000) if str(n) not in taken])


def _validate_staff_id(staff_id: str) -> None:
    if not isinstance(staff_id, str) or not is_opaque_id(staff_id):
        raise InvalidStaffId(
            "staff id must be an opaque id: 1-64 of A-Z a-z 0-9 . _ -, starting with a letter "
            "or digit, never CPR-like"
        )


def generate_escrow_keypair() -> tuple[bytes, bytes]:
    """A fresh X25519 recovery key pair for IT: ``(private, public)``, 32 raw bytes each.

    The private half belongs offline (IT's safe); only the public half goes to the station.
    """
    private = X25519PrivateKey.generate()
    return (
        private.private_bytes_raw(),
        private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
    )


# --------------------------------------------------------------------------- wrapping


def _slot_aad(staff_id: str) -> bytes:
    sid = staff_id.encode("ascii")
    return _SLOT_INFO + len(sid).to_bytes(2, "big") + sid


def _derive_kek(
    pin: str, kdf: KdfParams, salt: bytes, device_secret: bytes, staff_id: str
) -> bytes:
    stretched = hash_secret_raw(
        secret=pin.encode("ascii"),
        salt=salt,
        time_cost=kdf.time_cost,
        memory_cost=kdf.memory_kib,
        parallelism=kdf.parallelism,
        hash_len=32,
        type=Type.ID,
        version=ARGON2_VERSION,
    )
    return hkdf(stretched, _SLOT_INFO + staff_id.encode("ascii"), salt=device_secret)


def _wrap(kek: bytes, vault_key: bytearray, staff_id: str) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(kek).encrypt(nonce, bytes(vault_key), _slot_aad(staff_id))


def _try_unwrap(slot: Slot, pin: str, device_secret: bytes, staff_id: str) -> bytearray | None:
    kek = _derive_kek(pin, slot.kdf, slot.salt, device_secret, staff_id)
    nonce, sealed = slot.wrapped_key[:NONCE_BYTES], slot.wrapped_key[NONCE_BYTES:]
    try:
        return bytearray(AESGCM(kek).decrypt(nonce, sealed, _slot_aad(staff_id)))
    except InvalidTag:
        return None


# --------------------------------------------------------------------------- the keyring


class Keyring:
    """The station's keyslots file, with every PIN check going through a :class:`PinGuard`.

    Build it with :meth:`initialise` (once, at enrolment) or :meth:`load`. ``kdf_params``
    applies to slots written from now on; tests pass small ones
    explicitly, production uses :data:`DEFAULT_KDF_PARAMS`. The file is re-read on every use,
    so a slot removed by stationd stops working here at once.
    """

    def __init__(
        self,
        path: Path,
        device_secret: bytes,
        *,
        guard: PinGuard,
        kdf_params: KdfParams = DEFAULT_KDF_PARAMS,
    ) -> None:
        if len(device_secret) != DEVICE_SECRET_BYTES:
            raise VaultError(f"device secret must be {DEVICE_SECRET_BYTES} bytes")
        self.path = path
        self._device_secret = bytes(device_secret)
        self._guard = guard
        self.kdf_params = kdf_params
        self._doc = self._current()
        if any(slot.number is None for slot in self._doc.slots.values()):
            self._number_old_slots()

    def __repr__(self) -> str:
        return f"Keyring(path={str(self.path)!r}, slots={len(self._doc.slots)})"

    # -- construction

    @classmethod
    def initialise(
        cls,
        path: Path,
        device_secret: bytes,
        escrow_public_key: bytes,
        *,
        guard: PinGuard,
        kdf_params: KdfParams = DEFAULT_KDF_PARAMS,
    ) -> tuple[Keyring, VaultKey]:
        """Create a keyring with a new random vault key and IT's escrow slot, no staff slots.

        Refuses (:class:`KeyringExists`) if ``path`` exists: overwriting a keyring would make
        every sealed record unreadable.
        """
        if path.exists() or path.is_symlink():
            raise KeyringExists(f"a keyring already exists at {path}; refusing to overwrite it")
        if len(device_secret) != DEVICE_SECRET_BYTES:
            raise VaultError(f"device secret must be {DEVICE_SECRET_BYTES} bytes")
        vault_key = VaultKey.generate()
        try:
            public = vault_key.public_key()
            doc = KeyslotsDocument(
                vault_public_key=public,
                recovery_public_key=bytes(escrow_public_key),
                sealed_vault_key=seal_to_vault(
                    escrow_public_key, bytes(vault_key._material()), _ESCROW_CONTEXT + public
                ),
                device_check=device_check(device_secret),
                slots={},
            )
            try:
                write_private_file(path, serialise_keyslots(doc, device_secret), replace=False)
            except FileExistsError:
                raise KeyringExists(
                    f"a keyring already exists at {path}; refusing to overwrite it"
                ) from None
            keyring = cls(path, device_secret, guard=guard, kdf_params=kdf_params)
        except BaseException:
            vault_key.zero()
            raise
        return keyring, vault_key

    @classmethod
    def load(
        cls,
        path: Path,
        device_secret: bytes,
        *,
        guard: PinGuard,
        kdf_params: KdfParams = DEFAULT_KDF_PARAMS,
    ) -> Keyring:
        """Open an existing keyring; :class:`KeyringNotFound`, :class:`KeyringCorrupt` or
        :class:`WrongDeviceSecret` if it cannot be used as it is."""
        return cls(path, device_secret, guard=guard, kdf_params=kdf_params)

    # -- reading

    def _current(self) -> KeyslotsDocument:
        """The file as it is now.

        Parsed and authenticated on every use (a few hundred microseconds): a cache keyed on
        inode and mtime could miss a same-size rewrite within one timestamp tick, and a slot
        removed by stationd must stop working here at once.
        """
        self._doc = parse_keyslots(read_keyslots_file(self.path), self._device_secret)
        return self._doc

    @contextlib.contextmanager
    def _writing(self) -> Iterator[KeyslotsDocument]:
        """Hold the writers' lock and give the freshest document to change."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self._current()
        finally:
            os.close(fd)  # closing releases the flock

    def _store(self, doc: KeyslotsDocument) -> None:
        write_private_file(self.path, serialise_keyslots(doc, self._device_secret), replace=True)
        self._doc = doc

    def _number_old_slots(self) -> None:
        """Give every slot from before staff numbers one (their text is otherwise unchanged)."""
        with self._writing() as doc:
            taken = {s.number for s in doc.slots.values() if s.number is not None}
            slots = dict(doc.slots)
            for sid in sorted(slots):
                if slots[sid].number is None:
                    number = _free_number(taken)
                    taken.add(number)
                    slots[sid] = replace(slots[sid], number=number)
            if slots != dict(doc.slots):
                self._store(replace(doc, slots=slots))

    def vault_public_key(self) -> bytes:
        """The vault's X25519 public key, so stationd can seal while the station is locked."""
        return self._current().vault_public_key

    def staff_ids(self) -> list[str]:
        """The pseudonymous ids that have a slot, sorted."""
        return sorted(self._current().slots)

    def has_slot(self, staff_id: str) -> bool:
        """Whether ``staff_id`` has a slot (for admin screens; unlock never tells)."""
        return staff_id in self._current().slots

    def numbers(self) -> dict[str, str]:
        """Staff number → pseudonymous staff id, for every slot."""
        return {s.number: sid for sid, s in self._current().slots.items() if s.number is not None}

    def number_of(self, staff_id: str) -> str | None:
        """The staff number of ``staff_id``'s slot (None without a slot)."""
        slot = self._current().slots.get(staff_id)
        return None if slot is None else slot.number

    # -- admin

    def add_slot(
        self, vault_key: VaultKey, staff_id: str, pin: str, *, number: str | None = None
    ) -> str:
        """Give ``staff_id`` a slot opening ``vault_key`` with ``pin``; its staff number.

        The number is drawn at random among the free ones unless given (tests, the demo);
        the counters for it start clean.
        """
        _validate_staff_id(staff_id)
        validate_pin(pin)
        if number is not None:
            validate_staff_number(number)
        with self._writing() as doc:
            if vault_key.public_key() != doc.vault_public_key:
                raise VaultError("this vault key does not belong to this keyring")
            if staff_id in doc.slots:
                raise SlotExists("staff id already has a slot")
            taken = {s.number for s in doc.slots.values() if s.number is not None}
            if number is None:
                number = _free_number(taken)
            elif number in taken:
                raise StaffNumberTaken("another slot has this staff number")
            slot = self._new_slot(vault_key._material(), staff_id, pin, number)
            self._store(replace(doc, slots={**doc.slots, staff_id: slot}))
        # A fresh PIN starts with a clean count (the number may have been someone else's).
        self._guard.reenable(number)
        return number

    def remove_slot(self, staff_id: str) -> None:
        """Remove a staff member's slot; their PIN opens nothing from now on."""
        with self._writing() as doc:
            if staff_id not in doc.slots:
                raise NoSuchSlot("no slot for this staff id")
            slots = {sid: s for sid, s in doc.slots.items() if sid != staff_id}
            self._store(replace(doc, slots=slots))

    def _new_slot(self, vault_key: bytearray, staff_id: str, pin: str, number: str) -> Slot:
        salt = secrets.token_bytes(SALT_BYTES)
        kek = _derive_kek(pin, self.kdf_params, salt, self._device_secret, staff_id)
        return Slot(staff_id, self.kdf_params, salt, _wrap(kek, vault_key, staff_id), number)

    # -- PIN use (always guarded)

    def _dummy_slot(self, doc: KeyslotsDocument) -> Slot:
        # Same cost as a real slot, so an unknown id takes as long to refuse as a wrong PIN.
        counts = collections.Counter(slot.kdf for slot in doc.slots.values())
        kdf = counts.most_common(1)[0][0] if counts else self.kdf_params
        return Slot(
            "dummy", kdf, secrets.token_bytes(SALT_BYTES), secrets.token_bytes(WRAPPED_BYTES)
        )

    def _verified(self, doc: KeyslotsDocument, number: str, pin: str) -> tuple[str, VaultKey]:
        """Guarded PIN check: counted as a failure first, cleared only on success."""
        attempt = self._guard.begin(number)
        slot = next((s for s in doc.slots.values() if s.number == number), None)
        if slot is None:
            # Unknown number: the same KDF work against a slot that opens nothing.
            material = _try_unwrap(self._dummy_slot(doc), pin, self._device_secret, "dummy")
        else:
            material = _try_unwrap(slot, pin, self._device_secret, slot.staff_id)
        if material is None or slot is None:
            raise self._guard.rejected(attempt)
        try:
            vault_key = VaultKey(material)
        except VaultError:
            raise KeyringCorrupt("keyslots.json: a slot holds an invalid vault key") from None
        finally:
            material[:] = bytes(len(material))
        if vault_key.public_key() != doc.vault_public_key:
            vault_key.zero()
            raise KeyringCorrupt("keyslots.json: a slot opens a key of another vault")
        self._guard.succeeded(attempt)
        return slot.staff_id, vault_key

    def open(self, number: str, pin: str) -> tuple[str, VaultKey]:
        """The pseudonymous staff id and the vault key for a staff number and PIN.

        One Argon2id evaluation per call, whatever the outcome. Raises
        :class:`InvalidStaffNumber` or :class:`InvalidPin` (not counted), :class:`WrongPin`
        (also for an unknown number, after the same KDF work),
        :class:`~station.keys.pin_guard.Throttled` or
        :class:`~station.keys.pin_guard.SlotDisabled`.
        """
        validate_staff_number(number)
        validate_pin(pin)
        return self._verified(self._current(), number, pin)

    def unlock(self, number: str, pin: str) -> VaultKey:
        """The vault key for a staff number and PIN (:meth:`open` without the id)."""
        return self.open(number, pin)[1]

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

Every PIN check goes through a :class:`~station.keys.pin_guard.PinGuard` the keyring is built with;
there is no unguarded unlock.
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
    KeyringCorrupt,
    KeyringExists,
    KeyringNotFound,
    NoSuchSlot,
    SlotExists,
    VaultError,
    WrongDeviceSecret,
)
from station.keys.keyslots import (
    DEFAULT_KDF_PARAMS,
    NONCE_BYTES,
    SALT_BYTES,
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
    "KdfParams",
    "Keyring",
    "KeyringCorrupt",
    "KeyringExists",
    "KeyringNotFound",
    "NoSuchSlot",
    "SlotExists",
    "WrongDeviceSecret",
    "generate_escrow_keypair",
    "validate_pin",
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

    def vault_public_key(self) -> bytes:
        """The vault's X25519 public key, so stationd can seal while the station is locked."""
        return self._current().vault_public_key

    def staff_ids(self) -> list[str]:
        """The pseudonymous ids that have a slot, sorted."""
        return sorted(self._current().slots)

    def has_slot(self, staff_id: str) -> bool:
        """Whether ``staff_id`` has a slot (for admin screens; unlock never tells)."""
        return staff_id in self._current().slots

    # -- admin

    def add_slot(self, vault_key: VaultKey, staff_id: str, pin: str) -> None:
        """Give ``staff_id`` a slot opening ``vault_key`` with ``pin``; resets their counters."""
        _validate_staff_id(staff_id)
        validate_pin(pin)
        with self._writing() as doc:
            if vault_key.public_key() != doc.vault_public_key:
                raise VaultError("this vault key does not belong to this keyring")
            if staff_id in doc.slots:
                raise SlotExists("staff id already has a slot")
            slot = self._new_slot(vault_key._material(), staff_id, pin)
            self._store(replace(doc, slots={**doc.slots, staff_id: slot}))
        # A fresh PIN set by an admin starts with a clean count.
        self._guard.reenable(staff_id)

    def remove_slot(self, staff_id: str) -> None:
        """Remove a staff member's slot; their PIN opens nothing from now on."""
        with self._writing() as doc:
            if staff_id not in doc.slots:
                raise NoSuchSlot("no slot for this staff id")
            slots = {sid: s for sid, s in doc.slots.items() if sid != staff_id}
            self._store(replace(doc, slots=slots))

    def _new_slot(self, vault_key: bytearray, staff_id: str, pin: str) -> Slot:
        salt = secrets.token_bytes(SALT_BYTES)
        kek = _derive_kek(pin, self.kdf_params, salt, self._device_secret, staff_id)
        return Slot(staff_id, self.kdf_params, salt, _wrap(kek, vault_key, staff_id))

    # -- PIN use (always guarded)

    def _dummy_slot(self, doc: KeyslotsDocument) -> Slot:
        # Same cost as a real slot, so an unknown id takes as long to refuse as a wrong PIN.
        counts = collections.Counter(slot.kdf for slot in doc.slots.values())
        kdf = counts.most_common(1)[0][0] if counts else self.kdf_params
        return Slot(
            "dummy", kdf, secrets.token_bytes(SALT_BYTES), secrets.token_bytes(WRAPPED_BYTES)
        )

    def _verified(self, doc: KeyslotsDocument, staff_id: str, pin: str) -> VaultKey:
        """Guarded PIN check: counted as a failure first, cleared only on success."""
        attempt = self._guard.begin(staff_id)
        slot = doc.slots.get(staff_id)
        if slot is None:
            # Unknown (or malformed) id: the same KDF work against a slot that opens nothing.
            material = _try_unwrap(self._dummy_slot(doc), pin, self._device_secret, "dummy")
        else:
            material = _try_unwrap(slot, pin, self._device_secret, staff_id)
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
        return vault_key

    def unlock(self, staff_id: str, pin: str) -> VaultKey:
        """The vault key for a staff member's PIN.

        Raises :class:`InvalidPin` (not counted), :class:`WrongPin` (also for an unknown id,
        after the same KDF work), :class:`~station.keys.pin_guard.Throttled` or
        :class:`~station.keys.pin_guard.SlotDisabled`.
        """
        validate_pin(pin)
        return self._verified(self._current(), staff_id, pin)

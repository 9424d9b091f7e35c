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

The vault's public key is kept in clear so stationd can seal while locked. The whole file is
authenticated with an HMAC keyed from the device secret (an edited file, a re-inserted old
slot of a removed staff member, or a swapped public key is refused), and a separate check
value tells "wrong device secret" apart from "damaged file". Nothing here ever overwrites a
file it could not read.

Every PIN check goes through a :class:`~station.keys.pin_guard.PinGuard` the keyring is built with;
there is no unguarded unlock.
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import fcntl
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from argon2.low_level import ARGON2_VERSION, Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from station.core.ids import is_opaque_id
from station.keys.boxes import PUBLIC_KEY_BYTES, seal_to_vault
from station.keys.crypto import KEY_BYTES
from station.keys.errors import VaultError
from station.keys.pin_guard import PinGuard
from station.keys.vault import DEVICE_SECRET_BYTES, VaultKey
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
_FORMAT = "kontaktstation-keyslots"
_FORMAT_VERSION = 1
_SLOT_INFO = b"kontaktstation keyslot v1"
_ESCROW_CONTEXT = b"kontaktstation escrow v1"
_MAC_INFO = b"kontaktstation keyring mac v1"
_DEVICE_CHECK_INFO = b"kontaktstation keyring device check v1"
_SALT_BYTES = 16
_NONCE_BYTES = 12
_WRAPPED_BYTES = _NONCE_BYTES + KEY_BYTES + 16
_MAX_FILE_BYTES = 1 << 20
#: 1 version byte + 32-byte encapsulated key + 32-byte vault key + 16-byte tag.
_ESCROW_BYTES = 1 + PUBLIC_KEY_BYTES + KEY_BYTES + 16
_PIN = re.compile(r"[0-9]{4,12}")


# --------------------------------------------------------------------------- errors


class KeyringCorrupt(VaultError):
    """keyslots.json is damaged or was edited; nothing was overwritten. For IT."""

    default_user_message = "Stationens nøglefil er beskadiget. Kontakt IT."


class WrongDeviceSecret(VaultError):
    """keyslots.json was made with another device secret (SD card moved, secret replaced)."""

    default_user_message = "Stationens nøglefil hører ikke til denne station. Kontakt IT."


class KeyringNotFound(VaultError):
    """There is no keyslots.json yet: the station was never initialised."""

    default_user_message = "Stationen er ikke sat op endnu. Kontakt IT."


class KeyringExists(VaultError):
    """Initialising would overwrite an existing keyring (and lose every record); refused."""


class InvalidPin(VaultError):
    """A PIN that breaks the rules (digits only, 4-12 long); no attempt is counted."""

    default_user_message = "PIN-koden skal være 4 til 12 cifre."


class InvalidStaffId(VaultError):
    """A staff id that is not a short pseudonymous token."""


class SlotExists(VaultError):
    """The staff id already has a slot; change its PIN or remove it first."""


class NoSuchSlot(VaultError):
    """An admin action named a staff id without a slot."""


# --------------------------------------------------------------------------- KDF parameters


@dataclass(frozen=True, slots=True)
class KdfParams:
    """Argon2id cost: memory in KiB, passes over it, and lanes (threads)."""

    memory_kib: int
    time_cost: int
    parallelism: int

    def __post_init__(self) -> None:
        # Bounds keep a damaged file from asking for absurd work; Argon2 itself needs
        # at least 8 KiB per lane.
        if not 1 <= self.parallelism <= 16:
            raise ValueError("Argon2 parallelism must be 1-16")
        if not 8 * self.parallelism <= self.memory_kib <= 4 * 1024 * 1024:
            raise ValueError("Argon2 memory must be 8 KiB per lane up to 4 GiB")
        if not 1 <= self.time_cost <= 64:
            raise ValueError("Argon2 time cost must be 1-64")

    @property
    def production_strength(self) -> bool:
        """At least the design's 64 MiB; anything less is for tests only."""
        return self.memory_kib >= 65536


#: Chosen by measurement (bench/vault.py). Memory 64 MiB and 4 lanes (a Pi 4 has 4 cores), as
#: in RFC 9106's second recommended option. Here (2 vCPU Xeon under KVM, shared): Argon2id
#: alone 97 ms median when the machine was idle, ~140 ms with other jobs running; a whole
#: unlock (file, PIN guard fsyncs, KDF, unwrap) 145 ms median. Assumption: a Pi 4's
#: Cortex-A72 at 1.5-1.8 GHz is 3-5x slower per core for Argon2, memory bandwidth (LPDDR4,
#: a few GB/s) dominating, so its two extra cores are not counted as a gain. Factor 4 on the
#: 145 ms unlock: ~0.6 s on a Pi 4 (0.45-0.75 s over the 3-5 range); by single-lane time
#: (122 ms here x 4, split over 4 real cores) nearer 0.2-0.3 s. time_cost 4 would risk ~1 s.
DEFAULT_KDF_PARAMS = KdfParams(memory_kib=65536, time_cost=3, parallelism=4)


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


# --------------------------------------------------------------------------- the file


@dataclass(frozen=True, slots=True)
class _Slot:
    staff_id: str
    kdf: KdfParams
    salt: bytes
    wrapped_key: bytes  # nonce | ciphertext | tag


@dataclass(frozen=True, slots=True)
class _Document:
    vault_public_key: bytes
    recovery_public_key: bytes
    sealed_vault_key: bytes
    device_check: bytes
    slots: Mapping[str, _Slot]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _hkdf(ikm: bytes, info: bytes, salt: bytes | None = None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _slot_json(slot: _Slot) -> dict[str, Any]:
    return {
        "staff_id": slot.staff_id,
        "kdf": {
            "algorithm": "argon2id",
            "version": ARGON2_VERSION,
            "memory_kib": slot.kdf.memory_kib,
            "time_cost": slot.kdf.time_cost,
            "parallelism": slot.kdf.parallelism,
            "salt": _b64(slot.salt),
        },
        "wrapped_key": _b64(slot.wrapped_key),
    }


def _body_json(doc: _Document) -> dict[str, Any]:
    return {
        "format": _FORMAT,
        "version": _FORMAT_VERSION,
        "vault_public_key": _b64(doc.vault_public_key),
        "escrow": {
            "recovery_public_key": _b64(doc.recovery_public_key),
            "sealed_vault_key": _b64(doc.sealed_vault_key),
        },
        "device_check": _b64(doc.device_check),
        "slots": [_slot_json(doc.slots[sid]) for sid in sorted(doc.slots)],
    }


def _canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _mac(body: Mapping[str, Any], device_secret: bytes) -> bytes:
    return hmac.digest(_hkdf(device_secret, _MAC_INFO), _canonical(body), "sha256")


def _serialise(doc: _Document, device_secret: bytes) -> bytes:
    body = _body_json(doc)
    full = {**body, "mac": _b64(_mac(body, device_secret))}
    # Sorted keys and sorted slots: rewriting one slot leaves the others' text identical.
    return (json.dumps(full, indent=2, sort_keys=True) + "\n").encode("utf-8")


class _Reader:
    """Field access that turns every surprise into :class:`KeyringCorrupt`."""

    @staticmethod
    def get(obj: Any, key: str, kind: type, where: str) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            raise KeyringCorrupt(f"keyslots.json: {where}.{key} is missing")
        value = obj[key]
        # bool is an int in Python; a JSON true is not a memory size.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise KeyringCorrupt(f"keyslots.json: {where}.{key} has the wrong type")
        return value

    @classmethod
    def b64(cls, obj: Any, key: str, length: int, where: str) -> bytes:
        text = cls.get(obj, key, str, where)
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise KeyringCorrupt(f"keyslots.json: {where}.{key} is not base64") from None
        if len(data) != length:
            raise KeyringCorrupt(
                f"keyslots.json: {where}.{key} is {len(data)} bytes, expected {length}"
            )
        return data


def _parse_slot(raw: Any, index: int) -> _Slot:
    where = f"slots[{index}]"
    staff_id = _Reader.get(raw, "staff_id", str, where)
    if not is_opaque_id(staff_id):
        raise KeyringCorrupt(f"keyslots.json: {where}.staff_id is malformed")
    kdf = _Reader.get(raw, "kdf", dict, where)
    if _Reader.get(kdf, "algorithm", str, where + ".kdf") != "argon2id":
        raise KeyringCorrupt(f"keyslots.json: {where}.kdf.algorithm is not argon2id")
    if _Reader.get(kdf, "version", int, where + ".kdf") != ARGON2_VERSION:
        raise KeyringCorrupt(f"keyslots.json: {where}.kdf.version is not {ARGON2_VERSION}")
    try:
        params = KdfParams(
            memory_kib=_Reader.get(kdf, "memory_kib", int, where + ".kdf"),
            time_cost=_Reader.get(kdf, "time_cost", int, where + ".kdf"),
            parallelism=_Reader.get(kdf, "parallelism", int, where + ".kdf"),
        )
    except ValueError as exc:
        raise KeyringCorrupt(f"keyslots.json: {where}.kdf: {exc}") from None
    return _Slot(
        staff_id=staff_id,
        kdf=params,
        salt=_Reader.b64(kdf, "salt", _SALT_BYTES, where + ".kdf"),
        wrapped_key=_Reader.b64(raw, "wrapped_key", _WRAPPED_BYTES, where),
    )


def _parse(data: bytes, device_secret: bytes) -> _Document:
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeyringCorrupt(
            f"keyslots.json is not valid JSON ({exc.__class__.__name__})"
        ) from None
    if not isinstance(raw, dict):
        raise KeyringCorrupt("keyslots.json: top level is not an object")
    if _Reader.get(raw, "format", str, "top") != _FORMAT:
        raise KeyringCorrupt("keyslots.json: not a KontaktStation keyring")
    if _Reader.get(raw, "version", int, "top") != _FORMAT_VERSION:
        raise KeyringCorrupt("keyslots.json: unknown format version")
    escrow = _Reader.get(raw, "escrow", dict, "top")
    slots_raw = _Reader.get(raw, "slots", list, "top")
    slots: dict[str, _Slot] = {}
    for index, item in enumerate(slots_raw):
        slot = _parse_slot(item, index)
        if slot.staff_id in slots:
            raise KeyringCorrupt(f"keyslots.json: slots[{index}] repeats a staff id")
        slots[slot.staff_id] = slot
    doc = _Document(
        vault_public_key=_Reader.b64(raw, "vault_public_key", PUBLIC_KEY_BYTES, "top"),
        recovery_public_key=_Reader.b64(escrow, "recovery_public_key", PUBLIC_KEY_BYTES, "escrow"),
        sealed_vault_key=_Reader.b64(escrow, "sealed_vault_key", _ESCROW_BYTES, "escrow"),
        device_check=_Reader.b64(raw, "device_check", 32, "top"),
        slots=slots,
    )
    mac = _Reader.b64(raw, "mac", 32, "top")
    # Device check first: a wrong secret is a different fault (for IT) from an edited file.
    if not hmac.compare_digest(doc.device_check, _hkdf(device_secret, _DEVICE_CHECK_INFO)):
        raise WrongDeviceSecret(
            "keyslots.json was made with a different device secret "
            "(card moved to another station, or the device secret replaced)"
        )
    body = {k: v for k, v in raw.items() if k != "mac"}
    if not hmac.compare_digest(mac, _mac(body, device_secret)):
        raise KeyringCorrupt("keyslots.json failed its integrity check (edited or damaged)")
    return doc


def _read_file(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise KeyringNotFound(f"no keyring at {path}") from None
    except OSError as exc:
        raise KeyringCorrupt(f"cannot open {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyringCorrupt(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > _MAX_FILE_BYTES:
        raise KeyringCorrupt(f"{path} is larger than {_MAX_FILE_BYTES} bytes")
    return data


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
    return _hkdf(stretched, _SLOT_INFO + staff_id.encode("ascii"), salt=device_secret)


def _wrap(kek: bytes, vault_key: bytearray, staff_id: str) -> bytes:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return nonce + AESGCM(kek).encrypt(nonce, bytes(vault_key), _slot_aad(staff_id))


def _try_unwrap(slot: _Slot, pin: str, device_secret: bytes, staff_id: str) -> bytearray | None:
    kek = _derive_kek(pin, slot.kdf, slot.salt, device_secret, staff_id)
    nonce, sealed = slot.wrapped_key[:_NONCE_BYTES], slot.wrapped_key[_NONCE_BYTES:]
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
            doc = _Document(
                vault_public_key=public,
                recovery_public_key=bytes(escrow_public_key),
                sealed_vault_key=seal_to_vault(
                    escrow_public_key, bytes(vault_key._material()), _ESCROW_CONTEXT + public
                ),
                device_check=_hkdf(device_secret, _DEVICE_CHECK_INFO),
                slots={},
            )
            try:
                write_private_file(path, _serialise(doc, device_secret), replace=False)
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

    def _current(self) -> _Document:
        """The file as it is now.

        Parsed and authenticated on every use (a few hundred microseconds): a cache keyed on
        inode and mtime could miss a same-size rewrite within one timestamp tick, and a slot
        removed by stationd must stop working here at once.
        """
        self._doc = _parse(_read_file(self.path), self._device_secret)
        return self._doc

    @contextlib.contextmanager
    def _writing(self) -> Iterator[_Document]:
        """Hold the writers' lock and give the freshest document to change."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self._current()
        finally:
            os.close(fd)  # closing releases the flock

    def _store(self, doc: _Document) -> None:
        write_private_file(self.path, _serialise(doc, self._device_secret), replace=True)
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

    def _new_slot(self, vault_key: bytearray, staff_id: str, pin: str) -> _Slot:
        salt = secrets.token_bytes(_SALT_BYTES)
        kek = _derive_kek(pin, self.kdf_params, salt, self._device_secret, staff_id)
        return _Slot(staff_id, self.kdf_params, salt, _wrap(kek, vault_key, staff_id))

    # -- PIN use (always guarded)

    def _dummy_slot(self, doc: _Document) -> _Slot:
        # Same cost as a real slot, so an unknown id takes as long to refuse as a wrong PIN.
        counts = collections.Counter(slot.kdf for slot in doc.slots.values())
        kdf = counts.most_common(1)[0][0] if counts else self.kdf_params
        return _Slot(
            "dummy", kdf, secrets.token_bytes(_SALT_BYTES), secrets.token_bytes(_WRAPPED_BYTES)
        )

    def _verified(self, doc: _Document, staff_id: str, pin: str) -> VaultKey:
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

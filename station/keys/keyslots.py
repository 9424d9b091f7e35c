"""The keyslots file, ``keyslots.json``: its format, its authentication, reading and writing it.

One JSON document: per staff member a slot (the pseudonymous staff id, the Argon2id
parameters and salt, the wrapped vault key), IT's escrow slot, the vault's public key in clear
(so stationd can seal while locked), a check value of the device secret, and an HMAC keyed
from the device secret over the whole, so an edited file, a re-inserted old slot of a removed
staff member or a swapped public key is refused. The device check tells "wrong device secret"
apart from "damaged file". Sorted keys and sorted slots: rewriting one slot leaves the others'
text identical. What the slots hold, and who may open them, is :mod:`station.keys.keyring`'s.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2.low_level import ARGON2_VERSION
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from station.core.ids import is_opaque_id
from station.keys.boxes import PUBLIC_KEY_BYTES
from station.keys.crypto import KEY_BYTES
from station.keys.errors import KeyringCorrupt, KeyringNotFound, WrongDeviceSecret

__all__ = [
    "DEFAULT_KDF_PARAMS",
    "NONCE_BYTES",
    "SALT_BYTES",
    "WRAPPED_BYTES",
    "KdfParams",
    "KeyslotsDocument",
    "Slot",
    "device_check",
    "hkdf",
    "parse_keyslots",
    "read_keyslots_file",
    "serialise_keyslots",
]

_FORMAT = "kontaktstation-keyslots"
_FORMAT_VERSION = 1
_MAC_INFO = b"kontaktstation keyring mac v1"
_DEVICE_CHECK_INFO = b"kontaktstation keyring device check v1"
SALT_BYTES = 16
NONCE_BYTES = 12
WRAPPED_BYTES = NONCE_BYTES + KEY_BYTES + 16
_MAX_FILE_BYTES = 1 << 20
#: 1 version byte + 32-byte encapsulated key + 32-byte vault key + 16-byte tag.
_ESCROW_BYTES = 1 + PUBLIC_KEY_BYTES + KEY_BYTES + 16


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


@dataclass(frozen=True, slots=True)
class Slot:
    staff_id: str
    kdf: KdfParams
    salt: bytes
    wrapped_key: bytes  # nonce | ciphertext | tag


@dataclass(frozen=True, slots=True)
class KeyslotsDocument:
    vault_public_key: bytes
    recovery_public_key: bytes
    sealed_vault_key: bytes
    device_check: bytes
    slots: Mapping[str, Slot]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hkdf(ikm: bytes, info: bytes, salt: bytes | None = None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _slot_json(slot: Slot) -> dict[str, Any]:
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


def _body_json(doc: KeyslotsDocument) -> dict[str, Any]:
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
    return hmac.digest(hkdf(device_secret, _MAC_INFO), _canonical(body), "sha256")


def serialise_keyslots(doc: KeyslotsDocument, device_secret: bytes) -> bytes:
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


def _parse_slot(raw: Any, index: int) -> Slot:
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
    return Slot(
        staff_id=staff_id,
        kdf=params,
        salt=_Reader.b64(kdf, "salt", SALT_BYTES, where + ".kdf"),
        wrapped_key=_Reader.b64(raw, "wrapped_key", WRAPPED_BYTES, where),
    )


def parse_keyslots(data: bytes, device_secret: bytes) -> KeyslotsDocument:
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
    slots: dict[str, Slot] = {}
    for index, item in enumerate(slots_raw):
        slot = _parse_slot(item, index)
        if slot.staff_id in slots:
            raise KeyringCorrupt(f"keyslots.json: slots[{index}] repeats a staff id")
        slots[slot.staff_id] = slot
    doc = KeyslotsDocument(
        vault_public_key=_Reader.b64(raw, "vault_public_key", PUBLIC_KEY_BYTES, "top"),
        recovery_public_key=_Reader.b64(escrow, "recovery_public_key", PUBLIC_KEY_BYTES, "escrow"),
        sealed_vault_key=_Reader.b64(escrow, "sealed_vault_key", _ESCROW_BYTES, "escrow"),
        device_check=_Reader.b64(raw, "device_check", 32, "top"),
        slots=slots,
    )
    mac = _Reader.b64(raw, "mac", 32, "top")
    # Device check first: a wrong secret is a different fault (for IT) from an edited file.
    if not hmac.compare_digest(doc.device_check, hkdf(device_secret, _DEVICE_CHECK_INFO)):
        raise WrongDeviceSecret(
            "keyslots.json was made with a different device secret "
            "(card moved to another station, or the device secret replaced)"
        )
    body = {k: v for k, v in raw.items() if k != "mac"}
    if not hmac.compare_digest(mac, _mac(body, device_secret)):
        raise KeyringCorrupt("keyslots.json failed its integrity check (edited or damaged)")
    return doc


def read_keyslots_file(path: Path) -> bytes:
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


def device_check(device_secret: bytes) -> bytes:
    """The check value that tells a wrong device secret from a damaged file."""
    return hkdf(device_secret, _DEVICE_CHECK_INFO)

"""Sealing one personal field with AES-256-GCM, bound to where it lives.

A sealed field is ``b"\\x01" | nonce (12 bytes) | ciphertext | tag (16 bytes)``. The associated
data names the table, the row id, the field and the schema version, so a sealed value copied
to another row or field, or into a newer schema, fails to open instead of showing the wrong
person's data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from station.errors import StationError
from station.i18n import N_

__all__ = [
    "KEY_BYTES",
    "SCHEMA_VERSION",
    "FieldRef",
    "SealError",
    "open_field",
    "seal_field",
]

KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT_VERSION = 1
#: Bumped when the meaning of a stored field changes; part of every field's associated data.
SCHEMA_VERSION = 1


class SealError(StationError):
    """A sealed value could not be opened: wrong key, wrong place, or tampered with."""

    default_user_message = N_(
        "The information could not be opened. It may be damaged. Contact IT if it happens again."
    )


@dataclass(frozen=True, slots=True)
class FieldRef:
    """Where a sealed value belongs: table, row id, field name and schema version."""

    table: str
    row_id: str
    field: str
    schema_version: int = SCHEMA_VERSION

    def aad(self) -> bytes:
        """Unambiguous associated data: each part length-prefixed, so no two refs collide."""
        parts = [
            b"kontaktstation-field",
            self.table.encode(),
            self.row_id.encode(),
            self.field.encode(),
            str(self.schema_version).encode(),
        ]
        return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def _check_key(key: bytes | bytearray) -> None:
    if len(key) != KEY_BYTES:
        raise SealError(f"a field key must be {KEY_BYTES} bytes, got {len(key)}")


def seal_field(key: bytes | bytearray, plaintext: bytes, ref: FieldRef) -> bytes:
    """Encrypt ``plaintext`` under ``key`` for the place ``ref`` names."""
    _check_key(key)
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(bytes(key)).encrypt(nonce, plaintext, ref.aad())
    return bytes([FORMAT_VERSION]) + nonce + sealed


def open_field(key: bytes | bytearray, blob: bytes, ref: FieldRef) -> bytes:
    """Decrypt a value sealed by :func:`seal_field`; raises :class:`SealError` if it fails."""
    _check_key(key)
    if len(blob) < 1 + NONCE_BYTES + 16 or blob[0] != FORMAT_VERSION:
        raise SealError(f"sealed value for {ref.table}.{ref.field} is malformed or truncated")
    nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
    try:
        return AESGCM(bytes(key)).decrypt(nonce, sealed, ref.aad())
    except InvalidTag:
        raise SealError(
            f"sealed value for {ref.table}.{ref.field} failed authentication "
            "(wrong key, moved from another row or field, or tampered with)"
        ) from None

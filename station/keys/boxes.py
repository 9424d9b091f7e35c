"""Sealed boxes: what stationd records while the station is locked, sealed to the vault.

HPKE (RFC 9180, base mode) with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and AES-256-GCM, from
pyca/cryptography (``cryptography.hazmat.primitives.hpke``, new in 47.0). The caller's context
is bound through HPKE's ``info``, which enters the key schedule: a box opened under another
context fails like a tampered one.

:func:`seal_to_vault` needs only the vault's *public* key (kept in clear in keyslots.json):
this is the part of the key holder's code stationd may use, so it can write what it cannot
read (call ends, GP messages: :func:`sealed_event_context` names where each belongs). Opening
needs a private key: the vault key's (:meth:`station.keys.vault.VaultKey.open_sealed_box`, the
staff UI), the outbox key's (``station.export.keys``) or IT's offline recovery key.
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from station.keys.crypto import SealError
from station.keys.errors import VaultError

__all__ = [
    "PUBLIC_KEY_BYTES",
    "SEALED_EVENT_CONTEXT",
    "open_sealed_box",
    "seal_to_vault",
    "sealed_event_context",
]

PUBLIC_KEY_BYTES = 32
#: First byte of every sealed box, so a future format can be told apart.
_SEALED_BOX_VERSION = 1
_SEALED_BOX_LABEL = b"kontaktstation sealed box v1\x00"
_HPKE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
#: HPKE's encapsulated key (the ephemeral X25519 public key) plus the AES-GCM tag.
_SEALED_BOX_OVERHEAD = 1 + hpke.KEM.X25519.enc_length() + 16
#: Prefix of the context a sealed event is bound to; see :func:`sealed_event_context`.
SEALED_EVENT_CONTEXT: Final = b"kontaktstation sealed event v1"


def _info(context: bytes) -> bytes:
    return _SEALED_BOX_LABEL + context


def _public_key_from_bytes(public_key: bytes) -> X25519PublicKey:
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise VaultError(
            f"a vault public key must be {PUBLIC_KEY_BYTES} raw X25519 bytes, got {len(public_key)}"
        )
    return X25519PublicKey.from_public_bytes(public_key)


def seal_to_vault(public_key: bytes, plaintext: bytes, context: bytes) -> bytes:
    """Seal ``plaintext`` so only the holder of the vault key can open it.

    Needs only the vault's public key (kept in clear in keyslots.json), so stationd can
    record while locked. ``context`` says where the box belongs (e.g. table and row id) and
    must be given again to open it.
    """
    recipient = _public_key_from_bytes(public_key)
    try:
        sealed = _HPKE.encrypt(plaintext, recipient, info=_info(context))
    except ValueError as exc:
        # OpenSSL refuses low-order points (the shared secret would be all zeros).
        raise VaultError(f"cannot seal to this public key: {exc}") from None
    return bytes([_SEALED_BOX_VERSION]) + sealed


def open_sealed_box(private_key: X25519PrivateKey, blob: bytes, context: bytes) -> bytes:
    """Open a box made by :func:`seal_to_vault` with the recipient's private key.

    Staff code uses :meth:`VaultKey.open_sealed_box`; this form is for IT's offline recovery
    key, which is not a vault key.
    """
    if len(blob) < _SEALED_BOX_OVERHEAD or blob[0] != _SEALED_BOX_VERSION:
        raise SealError("sealed box is malformed or truncated")
    try:
        return _HPKE.decrypt(blob[1:], private_key, info=_info(context))
    except (InvalidTag, ValueError):
        raise SealError(
            "sealed box failed authentication (wrong key, wrong context, or tampered with)"
        ) from None


# --------------------------------------------------------------------------- the vault key


def sealed_event_context(consultation_id: str, kind: str) -> bytes:
    """The ``context`` a sealed event is sealed under; the staff UI opens it with the same.

    Binding the consultation id and the kind means a box moved to another consultation, or
    relabelled, fails to open instead of telling the wrong story.
    """
    return b"|".join((SEALED_EVENT_CONTEXT, consultation_id.encode(), kind.encode()))

"""The round, sealed for the GP: the hub relays who is waiting but can never read it.

Each room the hub makes for a booking gets a 256-bit AES-GCM key from the station
(:func:`new_room_key`). The key travels only in the GP link's URL *fragment*, after the
hub's token (``…/gp/#<token>.<key>``): browsers never send a fragment to a server, so the
hub, its access logs and any proxy see the token and never the key. What the station posts to
the hub about people — who is waiting (the round) and which resident is in front of the
camera now — is sealed with that key (:class:`RoomSealer`); the GP page opens it with
WebCrypto (``hub/static/gp.js``, ``openSealed``). The hub stores and relays an opaque
string.

A box is ``v1.`` then base64url (no padding) of a 12-byte random nonce and the AES-GCM
ciphertext with its tag. Every room has its own random key, so a box from another room does
not open; the additional data says what the box is (``kontaktstation room v1|<purpose>``), so
a hostile hub cannot pass the round off as the current resident or the other way round.

A GP who reached the call by the short code (typed at the hub's address; the hub cannot put
a key it must not know into that link) sees no names before admitting; after admitting, the
data channel (DTLS, station to browser) carries the round and the current resident.

AES-GCM (pyca/cryptography) because WebCrypto has it in every browser with the same framing;
nonces are random (96 bits) and a room seals a few dozen boxes at most.

On the station the room keys are kept (``call_rooms.json``, so the link and the sealing
survive a restart) only wrapped under a key derived from the device secret
(:class:`RoomKeyWrap`): on a Raspberry Pi that is the SoC's OTP key, which is not on the SD
card, so a copied card gives no room key (and, with a copy of the hub's database, no round).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Mapping
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from station.keys.crypto import SealError

__all__ = [
    "ROOM_KEY_BYTES",
    "RoomKeyWrap",
    "RoomSealer",
    "decode_room_key",
    "encode_room_key",
    "link_with_key",
    "new_room_key",
]

ROOM_KEY_BYTES: Final = 32
_NONCE_BYTES: Final = 12
_PREFIX: Final = "v1."
_KEY_TEXT = re.compile(r"[A-Za-z0-9_-]{43}")


def new_room_key() -> bytes:
    """A fresh random key for one room."""
    return os.urandom(ROOM_KEY_BYTES)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _room_key(key: bytes) -> bytes:
    if len(key) != ROOM_KEY_BYTES:
        raise SealError(f"a room key is {ROOM_KEY_BYTES} bytes, got {len(key)}")
    return key


def encode_room_key(key: bytes) -> str:
    """The key as it stands in a link's fragment (base64url, 43 characters)."""
    return _b64(_room_key(key))


def decode_room_key(text: str) -> bytes:
    """The key back from :func:`encode_room_key`; :class:`SealError` for anything else."""
    if not _KEY_TEXT.fullmatch(text):
        raise SealError("not a room key")
    return _unb64(text)


def link_with_key(gp_url: str, key: bytes) -> str:
    """The hub's GP link (``…#<token>``) with the room key after the token."""
    if gp_url.count("#") != 1 or "." in gp_url.rsplit("#", 1)[1]:
        raise SealError("the hub's GP link has no plain token fragment")
    return f"{gp_url}.{encode_room_key(key)}"


def _seal_box(aead: AESGCM, prefix: str, plaintext: bytes, aad: bytes) -> str:
    """``prefix`` + base64url(random 96-bit nonce || AES-GCM ciphertext and tag)."""
    nonce = os.urandom(_NONCE_BYTES)
    return prefix + _b64(nonce + aead.encrypt(nonce, plaintext, aad))


def _open_box(aead: AESGCM, prefix: str, text: str, aad: bytes, what: str, opener: str) -> bytes:
    """The plaintext of a :func:`_seal_box` box; :class:`SealError` naming ``what`` else."""
    if not text.startswith(prefix):
        raise SealError(f"not a {what}")
    try:
        blob = _unb64(text[len(prefix) :])
    except ValueError:
        raise SealError(f"{what} is not base64url") from None
    if len(blob) < _NONCE_BYTES + 16:
        raise SealError(f"{what} is truncated")
    try:
        return aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], aad)
    except InvalidTag:
        raise SealError(f"{what} does not open with this {opener}") from None


class RoomSealer:
    """Seals what the station tells the GP page through the hub, for one room."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(_room_key(key))

    def __repr__(self) -> str:  # the key is a secret
        return "RoomSealer(key=<secret>)"

    @staticmethod
    def _aad(purpose: str) -> bytes:
        return f"kontaktstation room v1|{purpose}".encode()

    def seal(self, purpose: str, payload: Mapping[str, Any]) -> str:
        """``payload`` as JSON, sealed for ``purpose`` (``waiting``, ``current_resident``)."""
        plaintext = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        return _seal_box(self._aead, _PREFIX, plaintext, self._aad(purpose))

    def open(self, purpose: str, sealed: str) -> Any:
        """What :meth:`seal` sealed (the GP page's side, in Python for tests and tools)."""
        plaintext = _open_box(
            self._aead, _PREFIX, sealed, self._aad(purpose), "sealed room box", "key and purpose"
        )
        return json.loads(plaintext)


class RoomKeyWrap:
    """Room keys at rest on the station: AES-GCM under a key derived (HKDF) from the device
    secret, bound to the booking they belong to (a wrapped key moved to another booking does
    not open)."""

    _PREFIX: Final = "w1."

    def __init__(self, device_secret: bytes) -> None:
        if len(device_secret) < 32:
            raise SealError("the device secret is too short to wrap room keys")
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"kontaktstation room keys v1"
        ).derive(device_secret)
        self._aead = AESGCM(key)

    def __repr__(self) -> str:  # derived from the device secret
        return "RoomKeyWrap(key=<secret>)"

    @staticmethod
    def _aad(booking: str) -> bytes:
        return f"kontaktstation room key v1|{booking}".encode()

    def wrap(self, room_key: bytes, booking: str) -> str:
        """``room_key`` for ``booking`` (the consultation id), as kept in ``call_rooms.json``."""
        return _seal_box(self._aead, self._PREFIX, _room_key(room_key), self._aad(booking))

    def unwrap(self, wrapped: str, booking: str) -> bytes:
        """The room key back; :class:`SealError` if it was not wrapped here for ``booking``."""
        key = _open_box(
            self._aead, self._PREFIX, wrapped, self._aad(booking), "wrapped room key", "station"
        )
        if len(key) != ROOM_KEY_BYTES:
            raise SealError("wrapped room key has the wrong size")
        return key

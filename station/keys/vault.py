"""The vault key: the one secret that opens every personal field on the station.

A :class:`VaultKey` is 256 random bits held in a ``bytearray`` so it can be overwritten on lock.
It seals and opens personal fields (AES-256-GCM via :mod:`station.keys.crypto`), wraps the
per-consultation data keys the store keeps, and opens *sealed boxes*: what stationd records
while the station is locked, sealed to the vault's public key so the daemon can write but not
read (:func:`station.keys.boxes.seal_to_vault`).

Sealed boxes are :mod:`station.keys.boxes` (HPKE); the vault's X25519 key pair that opens them
is derived from the vault key with HKDF, so nothing beyond the wrapped vault key is stored.

What zeroing can and cannot do: :meth:`VaultKey.zero` overwrites the bytearray and makes every
later use raise :class:`VaultLocked`. Copies made inside cryptography/OpenSSL calls (an
``AESGCM`` object, the derived X25519 private key) are immutable Python or OpenSSL objects we
cannot overwrite; they are short-lived locals, never kept. That is why DESIGN.md makes the
staff UI *exit* on lock: process exit is the memory guarantee, zeroing is the belt to its
braces.

The device secret mixed into every PIN-derived key is :mod:`station.keys.device_secret`
(stationd's, never the staff UI's).
"""

from __future__ import annotations

import secrets
from types import TracebackType
from typing import NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from station.keys.boxes import open_sealed_box
from station.keys.crypto import KEY_BYTES, FieldRef, SealError, open_field, seal_field
from station.keys.errors import VaultError, VaultLocked

__all__ = ["VaultKey"]


_X25519_INFO = b"kontaktstation vault x25519 v1"


class VaultKey:
    """The unlocked vault key; one small object that is easy to discard.

    Use it as a context manager, or call :meth:`zero` on lock: afterwards the bytes are all
    zeros and every method raises :class:`VaultLocked`. It cannot be pickled or copied, so it
    does not leave the process by accident.
    """

    __slots__ = ("_key", "_public_key")

    def __init__(self, key: bytes | bytearray) -> None:
        if len(key) != KEY_BYTES:
            raise VaultError(f"a vault key must be {KEY_BYTES} bytes, got {len(key)}")
        if not any(key):
            # All zeros is what zero() leaves behind; never a key (and never random output).
            raise VaultError("refusing an all-zero vault key")
        self._key = bytearray(key)
        # The public key is not secret; caching it lets the keyring compare cheaply.
        self._public_key = (
            _derive_private_key(self._key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        )

    @classmethod
    def generate(cls) -> VaultKey:
        """A new random vault key (256 bits from the OS CSPRNG)."""
        fresh = bytearray(secrets.token_bytes(KEY_BYTES))
        try:
            return cls(fresh)
        finally:
            _wipe(fresh)

    # -- state

    @property
    def is_zeroed(self) -> bool:
        """True once :meth:`zero` ran: the key is gone."""
        return not any(self._key)

    def zero(self) -> None:
        """Overwrite the key with zeros; every later use raises :class:`VaultLocked`."""
        _wipe(self._key)

    def _material(self) -> bytearray:
        """The live key bytes, for the keyring's wrapping only (same package, not public)."""
        # An all-zero key is what zero() leaves; a random key is all zeros with chance 2**-256.
        if self.is_zeroed:
            raise VaultLocked("the vault key was zeroed (station locked)")
        return self._key

    def __enter__(self) -> VaultKey:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.zero()

    def __repr__(self) -> str:
        return "VaultKey(zeroed)" if self.is_zeroed else "VaultKey(unlocked)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a VaultKey cannot be pickled: it must not leave the staff UI process")

    def __copy__(self) -> NoReturn:
        raise TypeError("a VaultKey cannot be copied: there is one, and it is zeroed on lock")

    def __deepcopy__(self, memo: object) -> NoReturn:
        raise TypeError("a VaultKey cannot be copied: there is one, and it is zeroed on lock")

    # -- personal fields

    def seal(self, plaintext: bytes, ref: FieldRef) -> bytes:
        """Seal one personal field for the place ``ref`` names."""
        return seal_field(self._material(), plaintext, ref)

    def open(self, blob: bytes, ref: FieldRef) -> bytes:
        """Open a field sealed by :meth:`seal` for the same ``ref``; :class:`SealError` if not."""
        return open_field(self._material(), blob, ref)

    # -- per-consultation data keys

    def wrap(self, data_key: bytes | bytearray, ref: FieldRef) -> bytes:
        """Wrap a 32-byte data key for storage; purging the wrapped key destroys the data."""
        if len(data_key) != KEY_BYTES:
            raise VaultError(f"a data key must be {KEY_BYTES} bytes, got {len(data_key)}")
        return seal_field(self._material(), bytes(data_key), ref)

    def unwrap(self, blob: bytes, ref: FieldRef) -> bytearray:
        """Unwrap a data key wrapped by :meth:`wrap`, as a bytearray the caller can zero."""
        data_key = bytearray(open_field(self._material(), blob, ref))
        if len(data_key) != KEY_BYTES:
            _wipe(data_key)
            raise SealError(f"wrapped data key for {ref.table}.{ref.field} has the wrong length")
        return data_key

    # -- sealed boxes

    def public_key(self) -> bytes:
        """The vault's X25519 public key (32 raw bytes), for :func:`seal_to_vault`."""
        self._material()
        return self._public_key

    def open_sealed_box(self, blob: bytes, context: bytes) -> bytes:
        """Open a box made by :func:`seal_to_vault` with the same ``context``."""
        # Derived per call and dropped: the private key object cannot be zeroed, so we never
        # keep one.
        return open_sealed_box(_derive_private_key(self._material()), blob, context)


def _derive_private_key(vault_key: bytearray) -> X25519PrivateKey:
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_X25519_INFO).derive(
        bytes(vault_key)
    )
    return X25519PrivateKey.from_private_bytes(seed)


def _wipe(buffer: bytearray) -> None:
    buffer[:] = bytes(len(buffer))

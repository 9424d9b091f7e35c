"""The vault key: the one secret that opens every personal field on the station.

A :class:`VaultKey` is 256 random bits held in a ``bytearray`` so it can be overwritten on lock.
It seals and opens personal fields (AES-256-GCM via :mod:`station.keys.crypto`), wraps the
per-consultation data keys the store keeps, and opens *sealed boxes*: what stationd records
while the station is locked, sealed to the vault's public key so the daemon can write but not
read (:func:`seal_to_vault`).

Sealed boxes are HPKE (RFC 9180, base mode) with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and
AES-256-GCM, from pyca/cryptography (``cryptography.hazmat.primitives.hpke``, new in 47.0).
The caller's context is bound through HPKE's ``info``, which enters the key schedule: a box
opened under another context fails like a tampered one. The vault's X25519 key pair is
derived from the vault key with HKDF, so nothing beyond the wrapped vault key is stored.

What zeroing can and cannot do: :meth:`VaultKey.zero` overwrites the bytearray and makes every
later use raise :class:`VaultLocked`. Copies made inside cryptography/OpenSSL calls (an
``AESGCM`` object, the derived X25519 private key) are immutable Python or OpenSSL objects we
cannot overwrite; they are short-lived locals, never kept. That is why DESIGN.md makes the
staff UI *exit* on lock: process exit is the memory guarantee, zeroing is the belt to its
braces.

The device secret (:class:`DeviceSecret`) is 32 random bytes mixed into every PIN-derived key,
so a copied SD card cannot be brute-forced elsewhere. Here it lives in a 0600 file; on a Pi
with an OTP key a :class:`DeviceSecretSource` backed by the OTP key takes its place.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import NoReturn, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from station.errors import StationError
from station.keys.crypto import KEY_BYTES, FieldRef, SealError, open_field, seal_field
from station.storage.durable import atomic_write

__all__ = [
    "DEVICE_SECRET_BYTES",
    "PUBLIC_KEY_BYTES",
    "DeviceSecret",
    "DeviceSecretError",
    "DeviceSecretSource",
    "VaultError",
    "VaultKey",
    "VaultLocked",
    "load_or_create_private_file",
    "open_sealed_box",
    "read_private_file",
    "seal_to_vault",
    "write_private_file",
]

DEVICE_SECRET_BYTES = 32
PUBLIC_KEY_BYTES = 32

#: First byte of every sealed box, so a future format can be told apart.
_SEALED_BOX_VERSION = 1
_SEALED_BOX_LABEL = b"kontaktstation sealed box v1\x00"
_X25519_INFO = b"kontaktstation vault x25519 v1"
_HPKE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
#: HPKE's encapsulated key (the ephemeral X25519 public key) plus the AES-GCM tag.
_SEALED_BOX_OVERHEAD = 1 + hpke.KEM.X25519.enc_length() + 16


class VaultError(StationError):
    """Base of the key-material errors: vault, keyring, PIN guard, device secret."""


class VaultLocked(VaultError):
    """The vault key was zeroed (the station locked); nothing can be sealed or opened."""

    default_user_message = "Stationen er låst. Lås op med din PIN-kode."


class DeviceSecretError(VaultError):
    """The device secret file is missing, damaged or too open; IT must look at the station."""

    default_user_message = "Stationens sikkerhedsnøgle mangler eller er beskadiget. Kontakt IT."


# --------------------------------------------------------------------------- sealed boxes


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


# --------------------------------------------------------------------------- private files


def write_private_file(path: Path, data: bytes, *, replace: bool) -> None:
    """Write ``data`` to ``path`` (mode 0600) so a power cut leaves the old or the new file.

    A temporary file beside it is created with O_EXCL, written and fsynced, then moved into
    place and the directory fsynced. With ``replace=False`` the move is a hard link, which
    fails if ``path`` exists: two processes creating the same secret cannot overwrite each
    other (a plain rename would silently replace the first one's file).
    """
    atomic_write(path, data, replace=replace, mode=0o600)


# --------------------------------------------------------------------------- device secret


class DeviceSecretSource(Protocol):
    """Where the device secret comes from: a file here, the Pi's OTP key where available."""

    def load(self) -> bytes:
        """The 32-byte device secret; raises :class:`DeviceSecretError` if unusable."""
        ...


class DeviceSecret:
    """The device secret in a 0600 file in the data directory (the default source)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> bytes:
        """Read the secret, creating it on first use."""
        return self.load_or_create(self.path)

    @staticmethod
    def load_or_create(path: Path) -> bytes:
        """Return the 32-byte secret in ``path``, creating it atomically if absent.

        Refuses a file of the wrong size, not owned by this user, a symlink, or one any other
        user could read or write: the secret is what stops a copied SD card from being
        brute-forced, so a leaked or swapped one must not be used silently.
        """
        return load_or_create_private_file(
            path,
            make=lambda: secrets.token_bytes(DEVICE_SECRET_BYTES),
            size=DEVICE_SECRET_BYTES,
            what="device secret",
            error=DeviceSecretError,
        )


def read_private_file(path: Path, *, size: int, what: str, error: type[StationError]) -> bytes:
    """Read a key file of exactly ``size`` bytes that only this user can read or write.

    Refuses (``error``) a symlink, anything but a regular file, group or other access, another
    owner, or the wrong size: a leaked or swapped key must never be used silently. A missing
    file raises ``FileNotFoundError`` so callers can create it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise error(f"cannot open the {what} {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {path} is not a regular file")
        if info.st_mode & 0o077:
            raise error(
                f"{what} {path} has mode {stat.S_IMODE(info.st_mode):04o}; "
                "it must be 0600 (no access for group or others)"
            )
        if info.st_uid != os.geteuid():
            raise error(f"{what} {path} is owned by another user")
        if info.st_size != size:
            raise error(f"{what} {path} is {info.st_size} bytes, expected {size}")
        data = os.read(fd, size + 1)
    finally:
        os.close(fd)
    if len(data) != size:
        raise error(f"{what} {path} could not be read in full")
    return data


def load_or_create_private_file(
    path: Path,
    *,
    make: Callable[[], bytes],
    size: int,
    what: str,
    error: type[StationError],
) -> bytes:
    """The key in ``path`` (see :func:`read_private_file`), made with ``make()`` and written
    atomically (0600) on first use; if another process creates it first, theirs is used."""
    try:
        return read_private_file(path, size=size, what=what, error=error)
    except FileNotFoundError:
        pass  # first use: create it below
    try:
        write_private_file(path, make(), replace=False)
    except FileExistsError:
        pass  # another process created it first; use theirs
    except OSError as exc:
        raise error(f"cannot create the {what} {path}: {exc.strerror}") from None
    try:
        return read_private_file(path, size=size, what=what, error=error)
    except FileNotFoundError:
        raise error(f"{what} {path} vanished after creation") from None

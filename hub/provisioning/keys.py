"""The hub's provisioning key: signs configurations and commands; makes and hashes one-time codes.

One Ed25519 private key in a 0600 file (``provisioning.key`` in the hub's data directory, or
a path every hub instance shares, e.g. a systemd credential). From it, by HKDF, the pepper
that enrollment codes are hashed with, so a copy of the database alone cannot test codes
offline. Rotation: the new key's public half is listed in ``trusted_extra`` (and so sent to
stations inside signed configurations) before the hub switches to signing with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hub.provisioning.errors import ProvisioningHubError
from provisioning.protocol import b64decode, b64encode, fingerprint, public_key_bytes
from station.storage.durable import atomic_write

__all__ = ["CODE_ALPHABET", "HubSigningKey", "format_code"]

_KEY_BYTES = 32

#: Codes people type: no 0/O, 1/I/L, U (30 symbols; 8 of them are about 39 bits).
CODE_ALPHABET: Final = "ABCDEFGHJKMNPQRSTVWXYZ23456789"


def format_code(length: int = 8) -> str:
    """A fresh one-time code, ``XXXX-XXXX`` (kept only as :meth:`HubSigningKey.code_hash`)."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))
    return "-".join(raw[i : i + 4] for i in range(0, length, 4))


def _write_new_private(path: Path, data: bytes) -> None:
    """Create ``path`` (0600) atomically; FileExistsError if another process was first."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(path, data, replace=False, mode=0o600)


class HubSigningKey:
    """The provisioning key and the public keys stations are told to trust."""

    def __init__(self, private_key: Ed25519PrivateKey, trusted_extra: tuple[str, ...] = ()):
        self._key = private_key
        self.public_key = public_key_bytes(private_key)
        self.key_id = fingerprint(self.public_key)
        extra = [b64decode(text, length=32) for text in trusted_extra]
        self.trusted = [self.public_key, *[k for k in extra if k != self.public_key]]
        self._pepper = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"kontaktstation code pepper"
        ).derive(private_key.private_bytes_raw())

    @classmethod
    def load_or_create(cls, path: Path, trusted_extra: tuple[str, ...] = ()) -> HubSigningKey:
        """Read the key file, creating it (0600, atomically) on first start."""
        try:
            raw = cls._read(path)
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):
                _write_new_private(path, secrets.token_bytes(_KEY_BYTES))
            raw = cls._read(path)
        return cls(Ed25519PrivateKey.from_private_bytes(raw), trusted_extra)

    @staticmethod
    def _read(path: Path) -> bytes:
        # Not station.storage.private_files.read_private_file, on purpose: that reader insists
        # that this user owns the file, and the hub's key may be a systemd credential, which
        # systemd makes readable by the service's user without promising that user owns it.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077:
                raise ProvisioningHubError(
                    f"provisioning key {path} must be a regular file with mode 0600"
                )
            data = os.read(fd, _KEY_BYTES + 1)
        finally:
            os.close(fd)
        if len(data) != _KEY_BYTES:
            raise ProvisioningHubError(f"provisioning key {path} must hold {_KEY_BYTES} bytes")
        return data

    @property
    def private_key(self) -> Ed25519PrivateKey:
        """The signing key (for :func:`provisioning.protocol.seal_envelope`)."""
        return self._key

    def trusted_b64(self) -> tuple[str, ...]:
        """The trusted public keys, base64url, current first."""
        return tuple(b64encode(k) for k in self.trusted)

    def code_hash(self, kind: str, code: str) -> bytes:
        """HMAC of a normalised one-time code, so the database never holds a usable code."""
        normal = code.replace("-", "").replace(" ", "").upper()
        return hmac.new(self._pepper, f"{kind}\n{normal}".encode(), hashlib.sha256).digest()

    def __repr__(self) -> str:
        return f"HubSigningKey(key_id={self.key_id!r})"

"""The two keys of provisioning, kept apart on purpose (issue 14 item 3).

**IT's signing key** (:class:`ITSigningKey`) signs every configuration and command a station
obeys. It never lives on the hub: IT keeps it in a 0600 file on their own machine (or a USB
stick) and gives it to ``kontaktstation admin --signing-key PATH`` (or
``KONTAKTSTATION_IT_SIGNING_KEY``) for the actions that sign; ``kontaktstation admin keygen``
makes one. The hub's web process never reads it, so a hub whose database, data directory or
process is taken over holds nothing a station would obey. Stations pin IT's public key from
their set-up (``--it-key``), and take a new list of trusted keys only inside a configuration
signed by a key they already trust (rotation: ``--also-trust NEW`` while signing with the old
key, then sign with the new one).

**The hub's own secret** (:class:`HubSecret`): 32 random bytes in ``hub.secret`` (0600, in the
data directory or a path every hub instance shares, e.g. a systemd credential). From it, by
HKDF, the pepper enrollment codes are hashed with (a copy of the database alone cannot test
codes offline) and the key of the short rendezvous session tokens. Nothing a station trusts
depends on it.
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

__all__ = ["CODE_ALPHABET", "LEGACY_KEY_FILE", "HubSecret", "ITSigningKey", "format_code"]

_KEY_BYTES = 32

#: Codes people type: no 0/O, 1/I/L, U (30 symbols; 8 of them are about 39 bits).
CODE_ALPHABET: Final = "ABCDEFGHJKMNPQRSTVWXYZ23456789"

#: Where hubs before IT signing kept their signing key (the hub refuses to start beside one).
LEGACY_KEY_FILE: Final = "provisioning.key"


def format_code(length: int = 8) -> str:
    """A fresh one-time code, ``XXXX-XXXX`` (kept only as :meth:`HubSecret.code_hash`)."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))
    return "-".join(raw[i : i + 4] for i in range(0, length, 4))


def _write_new_private(path: Path, data: bytes) -> None:
    """Create ``path`` (0600) atomically; FileExistsError if it exists or another process was
    first."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(path, data, replace=False, mode=0o600)


def _read_key_file(path: Path, what: str) -> bytes:
    # Not station.storage.private_files.read_private_file, on purpose: that reader insists
    # that this user owns the file, and a key may be a systemd credential, which systemd
    # makes readable by the service's user without promising that user owns it.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077:
            raise ProvisioningHubError(f"{what} {path} must be a regular file with mode 0600")
        data = os.read(fd, _KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) != _KEY_BYTES:
        raise ProvisioningHubError(f"{what} {path} must hold {_KEY_BYTES} bytes")
    return data


class HubSecret:
    """The hub's own secret: code pepper and session-token key; signs nothing."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != _KEY_BYTES:
            raise ValueError("the hub secret is 32 bytes")
        self._pepper = self._derive(secret, b"kontaktstation code pepper")
        self.session_key = self._derive(secret, b"kontaktstation rendezvous sessions")

    @staticmethod
    def _derive(secret: bytes, info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)

    @classmethod
    def load_or_create(cls, path: Path) -> HubSecret:
        """Read the secret file, creating it (0600, atomically) on first start."""
        try:
            raw = _read_key_file(path, "hub secret")
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):
                _write_new_private(path, secrets.token_bytes(_KEY_BYTES))
            raw = _read_key_file(path, "hub secret")
        return cls(raw)

    def code_hash(self, kind: str, code: str) -> bytes:
        """HMAC of a normalised one-time code, so the database never holds a usable code."""
        normal = code.replace("-", "").replace(" ", "").upper()
        return hmac.new(self._pepper, f"{kind}\n{normal}".encode(), hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "HubSecret(...)"


class ITSigningKey:
    """IT's Ed25519 signing key and the public keys stations are told to trust."""

    def __init__(self, private_key: Ed25519PrivateKey, also_trust: tuple[str, ...] = ()) -> None:
        self._key = private_key
        self.public_key = public_key_bytes(private_key)
        self.key_id = fingerprint(self.public_key)
        extra = [b64decode(text.strip(), length=32) for text in also_trust if text.strip()]
        self.trusted = [self.public_key, *[k for k in extra if k != self.public_key]]

    @classmethod
    def generate(cls, path: Path) -> ITSigningKey:
        """A new key in a new 0600 file (FileExistsError: never overwrite a key)."""
        _write_new_private(path, secrets.token_bytes(_KEY_BYTES))
        return cls.load(path)

    @classmethod
    def load(cls, path: Path, also_trust: tuple[str, ...] = ()) -> ITSigningKey:
        """Read IT's key file (0600, 32 bytes)."""
        raw = _read_key_file(path, "IT signing key")
        return cls(Ed25519PrivateKey.from_private_bytes(raw), also_trust)

    @property
    def private_key(self) -> Ed25519PrivateKey:
        """The signing key (for :func:`provisioning.protocol.seal_envelope`)."""
        return self._key

    def trusted_b64(self) -> tuple[str, ...]:
        """The trusted public keys, base64url, current first."""
        return tuple(b64encode(k) for k in self.trusted)

    def __repr__(self) -> str:
        return f"ITSigningKey(key_id={self.key_id!r})"

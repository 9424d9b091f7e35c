"""The station's identity: an Ed25519 key pair made at first start, and its request counter.

The private key is 32 raw bytes in ``provisioning/identity.key`` under the data directory,
mode 0600, created atomically (temp file, fsync, hard link, fsync of the directory) so two
starts racing cannot make two keys, and a power cut leaves either no key or a whole one.
:class:`IdentitySource` is the seam for the Raspberry Pi's OTP-backed key later: anything
that yields a :class:`StationIdentity`.

The request counter (``provisioning/counter``) is persisted *before* each signed request is
sent, so a counter is never used twice, even across power cuts; a copied identity directory
(a cloned station) continues from the same counter and is caught by the hub.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Final, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provisioning.errors import IdentityError
from provisioning.protocol import (
    fingerprint,
    public_key_bytes,
    sign_audit_head,
    sign_request,
    station_id_for,
)
from station.storage.datadir import DataDir
from station.storage.durable import atomic_write, fsync_dir
from station.storage.private_files import load_or_create_private_file, read_private_file

__all__ = [
    "IDENTITY_FILE",
    "PROVISIONING_DIR",
    "FileIdentity",
    "IdentitySource",
    "RequestCounter",
    "StationIdentity",
    "fingerprint_line",
    "provisioning_dir",
]

PROVISIONING_DIR: Final = DataDir.PROVISIONING
IDENTITY_FILE: Final = DataDir.IDENTITY_KEY
_COUNTER_FILE: Final = DataDir.REQUEST_COUNTER
_KEY_BYTES: Final = 32


def provisioning_dir(data_dir: Path) -> Path:
    """``data_dir/provisioning``, created 0700."""
    path = data_dir / PROVISIONING_DIR
    path.mkdir(mode=0o700, exist_ok=True)
    return path


class StationIdentity:
    """The station's key pair; ``repr`` shows the fingerprint only."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = public_key_bytes(private_key)
        self.fingerprint = fingerprint(self.public_key)
        self.station_id = station_id_for(self.public_key)

    def sign_request(
        self, method: str, target: str, counter: int, time: int, body: bytes
    ) -> dict[str, str]:
        """The signed-request headers (see :func:`provisioning.protocol.sign_request`)."""
        return sign_request(self._key, method, target, counter, time, body)

    def sign_audit_head(self, seq: int, digest: str) -> str:
        """The signature the heartbeat carries with the audit head."""
        return sign_audit_head(self._key, self.station_id, seq, digest)

    def __repr__(self) -> str:
        return f"StationIdentity(fingerprint={self.fingerprint!r})"


class IdentitySource(Protocol):
    """Where the identity comes from: a file here, the Pi's OTP key later."""

    def load(self) -> StationIdentity:
        """The identity, created on first use."""
        ...

    def destroy(self) -> None:
        """Forget the identity (decommissioning); the next :meth:`load` makes a new one."""
        ...


class FileIdentity:
    """:class:`IdentitySource` on a 0600 file in the data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.path = provisioning_dir(data_dir) / IDENTITY_FILE

    def load(self) -> StationIdentity:
        """Read the key, creating it atomically on first start."""
        raw = load_or_create_private_file(
            self.path,
            make=lambda: Ed25519PrivateKey.generate().private_bytes_raw(),
            size=_KEY_BYTES,
            what="identity key",
            error=IdentityError,
        )
        return StationIdentity(Ed25519PrivateKey.from_private_bytes(raw))

    def destroy(self) -> None:
        """Delete the key and the counter (decommissioning)."""
        for name in (IDENTITY_FILE, _COUNTER_FILE):
            with contextlib.suppress(FileNotFoundError):
                (self.path.parent / name).unlink()
        fsync_dir(self.path.parent)


class RequestCounter:
    """A strictly increasing counter, persisted (fsync) before each value is handed out."""

    def __init__(self, data_dir: Path) -> None:
        self.path = provisioning_dir(data_dir) / _COUNTER_FILE
        self._lock = threading.Lock()

    def _read(self) -> int:
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return 0
        if not text.isdigit():
            # A damaged counter must not restart at 0 silently: that is what a clone does.
            raise IdentityError("the request counter file is damaged; IT must re-approve")
        return int(text)

    def next(self) -> int:
        """The next value, durably recorded before it is returned. Blocking (fsync)."""
        with self._lock:
            value = self._read() + 1
            atomic_write(self.path, str(value).encode("ascii"), replace=True)
            return value

    @property
    def current(self) -> int:
        """The last value handed out (0 if none)."""
        return self._read()


def fingerprint_line(data_dir: Path) -> str:
    """One line for ``kontaktstation hw-check``: the station's identity fingerprint.

    Only reads: the key is made by stationd at its first start, as stationd's user (a key
    made here by root would be refused by stationd as another user's file).
    """
    path = data_dir / PROVISIONING_DIR / IDENTITY_FILE
    try:
        raw = read_private_file(path, size=_KEY_BYTES, what="identity key", error=IdentityError)
    except FileNotFoundError:
        return "identity      -     not made yet (stationd makes it at its first start)"
    except (IdentityError, OSError) as exc:
        return f"identity      FAIL  {exc}"
    identity = StationIdentity(Ed25519PrivateKey.from_private_bytes(raw))
    return f"identity      ok    fingerprint {identity.fingerprint}"

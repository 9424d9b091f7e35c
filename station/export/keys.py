"""The outbox key pair: what lets stationd retry an export without the vault key.

The staff UI seals each export to the outbox's *public* key (HPKE, the same sealed boxes as
:func:`station.keys.boxes.seal_to_vault`); stationd holds the private key in a 0600 file in the
data directory (``outbox.key``, 32 raw X25519 bytes) and opens a box only at send time, in
memory, never logging it. So the outbox keeps working while the station is locked, after a
reboot, and offline for as long as it takes.

What this protects and what it does not: the notes in ``outbox.db`` are ciphertext to anyone
who copies that file alone; whoever has both ``outbox.key`` and ``outbox.db`` (root on the
station) can read the notes still waiting. That is the price of "retry while locked"; it is
bounded by deleting each sealed payload the moment the EOJ confirms it. Later the key is
bound to the EOJ credentials from the signed configuration (rotated with them), and on a Pi
with an OTP key it can be wrapped by the device secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, NoReturn

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from station.export.errors import ExportKeyError
from station.keys.boxes import open_sealed_box
from station.storage.datadir import DataDir
from station.storage.private_files import load_or_create_private_file, read_private_file

__all__ = ["OUTBOX_KEY_FILENAME", "OutboxKey"]

OUTBOX_KEY_FILENAME: Final = DataDir.OUTBOX_KEY
_KEY_BYTES: Final = 32


class OutboxKey:
    """stationd's outbox key pair (see the module docs). Never printed, never pickled."""

    __slots__ = ("_path", "_public")

    def __init__(self, path: Path, public_key: bytes) -> None:
        """Use :meth:`load_or_create`."""
        self._path = path
        self._public = public_key

    @classmethod
    def load_or_create(cls, path: Path) -> OutboxKey:
        """The key pair in ``path``, created (atomically, 0600) on first use.

        Refuses a file that is not a regular file of 32 bytes owned by us with mode 0600.
        """
        private = load_or_create_private_file(
            path,
            make=lambda: X25519PrivateKey.generate().private_bytes(
                Encoding.Raw, PrivateFormat.Raw, NoEncryption()
            ),
            size=_KEY_BYTES,
            what="outbox key",
            error=ExportKeyError,
        )
        public = (
            X25519PrivateKey.from_private_bytes(private)
            .public_key()
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        return cls(path, public)

    @property
    def public_key(self) -> bytes:
        """The 32-byte X25519 public key the staff UI seals exports to."""
        return self._public

    def open(self, blob: bytes, context: bytes) -> bytes:
        """Open a box sealed to :attr:`public_key` under ``context``; ``SealError`` if not.

        The private key is read from its file for this one call and dropped: nothing keeps
        it in memory between deliveries.
        """
        private = X25519PrivateKey.from_private_bytes(
            read_private_file(self._path, size=_KEY_BYTES, what="outbox key", error=ExportKeyError)
        )
        return open_sealed_box(private, blob, context)

    def __repr__(self) -> str:
        return "OutboxKey(<private>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("an OutboxKey cannot be pickled")

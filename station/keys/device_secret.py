"""The device secret: 32 bytes mixed into every PIN-derived key.

So a copied SD card cannot be brute-forced elsewhere, every keyslot's key is derived from the
PIN *and* this secret. Only stationd (the keeper: the unlock hand-over, staff enrollment) reads
it; the staff UI never does. Where it comes from is chosen by name
(``KONTAKTSTATION_DEVICE_SECRET``, :func:`device_secret_source`), and a name that cannot be
served stops stationd with one line rather than falling back:

- ``otp`` (a Raspberry Pi 4 or 5, set by the set-up): derived with HKDF from the SoC's OTP
  "device private key", 256 bits programmed once by the set-up and read through the
  firmware's mailbox (``/dev/vcio``, tag ``0x00030081``, as ``rpi-otp-private-key`` reads it).
  The key is in the chip, not on the SD card: a copied card holds nothing to guess PINs
  against. (Without Raspberry Pi's signed boot, root on the running board, or anyone who boots
  the board from another card, can still read it: the OTP protects a copied card, not a
  stolen station.)
- ``file``: 32 random bytes in a 0600 file in the data directory (development machines and
  boards without OTP). A copied card then carries the secret: the PIN alone stands between the
  copy and the vault key, and Argon2id only slows the guessing (``bench/vault.py``).
- ``fake_otp``: the OTP path with the key in a file outside the data directory
  (``KONTAKTSTATION_FAKE_OTP_FILE``), for tests and the demo: a copied data directory lacks it
  exactly as a copied SD card lacks the chip.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Protocol

from station.keys.errors import DeviceSecretError
from station.keys.keyslots import hkdf
from station.storage.private_files import load_or_create_private_file

__all__ = [
    "DEVICE_SECRET_BYTES",
    "DEVICE_SECRET_ENV",
    "DEVICE_SECRET_SOURCES",
    "FAKE_OTP_ENV",
    "DeviceSecret",
    "DeviceSecretSource",
    "FileOtp",
    "OtpDeviceSecret",
    "OtpKey",
    "VcioOtp",
    "device_secret_source",
]

DEVICE_SECRET_BYTES = 32
#: Where the device secret comes from, by name (see the module docs).
DEVICE_SECRET_ENV: Final = "KONTAKTSTATION_DEVICE_SECRET"  # noqa: S105 (a variable name)
DEVICE_SECRET_SOURCES: Final = ("file", "otp", "fake_otp")
#: The fake OTP's key file (outside the data directory).
FAKE_OTP_ENV: Final = "KONTAKTSTATION_FAKE_OTP_FILE"
_OTP_INFO: Final = b"kontaktstation device secret v1"


class DeviceSecretSource(Protocol):
    """Where the device secret comes from: a file here, the Pi's OTP key where available."""

    def load(self) -> bytes:
        """The 32-byte device secret; raises :class:`DeviceSecretError` if unusable."""
        ...


class DeviceSecret:
    """The device secret in a 0600 file in the data directory (the ``file`` source)."""

    kind: Final = "file"

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


# --------------------------------------------------------------------------- the OTP


class OtpKey(Protocol):
    """The SoC's one-time-programmable device key (32 bytes; all zero: never programmed)."""

    def read(self) -> bytes:
        """The key; raises :class:`DeviceSecretError` when it cannot be read."""
        ...


#: The firmware's property tag for reading the device private key (Pi 4 and later).
_GET_PRIVATE_KEY: Final = 0x00030081
_ROWS: Final = 8
#: ``_IOWR(100, 0, char *)``: the mailbox's one ioctl; its size is a pointer's.
_IOCTL_MBOX_PROPERTY: Final = (3 << 30) | (struct.calcsize("P") << 16) | (100 << 8) | 0


def mailbox_request(rows: int = _ROWS) -> bytearray:
    """The property message that reads ``rows`` words of the key (as ``rpi-otp-private-key``
    sends it with ``vcmailbox``): size, request code, tag, value size, request size, offset,
    count, the words, the end tag; little-endian 32-bit words."""
    value = 8 + 4 * rows
    words = [0, 0, _GET_PRIVATE_KEY, value, value, 0, rows, *([0] * rows), 0]
    words[0] = 4 * len(words)
    return bytearray(struct.pack(f"<{len(words)}I", *words))


def mailbox_key(response: bytes, rows: int = _ROWS) -> bytes:
    """The key in the firmware's answer to :func:`mailbox_request`, each word big-endian (so
    it reads as ``rpi-otp-private-key`` prints it); raises if the firmware refused."""
    words = struct.unpack(f"<{len(response) // 4}I", response)
    if words[1] != 0x80000000:
        raise DeviceSecretError(f"the firmware refused the OTP read (code {words[1]:#x})")
    if words[2] != _GET_PRIVATE_KEY or not words[4] & 0x80000000:
        raise DeviceSecretError("the firmware did not answer the OTP read")
    return struct.pack(f">{rows}I", *words[7 : 7 + rows])


class VcioOtp:
    """The device private key through the firmware mailbox (``/dev/vcio``, group ``video``)."""

    def __init__(self, device: Path = Path("/dev/vcio")) -> None:
        self.device = device

    def read(self) -> bytes:
        """Ask the firmware for the key (one ioctl)."""
        message = mailbox_request()
        try:
            fd = os.open(self.device, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise DeviceSecretError(
                f"{self.device}: {exc.strerror} (not a Raspberry Pi, or stationd is not in the "
                "video group)"
            ) from None
        try:
            fcntl.ioctl(fd, _IOCTL_MBOX_PROPERTY, message, True)
        except OSError as exc:
            raise DeviceSecretError(f"OTP read through {self.device}: {exc.strerror}") from None
        finally:
            os.close(fd)
        return mailbox_key(bytes(message))


class FileOtp:
    """A stand-in OTP: the key in a 0600 file outside the data directory (``fake_otp``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> bytes:
        """The key in the file (created on first use, as the set-up programs a real one)."""
        return load_or_create_private_file(
            self.path,
            make=lambda: secrets.token_bytes(DEVICE_SECRET_BYTES),
            size=DEVICE_SECRET_BYTES,
            what="fake OTP key",
            error=DeviceSecretError,
        )


class OtpDeviceSecret:
    """The device secret derived from the OTP key (HKDF, this project's own label)."""

    def __init__(self, otp: OtpKey, kind: str = "otp") -> None:
        self.otp = otp
        self.kind = kind

    def load(self) -> bytes:
        """The 32-byte secret; refuses an OTP that was never programmed."""
        key = self.otp.read()
        if len(key) != DEVICE_SECRET_BYTES:
            raise DeviceSecretError(f"the OTP key has {len(key)} bytes, not 32")
        if not any(key):
            raise DeviceSecretError(
                "the OTP device key is not programmed (the set-up programs it on a Pi)"
            )
        return hkdf(key, _OTP_INFO)


def device_secret_source(
    data_dir: Path, environ: Mapping[str, str] | None = None
) -> DeviceSecret | OtpDeviceSecret:
    """The source ``KONTAKTSTATION_DEVICE_SECRET`` names (default ``file``); an unknown name,
    or ``fake_otp`` without its file, raises :class:`DeviceSecretError` (no fallback)."""
    from station.storage.datadir import DataDir

    env = os.environ if environ is None else environ
    name = env.get(DEVICE_SECRET_ENV, "").strip() or "file"
    if name == "file":
        return DeviceSecret(DataDir(data_dir).device_secret)
    if name == "otp":
        return OtpDeviceSecret(VcioOtp())
    if name == "fake_otp":
        path = env.get(FAKE_OTP_ENV, "").strip()
        if not path:
            raise DeviceSecretError(f"{DEVICE_SECRET_ENV}=fake_otp needs {FAKE_OTP_ENV}")
        fake = Path(path)
        if fake.resolve().is_relative_to(Path(data_dir).resolve()):
            raise DeviceSecretError(f"{FAKE_OTP_ENV} must lie outside the data directory")
        return OtpDeviceSecret(FileOtp(fake), kind="fake_otp")
    raise DeviceSecretError(
        f"{DEVICE_SECRET_ENV}={name!r} is not a device secret source; choose one of "
        f"{', '.join(DEVICE_SECRET_SOURCES)}"
    )

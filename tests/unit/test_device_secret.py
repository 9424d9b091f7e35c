"""Where the device secret comes from (issue 14, item 1): the Raspberry Pi's OTP device key
through the firmware mailbox, a stand-in OTP for tests, the file; chosen by name, no fallback.

The mailbox message is checked word for word against Raspberry Pi's documented example
(``vcmailbox 0x00030081 40 40 0 8 0 0 0 0 0 0 0 0`` and its answer, from the "Device-specific
private key" section of Raspberry Pi's documentation): the real ioctl needs a Pi (marker
``hardware``)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from station.keys.device_secret import (
    DeviceSecret,
    FileOtp,
    OtpDeviceSecret,
    VcioOtp,
    device_secret_source,
    mailbox_key,
    mailbox_request,
)
from station.keys.errors import DeviceSecretError

#: Raspberry Pi's documented answer to the read (16 words as vcmailbox prints them).
DOC_ANSWER = (
    "0x00000040 0x80000000 0x00030081 0x00000028 0x80000028 0x00000000 0x00000008 "
    "0xf8dbc7b0 0xa4fcfb1d 0x706e298a 0xc9d0485c 0x2226ce8d 0xf7f7596a 0xc77337bd "
    "0x09fbe160 0x00000000"
)
DOC_KEY = "f8dbc7b0a4fcfb1d706e298ac9d0485c2226ce8df7f7596ac77337bd09fbe160"


def _words(text: str) -> bytes:
    values = [int(w, 16) for w in text.split()]
    return struct.pack(f"<{len(values)}I", *values)


def test_the_mailbox_request_is_the_documented_one() -> None:
    words = struct.unpack("<16I", mailbox_request())
    # vcmailbox adds the size, the request code and the end tag around its arguments.
    assert words == (64, 0, 0x00030081, 40, 40, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def test_the_key_reads_as_rpi_otp_private_key_prints_it() -> None:
    assert mailbox_key(_words(DOC_ANSWER)).hex() == DOC_KEY


def test_a_refused_or_unanswered_read_is_an_error() -> None:
    refused = DOC_ANSWER.replace("0x80000000", "0x80000001", 1)
    with pytest.raises(DeviceSecretError, match="refused"):
        mailbox_key(_words(refused))
    unanswered = DOC_ANSWER.replace("0x80000028", "0x00000028", 1)
    with pytest.raises(DeviceSecretError, match="did not answer"):
        mailbox_key(_words(unanswered))


def test_no_mailbox_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DeviceSecretError, match="not a Raspberry Pi"):
        VcioOtp(tmp_path / "vcio").read()


class _Otp:
    def __init__(self, key: bytes) -> None:
        self.key = key

    def read(self) -> bytes:
        return self.key


def test_the_secret_is_derived_and_an_unprogrammed_otp_refused() -> None:
    key = bytes.fromhex(DOC_KEY)
    secret = OtpDeviceSecret(_Otp(key)).load()
    assert len(secret) == 32 and secret != key  # derived (HKDF), not the raw OTP key
    assert OtpDeviceSecret(_Otp(key)).load() == secret
    with pytest.raises(DeviceSecretError, match="not programmed"):
        OtpDeviceSecret(_Otp(bytes(32))).load()
    with pytest.raises(DeviceSecretError, match="not 32"):
        OtpDeviceSecret(_Otp(b"short")).load()


def test_the_source_is_chosen_by_name_without_fallback(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    assert isinstance(device_secret_source(data, {}), DeviceSecret)
    assert device_secret_source(data, {"KONTAKTSTATION_DEVICE_SECRET": "file"}).kind == "file"
    otp = device_secret_source(data, {"KONTAKTSTATION_DEVICE_SECRET": "otp"})
    assert isinstance(otp, OtpDeviceSecret) and isinstance(otp.otp, VcioOtp)
    with pytest.raises(DeviceSecretError, match="not a device secret source"):
        device_secret_source(data, {"KONTAKTSTATION_DEVICE_SECRET": "tpm"})
    with pytest.raises(DeviceSecretError, match="needs KONTAKTSTATION_FAKE_OTP_FILE"):
        device_secret_source(data, {"KONTAKTSTATION_DEVICE_SECRET": "fake_otp"})
    inside = {
        "KONTAKTSTATION_DEVICE_SECRET": "fake_otp",
        "KONTAKTSTATION_FAKE_OTP_FILE": str(data / "otp.key"),
    }
    with pytest.raises(DeviceSecretError, match="outside the data directory"):
        device_secret_source(data, inside)
    outside = {**inside, "KONTAKTSTATION_FAKE_OTP_FILE": str(tmp_path / "otp.key")}
    fake = device_secret_source(data, outside)
    assert fake.kind == "fake_otp" and isinstance(fake, OtpDeviceSecret)
    assert isinstance(fake.otp, FileOtp)
    assert fake.load() == fake.load() and (tmp_path / "otp.key").stat().st_mode & 0o077 == 0
    assert not list(data.iterdir())  # nothing of it in the data directory

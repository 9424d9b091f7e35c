"""The attacker's step for issue 14, item 1: a copy of the data directory (an SD card taken
out of a station whose device secret is in the SoC's OTP) and the right PIN still open
nothing, while the station itself unlocks as always. The OTP is the stand-in ``fake_otp``
(its key in a file outside the data directory, as the real one is in the chip); stationd is
started with the environment that names it, as the Pi's ``station.env`` does."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioning.protocol import b64encode
from provisioning.staff import StaffKeyslots
from station.core.clock import SystemClock
from station.keys.device_secret import device_secret_source
from station.keys.errors import VaultError
from station.keys.handover import KeyringAccess
from station.keys.keyring import generate_escrow_keypair
from station.storage.datadir import DataDir
from tests.integration.daemon_harness import TEST_KDF, running_daemon, short_socket_dir

PIN = "482916"


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    with short_socket_dir() as path:
        yield path


async def test_a_copied_data_directory_without_the_otp_opens_nothing(
    tmp_path: Path, data_dir: Path, socket_dir: Path
) -> None:
    environ = {
        "GPIOZERO_PIN_FACTORY": "mock",
        "KONTAKTSTATION_DEVICE_SECRET": "fake_otp",
        "KONTAKTSTATION_FAKE_OTP_FILE": str(tmp_path / "soc" / "otp.key"),
    }
    (tmp_path / "soc").mkdir()
    # The first staff member enrolls as provisioning does it (stationd's own source).
    _private, escrow = generate_escrow_keypair()
    slots = StaffKeyslots(
        data_dir, SystemClock(), kdf_params=TEST_KDF, secret=device_secret_source(data_dir, environ)
    )
    number = slots.add(
        "staff-a", PIN, escrow_public_key=b64encode(escrow), sponsor_number=None, sponsor_pin=None
    )
    # The station, as stationd is started: it unlocks, and says where its secret comes from.
    async with running_daemon(data_dir, socket_dir, environ=environ) as station:
        assert await station.unlock(number, PIN)
        health = (await station.http.get("/v1/health")).json()
        assert health["ports"]["device_secret"] == "fake_otp", health
    assert not (data_dir / DataDir.DEVICE_SECRET).exists()

    # The attacker's copy: everything on the card, the right PIN, no chip.
    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy)
    attacker = KeyringAccess(copy, SystemClock())  # what the card alone offers: the file source
    with pytest.raises(VaultError):
        attacker.verify(number, PIN)
    attacker.close()
    # With the chip's key it opens: the copy lacked exactly that.
    owner = KeyringAccess(copy, SystemClock(), environ=environ)
    staff_id, key = owner.verify(number, PIN)
    assert staff_id == "staff-a" and len(key) == 32
    owner.close()


def test_stationd_as_its_unit_starts_it_takes_the_source_from_its_environment(
    tmp_path: Path, socket_dir: Path
) -> None:
    """``kontaktstation daemon`` with the environment the unit gives it (station.env): an
    unknown source stops it with one line; ``fake_otp`` is the source it reports. (The test
    above hands stationd its environment; this one goes through ``main()``, where a missed
    ``os.environ`` once left a Pi on the file secret.)"""
    import os
    import subprocess
    import sys
    import time

    import httpx

    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    socket = socket_dir / "stationd.sock"
    base = {
        "PATH": os.environ["PATH"],
        "GPIOZERO_PIN_FACTORY": "mock",
        "KONTAKTSTATION_DATA_DIR": str(data),
        "KONTAKTSTATION_SOCKET": str(socket),
    }
    daemon = [str(Path(sys.prefix) / "bin" / "kontaktstation"), "daemon", "--hardware", "fake"]
    bad = subprocess.run(
        daemon, env={**base, "KONTAKTSTATION_DEVICE_SECRET": "tpm"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode != 0
    assert "KONTAKTSTATION_DEVICE_SECRET='tpm' is not a device secret source" in bad.stderr
    chip = {
        **base,
        "KONTAKTSTATION_DEVICE_SECRET": "fake_otp",
        "KONTAKTSTATION_FAKE_OTP_FILE": str(tmp_path / "otp.key"),
    }
    log = tmp_path / "stationd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(daemon, env=chip, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while not _listening(socket):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(socket))) as http:
            health = http.get("http://stationd/v1/health").json()
        assert health["ports"]["device_secret"] == "fake_otp", health
    finally:
        process.terminate()
        process.wait(30)


def _listening(path: Path) -> bool:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


async def test_a_copied_data_directory_without_the_otp_gives_no_room_key(
    tmp_path: Path,
) -> None:
    """The room key that seals the round for the GP (in the GP link's fragment) is kept on
    the card only wrapped under the device secret: a copy of the data directory (with a copy
    of the hub's database, which holds the sealed round) opens no round without the chip."""
    from station.keys.crypto import SealError
    from station.keys.room_seal import RoomKeyWrap
    from tests.integration.call_harness import call_config, running_stationd
    from tests.integration.hub_server import running_hub

    soc = tmp_path / "soc"
    soc.mkdir()
    environ = {
        "KONTAKTSTATION_DEVICE_SECRET": "fake_otp",
        "KONTAKTSTATION_FAKE_OTP_FILE": str(soc / "otp.key"),
    }
    data_dir = tmp_path / "station"
    async with (
        running_hub(tmp_path / "hub") as hub,
        running_stationd(data_dir, call_config(hub.base_url), environ=environ) as st,
    ):
        await st.unlock()
        booking = await st.book_and_check()
        made = await st.http.post(
            "/v1/call/room", headers=st.auth, json={"consultation_id": booking}
        )
        assert made.status_code == 201, made.text
        link_key = made.json()["gp_url"].rsplit(".", 1)[1]
    key = base64.urlsafe_b64decode(link_key + "=")
    assert len(key) == 32

    # The attacker's copy: every file on the card, searched for the key in any spelling.
    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy)
    spellings = (key, link_key.encode(), key.hex().encode(), base64.b64encode(key))
    for path in copy.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(s in data for s in spellings), path
    stored = json.loads((copy / DataDir.CALL_ROOMS).read_text())
    wrapped = stored[booking]["room_key_wrapped"]
    assert "room_key" not in stored[booking]
    # What the card offers as a device secret (the file source makes one): it does not open.
    card_secret = device_secret_source(copy, {}).load()
    with pytest.raises(SealError):
        RoomKeyWrap(card_secret).unwrap(wrapped, booking)
    # With the chip's key it opens, for this booking only: the copy lacked exactly that.
    chip = RoomKeyWrap(device_secret_source(copy, environ).load())
    assert chip.unwrap(wrapped, booking) == key
    with pytest.raises(SealError):
        chip.unwrap(wrapped, "another-booking")

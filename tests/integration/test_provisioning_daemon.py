"""The agent inside a real stationd, against a real hub, with every byte to the hub captured.

* the lock screen's ``GET /v1/enrollment`` (code, QR payload, fingerprint; 404 once enrolled);
* staff enrollment through ``POST /v1/staff/enroll`` (the keyslot is made on the station);
* residents with names, CPR numbers, rooms and notes seeded through the real sealing path,
  then heartbeats, a remote lock and "going offline": a TCP proxy in front of the hub records
  every byte the hub receives, and none of the personal data (nor the PIN) is in it;
* a remote crypto-wipe: keys gone at once, stationd asks for a restart, and the next start
  deletes the store, while the station stays enrolled.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import re
import unicodedata
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.admin import Admin
from hub.provisioning.api import open_provisioning
from provisioning.agent import ProvisioningAgent
from provisioning.protocol import b64encode
from provisioning.schema import CommandKind, Heartbeat
from station.core.clock import SystemClock
from station.core.cpr import parse_cpr
from station.core.model import Resident, WithCpr
from station.daemon.app import Daemon
from station.keys.device_secret import DeviceSecret
from station.keys.keyring import KEYSLOTS_FILE, KdfParams, Keyring, generate_escrow_keypair
from station.keys.pin_guard import PinGuard
from station.keys.records import ConsultationKey, seal_entry, seal_note
from station.storage.store import Clinic, new_id
from tests.integration.daemon_harness import provisioned_daemon, uds_client
from tests.integration.hub_server import it_key, provisioning_hub, running_hub

TEST_KDF = KdfParams(memory_kib=64, time_cost=1, parallelism=1)
PIN = "839201746553"
RESIDENTS = [
    ("Søren Ærbødig Østergaard", "010130-1237", "Stue 12B, Åbakken", "Hoste og åndenød"),
    ("Åse Kjærgaard Bøgh", "240241-2468", "Værelse 7", "Kontrol af blodtryk"),
]
NOTE = "Beboeren har haft feber i tre dage; lægen ordinerer penicillin."


class CaptureProxy:
    """A TCP proxy on 127.0.0.1 that records every byte sent to the upstream hub."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.received = bytearray()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if record:
                    self.received += data
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        await asyncio.gather(
            self._pipe(reader, up_writer, True), self._pipe(up_reader, writer, False)
        )

    async def __aenter__(self) -> CaptureProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)


@contextlib.asynccontextmanager
async def station(data_dir: Path, hub_url: str) -> AsyncIterator[Daemon]:
    async with provisioned_daemon(
        data_dir, hub_url, config={"reminder_tick_seconds": 0.05}
    ) as daemon:
        yield daemon


async def until(condition: Callable[[], Any], within: float = 30.0) -> None:
    """Wait (generously) for a condition the background agent brings about."""
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.05)


def needles() -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    values = [v for resident in RESIDENTS for v in resident] + [NOTE, PIN]
    values += [cpr.replace("-", "") for _, cpr, _, _ in RESIDENTS]
    for value in values:
        for form in ("NFC", "NFD"):
            text = unicodedata.normalize(form, value)
            found[f"{value}/{form}/utf8"] = text.encode()
            # JSON may escape non-ASCII as \\uXXXX.
            found[f"{value}/{form}/json"] = text.encode("ascii", "backslashreplace").replace(
                b"\\x", b"\\u00"
            )
        for word in value.split():
            if len(word) >= 6:
                found[f"{word}/word"] = word.encode()
    return found


async def test_stationd_agent_enrolls_staff_and_no_personal_data_reaches_the_hub(
    tmp_path: Path, data_dir: Path
) -> None:
    async with running_hub(tmp_path / "hub") as hub:
        upstream_port = int(hub.base_url.rsplit(":", 1)[1])
        admin = open_provisioning(hub.settings, SystemClock(), signer=it_key(hub.settings))
        await admin.start()
        _private, escrow = generate_escrow_keypair()
        await admin.set_layer(
            "care_home",
            "solhaven",
            {
                "care_home": {"name": "Solhaven"},
                "escrow_public_key": b64encode(escrow),
                "allow_file_device_secret": True,
            },
            "it",
        )
        try:
            async with CaptureProxy(upstream_port) as proxy:
                await run_station(data_dir, f"http://127.0.0.1:{proxy.port}", admin)
            assert proxy.received, "the proxy saw the station's requests"
            for label, needle in needles().items():
                assert needle not in proxy.received, f"personal data reached the hub: {label}"
            assert b'going_offline":true' in proxy.received
        finally:
            await admin.close()


async def run_station(data_dir: Path, hub_url: str, admin: Any) -> None:
    async with station(data_dir, hub_url) as daemon:
        agent: ProvisioningAgent = daemon.provisioning
        assert agent is not None and agent.identity is not None
        http = uds_client(daemon.config.socket_path)
        try:
            await until(lambda: agent.status == "pending")
            response = await http.get("/v1/enrollment")
            assert response.status_code == 200, response.text
            view = response.json()
            assert view["fingerprint"] == agent.identity.fingerprint
            assert view["code"] and view["code"] in view["qr_payload"]

            await admin.approve(view["code"], "solhaven", "Stue 1", "it")
            agent.wake()
            await until(lambda: agent.config_store is not None and agent.config_store.version)
            assert (await http.get("/v1/enrollment")).status_code == 404

            # Staff enrollment through stationd's API: the slot is made on the station.
            staff_id, code, _ = await admin.issue_staff_code(
                agent.identity.station_id, "Anna Jensen", "it"
            )
            response = await http.post("/v1/staff/enroll", json={"code": code, "pin": PIN})
            assert response.status_code == 200, response.text
            number = response.json()["staff_number"]
            assert response.json() == {"staff_id": staff_id, "staff_number": number}
            assert 100 <= int(number) <= 9999
            again = await http.post("/v1/staff/enroll", json={"code": code, "pin": PIN})
            assert again.status_code == 403 and again.json()["code"] == "sponsor_required"

            await seed_residents(daemon, data_dir, number)
            for _ in range(3):
                await agent.heartbeat_once()
            record = await admin.get_station(agent.identity.station_id)
            assert record.audit_seq is not None and record.audit_seq > 0
            assert admin.is_online(record)

            # Issue 17: a booked slot (with its residents) that passed without a call, and a
            # call two days ago without a note: IT sees both as numbers, nothing more.
            await seed_residents(daemon, data_dir, number, hours=-3)
            await seed_residents(daemon, data_dir, number, hours=-50, status="ended")
            await until(lambda: daemon.service.missed_since_start == 1)
            await agent.heartbeat_once()
            record = await admin.get_station(agent.identity.station_id)
            assert record.heartbeat_json is not None
            beat = Heartbeat.model_validate_json(record.heartbeat_json)
            assert (beat.missed_consultations, beat.undocumented_consultations) == (1, 1)
            shown = io.StringIO()
            await Admin(admin, "it", shown).stations_show(
                argparse.Namespace(station=agent.identity.station_id)
            )
            assert re.search(r"missed \(7 days\)\s+1\n", shown.getvalue()), shown.getvalue()
            assert re.search(r"undocumented\s+1\n", shown.getvalue()), shown.getvalue()

            # A remote lock, while staff are signed in: the token dies.
            unlocked = await http.post("/v1/unlock", json={"staff_number": number, "pin": PIN})
            assert unlocked.status_code == 200, unlocked.text
            assert unlocked.json()["staff_id"] == staff_id
            token = unlocked.json()["token"]
            await admin.issue_command(agent.identity.station_id, CommandKind.LOCK, "it")
            await agent.heartbeat_once()
            assert daemon.service.session.is_locked
            state = await http.get(
                "/v1/consultations", headers={"Authorization": f"Bearer {token}"}
            )
            assert state.status_code == 401
        finally:
            await http.aclose()


async def seed_residents(
    daemon: Daemon, data_dir: Path, staff_number: str, *, hours: int = 1, status: str = "booked"
) -> None:
    """Residents and a note through the real sealing path (as the staff UI does), in a
    consultation ``hours`` from now (an hour long) in ``status``."""
    service = daemon.service
    secret = DeviceSecret(data_dir / "device.secret").load()
    # The store needs a clinic for a consultation; the configuration had none, so add one.
    await service.db(
        service.store.put_clinic,
        Clinic(id="clinic-x", name="Lægehuset", provider_number="057584", video_room="room-x"),
    )
    guard = PinGuard(data_dir / "pin_attempts.seed.db", SystemClock(), device_secret=secret)
    with (
        guard,
        Keyring.load(data_dir / KEYSLOTS_FILE, secret, guard=guard).unlock(
            staff_number, PIN
        ) as vault,
    ):
        consultation_id = new_id()

        def create() -> None:
            # One call on the store's one worker thread: stationd's missed-slot step (on the
            # same thread) never sees a past consultation as "booked" before its status is
            # set (it did, one run in a few: two missed slots instead of one).
            service.store.create_consultation(
                consultation_id=consultation_id,
                clinic_id="clinic-x",
                starts_at=datetime.now(UTC) + timedelta(hours=hours),
                ends_at=datetime.now(UTC) + timedelta(hours=hours + 1),
                consultation_type="video_consultation",
            )
            if status != "booked":
                service.store.set_consultation_status(consultation_id, status)

        await service.db(create)
        key, wrapped = ConsultationKey.new(vault, consultation_id)
        await service.db(service.store.put_consultation_key, consultation_id, wrapped)
        for name, cpr, room, reason in RESIDENTS:
            entry_id = new_id()
            resident = Resident(entry_id, WithCpr(parse_cpr(cpr), name, room=room, note=reason))
            await service.db(
                service.store.add_entry,
                entry_id=entry_id,
                consultation_id=consultation_id,
                sealed=seal_entry(key, entry_id, resident, reason),
            )
        note_id = new_id()
        await service.db(
            service.store.add_note,
            note_id=note_id,
            consultation_id=consultation_id,
            body=seal_note(key, note_id, NOTE),
        )
        key.zero()


@pytest.mark.slow
async def test_remote_crypto_wipe_finishes_at_the_next_start(
    tmp_path: Path, data_dir: Path
) -> None:
    async with provisioning_hub(tmp_path / "hub") as (hub, admin):
        async with station(data_dir, hub.base_url) as daemon:
            agent = daemon.provisioning
            await until(lambda: agent.status == "pending")
            await admin.preauthorise(agent.identity.fingerprint, "solhaven", "Stue 9", "it")
            agent.wake()
            await until(lambda: agent.config_store.version > 0)
            _staff, code, _ = await admin.issue_staff_code(agent.identity.station_id, "Eva", "it")
            await agent.enroll_staff(code, PIN)
            assert (data_dir / KEYSLOTS_FILE).exists()
            await admin.issue_command(agent.identity.station_id, CommandKind.CRYPTO_WIPE, "it")
            await agent.heartbeat_once()
            assert daemon.restart_requested
            assert not (data_dir / KEYSLOTS_FILE).exists()
            assert not (data_dir / "device.secret").exists()
            assert (data_dir / "wipe.pending").exists()
        # The restart: the store's files go before it opens; the station stays enrolled.
        async with station(data_dir, hub.base_url) as daemon:
            assert not (data_dir / "wipe.pending").exists()
            assert await daemon.service.db(daemon.service.store.list_consultations) == []
            assert daemon.provisioning.status == "approved"

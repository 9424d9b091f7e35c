"""The whole provisioning loop against a real hub over HTTP (uvicorn on 127.0.0.1).

enrollment (on-screen code, approval; and pre-authorised) -> signed configuration -> staff
enrollment (keyslots made on the station) -> heartbeats -> commands (lock, revoke staff,
crypto-wipe, decommission) -> going offline.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.provisioning.api import open_provisioning
from hub.provisioning.service import ProvisioningService
from provisioning.agent import ProvisioningAgent
from provisioning.errors import StaffEnrollmentError
from provisioning.protocol import b64encode
from provisioning.schema import CommandKind
from station.core.clock import SystemClock
from station.keys.device_secret import DeviceSecret, device_secret_source
from station.keys.keyring import KEYSLOTS_FILE, KdfParams, Keyring, generate_escrow_keypair
from station.keys.pin_guard import PinGuard
from tests.integration.fake_station import FakeStationPort
from tests.integration.hub_server import RunningHub, it_key, running_hub
from tests.integration.postgres import pg_server, pg_url  # noqa: F401 (fixtures)

TEST_KDF = KdfParams(memory_kib=64, time_cost=1, parallelism=1)


@dataclass
class Setup:
    hub: RunningHub
    admin: ProvisioningService
    escrow_public: str
    agents: list[ProvisioningAgent]

    def agent(self, data_dir: Path, port: FakeStationPort) -> ProvisioningAgent:
        agent = ProvisioningAgent(
            data_dir, self.hub.base_url, port, SystemClock(), kdf_params=TEST_KDF, check_turn=False
        )
        self.agents.append(agent)
        return agent


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def setup(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Setup]:
    overrides = {}
    if request.param == "postgres":
        overrides["database_url"] = request.getfixturevalue("pg_url")
    async with running_hub(tmp_path / "hub", **overrides) as hub:
        admin = open_provisioning(hub.settings, SystemClock(), signer=it_key(hub.settings))
        await admin.start()
        _private, public = generate_escrow_keypair()
        escrow = b64encode(public)
        await admin.set_layer(
            "municipality",
            None,
            {
                "language": "da",
                "escrow_public_key": escrow,
                "allow_file_device_secret": True,
                "retention": {"purge_after_hours": 12},
            },
            "it-test",
        )
        await admin.set_layer(
            "care_home",
            "solhaven",
            {
                "care_home": {"name": "Plejecenter Solhaven"},
                "clinics": [
                    {
                        "id": "clinic-1",
                        "name": "Lægehuset Åboulevarden",
                        "provider_number": "057584",
                        "video_room": "room-1",
                    }
                ],
            },
            "it-test",
        )
        setup = Setup(hub, admin, escrow, [])
        try:
            yield setup
        finally:
            for agent in setup.agents:
                if agent.client is not None:
                    await agent.client.aclose()
            await admin.close()


def unlocks(data_dir: Path, staff_id: str, pin: str) -> bool:
    """Whether ``staff_id`` has a slot and its staff number and ``pin`` open it as them."""
    secret = DeviceSecret(data_dir / "device.secret").load()
    with PinGuard(data_dir / "pin_attempts.db", SystemClock(), device_secret=secret) as guard:
        keyring = Keyring.load(data_dir / KEYSLOTS_FILE, secret, guard=guard)
        number = keyring.number_of(staff_id)
        if number is None:
            return False
        opened_as, vault = keyring.open(number, pin)
        vault.zero()
        return opened_as == staff_id


async def test_full_loop(setup: Setup, data_dir: Path) -> None:
    port = FakeStationPort()
    agent = setup.agent(data_dir, port)
    await agent.start()
    assert agent.identity is not None
    station_id = agent.identity.station_id

    # 1. First contact: pending, with a code and QR payload for the lock screen.
    await agent.step_once()
    assert agent.status == "pending"
    view = agent.enrollment_view()
    assert view is not None and view["code"] is not None
    assert view["fingerprint"] == agent.identity.fingerprint
    assert view["qr_payload"] is not None and view["code"] in view["qr_payload"]
    assert view["qr_payload"].startswith(setup.hub.base_url)
    (listed,) = await setup.admin.list_stations()
    assert listed.status == "pending" and listed.station_id == station_id

    # A second poll keeps the same code (the station keeps showing it).
    await agent.step_once()
    assert agent.enrollment_view() == view

    # 2. IT approves the code: the station runs its first configuration on the next poll.
    await setup.admin.approve(view["code"], "solhaven", "Stue 1", "it-anna")
    await agent.step_once()
    assert agent.status == "approved"
    assert agent.enrollment_view() is None
    assert agent.config_store is not None and agent.config_store.version == 1
    config = port.configs[-1]
    assert config.station_name == "Stue 1"
    assert config.care_home.name == "Plejecenter Solhaven"
    assert config.clinics[0].video_room == "room-1"
    assert config.retention.purge_after_hours == 12

    # 3. Staff enrollment: the first staff member initialises the keyring on the station.
    staff_a, code_a, _ = await setup.admin.issue_staff_code(station_id, "Anna Jensen", "it-anna")
    # A new PIN has at least 6 digits (issue 14): a short one is refused before the code is
    # spent at the hub.
    with pytest.raises(StaffEnrollmentError) as short:
        await agent.enroll_staff(code_a, "4711")
    assert short.value.code == "invalid_pin"
    enrolled_a, number_a = await agent.enroll_staff(code_a, "471123")
    assert enrolled_a == staff_a
    assert unlocks(data_dir, staff_a, "471123")
    # The code is one-time.
    staff_b, code_b, _ = await setup.admin.issue_staff_code(station_id, "Bo Hansen", "it-anna")
    with pytest.raises(StaffEnrollmentError) as refused:
        await agent.enroll_staff(code_a, "555566", sponsor_number=number_a, sponsor_pin="471123")
    assert refused.value.code == "code_used"
    # A later staff member needs an enrolled colleague's PIN; a wrong one spends no code.
    with pytest.raises(StaffEnrollmentError) as refused:
        await agent.enroll_staff(code_b, "123456")
    assert refused.value.code == "sponsor_required"
    with pytest.raises(StaffEnrollmentError) as refused:
        await agent.enroll_staff(code_b, "123456", sponsor_number=number_a, sponsor_pin="0000")
    assert refused.value.code == "sponsor_refused"
    enrolled_b, number_b = await agent.enroll_staff(
        code_b, "123456", sponsor_number=number_a, sponsor_pin="471123"
    )
    assert enrolled_b == staff_b and number_b != number_a
    assert unlocks(data_dir, staff_b, "123456")

    # 4. A heartbeat brings the configuration naming both (pseudonymous) staff ids; the next
    # one tells the hub the version now running.
    await agent.step_once()
    await agent.step_once()
    assert {s.staff_id for s in port.configs[-1].staff} == {staff_a, staff_b}
    record = await setup.admin.get_station(station_id)
    assert setup.admin.is_online(record)
    assert record.config_version == agent.config_store.version
    assert record.first_config_at is not None

    # 5. Commands: lock now; revoke staff (slot removed on the next contact).
    lock_id = await setup.admin.issue_command(station_id, CommandKind.LOCK, "it-anna")
    port.lock_state, port.staff = "unlocked", staff_b
    await agent.step_once()
    assert port.locks == 1 and port.lock_state == "locked"
    assert ("remote_lock", None, "done") in port.audits
    await setup.admin.revoke_staff(staff_b, "it-anna")
    await agent.step_once()
    assert not unlocks(data_dir, staff_b, "123456")
    assert unlocks(data_dir, staff_a, "471123")
    assert {s.staff_id for s in port.configs[-1].staff} == {staff_a}
    commands = {c.command_id: c for c in await setup.admin.commands(station_id)}
    assert commands[lock_id].state == "done" and commands[lock_id].outcome == "done"
    assert all(c.state == "done" for c in commands.values())
    # Idempotent: the lock is never run twice, even if re-delivered.
    await agent.step_once()
    assert port.locks == 1

    # 6. Going offline on a clean shutdown.
    await agent.stop()
    record = await setup.admin.get_station(station_id)
    assert not setup.admin.is_online(record)

    # The admin trail recorded every action, by pseudonym (no staff names).
    trail = await setup.admin.admin_audit(100)
    actions = [e.action for e in trail]
    for expected in ("approve", "staff_code_issued", "command_lock", "staff_revoked"):
        assert expected in actions
    assert not any("Anna" in (e.detail or "") + (e.target or "") for e in trail)


async def test_preauthorised_station_is_accepted_on_first_contact(
    setup: Setup, data_dir: Path
) -> None:
    port = FakeStationPort()
    agent = setup.agent(data_dir, port)
    await agent.start()
    assert agent.identity is not None
    key = base64.urlsafe_b64encode(agent.identity.public_key).rstrip(b"=").decode()
    await setup.admin.preauthorise(key, "solhaven", "Stue 2", "it-anna")
    await agent.step_once()
    assert agent.status == "approved"
    assert port.configs and port.configs[-1].station_name == "Stue 2"


async def test_preauthorised_by_fingerprint(setup: Setup, data_dir: Path) -> None:
    port = FakeStationPort()
    agent = setup.agent(data_dir, port)
    await agent.start()
    assert agent.identity is not None
    await setup.admin.preauthorise(agent.identity.fingerprint, "solhaven", "Stue 3", "it-anna")
    await agent.step_once()
    assert agent.status == "approved" and port.configs[-1].station_name == "Stue 3"


async def test_crypto_wipe_waits_for_the_call_then_destroys_every_keyslot(
    setup: Setup, data_dir: Path
) -> None:
    port = FakeStationPort()
    agent = setup.agent(data_dir, port)
    await agent.start()
    assert agent.identity is not None
    await setup.admin.preauthorise(agent.identity.fingerprint, "solhaven", "Stue 4", "it")
    await agent.step_once()
    staff, code, _ = await setup.admin.issue_staff_code(agent.identity.station_id, "Eva", "it")
    await agent.enroll_staff(code, "246813")
    assert (data_dir / KEYSLOTS_FILE).exists()

    await setup.admin.issue_command(agent.identity.station_id, CommandKind.CRYPTO_WIPE, "it")
    port.in_call, port.lock_state = True, "private_call"
    await agent.step_once()
    assert (data_dir / KEYSLOTS_FILE).exists(), "nothing wipes during a call"
    (command,) = await setup.admin.commands(agent.identity.station_id)
    assert command.state == "deferred"

    port.in_call, port.lock_state = False, "locked"
    await agent.step_once()
    assert not (data_dir / KEYSLOTS_FILE).exists()
    assert not (data_dir / "device.secret").exists()
    assert (data_dir / "wipe.pending").exists()
    assert port.restarts == 1 and ("remote_crypto_wipe", None, "done") in port.audits
    (command,) = await setup.admin.commands(agent.identity.station_id)
    assert command.state == "done"
    del staff


async def test_wipe_now_runs_during_a_call(setup: Setup, data_dir: Path) -> None:
    port = FakeStationPort(in_call=True, lock_state="private_call")
    agent = setup.agent(data_dir, port)
    await agent.start()
    assert agent.identity is not None
    await setup.admin.preauthorise(agent.identity.fingerprint, "solhaven", "Stue 5", "it")
    await agent.step_once()
    _staff, code, _ = await setup.admin.issue_staff_code(agent.identity.station_id, "Ib", "it")
    await agent.enroll_staff(code, "246813")
    await setup.admin.issue_command(
        agent.identity.station_id, CommandKind.CRYPTO_WIPE, "it", now=True
    )
    await agent.step_once()
    assert not (data_dir / KEYSLOTS_FILE).exists()


async def test_decommission_forgets_the_identity_and_the_hub_refuses_the_key(
    setup: Setup, data_dir: Path
) -> None:
    port = FakeStationPort()
    agent = setup.agent(data_dir, port)
    await agent.start()
    assert agent.identity is not None
    old_id = agent.identity.station_id
    await setup.admin.preauthorise(agent.identity.fingerprint, "solhaven", "Stue 6", "it")
    await agent.step_once()
    await setup.admin.issue_command(old_id, CommandKind.DECOMMISSION, "it")
    await agent.step_once()
    assert agent.status == "decommissioned"
    assert port.restarts == 1
    assert not (data_dir / "provisioning" / "identity.key").exists()
    assert (await setup.admin.get_station(old_id)).status == "decommissioned"
    await agent.stop()

    # After the restart: a new identity, back to on-screen enrollment.
    fresh = setup.agent(data_dir, FakeStationPort())
    await fresh.start()
    assert fresh.identity is not None and fresh.identity.station_id != old_id
    await fresh.step_once()
    assert fresh.status == "pending"
    await fresh.stop()


async def test_offline_keeps_the_last_good_configuration_and_queues_essentials(
    tmp_path: Path, data_dir: Path
) -> None:
    hub_dir = tmp_path / "hub"
    port = FakeStationPort()
    async with running_hub(hub_dir) as hub:
        admin = open_provisioning(hub.settings, SystemClock(), signer=it_key(hub.settings))
        await admin.start()
        agent = ProvisioningAgent(
            data_dir, hub.base_url, port, SystemClock(), kdf_params=TEST_KDF, check_turn=False
        )
        await agent.start()
        assert agent.identity is not None and agent.config_store is not None
        await admin.set_layer("care_home", "solhaven", {"language": "da"}, "it")
        await admin.preauthorise(agent.identity.fingerprint, "solhaven", "Stue 7", "it")
        await agent.step_once()
        version = agent.config_store.version
        assert version >= 1
        await admin.close()
        base_url = hub.base_url
    # The hub is gone: heartbeats fail, the station keeps its configuration and queues.
    port.lock_state = "private_call"
    for _ in range(3):
        await agent.step_once()
    assert agent.last_error == "hub_unreachable"
    assert agent.describe()["offline_queued"] == 3
    assert agent.config_store.version == version
    await agent.client.aclose()  # type: ignore[union-attr]
    # A restart while offline keeps both (the queue is on disk).
    again = ProvisioningAgent(
        data_dir, base_url, port, SystemClock(), kdf_params=TEST_KDF, check_turn=False
    )
    await again.start()
    assert again.config_store is not None and again.config_store.version == version
    assert again.describe()["offline_queued"] == 3
    assert port.configs[-1].station_name == "Stue 7"
    # The hub is back (same data, new port): the queued essentials arrive with the next beat.
    async with running_hub(hub_dir) as hub:
        again.client.base_url = hub.base_url  # type: ignore[union-attr]
        await again.step_once()
        admin = open_provisioning(hub.settings, SystemClock(), signer=it_key(hub.settings))
        await admin.start()
        record = await admin.get_station(again.identity.station_id)  # type: ignore[union-attr]
        await admin.close()
        assert record.heartbeat_json is not None
        beat = json.loads(record.heartbeat_json)
        assert [s["lock_state"] for s in beat["offline"]] == ["private_call"] * 3
        assert again.describe()["offline_queued"] == 0
        await again.stop()


async def test_a_file_device_secret_needs_its_allowance_before_the_first_keyring(
    setup: Setup, data_dir: Path, tmp_path: Path
) -> None:
    """Issue 14, item 1: without an OTP key the device secret is a file on the SD card, so the
    first keyring is made only when IT's signed configuration allows it; the refusal comes
    before the one-time code is spent. With the (stand-in) OTP no allowance is needed."""
    await setup.admin.set_layer(
        "care_home", "solhaven", {"allow_file_device_secret": False}, "it-test"
    )
    port = FakeStationPort()
    agent = setup.agent(data_dir, port)
    await agent.start()
    assert agent.identity is not None
    await setup.admin.preauthorise(agent.identity.fingerprint, "solhaven", "Stue 4", "it-test")
    await agent.step_once()
    assert agent.status == "approved"
    assert agent.config_store is not None
    assert agent.config_store.current is not None
    assert agent.config_store.current.config.allow_file_device_secret is False
    _staff, code, _ = await setup.admin.issue_staff_code(agent.identity.station_id, "Ib", "it")
    with pytest.raises(StaffEnrollmentError) as refused:
        await agent.enroll_staff(code, "246813")
    assert refused.value.code == "no_hardware_secret"
    assert refused.value.user_message is not None and "Kontakt IT" in refused.value.user_message
    assert not (data_dir / KEYSLOTS_FILE).exists()

    # The same station with its secret in the (stand-in) chip: the same code still works.
    chip = ProvisioningAgent(
        data_dir,
        setup.hub.base_url,
        port,
        SystemClock(),
        kdf_params=TEST_KDF,
        check_turn=False,
        device_secret=device_secret_source(
            data_dir,
            {
                "KONTAKTSTATION_DEVICE_SECRET": "fake_otp",
                "KONTAKTSTATION_FAKE_OTP_FILE": str(tmp_path / "otp.key"),
            },
        ),
    )
    setup.agents.append(chip)
    await chip.start()
    await chip.step_once()
    assert chip.staff.secret_kind == "fake_otp"
    staff_id, _number = await chip.enroll_staff(code, "246813")
    assert staff_id == _staff and (data_dir / KEYSLOTS_FILE).exists()

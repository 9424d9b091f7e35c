"""Abuse of the provisioning API over real HTTP: every attempt is refused and changes nothing.

Replayed requests, unsigned or badly signed ones, stale clocks, unknown keys, a cloned
identity, expired / reused / unknown enrollment codes (station and staff), brute-forcing
staff codes, and a configuration whose TURN server is unreachable (rolled back).
"""

from __future__ import annotations

import asyncio
import shutil
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.provisioning.api import open_provisioning
from hub.provisioning.errors import CodeAlreadyUsed, CodeExpired, CodeUnknown
from hub.provisioning.service import ProvisioningService
from provisioning.agent import ProvisioningAgent
from provisioning.errors import StaffEnrollmentError
from provisioning.identity import RequestCounter, StationIdentity
from provisioning.protocol import b64encode
from provisioning.schema import Heartbeat
from station.core.clock import FakeClock, SystemClock
from station.keys.keyring import KdfParams, generate_escrow_keypair
from tests.integration.fake_station import FakeStationPort
from tests.integration.hub_server import RunningHub, it_key, running_hub

TEST_KDF = KdfParams(memory_kib=64, time_cost=1, parallelism=1)
PREFIX = "/api/provisioning/v1"


@dataclass
class Hub:
    hub: RunningHub
    admin: ProvisioningService
    agents: list[ProvisioningAgent]

    def agent(self, data_dir: Path, port: FakeStationPort | None = None) -> ProvisioningAgent:
        agent = ProvisioningAgent(
            data_dir,
            self.hub.base_url,
            port or FakeStationPort(),
            SystemClock(),
            kdf_params=TEST_KDF,
            check_turn=False,
        )
        self.agents.append(agent)
        return agent

    async def approved_agent(self, data_dir: Path) -> ProvisioningAgent:
        agent = self.agent(data_dir)
        await agent.start()
        assert agent.identity is not None
        await self.admin.preauthorise(agent.identity.fingerprint, "solhaven", "Stue", "it")
        await agent.step_once()
        assert agent.status == "approved"
        return agent


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Hub]:
    async with running_hub(tmp_path / "hub") as hub:
        admin = open_provisioning(hub.settings, SystemClock(), signer=it_key(hub.settings))
        await admin.start()
        _private, escrow = generate_escrow_keypair()
        await admin.set_layer(
            "care_home",
            "solhaven",
            {"escrow_public_key": b64encode(escrow), "allow_file_device_secret": True},
            "it",
        )
        state = Hub(hub, admin, [])
        try:
            yield state
        finally:
            for agent in state.agents:
                if agent.client is not None:
                    await agent.client.aclose()
            await admin.close()


def beat() -> bytes:
    return (
        Heartbeat(
            sent_at=datetime.now(UTC),
            software_version="0.1.0",
            config_version=0,
            lock_state="locked",
            session_state="locked",
        )
        .model_dump_json()
        .encode()
    )


def signed(
    identity: StationIdentity, counter: int, body: bytes, *, at: datetime | None = None
) -> dict[str, str]:
    when = int((at or datetime.now(UTC)).timestamp())
    headers = identity.sign_request("POST", f"{PREFIX}/heartbeat", counter, when, body)
    return {**headers, "Content-Type": "application/json"}


async def test_replayed_request_is_refused(env: Hub, data_dir: Path) -> None:
    agent = await env.approved_agent(data_dir)
    assert agent.identity is not None
    counter = RequestCounter(data_dir).next()
    body = beat()
    headers = signed(agent.identity, counter, body)
    async with httpx.AsyncClient(base_url=env.hub.base_url) as http:
        first = await http.post(f"{PREFIX}/heartbeat", content=body, headers=headers)
        assert first.status_code == 200, first.text
        again = await http.post(f"{PREFIX}/heartbeat", content=body, headers=headers)
        assert again.status_code == 409 and again.json()["code"] == "replayed_request"
    # The station itself carries on (its counter moved on).
    await agent.step_once()
    assert agent.last_error is None


async def test_unsigned_tampered_and_stale_requests_are_refused(env: Hub, data_dir: Path) -> None:
    agent = await env.approved_agent(data_dir)
    assert agent.identity is not None
    body = beat()
    async with httpx.AsyncClient(base_url=env.hub.base_url) as http:
        unsigned = await http.post(
            f"{PREFIX}/heartbeat", content=body, headers={"Content-Type": "application/json"}
        )
        assert unsigned.status_code == 401 and unsigned.json()["code"] == "signature_invalid"

        headers = signed(agent.identity, RequestCounter(data_dir).next(), body)
        tampered_body = body.replace(b'"locked"', b'"unlocked"', 1)
        tampered = await http.post(f"{PREFIX}/heartbeat", content=tampered_body, headers=headers)
        assert tampered.status_code == 401 and tampered.json()["code"] == "signature_invalid"

        old = datetime.now(UTC) - timedelta(hours=1)
        stale_headers = signed(agent.identity, RequestCounter(data_dir).next(), body, at=old)
        stale = await http.post(f"{PREFIX}/heartbeat", content=body, headers=stale_headers)
        assert stale.status_code == 401 and stale.json()["code"] == "clock_skew"

        stranger = StationIdentity(Ed25519PrivateKey.generate())
        unknown = await http.post(
            f"{PREFIX}/heartbeat", content=body, headers=signed(stranger, 1, body)
        )
        assert unknown.status_code == 403 and unknown.json()["code"] == "station_unknown"
        config = await http.get(
            f"{PREFIX}/config",
            headers=stranger.sign_request(
                "GET", f"{PREFIX}/config", 2, int(datetime.now(UTC).timestamp()), b""
            ),
        )
        assert config.status_code == 403


async def test_pending_station_gets_nothing(env: Hub, data_dir: Path) -> None:
    agent = env.agent(data_dir)
    await agent.start()
    await agent.step_once()
    assert agent.status == "pending" and agent.client is not None
    assert agent.identity is not None
    body = beat()
    async with httpx.AsyncClient(base_url=env.hub.base_url) as http:
        refused = await http.post(
            f"{PREFIX}/heartbeat",
            content=body,
            headers=signed(agent.identity, RequestCounter(data_dir).next(), body),
        )
    assert refused.status_code == 403 and refused.json()["code"] == "station_pending"


async def test_cloned_identity_is_detected_and_both_copies_refused(
    env: Hub, data_dir: Path, tmp_path: Path
) -> None:
    original = await env.approved_agent(data_dir)
    assert original.identity is not None
    clone_dir = tmp_path / "clone"
    shutil.copytree(data_dir, clone_dir)  # the SD card, copied
    await original.step_once()
    clone = env.agent(clone_dir)
    await clone.start()
    await clone.step_once()
    assert clone.last_error == "clone_suspected"
    await original.step_once()
    assert original.last_error == "clone_suspected"
    record = await env.admin.get_station(original.identity.station_id)
    assert record.clone_suspected
    await env.admin.clear_clone_flag(original.identity.station_id, "it")
    assert any(e.action == "clear_clone_flag" for e in await env.admin.admin_audit())


async def test_station_enrollment_codes_expire_and_are_one_time(
    env: Hub, data_dir: Path, tmp_path: Path
) -> None:
    agent = env.agent(data_dir)
    await agent.start()
    await agent.step_once()
    view = agent.enrollment_view()
    assert view is not None and view["code"] is not None
    code = view["code"]
    with pytest.raises(CodeUnknown):
        await env.admin.approve("ABCD-EFGH", "solhaven", "Stue", "it")
    # An admin whose clock is a day ahead: the code has expired.
    later = FakeClock(datetime.now(UTC) + timedelta(hours=25))
    late_admin = ProvisioningService(
        env.admin.db, env.admin.secret, later, env.admin.settings, signer=env.admin.signer
    )
    with pytest.raises(CodeExpired):
        await late_admin.approve(code, "solhaven", "Stue", "it")
    await env.admin.approve(code, "solhaven", "Stue", "it")
    with pytest.raises(CodeAlreadyUsed):
        await env.admin.approve(code, "solhaven", "Stue", "it")


async def test_staff_codes_expired_reused_wrong_station_and_brute_force(
    env: Hub, data_dir: Path, tmp_path: Path
) -> None:
    agent = await env.approved_agent(data_dir)
    (tmp_path / "other").mkdir(mode=0o700)
    other = await env.approved_agent(tmp_path / "other")
    assert agent.identity is not None and other.identity is not None
    # Issued an hour ago for 30 minutes: expired.
    past = FakeClock(datetime.now(UTC) - timedelta(hours=1))
    old_admin = ProvisioningService(
        env.admin.db, env.admin.secret, past, env.admin.settings, signer=env.admin.signer
    )
    _sid, expired, _ = await old_admin.issue_staff_code(agent.identity.station_id, "A", "it")
    with pytest.raises(StaffEnrollmentError) as refused:
        await agent.enroll_staff(expired, "471123")
    assert refused.value.code == "code_expired"
    # A code for another station is unknown here (and stays usable there).
    _sid, foreign, _ = await env.admin.issue_staff_code(other.identity.station_id, "B", "it")
    with pytest.raises(StaffEnrollmentError) as refused:
        await agent.enroll_staff(foreign, "471123")
    assert refused.value.code == "unknown_code"
    assert await other.enroll_staff(foreign, "471123")
    # Guessing: after ten wrong codes (two above), even a right one is refused for a while.
    _sid, good, _ = await env.admin.issue_staff_code(agent.identity.station_id, "C", "it")
    for _ in range(8):
        with pytest.raises(StaffEnrollmentError):
            await agent.enroll_staff("ZZZZ-ZZZZ", "471123")
    with pytest.raises(StaffEnrollmentError) as refused:
        await agent.enroll_staff(good, "471123")
    assert refused.value.code == "too_many_attempts"
    assert refused.value.user_message.startswith("For mange")


class StunResponder(asyncio.DatagramProtocol):
    """Answers STUN Binding requests (a stand-in for coturn's STUN side)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 20:
            response = struct.pack("!HHI", 0x0101, 0, 0x2112A442) + data[8:20]
            self.transport.sendto(response, addr)  # type: ignore[attr-defined]


async def test_configuration_with_unreachable_turn_is_rolled_back(env: Hub, data_dir: Path) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(StunResponder, local_addr=("127.0.0.1", 0))
    stun_port = transport.get_extra_info("sockname")[1]
    try:
        agent = env.agent(data_dir)
        agent._check_turn = True
        await agent.start()
        assert agent.identity is not None and agent.config_store is not None
        station_id = agent.identity.station_id
        await env.admin.preauthorise(agent.identity.fingerprint, "solhaven", "Stue", "it")
        await env.admin.set_layer(
            "station",
            station_id,
            {"ice_servers": [{"urls": [f"turn:127.0.0.1:{stun_port}"], "username": "u"}]},
            "it",
        )
        await agent.step_once()
        await agent.step_once()
        good = agent.config_store.version
        assert good >= 1

        # A closed port: the STUN probe gets no answer, the health check fails.
        closed = socket_port_closed()
        await env.admin.set_layer(
            "station",
            station_id,
            {"ice_servers": [{"urls": [f"turn:127.0.0.1:{closed}"], "username": "u"}]},
            "it",
        )
        await agent.step_once()
        assert agent.config_store.version == good
        await agent.step_once()
        record = await env.admin.get_station(station_id)
        assert record.config_version == good
        assert record.config_rejected == "turn_unreachable"
    finally:
        transport.close()


def socket_port_closed() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

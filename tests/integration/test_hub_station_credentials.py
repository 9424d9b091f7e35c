"""Per-station credentials against the real hub (uvicorn) and real coturn.

The attacker's steps from issue 14 item 5: another enrolled station's valid credential cannot
reach a room (offer, answer, room, end all 404 as for an unknown room); a replayed signed
session request and one signed by an unenrolled key are refused; the legacy shared token is
refused unless IT allowed it; coturn refuses a per-call TURN credential past its expiry and
accepts a fresh one.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aioice import stun
from aioice.turn import create_turn_endpoint
from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from hub.provisioning.api import open_provisioning
from hub.settings import HubSettings
from hub.station_auth import turn_credential
from provisioning.agent import ProvisioningAgent
from provisioning.identity import RequestCounter, StationIdentity
from provisioning.protocol import b64encode
from station.call.ice import build_rtc_configuration, restrict_host_candidates_to_loopback
from station.core.clock import SystemClock
from station.keys.keyring import KdfParams, generate_escrow_keypair
from tests.integration.call_harness import running_coturn
from tests.integration.fake_station import FakeStationPort
from tests.integration.hub_server import STATION_TOKEN, RunningHub, it_key, running_hub

TEST_KDF = KdfParams(memory_kib=64, time_cost=1, parallelism=1)
SESSION = "/api/provisioning/v1/rendezvous-session"


async def real_offer() -> str:
    """A real offer (audio, video, data channel) from an aiortc peer on loopback."""
    with restrict_host_candidates_to_loopback():
        peer = RTCPeerConnection(build_rtc_configuration([]))
        try:
            peer.addTrack(AudioStreamTrack())
            peer.addTrack(VideoStreamTrack())
            peer.createDataChannel("control")
            await peer.setLocalDescription(await peer.createOffer())
            return peer.localDescription.sdp
        finally:
            await peer.close()


def booking() -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "starts_at": (now + timedelta(minutes=5)).isoformat(),
        "ends_at": (now + timedelta(minutes=20)).isoformat(),
        "language": "da",
    }


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[tuple[RunningHub, list[ProvisioningAgent]]]:
    agents: list[ProvisioningAgent] = []
    async with running_hub(tmp_path / "hub", shared_token=False) as running:
        admin = open_provisioning(running.settings, SystemClock(), signer=it_key(running.settings))
        await admin.start()
        _private, escrow = generate_escrow_keypair()
        await admin.set_layer(
            "care_home",
            "solhaven",
            {"escrow_public_key": b64encode(escrow), "allow_file_device_secret": True},
            "it",
        )
        for name in ("a", "b"):
            (tmp_path / name).mkdir(mode=0o700)
            agent = ProvisioningAgent(
                tmp_path / name,
                running.base_url,
                FakeStationPort(),
                SystemClock(),
                kdf_params=TEST_KDF,
                check_turn=False,
            )
            await agent.start()
            assert agent.identity is not None
            await admin.preauthorise(agent.identity.fingerprint, "solhaven", f"Stue {name}", "it")
            await agent.step_once()
            assert agent.status == "approved"
            agents.append(agent)
        try:
            yield running, agents
        finally:
            for agent in agents:
                if agent.client is not None:
                    await agent.client.aclose()
            await admin.close()


async def session_token(agent: ProvisioningAgent) -> str:
    assert agent.client is not None
    token, expires_at = await agent.client.rendezvous_session()
    assert expires_at > datetime.now(UTC)
    return token


async def test_another_stations_credential_cannot_reach_a_room(
    hub: tuple[RunningHub, list[ProvisioningAgent]],
) -> None:
    running, (station_a, station_b) = hub
    token_a, token_b = await session_token(station_a), await session_token(station_b)
    as_a = {"Authorization": f"Bearer {token_a}"}
    as_b = {"Authorization": f"Bearer {token_b}"}
    async with httpx.AsyncClient(base_url=running.base_url) as http:
        created = await http.post("/api/station/rooms", json=booking(), headers=as_a)
        assert created.status_code == 201, created.text
        room = created.json()["room_id"]
        unknown = secrets.token_hex(12)
        # The attacker's step: B (valid, enrolled) posts an offer into A's room.
        offer = {"type": "offer", "sdp": await real_offer()}
        for room_id in (room, unknown):
            attack = await http.post(
                f"/api/station/rooms/{room_id}/offer", json=offer, headers=as_b
            )
            assert attack.status_code == 404
            assert attack.json()["code"] == "unknown_room"
        # Same answer as for a room that does not exist: B learns nothing.
        for path in ("", "/answer?generation=1", "/candidates?generation=1"):
            mine = await http.get(f"/api/station/rooms/{room}{path}", headers=as_b)
            none = await http.get(f"/api/station/rooms/{unknown}{path}", headers=as_b)
            assert (mine.status_code, mine.json()) == (none.status_code, none.json())
        for action in ("end", "revoke"):
            refused = await http.post(f"/api/station/rooms/{room}/{action}", headers=as_b)
            assert refused.status_code == 404
        # A's room is untouched, and A itself reaches it.
        view = await http.get(f"/api/station/rooms/{room}", headers=as_a)
        assert view.status_code == 200 and view.json()["offer_generation"] == 0
        posted = await http.post(f"/api/station/rooms/{room}/offer", json=offer, headers=as_a)
        assert posted.status_code == 200 and posted.json()["generation"] == 1
        # No credential, a forged one and the (not allowed) shared token: 401.
        forged = token_a[:-4] + ("AAAA" if not token_a.endswith("AAAA") else "BBBB")
        for headers in (
            {},
            {"Authorization": f"Bearer {forged}"},
            {"Authorization": f"Bearer {STATION_TOKEN}"},
        ):
            refused = await http.post("/api/station/rooms", json=booking(), headers=headers)
            assert refused.status_code == 401


async def test_replayed_and_unenrolled_session_requests_are_refused(
    hub: tuple[RunningHub, list[ProvisioningAgent]], tmp_path: Path
) -> None:
    running, (station_a, _b) = hub
    assert station_a.identity is not None
    counter = RequestCounter(tmp_path / "a").next()
    when = int(datetime.now(UTC).timestamp())
    headers = station_a.identity.sign_request("POST", SESSION, counter, when, b"")
    stranger = StationIdentity(Ed25519PrivateKey.generate())
    unenrolled = stranger.sign_request("POST", SESSION, 1, when, b"")
    async with httpx.AsyncClient(base_url=running.base_url) as http:
        first = await http.post(SESSION, headers=headers)
        assert first.status_code == 200, first.text
        replay = await http.post(SESSION, headers=headers)
        assert replay.status_code == 409 and replay.json()["code"] == "replayed_request"
        refused = await http.post(SESSION, headers=unenrolled)
        assert refused.status_code in (401, 403), refused.text
        assert "token" not in refused.json()
        # A signature over another path (a heartbeat's) does not buy a session either.
        other = station_a.identity.sign_request(
            "POST", "/api/provisioning/v1/heartbeat", counter + 1, when, b""
        )
        assert (await http.post(SESSION, headers=other)).status_code == 401


async def test_shared_token_only_where_it_allows_it(tmp_path: Path) -> None:
    async with (
        running_hub(tmp_path / "hub", shared_token=True) as running,
        httpx.AsyncClient(base_url=running.base_url) as http,
    ):
        legacy = {"Authorization": f"Bearer {STATION_TOKEN}"}
        created = await http.post("/api/station/rooms", json=booking(), headers=legacy)
        assert created.status_code == 201


class _Sink(asyncio.DatagramProtocol):
    pass


async def _allocate(port: int, username: str, password: str) -> None:
    transport, _protocol = await create_turn_endpoint(
        _Sink, ("127.0.0.1", port), username, password, lifetime=60
    )
    transport.close()


@pytest.mark.turn
async def test_coturn_refuses_an_expired_per_call_credential(tmp_path: Path) -> None:
    secret = secrets.token_hex(16)
    async with running_coturn(tmp_path, auth_secret=secret) as coturn:
        now = datetime.now(UTC)
        fresh = turn_credential(secret.encode(), "a" * 24, now + timedelta(minutes=5))
        await _allocate(coturn.port, *fresh)  # accepted: the allocation succeeds
        expired = turn_credential(secret.encode(), "a" * 24, now - timedelta(seconds=5))
        with pytest.raises(stun.TransactionFailed):
            await _allocate(coturn.port, *expired)
        wrong = turn_credential(b"not-the-secret", "a" * 24, now + timedelta(minutes=5))
        with pytest.raises(stun.TransactionFailed):
            await _allocate(coturn.port, *wrong)


def test_a_hub_with_the_shared_token_starts_only_when_it_allows_it(tmp_path: Path) -> None:
    token_file = tmp_path / "station-token"
    token_file.write_text(STATION_TOKEN)
    env = {
        "KONTAKTSTATION_HUB_DATA_DIR": str(tmp_path),
        "KONTAKTSTATION_HUB_STATION_TOKEN_FILE": str(token_file),
    }
    with pytest.raises(ValidationError, match="allow_shared_station_token"):
        HubSettings.from_env(env)
    allowed = HubSettings.from_env({**env, "KONTAKTSTATION_HUB_ALLOW_SHARED_STATION_TOKEN": "1"})
    assert allowed.allow_shared_station_token and allowed.station_token is not None
    # The default: no shared token at all.
    assert (
        HubSettings.from_env({"KONTAKTSTATION_HUB_DATA_DIR": str(tmp_path)}).station_token is None
    )

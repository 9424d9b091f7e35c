"""The hub on PostgreSQL: the room store, LISTEN/NOTIFY across instances, and two real hub
processes on one database with the station on instance A and the GP on instance B."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.models import GpLanguage, RoomState
from hub.pg import PostgresDatabase, PostgresNotifier, postgres_rendezvous
from hub.provisioning.api import open_provisioning
from hub.settings import HubSettings
from hub.store import RoomRecord
from provisioning.identity import StationIdentity
from provisioning.protocol import b64encode
from station.call.ice import build_rtc_configuration, restrict_host_candidates_to_loopback
from station.core.clock import SystemClock
from station.keys.keyring import generate_escrow_keypair
from tests.integration.hub_server import it_key
from tests.integration.postgres import pg_server, pg_url  # noqa: F401 (fixtures)

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-station-token-0123456789abcdefghijklmnop"


def room(room_id: str = "a" * 24) -> RoomRecord:
    now = datetime.now(UTC)
    return RoomRecord(
        room_id=room_id,
        token_hash=os.urandom(32),
        starts_at=now,
        ends_at=now + timedelta(minutes=20),
        valid_from=now - timedelta(minutes=30),
        valid_until=now + timedelta(hours=2),
        created_at=now,
        language=GpLanguage("da"),
        state=RoomState.BOOKED,
    )


async def test_room_store_compare_and_set_and_candidate_limit(pg_url: str) -> None:  # noqa: F811
    store, notifier = postgres_rendezvous(pg_url)
    try:
        record = room()
        await store.insert(record)
        got = await store.get(record.room_id)
        assert got == record
        assert await store.find_by_token_hash(record.token_hash) == record
        changed = replace(record, state=RoomState.WAITING, version=1)
        assert await store.replace(changed, expected_version=0)
        assert not await store.replace(replace(changed, version=2), expected_version=0)
        assert (await store.get(record.room_id)) == changed
        results = await asyncio.gather(
            *(store.add_gp_candidate(record.room_id, 1, f'{{"n":{i}}}', limit=3) for i in range(6))
        )
        assert sorted(results) == [False, False, False, True, True, True]
        assert len(await store.gp_candidates(record.room_id, 1)) == 3
        assert await store.count_gp_candidates(record.room_id, 1) == 3
    finally:
        await store.close()
        await notifier.aclose()


async def test_notify_wakes_a_waiter_on_another_instance(pg_url: str) -> None:  # noqa: F811
    a = PostgresNotifier(pg_url, PostgresDatabase(pg_url))
    b = PostgresNotifier(pg_url, PostgresDatabase(pg_url))
    await a.start()
    await b.start()
    try:
        waiter = a.listen("room-1")
        other = a.listen("room-2")
        await b.publish("room-1")
        assert await waiter.wait(30) is True  # woken by B's NOTIFY, not by the time running out
        assert await other.wait(0.2) is False  # another room is not woken
    finally:
        await a.aclose()
        await b.aclose()


@pytest.fixture
async def sdp() -> AsyncIterator[tuple[str, str]]:
    """A real aiortc offer and the real answer to it."""
    with restrict_host_candidates_to_loopback():
        offerer = RTCPeerConnection(build_rtc_configuration([]))
        answerer = RTCPeerConnection(build_rtc_configuration([]))
        try:
            offerer.addTrack(AudioStreamTrack())
            offerer.addTrack(VideoStreamTrack())
            offerer.createDataChannel("control")
            await offerer.setLocalDescription(await offerer.createOffer())
            await answerer.setRemoteDescription(offerer.localDescription)
            answerer.addTrack(AudioStreamTrack())
            answerer.addTrack(VideoStreamTrack())
            await answerer.setLocalDescription(await answerer.createAnswer())
            yield offerer.localDescription.sdp, answerer.localDescription.sdp
        finally:
            await answerer.close()
            await offerer.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def two_hubs(pg_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:  # noqa: F811
    """Two hub processes (uvicorn) sharing one PostgreSQL and one hub secret."""
    key = tmp_path / "hub.secret"
    procs = []
    urls = []
    for name in ("a", "b"):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "KONTAKTSTATION_HUB_DATABASE_URL": pg_url,
            "KONTAKTSTATION_HUB_STATION_TOKEN": TOKEN,
            "KONTAKTSTATION_HUB_ALLOW_SHARED_STATION_TOKEN": "1",
            "KONTAKTSTATION_HUB_SECRET": str(key),
        }
        code = "import sys; from hub.server import main; sys.exit(main(sys.argv[1:]))"
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    code,
                    "--port",
                    str(port),
                    "--data-dir",
                    str(tmp_path / name),
                    "--public-url",
                    "http://gp.example.test",
                    "--log-level",
                    "warning",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
        urls.append(url)
    try:
        for url, proc in zip(urls, procs, strict=True):
            for _ in range(300):
                if proc.poll() is not None:
                    raise AssertionError(proc.stderr.read().decode() if proc.stderr else "died")
                try:
                    if httpx.get(f"{url}/api/openapi.json", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                import time

                time.sleep(0.1)
            else:
                raise AssertionError("hub did not start")
        yield urls[0], urls[1]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if proc.stderr is not None:
                proc.stderr.close()


async def test_station_on_instance_a_and_gp_on_instance_b(
    two_hubs: tuple[str, str], sdp: tuple[str, str]
) -> None:
    a_url, b_url = two_hubs
    offer, answer = sdp
    station_headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        httpx.AsyncClient(base_url=a_url, headers=station_headers, timeout=60) as station,
        httpx.AsyncClient(base_url=b_url, timeout=60) as gp,
    ):
        start = datetime.now(UTC) + timedelta(minutes=5)
        created = await station.post(
            "/api/station/rooms",
            json={
                "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(minutes=20)).isoformat(),
                "language": "da",
            },
        )
        assert created.status_code == 201, created.text
        room_id = created.json()["room_id"]
        token = created.json()["gp_url"].split("#", 1)[1]
        gp_headers = {"Authorization": f"Bearer {token}"}

        # The GP's page (instance B) long-polls; the station's offer (instance A) wakes it.
        first = await gp.get("/api/gp/room", headers=gp_headers)
        assert first.status_code == 200, first.text
        version = first.json()["version"]
        gp_poll = asyncio.create_task(
            gp.get("/api/gp/room", params={"since": version, "timeout": 20}, headers=gp_headers)
        )
        posted = await station.post(
            f"/api/station/rooms/{room_id}/offer",
            json={"type": "offer", "sdp": offer, "waiting": None},
        )
        assert posted.status_code == 200, posted.text
        generation = posted.json()["generation"]
        woke = await gp_poll
        assert woke.json()["state"] == "waiting"

        # The station (A) long-polls for the answer the GP posts on B.
        station_wait = asyncio.create_task(
            station.get(
                f"/api/station/rooms/{room_id}/answer",
                params={"generation": generation, "timeout": 20},
            )
        )
        admitted = await gp.post("/api/gp/admit", headers=gp_headers)
        assert admitted.status_code == 200, admitted.text
        session = admitted.json()["session"]
        assert admitted.json()["room"]["offer"]["sdp"] == offer
        answered = await gp.post(
            "/api/gp/answer",
            json={"generation": generation, "type": "answer", "sdp": answer},
            headers={**gp_headers, "X-GP-Session": session},
        )
        assert answered.status_code == 200, answered.text
        got = await station_wait
        assert got.status_code == 200 and got.json()["sdp"] == answer

        # Only one browser may be admitted, whichever instance it reaches.
        second = await station.post("/api/gp/admit", headers=gp_headers)
        assert second.status_code == 409


async def test_station_sessions_hold_across_instances_and_rooms_stay_with_their_station(
    two_hubs: tuple[str, str],
    pg_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A session bought on instance A works on B (no shared state beyond the provisioning
    key); another enrolled station's session reaches none of the first one's rooms."""
    a_url, b_url = two_hubs
    settings = HubSettings(
        data_dir=tmp_path / "admin",
        database_url=pg_url,
        hub_secret_path=tmp_path / "hub.secret",
    )
    admin = open_provisioning(settings, SystemClock(), signer=it_key(settings))
    await admin.start()
    try:
        _private, escrow = generate_escrow_keypair()
        await admin.set_layer(
            "care_home",
            "solhaven",
            {"escrow_public_key": b64encode(escrow), "allow_file_device_secret": True},
            "it",
        )
        x, y = (StationIdentity(Ed25519PrivateKey.generate()) for _ in range(2))
        for identity in (x, y):
            await admin.preauthorise(identity.fingerprint, "solhaven", "Stue", "it")
    finally:
        await admin.close()
    path = "/api/provisioning/v1/rendezvous-session"
    now = int(datetime.now(UTC).timestamp())
    async with httpx.AsyncClient(timeout=30) as http:
        sessions = {}
        enroll = "/api/provisioning/v1/enroll"
        body = b'{"software_version":"0.1.0"}'
        for name, identity, url in (("x", x, a_url), ("y", y, b_url)):
            # First contact: a preauthorised key becomes an approved station.
            headers = identity.sign_request("POST", enroll, 1, now, body)
            headers["Content-Type"] = "application/json"
            first = await http.post(url + enroll, content=body, headers=headers)
            assert first.status_code == 200, first.text
            response = await http.post(
                url + path, headers=identity.sign_request("POST", path, 2, now, b"")
            )
            assert response.status_code == 200, response.text
            sessions[name] = {"Authorization": f"Bearer {response.json()['token']}"}
        start = datetime.now(UTC) + timedelta(minutes=5)
        booking = {
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(minutes=20)).isoformat(),
        }
        # X's session from A creates a room on B.
        created = await http.post(f"{b_url}/api/station/rooms", json=booking, headers=sessions["x"])
        assert created.status_code == 201, created.text
        room_id = created.json()["room_id"]
        assert (
            await http.get(f"{a_url}/api/station/rooms/{room_id}", headers=sessions["x"])
        ).status_code == 200
        # Y (enrolled, valid session) on either instance: as if the room did not exist.
        for url in (a_url, b_url):
            refused = await http.post(
                f"{url}/api/station/rooms/{room_id}/end", headers=sessions["y"]
            )
            assert refused.status_code == 404 and refused.json()["code"] == "unknown_room"

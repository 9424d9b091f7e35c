"""The call engine without a browser: ICE servers that are down or refuse, the watchdog's re-dial
against a plain aiortc GP, the room/start endpoints' rules, and the engine's small parts.

Tests that gather ICE candidates re-run inside a loopback-only network namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack

from hub.provisioning.api import open_provisioning
from provisioning.protocol import b64encode
from station.call.config import CallConfig, call_config_from_env
from station.call.engine import grade_quality
from station.call.errors import CallConfigError
from station.call.ice import (
    IceServerConfig,
    build_rtc_configuration,
    restrict_host_candidates_to_loopback,
)
from station.call.media import DEFAULT_VOLUME, VOLUME_STEPS, volume_gain
from station.call.probe import probe_ice_servers
from station.core.clock import SystemClock
from station.daemon.events import EventKind
from station.keys.keyring import generate_escrow_keypair
from station.keys.room_seal import RoomSealer, decode_room_key
from stationapi.models import WaitingResident

from .call_harness import (
    RESIDENTS,
    StationD,
    call_config,
    free_udp_port,
    running_coturn,
    running_stationd,
    wait_for,
)
from .hub_server import STATION_TOKEN, it_key, running_hub
from .netns import delegated_to_loopback_namespace


class PythonGp:
    """A GP "browser" in Python: admits through the hub's GP API and answers with aiortc."""

    def __init__(self, hub_url: str, gp_url: str) -> None:
        # The fragment is "<token>.<room key>": the hub gets the token, never the key.
        self.token, key = gp_url.split("#", 1)[1].split(".")
        self.sealer = RoomSealer(decode_room_key(key))
        self.http = httpx.AsyncClient(base_url=hub_url, timeout=30)
        self.session: str | None = None
        self.pc: Any = None
        self.frames = 0
        self._tasks: list[asyncio.Task[None]] = []

    def _headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if self.session:
            headers["X-GP-Session"] = self.session
        return headers

    async def waiting_round(self) -> Any:
        """Who is waiting, as the GP page gets it from the hub and opens it with its key."""
        response = await self.http.get("/api/gp/room", headers=self._headers())
        assert response.status_code == 200, response.text
        for resident in RESIDENTS:  # the hub relays a sealed box, nothing readable
            assert resident["display_name"].encode() not in response.content
        return self.sealer.open("waiting", response.json()["waiting"]["sealed"])

    async def admit(self) -> None:
        response = await self.http.post("/api/gp/admit", headers=self._headers())
        assert response.status_code == 200, response.text
        self.session = response.json()["session"]

    async def answer_next(self, after_generation: int = 0) -> int:
        """Wait for an offer newer than ``after_generation``; answer it with a new peer."""
        since = -1
        while True:
            response = await self.http.get(
                "/api/gp/room", params={"since": since, "timeout": 10}, headers=self._headers()
            )
            assert response.status_code == 200, response.text
            room = response.json()
            since = room["version"]
            offer = room["offer"]
            if offer and offer["generation"] > after_generation:
                break
        await self.close_peer()
        pc = RTCPeerConnection(build_rtc_configuration([]))
        self.pc = pc
        pc.on("track", self._on_track)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        pc.addTrack(AudioStreamTrack())
        pc.addTrack(VideoStreamTrack())
        with restrict_host_candidates_to_loopback():
            await pc.setLocalDescription(await pc.createAnswer())
        response = await self.http.post(
            "/api/gp/answer",
            headers=self._headers(),
            json={
                "generation": offer["generation"],
                "type": "answer",
                "sdp": pc.localDescription.sdp,
            },
        )
        assert response.status_code == 200, response.text
        return int(offer["generation"])

    def _on_track(self, track: Any) -> None:
        async def consume() -> None:
            with contextlib.suppress(MediaStreamError):
                while True:
                    await track.recv()
                    if track.kind == "video":
                        self.frames += 1

        self._tasks.append(asyncio.ensure_future(consume()))

    async def close_peer(self) -> None:
        if self.pc is not None:
            await self.pc.close()
            self.pc = None
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()

    async def aclose(self) -> None:
        await self.close_peer()
        await self.http.aclose()


@contextlib.asynccontextmanager
async def station(tmp_path: Path, **call: Any) -> AsyncIterator[tuple[str, StationD]]:
    async with running_hub(tmp_path / "hub") as hub:  # noqa: SIM117
        async with running_stationd(tmp_path / "station", call_config(hub.base_url, **call)) as st:
            await st.unlock()
            await st.book_and_check()
            yield hub.base_url, st


async def _hub_room(hub_url: str, room_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=hub_url) as http:
        response = await http.get(
            f"/api/station/rooms/{room_id}",
            headers={"Authorization": f"Bearer {STATION_TOKEN}"},
        )
        return dict(response.json())


def _collect(st: StationD) -> list[dict[str, Any]]:
    """Every ``call`` event from now on (read from the daemon's broker in-process)."""
    seen: list[dict[str, Any]] = []
    subscription = st.daemon.service.broker.subscribe(256)

    async def pump() -> None:
        async for event in subscription:
            if event.kind == EventKind.CALL:
                seen.append(dict(event.data))

    asyncio.get_running_loop().create_task(pump())
    return seen


def test_unreachable_stun_and_turn_servers_do_not_stall_set_up(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def run() -> None:
        # A STUN server that never answers (bound, silent) and a TURN port nobody listens on.
        # aiortc alone waits 5 s for each while gathering; the gather timeout here is 3 s,
        # so the offer reaches the hub only if both were left out of the attempt.
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        servers = (
            IceServerConfig(urls=f"stun:127.0.0.1:{silent.getsockname()[1]}"),
            IceServerConfig(
                urls=f"turn:127.0.0.1:{free_udp_port()}", username="station", credential="x" * 8
            ),
        )
        try:
            async with station(tmp_path, ice_servers=servers, gather_timeout_seconds=3.0) as (
                hub_url,
                st,
            ):
                events = _collect(st)
                started = await st.start_call()
                await wait_for(
                    lambda: _room_state(hub_url, started["room_id"], "waiting"),
                    what="offer at the hub",
                )
                call = await st.call()
                assert call["error"] is None and call["attempt"] == 1
                assert call["phase"] == "waiting_for_gp"
                unreachable = [e["url"] for e in events if e["status"] == "ice_server_unreachable"]
                assert sorted(unreachable) == sorted(s.urls[0] for s in servers)
                # The offer carries host candidates only (nothing from the dead servers).
                response = await st.http.post("/v1/call/end", headers=st.auth)
                assert response.status_code == 200
                assert (await st.state())["state"] == "staff"  # never admitted: back to staff
        finally:
            silent.close()

    asyncio.run(run())


async def _room_state(hub_url: str, room_id: str, state: str) -> bool:
    return (await _hub_room(hub_url, room_id))["state"] == state


@pytest.mark.turn
def test_wrong_turn_password_is_a_clear_error_not_a_silent_stall(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def run() -> None:
        async with running_coturn(tmp_path) as turn:
            servers = (turn.ice_server(password="wrong-password"),)
            async with station(tmp_path, ice_servers=servers, relay_only=True) as (hub_url, st):
                events = _collect(st)
                started = await st.start_call()
                error = await wait_for(
                    lambda: _call_error(st), what="an error for the wrong password"
                )
                assert error["code"] == "ice_gathering_failed"
                assert "TURN" in error["message"] and "TURN" in error["user_message"]
                assert "wrong-password" not in json.dumps(events)
                # Nothing unusable was offered to the GP; the engine keeps trying (with
                # back-off) until someone ends the call.
                assert (await _hub_room(hub_url, started["room_id"]))["state"] == "booked"
                assert any(e["status"] == "reconnecting" for e in events)
                response = await st.http.post("/v1/call/end", headers=st.auth)
                assert response.status_code == 200
                assert (await st.state())["state"] == "staff"

            # The right password, without relay-only: relay candidates are offered.
            async with station(tmp_path / "ok", ice_servers=(turn.ice_server(),)) as (
                hub_url,
                st,
            ):
                events = _collect(st)
                started = await st.start_call()
                await wait_for(
                    lambda: _room_state(hub_url, started["room_id"], "waiting"),
                    what="offer at the hub",
                )
                assert not [e for e in events if e["status"] in ("turn_failed", "error")]
                await st.http.post("/v1/call/end", headers=st.auth)

    asyncio.run(run())


async def _call_error(st: StationD) -> dict[str, Any] | None:
    error: dict[str, Any] | None = (await st.call())["error"]
    return error


@pytest.mark.slow
def test_watchdog_redials_with_a_new_peer_connection(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def run() -> None:
        # A cold re-dial: nothing prepared (the prepared one: _relayed_call below).
        async with station(tmp_path, prewarm=False) as (hub_url, st):
            events = _collect(st)
            started = await st.start_call()
            gp = PythonGp(hub_url, started["gp_url"])
            try:
                await wait_for(
                    lambda: _room_state(hub_url, started["room_id"], "waiting"), what="offer"
                )
                assert await gp.waiting_round() == {"residents": RESIDENTS}
                await gp.admit()
                assert await gp.answer_next() == 1
                await wait_for(lambda: st.sink.stats("remote").frames > 0, what="media")
                await wait_for(lambda: _connected(st), what="connected")
                assert (await st.state())["state"] == "in_call_attended"
                frames = st.sink.stats("remote").frames

                # The GP's side goes silent (its peer connection is gone, no goodbye):
                # "reconnecting", then a new offer generation, answered by the GP again.
                assert gp.pc is not None
                await gp.pc.close()
                assert await asyncio.wait_for(gp.answer_next(after_generation=1), 30) == 2
                await wait_for(
                    lambda: st.sink.stats("remote").frames > frames + 10, what="media again"
                )
                await wait_for(lambda: _connected(st), what="connected again")
                statuses = [e["status"] for e in events]
                assert "reconnecting" in statuses
                assert statuses.index("reconnecting") < len(statuses) - statuses[::-1].index(
                    "connected"
                )
                call = await st.call()
                assert call["attempt"] == 2 and call["generation"] == 2
                assert call["attempt_prepared"] is False
                assert call["next_attempt_prepared"] is False
                # The session never left the call.
                assert (await st.state())["state"] == "in_call_attended"
                response = await st.http.post("/v1/call/end", headers=st.auth)
                assert response.status_code == 200
                assert (await st.state())["state"] == "wrap_up"
                assert (await _hub_room(hub_url, started["room_id"]))["state"] == "ended"
            finally:
                await gp.aclose()

    asyncio.run(run())


@pytest.mark.slow
def test_the_hubs_goodbye_counts_once_the_media_stops(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The hub's copy of the page's goodbye, against what the station itself hears.

    While media still arrives the GP is demonstrably there, whatever the hub says (a reload
    marks the room "left" for a moment). When the peer connection then ends (a closed tab
    ends it with a DTLS close, often before the media falls silent) the GP left: told at
    once, not "gone" after ``gp_absent_seconds`` of silence.
    """
    if delegated_to_loopback_namespace(request):
        return

    async def run() -> None:
        async with station(tmp_path, gp_absent_seconds=30) as (hub_url, st):
            events = _collect(st)
            started = await st.start_call()
            gp = PythonGp(hub_url, started["gp_url"])
            try:
                await wait_for(
                    lambda: _room_state(hub_url, started["room_id"], "waiting"), what="offer"
                )
                await gp.admit()
                assert await gp.answer_next() == 1
                await wait_for(lambda: _connected(st), what="connected")
                response = await gp.http.post("/api/gp/leave", headers=gp._headers())
                assert response.status_code == 204, response.text
                await asyncio.sleep(1.5)
                assert (await st.call())["phase"] == "connected"
                assert gp.pc is not None
                closed_at = time.monotonic()
                await gp.pc.close()
                call = await wait_for(
                    lambda: _call_if(st, lambda c: c["phase"] == "gp_left"),
                    timeout=5,
                    what="gp_left",
                )
                assert call["gp"]["left"] == "left"
                # The screens went from the call straight to "the GP left", never through
                # "reconnecting" (which would tell staff to wait for a GP who closed the tab).
                # (The link's quality is published every second beside the phases; one may fall
                # between the close and "the GP left".)
                statuses = [e["status"] for e in events if e["status"] != "quality"]
                after_call = statuses[len(statuses) - statuses[::-1].index("connected") :]
                assert after_call[0] == "gp_left", statuses
                print(f"MEASURED hub_goodbye_then_close_s={time.monotonic() - closed_at:.2f}")
                response = await st.http.post("/v1/call/end", headers=st.auth)
                assert response.status_code == 200
            finally:
                await gp.aclose()

    asyncio.run(run())


async def _call_if(st: StationD, check: Any) -> dict[str, Any]:
    call = await st.call()
    return call if check(call) else {}


async def _connected(st: StationD) -> bool:
    return (await st.call())["phase"] == "connected"


def test_call_endpoints_refuse_what_they_cannot_do(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def run() -> None:
        async with running_hub(tmp_path / "hub") as hub:
            config = call_config(hub.base_url)
            async with running_stationd(tmp_path / "station", config) as st:
                idle = await st.call()
                assert idle["available"] is True and idle["active"] is False
                assert idle["phase"] == "idle"
                # No token: 401. Not in the pre-call check: 409.
                response = await st.http.post("/v1/call/start", json={})
                assert response.status_code == 401
                await st.unlock()
                cid = "consultation-x"
                response = await st.http.post(
                    "/v1/call/start",
                    headers=st.auth,
                    json={"consultation_id": cid, "residents": [{"display_name": "A"}]},
                )
                assert response.status_code == 409, response.text
                assert response.json()["user_message"]
                # Controls without a call: 409.
                response = await st.http.post(
                    "/v1/call/mute", headers=st.auth, json={"muted": True}
                )
                assert response.status_code == 409

                # The GP's link: made once (for the booking), then only renewed on purpose.
                cid = await st.book_and_check()
                response = await st.http.post(
                    "/v1/call/room", headers=st.auth, json={"consultation_id": cid}
                )
                assert response.status_code == 201, response.text
                first = response.json()
                assert "#" in first["gp_url"]
                stored = (st.daemon.config.data_dir / "call_rooms.json").read_text()
                assert first["room_id"] in stored and "#" not in stored  # no link at rest
                again = await st.http.post(
                    "/v1/call/room", headers=st.auth, json={"consultation_id": cid}
                )
                assert again.status_code == 409
                renewed = await st.http.post(
                    "/v1/call/room", headers=st.auth, json={"consultation_id": cid, "renew": True}
                )
                assert renewed.status_code == 201
                assert renewed.json()["room_id"] != first["room_id"]
                old = await _hub_room(hub.base_url, first["room_id"])
                assert old["state"] == "revoked"
                # The call uses the room made for the booking (no new link in the answer).
                started = await st.start_call()
                assert started["room_id"] == renewed.json()["room_id"]
                assert started["gp_url"] is None
                response = await st.http.post("/v1/call/start", headers=st.auth, json={})
                assert response.status_code in (409, 422)
                await st.http.post("/v1/call/end", headers=st.auth)

        # Without a hub configured, calls are unavailable, clearly.
        async with running_stationd(tmp_path / "bare", None) as st:
            call = await st.call()
            assert call == {"available": False, "reason": "no hub configured", "active": False}
            await st.unlock()
            await st.book_and_check()
            response = await st.http.post(
                "/v1/call/start",
                headers=st.auth,
                json={"consultation_id": st.consultation_id, "residents": [{"display_name": "A"}]},
            )
            assert response.status_code == 503
            assert response.json()["user_message"] == (
                "Stationen er ikke sat op til videoopkald. Kontakt IT."
            )

    asyncio.run(run())


# -- small parts ------------------------------------------------------------------------------


def test_quality_levels_match_the_gp_page() -> None:
    assert grade_quality(20.0, 0.0, 30.0, 0.1) == "good"
    assert grade_quality(200.0, 0.0, 30.0, 0.1) == "fair"
    assert grade_quality(20.0, 0.05, 30.0, 0.1) == "fair"
    assert grade_quality(500.0, 0.0, 30.0, 0.1) == "poor"
    assert grade_quality(20.0, 0.0, 5.0, 0.1) == "poor"
    assert grade_quality(20.0, 0.0, 30.0, 2.0) == "lost"
    assert grade_quality(None, 0.0, 30.0, None) == "lost"


def test_volume_steps() -> None:
    assert volume_gain(0) == 0.0
    assert volume_gain(DEFAULT_VOLUME) == 1.0
    assert volume_gain(VOLUME_STEPS) > 1.0 > volume_gain(DEFAULT_VOLUME - 1) > 0.0


def test_waiting_residents_hide_personal_data_and_refuse_control_characters() -> None:
    resident = WaitingResident(display_name="Anna Hansen", birth_date="1931-04-02", room="12")
    assert "Anna" not in repr(resident) and "1931" not in repr(resident)
    assert resident.for_hub() == {
        "display_name": "Anna Hansen",
        "birth_date": "1931-04-02",
        "room": "12",
    }
    with pytest.raises(ValueError) as caught:
        WaitingResident(display_name="Anna\x1b[2J")
    assert "Anna" not in str(caught.value)


def test_call_config_from_the_environment(tmp_path: Path) -> None:
    assert call_config_from_env({}) is None
    token = tmp_path / "token"
    token.write_text(STATION_TOKEN + "\n")
    config = call_config_from_env(
        {
            "KONTAKTSTATION_HUB_URL": "https://hub.example.test/",
            "KONTAKTSTATION_HUB_STATION_TOKEN_FILE": str(token),
            "KONTAKTSTATION_ICE_SERVERS": json.dumps(
                [{"urls": "turn:127.0.0.1:3478", "username": "u", "credential": "secret-pw"}]
            ),
            "KONTAKTSTATION_ICE_RELAY_ONLY": "1",
        }
    )
    assert isinstance(config, CallConfig)
    assert config.hub_url == "https://hub.example.test" and config.relay_only
    assert "secret-pw" not in repr(config) and STATION_TOKEN not in repr(config)
    path = tmp_path / "call.json"
    path.write_text(config.model_dump_json().replace("**********", "x"))
    with pytest.raises(CallConfigError) as caught:
        call_config_from_env({"KONTAKTSTATION_CALL_CONFIG": str(path)})
    assert "secret" not in str(caught.value)
    with pytest.raises(CallConfigError):
        call_config_from_env(
            {"KONTAKTSTATION_HUB_URL": "ftp://x", "KONTAKTSTATION_HUB_STATION_TOKEN": "t"}
        )


async def test_probe_keeps_only_servers_that_answer() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        dead = f"stun:127.0.0.1:{silent.getsockname()[1]}"
        refused = f"turn:127.0.0.1:{free_udp_port()}?transport=tcp"
        servers = [IceServerConfig(urls=[dead]), IceServerConfig(urls=refused, username="u")]
        usable, results = await probe_ice_servers(servers, 0.3)
    finally:
        silent.close()
    assert usable == []
    assert {r.url: r.reachable for r in results} == {dead: False, refused: False}


@pytest.mark.turn
@pytest.mark.slow
def test_call_signs_in_with_the_station_identity_and_relays_with_per_call_turn_credentials(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Issue 14 item 5, assembled: a hub without the shared token, a station approved by IT
    that signs in with its identity, coturn in ``use-auth-secret`` mode and no TURN password
    anywhere on the station; the call relays through coturn with the hub's per-call credential.
    """
    if delegated_to_loopback_namespace(request):
        return

    async def run() -> None:
        secret = secrets.token_hex(16)
        async with running_coturn(tmp_path, auth_secret=secret) as turn:  # noqa: SIM117
            async with running_hub(
                tmp_path / "hub",
                shared_token=False,
                turn_secret=secret,
                turn_urls=(f"turn:127.0.0.1:{turn.port}",),
            ) as hub:
                admin = open_provisioning(hub.settings, SystemClock(), signer=it_key(hub.settings))
                await admin.start()
                _private, escrow = generate_escrow_keypair()
                # IT's configuration: relay only, through a TURN server with no password in
                # it (the hub issues one per call).
                layer = {
                    "escrow_public_key": b64encode(escrow),
                    "allow_file_device_secret": True,
                    "ice_servers": [{"urls": [f"turn:127.0.0.1:{turn.port}"]}],
                    "ice_relay_only": True,
                }
                await admin.set_layer("care_home", "solhaven", layer, "it")
                config = call_config(hub.base_url, station_token=None)
                try:
                    async with running_stationd(
                        tmp_path / "station", config, hub_url=hub.base_url
                    ) as st:
                        agent = st.daemon.provisioning
                        await wait_for(lambda: agent.status == "pending", what="first contact")
                        await admin.preauthorise(agent.identity.fingerprint, "solhaven", "S", "it")
                        agent.wake()
                        await wait_for(
                            lambda: agent.config_store.version > 0, what="IT's configuration"
                        )
                        await st.daemon.provisioning_port.settled()
                        assert st.daemon.calls.next_config.relay_only
                        await st.unlock()
                        await st.book_and_check()
                        await _relayed_call(hub.base_url, st, turn.port)
                finally:
                    await admin.close()

    asyncio.run(run())


async def _relayed_call(hub_url: str, st: StationD, turn_port: int) -> None:
    started = await st.start_call()
    room_id = started["room_id"]
    gp = PythonGp(hub_url, started["gp_url"])
    try:

        async def gp_view() -> dict[str, Any]:
            response = await gp.http.get("/api/gp/room", headers=gp._headers())
            assert response.status_code == 200, response.text
            return dict(response.json())

        await wait_for(
            lambda: _gp_state(gp_view, "waiting"), what="the offer at the hub", timeout=30
        )
        # Before admission the GP page gets no TURN credential.
        assert not [s for s in (await gp_view())["ice_servers"] if "username" in s]
        await gp.admit()
        servers = [s for s in (await gp_view())["ice_servers"] if "username" in s]
        assert len(servers) == 1 and servers[0]["urls"] == [f"turn:127.0.0.1:{turn_port}"]
        expiry, _, for_room = str(servers[0]["username"]).partition(":")
        assert for_room == room_id
        # Valid until the slot's link closes plus a margin: hours, not a standing password.
        assert 0 < int(expiry) - time.time() < 4 * 3600
        assert await gp.answer_next() == 1
        await wait_for(lambda: st.sink.stats("remote").frames > 0, what="media", timeout=30)
        await wait_for(lambda: _connected(st), what="connected", timeout=30)
        call = await st.call()
        assert call["selected_pair"]["local"] == "relay", call["selected_pair"]
        assert call["attempt_prepared"] is False
        # Issue 18 item 4: while the call runs, the next attempt's peer connection is
        # prepared through the same TURN server (a relay allocation with the per-call
        # credential); when the GP's side goes silent, the re-dial posts that offer at once
        # and relays again.
        await wait_for(lambda: _next_prepared(st), what="the next attempt prepared", timeout=30)
        frames = st.sink.stats("remote").frames
        await gp.close_peer()
        assert await asyncio.wait_for(gp.answer_next(after_generation=1), 30) == 2
        await wait_for(
            lambda: st.sink.stats("remote").frames > frames + 10, what="media again", timeout=30
        )
        await wait_for(lambda: _connected(st), what="connected again", timeout=30)
        call = await st.call()
        assert call["attempt"] == 2 and call["attempt_prepared"] is True, call
        assert call["selected_pair"]["local"] == "relay", call["selected_pair"]
        # ... and the one after that is prepared again.
        await wait_for(lambda: _next_prepared(st), what="prepared again", timeout=30)
        await st.http.post("/v1/call/end", headers=st.auth)
        assert (await st.call())["next_attempt_prepared"] is False
    finally:
        await gp.aclose()


async def _next_prepared(st: StationD) -> bool:
    return bool((await st.call())["next_attempt_prepared"])


async def _gp_state(view: Any, state: str) -> bool:
    return bool((await view())["state"] == state)

"""The hub's rendezvous over HTTP (httpx ASGITransport, real SQLite file, real aiortc SDP).

Covers: rooms only for bookings, unguessable tokens stored hashed, the validity window on an
injected clock, revoked/expired/wrong links, the offer/answer exchange by long-poll, bad SDP
and oversized bodies refused (never 5xx), one GP per room, and logs free of tokens and
personal data.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.app import create_app
from hub.errors import InvalidSessionDescription
from hub.sdp import validate_candidate, validate_session_description
from hub.settings import HubSettings
from station.call.ice import build_rtc_configuration, restrict_host_candidates_to_loopback
from station.core.clock import FakeClock

from .hub_server import STATION_TOKEN
from .station_peer import StationHubClient

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
RESIDENTS = [
    {
        "display_name": "Ingrid <b>Sørensen</b>",
        "birth_date": "1931-04-02",
        "room": "Stue 14B",
        "reason": "Hoste gennem 3 dage\nfeber om aftenen",
    },
    {"display_name": "Poul Kræmer-Ahmadi", "birth_date": "1942-12-24", "room": "Stue 3"},
]
PERSONAL_STRINGS = [
    "Ingrid",
    "Sørensen",
    "1931-04-02",
    "Stue 14B",
    "Hoste gennem",
    "feber",
    "Poul",
    "Kræmer",
    "1942-12-24",
    "Stue 3",
]


@dataclass
class Sdp:
    """A real aiortc offer and the real answer to it."""

    offer: str
    answer: str


@pytest.fixture
async def sdp() -> AsyncIterator[Sdp]:
    """A real offer (audio, video, data channel) and answer, made by two aiortc peers."""
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
            yield Sdp(offer=offerer.localDescription.sdp, answer=answerer.localDescription.sdp)
        finally:
            await answerer.close()
            await offerer.close()


@dataclass
class Hub:
    """The app under test and what the tests drive it with."""

    client: httpx.AsyncClient
    station: StationHubClient
    clock: FakeClock
    settings: HubSettings

    def gp(self, token: str | None, session: str | None = None) -> dict[str, str]:
        """Headers of a GP browser holding ``token`` (and, once admitted, ``session``)."""
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        if session is not None:
            headers["X-GP-Session"] = session
        return headers

    async def room(self, starts_in: timedelta = timedelta(minutes=10)) -> tuple[str, str]:
        """A room for a 20-minute booking; returns (room id, GP token)."""
        start = self.clock.now() + starts_in
        created = await self.station.create_room(start, start + timedelta(minutes=20))
        token = created["gp_url"].split("#", 1)[1]
        return created["room_id"], token

    async def waiting_room(self, sdp: Sdp) -> tuple[str, str, int]:
        """A room whose station has posted an offer; returns (room id, token, generation)."""
        room_id, token = await self.room()
        generation = await self.station.post_offer(room_id, sdp.offer, RESIDENTS)
        return room_id, token, generation

    async def admit(self, token: str) -> dict[str, Any]:
        """Admit as a GP browser; returns the JSON (session and room)."""
        response = await self.client.post("/api/gp/admit", headers=self.gp(token))
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture
async def hub(data_dir: Path) -> AsyncIterator[Hub]:
    """The hub app on a fake clock and a real SQLite file, driven in-process over ASGI."""
    clock = FakeClock(NOW)
    settings = HubSettings(
        data_dir=data_dir, station_token=STATION_TOKEN, allow_shared_station_token=True
    )
    app = create_app(settings, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client,
    ):
        station = StationHubClient("http://hub.test", STATION_TOKEN, transport=transport)
        try:
            yield Hub(client=client, station=station, clock=clock, settings=settings)
        finally:
            await station.aclose()


def _db_rows(settings: HubSettings, sql: str, *args: Any) -> list[sqlite3.Row]:
    with sqlite3.connect(settings.sqlite_path) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, args).fetchall()


def _assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = dict(response.json())
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
    return body


# -- rooms need bookings and get unguessable links ----------------------------------------------


async def test_room_needs_a_booking_and_the_station_credential(hub: Hub) -> None:
    start = NOW + timedelta(minutes=10)
    body = {"starts_at": start.isoformat(), "ends_at": (start + timedelta(minutes=20)).isoformat()}

    no_auth = await hub.client.post("/api/station/rooms", json=body)
    _assert_error(no_auth, 401, "station_unauthorized")
    wrong = await hub.client.post(
        "/api/station/rooms", json=body, headers={"Authorization": "Bearer " + "x" * 45}
    )
    _assert_error(wrong, 401, "station_unauthorized")

    for bad in (
        {},  # no booking, no room
        {"starts_at": start.isoformat()},
        {"starts_at": "2026-11-25T09:10:00", "ends_at": "2026-11-25T09:30:00"},  # no timezone
        {"starts_at": "tomorrow", "ends_at": "later"},
    ):
        response = await hub.station.http.post("/api/station/rooms", json=bad)
        _assert_error(response, 422, "invalid_request")
    for starts_at, ends_at in (
        (start, start - timedelta(minutes=1)),  # ends before it starts
        (start, start + timedelta(hours=13)),  # not a booking, a day
        (NOW - timedelta(hours=5), NOW - timedelta(hours=4)),  # already over
    ):
        response = await hub.station.http.post(
            "/api/station/rooms",
            json={"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()},
        )
        _assert_error(response, 422, "booking_invalid")
    assert _db_rows(hub.settings, "SELECT count(*) FROM rooms")[0][0] == 0

    created = await hub.station.create_room(start, start + timedelta(minutes=20))
    assert created["valid_from"] == "2026-11-25T08:40:00Z"  # 30 min before the start
    assert created["valid_until"] == "2026-11-25T11:10:00Z"  # 2 h after the start


async def test_gp_token_is_unguessable_and_stored_only_as_a_hash(hub: Hub) -> None:
    tokens = []
    for _ in range(3):
        start = NOW + timedelta(minutes=10)
        created = await hub.station.create_room(start, start + timedelta(minutes=20))
        url, token = created["gp_url"].split("#", 1)
        assert url == "http://127.0.0.1:8470/gp/"  # the token is in the fragment only
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        assert len(raw) * 8 >= 256  # at least 128 bits are required; secrets gives 256
        tokens.append(token)
        (row,) = _db_rows(
            hub.settings, "SELECT token_hash FROM rooms WHERE room_id = ?", created["room_id"]
        )
        assert bytes(row["token_hash"]) == hashlib.sha256(token.encode()).digest()
    assert len(set(tokens)) == 3
    database = hub.settings.sqlite_path.read_bytes()
    for wal in hub.settings.sqlite_path.parent.glob("*-wal"):
        database += wal.read_bytes()
    for token in tokens:
        assert token.encode() not in database


# -- who may use a link, and when ---------------------------------------------------------------


async def test_validity_window_is_enforced_and_expiry_deletes_personal_data(
    hub: Hub, sdp: Sdp
) -> None:
    room_id, token = await hub.room(starts_in=timedelta(hours=2))
    await hub.station.post_offer(room_id, sdp.offer, RESIDENTS)

    early = await hub.client.get("/api/gp/room", headers=hub.gp(token))
    body = _assert_error(early, 403, "link_not_yet_valid")
    assert body["valid_from"] == "2026-11-25T10:30:00+00:00"
    assert "waiting" not in body

    hub.clock.set(datetime(2026, 11, 25, 10, 30, tzinfo=UTC))  # the window opens
    opened = await hub.client.get("/api/gp/room", headers=hub.gp(token))
    assert opened.status_code == 200
    round_ = hub.station.opened(room_id, opened.json()["waiting"], "waiting")
    assert round_["residents"][0]["display_name"] == "Ingrid <b>Sørensen</b>"

    hub.clock.set(datetime(2026, 11, 25, 13, 0, 0, 1, tzinfo=UTC))  # 2 h after the start, +1 µs
    late = await hub.client.get("/api/gp/room", headers=hub.gp(token))
    _assert_error(late, 410, "link_expired")
    (row,) = _db_rows(hub.settings, "SELECT * FROM rooms WHERE room_id = ?", room_id)
    assert row["state"] == "expired"
    assert row["waiting_json"] is None and row["offer_sdp"] is None
    admit = await hub.client.post("/api/gp/admit", headers=hub.gp(token))
    _assert_error(admit, 410, "link_expired")


async def test_background_purge_expires_rooms_nobody_touches(hub: Hub, sdp: Sdp) -> None:
    room_id, _token, _generation = await hub.waiting_room(sdp)
    hub.clock.advance(timedelta(hours=3))
    rendezvous = hub.client._transport.app.state.rendezvous  # type: ignore[attr-defined]
    assert await rendezvous.purge() == 1
    (row,) = _db_rows(hub.settings, "SELECT * FROM rooms WHERE room_id = ?", room_id)
    assert (row["state"], row["waiting_json"]) == ("expired", None)
    hub.clock.advance(hub.settings.finished_room_retention + timedelta(seconds=1))
    await rendezvous.purge()
    assert _db_rows(hub.settings, "SELECT * FROM rooms WHERE room_id = ?", room_id) == []


async def test_wrong_revoked_and_missing_links_are_refused(hub: Hub, sdp: Sdp) -> None:
    room_id, token, _generation = await hub.waiting_room(sdp)
    for headers in (
        hub.gp(None),
        hub.gp("short"),
        hub.gp("A" * 43),  # the right shape, no such room
        hub.gp(token[:-1] + ("A" if token[-1] != "A" else "B")),
        {"Authorization": f"Basic {token}"},
    ):
        response = await hub.client.get("/api/gp/room", headers=headers)
        _assert_error(response, 404, "unknown_link")

    revoked = await hub.station.http.post(f"/api/station/rooms/{room_id}/revoke")
    assert revoked.json()["state"] == "revoked"
    response = await hub.client.get("/api/gp/room", headers=hub.gp(token))
    _assert_error(response, 410, "link_revoked")
    (row,) = _db_rows(hub.settings, "SELECT waiting_json FROM rooms WHERE room_id = ?", room_id)
    assert row["waiting_json"] is None
    again = await hub.station.http.post(
        f"/api/station/rooms/{room_id}/offer", json={"type": "offer", "sdp": sdp.offer}
    )
    _assert_error(again, 410, "link_revoked")


async def test_gp_page_and_danish_not_found_page(hub: Hub) -> None:
    page = await hub.client.get("/gp/")
    assert page.status_code == 200
    assert "Lad komme ind" in page.text and 'lang="da"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    redirect = await hub.client.get("/gp?lang=en")
    assert redirect.status_code == 308 and redirect.headers["location"] == "gp/?lang=en"
    assert (await hub.client.get("/gp/gp.js")).headers["content-type"].startswith("text/javascript")
    missing = await hub.client.get("/gp/some-old-token-path")
    assert missing.status_code == 404 and "Siden findes ikke" in missing.text
    api_missing = await hub.client.get("/api/nothing")
    _assert_error(api_missing, 404, "not_found")


# -- the exchange -------------------------------------------------------------------------------


async def test_offer_and_answer_travel_by_long_poll(hub: Hub, sdp: Sdp) -> None:
    room_id, token = await hub.room()
    first = await hub.client.get("/api/gp/room", headers=hub.gp(token))
    assert first.json()["state"] == "booked" and first.json()["waiting"] is None
    version = first.json()["version"]

    # The GP page long-polls; the station's offer wakes it.
    gp_poll = asyncio.create_task(
        hub.client.get(
            "/api/gp/room", params={"since": version, "timeout": 20}, headers=hub.gp(token)
        )
    )
    await asyncio.sleep(0.05)
    assert not gp_poll.done()
    generation = await hub.station.post_offer(room_id, sdp.offer, RESIDENTS)
    woke = (await gp_poll).json()
    assert woke["state"] == "waiting"
    round_ = hub.station.opened(room_id, woke["waiting"], "waiting")
    assert [r["display_name"] for r in round_["residents"]] == [
        "Ingrid <b>Sørensen</b>",
        "Poul Kræmer-Ahmadi",
    ]
    assert woke["offer"] is None  # only an admitted browser gets the offer

    nothing_yet = await hub.station.http.get(
        f"/api/station/rooms/{room_id}/answer", params={"generation": generation}
    )
    assert nothing_yet.status_code == 204
    station_wait = asyncio.create_task(hub.station.wait_answer(room_id, generation))
    await asyncio.sleep(0.05)
    assert not station_wait.done()

    admitted = await hub.admit(token)
    assert admitted["room"]["offer"] == {"generation": 1, "type": "offer", "sdp": sdp.offer}
    assert admitted["room"]["admitted_by_you"] is True
    session = admitted["session"]
    answered = await hub.client.post(
        "/api/gp/answer",
        json={"generation": generation, "type": "answer", "sdp": sdp.answer},
        headers=hub.gp(token, session),
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["offer"] is None  # answered: nothing more to answer
    assert await station_wait == sdp.answer

    twice = await hub.client.post(
        "/api/gp/answer",
        json={"generation": generation, "type": "answer", "sdp": sdp.answer},
        headers=hub.gp(token, session),
    )
    _assert_error(twice, 409, "generation_stale")

    # A re-dial: a new generation for the same room reaches the admitted page.
    poll = asyncio.create_task(
        hub.client.get(
            "/api/gp/room",
            params={"since": answered.json()["version"], "timeout": 20},
            headers=hub.gp(token, session),
        )
    )
    second = await hub.station.post_offer(room_id, sdp.offer, None)
    assert second == 2
    redial = (await poll).json()
    assert redial["offer"]["generation"] == 2
    kept = hub.station.opened(room_id, redial["waiting"], "waiting")  # from the first offer
    assert kept["residents"][0]["room"] == "Stue 14B"


async def test_station_long_poll_learns_the_gp_hung_up(hub: Hub, sdp: Sdp) -> None:
    room_id, token, _generation = await hub.waiting_room(sdp)
    session = (await hub.admit(token))["session"]
    ended = asyncio.create_task(
        hub.station.wait_room(room_id, lambda view: view["state"] == "ended")
    )
    await asyncio.sleep(0.05)
    assert not ended.done()
    response = await hub.client.post("/api/gp/hangup", headers=hub.gp(token, session))
    assert response.status_code == 204
    view = await ended
    assert view["end_reason"] == "gp_hung_up"
    (row,) = _db_rows(hub.settings, "SELECT * FROM rooms WHERE room_id = ?", room_id)
    assert row["waiting_json"] is None and row["offer_sdp"] is None
    assert row["gp_session_hash"] is None
    reuse = await hub.client.get("/api/gp/room", headers=hub.gp(token))
    _assert_error(reuse, 410, "call_ended")
    readmit = await hub.client.post("/api/gp/admit", headers=hub.gp(token))
    _assert_error(readmit, 410, "call_ended")


async def test_gp_long_poll_learns_the_station_ended(hub: Hub, sdp: Sdp) -> None:
    room_id, token, _generation = await hub.waiting_room(sdp)
    admitted = await hub.admit(token)
    poll = asyncio.create_task(
        hub.client.get(
            "/api/gp/room",
            params={"since": admitted["room"]["version"], "timeout": 20},
            headers=hub.gp(token, admitted["session"]),
        )
    )
    await asyncio.sleep(0.05)
    assert not poll.done()
    await hub.station.end(room_id)
    _assert_error(await poll, 410, "call_ended")


async def test_notices_and_trickled_candidates(hub: Hub, sdp: Sdp) -> None:
    room_id, token, generation = await hub.waiting_room(sdp)
    admitted = await hub.admit(token)
    session = admitted["session"]
    await hub.station.current_resident(room_id, {"display_name": "Poul", "position": 2, "of": 2})
    await hub.station.notice(room_id, {"type": "private"})
    view = (await hub.client.get("/api/gp/room", headers=hub.gp(token, session))).json()
    assert view["private"] is True
    shown = hub.station.opened(room_id, view["current_resident"], "current_resident")
    assert shown == {"display_name": "Poul", "position": 2, "of": 2}
    # The hub takes no plaintext about people, from the station or anyone with its token.
    plain = await hub.station.http.post(
        f"/api/station/rooms/{room_id}/notices",
        json={"type": "current_resident", "display_name": "Poul", "position": 2, "of": 2},
    )
    assert plain.status_code == 422 and "Poul" not in plain.text
    plain_offer = await hub.station.http.post(
        f"/api/station/rooms/{room_id}/offer",
        json={"type": "offer", "sdp": sdp.offer, "waiting": {"residents": RESIDENTS}},
    )
    assert plain_offer.status_code == 422 and "Ingrid" not in plain_offer.text
    stranger = (await hub.client.get("/api/gp/room", headers=hub.gp(token))).json()
    assert stranger["private"] is False and stranger["current_resident"] is None
    bad_notice = await hub.station.http.post(
        f"/api/station/rooms/{room_id}/notices", json={"type": "shout", "text": "hi"}
    )
    _assert_error(bad_notice, 422, "invalid_request")

    before = (await hub.station.http.get(f"/api/station/rooms/{room_id}")).json()
    # The view may show the new candidate under the old version for a moment (see
    # Rendezvous.station_view): wait for both, as the station's long-poll effectively does.
    woke = asyncio.create_task(
        hub.station.wait_room(
            room_id,
            lambda v: v["gp_candidate_count"] > 0 and v["version"] > before["version"],
        )
    )
    candidate = "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0"
    posted = await hub.client.post(
        "/api/gp/candidates",
        json={"generation": generation, "candidate": candidate, "sdpMid": "0", "sdpMLineIndex": 0},
        headers=hub.gp(token, session),
    )
    assert posted.status_code == 202, posted.text
    assert (await woke)["version"] > before["version"]
    listed = await hub.station.http.get(
        f"/api/station/rooms/{room_id}/candidates", params={"generation": generation}
    )
    assert listed.json() == [{"candidate": candidate, "sdpMid": "0", "sdpMLineIndex": 0}]
    for bad in ("<script>", "candidate:1 1 udp x 127.0.0.1 5 typ host", "a" * 513):
        response = await hub.client.post(
            "/api/gp/candidates",
            json={"generation": generation, "candidate": bad},
            headers=hub.gp(token, session),
        )
        assert response.status_code == 422, response.text
    without_session = await hub.client.post(
        "/api/gp/candidates",
        json={"generation": generation, "candidate": candidate},
        headers=hub.gp(token),
    )
    _assert_error(without_session, 403, "not_admitted_browser")


# -- bad input ----------------------------------------------------------------------------------


def _cut_to_first_media(sdp: str) -> str:
    lines = sdp.split("\r\n")
    media = [i for i, line in enumerate(lines) if line.startswith("m=")]
    return "\r\n".join(lines[: media[1]]) + "\r\n"


async def test_malformed_sdp_is_refused(hub: Hub, sdp: Sdp) -> None:
    room_id, token = await hub.room()
    bad_offers = [
        "",
        "hello",
        "v=0\r\n",
        sdp.answer,  # an answer is not an offer (DTLS role)
        sdp.offer.replace("a=fingerprint:", "a=fingerprunt:"),
        sdp.offer.replace("a=ice-ufrag:", "a=ice-ufrug:"),
        sdp.offer.replace("\r\nt=0 0", ""),
        sdp.offer.replace("m=video", "m=hologram"),
        sdp.offer + "x=\x00\x01\r\n",
        sdp.offer + "bogus line\r\n",
        sdp.offer + ("a=x-padding:" + "p" * 1000 + "\r\n") * 50,  # 50 KB: below the body limit
    ]
    for bad in bad_offers:
        response = await hub.station.http.post(
            f"/api/station/rooms/{room_id}/offer", json={"type": "offer", "sdp": bad}
        )
        _assert_error(response, 422, "invalid_sdp")
    wrong_type = await hub.station.http.post(
        f"/api/station/rooms/{room_id}/offer", json={"type": "answer", "sdp": sdp.offer}
    )
    _assert_error(wrong_type, 422, "invalid_request")
    view = (await hub.station.http.get(f"/api/station/rooms/{room_id}")).json()
    assert (view["state"], view["offer_generation"]) == ("booked", 0)

    generation = await hub.station.post_offer(room_id, sdp.offer, RESIDENTS)
    session = (await hub.admit(token))["session"]
    for bad in (sdp.offer, _cut_to_first_media(sdp.answer), "v=0"):
        response = await hub.client.post(
            "/api/gp/answer",
            json={"generation": generation, "type": "answer", "sdp": bad},
            headers=hub.gp(token, session),
        )
        _assert_error(response, 422, "invalid_sdp")
    still = (await hub.client.get("/api/gp/room", headers=hub.gp(token, session))).json()
    assert still["offer"]["generation"] == generation  # still waiting for a good answer


async def test_oversized_bodies_get_413(hub: Hub, sdp: Sdp) -> None:
    room_id, token = await hub.room()
    over = hub.settings.max_body_bytes + 1024
    huge = {"type": "offer", "sdp": sdp.offer + "a=x:" + "p" * over + "\r\n"}
    response = await hub.station.http.post(f"/api/station/rooms/{room_id}/offer", json=huge)
    _assert_error(response, 413, "body_too_large")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(over // 4096 + 1):
            yield b"x" * 4096  # no Content-Length: counted as it arrives

    chunked = await hub.station.http.post(
        f"/api/station/rooms/{room_id}/offer",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    _assert_error(chunked, 413, "body_too_large")
    gp_big = await hub.client.post(
        "/api/gp/answer",
        content=b"{" + b" " * over + b"}",
        headers={**hub.gp(token), "Content-Type": "application/json"},
    )
    _assert_error(gp_big, 413, "body_too_large")
    view = (await hub.station.http.get(f"/api/station/rooms/{room_id}")).json()
    assert view["offer_generation"] == 0


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/station/rooms", b"not json"),
        ("POST", "/api/station/rooms", b'{"starts_at": 5, "ends_at": null}'),
        ("POST", "/api/station/rooms", b"[]"),
        ("POST", "/api/station/rooms/zzz/offer", b"{}"),
        ("POST", "/api/station/rooms/0123456789abcdef01234567/offer", b'{"type":"offer"}'),
        ("GET", "/api/station/rooms/0123456789abcdef01234567?since=x", None),
        ("GET", "/api/station/rooms/0123456789abcdef01234567/answer?generation=-1", None),
        ("POST", "/api/station/rooms/0123456789abcdef01234567/end", None),
        ("POST", "/api/station/rooms/0123456789abcdef01234567/notices", b'{"type": 3}'),
        ("GET", "/api/station/rooms/0123456789abcdef01234567?timeout=1e999", None),
        ("GET", "/api/station/rooms/0123456789abcdef01234567?timeout=nan", None),
        ("GET", "/api/station/rooms/0123456789abcdef01234567?since=" + "9" * 40, None),
        (
            "GET",
            "/api/station/rooms/0123456789abcdef01234567/candidates?generation=" + "9" * 30,
            None,
        ),
    ],
)
async def test_bad_station_requests_get_4xx_json(
    hub: Hub, method: str, path: str, body: bytes | None
) -> None:
    response = await hub.station.http.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text
    assert set(response.json()) >= {"error", "code"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/gp/answer", b'{"generation": "one"}'),
        ("POST", "/api/gp/candidates", b'{"generation": 1e300, "candidate": ""}'),
        ("POST", "/api/gp/candidates", b'{"generation": 99999999999999999999999, "candidate": ""}'),
        ("POST", "/api/gp/candidates", b"\xff\xfe"),
        ("POST", "/api/gp/hangup", None),
        ("GET", "/api/gp/room?since=-7", None),
        ("DELETE", "/api/gp/room", None),
    ],
)
async def test_bad_gp_requests_get_4xx_json(
    hub: Hub, sdp: Sdp, method: str, path: str, body: bytes | None
) -> None:
    _room_id, token, _generation = await hub.waiting_room(sdp)
    response = await hub.client.request(
        method,
        path,
        content=body,
        headers={**hub.gp(token, "not-a-session"), "Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500, response.text
    assert set(response.json()) >= {"error", "code"}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=400), kind=st.sampled_from(["offer", "answer"]))
def test_sdp_check_refuses_garbage_with_its_own_error(text: str, kind: str) -> None:
    try:
        validate_session_description(text, kind, max_bytes=48 * 1024)  # type: ignore[arg-type]
    except InvalidSessionDescription as error:
        assert len(text) < 8 or text not in str(error)  # the input is never echoed
    else:
        raise AssertionError("random text passed as SDP")
    with contextlib.suppress(InvalidSessionDescription):
        validate_candidate(text)


# -- one GP per room ----------------------------------------------------------------------------


async def test_second_gp_is_refused_and_the_first_call_goes_on(hub: Hub, sdp: Sdp) -> None:
    room_id, token, generation = await hub.waiting_room(sdp)
    first = await hub.admit(token)
    session = first["session"]

    second = await hub.client.post("/api/gp/admit", headers=hub.gp(token))
    _assert_error(second, 409, "room_already_admitted")
    forged = await hub.client.post("/api/gp/admit", headers=hub.gp(token, "A" * 32))
    _assert_error(forged, 409, "room_already_admitted")
    seen_by_second = (await hub.client.get("/api/gp/room", headers=hub.gp(token))).json()
    assert seen_by_second["admitted_elsewhere"] is True
    assert seen_by_second["offer"] is None and seen_by_second["waiting"] is None
    answer_by_second = await hub.client.post(
        "/api/gp/answer",
        json={"generation": generation, "type": "answer", "sdp": sdp.answer},
        headers=hub.gp(token),
    )
    _assert_error(answer_by_second, 403, "not_admitted_browser")
    hangup_by_second = await hub.client.post("/api/gp/hangup", headers=hub.gp(token))
    _assert_error(hangup_by_second, 403, "not_admitted_browser")

    # The first browser is unharmed: same offer, its answer reaches the station.
    mine = (await hub.client.get("/api/gp/room", headers=hub.gp(token, session))).json()
    assert mine["admitted_by_you"] is True and mine["offer"]["generation"] == generation
    repeat = await hub.client.post("/api/gp/admit", headers=hub.gp(token, session))
    assert repeat.status_code == 200 and repeat.json()["session"] == session  # double click
    answered = await hub.client.post(
        "/api/gp/answer",
        json={"generation": generation, "type": "answer", "sdp": sdp.answer},
        headers=hub.gp(token, session),
    )
    assert answered.status_code == 200
    assert await hub.station.wait_answer(room_id, generation) == sdp.answer

    # Silent longer than the lease, but its answer stands: the call is the first one's.
    hub.clock.advance(hub.settings.gp_session_lease + timedelta(seconds=1))
    quiet = await hub.client.post("/api/gp/admit", headers=hub.gp(token))
    _assert_error(quiet, 409, "room_already_admitted")
    # A browser really gone (crashed laptop): the station re-dials, nobody answers, and
    # after the lease a new browser takes over with the re-dial's offer.
    redial = await hub.station.post_offer(room_id, sdp.offer, None)
    hub.clock.advance(hub.settings.gp_session_lease + timedelta(seconds=1))
    takeover = await hub.client.post("/api/gp/admit", headers=hub.gp(token))
    assert takeover.status_code == 200
    assert takeover.json()["room"]["offer"]["generation"] == redial
    old = (await hub.client.get("/api/gp/room", headers=hub.gp(token, session))).json()
    assert old["admitted_by_you"] is False and old["admitted_elsewhere"] is True


# -- logs ---------------------------------------------------------------------------------------


async def test_logs_hold_no_tokens_or_personal_data(
    hub: Hub, sdp: Sdp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    room_id, token, generation = await hub.waiting_room(sdp)
    await hub.client.get("/api/gp/room", headers=hub.gp("B" * 43))
    admitted = await hub.admit(token)
    session = admitted["session"]
    await hub.client.post("/api/gp/admit", headers=hub.gp(token))  # refused second GP
    await hub.station.current_resident(
        room_id, {"display_name": "Poul Kræmer", "position": 2, "of": 2}
    )
    await hub.client.post(
        "/api/gp/answer",
        json={"generation": generation, "type": "answer", "sdp": "v=0\r\nBirgitte"},
        headers=hub.gp(token, session),
    )
    await hub.station.http.post(
        "/api/station/rooms",
        json={"starts_at": "Ingrid", "ends_at": RESIDENTS[0]["birth_date"]},
    )
    await hub.client.post(
        "/api/gp/answer",
        json={"generation": generation, "type": "answer", "sdp": sdp.answer},
        headers=hub.gp(token, session),
    )
    await hub.client.post("/api/gp/hangup", headers=hub.gp(token, session))
    hub.clock.advance(timedelta(days=1))
    await hub.client.get("/api/gp/room", headers=hub.gp(token))

    text = "\n".join(
        [caplog.text]
        + [repr(record.args) for record in caplog.records]
        + [str(record.exc_info) for record in caplog.records]
    )
    assert "hub.rendezvous" in caplog.text  # the flow was logged at all
    assert room_id in caplog.text  # room ids are fine: random, they name nobody
    for secret in (token, session, STATION_TOKEN, "Birgitte", *PERSONAL_STRINGS):
        assert secret not in text, f"log contains {secret!r}"
    assert str(date(1931, 4, 2)) not in text

"""The hub's part in "the GP left": the page's goodbye, its return, and when it was last seen.

Run on both room stores (SQLite file, and PostgreSQL with LISTEN/NOTIFY), over the real app
(httpx ASGITransport) on a fake clock:

* ``POST /api/gp/leave`` (the page's ``pagehide``) marks the room and wakes the station's
  long-poll; the station's view says ``gp_left``;
* the same page polling again (a reload) clears the mark, with a version bump;
* after a goodbye another page with the link may admit at once (the GP re-opening the link),
  and sees the waiting room again;
* ``gp_seen_seconds_ago`` follows the admitted page's requests on the hub's clock;
* nothing is kept about the GP's presence once the room ends, and an old database (before
  the ``gp_left_at`` column) is brought up to date on both engines.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.app import create_app
from hub.pg import postgres_rendezvous
from hub.settings import HubSettings
from hub.store import RoomStore
from station.core.clock import FakeClock
from tests.integration.postgres import pg_server, pg_url  # noqa: F401 (fixtures)

from .hub_server import STATION_TOKEN
from .station_peer import StationHubClient
from .test_hub_rendezvous import NOW, RESIDENTS, Sdp, sdp

__all__ = ["sdp"]


@dataclass
class PresenceHub:
    client: httpx.AsyncClient
    station: StationHubClient
    clock: FakeClock

    def gp(self, token: str, session: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}"}
        if session is not None:
            headers["X-GP-Session"] = session
        return headers

    async def admitted_room(self, sdp: Sdp) -> tuple[str, str, str, int]:
        """A room whose station offered and whose GP admitted: (room, token, session, gen)."""
        start = self.clock.now() + timedelta(minutes=5)
        created = await self.station.create_room(start, start + timedelta(minutes=20))
        room_id, token = created["room_id"], created["gp_url"].split("#", 1)[1]
        generation = await self.station.post_offer(room_id, sdp.offer, RESIDENTS)
        admitted = await self.client.post("/api/gp/admit", headers=self.gp(token))
        assert admitted.status_code == 200, admitted.text
        return room_id, token, admitted.json()["session"], generation

    async def station_view(self, room_id: str) -> dict[str, Any]:
        response = await self.station.http.get(f"/api/station/rooms/{room_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def presence_hub(
    request: pytest.FixtureRequest, data_dir: Path
) -> AsyncIterator[PresenceHub]:
    clock = FakeClock(NOW)
    settings = HubSettings(
        data_dir=data_dir, station_token=STATION_TOKEN, allow_shared_station_token=True
    )
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        store, notifier = postgres_rendezvous(url)
        app = create_app(settings, clock=clock, store=store, notifier=notifier)
    else:
        app = create_app(settings, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client,
    ):
        station = StationHubClient("http://hub.test", STATION_TOKEN, transport=transport)
        try:
            yield PresenceHub(client=client, station=station, clock=clock)
        finally:
            await station.aclose()


async def test_goodbye_wakes_the_station_and_a_reload_clears_it(
    presence_hub: PresenceHub, sdp: Sdp
) -> None:
    hub = presence_hub
    room_id, token, session, _generation = await hub.admitted_room(sdp)
    view = await hub.station_view(room_id)
    assert view["gp_left"] is False and view["gp_seen_seconds_ago"] == 0.0

    # The station long-polls; the page's goodbye wakes it.
    woken = asyncio.create_task(hub.station.wait_room(room_id, lambda v: v["gp_left"] is True))
    await asyncio.sleep(0.05)
    assert not woken.done()
    response = await hub.client.post("/api/gp/leave", headers=hub.gp(token, session))
    assert response.status_code == 204, response.text
    left = await asyncio.wait_for(woken, 10)
    assert left["state"] == "admitted" and left["version"] > view["version"]

    # A reload: the same session polls again; the mark goes, with a version bump.
    hub.clock.advance(timedelta(seconds=2))
    again = await hub.client.get("/api/gp/room", headers=hub.gp(token, session))
    assert again.status_code == 200 and again.json()["admitted_by_you"] is True
    back = await hub.station_view(room_id)
    assert back["gp_left"] is False and back["version"] > left["version"]
    assert back["gp_seen_seconds_ago"] == 0.0


async def test_seen_seconds_follow_the_pages_requests(presence_hub: PresenceHub, sdp: Sdp) -> None:
    hub = presence_hub
    room_id, token, session, _generation = await hub.admitted_room(sdp)
    hub.clock.advance(timedelta(seconds=12.5))
    assert (await hub.station_view(room_id))["gp_seen_seconds_ago"] == 12.5
    await hub.client.get("/api/gp/room", headers=hub.gp(token, session))
    assert (await hub.station_view(room_id))["gp_seen_seconds_ago"] == 0.0
    # A stranger with the link is not the GP's page: it does not count as seen.
    hub.clock.advance(timedelta(seconds=3))
    await hub.client.get("/api/gp/room", headers=hub.gp(token))
    assert (await hub.station_view(room_id))["gp_seen_seconds_ago"] == 3.0


async def test_after_a_goodbye_the_link_can_be_opened_again_at_once(
    presence_hub: PresenceHub, sdp: Sdp
) -> None:
    hub = presence_hub
    room_id, token, session, generation = await hub.admitted_room(sdp)
    # Before the goodbye a second page is refused, and sees nobody.
    second = await hub.client.post("/api/gp/admit", headers=hub.gp(token))
    assert second.status_code == 409 and second.json()["code"] == "room_already_admitted"

    await hub.client.post("/api/gp/leave", headers=hub.gp(token, session))
    # A new tab with the link sees the station waiting, and who waits, as before admission.
    seen = (await hub.client.get("/api/gp/room", headers=hub.gp(token))).json()
    assert seen["state"] == "waiting" and seen["admitted_elsewhere"] is False
    round_ = hub.station.opened(room_id, seen["waiting"], "waiting")
    assert round_["residents"][0]["display_name"] == RESIDENTS[0]["display_name"]
    assert seen["offer"] is None
    # ... and may admit at once (no lease to wait out); the station's offer is theirs.
    readmit = await hub.client.post("/api/gp/admit", headers=hub.gp(token))
    assert readmit.status_code == 200, readmit.text
    new_session = readmit.json()["session"]
    assert new_session != session
    room = readmit.json()["room"]
    assert room["admitted_by_you"] is True and room["offer"]["generation"] == generation
    assert (await hub.station_view(room_id))["gp_left"] is False
    # The old page is out.
    old = (await hub.client.get("/api/gp/room", headers=hub.gp(token, session))).json()
    assert old["admitted_by_you"] is False and old["admitted_elsewhere"] is True


async def test_only_the_admitted_page_can_say_goodbye(presence_hub: PresenceHub, sdp: Sdp) -> None:
    hub = presence_hub
    room_id, token, session, _generation = await hub.admitted_room(sdp)
    for headers in (hub.gp(token), hub.gp(token, "A" * 32), hub.gp("B" * 43, session)):
        response = await hub.client.post("/api/gp/leave", headers=headers)
        assert response.status_code in (403, 404), response.text
    assert (await hub.station_view(room_id))["gp_left"] is False
    # After the end nothing about the GP's presence is reported or kept.
    await hub.client.post("/api/gp/leave", headers=hub.gp(token, session))
    await hub.station.end(room_id)
    ended = await hub.station_view(room_id)
    assert ended["state"] == "ended"
    assert ended["gp_left"] is False and ended["gp_seen_seconds_ago"] is None
    gone = await hub.client.post("/api/gp/leave", headers=hub.gp(token, session))
    assert gone.status_code == 410


_OLD_ROOMS = """
CREATE TABLE rooms (
    room_id TEXT PRIMARY KEY, token_hash BLOB NOT NULL UNIQUE, starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL, valid_from TEXT NOT NULL, valid_until TEXT NOT NULL,
    created_at TEXT NOT NULL, language TEXT NOT NULL, state TEXT NOT NULL,
    version INTEGER NOT NULL, waiting_json TEXT, current_resident_json TEXT,
    private INTEGER NOT NULL, offer_generation INTEGER NOT NULL, offer_sdp TEXT,
    answer_generation INTEGER NOT NULL, answer_sdp TEXT, gp_session_hash BLOB,
    gp_seen_at TEXT, finished_at TEXT, end_reason TEXT
)
"""
_OLD_ROW = (
    "INSERT INTO rooms VALUES ('{room}', {blob}, '2026-11-25T09:00:00.000000+00:00', "
    "'2026-11-25T09:20:00.000000+00:00', '2026-11-25T08:30:00.000000+00:00', "
    "'2026-11-25T11:00:00.000000+00:00', '2026-11-25T08:00:00.000000+00:00', 'da', 'booked', "
    "0, NULL, NULL, 0, 0, NULL, 0, NULL, NULL, NULL, NULL, NULL)"
)


async def test_an_old_sqlite_database_gets_the_new_column(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(_OLD_ROOMS)
        conn.execute(_OLD_ROW.format(room="a" * 24, blob="x'00'"))
    store = RoomStore.sqlite(path)
    try:
        record = await store.get("a" * 24)
        assert record is not None and record.gp_left_at is None
    finally:
        await store.close()


@pytest.mark.postgres
async def test_an_old_postgres_database_gets_the_new_column(pg_url: str) -> None:  # noqa: F811
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(_OLD_ROOMS.replace("BLOB", "BYTEA"))
        conn.execute(_OLD_ROW.format(room="b" * 24, blob="'\\x00'::bytea"))
    store, notifier = postgres_rendezvous(pg_url)
    try:
        record = await store.get("b" * 24)
        assert record is not None and record.gp_left_at is None
    finally:
        await store.close()
        await notifier.aclose()


async def test_a_long_poll_held_for_the_closed_page_is_not_its_return(
    presence_hub: PresenceHub, sdp: Sdp
) -> None:
    hub = presence_hub
    room_id, token, session, _generation = await hub.admitted_room(sdp)
    version = (await hub.station_view(room_id))["version"]
    # The page's long-poll is held by the hub when the page is closed ...
    held = asyncio.create_task(
        hub.client.get(
            "/api/gp/room",
            params={"since": version + 5, "timeout": 1},
            headers=hub.gp(token, session),
        )
    )
    await asyncio.sleep(0.05)
    hub.clock.advance(timedelta(seconds=4))
    await hub.client.post("/api/gp/leave", headers=hub.gp(token, session))
    # ... its goodbye wakes that request, which re-reads the room: still gone.
    assert (await held).status_code == 200
    view = await hub.station_view(room_id)
    assert view["gp_left"] is True
    assert view["gp_seen_seconds_ago"] == 4.0

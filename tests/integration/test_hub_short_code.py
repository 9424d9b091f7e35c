"""The short code staff read to a GP over the phone (``/kode``, hub/codes.py), over HTTP.

The real app (httpx ASGITransport) on a fake clock and a real SQLite file: a valid code leads
(303) to the room's full link, with its token in the fragment; a wrong code, an expired one,
one whose room ended or whose GP was admitted leads nowhere; wrong guesses are limited per
client address and in total; nothing about a code reaches the database or the log.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from hub import codes
from hub.app import create_app
from hub.settings import HubSettings
from station.core.clock import FakeClock

from .hub_server import STATION_TOKEN
from .station_peer import StationHubClient

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
CODE_SHAPE = r"^[A-HJKMNP-Z2-9]{4}-[A-HJKMNP-Z2-9]{4}$"


@dataclass
class Hub:
    app: FastAPI
    clock: FakeClock
    settings: HubSettings
    station: StationHubClient

    def client(self, address: str = "192.0.2.10") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://hub.test")

    async def room(self) -> dict[str, str]:
        start = self.clock.now() + timedelta(minutes=10)
        created = await self.station.create_room(start, start + timedelta(minutes=20))
        return dict(created)


@pytest.fixture
async def hub(data_dir: Path) -> AsyncIterator[Hub]:
    clock = FakeClock(NOW)
    # The shared token keeps this test about codes (station credentials have their own).
    settings = HubSettings(
        data_dir=data_dir, station_token=STATION_TOKEN, allow_shared_station_token=True
    )
    app = create_app(settings, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app):
        station = StationHubClient("http://hub.test", STATION_TOKEN, transport=transport)
        try:
            yield Hub(app=app, clock=clock, settings=settings, station=station)
        finally:
            await station.aclose()


async def _redeem(client: httpx.AsyncClient, code: str) -> httpx.Response:
    return await client.post(
        "/kode",
        content=f"code={code}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


async def test_a_valid_code_leads_to_the_rooms_link_and_a_wrong_one_nowhere(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    room = await hub.room()
    code = room["gp_code"]
    assert code is not None
    assert re.fullmatch(CODE_SHAPE, code), code
    assert room["gp_code_url"].endswith("/kode")
    async with hub.client() as gp:
        page = await gp.get("/kode")
        assert page.status_code == 200
        assert "Skriv koden, du har fået af plejehjemmet" in page.text
        assert "form-action 'self'" in page.headers["content-security-policy"]
        # Typed as people type it: lower case, a space instead of the dash.
        found = await _redeem(gp, code.lower().replace("-", " "))
        assert found.status_code == 303, found.text
        assert found.headers["location"] == room["gp_url"]
        assert found.headers["cache-control"] == "no-store"
        # Wrong: one character changed; not a code at all.
        other = ("B" if code[0] == "A" else "A") + code[1:]
        for wrong in (other, "", "x" * 500, "ABCD-EFG1"):
            refused = await _redeem(gp, wrong)
            assert refused.status_code == 404
            assert "Koden er ugyldig" in refused.text
            assert room["gp_url"] not in refused.text
    # The hub's database holds neither the code nor anything derived from it in the clear.
    with sqlite3.connect(hub.settings.sqlite_path) as conn:
        dump = "\n".join(conn.iterdump())
    assert code not in dump and code.replace("-", "") not in dump
    assert code not in caplog.text and code.replace("-", "") not in caplog.text


async def test_a_code_dies_with_the_slot_the_end_of_the_room_and_the_gps_admission(
    hub: Hub,
) -> None:
    expiring, ended = await hub.room(), await hub.room()
    await hub.station.end(ended["room_id"])
    async with hub.client() as gp:
        assert (await _redeem(gp, ended["gp_code"])).status_code == 404
        assert (await _redeem(gp, expiring["gp_code"])).status_code == 303
        hub.clock.advance(timedelta(hours=3))  # past valid_until (start + 2 h)
        assert (await _redeem(gp, expiring["gp_code"])).status_code == 404


async def test_wrong_guesses_are_limited_per_address_and_in_total(hub: Hub) -> None:
    room = await hub.room()
    async with hub.client("192.0.2.10") as guesser, hub.client("192.0.2.11") as gp:
        for _ in range(codes.PER_ADDRESS_FAILURES):
            assert (await _redeem(guesser, "AAAA-AAAA")).status_code == 404
        # Limited now: even the right code is refused to this address, with a clear message.
        limited = await _redeem(guesser, room["gp_code"])
        assert limited.status_code == 429
        assert "For mange forkerte koder" in limited.text
        # Another address is not held up by it.
        assert (await _redeem(gp, room["gp_code"])).status_code == 303
        # The window passes: the guesser may try again.
        hub.clock.advance(timedelta(seconds=codes.WINDOW + 1))
        assert (await _redeem(guesser, room["gp_code"])).status_code == 303
    # Many addresses together meet the global limit.
    for n in range(codes.GLOBAL_FAILURES):
        async with hub.client(f"198.51.{n // 250}.{n % 250 + 1}") as bot:
            assert (await _redeem(bot, "AAAA-AAAA")).status_code == 404
    async with hub.client("203.0.113.5") as honest:
        assert (await _redeem(honest, room["gp_code"])).status_code == 429

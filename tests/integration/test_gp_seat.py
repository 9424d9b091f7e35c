"""Issue 14, item 4 (part): a second browser never takes over a GP seat still in the call.

The real hub (uvicorn on a TCP port) with a short lease, a station client posting a real
aiortc offer, and two browsers as two separate HTTP clients holding the same GP link. The
first admits and answers; then it is quiet longer than the lease (a background tab, a slow
network: its media may flow on regardless). The second browser — anyone with a leaked link —
tries to admit: it used to get the seat and the station's next offer; now it is refused for
as long as the first one's answer stands. Only when the station re-dials (its media watchdog
saw the first browser's media stop) and that offer stays unanswered past the lease does the
second browser get the seat, with the re-dial's offer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.integration.hub_server import STATION_TOKEN, running_hub
from tests.integration.station_peer import StationHubClient
from tests.integration.test_hub_rendezvous import Sdp, sdp  # noqa: F401 (fixture)

LEASE = timedelta(seconds=1)


@pytest.fixture
async def browsers() -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    async with httpx.AsyncClient(timeout=10) as first, httpx.AsyncClient(timeout=10) as second:
        yield first, second


async def test_a_quiet_admitted_browser_keeps_its_seat_while_its_answer_stands(
    tmp_path: Path,
    sdp: Sdp,  # noqa: F811 (the fixture)
    browsers: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    first, second = browsers
    async with running_hub(tmp_path / "hub", gp_session_lease=LEASE) as hub:
        station = StationHubClient(hub.base_url, STATION_TOKEN)
        try:
            start = datetime.now(UTC) + timedelta(minutes=5)
            created = await station.create_room(start, start + timedelta(minutes=20))
            room_id, token = created["room_id"], created["gp_url"].split("#", 1)[1]
            link = {"Authorization": f"Bearer {token}"}
            generation = await station.post_offer(room_id, sdp.offer, None)

            admitted = await first.post(f"{hub.base_url}/api/gp/admit", headers=link)
            assert admitted.status_code == 200, admitted.text
            mine = {**link, "X-GP-Session": admitted.json()["session"]}
            answered = await first.post(
                f"{hub.base_url}/api/gp/answer",
                json={"generation": generation, "type": "answer", "sdp": sdp.answer},
                headers=mine,
            )
            assert answered.status_code == 200, answered.text
            assert await station.wait_answer(room_id, generation) == sdp.answer

            # The first browser goes quiet for longer than the lease; the call is its own.
            await asyncio.sleep(LEASE.total_seconds() * 2.5)
            taken = await second.post(f"{hub.base_url}/api/gp/admit", headers=link)
            assert taken.status_code == 409, "a second browser took over a seat in use"
            assert taken.json()["code"] == "room_already_admitted"
            view = (await first.get(f"{hub.base_url}/api/gp/room", headers=mine)).json()
            assert view["admitted_by_you"] is True

            # The first browser is really gone: the station re-dials and nobody answers.
            redial = await station.post_offer(room_id, sdp.offer, None)
            await asyncio.sleep(LEASE.total_seconds() * 2.5)
            taken = await second.post(f"{hub.base_url}/api/gp/admit", headers=link)
            assert taken.status_code == 200, taken.text
            assert taken.json()["room"]["offer"]["generation"] == redial
            view = (await first.get(f"{hub.base_url}/api/gp/room", headers=mine)).json()
            assert view["admitted_by_you"] is False
        finally:
            await station.aclose()

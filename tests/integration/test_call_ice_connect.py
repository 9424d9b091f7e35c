"""The station's prompt ICE ``connect`` (station/call/tuning.py) does what aioice's did.

Two real aioice connections on 127.0.0.1, inside a loopback-only network namespace: they
connect (the controlling side nominates, both complete, data flows both ways), and a
connection with no remote candidate at all fails with aioice's own error at once.
"""

from __future__ import annotations

import asyncio

import aioice
import pytest

from station.call import tuning
from station.call.ice import restrict_host_candidates_to_loopback
from station.call.tuning import install_prompt_ice_completion

from .netns import delegated_to_loopback_namespace


async def _pair() -> tuple[aioice.Connection, aioice.Connection]:
    controlling = aioice.Connection(ice_controlling=True, components=1)
    controlled = aioice.Connection(ice_controlling=False, components=1)
    with restrict_host_candidates_to_loopback():
        await controlling.gather_candidates()
        await controlled.gather_candidates()
    for one, other in ((controlling, controlled), (controlled, controlling)):
        one.remote_username = other.local_username
        one.remote_password = other.local_password
        for candidate in other.local_candidates:
            await one.add_remote_candidate(candidate)
        await one.add_remote_candidate(None)
    return controlling, controlled


def test_prompt_connect_connects_two_peers_on_loopback(request: pytest.FixtureRequest) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def run() -> None:
        assert install_prompt_ice_completion()
        assert aioice.Connection.connect is tuning._prompt_connect
        controlling, controlled = await _pair()
        try:
            async with asyncio.timeout(10):
                await asyncio.gather(controlling.connect(), controlled.connect())
                await controlling.send(b"station")
                assert await controlled.recv() == b"station"
                await controlled.send(b"gp")
                assert await controlling.recv() == b"gp"
            for connection in (controlling, controlled):
                pairs = [p for p in connection._nominated.values()]
                assert len(pairs) == 1
                assert pairs[0].local_candidate.host == "127.0.0.1"
        finally:
            await controlling.close()
            await controlled.close()

    asyncio.run(run())


def test_prompt_connect_without_remote_candidates_fails_at_once(
    request: pytest.FixtureRequest,
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def run() -> None:
        assert install_prompt_ice_completion()
        connection = aioice.Connection(ice_controlling=True, components=1)
        with restrict_host_candidates_to_loopback():
            await connection.gather_candidates()
        connection.remote_username = "nobody"
        connection.remote_password = "nobody-password-0123456789"
        await connection.add_remote_candidate(None)  # end of candidates, and none came
        try:
            async with asyncio.timeout(10):
                with pytest.raises(ConnectionError, match="ICE negotiation failed"):
                    await connection.connect()
        finally:
            await connection.close()

    asyncio.run(run())

"""When a prepared peer connection may serve the next attempt (station.call.warm)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from station.call.ice import IceServerConfig
from station.call.warm import WarmPeer, host_addresses

TURN = IceServerConfig(urls=("turn:127.0.0.1:3478",), username="1:room", credential="a")
ADDRESSES = frozenset({"10.0.0.5"})


def _warm(**pc: Any) -> WarmPeer:
    state = {
        "signalingState": "have-local-offer",
        "connectionState": "new",
        "iceGatheringState": "complete",
    } | pc
    return WarmPeer(
        pc=SimpleNamespace(**state),
        sdp="v=0",
        channel=None,
        servers=[TURN],
        configured=(TURN,),
        codec=None,
        addresses=ADDRESSES,
        made_at=100.0,
    )


def _why(warm: WarmPeer, **changes: Any) -> str | None:
    now = changes.pop("now", 130.0)
    given: dict[str, Any] = {
        "max_age": 60.0,
        "addresses": ADDRESSES,
        "configured": (TURN,),
        "codec": None,
    } | changes
    return warm.unusable(now, **given)


def test_a_fresh_unused_offer_on_the_same_network_serves() -> None:
    assert _why(_warm()) is None


@pytest.mark.parametrize(
    ("pc", "changes", "reason"),
    [
        ({}, {"now": 161.0}, "older than 60 s"),
        ({}, {"addresses": frozenset({"192.168.1.9"})}, "the host's addresses changed"),
        (
            {},
            {"configured": (TURN.model_copy(update={"credential": "b"}),)},
            "the call's ICE servers changed",
        ),
        ({}, {"configured": ()}, "the call's ICE servers changed"),
        ({}, {"codec": "video/H264"}, "the camera's codec changed"),
        ({"signalingState": "stable"}, {}, "no longer an unused offer"),
        ({"connectionState": "closed"}, {}, "no longer an unused offer"),
        ({"iceGatheringState": "gathering"}, {}, "gathering not complete"),
    ],
)
def test_anything_that_would_make_it_fail_sends_the_attempt_cold(
    pc: dict[str, str], changes: dict[str, Any], reason: str
) -> None:
    assert _why(_warm(**pc), **changes) == reason


def test_host_addresses_in_the_loopback_only_mode_are_loopback() -> None:
    assert host_addresses(loopback_only=True) == frozenset({"127.0.0.1"})

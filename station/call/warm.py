"""The next attempt's peer connection, gathered while the call runs (issue 18 item 4).

A re-dial used to start from nothing: ask the hub for the call's TURN servers, probe every
server, make a peer connection and gather its candidates (a TURN allocation alone is two round
trips to the TURN server) before the offer could go to the hub. While an attempt is connected,
the engine now prepares the next one's peer connection in the background, exactly as a cold
attempt makes it (video and audio transceivers in that order, the camera's codec preferences,
the data channel, the jitter buffer), and gathers it. A re-dial takes it, attaches the fresh
camera and microphone (aiortc's ``addTrack`` reuses a transceiver without a track) and posts
the offer it already has. The GP page does the same on its side (``hub/static/gp.js``).

A prepared connection is used only while it can still work; :meth:`WarmPeer.unusable` says
why not, and the attempt then starts cold:

* it is older than ``warm_max_age_seconds`` (a NAT forgets an idle mapping, and with it the
  server-reflexive candidate, after a minute or two);
* the host's addresses changed since it gathered (roamed onto another network: its host
  candidates, and the TURN allocation made from them, belong to the old one);
* the call's TURN servers (from the hub, with their credentials) or the camera's codec differ
  from those it was made with;
* it is no longer an unused offer with its gathering complete.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from station.call.ice import restrict_host_candidates_to_loopback

__all__ = ["WarmPeer", "host_addresses"]


def host_addresses(*, loopback_only: bool) -> frozenset[str]:
    """The addresses aioice would gather host candidates on now."""
    import aioice.ice

    context = restrict_host_candidates_to_loopback() if loopback_only else contextlib.nullcontext()
    with context:
        return frozenset(aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True))


@dataclass
class WarmPeer:
    """A gathered, unused peer connection for the next attempt (see the module docs)."""

    pc: Any
    #: The complete offer (every candidate in it).
    sdp: str
    channel: Any
    #: The servers that answered the probe (the peer connection's configuration).
    servers: list[Any]
    #: The call's servers it was made for, before the probe (frozen models: compared by value,
    #: credentials included).
    configured: tuple[Any, ...]
    #: The camera's pass-through codec it was made for (None: aiortc encodes).
    codec: str | None
    addresses: frozenset[str]
    #: Loop time when its gathering finished.
    made_at: float

    def unusable(
        self,
        now: float,
        *,
        max_age: float,
        addresses: frozenset[str],
        configured: tuple[Any, ...],
        codec: str | None,
    ) -> str | None:
        """Why this connection cannot serve the next attempt now (English, for the log), or
        ``None`` if it can."""
        if self.pc.signalingState != "have-local-offer" or self.pc.connectionState != "new":
            return "no longer an unused offer"
        if self.pc.iceGatheringState != "complete":
            return "gathering not complete"
        if now - self.made_at > max_age:
            return f"older than {max_age:g} s"
        if addresses != self.addresses:
            return "the host's addresses changed"
        if configured != self.configured:
            return "the call's ICE servers changed"
        if codec != self.codec:
            return "the camera's codec changed"
        return None

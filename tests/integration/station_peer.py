"""The station side of a call for tests: a plain aiortc peer and a client of the hub's station API.

The real call engine comes later; these are deliberately small so the tests show exactly what
the station does on the wire: create a room, post a complete offer with who is waiting,
long-poll for the answer, send notices over the data channel, end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import (
    AudioStreamTrack,
    MediaStreamError,
    MediaStreamTrack,
    VideoStreamTrack,
)

from station.call.ice import build_rtc_configuration
from station.keys.room_seal import RoomSealer, link_with_key, new_room_key

__all__ = ["StationHubClient", "StationPeer"]


class StationPeer:
    """An aiortc offerer: test video (aiortc's green frames), silence and a data channel.

    Counts the frames that arrive from the GP. Needs an explicit (empty) ICE server list and,
    in a loopback-only namespace, :func:`station.call.ice.restrict_host_candidates_to_loopback`.
    """

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(build_rtc_configuration([]))
        self.pc.addTrack(AudioStreamTrack())
        self.pc.addTrack(VideoStreamTrack())
        self.channel = self.pc.createDataChannel("control")
        self.video_frames_received = 0
        self.first_video_frame = asyncio.Event()
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()
        self.channel_open = asyncio.Event()
        self.first_frame_at: float | None = None
        self._consumers: list[asyncio.Task[None]] = []
        self.channel.on("open", self.channel_open.set)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self.connected.set()
        elif state in ("closed", "failed"):
            self.closed.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._consumers.append(asyncio.ensure_future(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                if track.kind == "video":
                    self.video_frames_received += 1
                    if self.first_frame_at is None:
                        self.first_frame_at = time.monotonic()
                    self.first_video_frame.set()

    async def create_offer(self) -> str:
        """The complete offer (aiortc gathers every candidate before this returns)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept_answer(self, sdp: str) -> None:
        """Apply the GP's answer."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def send(self, message: dict[str, Any]) -> None:
        """Send one JSON notice to the GP page over the data channel."""
        async with asyncio.timeout(10):
            await self.channel_open.wait()
        self.channel.send(json.dumps(message))

    async def close(self) -> None:
        """Close the peer connection and stop reading tracks."""
        await self.pc.close()
        for task in self._consumers:
            task.cancel()
        for task in self._consumers:
            with contextlib.suppress(asyncio.CancelledError):
                await task


class StationHubClient:
    """The station's calls to the hub's rendezvous API (interim shared bearer token)."""

    def __init__(
        self, base_url: str, token: str, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(40.0),
            transport=transport,
        )
        self.sealers: dict[str, RoomSealer] = {}

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.http.aclose()

    async def create_room(self, starts_at: Any, ends_at: Any, **extra: Any) -> dict[str, Any]:
        """Create the room for a booking; returns the hub's JSON (room id, GP link, window)
        and, as stationd adds it, ``gp_link``: the link with the room's key after the token."""
        response = await self.http.post(
            "/api/station/rooms",
            json={"starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat(), **extra},
        )
        response.raise_for_status()
        created = dict(response.json())
        key = new_room_key()
        self.sealers[created["room_id"]] = RoomSealer(key)
        created["gp_link"] = link_with_key(created["gp_url"], key)
        return created

    def opened(self, room_id: str, box: dict[str, Any] | None, purpose: str) -> Any:
        """What a sealed box of this room holds (as the GP page opens it)."""
        assert box is not None and set(box) == {"sealed"}, box
        return self.sealers[room_id].open(purpose, box["sealed"])

    async def post_offer(
        self, room_id: str, sdp: str, residents: list[dict[str, Any]] | None
    ) -> int:
        """Post a complete offer (and who is waiting, sealed as stationd seals it)."""
        body: dict[str, Any] = {"type": "offer", "sdp": sdp}
        if residents is not None:
            sealed = self.sealers[room_id].seal("waiting", {"residents": residents})
            body["waiting"] = {"sealed": sealed}
        response = await self.http.post(f"/api/station/rooms/{room_id}/offer", json=body)
        response.raise_for_status()
        return int(response.json()["generation"])

    async def wait_answer(self, room_id: str, generation: int) -> str:
        """Long-poll until the GP answers offer ``generation``."""
        while True:
            response = await self.http.get(
                f"/api/station/rooms/{room_id}/answer",
                params={"generation": generation, "timeout": 20},
            )
            if response.status_code == 204:
                continue
            response.raise_for_status()
            return str(response.json()["sdp"])

    async def wait_room(
        self, room_id: str, until: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        """Long-poll the room until ``until(view)`` holds."""
        since = -1
        while True:
            response = await self.http.get(
                f"/api/station/rooms/{room_id}", params={"since": since, "timeout": 20}
            )
            response.raise_for_status()
            view = dict(response.json())
            if until(view):
                return view
            if view["state"] in ("ended", "revoked", "expired"):
                raise AssertionError(f"room is {view['state']}; it will not change any more")
            since = int(view["version"])

    async def current_resident(self, room_id: str, shown: dict[str, Any]) -> None:
        """Post the current resident, sealed as stationd seals it."""
        sealed = self.sealers[room_id].seal("current_resident", shown)
        await self.notice(room_id, {"type": "current_resident", "sealed": sealed})

    async def notice(self, room_id: str, notice: dict[str, Any]) -> None:
        """Post the hub's fallback copy of a data-channel notice."""
        response = await self.http.post(f"/api/station/rooms/{room_id}/notices", json=notice)
        response.raise_for_status()

    async def end(self, room_id: str) -> None:
        """End the call."""
        response = await self.http.post(f"/api/station/rooms/{room_id}/end")
        response.raise_for_status()

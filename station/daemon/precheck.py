"""The pre-call check's hardware: camera thumbnail, microphone level, test tone, network.

Staff aim the camera, check the microphone and loudspeaker and see that the network and TURN
answer, *before* the GP is called. The endpoints (``station.daemon.routes.precheck``) serve
the staff UI during ``PRE_CALL_CHECK`` only (the camera is live, the LED says so); in any
other state they answer 409, and the devices they opened are released the moment the session
leaves the check (the call engine opens its own tracks when the call is dialled).

- ``GET  /v1/precheck/frame?width=W&height=H``: one small RGB thumbnail (``rgb24``, base64)
  of the newest camera picture, downscaled in stationd so the terminal gets a few KiB.
- ``GET  /v1/precheck/microphone``: the level over a short stretch (dBFS RMS and peak).
- ``POST /v1/precheck/tone``: play a short test tone on the loudspeaker.
- ``GET  /v1/precheck/network``: can the hub be reached (a TCP connect, bounded), and which
  path to the TURN server works: a real TURN allocation over each configured URL at once
  (UDP, TCP, TLS on 443; :func:`station.call.probe.probe_turn_paths`), the first that works
  in the configured order being the one the call will take (the call engine's probe picks
  the same way). Each with a hint (the catalogue's). The TURN servers are the call engine's
  (the signed configuration's, or ``KONTAKTSTATION_ICE_SERVERS``), never another list.

The camera and microphone stay open between requests (so a live thumbnail costs one frame,
not one device open) and close after :data:`IDLE_CLOSE_SECONDS` without requests.
A missing camera or speakerphone (``station.daemon.hardware``) is refused at once with 503
``hardware_missing``, its reason and what to check, instead of a timeout or "restart".

No personal data passes here: pictures go to the staff UI only while it is unlocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast
from urllib.parse import urlsplit

from hardware.camera.base import passthrough_decoder
from station.core.session import SessionState, Transition
from station.daemon.errors import ApiError
from station.daemon.hardware import refuse_if_missing
from station.i18n import N_, _
from stationapi import models as m

__all__ = [
    "HUB_URL_ENV",
    "ICE_SERVERS_ENV",
    "IDLE_CLOSE_SECONDS",
    "MAX_THUMB",
    "TURN_ALLOCATION_TIMEOUT",
    "NetworkTarget",
    "PreCheck",
    "network_targets",
]

_log = logging.getLogger(__name__)

#: Devices opened for the check are released after this long without a request.
IDLE_CLOSE_SECONDS: Final = 3.0
#: Where the hub is (``https://host[:port]``); the signed configuration will set it.
HUB_URL_ENV: Final = "KONTAKTSTATION_HUB_URL"
#: STUN/TURN servers: a JSON list of ``{"urls": ..., "username": ..., "credential": ...}``.
ICE_SERVERS_ENV: Final = "KONTAKTSTATION_ICE_SERVERS"
#: The largest thumbnail, either way (a few KiB through the socket).
MAX_THUMB: Final = 160
_FRAME_TIMEOUT: Final = 3.0
_CONNECT_TIMEOUT: Final = 2.0
#: A TURN allocation not granted within this is a path that does not work (coturn answers
#: in milliseconds; aioice's own retransmissions over UDP would take 9.5 s).
TURN_ALLOCATION_TIMEOUT: Final = 3.0

_HINT_HUB = N_(
    "The station cannot reach the municipality's server. Check that the network cable is "
    "plugged in, or that Wi-Fi is on. Contact IT if that does not help."
)
_HINT_UNCONFIGURED = N_("The station has no network set-up from IT yet. Contact IT.")
_HINT_TURN_NONE = N_(
    "No way through to the video server (TURN) works: not UDP, not TCP, not TLS on port 443. "
    "The care home's firewall may block it. The call will probably fail. Contact IT."
)
#: The TURN check's value when no path works (the labels "UDP", "TCP", "TLS 443" are not
#: translated: they are the names IT and firewalls use).
_PATH_NONE = N_("none")


@dataclass(frozen=True, slots=True)
class NetworkTarget:
    """Something the call needs to reach: the hub or a TURN server."""

    name: str
    host: str
    port: int


def network_targets(environ: Mapping[str, str]) -> list[NetworkTarget]:
    """The hub and the STUN/TURN servers from the call configuration's environment
    (``KONTAKTSTATION_HUB_URL``, ``KONTAKTSTATION_ICE_SERVERS``), in a fixed order."""
    targets: list[NetworkTarget] = []
    hub = environ.get(HUB_URL_ENV, "").strip()
    if hub:
        parts = urlsplit(hub)
        if parts.hostname:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            targets.append(NetworkTarget("hub", parts.hostname, port))
    try:
        servers = json.loads(environ.get(ICE_SERVERS_ENV, "") or "[]")
    except ValueError:
        servers = []
    urls: list[str] = []
    for server in servers if isinstance(servers, list) else []:
        raw = server.get("urls") if isinstance(server, dict) else None
        urls.extend([raw] if isinstance(raw, str) else [u for u in raw or [] if isinstance(u, str)])
    for url in urls:
        scheme, _, rest = url.strip().partition(":")
        if scheme not in ("turn", "turns"):
            continue  # STUN answers over UDP only; the call engine probes it itself
        host, _, port_text = rest.split("?", 1)[0].rpartition(":")
        if not host:
            host, port_text = port_text, ""
        port = int(port_text) if port_text.isdigit() else (5349 if scheme == "turns" else 3478)
        targets.append(NetworkTarget("turn", host.strip("[]"), port))
    return targets


class PreCheck:
    """The check's devices, opened on first use and released when the check ends.

    ``hardware`` is the daemon's hardware link; only one with a ``hw`` bundle (the real
    link, or the shipped fakes) has a camera and microphone to offer.
    """

    def __init__(
        self, service: Any, hardware: Any, environ: Mapping[str, str] | None = None
    ) -> None:
        self._service = service
        self._hardware = hardware
        self._environ = dict(os.environ if environ is None else environ)
        #: The TURN servers the next call will use; stationd points it at the call
        #: controller's configuration. Unset: ``KONTAKTSTATION_ICE_SERVERS``.
        self.ice_servers: Callable[[], Sequence[Any] | None] | None = None
        self._camera: Any = None
        self._microphone: Any = None
        self._decoder: Any = None
        self._last_use = 0.0
        self._lock = asyncio.Lock()
        self._reaper: asyncio.Task[None] | None = None
        service.session.subscribe(self._on_transition)

    # ------------------------------------------------------------------ devices

    @property
    def _hw(self) -> Any:
        hw = getattr(self._hardware, "hw", None)
        if hw is None:
            raise ApiError.unavailable(
                "no camera or microphone: stationd runs without hardware",
                N_("The station's equipment is not connected. Contact IT."),
            )
        return hw

    def require_check(self) -> None:
        """409 unless the session is in the pre-call check; keeps the devices open a while.

        The caller is authenticated already (``station.daemon.routes.deps.Staff``).
        """
        if self._service.session.state is not SessionState.PRE_CALL_CHECK:
            raise ApiError.conflict(
                "the pre-call check is not running",
                N_("The pre-call check is not running. Start it from today's appointments."),
            )
        self._last_use = time.monotonic()
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap_when_idle())

    async def _reap_when_idle(self) -> None:
        while True:
            await asyncio.sleep(IDLE_CLOSE_SECONDS / 3)
            if time.monotonic() - self._last_use >= IDLE_CLOSE_SECONDS:
                await self.close()
                return

    def _on_transition(self, transition: Transition) -> None:
        if transition.to_state is not SessionState.PRE_CALL_CHECK and (
            self._camera is not None or self._microphone is not None
        ):
            # Listeners are synchronous: stop the tracks now, release them on the loop.
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().create_task(self.close())

    async def close(self) -> None:
        """Release the camera and microphone (safe to call any time)."""
        reaper, self._reaper = self._reaper, None
        if reaper is not None and reaper is not asyncio.current_task():
            reaper.cancel()
        camera, self._camera = self._camera, None
        microphone, self._microphone = self._microphone, None
        self._decoder = None
        for track in (camera, microphone):
            if track is None:
                continue
            aclose = getattr(track, "aclose", None)
            with contextlib.suppress(Exception):
                if callable(aclose):
                    await asyncio.wait_for(aclose(), 2.0)
                else:
                    track.stop()

    # ------------------------------------------------------------------ camera

    async def thumbnail(self, width: int, height: int) -> tuple[int, int, bytes]:
        """The newest picture scaled to fit ``width`` x ``height``: (w, h, rgb24 bytes)."""
        import av

        async with self._lock:
            if self._camera is None:
                self._camera = self._hw.new_camera()
                with contextlib.suppress(Exception):
                    self._camera.request_keyframe()
            frame: Any = None
            deadline = time.monotonic() + _FRAME_TIMEOUT
            while frame is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                item = await asyncio.wait_for(self._camera.recv(), left)
                if isinstance(item, av.VideoFrame):
                    frame = item
                else:  # an encoded passthrough camera (the Pi's H.264): decode it here
                    if self._decoder is None:
                        self._decoder = passthrough_decoder(self._camera.passthrough_codec)
                    decoded = self._decoder.decode(item)
                    frame = decoded[-1] if decoded else None
        scale = min(width / frame.width, height / frame.height, 1.0)
        w, h = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
        small = frame.reformat(width=w, height=h, format="rgb24")
        array = small.to_ndarray()
        return w, h, array[:, :, :3].tobytes()

    # ------------------------------------------------------------------ audio

    async def microphone_level(self, seconds: float) -> tuple[float, float]:
        """(RMS, peak) in dBFS over ``seconds`` of the microphone."""
        from hardware.audio.level import measure_level

        async with self._lock:
            if self._microphone is None:
                self._microphone = self._hw.new_microphone()
            reading = await measure_level(self._microphone, seconds, seconds + 2.0)
        return reading.rms_dbfs, reading.peak_dbfs

    async def tone(self, seconds: float) -> None:
        """Start a test tone on the loudspeaker (returns at once; it ends by itself)."""
        from hardware.audio.fake import tone_track

        await self._hw.speaker.start(tone_track(seconds, 440.0, -12.0))

    # ------------------------------------------------------------------ network

    def _servers(self) -> list[Any]:
        """The call engine's ICE servers (or the environment's, before the engine exists)."""
        servers = self.ice_servers() if self.ice_servers is not None else None
        if servers is not None:
            return list(servers)
        from station.call.ice import IceServerConfig

        try:
            raw = json.loads(self._environ.get(ICE_SERVERS_ENV, "") or "[]")
            return [IceServerConfig.model_validate(s) for s in raw]
        except ValueError:
            # The type only: a validation message could quote a TURN credential.
            _log.warning("%s cannot be read", ICE_SERVERS_ENV)
            return []

    async def network(self) -> tuple[list[dict[str, Any]], str | None, list[dict[str, Any]]]:
        """The hub's check and the TURN check; the path the call will take; every path's result.

        With neither a hub nor a TURN server configured: one failing "network" result.
        """
        hubs = [t for t in network_targets(self._environ) if t.name == "hub"]
        servers = self._servers()
        has_turn = any(
            url.startswith(("turn:", "turns:")) for server in servers for url in server.urls
        )
        if not hubs and not has_turn:
            return (
                [
                    {
                        "name": "network",
                        "ok": False,
                        "detail": f"no {HUB_URL_ENV} or {ICE_SERVERS_ENV} configured",
                        "hint": _(_HINT_UNCONFIGURED),
                    }
                ],
                None,
                [],
            )

        async def probe(target: NetworkTarget) -> dict[str, Any]:
            started = time.monotonic()
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(target.host, target.port), _CONNECT_TIMEOUT
                )
            except (OSError, TimeoutError) as exc:
                return {
                    "name": target.name,
                    "ok": False,
                    "detail": f"{target.host}:{target.port} unreachable: {type(exc).__name__}",
                    "hint": _(_HINT_HUB),
                }
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            ms = (time.monotonic() - started) * 1000
            return {
                "name": target.name,
                "ok": True,
                "detail": f"{target.host}:{target.port} answered in {ms:.0f} ms",
                "hint": "",
            }

        async def turn() -> tuple[list[dict[str, Any]], str | None, list[dict[str, Any]]]:
            if not has_turn:
                return [], None, []
            from station.call.probe import probe_turn_paths

            paths = await probe_turn_paths(servers, TURN_ALLOCATION_TIMEOUT)
            chosen = next((p for p in paths if p.ok), None)
            summary = "; ".join(f"{p.label}: {p.detail}" for p in paths)
            check = {
                "name": "turn",
                "ok": chosen is not None,
                "detail": summary,
                "hint": "" if chosen is not None else _(_HINT_TURN_NONE),
                "value": chosen.label if chosen is not None else _(_PATH_NONE),
            }
            results = [
                {
                    "transport": p.transport,
                    "port": p.port,
                    "label": p.label,
                    "ok": p.ok,
                    "detail": p.detail,
                    "ms": p.ms,
                }
                for p in paths
            ]
            return [check], (chosen.transport if chosen is not None else "none"), results

        hub_checks, (turn_checks, path, paths) = await asyncio.gather(
            asyncio.gather(*(probe(t) for t in hubs)), turn()
        )
        return [*hub_checks, *turn_checks], path, paths

    # ------------------------------------------------------------------ the endpoints' answers

    async def frame(self, width: int, height: int) -> m.FrameOut:
        """``GET /v1/precheck/frame``: the camera's newest picture as a thumbnail."""
        refuse_if_missing(self._hardware, ("camera",), "pre-call camera check")
        try:
            w, h, rgb = await self.thumbnail(width, height)
        except TimeoutError:
            raise ApiError.unavailable(
                "no picture from the camera in time",
                N_("The camera sends no pictures. Check that it is plugged in, and try again."),
            ) from None
        except ApiError:
            raise
        except Exception as exc:
            _log.warning("pre-check frame failed: %s", type(exc).__name__)
            await self.close()
            raise ApiError.unavailable(
                f"camera failed: {type(exc).__name__}",
                N_(
                    "The camera does not work. Check that it "
                    "is plugged in, and restart the station."
                ),
            ) from None
        return m.FrameOut(width=w, height=h, format="rgb24", data=rgb)

    async def microphone(self) -> m.MicrophoneLevelOut:
        """``GET /v1/precheck/microphone``: the level over 0.2 s."""
        refuse_if_missing(self._hardware, ("audio",), "pre-call microphone check")
        try:
            rms, peak = await self.microphone_level(0.2)
        except Exception as exc:
            await self.close()
            raise ApiError.unavailable(
                f"microphone failed: {type(exc).__name__}",
                N_(
                    "The microphone sends no sound. "
                    "Check that the loudspeaker with microphone is plugged in."
                ),
            ) from None
        return m.MicrophoneLevelOut(rms_dbfs=round(rms, 1), peak_dbfs=round(peak, 1))

    async def play_test_tone(self) -> m.ToneOut:
        """``POST /v1/precheck/tone``: one second of the test tone."""
        refuse_if_missing(self._hardware, ("audio",), "pre-call test tone")
        try:
            await self.tone(1.0)
        except Exception as exc:
            raise ApiError.unavailable(
                f"loudspeaker failed: {type(exc).__name__}",
                N_("The loudspeaker cannot play sound. Check that it is plugged in and on."),
            ) from None
        return m.ToneOut(playing=True, seconds=1.0)

    async def network_report(self) -> m.NetworkOut:
        """``GET /v1/precheck/network``: every target's answer, and the path to TURN."""
        raw, path, paths = await self.network()
        checks = [m.NetworkCheckOut.model_validate(c) for c in raw]
        if path is not None:
            # Names the path, never a credential or a person.
            _log.info("pre-call check: TURN path %s (%s)", path, checks[-1].detail)
        return m.NetworkOut(
            ok=all(c.ok for c in checks),
            checks=checks,
            turn_path=cast(Any, path),
            turn_paths=[m.TurnPathOut.model_validate(p) for p in paths],
        )

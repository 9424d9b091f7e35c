"""One attempt at the call: a peer connection, from the probe of the STUN/TURN servers to lost
media.

An attempt gathers a complete offer (bounded; an offer without a relay candidate when TURN is
configured is a clear error), posts it and waits for the GP's answer, then watches media:
no sign of life from the GP (media or the page's heartbeat) for ``media_timeout_seconds``,
the page's goodbye, or frozen video despite keyframe requests ends it, and the supervisor
(:mod:`station.call.engine`) dials again with a new one. Statistics are sampled meanwhile,
and the call adapts to them (:mod:`station.call.adapt`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpCodecCapability, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from hardware.camera.base import BitrateControl, forward_keyframe_requests
from station.call.adapt import LinkAdaptation, watch_remb
from station.call.errors import CallError, GatheringFailed
from station.call.ice import build_rtc_configuration, restrict_host_candidates_to_loopback
from station.call.ladder import VideoLadder
from station.call.liveness import (
    GpMedia,
    StallAction,
    VideoWatch,
    answer_sends_video,
    answer_video_codec,
    parse_gp_message,
    request_keyframe,
)
from station.call.media import (
    CameraFeed,
    MicrophoneGate,
    VolumeTrack,
    pump_remote_video,
)
from station.call.probe import probe_ice_servers
from station.call.quality import selected_pair
from station.call.roundtrip import watch_round_trips
from station.call.state import END_TIMEOUT, Attempt, CallPhase
from station.call.tuning import use_station_jitter_buffers
from station.call.warm import WarmPeer, host_addresses

__all__ = ["AttemptRunner", "passthrough_codec_preferences"]

_log = logging.getLogger(__name__)

#: How often the attempt checks its media clock and connection state.
_WATCH_TICK = 0.1
#: Frozen video is judged only while audio or the page's heartbeat (1/s) came this recently:
#: otherwise the whole connection is silent, which is the media watchdog's case.
_OTHERS_ALIVE_WITHIN = 1.5
#: Nothing at all (media, the page's heartbeat) from the GP for this long is a pause of the
#: whole connection, not a link too poor for video (audio alone is 50 packets a second).
_PAUSE_SILENCE = 0.4
#: The hub has the GP page's goodbye but the data channel did not bring it: believed once
#: nothing (media, heartbeat) has come from the GP for this long (a live page sends 1/s).
_HUB_GOODBYE_SILENCE = 0.5


class AttemptRunner(LinkAdaptation):
    """Runs one attempt at a time for the call's supervisor (see the module docs)."""

    async def _call_turn_servers(self, hub: Any) -> tuple[Any, ...]:
        """The room's per-call TURN servers (none if the hub has none or cannot say now)."""
        assert self.room_id is not None
        try:
            view = await hub.room(self.room_id)
        except CallError:
            return ()  # the attempt's own requests report the hub's trouble
        return tuple(view.ice_servers)

    async def _probed_servers(
        self, configured: tuple[Any, ...], *, report: bool = True
    ) -> list[Any]:
        """The servers of ``configured`` that answer a short probe."""
        if not configured:
            return []
        servers, results = await probe_ice_servers(configured, self.config.server_probe_seconds)
        for result in results:
            if report and not result.reachable:
                self._publish("ice_server_unreachable", url=result.url, detail=result.detail)
        return list(servers)

    def _new_pc(self, servers: Sequence[Any], codec: str | None) -> tuple[RTCPeerConnection, Any]:
        """A peer connection as every attempt starts, cold or prepared, and its data channel:
        a video and an audio transceiver (the tracks come later: aiortc's ``addTrack`` takes
        a transceiver without one), exactly the camera's ``codec`` for pre-encoded packets
        (the Pi 4's hardware H.264, with its retransmission stream), the frame-end video
        buffer, and the ``control`` channel."""
        configuration = build_rtc_configuration(servers, relay_only=self.config.relay_only)
        pc = RTCPeerConnection(configuration)
        video = pc.addTransceiver("video", "sendrecv")
        if codec:
            video.setCodecPreferences(passthrough_codec_preferences(codec))
        pc.addTransceiver("audio", "sendrecv")
        channel = pc.createDataChannel("control")
        use_station_jitter_buffers(pc)
        return pc, channel

    async def _take_warm(
        self, hub: Any, codec: str | None
    ) -> tuple[WarmPeer | None, tuple[Any, ...] | None]:
        """The prepared peer connection, if it can serve this attempt (:mod:`station.call.warm`),
        and the room's TURN servers if the hub was asked for them (``None`` if not).

        It is taken only once the hub answered just now: while the network is down the
        attempt fails at that request and the prepared connection waits for the next one.
        """
        await self._stop_warming()
        warm, self._warm = self._warm, None
        if warm is None:
            return None, None
        assert self.room_id is not None
        try:
            view = await hub.room(self.room_id)
        except BaseException:
            self._warm = warm  # kept for the next attempt
            raise
        room_servers = tuple(view.ice_servers)
        configured = (*room_servers, *self.config.ice_servers)
        why = warm.unusable(
            asyncio.get_running_loop().time(),
            max_age=self.config.warm_max_age_seconds,
            addresses=host_addresses(loopback_only=self.config.loopback_only),
            configured=configured,
            codec=codec,
        )
        if why is not None:
            _log.info("call: the prepared peer connection is not used: %s", why)
            self._close_warm(warm)
            return None, room_servers
        return warm, room_servers

    async def _run_attempt(self) -> bool:
        """Dial once; returns when media is lost (True if it flowed at all)."""
        assert self.room_id is not None
        self._attempts += 1
        hub = self._hub()
        camera = self._media.new_camera()
        try:
            codec = getattr(camera, "passthrough_codec", None)
            warm, room_servers = await self._take_warm(hub, codec)
            if warm is None:
                if room_servers is None:
                    room_servers = await self._call_turn_servers(hub)
                # This call's TURN servers with short-lived credentials from the hub come
                # first (aiortc uses the first TURN server), then IT's configured ones.
                configured = (*room_servers, *self.config.ice_servers)
                servers = await self._probed_servers(configured)
                pc, channel = self._new_pc(servers, codec)
            else:
                servers, pc, channel = warm.servers, warm.pc, warm.channel
        except BaseException:
            camera.stop()
            await hub.aclose()
            raise
        attempt = Attempt(number=self._attempts, pc=pc, hub=hub, warm=warm is not None)
        self._attempt = attempt
        self._selected_pair = None
        self._set_phase(CallPhase.DIALING if not self._admitted else CallPhase.RECONNECTING)
        self._add_tracks(attempt, camera, channel)
        self._listen_to_gp(attempt)
        if warm is None:
            sdp = await self._gather(pc)
            self._check_candidates(sdp, servers)
        else:
            sdp = warm.sdp
            _log.info(
                "call attempt %d: the prepared peer connection (gathered %.1f s ago)",
                attempt.number,
                asyncio.get_running_loop().time() - warm.made_at,
            )
        waiting = None
        if self._attempts == 1 and self._residents and self._seal is not None:
            waiting = self._seal("waiting", {"residents": [r.for_hub() for r in self._residents]})
        self._generation = await hub.post_offer(self.room_id, sdp, waiting)
        if not self._admitted:
            self._set_phase(CallPhase.WAITING_FOR_GP, generation=self._generation)
        answer = None
        while answer is None:
            answer = await hub.answer(
                self.room_id, self._generation, wait=self.config.hub_long_poll_seconds
            )
        if not self._admitted:
            self._admitted = True
            try:
                self._observer.admitted()
            except Exception:
                _log.exception("call observer failed on admitted")
        # An answer is the GP's page, there and working: a GP who left is back.
        self._hub_says_gp_left = False
        self._gp_returned()
        attempt.sends_video = answer_sends_video(answer)
        feed = attempt.camera
        passthrough = getattr(feed.camera, "passthrough_codec", None) if feed else None
        chosen = answer_video_codec(answer)
        if feed is not None and passthrough and chosen is not None:
            # The GP's browser has no decoder for the camera's codec (Debian's Firefox has no
            # H.264): the feed decodes the camera's packets, aiortc encodes them in software.
            feed.decode_packets = chosen.lower() != passthrough.split("/")[-1].lower()
            if feed.decode_packets:
                _log.info("call: the GP takes %s; decoding the camera's %s", chosen, passthrough)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        self._set_phase(CallPhase.CONNECTING, generation=self._generation)
        attempt.tasks.append(asyncio.create_task(self._sample_stats(attempt), name="call-stats"))
        return await self._watch_media(attempt)

    # ------------------------------------------------------------------ the prepared next attempt

    def _start_warming(self) -> None:
        """Prepare the next attempt's peer connection in the background (a connected call)."""
        if not self.config.prewarm or self._warm is not None:
            return
        if self._warming is not None and not self._warming.done():
            return
        self._warming = asyncio.create_task(self._keep_warm(), name="call-prewarm")
        self._background.add(self._warming)
        self._warming.add_done_callback(self._background.discard)

    async def _stop_warming(self) -> None:
        """Stop preparing; a connection being gathered is closed before this returns."""
        warming, self._warming = self._warming, None
        if warming is not None and not warming.done():
            warming.cancel()
            await asyncio.wait({warming})

    async def _keep_warm(self) -> None:
        """Keep one prepared peer connection, made again when it grows too old."""
        loop = asyncio.get_running_loop()
        while self._attempt is not None and self.active:
            warm = self._warm
            if warm is None or loop.time() - warm.made_at > self.config.warm_max_age_seconds:
                self._warm = None
                if warm is not None:
                    self._close_warm(warm)
                try:
                    self._warm = await self._prepare_warm()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the next re-dial starts cold and reports it
                    _log.info("call: could not prepare the next peer connection: %s", exc)
                    return
            await asyncio.sleep(max(1.0, self.config.warm_max_age_seconds / 4))

    async def _prepare_warm(self) -> WarmPeer:
        hub = self._hub()
        try:
            configured = (*await self._call_turn_servers(hub), *self.config.ice_servers)
        finally:
            await hub.aclose()
        servers = await self._probed_servers(configured, report=False)
        codec = self._camera_codec
        addresses = host_addresses(loopback_only=self.config.loopback_only)
        pc, channel = self._new_pc(servers, codec)
        try:
            started = asyncio.get_running_loop().time()
            sdp = await self._gather(pc)
            if not self._acceptable_candidates(sdp, servers):
                raise GatheringFailed("the prepared offer lacks the candidates a cold one needs")
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(pc.close())
            raise
        made_at = asyncio.get_running_loop().time()
        _log.info("call: next peer connection prepared in %.0f ms", (made_at - started) * 1000)
        return WarmPeer(
            pc=pc,
            sdp=sdp,
            channel=channel,
            servers=servers,
            configured=configured,
            codec=codec,
            addresses=addresses,
            made_at=made_at,
        )

    def _close_warm(self, warm: WarmPeer) -> None:
        task = asyncio.create_task(warm.pc.close(), name="call-prewarm-close")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _drop_warm(self) -> None:
        """The call is over: no prepared connection outlives it."""
        await self._stop_warming()
        warm, self._warm = self._warm, None
        if warm is not None:
            try:
                async with asyncio.timeout(END_TIMEOUT):
                    await asyncio.shield(warm.pc.close())
            except Exception:
                _log.warning("call: the prepared peer connection did not close cleanly")

    def _add_tracks(self, attempt: Attempt, camera: Any, channel: Any) -> None:
        """The camera and microphone on the transceivers of ``attempt``'s connection (made by
        :meth:`_new_pc`), and its data ``channel``."""
        pc = attempt.pc
        feed = CameraFeed(
            camera,
            self._sink,
            self_view_fps=self.config.self_view_fps,
            enabled=lambda: not self.camera_off,
        )
        attempt.camera = feed
        attempt.tracks.append(feed)
        microphone = MicrophoneGate(self._media.new_microphone(), muted=lambda: self.muted)
        attempt.tracks.append(microphone)
        video_sender = pc.addTrack(feed)
        attempt.video_sender = video_sender
        codec = getattr(camera, "passthrough_codec", None)
        top = camera.max_bitrate if codec and isinstance(camera, BitrateControl) else None
        attempt.ladder = VideoLadder(top_bitrate=top)
        watch_remb(video_sender, attempt)
        watch_round_trips(video_sender, attempt.round_trips)
        self._apply_audio_only(attempt)
        watch_round_trips(pc.addTrack(microphone), attempt.round_trips)
        self._camera_codec = codec
        if codec:
            # Pre-encoded packets: the GP's keyframe requests must reach the encoder.
            forward_keyframe_requests(video_sender, camera)
        attempt.channel = channel
        channel.on("open", lambda: self._on_channel_open(attempt))

        def on_track(track: MediaStreamTrack) -> None:
            if self._attempt is not attempt:
                return
            if track.kind == "video":
                attempt.tasks.append(
                    asyncio.create_task(
                        pump_remote_video(track, self._sink, attempt.clock), name="call-video"
                    )
                )
            elif track.kind == "audio":
                volume = VolumeTrack(track, attempt.clock, volume=lambda: self.volume)
                attempt.tracks.append(volume)
                attempt.tasks.append(
                    asyncio.create_task(self._media.speaker.start(volume), name="call-speaker")
                )

        pc.on("track", on_track)

    async def _gather(self, pc: RTCPeerConnection) -> str:
        offer = await pc.createOffer()
        loopback = (
            restrict_host_candidates_to_loopback()
            if self.config.loopback_only
            else contextlib.nullcontext()
        )
        try:
            with loopback:
                async with asyncio.timeout(self.config.gather_timeout_seconds):
                    await pc.setLocalDescription(offer)
        except TimeoutError:
            raise GatheringFailed(
                f"ICE gathering took longer than {self.config.gather_timeout_seconds:g} s"
            ) from None
        return str(pc.localDescription.sdp)

    def _acceptable_candidates(self, sdp: str, servers: Sequence[Any]) -> bool:
        """Candidates at all, and a relay one when TURN is configured."""
        candidates, turn_configured, has_relay = _candidates(sdp, servers)
        return bool(candidates) and (has_relay or not turn_configured)

    def _check_candidates(self, sdp: str, servers: Sequence[Any]) -> None:
        candidates, turn_configured, has_relay = _candidates(sdp, servers)
        if turn_configured and not has_relay:
            error = GatheringFailed(
                "the TURN server gave no relay address (wrong credentials, or it refused)"
            )
            if self.config.relay_only or not candidates:
                raise error
            # Host/server-reflexive candidates may still do; say so, and go on.
            self._publish("turn_failed", message=str(error), user_message=error.user_message)
        if not candidates:
            raise GatheringFailed("no ICE candidates at all (no network address, no relay)")

    async def _watch_media(self, attempt: Attempt) -> bool:
        loop = asyncio.get_running_loop()
        answered_at = loop.time()
        flowed = False
        video = VideoWatch(self.config.video_stall_seconds, self.config.video_keyframe_wait_seconds)
        video_since = answered_at  # when video was last expected to start
        was_expected = False
        while True:
            await asyncio.sleep(_WATCH_TICK)
            now = loop.time()
            state = attempt.pc.connectionState
            if state in ("failed", "closed"):
                _log.info("call attempt %d: connection %s", attempt.number, state)
                attempt.end_reason = f"connection_{state}"
                return flowed
            # Media or the page's heartbeat: a GP without camera and microphone is alive too.
            last = attempt.last_sign_of_life()
            hub_goodbye = (
                self._hub_says_gp_left and last is not None and now - last > _HUB_GOODBYE_SILENCE
            )
            if attempt.gp.leaving or hub_goodbye:
                _log.info("call attempt %d: the GP page was closed", attempt.number)
                attempt.end_reason = "gp_left"
                return flowed
            if last is None or last < answered_at:
                if now - answered_at > self.config.connect_timeout_seconds:
                    _log.info("call attempt %d: no media after the answer", attempt.number)
                    attempt.end_reason = "no_media"
                    return flowed
                continue
            if now - last > _PAUSE_SILENCE:
                attempt.paused_at = now
            if not flowed:
                flowed = True
                video_since = now
                self._error = None
                self._selected_pair = selected_pair(attempt.pc)
                self._link_judge.connected(now)
                self._set_phase(CallPhase.CONNECTED, selected_pair=self._selected_pair)
                self._start_warming()
            if now - last > self.config.media_timeout_seconds:
                _log.info("call attempt %d: no media for %.1f s", attempt.number, now - last)
                attempt.end_reason = "media_lost"
                return flowed
            expected = attempt.video_expected()
            if expected and not was_expected:
                video_since = now  # the camera (re)started: give it the full stall window
            was_expected = expected
            reference = max(video_since, attempt.clock.last_video_at or video_since)
            others = [t for t in (attempt.clock.last_audio_at, attempt.gp.heard_at) if t]
            others_alive = bool(others) and now - max(others) <= _OTHERS_ALIVE_WITHIN
            action = video.judge(
                now, expected=expected, reference=reference, others_alive=others_alive
            )
            if action is StallAction.KEYFRAME:
                await self._request_keyframe(attempt, video.requests, now - reference)
            elif action is StallAction.RECOVERED:
                _log.info("call attempt %d: video moves again", attempt.number)
                self._video_stalled = False
                self._publish("video_recovered", attempt=self._attempts)
            elif action is StallAction.REDIAL:
                _log.info(
                    "call attempt %d: video frozen for %.1f s despite %d keyframe requests",
                    attempt.number,
                    now - reference,
                    video.requests,
                )
                self._video_stalled = False
                attempt.end_reason = "video_frozen"
                return flowed

    async def _request_keyframe(self, attempt: Attempt, request: int, frozen_for: float) -> None:
        self._keyframe_requests += 1
        if request == 1:
            _log.info(
                "call attempt %d: no video for %.1f s while the GP is heard; asking for a keyframe",
                attempt.number,
                frozen_for,
            )
            self._video_stalled = True
            self._publish("video_stalled", attempt=self._attempts, frozen_for=round(frozen_for, 1))
        try:
            await request_keyframe(attempt.pc)
        except Exception as exc:  # a closing transport: the watchdog decides what follows
            _log.debug("keyframe request failed: %s", type(exc).__name__)

    def _listen_to_gp(self, attempt: Attempt) -> None:
        """The GP page's heartbeats and goodbye on this attempt's data channel."""
        channel = attempt.channel
        if channel is not None:
            channel.on("message", lambda message: self._on_gp_message(attempt, message))

    def _on_gp_message(self, attempt: Attempt, text: Any) -> None:
        if self._attempt is not attempt:
            return
        message = parse_gp_message(text)
        if message is None:
            return
        attempt.gp.heard_at = asyncio.get_running_loop().time()
        kind = message.get("type")
        if kind == "gp_alive":
            media = GpMedia(video=message.get("video") is True, audio=message.get("audio") is True)
            attempt.gp.media = media
            if media != self._gp_media:
                self._gp_media = media
                self._publish("gp_media", **media.as_json())
        elif kind == "gp_leaving":
            attempt.gp.leaving = True
        elif kind == "audio_only" and isinstance(message.get("on"), bool):
            self.set_audio_only(message["on"], by="gp")

    async def _close_attempt(self) -> None:
        """Tear the attempt down completely, even when the caller is cancelled meanwhile.

        A hang-up cancels the supervisor, often while it is closing an attempt that just
        ended; an interrupted close would leave the peer connection's sockets and the
        attempt's hub connection open. The close finishes first, then the cancellation goes on.
        """
        attempt, self._attempt = self._attempt, None
        if attempt is None:
            return
        closing = asyncio.ensure_future(self._teardown(attempt))
        try:
            await asyncio.shield(closing)
        except asyncio.CancelledError:
            await closing
            raise

    async def _teardown(self, attempt: Attempt) -> None:
        self._remote_frames += attempt.clock.video_frames
        for task in attempt.tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await self._media.speaker.stop()
        for task in attempt.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        try:
            async with asyncio.timeout(END_TIMEOUT):
                await attempt.pc.close()
        except Exception:
            _log.warning("call attempt %d: peer connection did not close cleanly", attempt.number)
        for track in attempt.tracks:
            with contextlib.suppress(Exception):
                track.stop()
        await attempt.hub.aclose()


def _candidates(sdp: str, servers: Sequence[Any]) -> tuple[list[str], bool, bool]:
    """The offer's candidate lines, whether a TURN server is configured, whether a relay
    candidate is among them."""
    candidates = [line for line in sdp.splitlines() if line.startswith("a=candidate:")]
    turn_configured = any(
        url.startswith(("turn:", "turns:")) for server in servers for url in server.urls
    )
    return candidates, turn_configured, any(" typ relay" in line for line in candidates)


def passthrough_codec_preferences(mime_type: str) -> list[RTCRtpCodecCapability]:
    """The video codec preferences for a camera that sends ``mime_type`` packets as they are.

    Every variant aiortc has of that codec, then VP8 as a fallback for a browser without it
    (Debian's Firefox has no H.264; the feed then decodes the camera's packets and aiortc
    encodes VP8 in software), then ``video/rtx``: aiortc pairs an RTX format
    with each preferred codec (``apt``) only when RTX is among the preferences. With RTX
    negotiated, Chromium sends its bandwidth-probe padding on the RTX stream instead of the
    video stream, and lost packets can be resent in both directions (NACK, RFC 4588).
    """
    codecs = RTCRtpSender.getCapabilities("video").codecs
    wanted = [c for c in codecs if c.mimeType.lower() == mime_type.lower()]
    if not wanted:
        raise ValueError(f"aiortc cannot send {mime_type}")
    fallback = [c for c in codecs if c.mimeType.lower() == "video/vp8" and c not in wanted]
    return wanted + fallback + [c for c in codecs if c.mimeType.lower() == "video/rtx"]

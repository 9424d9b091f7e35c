"""The station as assembled on a Pi 4: hardware H.264 passed through to a GP in Chromium.

The camera is the real :class:`Picamera2Camera` on the shipped fake picamera2 (libx264 stands
in for the Pi's encoder), inside the real stationd with its call engine, the real hub and its
GP page in headless Chromium; frames for the screen go to the real shared-memory sink of the
video surface. For at least 30 s both ways: the station decodes the GP's H.264 without a
single decode error and without a stall, the GP page decodes the station's H.264, and the
self-view (from the camera's ``lores`` stream) reaches the surface's "self" slot with the
camera's stamp in it. Then the GP's keyframe requests and retransmission requests are
provoked by dropping the station's packets on their way out, and must be honoured.

A second, shorter test offers H.264 without RTX, so that Chromium's bandwidth-probe padding
lands on the video stream: the station's jitter buffer must drop it (it used to end PyAV's
stream: 1 frame decoded in 8 s, 236 decode errors).

Each test re-runs itself in a loopback-only network namespace (``netns.py``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiortc.rtp import RtpPacket, is_rtcp
from playwright.async_api import Page

from hardware.camera import FakeCameraState, Picamera2Camera, decode_stamp, fake_picamera2_api
from hardware.camera.stamp import datetime_to_us
from hardware.surface.transport import FrameSlotReader, SharedMemoryFrameSink, frame_file
from station.call import attempt as call_attempt
from station.call.tuning import FrameEndJitterBuffer
from station.daemon.hardware import GpioHardwareLink

from .call_harness import StationD, call_config, running_stationd, wait_for
from .chromium import chromium
from .daemon_harness import fake_hardware
from .hub_server import running_hub
from .netns import delegated_to_loopback_namespace
from .test_call_browser import admitted_call

#: How long both directions must run cleanly, and the windows it is judged in.
CALL_SECONDS = 30.0
WINDOW_SECONDS = 5.0
#: The least frames per window that count as "video keeps arriving" (5 fps; the camera and
#: Chromium's fake device send 30, a frozen stream gives 0 or 1).
MIN_FRAMES_PER_WINDOW = 25

GP_VIDEO_JS = """
async () => {
  const pc = window.kontaktGp.peerConnection();
  if (!pc) return null;
  const stats = await pc.getStats();
  let out = null;
  stats.forEach((s) => {
    if (s.type !== "inbound-rtp" || s.kind !== "video") return;
    const codec = s.codecId ? stats.get(s.codecId) : null;
    out = {
      framesDecoded: s.framesDecoded || 0,
      freezeCount: s.freezeCount || 0,
      totalFreezesDuration: s.totalFreezesDuration || 0,
      pliCount: s.pliCount || 0,
      firCount: s.firCount || 0,
      nackCount: s.nackCount || 0,
      retransmittedPacketsReceived: s.retransmittedPacketsReceived ?? null,
      mimeType: codec ? codec.mimeType : null,
      frameWidth: s.frameWidth || 0,
    };
  });
  return out;
}
"""

GP_ANSWER_JS = "() => window.kontaktGp.peerConnection().localDescription.sdp"


class DecodeErrors(logging.Handler):
    """Counts aiortc's "failed to decode" warnings (its decoder thread's only error signal)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.first: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "failed to decode" in message:
            self.count += 1
            self.first = self.first or message


@contextlib.contextmanager
def counting_decode_errors() -> Any:
    handler = DecodeErrors()
    logger = logging.getLogger("aiortc.rtcrtpreceiver")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


#: The encoder's keyframe interval in these tests (frames): longer than the test, so the
#: picture never repairs itself from a periodic keyframe. A stall on the GP page cannot hide
#: behind the next one, and after an unrepairable loss only the GP's request brings it back.
IPERIOD = 3000


async def pi4_hardware(state: FakeCameraState) -> GpioHardwareLink:
    """The shipped fakes, with the camera a Pi 4's: Picamera2Camera passing H.264 through."""
    link = await fake_hardware()
    api = fake_picamera2_api(state)
    link.hw.camera_backend = "picamera2"
    link.hw.camera_factory = lambda: Picamera2Camera(encoding="h264", api=api, iperiod=IPERIOD)
    return link


@dataclass
class Pi4Call:
    st: StationD
    page: Page
    state: FakeCameraState
    surface: SharedMemoryFrameSink
    errors: DecodeErrors
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def attempt(self) -> Any:
        engine = self.st.daemon.calls.engine
        assert engine is not None and engine._attempt is not None
        return engine._attempt

    def video_transceiver(self) -> Any:
        for transceiver in self.attempt.pc.getTransceivers():
            if transceiver.kind == "video":
                return transceiver
        raise AssertionError("no video transceiver")

    def jitter_buffer(self) -> FrameEndJitterBuffer:
        receiver = self.video_transceiver().receiver
        buffer = receiver._RTCRtpReceiver__jitter_buffer
        assert isinstance(buffer, FrameEndJitterBuffer)
        return buffer

    def camera(self) -> Picamera2Camera:
        camera = self.attempt.camera.camera
        assert isinstance(camera, Picamera2Camera)
        return camera

    async def gp_video(self) -> dict[str, Any]:
        stats = await self.page.evaluate(GP_VIDEO_JS)
        assert stats is not None, "the GP page has no inbound video"
        return dict(stats)


@contextlib.asynccontextmanager
async def pi4_call(tmp_path: Path) -> AsyncIterator[Pi4Call]:
    """Hub, stationd with the Pi 4 camera and the real surface sink, Chromium admitting."""
    state = FakeCameraState()
    surface = SharedMemoryFrameSink(tmp_path / "surface")
    with counting_decode_errors() as errors:
        async with running_hub(tmp_path / "hub") as hub:  # noqa: SIM117
            async with running_stationd(
                tmp_path / "station",
                call_config(hub.base_url),
                hardware=await pi4_hardware(state),
                also_show=surface,
            ) as st:
                await st.unlock()
                await st.book_and_check()
                async with chromium(tmp_path / "profile") as context:
                    page = await admitted_call(st, context)
                    try:
                        yield Pi4Call(st, page, state, surface, errors)
                    finally:
                        await st.http.post("/v1/call/end", headers=st.auth)
                        surface.close()


@dataclass
class Window:
    station_frames: int
    gp_frames: int
    self_written: int


async def run_windows(call: Pi4Call, seconds: float) -> tuple[list[Window], list[Any]]:
    """Run the call for ``seconds``; per window the frames each side decoded and the
    self-view pictures written, plus every "self" picture read back from shared memory."""
    reader = FrameSlotReader(frame_file(call.surface.directory, "self"))
    read_back: list[Any] = []
    windows: list[Window] = []
    loop = asyncio.get_running_loop()
    try:
        for _ in range(round(seconds / WINDOW_SECONDS)):
            start = loop.time()
            station_before = len(call.st.sink.stats("remote").arrivals)
            gp_before = (await call.gp_video())["framesDecoded"]
            self_before = call.surface.latest("self")
            while loop.time() - start < WINDOW_SECONDS:
                received = reader.read_new()
                if received is not None and received.frame is not None:
                    read_back.append((datetime.now(UTC), received.frame))
                await asyncio.sleep(0.1)
            windows.append(
                Window(
                    station_frames=len(call.st.sink.stats("remote").arrivals) - station_before,
                    gp_frames=(await call.gp_video())["framesDecoded"] - gp_before,
                    self_written=call.surface.latest("self") - self_before,
                )
            )
    finally:
        reader.close()
    return windows, read_back


class LossyVideoPath:
    """Drops chosen RTP packets of the station's video on their way out (before SRTP)."""

    def __init__(self, call: Pi4Call) -> None:
        sender = call.video_transceiver().sender
        self.ssrc = sender._ssrc
        self.rtx_ssrc = sender._rtx_ssrc
        self._transport = sender.transport
        self._send = self._transport._send_rtp
        self.drop_media: Callable[[int], bool] = lambda seq: False
        self.dropped: set[int] = set()
        #: Retransmissions (RTX) of dropped packets that went out, and that were held back.
        self.resent = 0
        self.resends_blocked = 0
        self.block_resends = False

    def __enter__(self) -> LossyVideoPath:
        self._transport._send_rtp = self._filtered
        return self

    def __exit__(self, *exc: object) -> None:
        self._transport._send_rtp = self._send

    async def _filtered(self, data: bytes) -> None:
        if not is_rtcp(data) and len(data) >= 12:
            ssrc = int.from_bytes(data[8:12], "big")
            if ssrc == self.ssrc:
                seq = int.from_bytes(data[2:4], "big")
                if self.drop_media(seq):
                    self.dropped.add(seq)
                    return
            elif ssrc == self.rtx_ssrc:
                payload = RtpPacket.parse(data).payload
                if len(payload) >= 2 and int.from_bytes(payload[:2], "big") in self.dropped:
                    if self.block_resends:
                        self.resends_blocked += 1
                        return
                    self.resent += 1
        await self._send(data)


def video_section(sdp: str) -> str:
    return sdp.split("m=video", 1)[1].split("\nm=", 1)[0]


def assert_h264_with_rtx(sdp: str, who: str) -> None:
    """H.264 first, each H.264 format with its RTX stream; VP8 (the fallback for a browser
    without H.264, see test_call_firefox.py) may follow, nothing else."""
    video = video_section(sdp)
    names = dict(re.findall(r"a=rtpmap:(\d+) ([\w-]+)/90000", video))
    assert names and {"H264", "rtx"} <= set(names.values()) <= {"H264", "VP8", "rtx"}, (
        f"{who}: {names}"
    )
    first = video.split("\n", 1)[0].split()[2]
    assert names[first] == "H264", f"{who}: {first} first"
    apts = dict(re.findall(r"a=fmtp:(\d+) apt=(\d+)", video))
    h264 = {pt for pt, name in names.items() if name == "H264"}
    assert h264 <= set(apts.values()), f"{who}: {apts}"


@pytest.mark.browser
@pytest.mark.slow
def test_pi4_hardware_h264_call_with_chromium(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def run() -> None:
        async with pi4_call(tmp_path) as call:
            page, state = call.page, call.state
            assert call.camera().passthrough_codec == "video/H264"

            # 1. Thirty seconds both ways.
            gp_before = await call.gp_video()
            windows, read_back = await run_windows(call, CALL_SECONDS)
            gp_after = await call.gp_video()
            call.figures.update(
                station_frames=[w.station_frames for w in windows],
                gp_frames=[w.gp_frames for w in windows],
                self_written=[w.self_written for w in windows],
                self_read_back=len(read_back),
                decode_errors=call.errors.count,
                gp_freezes=gp_after["freezeCount"] - gp_before["freezeCount"],
                gp_freeze_seconds=round(
                    gp_after["totalFreezesDuration"] - gp_before["totalFreezesDuration"], 2
                ),
            )
            print("H.264 call figures:", call.figures)
            # Not one decode error at the station since the call began (set-up included).
            assert call.errors.count == 0, (call.errors.first, call.figures)
            for window in windows:
                assert window.station_frames >= MIN_FRAMES_PER_WINDOW, call.figures
                assert window.gp_frames >= MIN_FRAMES_PER_WINDOW, call.figures
                # The self-view at the engine's 10 a second (not one per packet, not none).
                assert 25 <= window.self_written <= 60, call.figures
            assert gp_after["totalFreezesDuration"] - gp_before["totalFreezesDuration"] < 1.0

            # The video ladder gave the hardware encoder its rate (issue 18 item 1).
            call.figures["camera_bitrates"] = list(state.bitrates)
            assert call.attempt.ladder is not None
            assert state.bitrates[-1] == call.attempt.ladder.rung.bitrate, call.figures

            # H.264 with its RTX stream, offered by the station and accepted by Chromium ...
            assert_h264_with_rtx(call.attempt.pc.localDescription.sdp, "the station's offer")
            assert_h264_with_rtx(await page.evaluate(GP_ANSWER_JS), "Chromium's answer")
            assert gp_after["mimeType"] == "video/H264", gp_after
            assert not call.attempt.camera.decode_packets  # the camera's packets, as they are
            # ... which took Chromium's probe padding off the video stream.
            call.figures["padding_dropped"] = call.jitter_buffer().padding_dropped
            assert call.figures["padding_dropped"] == 0, call.figures

            # The self-view read back from the surface's shared memory: the lores picture,
            # with the camera's stamp, captured moments before.
            assert len(read_back) >= 3 * CALL_SECONDS, call.figures
            seqs = []
            for read_at, picture in read_back:
                assert (picture.width, picture.height) == (320, 240)
                stamp = decode_stamp(picture)
                assert stamp is not None, "a self-view picture without the camera's stamp"
                assert 0 <= datetime_to_us(read_at) - stamp.capture_us < 2_000_000
                seqs.append(stamp.seq)
            assert seqs == sorted(seqs) and seqs[-1] - seqs[0] >= 25 * CALL_SECONDS

            # 2. Lost packets are resent over RTX when Chromium asks (NACK).
            camera = call.camera()
            with LossyVideoPath(call) as lossy:
                lossy.drop_media = lambda seq: seq % 40 == 0
                await asyncio.sleep(4)
                lossy.drop_media = lambda seq: False
                await wait_for(lambda: lossy.resent >= 3, timeout=10, what="RTX resends")
            gp_nacked = await call.gp_video()
            call.figures.update(
                nack_dropped=len(lossy.dropped),
                rtx_resent=lossy.resent,
                gp_nacks=gp_nacked["nackCount"] - gp_after["nackCount"],
                gp_retransmitted=gp_nacked["retransmittedPacketsReceived"],
            )
            assert gp_nacked["nackCount"] > gp_after["nackCount"], call.figures
            if gp_nacked["retransmittedPacketsReceived"] is not None:
                assert gp_nacked["retransmittedPacketsReceived"] > 0, call.figures

            # 3. A loss that cannot be repaired: Chromium asks for a keyframe (PLI/FIR),
            # and the request reaches the camera's encoder.
            forced_before = state.forced_keyframes
            gaps_before = camera._packets.gaps
            requests_before = gp_nacked["pliCount"] + gp_nacked["firCount"]
            with LossyVideoPath(call) as lossy:
                lossy.block_resends = True
                lossy.drop_media = lambda seq: True
                await asyncio.sleep(1.0)
                lossy.drop_media = lambda seq: False
                await wait_for(
                    lambda: state.forced_keyframes > forced_before,
                    timeout=15,
                    what="a keyframe forced by the GP's request",
                )
            gp_asked = await call.gp_video()
            call.figures.update(
                forced_keyframes=state.forced_keyframes - forced_before,
                gp_keyframe_requests=gp_asked["pliCount"] + gp_asked["firCount"] - requests_before,
                camera_gaps=camera._packets.gaps - gaps_before,
            )
            assert gp_asked["pliCount"] + gp_asked["firCount"] > requests_before, call.figures
            # Not the camera's own queue overflow: the GP's request.
            assert camera._packets.gaps == gaps_before, call.figures
            # And the GP's picture comes back.
            frames = gp_asked["framesDecoded"]
            await wait_for(
                lambda: _gp_frames_beyond(call, frames + 30), timeout=15, what="GP video back"
            )
            assert call.errors.count == 0, call.errors.first
            print("H.264 call figures:", call.figures)

    asyncio.run(run())


async def _gp_frames_beyond(call: Pi4Call, frames: int) -> bool:
    return bool((await call.gp_video())["framesDecoded"] > frames)


@pytest.mark.browser
@pytest.mark.slow
def test_pi4_h264_without_rtx_drops_chromium_padding(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if delegated_to_loopback_namespace(request):
        return
    # H.264 alone (no RTX, no VP8 fallback), as the station offered before: Chromium's
    # padding on the video stream.
    original = call_attempt.passthrough_codec_preferences
    monkeypatch.setattr(
        call_attempt,
        "passthrough_codec_preferences",
        lambda mime: [c for c in original(mime) if c.mimeType not in ("video/rtx", "video/VP8")],
    )

    async def run() -> None:
        async with pi4_call(tmp_path) as call:
            assert "rtx/90000" not in video_section(call.attempt.pc.localDescription.sdp)
            started = time.monotonic()
            windows, _ = await run_windows(call, 15.0)
            figures: dict[str, Any] = {
                "station_frames": [w.station_frames for w in windows],
                "gp_frames": [w.gp_frames for w in windows],
                "decode_errors": call.errors.count,
                "seconds": round(time.monotonic() - started, 1),
            }
            print("H.264 without RTX:", figures)
            assert call.errors.count == 0, (call.errors.first, figures)
            for window in windows:
                assert window.station_frames >= MIN_FRAMES_PER_WINDOW, figures
                assert window.gp_frames >= MIN_FRAMES_PER_WINDOW, figures
            # Chromium did probe on the video stream, and none of it reached the decoder.
            figures["padding_dropped"] = call.jitter_buffer().padding_dropped
            print("H.264 without RTX:", figures)
            assert figures["padding_dropped"] > 0, figures

    asyncio.run(run())


def test_the_pre_call_check_shows_the_pi4_cameras_picture(tmp_path: Path) -> None:
    """The pre-call check decodes the Pi 4 camera's H.264 for its thumbnail.

    The camera names its codec as a MIME type (``video/H264``), which PyAV does not know as
    a decoder name: the check's camera line failed on every Pi 4.
    """

    async def run() -> None:
        state = FakeCameraState()
        async with running_hub(tmp_path / "hub") as hub:  # noqa: SIM117
            async with running_stationd(
                tmp_path / "station", call_config(hub.base_url), hardware=await pi4_hardware(state)
            ) as st:
                await st.unlock()
                await st.book_and_check()
                response = await st.http.get(
                    "/v1/precheck/frame", params={"width": 32, "height": 24}, headers=st.auth
                )
                assert response.status_code == 200, response.text
                frame = response.json()
                width, height = frame["width"], frame["height"]
                assert 0 < width <= 32 and 0 < height <= 24
                data = base64.b64decode(frame["data"])
                assert len(data) == width * height * 3 and len(set(data)) > 8  # not blank

    asyncio.run(run())

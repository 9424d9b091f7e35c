"""The camera backends: stamps through real codecs, pacing, V4L2 capture, picamera2 via its fake."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import struct
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.codecs import depayload, get_decoder, get_encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RTCP_PSFB_PLI, RtcpPsfbPacket

from hardware._queue import KeyframeQueue, LatestQueue, QueueClosedError
from hardware.camera import (
    Camera,
    FakeCameraState,
    Picamera2Camera,
    Stamp,
    TestPattern,
    TestPatternCamera,
    V4L2Camera,
    board_has_hardware_h264,
    build_camera_factory,
    decode_stamp,
    decode_stamp_luma,
    draw_stamp,
    fake_picamera2_api,
    forward_keyframe_requests,
)
from hardware.camera.base import BitrateControl, SelfViewSource
from hardware.camera.fake_picamera2 import FakePicamera2
from hardware.camera.picamera2_backend import (
    self_view_size,
    v4l2_force_key_frame,
    v4l2_set_bitrate,
    yuv420_array_to_frame,
)
from hardware.camera.stamp import datetime_to_us
from hardware.camera.v4l2 import own_copy
from hardware.errors import BackendUnavailableError, CameraUnavailableError, UnknownBackendError
from station.core.clock import FakeClock, SystemClock

T0 = 1_795_000_000_123_456  # a capture time in microseconds (late 2026)


def now_us() -> int:
    return datetime_to_us(SystemClock().now())


def codec_params(mime: str) -> RTCRtpCodecParameters:
    return RTCRtpCodecParameters(mimeType=mime, clockRate=90000, payloadType=96)


class RoundTrip:
    """aiortc's own encoder, RTP packetiser, depacketiser and decoder, without a network."""

    def __init__(self, mime: str, bitrate: int) -> None:
        self.codec = codec_params(mime)
        self.encoder = get_encoder(self.codec)
        self.decoder = get_decoder(self.codec)
        self.encoder.target_bitrate = bitrate  # type: ignore[attr-defined]
        self.bytes_sent = 0

    def _decode(self, payloads: list[bytes], timestamp: int) -> list[av.VideoFrame]:
        self.bytes_sent += sum(len(p) for p in payloads)
        data = b"".join(depayload(self.codec, p) for p in payloads)
        frames = self.decoder.decode(JitterFrame(data=data, timestamp=timestamp))
        return [f for f in frames if isinstance(f, av.VideoFrame)]

    def frame(self, frame: av.VideoFrame, keyframe: bool = False) -> list[av.VideoFrame]:
        payloads, timestamp = self.encoder.encode(frame, force_keyframe=keyframe)
        return self._decode(payloads, timestamp)

    def packet(self, packet: av.Packet[Any]) -> list[av.VideoFrame]:
        payloads, timestamp = self.encoder.pack(packet)
        return self._decode(payloads, timestamp)


# -- the stamp --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(320, 240), (640, 480), (1280, 720), (1920, 1080)])
def test_stamp_reads_back_what_was_drawn(size: tuple[int, int]) -> None:
    width, height = size
    luma = np.full((height, width), 128, dtype=np.uint8)
    draw_stamp(luma, T0, 4_000_000_001)
    assert decode_stamp_luma(luma) == Stamp(capture_us=T0, seq=4_000_000_001)


def test_a_damaged_or_missing_stamp_reads_as_none() -> None:
    pattern = TestPattern(640, 480)
    yuv = pattern.render_yuv(7, T0)
    luma = yuv[:480]
    assert decode_stamp_luma(luma) == Stamp(T0, 7)
    # Flip one payload cell (row 1, column 5): the CRC must catch it.
    luma[16 + 4 : 32 - 4, 5 * 16 + 4 : 6 * 16 - 4] ^= 0xFF
    assert decode_stamp_luma(luma) is None
    assert decode_stamp(av.VideoFrame(640, 480, "yuv420p")) is None  # all black, no stamp
    noise = np.random.default_rng(1).integers(0, 256, (480, 640), dtype=np.uint8)
    assert decode_stamp_luma(noise) is None


def test_stamp_survives_scaling_and_rgb() -> None:
    frame = TestPattern(1280, 720).render(42, T0)
    smaller = frame.reformat(width=640, height=360)
    assert decode_stamp(smaller) == Stamp(T0, 42)
    assert decode_stamp(frame.reformat(format="rgb24")) == Stamp(T0, 42)


def test_stamp_times_convert_to_datetimes() -> None:
    stamp = Stamp(capture_us=T0, seq=0)
    assert datetime_to_us(stamp.capture_time) == T0
    later = stamp.capture_time + timedelta(milliseconds=43)
    assert stamp.latency_us(later) == 43_000


# -- the test-pattern track through real codecs -------------------------------------------


async def collect_track(
    camera: TestPatternCamera, count: int
) -> list[tuple[av.VideoFrame, int, int]]:
    """(frame, time before recv, time after recv) for ``count`` frames."""
    out = []
    for _ in range(count):
        before = now_us()
        frame = await camera.recv()
        out.append((frame, before, now_us()))
    return out


@pytest.mark.parametrize(
    ("mime", "bitrate"),
    [("video/VP8", 250_000), ("video/VP8", 500_000), ("video/H264", 500_000)],
)
async def test_stamps_survive_a_real_encode_decode_round_trip(mime: str, bitrate: int) -> None:
    # 120 fps pacing keeps the test short; the pictures are the same as at 30 fps.
    camera = TestPatternCamera(640, 480, fps=120)
    frames = await collect_track(camera, 75)
    camera.stop()
    trip = RoundTrip(mime, bitrate)
    decoded: list[tuple[Stamp | None, int, int, int]] = []
    for index, (frame, before, after) in enumerate(frames):
        # A keyframe at the start and one mid-stream (as after a PLI).
        for out in trip.frame(frame, keyframe=index in (0, 50)):
            decoded.append((decode_stamp(out), index, before, after))
    assert len(decoded) >= 70  # the encoders may hold back a frame or two, never more
    seqs = []
    for stamp, index, before, after in decoded:
        assert stamp is not None, f"frame {index} lost its stamp in {mime} at {bitrate} bit/s"
        seqs.append(stamp.seq)
        assert before <= stamp.capture_us <= after  # stamped when it was captured
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert seqs[0] == 0
    assert 50 in seqs and 51 in seqs  # right after the forced keyframe
    # The stream really was compressed to about the target rate (75 frames at 120 fps).
    assert trip.bytes_sent * 8 * 30 / len(frames) < bitrate * 2


async def test_test_pattern_is_paced_with_90khz_pts_and_ends_on_stop() -> None:
    camera = TestPatternCamera(320, 240, fps=30)
    assert isinstance(camera, Camera)
    assert camera.kind == "video" and camera.backend == "testpattern"
    assert camera.passthrough_codec is None
    frames = [await camera.recv() for _ in range(5)]
    assert [f.pts for f in frames] == [0, 3000, 6000, 9000, 12000]
    assert all(f.time_base == fractions.Fraction(1, 90000) for f in frames)
    assert [decode_stamp(f).seq for f in frames] == [0, 1, 2, 3, 4]  # type: ignore[union-attr]
    assert camera.stats.delivered == 5
    camera.stop()
    with pytest.raises(MediaStreamError):
        await camera.recv()


async def test_test_pattern_stamps_with_the_injected_clock() -> None:
    clock = FakeClock(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
    camera = TestPatternCamera(640, 480, fps=120, clock=clock)
    first = decode_stamp(await camera.recv())
    clock.advance(timedelta(milliseconds=250))
    second = decode_stamp(await camera.recv())
    camera.stop()
    assert first == Stamp(datetime_to_us(datetime(2026, 11, 25, 9, 0, tzinfo=UTC)), 0)
    assert second is not None and second.capture_us - first.capture_us == 250_000


def test_test_pattern_moves() -> None:
    pattern = TestPattern(640, 480)
    a, b = pattern.render_yuv(0, T0), pattern.render_yuv(10, T0)
    band = 48 + 4
    assert np.count_nonzero(a[band:480] != b[band:480]) > 1000  # the box and bar moved


# -- bounded queues ---------------------------------------------------------------------


async def test_latest_queue_drops_the_oldest() -> None:
    queue: LatestQueue[int] = LatestQueue(2)
    for i in range(5):
        queue.put_nowait(i)
    assert queue.dropped == 3 and queue.offered == 5
    assert [await queue.get(), await queue.get()] == [3, 4]
    queue.close(RuntimeError("unplugged"))
    with pytest.raises(QueueClosedError) as caught:
        await queue.get()
    assert isinstance(caught.value.__cause__, RuntimeError)


async def test_keyframe_queue_never_hands_out_an_undecodable_packet() -> None:
    gaps: list[int] = []
    queue: KeyframeQueue[str] = KeyframeQueue(3, on_gap=lambda: gaps.append(1))
    queue.put_nowait("K0", keyframe=True)
    for name in ("P1", "P2"):
        queue.put_nowait(name, keyframe=False)
    queue.put_nowait("P3", keyframe=False)  # overflow: everything goes, a keyframe is asked for
    assert len(queue) == 0 and gaps == [1] and queue.waiting_for_keyframe
    queue.put_nowait("P4", keyframe=False)  # depends on what was dropped: dropped too
    assert len(queue) == 0 and queue.dropped == 5
    queue.put_nowait("K5", keyframe=True)
    queue.put_nowait("P6", keyframe=False)
    assert [await queue.get(), await queue.get()] == ["K5", "P6"]
    assert gaps == [1] and queue.gaps == 1


# -- V4L2 -------------------------------------------------------------------------------


async def test_v4l2_camera_absent_device_is_a_clear_error(tmp_path: Path) -> None:
    device = str(tmp_path / "video9")
    assert "does not exist" in (V4L2Camera.probe(device) or "")
    camera = V4L2Camera(device)
    with pytest.raises(CameraUnavailableError) as caught:
        await asyncio.wait_for(camera.recv(), 10)
    assert device in str(caught.value)
    assert "Kameraet virker ikke" in caught.value.user_message
    await camera.aclose()


def test_a_raw_yuv420p_frame_leaves_the_devices_buffers() -> None:
    # FFmpeg's V4L2 demuxer hands raw yuv420p frames out in the device's mmap'ed buffers, and
    # such a frame gives its buffer back through the demuxer's context when it is freed: one
    # freed after the camera closed wrote into freed memory and crashed stationd in the booted
    # appliance (vivid offers yuv420p, which FFmpeg asks for first). The camera's thread hands
    # the loop a copy instead; reformat() would have returned the very same frame.
    picture = (np.arange(240 * 3 // 2 * 320) % 251).astype(np.uint8).reshape(-1, 320)
    frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
    assert frame.reformat(format="yuv420p") is frame
    copy = own_copy(frame)
    assert {p.buffer_ptr for p in copy.planes}.isdisjoint({p.buffer_ptr for p in frame.planes})
    assert (copy.width, copy.height, copy.format.name) == (320, 240, "yuv420p")
    assert np.array_equal(copy.to_ndarray(), picture)


async def test_v4l2_capture_machinery_with_a_lavfi_source() -> None:
    # The same thread, queue and re-stamping as with a webcam; only the demuxer differs.
    camera = V4L2Camera(
        "testsrc=size=320x240:rate=30,realtime", container_format="lavfi", width=320, height=240
    )
    frames = [await asyncio.wait_for(camera.recv(), 10) for _ in range(3)]
    assert all(f.format.name == "yuv420p" and f.width == 320 for f in frames)
    pts = [f.pts or 0 for f in frames]
    assert pts[0] < pts[1] < pts[2]
    assert frames[0].time_base == fractions.Fraction(1, 90000)
    # Nobody reads for a while: the queue keeps only the newest frame.
    for _ in range(200):
        if camera.stats.captured >= camera.stats.delivered + 4:
            break
        await asyncio.sleep(0.02)
    stats = camera.stats
    assert stats.dropped >= 3
    assert stats.dropped == stats.captured - stats.delivered - 1
    await camera.aclose()
    assert camera._thread is not None and not camera._thread.alive


# -- picamera2 through its fake -------------------------------------------------------------


def nal_types(item: bytes | av.Packet[Any] | av.VideoFrame) -> list[int]:
    """The NAL unit types in an Annex B access unit."""
    assert not isinstance(item, av.VideoFrame), "expected an encoded packet"
    data = bytes(item)
    return [nal[0] & 0x1F for nal in data.split(b"\x00\x00\x01")[1:] if nal]


async def test_picamera2_h264_passthrough_packets_decode_with_stamps() -> None:
    state = FakeCameraState()
    camera = Picamera2Camera(api=fake_picamera2_api(state), encoding="auto", iperiod=300)
    assert camera.passthrough_codec == "video/H264"
    trip = RoundTrip("video/H264", 1_000_000)
    seqs = []
    packets = []
    for _ in range(20):
        packet = await asyncio.wait_for(camera.recv(), 10)
        assert isinstance(packet, av.Packet)
        packets.append(packet)
        for frame in trip.packet(packet):
            stamp = decode_stamp(frame)
            assert stamp is not None
            seqs.append(stamp.seq)
    await camera.aclose()
    first = bytes(packets[0])
    assert nal_types(first)[:2] == [7, 8]  # SPS and PPS before the first IDR
    sps = first.split(b"\x00\x00\x01")[1]
    assert sps[1] == 66 and sps[2] & 0x40  # constrained baseline (profile_idc 66, set1)
    pts = [p.pts or 0 for p in packets]
    assert pts == sorted(pts)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # in order, none missing
    assert state.closed == state.opened == 1


async def test_picamera2_keyframe_requests_reach_the_encoder() -> None:
    state = FakeCameraState()
    camera = Picamera2Camera(api=fake_picamera2_api(state), iperiod=300)
    await asyncio.wait_for(camera.recv(), 10)  # started; the first packet is the IDR
    for _ in range(3):
        packet = await camera.recv()
        assert 5 not in nal_types(packet)
    camera.request_keyframe()
    camera.request_keyframe()  # within keyframe_min_interval: folded into the first
    assert state.forced_keyframes == 1 and camera.keyframe_requests == 1
    for _ in range(10):
        packet = await asyncio.wait_for(camera.recv(), 10)
        if 5 in nal_types(packet):
            assert nal_types(packet)[:2] == [7, 8]  # SPS/PPS repeated inline
            break
    else:
        pytest.fail("no IDR after a keyframe request")
    await camera.aclose()


async def test_a_real_pli_reaches_a_passthrough_camera() -> None:
    camera = Picamera2Camera(api=fake_picamera2_api(), keyframe_min_interval=0)
    await asyncio.wait_for(camera.recv(), 10)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        sender = pc.addTrack(camera)
        forward_keyframe_requests(sender, camera)
        pli = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1234, media_ssrc=sender._ssrc)
        await sender._handle_rtcp_packet(pli)  # what aiortc does with an incoming PLI
        assert camera.keyframe_requests == 1
    finally:
        await pc.close()
        await camera.aclose()


async def test_picamera2_drops_until_a_keyframe_when_the_consumer_stalls() -> None:
    state = FakeCameraState()
    camera = Picamera2Camera(
        api=fake_picamera2_api(state), iperiod=1000, queue_size=2, keyframe_min_interval=0
    )
    await asyncio.wait_for(camera.recv(), 10)
    for _ in range(200):  # stall until the queue has overflowed
        if camera._packets.gaps:
            break
        await asyncio.sleep(0.02)
    assert camera._packets.gaps >= 1 and camera.stats.dropped >= 3
    assert state.forced_keyframes >= 1  # the gap asked for a keyframe itself
    packet = await asyncio.wait_for(camera.recv(), 10)
    assert 5 in nal_types(packet)  # the next thing handed out decodes on its own
    await camera.aclose()


async def test_picamera2_raw_path_on_a_board_without_h264() -> None:
    state = FakeCameraState(hardware_h264=False)
    camera = Picamera2Camera(api=fake_picamera2_api(state), width=640, height=480)
    assert camera.encoding == "raw" and camera.passthrough_codec is None
    frames = [await asyncio.wait_for(camera.recv(), 10) for _ in range(4)]
    assert all(isinstance(f, av.VideoFrame) and f.format.name == "yuv420p" for f in frames)
    stamps = [decode_stamp(f) for f in frames]  # type: ignore[arg-type]
    assert all(s is not None for s in stamps)
    assert [s.seq for s in stamps] == sorted(s.seq for s in stamps)  # type: ignore[union-attr]
    # The raw frames go through VP8 (the Pi 5's path) with their stamps intact.
    trip = RoundTrip("video/VP8", 500_000)
    out = trip.frame(frames[0], keyframe=True)  # type: ignore[arg-type]
    assert decode_stamp(out[0]) == stamps[0]
    await camera.aclose()
    assert state.closed == state.opened == 1


async def test_picamera2_errors_are_clear() -> None:
    no_camera = fake_picamera2_api(FakeCameraState(cameras=0))
    assert "no camera" in (Picamera2Camera.probe(no_camera) or "")
    camera = Picamera2Camera(api=no_camera)
    with pytest.raises(CameraUnavailableError, match="no camera"):
        await asyncio.wait_for(camera.recv(), 10)
    await camera.aclose()

    broken = FakeCameraState(fail_start=True)
    camera = Picamera2Camera(api=fake_picamera2_api(broken))
    with pytest.raises(CameraUnavailableError, match="timed out"):
        await asyncio.wait_for(camera.recv(), 10)
    await camera.aclose()
    assert broken.closed == broken.opened  # nothing left open

    dying = FakeCameraState(hardware_h264=False, fail_after_frames=3)
    camera = Picamera2Camera(api=fake_picamera2_api(dying))
    with pytest.raises(CameraUnavailableError, match="stopped"):
        for _ in range(10):
            await asyncio.wait_for(camera.recv(), 10)
    await camera.aclose()
    assert dying.closed == dying.opened


def test_picamera2_yuv420_with_padded_rows() -> None:
    width, height, stride = 100, 4, 128
    yuv = np.zeros(stride * height * 3 // 2, dtype=np.uint8)
    yuv[: stride * height].reshape(height, stride)[:, :width] = 200  # luma
    yuv[stride * height :][: (stride // 2) * (height // 2)] = 90  # U rows (padded too)
    frame = yuv420_array_to_frame(yuv.reshape(height * 3 // 2, stride), width, height)
    planes = frame.to_ndarray()
    assert planes.shape == (6, 100)
    assert (planes[:4] == 200).all()
    u = planes[4:].reshape(-1)[: (width // 2) * (height // 2)]
    assert (u == 90).all()


async def test_picamera2_h264_self_view_comes_from_lores_at_the_asked_rate() -> None:
    state = FakeCameraState()
    camera = Picamera2Camera(api=fake_picamera2_api(state), encoding="h264")
    assert isinstance(camera, SelfViewSource)
    assert camera.self_view_size == (320, 240)
    await asyncio.wait_for(camera.recv(), 10)  # recording (and the self-view) can start

    async def send() -> None:  # the packets go on to aiortc beside the self-view
        with contextlib.suppress(MediaStreamError):
            while True:
                await camera.recv()

    sending = asyncio.ensure_future(send())
    pictures: list[av.VideoFrame] = []
    started = time.monotonic()
    async with asyncio.timeout(10):
        async for picture in camera.self_view(10.0):
            pictures.append(picture)
            if len(pictures) == 6:
                break
    elapsed = time.monotonic() - started
    assert camera.stats.delivered >= 10  # the encoded stream kept flowing meanwhile
    assert all((p.width, p.height, p.format.name) == (320, 240, "yuv420p") for p in pictures)
    stamps = [decode_stamp(p) for p in pictures]
    assert all(s is not None for s in stamps), "the lores picture lost the sensor's stamp"
    seqs = [s.seq for s in stamps if s is not None]
    assert seqs == sorted(seqs) and len(set(seqs)) == 6
    # Throttled to 10 a second (not the sensor's 30): 6 pictures span 5 intervals.
    assert elapsed >= 0.45
    assert seqs[-1] - seqs[0] >= 10
    assert state.captures["lores"] == 6
    await camera.aclose()
    await sending
    assert state.closed == state.opened == 1


async def test_picamera2_self_view_ends_with_the_track_and_not_on_the_raw_path() -> None:
    camera = Picamera2Camera(api=fake_picamera2_api(), encoding="h264")
    await asyncio.wait_for(camera.recv(), 10)
    pictures = camera.self_view(30.0)
    assert isinstance(await asyncio.wait_for(anext(pictures), 5), av.VideoFrame)
    camera.stop()
    with pytest.raises(StopAsyncIteration):
        async with asyncio.timeout(5):
            while True:
                await anext(pictures)
    await camera.aclose()

    # A self-view asked for before the first recv() waits for recording to begin.
    waiting = Picamera2Camera(api=fake_picamera2_api(), encoding="h264")
    early = asyncio.ensure_future(anext(waiting.self_view(10.0)))
    await asyncio.sleep(0.2)
    assert not early.done()
    await asyncio.wait_for(waiting.recv(), 10)
    assert isinstance(await asyncio.wait_for(early, 5), av.VideoFrame)
    await waiting.aclose()

    raw = Picamera2Camera(api=fake_picamera2_api(FakeCameraState(hardware_h264=False)))
    assert raw.self_view_size is None
    assert [p async for p in raw.self_view(10.0)] == []  # its frames are the self-view
    await raw.aclose()
    off = Picamera2Camera(api=fake_picamera2_api(), encoding="h264", self_view_width=None)
    assert off.self_view_size is None
    await asyncio.wait_for(off.recv(), 10)
    assert [p async for p in off.self_view(10.0)] == []
    await off.aclose()


def test_self_view_size_keeps_the_aspect_and_never_exceeds_main() -> None:
    assert self_view_size(640, 480, 320) == (320, 240)
    assert self_view_size(1280, 720, 320) == (320, 180)
    assert self_view_size(320, 240, 640) == (320, 240)
    assert self_view_size(1920, 1080, 333) == (332, 186)


def test_fake_picamera2_checks_lores_as_picamera2_does() -> None:
    camera = FakePicamera2()
    config = camera.create_video_configuration(
        main={"size": (640, 480), "format": "YUV420"}, lores={"size": (800, 600)}
    )
    with pytest.raises(RuntimeError, match="may not exceed main"):
        camera.configure(config)
    config = camera.create_video_configuration(
        main={"size": (640, 480), "format": "YUV420"},
        lores={"size": (320, 240), "format": "RGB888"},
    )
    with pytest.raises(RuntimeError, match="must be YUV"):
        camera.configure(config)
    camera.configure(camera.create_video_configuration(main={"format": "YUV420"}))
    camera.start()
    with pytest.raises(RuntimeError, match="'lores' is not defined"):
        camera.capture_array("lores")
    camera.close()

    # Rows padded to picamera2's stride (a 200 px lores: 256 byte rows) read back exactly.
    camera = FakePicamera2()
    camera.configure(
        camera.create_video_configuration(
            main={"size": (640, 480), "format": "YUV420"}, lores={"size": (200, 150)}
        )
    )
    camera.start()
    array = camera.capture_array("lores")
    assert array.shape == (225, 256)
    picture = yuv420_array_to_frame(array, 200, 150).to_ndarray()
    assert picture.shape == (225, 200)
    assert (array[:150, :200] == picture[:150]).all()
    assert not array[:150, 200:].any()  # the padding
    camera.close()


async def test_picamera2_bitrate_changes_reach_the_running_encoder() -> None:
    """The call's video ladder lowers the hardware encoder's rate while it runs: smaller
    packets from the next frames on, never above the configured rate. (The fake starts a new
    stream at a change; the Pi's encoder takes the V4L2 control live.)"""
    state = FakeCameraState()
    camera = Picamera2Camera(api=fake_picamera2_api(state), iperiod=600, bitrate=1_000_000)
    assert isinstance(camera, BitrateControl) and camera.max_bitrate == 1_000_000

    async def sizes(count: int) -> list[int]:
        packets = [await asyncio.wait_for(camera.recv(), 10) for _ in range(count)]
        return [len(bytes(p)) for p in packets if 5 not in nal_types(p)]  # P frames

    before = await sizes(40)  # the fake's picture needs ~120 kbit/s
    camera.set_bitrate(30_000)
    camera.set_bitrate(5_000_000)  # above the configured rate: the configured rate
    camera.set_bitrate(30_000)
    await sizes(10)  # the rate control settles
    after = await sizes(40)
    await camera.aclose()
    assert state.bitrates == [30_000, 1_000_000, 30_000]
    assert camera.bitrate_changes == 3
    mean_before = sum(before) / len(before)
    mean_after = sum(after) / len(after)
    assert mean_after < 0.5 * mean_before, (mean_before, mean_after)


async def test_picamera2_bitrate_set_before_the_encoder_runs_is_its_start_rate() -> None:
    """The call's ladder may decide before the camera opens (at the call's first picture)."""
    state = FakeCameraState()
    camera = Picamera2Camera(api=fake_picamera2_api(state), bitrate=1_000_000)
    camera.set_bitrate(300_000)
    await asyncio.wait_for(camera.recv(), 10)
    await camera.aclose()
    assert [e.bitrate for e in state.encoders] == [300_000]
    assert state.bitrates == []  # nothing to change on a running encoder


def test_set_bitrate_writes_the_v4l2_control() -> None:
    calls: list[tuple[int, int, bytes]] = []

    def ioctl(fd: int, request: int, arg: bytes) -> bytes:
        calls.append((fd, request, arg))
        return arg

    v4l2_set_bitrate(7, 400_000, ioctl)
    assert calls == [(7, 0xC008561C, struct.pack("=Ii", 0x009909CF, 400_000))]


def test_force_key_frame_writes_the_v4l2_control() -> None:
    calls: list[tuple[int, int, bytes]] = []

    def ioctl(fd: int, request: int, arg: bytes) -> bytes:
        calls.append((fd, request, arg))
        return arg

    v4l2_force_key_frame(7, ioctl)
    assert calls == [(7, 0xC008561C, struct.pack("=Ii", 0x009909E5, 1))]


def test_board_detection(tmp_path: Path) -> None:
    model, encoder = tmp_path / "model", tmp_path / "video11"
    encoder.touch()
    model.write_bytes(b"Raspberry Pi 4 Model B Rev 1.5\x00")
    assert board_has_hardware_h264(model, encoder)
    model.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    assert not board_has_hardware_h264(model, encoder)
    assert not board_has_hardware_h264(tmp_path / "absent", tmp_path / "absent-too")


# -- choosing a backend -------------------------------------------------------------------


async def test_backend_choice_from_the_environment(tmp_path: Path) -> None:
    name, factory = build_camera_factory({"KONTAKTSTATION_CAMERA": "testpattern"})
    camera = factory()
    assert name == "testpattern" and isinstance(camera, TestPatternCamera)
    camera.stop()
    name, _ = build_camera_factory({"KONTAKTSTATION_HARDWARE": "fake"})
    assert name == "testpattern"

    with pytest.raises(UnknownBackendError, match="KONTAKTSTATION_CAMERA='webcam'"):
        build_camera_factory({"KONTAKTSTATION_CAMERA": "webcam"})

    missing = str(tmp_path / "video0")
    env = {"KONTAKTSTATION_CAMERA": "v4l2", "KONTAKTSTATION_CAMERA_DEVICE": missing}
    with pytest.raises(BackendUnavailableError) as caught:
        build_camera_factory(env)
    assert missing in str(caught.value) and caught.value.part == "camera"
    assert "Kameraet" in caught.value.user_message

    # Unset: picamera2, then v4l2, never a silent test pattern.
    no_camera = fake_picamera2_api(FakeCameraState(cameras=0))
    with pytest.raises(BackendUnavailableError) as caught:
        build_camera_factory({"KONTAKTSTATION_CAMERA_DEVICE": missing}, picamera2_api=no_camera)
    assert "picamera2:" in str(caught.value) and "v4l2:" in str(caught.value)
    assert "KONTAKTSTATION_CAMERA=testpattern" in str(caught.value)

    name, factory = build_camera_factory(
        {"KONTAKTSTATION_CAMERA_ENCODING": "raw", "KONTAKTSTATION_CAMERA_SIZE": "320x240"},
        picamera2_api=fake_picamera2_api(),
    )
    camera = factory()
    assert name == "picamera2" and isinstance(camera, Picamera2Camera)
    assert camera.passthrough_codec is None
    camera.stop()

    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        build_camera_factory(
            {"KONTAKTSTATION_CAMERA": "testpattern", "KONTAKTSTATION_CAMERA_SIZE": "big"}
        )


@pytest.fixture(autouse=True)
def no_leaked_capture_threads() -> Iterator[None]:
    """Every capture and encoder thread a test starts is gone when it ends."""
    before = set(threading.enumerate())
    yield
    for _ in range(100):
        leaked = [t for t in set(threading.enumerate()) - before if t.is_alive() and _ours(t)]
        if not leaked:
            return
        time.sleep(0.02)
    pytest.fail(f"threads left running: {leaked}")


def _ours(thread: threading.Thread) -> bool:
    return thread.name.startswith(("v4l2-capture", "picamera2", "fake-picamera2"))


class _BrokenPicamera2Finder:
    """Makes ``import picamera2`` fail the way a venv's numpy shadowing apt's does."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "picamera2" or name.startswith("picamera2."):
            raise self.error


@pytest.mark.parametrize(
    "error",
    [
        ValueError("numpy.dtype size changed, may indicate binary incompatibility"),
        RuntimeError("libcamera: no IPA module"),
        ImportError("No module named 'libcamera'"),
    ],
)
def test_any_picamera2_import_failure_is_backend_unavailable_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    import sys

    from hardware.camera.picamera2_backend import load_picamera2_api
    from hardware.errors import BackendUnavailableError

    for name in [m for m in sys.modules if m == "picamera2" or m.startswith("picamera2.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_BrokenPicamera2Finder(error), *sys.meta_path])
    with pytest.raises(BackendUnavailableError) as raised:
        load_picamera2_api()
    assert type(error).__name__ in str(raised.value)
    reason = Picamera2Camera.probe()
    assert reason is not None and "not importable" in reason

"""The call's media for a camera that sends hardware H.264 as it is: the self-view the station
still shows, and the codecs the station offers (H.264 with its RTX stream)."""

from __future__ import annotations

import asyncio
import re
import time

import av
from aiortc import RTCConfiguration, RTCPeerConnection

from hardware.camera import (
    FakeCameraState,
    Picamera2Camera,
    TestPatternCamera,
    decode_stamp,
    fake_picamera2_api,
)
from hardware.video import RecordingFrameSink
from station.call.engine import passthrough_codec_preferences
from station.call.liveness import answer_video_codec
from station.call.media import CameraFeed


async def test_a_packet_camera_still_shows_the_station_its_own_picture() -> None:
    state = FakeCameraState()
    camera = Picamera2Camera(api=fake_picamera2_api(state), encoding="h264")
    sink = RecordingFrameSink()
    enabled = True
    feed = CameraFeed(camera, sink, self_view_fps=10.0, enabled=lambda: enabled)
    packets = 0
    started = time.monotonic()
    async with asyncio.timeout(20):
        while time.monotonic() - started < 1.5:  # aiortc's sender pulling packets
            assert isinstance(await feed.recv(), av.Packet)
            packets += 1
    shown = sink.stats("self")
    # About ten a second from the lores stream (not one per packet, not none).
    assert 8 <= shown.frames <= 17, shown.frames
    assert packets >= 30 and feed.frames_sent == packets
    picture = sink.newest("self")
    assert picture is not None and (picture.width, picture.height) == (320, 240)
    assert decode_stamp(picture) is not None
    assert sink.stats("remote").frames == 0

    # Camera off: the GP gets nothing, and the self-view stops changing too (as for frames).
    enabled = False
    before = sink.stats("self").frames
    pictures_before = feed.self_view_pictures
    recv = asyncio.ensure_future(feed.recv())
    await asyncio.sleep(0.5)
    assert not recv.done()  # packets are held back while the camera is off
    assert feed.self_view_pictures > pictures_before  # still read, just not shown
    assert sink.stats("self").frames == before
    enabled = True
    assert isinstance(await asyncio.wait_for(recv, 5), av.Packet)

    # Stopping the feed (aiortc does when the call ends) ends the self-view and the camera.
    task = feed._self_view_task
    assert task is not None and not task.done()
    feed.stop()
    await asyncio.wait({task}, timeout=5)
    assert task.done()
    await camera.aclose()
    assert state.closed == state.opened == 1


async def test_a_frame_camera_self_view_is_its_frames_and_starts_no_task() -> None:
    sink = RecordingFrameSink()
    feed = CameraFeed(TestPatternCamera(320, 240, fps=60), sink, self_view_fps=1000.0)
    for _ in range(5):
        frame = await feed.recv()
        assert isinstance(frame, av.VideoFrame)
    assert sink.stats("self").frames == 5
    assert feed._self_view_task is None
    feed.stop()


def offer_video_section(sdp: str) -> str:
    return sdp.split("m=video", 1)[1].split("m=", 1)[0]


async def test_the_passthrough_offer_has_h264_then_the_vp8_fallback_each_with_rtx() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        transceiver = pc.addTransceiver("video")
        preferred = passthrough_codec_preferences("video/H264")
        assert [c.mimeType for c in preferred] == [
            "video/H264",
            "video/H264",
            "video/VP8",
            "video/rtx",
        ]
        transceiver.setCodecPreferences(preferred)
        video = offer_video_section((await pc.createOffer()).sdp)
    finally:
        await pc.close()
    rtpmap = dict(re.findall(r"a=rtpmap:(\d+) ([\w-]+)/90000", video))
    h264 = {pt for pt, name in rtpmap.items() if name == "H264"}
    rtx = {pt for pt, name in rtpmap.items() if name == "rtx"}
    vp8 = {pt for pt, name in rtpmap.items() if name == "VP8"}
    assert len(h264) == 2 and len(vp8) == 1 and len(rtx) == 3
    assert set(rtpmap) == h264 | vp8 | rtx
    # H.264 first: a browser that has it gets the camera's own packets.
    assert rtpmap[video.split("\n", 1)[0].split()[2]] == "H264"
    # Each RTX format retransmits one of the H.264 formats (RFC 4588 "apt").
    apts = dict(re.findall(r"a=fmtp:(\d+) apt=(\d+)", video))
    assert set(apts) == rtx and set(apts.values()) == h264 | vp8
    # The RTX stream has its own SSRC, grouped with the video's.
    assert re.search(r"a=ssrc-group:FID \d+ \d+", video)
    assert "a=rtcp-fb:" in video and " nack" in video and "nack pli" in video


async def test_a_gp_without_h264_is_seen_and_the_feed_decodes_the_cameras_packets() -> None:
    # The codec an SDP puts first (real aiortc offer; Firefox's real VP8 answer is in
    # tests/integration/test_call_firefox.py).
    offerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        offerer.addTransceiver("video").setCodecPreferences(
            passthrough_codec_preferences("video/H264")
        )
        await offerer.setLocalDescription(await offerer.createOffer())
        offer = offerer.localDescription.sdp
    finally:
        await offerer.close()
    assert answer_video_codec(offer) == "H264"
    # The same, with H.264 taken out as a browser without it answers.
    h264 = re.findall(r"a=rtpmap:(\d+) H264/90000", offer)
    m_line = re.search(r"m=video .*", offer)
    assert m_line is not None
    kept = [pt for pt in m_line.group(0).split()[3:] if pt not in h264]
    vp8_only = offer.replace(m_line.group(0), " ".join(m_line.group(0).split()[:3] + kept))
    assert answer_video_codec(vp8_only) == "VP8"
    assert answer_video_codec("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n") is None

    # The feed then gives pictures (the camera's H.264, decoded) with the camera's stamp.
    state = FakeCameraState()
    camera = Picamera2Camera(api=fake_picamera2_api(state), encoding="h264")
    feed = CameraFeed(camera, RecordingFrameSink(), self_view_fps=10.0)
    feed.decode_packets = True
    try:
        async with asyncio.timeout(20):
            for _ in range(5):
                frame = await feed.recv()
                assert isinstance(frame, av.VideoFrame)
                assert decode_stamp(frame) is not None
    finally:
        feed.stop()
        await camera.aclose()

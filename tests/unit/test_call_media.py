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


async def test_the_passthrough_offer_has_h264_and_its_rtx_only() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        transceiver = pc.addTransceiver("video")
        preferred = passthrough_codec_preferences("video/H264")
        assert [c.mimeType for c in preferred] == ["video/H264", "video/H264", "video/rtx"]
        transceiver.setCodecPreferences(preferred)
        video = offer_video_section((await pc.createOffer()).sdp)
    finally:
        await pc.close()
    rtpmap = dict(re.findall(r"a=rtpmap:(\d+) ([\w-]+)/90000", video))
    h264 = {pt for pt, name in rtpmap.items() if name == "H264"}
    rtx = {pt for pt, name in rtpmap.items() if name == "rtx"}
    assert len(h264) == 2 and len(rtx) == 2
    assert set(rtpmap) == h264 | rtx  # no VP8
    # Each RTX format retransmits one of the H.264 formats (RFC 4588 "apt").
    apts = dict(re.findall(r"a=fmtp:(\d+) apt=(\d+)", video))
    assert set(apts) == rtx and set(apts.values()) == h264
    # The RTX stream has its own SSRC, grouped with the video's.
    assert re.search(r"a=ssrc-group:FID \d+ \d+", video)
    assert "a=rtcp-fb:" in video and " nack" in video and "nack pli" in video

"""The station's corrections to aiortc: a video frame is released at its last packet."""

from __future__ import annotations

import asyncio

import aioice
import aioice.ice
from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from aiortc.rtp import RtpPacket

from station.call import tuning
from station.call.tuning import (
    PACED_AIOICE_VERSION,
    FrameEndJitterBuffer,
    install_prompt_ice_completion,
    prompt_ice_completion_installed,
    use_frame_end_jitter_buffer,
)


def packet(seq: int, ts: int, *, marker: bool = False, data: bytes | None = None) -> RtpPacket:
    """A depayloaded video packet, as aiortc's receiver hands it to the jitter buffer."""
    rtp = RtpPacket(payload_type=97, marker=int(marker), sequence_number=seq, timestamp=ts)
    rtp._data = data if data is not None else f"<{seq}>".encode()  # type: ignore[attr-defined]
    return rtp


def feed(buffer: JitterBuffer, *packets: RtpPacket) -> list[tuple[int, bytes]]:
    """Add ``packets``; the frames released, as (timestamp, data), in order."""
    released = []
    for rtp in packets:
        _, frame = buffer.add(rtp)
        if frame is not None:
            released.append((frame.timestamp, frame.data))
    return released


def test_a_frame_is_released_at_its_marked_last_packet() -> None:
    frame = [packet(100, 9000), packet(101, 9000), packet(102, 9000, marker=True)]
    assert feed(FrameEndJitterBuffer(), *frame) == [(9000, b"<100><101><102>")]
    # aiortc's own buffer holds the same complete frame until the next one begins.
    stock = JitterBuffer(capacity=512, is_video=True)
    assert feed(stock, *frame) == []
    assert feed(stock, packet(103, 12000)) == [(9000, b"<100><101><102>")]


def test_each_frame_of_a_stream_is_released_once_and_in_order() -> None:
    buffer = FrameEndJitterBuffer()
    stream = []
    seq = 65530  # the sequence numbers wrap around on the way
    for ts in (0, 3000, 6000, 9000):
        stream += [packet(seq % 65536, ts), packet((seq + 1) % 65536, ts, marker=True)]
        seq += 2
    released = feed(buffer, *stream)
    assert [ts for ts, _ in released] == [0, 3000, 6000, 9000]
    assert released[0][1] == b"<65530><65531>"
    assert released[3][1] == b"<0><1>"


def test_a_frame_with_a_gap_waits_for_the_missing_packet() -> None:
    buffer = FrameEndJitterBuffer()
    assert feed(buffer, packet(10, 500), packet(12, 500, marker=True)) == []
    # The retransmitted (or late) packet completes it; the data is in sequence order.
    assert feed(buffer, packet(11, 500)) == [(500, b"<10><11><12>")]


def test_frames_without_marked_ends_fall_back_to_the_next_frame_beginning() -> None:
    buffer = FrameEndJitterBuffer()
    # A sender that does not mark frame ends: aiortc's rule (the next timestamp) still works.
    assert feed(buffer, packet(20, 700), packet(21, 700)) == []
    assert feed(buffer, packet(22, 800)) == [(700, b"<20><21>")]
    # A marked end after an unmarked frame: released at once again.
    assert feed(buffer, packet(23, 800, marker=True)) == [(800, b"<22><23>")]


def test_late_duplicates_of_a_released_frame_are_ignored() -> None:
    buffer = FrameEndJitterBuffer()
    assert feed(buffer, packet(5, 100), packet(6, 100, marker=True)) == [(100, b"<5><6>")]
    assert feed(buffer, packet(6, 100, marker=True), packet(5, 100)) == []
    assert feed(buffer, packet(7, 200, marker=True)) == [(200, b"<7>")]


def test_only_the_video_receiver_gets_the_frame_end_buffer() -> None:
    async def run() -> tuple[int, list[type]]:
        pc = RTCPeerConnection()
        try:
            pc.addTrack(VideoStreamTrack())
            pc.addTrack(AudioStreamTrack())
            replaced = use_frame_end_jitter_buffer(pc)
            kinds = {
                t.kind: type(t.receiver._RTCRtpReceiver__jitter_buffer)  # type: ignore[attr-defined]
                for t in pc.getTransceivers()
            }
            return replaced, [kinds["video"], kinds["audio"]]
        finally:
            await pc.close()

    replaced, (video, audio) = asyncio.run(run())
    assert replaced == 1
    assert video is FrameEndJitterBuffer
    # Audio keeps aiortc's buffer: there the marker bit starts a talk-spurt, it ends nothing.
    assert audio is JitterBuffer


def test_prompt_ice_completion_is_in_effect_for_the_pinned_aioice() -> None:
    assert aioice.__version__ == PACED_AIOICE_VERSION, (
        "aioice changed: check station/call/tuning.py's connect against the new release, "
        "then update PACED_AIOICE_VERSION and the pin in pyproject.toml"
    )
    assert install_prompt_ice_completion() is True
    assert prompt_ice_completion_installed()
    assert aioice.ice.Connection.connect is tuning._prompt_connect

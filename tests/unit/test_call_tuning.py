"""The station's corrections to aiortc: a video frame is released at its last packet, a lost
audio packet is skipped."""

from __future__ import annotations

import asyncio
import fractions

import aioice
import aioice.ice
import aiortc
import av
import pytest
from aiortc import RTCPeerConnection
from aiortc.codecs import depayload, get_decoder, get_encoder
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from hardware.camera import TestPattern, decode_stamp
from station.call import tuning
from station.call.tuning import (
    FRAME_END_AIORTC_VERSION,
    PACED_AIOICE_VERSION,
    AudioJitterBuffer,
    FrameEndJitterBuffer,
    install_prompt_ice_completion,
    prompt_ice_completion_installed,
    use_station_jitter_buffers,
)


def packet(seq: int, ts: int, *, marker: bool = False, data: bytes | None = None) -> RtpPacket:
    """A depayloaded video packet, as aiortc's receiver hands it to the jitter buffer."""
    rtp = RtpPacket(payload_type=97, marker=int(marker), sequence_number=seq, timestamp=ts)
    rtp._data = data if data is not None else f"<{seq}>".encode()  # type: ignore[attr-defined]
    return rtp


def padding(seq: int, ts: int, *, marker: bool = False) -> RtpPacket:
    """Chromium's bandwidth-probe padding on the video SSRC when no RTX was negotiated.

    As WebRTC's ``PacketSequencer`` makes it: the next sequence number after a frame's marked
    last packet, that frame's timestamp and payload type, no payload, up to 224 bytes of
    padding. Parsed from the wire, then given ``_data`` as aiortc's ``RTCRtpReceiver`` does
    for an empty payload.
    """
    wire = RtpPacket(
        payload_type=97, marker=int(marker), sequence_number=seq, timestamp=ts, ssrc=0x1234
    )
    wire.padding_size = 224
    rtp = RtpPacket.parse(wire.serialize())
    assert rtp.payload == b"" and rtp.padding_size == 224
    rtp._data = b""  # type: ignore[attr-defined]  # rtcrtpreceiver: `if packet.payload` else b""
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


def test_padding_after_a_frame_is_never_released_as_a_frame() -> None:
    buffer = FrameEndJitterBuffer()
    stream = [
        packet(100, 0),
        packet(101, 0, marker=True),
        # Chromium probes the bandwidth: padding right after the marked packet.
        *(padding(seq, 0) for seq in range(102, 106)),
        packet(106, 3000),
        packet(107, 3000, marker=True),
    ]
    released = feed(buffer, *stream)
    assert released == [(0, b"<100><101>"), (3000, b"<106><107>")]
    assert buffer.padding_dropped == 4
    # The padding kept the sequence contiguous: the next frame went out at its marker at once.
    assert feed(buffer, packet(108, 6000, marker=True)) == [(6000, b"<108>")]


def test_padding_first_and_padding_alone_never_make_a_frame() -> None:
    buffer = FrameEndJitterBuffer()
    # Probing before the first frame, and padding between unmarked frames: aiortc's own rule
    # would close a "frame" of padding when the next timestamp begins.
    assert feed(buffer, padding(50, 0), padding(51, 0), padding(52, 0)) == []
    assert feed(buffer, packet(53, 3000), packet(54, 3000)) == []
    assert feed(buffer, padding(55, 3000), padding(56, 4500)) == []
    assert feed(buffer, packet(57, 6000)) == [(3000, b"<53><54>")]
    assert feed(buffer, padding(58, 6000), packet(59, 9000)) == [(6000, b"<57>")]
    assert all(data for _, data in feed(buffer, packet(60, 9000, marker=True)))


def test_padding_can_neither_end_nor_split_a_frame() -> None:
    buffer = FrameEndJitterBuffer()
    # Padding inside a frame, even marked and with a foreign timestamp, is only a placeholder.
    assert feed(buffer, packet(10, 500), padding(11, 9999, marker=True)) == []
    assert feed(buffer, packet(12, 500), padding(13, 123)) == []
    assert feed(buffer, packet(14, 500, marker=True)) == [(500, b"<10><12><14>")]
    # Reordered: the padding after a frame arrives before the frame's last packet.
    assert feed(buffer, packet(15, 800), padding(17, 800)) == []
    assert feed(buffer, packet(16, 800, marker=True)) == [(800, b"<15><16>")]
    assert feed(buffer, packet(18, 900, marker=True)) == [(900, b"<18>")]


def test_a_lost_packet_still_holds_its_frame_when_padding_follows() -> None:
    buffer = FrameEndJitterBuffer()
    assert feed(buffer, packet(30, 1), padding(32, 1), packet(33, 1, marker=True)) == []
    assert feed(buffer, padding(34, 1), packet(35, 2, marker=True)) == []
    # The retransmission completes the frame; the next (already complete) follows.
    assert feed(buffer, packet(31, 1)) == [(1, b"<30><31><33>")]
    assert feed(buffer, packet(36, 3, marker=True)) == [(2, b"<35>")]
    assert feed(buffer, packet(37, 4, marker=True)) == [(3, b"<36>")]


def test_padding_across_the_sequence_number_wrap() -> None:
    buffer = FrameEndJitterBuffer()
    stream = [
        packet(65533, 0),
        packet(65534, 0, marker=True),
        padding(65535, 0),
        padding(0, 0),
        packet(1, 3000, marker=True),
    ]
    assert feed(buffer, *stream) == [(0, b"<65533><65534>"), (3000, b"<1>")]


def test_an_overflow_drops_whole_frames_whatever_timestamp_padding_has() -> None:
    buffer = FrameEndJitterBuffer(capacity=8)
    # Frame 100 lost its packet 1, so nothing can be released; padding with a foreign
    # timestamp sits inside it.
    assert feed(buffer, packet(0, 100), padding(2, 7), packet(3, 100)) == []
    assert feed(buffer, packet(4, 100, marker=True), packet(5, 200)) == []
    # Far ahead: the buffer must make room by dropping frame 100 whole, not up to the padding
    # (which would leave <3><4> at the front as a broken frame).
    released = feed(buffer, packet(9, 200, marker=True), packet(10, 300, marker=True))
    assert (100, b"<3><4>") not in released
    assert all(ts != 100 for ts, _ in released)


H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=97)


def h264_frames(count: int) -> list[tuple[int, list[bytes]]]:
    """Stamped test-pattern frames through aiortc's H.264 encoder: (timestamp, RTP payloads)."""
    encoder = get_encoder(H264)
    pattern = TestPattern(320, 240)
    out = []
    for index in range(count):
        frame = pattern.render(index, 1_000 + index)
        frame.pts = index * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        payloads, timestamp = encoder.encode(frame, force_keyframe=index == 0)
        out.append((timestamp, payloads))
    return out


def received(seq: int, timestamp: int, payload: bytes, *, marker: bool) -> RtpPacket:
    """One H.264 packet through the wire and aiortc's depayloader, as the receiver makes it."""
    wire = RtpPacket(payload_type=97, marker=int(marker), sequence_number=seq, timestamp=timestamp)
    wire.payload = payload
    rtp = RtpPacket.parse(wire.serialize())
    rtp._data = depayload(H264, rtp.payload)  # type: ignore[attr-defined]
    return rtp


def test_h264_with_chromium_padding_decodes_every_frame() -> None:
    wire: list[RtpPacket] = []
    seq = 65_000  # wraps on the way
    for index, (timestamp, payloads) in enumerate(h264_frames(30)):
        for number, payload in enumerate(payloads):
            last = number == len(payloads) - 1
            wire.append(received(seq % 65536, timestamp, payload, marker=last))
            seq += 1
        if index % 3 == 0:  # a probe burst after every third frame
            for _ in range(5):
                wire.append(padding(seq % 65536, timestamp))
                seq += 1
    buffer = FrameEndJitterBuffer()
    decoder = get_decoder(H264)
    seqs = []
    for rtp in wire:
        _, frame = buffer.add(rtp)
        if frame is None:
            continue
        assert frame.data, "an empty frame would end PyAV's stream"
        for picture in decoder.decode(frame):
            assert isinstance(picture, av.VideoFrame)
            stamp = decode_stamp(picture)
            assert stamp is not None
            seqs.append(stamp.seq)
    assert seqs == list(range(30))
    assert buffer.padding_dropped == 50


VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)


def encoded(codec: RTCRtpCodecParameters, count: int, keyframes: set[int]):  # type: ignore[no-untyped-def]
    """Stamped test-pattern frames through aiortc's encoder: (index, timestamp, payloads)."""
    encoder = get_encoder(codec)
    pattern = TestPattern(320, 240)
    for index in range(count):
        frame = pattern.render(index, 1_000 + index)
        frame.pts = index * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        payloads, timestamp = encoder.encode(frame, force_keyframe=index in keyframes)
        yield index, timestamp, payloads


def on_the_wire(codec: RTCRtpCodecParameters, payload: bytes, seq: int, ts: int, marker: bool):  # type: ignore[no-untyped-def]
    wire = RtpPacket(payload_type=codec.payloadType, marker=int(marker), sequence_number=seq)
    wire.timestamp = ts
    wire.payload = payload
    rtp = RtpPacket.parse(wire.serialize())
    rtp._data = depayload(codec, rtp.payload)
    return rtp


@pytest.mark.parametrize("codec", [VP8, H264], ids=["VP8", "H264"])
def test_a_packet_lost_for_good_gives_way_to_the_next_keyframe(
    codec: RTCRtpCodecParameters,
) -> None:
    # A pause of the network: the first packet of frame 10 never arrives (not even resent).
    # Every frame after it waited behind that gap until the buffer overflowed, 512 packets
    # later; the keyframe the station asks for (frame 25) waited too, and the call re-dialled
    # with the picture frozen. Now the keyframe is released and everything before it dropped.
    buffer = FrameEndJitterBuffer()
    decoder = get_decoder(codec)
    seq = 65_500  # wraps on the way
    seen = []
    for index, timestamp, payloads in encoded(codec, 40, keyframes={0, 25}):
        for number, payload in enumerate(payloads):
            rtp = on_the_wire(codec, payload, seq % 65536, timestamp, number == len(payloads) - 1)
            seq += 1
            if index == 10 and number == 0:
                continue  # lost for good
            _, frame = buffer.add(rtp)
            if frame is None:
                continue
            for picture in decoder.decode(frame):
                stamp = decode_stamp(picture)
                assert stamp is not None
                seen.append(stamp.seq)
    assert seen == [*range(10), *range(25, 40)]
    assert buffer.keyframe_skips == 1


def test_a_gap_that_holds_back_packets_asks_for_a_keyframe_once() -> None:
    buffer = FrameEndJitterBuffer()
    assert feed(buffer, packet(1, 0, marker=True)) == [(0, b"<1>")]
    # Packet 2 is lost for good; delta frames (no keyframe start) keep coming behind it.
    asked = []
    for seq in range(3, 3 + 100):
        pli, frame = buffer.add(packet(seq, seq * 100, marker=True))
        assert frame is None
        asked.append(pli)
    # One request, once 40 packets waited behind the gap; not one per packet after that.
    assert asked.index(True) == 39 and asked.count(True) == 1
    assert buffer.keyframe_requests == 1


def test_a_gap_behind_a_slow_sender_asks_for_a_keyframe_in_time_and_again() -> None:
    """CI under bursty loss: the GP's browser, its estimate fallen, sent so few packets that
    40 behind a gap took over 2 s, and the station's picture stayed frozen until the stall
    watchdog asked. A gap now asks after 0.35 s whatever the number of packets, and again
    every second while it is still there (the keyframe can be lost in the burst too)."""
    now = [100.0]
    buffer = FrameEndJitterBuffer(clock=lambda: now[0])
    assert feed(buffer, packet(1, 0, marker=True)) == [(0, b"<1>")]
    asked = []
    for seq in range(3, 3 + 30):  # packet 2 lost for good; eight packets a second behind it
        now[0] += 0.125
        pli, frame = buffer.add(packet(seq, seq * 100, marker=True))
        assert frame is None
        asked.append(pli)
    # Seen at the first packet behind it (t=0.125); asked 0.375 s later; again each second.
    assert [i for i, pli in enumerate(asked) if pli] == [3, 11, 19, 27]
    assert buffer.keyframe_requests == 4


def test_a_gap_left_by_a_pause_of_the_network_asks_for_a_keyframe_at_once() -> None:
    # Issue 18 item 4: after a pause every packet sent meanwhile is lost; waiting for 40 more
    # packets from a sender that slowed down kept the picture frozen 2-2.7 s (bench/redial.py).
    now = [100.0]
    buffer = FrameEndJitterBuffer(clock=lambda: now[0])
    assert feed(buffer, packet(1, 0, marker=True)) == [(0, b"<1>")]
    now[0] += 0.02
    assert feed(buffer, packet(2, 100, marker=True)) == [(100, b"<2>")]
    now[0] += 1.0  # the pause: packets 3-29 never arrive
    pli, frame = buffer.add(packet(30, 3000, marker=True))
    assert (pli, frame) == (True, None)
    # Once per gap; the keyframe that answers is released past the gap.
    now[0] += 0.02
    assert buffer.add(packet(31, 3100, marker=True)) == (False, None)
    assert buffer.keyframe_requests == 1
    # A short gap with no pause before it waits for its retransmission, as before.
    buffer = FrameEndJitterBuffer(clock=lambda: now[0])
    assert feed(buffer, packet(1, 0, marker=True)) == [(0, b"<1>")]
    now[0] += 0.02
    assert buffer.add(packet(3, 200, marker=True)) == (False, None)
    assert buffer.keyframe_requests == 0


def test_an_empty_frame_ends_pyav_h264_stream() -> None:
    """Why padding must never reach the decoder: after one empty packet nothing decodes."""
    (t0, first), (t1, second) = h264_frames(2)
    decoder = get_decoder(H264)
    data = [b"".join(depayload(H264, p) for p in payloads) for payloads in (first, second)]
    assert decoder.decode(JitterFrame(data[0], t0))
    decoder.decode(JitterFrame(b"", t0))  # what the old buffer released for a padding burst
    with pytest.raises(av.FFmpegError):
        decoder.decode(JitterFrame(data[1], t1))


def test_video_and_audio_receivers_get_the_station_buffers() -> None:
    async def run() -> tuple[int, list[type]]:
        pc = RTCPeerConnection()
        try:
            pc.addTrack(VideoStreamTrack())
            pc.addTrack(AudioStreamTrack())
            replaced = use_station_jitter_buffers(pc)
            kinds = {
                t.kind: type(t.receiver._RTCRtpReceiver__jitter_buffer)  # type: ignore[attr-defined]
                for t in pc.getTransceivers()
            }
            return replaced, [kinds["video"], kinds["audio"]]
        finally:
            await pc.close()

    assert aiortc.__version__ == FRAME_END_AIORTC_VERSION, (
        "aiortc changed: check FrameEndJitterBuffer against the new JitterBuffer and "
        "RTCRtpReceiver, then update FRAME_END_AIORTC_VERSION and the pin in pyproject.toml"
    )
    replaced, (video, audio) = asyncio.run(run())
    assert replaced == 2
    assert video is FrameEndJitterBuffer
    # Audio gets its own: there the marker bit starts a talk-spurt, it ends nothing.
    assert audio is AudioJitterBuffer


def test_prompt_ice_completion_is_in_effect_for_the_pinned_aioice() -> None:
    assert aioice.__version__ == PACED_AIOICE_VERSION, (
        "aioice changed: check station/call/tuning.py's connect against the new release, "
        "then update PACED_AIOICE_VERSION and the pin in pyproject.toml"
    )
    assert install_prompt_ice_completion() is True
    assert prompt_ice_completion_installed()
    assert aioice.ice.Connection.connect is tuning._prompt_connect


def _audio_arrivals(count: int, lost: set[int], late: dict[int, int]) -> list[RtpPacket]:
    """Opus packets 1000.. (20 ms, 960 samples apart) in arrival order: ``lost`` never
    arrive, ``late[n] = k`` arrives after the k packets sent after it."""
    order = [n for n in range(count) if n not in lost and n not in late]
    for n, behind in sorted(late.items()):
        order.insert(order.index(n + behind) + 1 if n + behind in order else len(order), n)
    return [packet(1000 + n, 960 * n, data=f"<{n}>".encode()) for n in order]


def _released(buffer: JitterBuffer, arrivals: list[RtpPacket]) -> tuple[list[int], int]:
    """The packet numbers released, in order, and the most packets held at once."""
    released, deepest = [], 0
    for rtp in arrivals:
        _, frame = buffer.add(rtp)
        if frame is not None:
            released.append(frame.timestamp // 960)
        deepest = max(deepest, sum(p is not None for p in buffer._packets))
    return released, deepest


def test_a_lost_audio_packet_costs_itself_and_no_delay() -> None:
    lost = {20, 45, 46, 70, 90, 130, 170}
    ours, ours_deepest = _released(AudioJitterBuffer(), _audio_arrivals(200, lost, {}))
    # Everything that arrived, in order, but the last four (held: 80 ms), nothing else.
    assert ours == [n for n in range(196) if n not in lost]
    assert ours_deepest <= 5
    # aiortc's own buffer (as its receiver makes it) stalls at the first loss until 16 wait,
    # then stays that deep, and later losses cost packets that did arrive.
    theirs, theirs_deepest = _released(
        JitterBuffer(capacity=16, prefetch=4), _audio_arrivals(200, lost, {})
    )
    assert theirs_deepest >= 15
    assert len(theirs) < len(ours) - 10


def test_a_burst_of_lost_audio_costs_only_the_burst() -> None:
    lost = set(range(40, 70))  # 600 ms lost at once
    released, _ = _released(AudioJitterBuffer(), _audio_arrivals(120, lost, {}))
    assert released == [n for n in range(116) if n not in lost]


def test_a_late_audio_packet_finds_its_place_within_four() -> None:
    late = {30: 3, 60: 4, 100: 1}
    released, deepest = _released(AudioJitterBuffer(), _audio_arrivals(150, set(), late))
    assert released == list(range(146))
    assert deepest <= 6


def test_an_audio_packet_later_than_four_is_dropped_not_played_out_of_order() -> None:
    buffer = AudioJitterBuffer()
    released, _ = _released(buffer, _audio_arrivals(100, set(), {40: 5}))
    assert released == [n for n in range(96) if n != 40]
    assert buffer.skipped == 1 and buffer.late == 1


def test_a_jump_in_audio_sequence_numbers_starts_the_buffer_afresh() -> None:
    buffer = AudioJitterBuffer()
    first, _ = _released(buffer, [packet(1000 + n, 960 * n) for n in range(10)])
    assert len(first) == 6
    then = [packet(5000 + n, 960 * (100 + n)) for n in range(10)]  # a new stream, say
    second, _ = _released(buffer, then)
    assert [t - 100 for t in second] == list(range(6))
    wrapped = AudioJitterBuffer()
    across, _ = _released(wrapped, [packet((65530 + n) % 65536, 960 * n) for n in range(12)])
    assert across == list(range(8))

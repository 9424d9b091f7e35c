"""Three corrections to aiortc 1.16 / aioice 0.13 that cost every call time or audio, measured.

Both were found by timing a call's set-up on loopback (``bench/call.py``, the station's log at
DEBUG with timestamps) and are the station's own, small, version-guarded adjustments:

* **A received video frame is held until the next frame begins.** aiortc's jitter buffer
  decides that a frame is complete when a packet with a *different* RTP timestamp arrives, so
  every frame from the GP waits one frame interval (33 ms at 30 fps, more while the sender
  ramps up) before it is decoded: on the first frame (set-up) and on every frame after it
  (glass-to-glass latency). RTP marks a video frame's last packet with the marker bit (RFC
  3550 section 5.1, RFC 7741 section 4.1 for VP8, RFC 6184 section 5.1 for H.264), so
  :class:`FrameEndJitterBuffer` releases a frame at its marked packet when every packet from
  the frame's first to it is present, and otherwise falls back to aiortc's own rule. Only
  video: for audio the marker bit means the *start* of a talk-spurt.

  **Padding-only packets are placeholders, never frames.** While it probes the bandwidth,
  Chromium sends RTP packets with no payload (only padding) on the video SSRC when no RTX
  stream was negotiated: the next sequence number after a frame's marked last packet, that
  frame's timestamp, no marker. aiortc's receiver hands them to the buffer with empty data
  (``packet._data = b""``). Released as a "frame", that empty data reaches PyAV as an empty
  packet, which it takes as the end of the stream: every later frame then fails to decode
  (Chromium to the station: 1 frame in 8 s and 236 decode errors). So such a packet only
  keeps its sequence number occupied (the frame after it stays contiguous and is released at
  its marker); it has no timestamp, marker or data as far as frame assembly goes, so it can
  neither end, split nor join a frame, and a frame of nothing but padding is never released.
* **A lost audio packet stalls the GP's voice.** aiortc's audio buffer waits for a missing
  packet until 16 packets queue behind it, and stays that deep: see
  :class:`AudioJitterBuffer`, which waits for five newer packets and then skips it.
* **ICE completes, then waits out the pacing interval.** aioice's ``Connection.connect``
  starts a check, sleeps Ta (20 ms), and only then looks whether the check list completed; on
  a path that answers in a millisecond that is 20 ms of nothing on every dial and re-dial.
  :func:`install_prompt_ice_completion` replaces ``connect`` with the same steps, except that
  the pacing sleep ends as soon as the check list completes or fails.

The second touches private attributes of aioice, so it is only applied to the aioice version
it was written against (pinned in ``pyproject.toml``); any other version keeps aioice's own
``connect`` and says so in the log. The first subclasses aiortc's ``JitterBuffer`` and relies on
its internals (``_origin``, ``_packets``, ``_capacity``, ``remove``; the receiver's
name-mangled buffer attribute and its ``_data = b""`` for an empty payload), so it too is only
installed on the aiortc version it was written against; another keeps aiortc's own buffer
(a frame later, but correct) and says so in the log. The tests check that both are in effect
and feed the buffer real ``RtpPacket``s, padding included.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc.jitterbuffer import MAX_MISORDER, JitterBuffer, JitterFrame
from aiortc.utils import uint16_add

__all__ = [
    "FRAME_END_AIORTC_VERSION",
    "PACED_AIOICE_VERSION",
    "AudioJitterBuffer",
    "FrameEndJitterBuffer",
    "install_prompt_ice_completion",
    "prompt_ice_completion_installed",
    "use_station_jitter_buffers",
]

_log = logging.getLogger(__name__)

#: The aioice release whose ``Connection.connect`` :func:`install_prompt_ice_completion`
#: reproduces; another release keeps its own.
PACED_AIOICE_VERSION = "0.13.0"

#: The aiortc release whose ``JitterBuffer`` and ``RTCRtpReceiver`` internals
#: :class:`FrameEndJitterBuffer` relies on; another release keeps its own buffer.
FRAME_END_AIORTC_VERSION = "1.16.0"

#: aioice's pacing interval Ta between starting two checks (RFC 8445 section 14.2).
_TA_SECONDS = 0.02

#: aiortc's video jitter buffer size (packets); the same as aiortc's own.
_VIDEO_CAPACITY = 512
#: A gap at the front of the video buffer that has held back this many packets asks for a
#: keyframe (about 0.3 s of a 640x480 stream; NACK's retransmission, one round trip, had its
#: chance long before).
_GAP_KEYFRAME_PACKETS = 40
#: ... or that has held them back this long, whatever their number: a sender that slowed down
#: (its estimate fell in a burst of loss) can take seconds to send 40 packets, and CI saw the
#: station's picture frozen 2.1 s under bursty loss until the stall watchdog asked. Long
#: enough for NACK's retransmission on a round trip up to about 150 ms.
_GAP_KEYFRAME_SECONDS = 0.35
#: A gap still there this long after its keyframe request asks again (the keyframe itself
#: can be lost in a burst).
_GAP_KEYFRAME_REPEAT_SECONDS = 1.0
#: A packet arriving after this long a silence ends a pause of the network (a Wi-Fi roam, a
#: cut): every packet sent meanwhile is lost, and NACK cannot bring a whole pause back. A gap
#: it finds at the front asks for a keyframe at once instead of after
#: :data:`_GAP_KEYFRAME_PACKETS` more packets, which a sender that slowed down after the pause
#: can take seconds to send (bench/redial.py saw the picture stay frozen 2-2.7 s, until the
#: call's stall watchdog asked). Video packets (padding included) come at least every 70 ms.
_PAUSE_SECONDS = 0.25
#: The audio buffer: its size, aiortc's hold (80 ms of 20 ms packets), and how many newer
#: packets make a missing one count as lost: one more than the hold, so the wait for a lost
#: packet costs the 20 ms its absence frees and the delay never creeps up (a longer wait would
#: add 20 ms for good at every loss: one packet released per packet received). A packet
#: overtaken by up to four others (80 ms) still finds its place.
_AUDIO_CAPACITY = 64  # a burst of 60 lost packets (1.2 s) is a loss, not a new stream
_AUDIO_PREFETCH = 4
_AUDIO_REORDER = _AUDIO_PREFETCH + 1
_H264_START_CODE = b"\x00\x00\x00\x01"
_VP8_KEY_START_CODE = b"\x9d\x01\x2a"


class FrameEndJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, releasing each frame at its last (marked) packet.

    Packets with empty data (padding only) hold their sequence number and nothing else; see
    the module's text.
    """

    def __init__(
        self, capacity: int = _VIDEO_CAPACITY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(capacity=capacity, is_video=True)
        self._clock = clock
        self._last_arrival: float | None = None
        #: A pause ended and no frame has been released since: a gap asks for a keyframe now.
        self._after_pause = False
        #: Padding-only packets dropped (they never reach the decoder).
        self.padding_dropped = 0
        #: Gaps skipped at a complete keyframe behind them, and keyframes asked for.
        self.keyframe_skips = 0
        self.keyframe_requests = 0
        self._asked_for_gap: int | None = None
        self._asked_at = 0.0
        #: The gap at the front and when it was first seen there.
        self._gap: tuple[int, float] | None = None
        self._want_keyframe = False

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        """aiortc's ``add``; and a keyframe request (RTCP PLI, sent by aiortc's receiver) once
        a gap at the front has held back :data:`_GAP_KEYFRAME_PACKETS` packets, or at once
        after a pause of the network (:data:`_PAUSE_SECONDS`)."""
        now = self._clock()
        if self._last_arrival is not None and now - self._last_arrival >= _PAUSE_SECONDS:
            self._after_pause = True
        self._last_arrival = now
        pli, frame = super().add(packet)
        if frame is not None:
            self._after_pause = False
        if self._want_keyframe:
            self._want_keyframe = False
            self.keyframe_requests += 1
            pli = True
        return pli, frame

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        """The first complete frame from the front of the buffer, or ``None``.

        A frame is complete at its marked last packet when every packet from the front to it
        is present, or (aiortc's own rule, when the marked packet was lost or never sent) when
        a packet of another timestamp follows it without a gap. Padding is skipped over.
        """
        origin = self._origin
        if origin is None:
            return None
        packets: list[Any] = []
        timestamp: int | None = None
        leading_padding = 0
        gap: int | None = None
        for count in range(self._capacity):
            packet = self._packets[(origin + count) % self._capacity]
            if packet is None:
                gap = count  # a gap (or not yet arrived): nothing more is complete
                break
            if _is_padding(packet):
                if not packets:
                    leading_padding += 1
                continue
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                # The next frame has begun: aiortc's rule (the marked packet never came).
                return self._release(packets, timestamp, count)
            packets.append(packet)
            if packet.marker:
                return self._release(packets, timestamp, count + 1)
        if gap is not None:
            frame = self._past_gap(origin, gap, sequence_number)
            if frame is not None:
                return frame
        if leading_padding:
            # Padding at the front belongs to no frame: free its slots now.
            self.padding_dropped += leading_padding
            self.remove(leading_padding)
        return None

    def _past_gap(self, origin: int, gap: int, newest: int) -> JitterFrame | None:
        """A gap ``gap`` packets after the front holds back everything behind it: a packet
        lost for good (during a pause of the network, or its retransmission lost too) would
        otherwise block the buffer until it overflows, 512 packets later, keyframes that
        arrive meanwhile included. A complete keyframe behind the gap is released, and
        everything before it dropped (nothing before a keyframe is needed to decode after
        it). Without one, a keyframe is asked for once the gap has held back
        :data:`_GAP_KEYFRAME_PACKETS` packets or :data:`_GAP_KEYFRAME_SECONDS`, or at once
        after a pause; again after :data:`_GAP_KEYFRAME_REPEAT_SECONDS` if it is still there."""
        behind = uint16_add(newest, -origin)
        if behind <= gap or behind >= self._capacity:
            return None
        for start in range(gap + 1, behind + 1):
            first: Any = self._packets[(origin + start) % self._capacity]
            if first is None or _is_padding(first) or not _starts_keyframe(first._data):
                continue
            packets: list[Any] = []
            for count in range(start, behind + 1):
                packet = self._packets[(origin + count) % self._capacity]
                if packet is None or (
                    not _is_padding(packet) and packet.timestamp != first.timestamp
                ):
                    break  # not complete (yet)
                if _is_padding(packet):
                    continue
                packets.append(packet)
                if packet.marker:
                    self.keyframe_skips += 1
                    self.remove(start)  # the gap and everything before the keyframe
                    return self._release(packets, first.timestamp, count + 1 - start)
            break  # the first keyframe behind the gap is not complete yet: wait for it
        gap_at = uint16_add(origin, gap)
        now = self._clock()
        if self._gap is None or self._gap[0] != gap_at:
            self._gap = (gap_at, now)
        waited = (
            behind - gap >= _GAP_KEYFRAME_PACKETS
            or now - self._gap[1] >= _GAP_KEYFRAME_SECONDS
            or self._after_pause
        )
        again = now - self._asked_at >= _GAP_KEYFRAME_REPEAT_SECONDS
        if waited and (self._asked_for_gap != gap_at or again):
            self._asked_for_gap = gap_at
            self._asked_at = now
            self._want_keyframe = True
        return None

    def _release(self, packets: list[Any], timestamp: int, count: int) -> JitterFrame:
        """Remove the first ``count`` packets (padding among them too); the frame of ``packets``."""
        self.padding_dropped += count - len(packets)
        self.remove(count)
        return JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)

    def smart_remove(self, count: int) -> bool:
        """aiortc's overflow clean-up (drop whole frames), with padding's timestamps ignored.

        The same steps as aiortc 1.16's ``JitterBuffer.smart_remove``, except that a padding
        packet's timestamp cannot end the frame being dropped, which would leave that frame's
        remaining packets at the front to be released as a broken frame.
        """
        timestamp = None
        for i in range(self._capacity):
            assert self._origin is not None
            pos = self._origin % self._capacity
            packet = self._packets[pos]
            if packet is not None and not _is_padding(packet):
                if i >= count and timestamp != packet.timestamp:
                    break
                timestamp = packet.timestamp
            self._packets[pos] = None
            self._origin = uint16_add(self._origin, 1)
            if i == self._capacity - 1:
                return True
        return False


class AudioJitterBuffer(JitterBuffer):
    """An audio jitter buffer that skips a lost packet instead of stalling on it.

    aiortc 1.16's audio buffer (16 packets, holding 4) releases a packet only when every
    packet before it is there. A packet lost for good (audio has no NACK) stalls it until 16
    packets wait behind the gap; then it drops one slot and goes on releasing one packet per
    packet received, so from the first loss on the GP's voice is 300 ms late for the rest of
    the call, and every later loss or late packet costs good packets too (stationd under 5 %
    loss and ±50 ms jitter decoded 73 % of the GP's audio frames, tests/integration/
    test_call_impaired.py). Here the buffer holds the same :data:`_AUDIO_PREFETCH` packets,
    waits for a missing one until :data:`_AUDIO_REORDER` newer packets are here (a packet
    overtaken by 80 ms or less still finds its place), then counts it lost and goes on: the
    delay stays 80 ms, and a lost 20 ms packet costs 20 ms of audio, not more.

    Each Opus packet is one frame (RFC 7587), so a frame is a packet; one packet received
    releases at most one (aiortc's receiver takes one frame per packet), and skipping a lost
    slot lets the buffer catch up.
    """

    def __init__(self, capacity: int = _AUDIO_CAPACITY) -> None:
        super().__init__(capacity=capacity, prefetch=_AUDIO_PREFETCH)
        self._newest: int | None = None
        #: Packets counted lost (never arrived in time) and packets arriving too late.
        self.skipped = 0
        self.late = 0

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        """Keep ``packet`` (too late: dropped and counted); release the oldest packet once
        :data:`_AUDIO_PREFETCH` newer ones are here, skipping a lost one (see the class)."""
        if self._origin is not None:
            ahead = uint16_add(packet.sequence_number, -self._origin)
            if 0x10000 - ahead < MAX_MISORDER:  # released past already, or counted lost
                self.late += 1
                return False, None
            if ahead >= self._capacity:  # a jump (a pause, a new stream): start afresh
                self.remove(self._capacity)
                self._origin = None
        if self._origin is None:
            self._origin = self._newest = packet.sequence_number
        assert self._newest is not None
        if uint16_add(packet.sequence_number, -self._newest) < 0x8000:
            self._newest = packet.sequence_number
        self._packets[packet.sequence_number % self._capacity] = packet
        return False, self._release_front()

    def _release_front(self) -> JitterFrame | None:
        assert self._origin is not None and self._newest is not None
        waiting = uint16_add(self._newest, -self._origin)
        if waiting < _AUDIO_PREFETCH:
            return None
        while self._packets[self._origin % self._capacity] is None:
            if waiting < _AUDIO_REORDER:
                return None
            self.remove(1)
            self.skipped += 1
            waiting -= 1
        packet: Any = self._packets[self._origin % self._capacity]
        self.remove(1)
        return JitterFrame(data=packet._data, timestamp=packet.timestamp)


def _starts_keyframe(data: bytes) -> bool:
    """Whether a packet's depayloaded data begins a keyframe: for H.264 (aiortc's depayloader
    writes Annex B, a start code before each NAL unit a packet begins) an IDR slice or a
    sequence parameter set; for VP8 a frame tag with the key-frame bit (0) and the key frame's
    start code (RFC 6386 section 9.1), which only a frame's first packet carries."""
    if data.startswith(_H264_START_CODE):
        return any(unit and unit[0] & 0x1F in (5, 7) for unit in data.split(_H264_START_CODE)[1:])
    return len(data) >= 6 and not data[0] & 0x01 and data[3:6] == _VP8_KEY_START_CODE


def _is_padding(packet: Any) -> bool:
    """Whether ``packet`` carries nothing for the decoder (aiortc's receiver: ``_data = b""``)."""
    return not packet._data


def use_station_jitter_buffers(pc: Any) -> int:
    """Give every video receiver of ``pc`` a :class:`FrameEndJitterBuffer` and every audio
    receiver an :class:`AudioJitterBuffer`; returns how many were replaced.

    Call before the remote description is set (no packet has arrived yet). Only on the aiortc
    release it was written against (:data:`FRAME_END_AIORTC_VERSION`); aiortc keeps the
    buffer in a name-mangled attribute, and if that is missing nothing changes either.
    """
    import aiortc

    if aiortc.__version__ != FRAME_END_AIORTC_VERSION:
        _log.warning(
            "aiortc %s is not %s: its own jitter buffers stay (a video frame more latency, "
            "audio stalls at a lost packet)",
            aiortc.__version__,
            FRAME_END_AIORTC_VERSION,
        )
        return 0
    replaced = 0
    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        if not hasattr(receiver, "_RTCRtpReceiver__jitter_buffer"):
            continue
        video = transceiver.kind == "video"
        buffer = FrameEndJitterBuffer() if video else AudioJitterBuffer()
        receiver._RTCRtpReceiver__jitter_buffer = buffer
        replaced += 1
    return replaced


def prompt_ice_completion_installed() -> bool:
    """Whether aioice's ``Connection.connect`` is the prompt one."""
    import aioice.ice

    return aioice.ice.Connection.connect is _prompt_connect


def install_prompt_ice_completion() -> bool:
    """Make aioice's ``connect`` return as soon as ICE completes (see the module's text).

    Idempotent and process-wide. Returns whether the prompt ``connect`` is in effect.
    """
    import aioice
    import aioice.ice

    if prompt_ice_completion_installed():
        return True
    if aioice.__version__ != PACED_AIOICE_VERSION:
        _log.warning(
            "aioice %s is not %s: its own ICE pacing stays (about 20 ms more per dial)",
            aioice.__version__,
            PACED_AIOICE_VERSION,
        )
        return False
    aioice.ice.Connection.connect = _prompt_connect  # type: ignore[method-assign]
    return True


async def _prompt_connect(self: Any) -> None:
    """aioice 0.13.0's ``Connection.connect``, with the pacing sleep cut short at completion."""
    import aioice.ice

    if not self._local_candidates_end:
        raise ConnectionError("Local candidates gathering was not performed")
    if self.remote_username is None or self.remote_password is None:
        raise ConnectionError("Remote username or password is missing")

    # Forming candidate pairs (RFC 8445 section 6.1.2.2).
    for remote_candidate in self._remote_candidates:
        self._pair_remote_candidate(remote_candidate)
    self.sort_check_list()
    self._unfreeze_initial()

    # Handle the checks received before connect().
    for early_check in self._early_checks:
        self.check_incoming(*early_check)
    self._early_checks.clear()
    self._early_checks_done = True

    state: asyncio.Task[int] = asyncio.ensure_future(self._check_list_state.get())
    try:
        # Start the checks one every Ta, until none is left to start or the list is done.
        while self._check_periodic():
            done, _ = await asyncio.wait({state}, timeout=_TA_SECONDS)
            if done:
                break
        result = await state if self._check_list else aioice.ice.ICE_FAILED
    finally:
        if not state.done():
            state.cancel()

    # Cancel the remaining checks.
    for check in self._check_list:
        if check.task:
            check.task.cancel()

    if result != aioice.ice.ICE_COMPLETED:
        raise ConnectionError("ICE negotiation failed")

    # Start consent freshness tests (RFC 7675).
    self._query_consent_task = asyncio.create_task(self.query_consent())

"""Is the GP still there, and is their video still moving? The call engine's judgements.

What the station can actually observe (measured with aiortc 1.16 against Chromium 156 in a
loopback namespace, see the report of the ``gp-left`` branch):

* **The GP closes the tab** (``page.close()``) **or the browser dies** (SIGKILL): aiortc
  receives nothing at all. No RTCP BYE, no SCTP ABORT or SHUTDOWN, no DTLS close_notify; the
  ICE transport stays "completed" and the peer connection "connected". Media simply stops,
  exactly as in a network outage, and the station's own watchdog is the first to act (the
  BYE and ABORT in aiortc's log are the station's own, sent as it closes). A closed tab is
  therefore indistinguishable from a network problem by transport signals alone.
* So the GP page says it itself: on ``pagehide`` it sends ``{"type": "gp_leaving"}`` over the
  data channel (fast) and ``POST /api/gp/leave`` to the hub as a keepalive request (outlives
  the page; the hub bumps the room's version, which wakes the station's room long-poll).
* Every second the page sends ``{"type": "gp_alive", "video": bool, "audio": bool}``: the
  station's sign of life that does not depend on media (a GP without camera and microphone
  is connected, not lost), and what the GP believes it sends (frozen video is judged only
  while the GP's camera is on).
* For a network that is gone for good, the hub knows when the GP page last reached it (its
  in-call long-polls repeat every 5 s): the station asks only while it hears nothing from the
  GP, and blames the GP only when the hub has not heard from the page either, for
  ``gp_absent_seconds``. When the station cannot reach the hub itself, it blames nobody and
  stays "reconnecting".

Nothing here names anybody: the signals are presence and media flags.
"""

from __future__ import annotations

import enum
import json
import logging
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GpMedia",
    "GpSignals",
    "StallAction",
    "VideoWatch",
    "answer_sends_video",
    "answer_video_codec",
    "parse_gp_message",
    "request_keyframe",
]

_log = logging.getLogger(__name__)

#: A data-channel message from the GP page longer than this is ignored (they are ~50 bytes).
MAX_GP_MESSAGE = 1024


@dataclass(frozen=True, slots=True)
class GpMedia:
    """What the GP page says it sends: a live, enabled camera track and microphone track."""

    video: bool
    audio: bool

    def as_json(self) -> dict[str, bool]:
        """The event's data."""
        return {"video": self.video, "audio": self.audio}


@dataclass(slots=True)
class GpSignals:
    """What one attempt's data channel has heard from the GP page (loop times)."""

    heard_at: float | None = None
    media: GpMedia | None = None
    #: The page said it is being closed (``pagehide``).
    leaving: bool = False


def parse_gp_message(text: Any) -> dict[str, Any] | None:
    """A data-channel message from the GP page as a JSON object, or None (ignored)."""
    if not isinstance(text, str) or len(text) > MAX_GP_MESSAGE:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def answer_sends_video(sdp: str) -> bool:
    """Whether the GP's answer has an active video section the GP sends on.

    ``sendrecv`` or ``sendonly`` (from the answerer's side; ``sendrecv`` when no direction
    is given) on a video section with a non-zero port. A GP without a camera answers
    ``recvonly``: no frozen-video judgement then.
    """
    sends = False
    in_video = False
    direction = "sendrecv"
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            if in_video and direction in ("sendrecv", "sendonly"):
                sends = True
            parts = line[2:].split()
            in_video = len(parts) >= 2 and parts[0] == "video" and parts[1] != "0"
            direction = "sendrecv"
        elif in_video and line in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
            direction = line[2:]
    if in_video and direction in ("sendrecv", "sendonly"):
        sends = True
    return sends


def answer_video_codec(sdp: str) -> str | None:
    """The video codec the answer puts first (``"VP8"``, ``"H264"``), ignoring ``rtx``.

    aiortc sends with the first codec of the answer's video section that it also offered.
    """
    payloads: list[str] = []
    names: dict[str, str] = {}
    in_video = False
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            parts = line[2:].split()
            in_video = len(parts) >= 4 and parts[0] == "video" and parts[1] != "0"
            if in_video:
                payloads = parts[3:]
        elif in_video and line.startswith("a=rtpmap:"):
            pt, _, rest = line[len("a=rtpmap:") :].partition(" ")
            names[pt] = rest.split("/", 1)[0]
    for pt in payloads:
        name = names.get(pt)
        if name is not None and name.lower() not in ("rtx", "red", "ulpfec"):
            return name
    return None


class StallAction(enum.Enum):
    """What :meth:`VideoWatch.judge` asks the engine to do."""

    NONE = "none"
    KEYFRAME = "keyframe"  # ask the GP's browser for a keyframe (RTCP PLI)
    RECOVERED = "recovered"  # frames again after a keyframe request
    REDIAL = "redial"  # no frame despite keyframe requests: a new peer connection


class VideoWatch:
    """Frozen video while the GP is otherwise heard: ask for a keyframe, then re-dial.

    Judged only while the GP sends video (the answer says so and the page's last word was
    "camera on") and while the attempt is alive (audio or the heartbeat still arrive: a dead
    connection is the media watchdog's case, not this one). ``reference`` is when video was
    last seen or became expected (media flowing, the camera switched on), so a camera that
    was just switched on gets the full ``stall_seconds`` before it counts as frozen.

    Thresholds: no frame for ``stall_seconds`` → a keyframe request, repeated every
    ``repeat_seconds``; still none ``keyframe_wait_seconds`` after the first → re-dial.
    """

    def __init__(
        self, stall_seconds: float, keyframe_wait_seconds: float, repeat_seconds: float = 1.0
    ) -> None:
        self.stall_seconds = stall_seconds
        self.keyframe_wait_seconds = keyframe_wait_seconds
        self.repeat_seconds = repeat_seconds
        self.first_request_at: float | None = None
        self.last_request_at: float | None = None
        self.requests = 0

    @property
    def stalled(self) -> bool:
        """True between the first keyframe request and recovery (or the re-dial)."""
        return self.first_request_at is not None

    def reset(self) -> None:
        """Video is not expected (camera off, no video in the answer): forget a stall."""
        self.first_request_at = self.last_request_at = None

    def judge(
        self, now: float, *, expected: bool, reference: float, others_alive: bool
    ) -> StallAction:
        """The action for this tick; ``reference`` is when video was last seen or expected.

        ``others_alive``: audio or the page's heartbeat arrived just now. Without them the
        whole connection is silent (the media watchdog's case): nothing is judged, and a
        request already made stays pending.
        """
        if not expected:
            self.reset()
            return StallAction.NONE
        if not others_alive:
            return StallAction.NONE
        if now - reference < self.stall_seconds:
            if self.first_request_at is not None:
                self.reset()
                return StallAction.RECOVERED
            return StallAction.NONE
        if self.first_request_at is None:
            self.first_request_at = self.last_request_at = now
            self.requests += 1
            return StallAction.KEYFRAME
        if now - self.first_request_at >= self.keyframe_wait_seconds:
            return StallAction.REDIAL
        assert self.last_request_at is not None
        if now - self.last_request_at >= self.repeat_seconds:
            self.last_request_at = now
            self.requests += 1
            return StallAction.KEYFRAME
        return StallAction.NONE


async def request_keyframe(pc: Any) -> bool:
    """Send an RTCP PLI for every video stream the GP sends us; False if there is none.

    aiortc 1.16 has no public "request a keyframe": the receiver's ``_send_rtcp_pli`` is what
    it uses itself after a decoder error. The remote SSRCs come from the receiver's public
    ``getStats()``. Guarded: a different aiortc without the helper just returns False (the
    engine then re-dials, which also brings a keyframe).
    """
    sent = False
    for transceiver in pc.getTransceivers():
        if transceiver.kind != "video":
            continue
        receiver = transceiver.receiver
        send_pli = getattr(receiver, "_send_rtcp_pli", None)
        if send_pli is None:
            _log.warning("this aiortc cannot send a keyframe request")
            return False
        try:
            report = await receiver.getStats()
        except Exception as exc:  # a closing transport has no stats: nothing to ask then
            _log.debug("no receiver statistics for a keyframe request: %s", type(exc).__name__)
            continue
        for stats in report.values():
            if getattr(stats, "type", "") == "inbound-rtp" and getattr(stats, "ssrc", None):
                await send_pli(int(stats.ssrc))
                sent = True
    return sent

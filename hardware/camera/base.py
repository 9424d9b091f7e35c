"""The camera port and what every camera backend shares (pacing, time stamps, statistics)."""

from __future__ import annotations

import asyncio
import fractions
import math
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import av

if TYPE_CHECKING:
    from aiortc import RTCRtpSender

__all__ = [
    "VIDEO_CLOCK_RATE",
    "VIDEO_TIME_BASE",
    "BitrateControl",
    "Camera",
    "CameraStats",
    "FramePacer",
    "SelfViewSource",
    "check_size",
    "forward_keyframe_requests",
    "parse_size",
    "passthrough_decoder",
]

#: RTP's video clock, as aiortc uses it for pts.
VIDEO_CLOCK_RATE = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)


@dataclass(frozen=True, slots=True)
class CameraStats:
    """Counters a camera keeps, for health checks and the call engine's diagnostics."""

    #: Frames (or encoded packets) the backend produced.
    captured: int
    #: Frames handed to the consumer through ``recv()``.
    delivered: int
    #: Frames dropped because the consumer was slower than the camera (newest wins).
    dropped: int


@runtime_checkable
class Camera(Protocol):
    """The station's camera: an aiortc video ``MediaStreamTrack`` (``kind == "video"``).

    ``recv()`` returns decoded ``av.VideoFrame``s, or, when ``passthrough_codec`` is set,
    already encoded ``av.Packet``s in that codec (the Pi 4's hardware H.264), which aiortc sends
    without re-encoding: the call engine must then negotiate exactly that codec.

    A track is used for one call: aiortc stops it when the peer connection closes, so the
    daemon asks the hardware bundle for a new one per call.

    A camera that hands out packets has no picture for the station's own screen; it may also
    implement :class:`SelfViewSource` to provide one.
    """

    kind: str

    @property
    def id(self) -> str:
        """aiortc's track id."""
        ...

    @property
    def readyState(self) -> str:  # aiortc's (and WebRTC's) name
        """``"live"`` or ``"ended"``."""
        ...

    @property
    def backend(self) -> str:
        """The backend's configuration name: ``testpattern``, ``v4l2`` or ``picamera2``."""
        ...

    @property
    def passthrough_codec(self) -> str | None:
        """The MIME type of pre-encoded packets (``"video/H264"``), or ``None`` for frames."""
        ...

    @property
    def stats(self) -> CameraStats:
        """Capture, delivery and drop counters."""
        ...

    async def recv(self) -> av.VideoFrame | av.Packet[Any]:
        """The next frame (or encoded packet); raises aiortc's ``MediaStreamError`` when ended."""
        ...

    def request_keyframe(self) -> None:
        """Ask for the next picture to be decodable on its own (a no-op for raw frames)."""
        ...

    def stop(self) -> None:
        """End the track and release the device. Safe to call more than once."""
        ...


@runtime_checkable
class BitrateControl(Protocol):
    """A camera that encodes its own packets and can change their bitrate while it runs (the
    Pi's hardware H.264 encoder): the call's video ladder (``station.call.ladder``) sets it."""

    @property
    def max_bitrate(self) -> int:
        """The bitrate it was configured with (bit/s): the ladder's top."""
        ...

    def set_bitrate(self, bitrate: int) -> None:
        """Encode at ``bitrate`` bit/s from the next picture on (no keyframe needed)."""
        ...


@runtime_checkable
class SelfViewSource(Protocol):
    """Optional beside :class:`Camera`: small pictures for the station's own screen.

    The call engine shows the station its own picture (the self-view) so staff and resident
    can see what the GP sees. A camera whose ``recv()`` returns decoded frames needs nothing
    more: those frames are shown. A camera that hands out encoded packets (the Pi 4's hardware
    H.264) has no picture to show, and decoding its own stream again would cost the Pi a
    software decoder for the whole call; such a camera implements this instead and takes the
    pictures from a cheap source beside the encoder (on the Pi: picamera2's ``lores``
    stream, scaled down by the ISP).
    """

    def self_view(self, fps: float) -> AsyncGenerator[av.VideoFrame, None]:
        """Pictures of what the camera sends, at most ``fps`` a second (``yuv420p``, small).

        The first comes once the camera runs (its first ``recv()`` starts it); the iterator
        ends when the track ends, or at once when this camera has no self-view to give (for
        instance on a path that delivers decoded frames). A failure ends it quietly: the call
        goes on without a self-view. Stop it early by closing the generator (``aclose()``) or
        cancelling the task that iterates it.
        """
        ...


class FramePacer:
    """Paces a synthetic source in real time and gives each frame its pts (90 kHz clock).

    Like aiortc's ``VideoStreamTrack.next_timestamp`` but on the loop's monotonic clock, and a
    source that falls more than one frame behind skips ahead instead of bursting to catch up
    (a camera does not queue up the past either).
    """

    def __init__(self, fps: float) -> None:
        if not 0 < fps <= 120:
            raise ValueError("fps must be in (0, 120]")
        self.fps = fps
        self._start: float | None = None
        self._index = 0

    async def next_pts(self) -> int:
        """Wait until the next frame is due; return its pts in ``VIDEO_TIME_BASE`` units."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._start is None:
            self._start = now
            self._index = 0
            return 0
        index = self._index + 1
        due = self._start + index / self.fps
        if now < due:
            await asyncio.sleep(due - now)
        elif now - due > 1 / self.fps:
            index = math.floor((now - self._start) * self.fps)
        self._index = index
        return round(index * VIDEO_CLOCK_RATE / self.fps)


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``"640x480"`` into ``(640, 480)``; both even and at least 160x120."""
    try:
        width_text, height_text = text.lower().split("x")
        width, height = int(width_text), int(height_text)
    except ValueError:
        raise ValueError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 640x480") from None
    check_size(width, height)
    return width, height


def check_size(width: int, height: int) -> None:
    """Raise ``ValueError`` unless ``width`` x ``height`` is a usable even video size."""
    if width < 160 or height < 120 or width % 2 or height % 2 or width > 3840 or height > 2160:
        raise ValueError(f"video size {width}x{height} must be even, 160x120 to 3840x2160")


def passthrough_decoder(mime_type: str | None) -> Any:
    """A PyAV decoder for a passthrough camera's packets.

    Cameras name their codec as a MIME type (``video/H264``, as aiortc's codecs do); PyAV
    knows decoders by FFmpeg's name (``h264``) and raises ``UnknownCodecError`` otherwise.
    """
    name = (mime_type or "video/H264").split("/")[-1].lower()
    return av.CodecContext.create(name, "r")


def forward_keyframe_requests(sender: RTCRtpSender, camera: Camera) -> None:
    """Make the peer's keyframe requests (RTCP PLI/FIR) reach ``camera``.

    aiortc 1.16 answers PLI/FIR by setting a private flag that only its own encoder reads
    (``RTCRtpSender._send_keyframe``); a track that hands out pre-encoded ``av.Packet``s never
    hears of it. This wraps that one method on this sender instance so the request also calls
    ``camera.request_keyframe()``. It touches aiortc's private API: aiortc is pinned (==1.16.0)
    and the unit test feeds a real PLI through ``_handle_rtcp_packet`` to catch a change.
    """
    original = sender._send_keyframe

    def send_keyframe() -> None:
        original()
        camera.request_keyframe()

    # setattr: mypy rejects assigning to a method; this is deliberately per instance.
    setattr(sender, "_send_keyframe", send_keyframe)  # noqa: B010

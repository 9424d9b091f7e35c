"""The media tracks of one call attempt, between the hardware ports and aiortc.

* :class:`CameraFeed` wraps the station's camera: "camera off" sends black pictures instead of
  the camera's (for pre-encoded packets it holds back the packets), and it hands a throttled
  self-view to the frame sink: the camera's own frames, or, for a camera that sends encoded
  packets, the pictures its optional self-view port gives (``SelfViewSource``).
* :class:`MicrophoneGate` wraps the microphone: "mute" sends digital silence, paced as before.
* :class:`VolumeTrack` wraps the GP's audio on its way to the loudspeaker: a gain, and a note
  of when sound last arrived (the media watchdog's input).
* :func:`pump_remote_video` reads the GP's video as fast as it comes and shows each frame at
  once: nothing is queued between the network and the screen beyond what aiortc's decoder
  holds, and the frame sink keeps only the newest frame.

Each is a plain aiortc ``MediaStreamTrack``, made fresh for every attempt (aiortc stops a
track when its peer connection closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from hardware.audio.base import Microphone
from hardware.camera.base import Camera, SelfViewSource, passthrough_decoder
from hardware.video import FrameSink
from station.call.ladder import scaled_size

__all__ = [
    "VOLUME_STEPS",
    "CameraFeed",
    "MediaClock",
    "MicrophoneGate",
    "VolumeTrack",
    "pump_remote_video",
    "volume_gain",
]

_log = logging.getLogger(__name__)

#: The loudspeaker's volume is a step 0..VOLUME_STEPS; each step is 3 dB.
VOLUME_STEPS = 10
_DB_PER_STEP = 3.0
#: The step a call starts at (0 dB: the device's own level).
DEFAULT_VOLUME = 7


def volume_gain(step: int) -> float:
    """The linear gain of volume ``step`` (0 is silence, :data:`DEFAULT_VOLUME` is 1.0)."""
    if step <= 0:
        return 0.0
    return float(10 ** ((step - DEFAULT_VOLUME) * _DB_PER_STEP / 20))


class MediaClock:
    """When inbound media last arrived, and how much (the watchdog and statistics read it)."""

    def __init__(self) -> None:
        self.last_at: float | None = None
        #: When a video (audio) frame last arrived: frozen video is video silent while the
        #: rest of the call is not.
        self.last_video_at: float | None = None
        self.last_audio_at: float | None = None
        self.video_frames = 0
        self.audio_frames = 0
        #: Wall-clock time (Unix seconds) of the first decoded video frame, for set-up figures.
        self.first_video_wall: float | None = None

    def video(self) -> None:
        """One decoded video frame arrived from the GP."""
        self.video_frames += 1
        self.last_at = self.last_video_at = asyncio.get_running_loop().time()
        if self.first_video_wall is None:
            self.first_video_wall = time.time()

    def audio(self) -> None:
        """One decoded audio frame arrived from the GP."""
        self.audio_frames += 1
        self.last_at = self.last_audio_at = asyncio.get_running_loop().time()


class CameraFeed(MediaStreamTrack):
    """The camera as sent to the GP, with "camera off" and a throttled self-view.

    Decoded frames are shown as they pass, at most ``self_view_fps`` a second. Encoded packets
    have no picture: when the first packet passes and the camera is a
    :class:`~hardware.camera.base.SelfViewSource`, a task shows the pictures it gives (at the
    same rate) until the feed stops; a camera without that port has no self-view.
    """

    kind = "video"

    def __init__(
        self,
        camera: Camera,
        sink: FrameSink | None,
        *,
        self_view_fps: float = 10.0,
        enabled: Callable[[], bool] = lambda: True,
    ) -> None:
        super().__init__()
        self.camera = camera
        self._sink = sink
        self._self_view_fps = self_view_fps
        self._self_view_interval = 1.0 / self_view_fps
        self._self_view_started = False
        self._self_view_task: asyncio.Task[None] | None = None
        #: Pictures the camera's self-view port gave (shown unless the camera was off).
        self.self_view_pictures = 0
        self._last_self_view = -math.inf
        self._enabled = enabled
        self._black: av.VideoFrame | None = None
        self.frames_sent = 0
        #: Set when the GP's browser took another codec than the camera's packets: the
        #: packets are decoded here and sent as pictures (aiortc encodes them).
        self.decode_packets = False
        self._decoder: Any = None  # av.VideoCodecContext (PyAV types it loosely)
        #: The picture's size as a fraction of the camera's, for pictures aiortc encodes (the
        #: video ladder's rung: :mod:`station.call.ladder`).
        self.scale = 1.0
        #: The size of the last picture sent (None: none yet, or packets).
        self.sent_size: tuple[int, int] | None = None

    async def recv(self) -> Any:
        """The next picture (or encoded packet) for the GP."""
        if self.readyState != "live":
            raise MediaStreamError
        while True:
            item = await self.camera.recv()
            if isinstance(item, av.VideoFrame):
                break
            if not self._self_view_started:
                self._start_self_view()
            if self.decode_packets:
                decoded = self._decode(item)
                if decoded is None:
                    continue
                item = decoded
                break
            if self._enabled():
                self.frames_sent += 1
                return item  # a pre-encoded packet: sent as it is
            # Camera off with packets: drop them (nothing to blacken without decoding).
        if not self._enabled():
            item = self._black_like(item)
        elif self._sink is not None and not self.decode_packets:
            now = asyncio.get_running_loop().time()
            if now - self._last_self_view >= self._self_view_interval:
                self._last_self_view = now
                self._sink.show(item, "self")
        item = self._scaled(item)
        self.sent_size = (item.width, item.height)
        self.frames_sent += 1
        return item

    def _scaled(self, frame: av.VideoFrame) -> av.VideoFrame:
        """``frame`` at the ladder's size (aiortc starts a new encoder, with a keyframe, when
        the size changes)."""
        if self.scale >= 1.0:
            return frame
        width, height = scaled_size(frame.width, frame.height, self.scale)
        smaller = frame.reformat(width=width, height=height, format="yuv420p")
        smaller.pts, smaller.time_base = frame.pts, frame.time_base
        return smaller

    def _decode(self, packet: Any) -> av.VideoFrame | None:
        """The picture in a pre-encoded packet (None until a keyframe, or when it fails)."""
        if self._decoder is None:
            self._decoder = passthrough_decoder(getattr(self.camera, "passthrough_codec", None))
            with contextlib.suppress(Exception):
                self.camera.request_keyframe()  # the decoder starts at a keyframe
        try:
            frames = self._decoder.decode(packet)
        except av.error.FFmpegError:
            return None
        if not frames:
            return None
        frame = frames[-1]
        frame.pts, frame.time_base = packet.pts, packet.time_base
        return frame  # type: ignore[no-any-return]

    def _start_self_view(self) -> None:
        self._self_view_started = True
        camera = self.camera
        if self._sink is None or not isinstance(camera, SelfViewSource):
            return
        self._self_view_task = asyncio.get_running_loop().create_task(
            self._show_self_view(camera, self._sink), name="call-self-view"
        )

    async def _show_self_view(self, source: SelfViewSource, sink: FrameSink) -> None:
        """Show the camera's self-view pictures while the camera is on; never fails the call."""
        try:
            async with contextlib.aclosing(source.self_view(self._self_view_fps)) as pictures:
                async for picture in pictures:
                    self.self_view_pictures += 1
                    if self._enabled():
                        sink.show(picture, "self")
        except Exception as exc:
            _log.warning("the self-view stopped: %s", type(exc).__name__)

    def _black_like(self, frame: av.VideoFrame) -> av.VideoFrame:
        black = self._black
        if black is None or black.width != frame.width or black.height != frame.height:
            yuv = np.full((frame.height * 3 // 2, frame.width), 128, dtype=np.uint8)
            yuv[: frame.height] = 16
            black = self._black = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        out = av.VideoFrame.from_ndarray(black.to_ndarray(), format="yuv420p")
        out.pts = frame.pts
        out.time_base = frame.time_base
        return out

    def stop(self) -> None:
        """Stop the feed (and its self-view) and release the camera."""
        super().stop()
        if self._self_view_task is not None:
            self._self_view_task.cancel()
        self.camera.stop()


class MicrophoneGate(MediaStreamTrack):
    """The microphone as sent to the GP; muted, it sends silence at the same pace."""

    kind = "audio"

    def __init__(self, microphone: Microphone, *, muted: Callable[[], bool]) -> None:
        super().__init__()
        self.microphone = microphone
        self._muted = muted

    async def recv(self) -> av.AudioFrame:
        """The next 20 ms of sound (or of silence while muted)."""
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self.microphone.recv()
        if not self._muted():
            return frame
        silent = av.AudioFrame.from_ndarray(
            np.zeros_like(frame.to_ndarray()), format=frame.format.name, layout=frame.layout.name
        )
        silent.sample_rate = frame.sample_rate
        silent.pts = frame.pts
        silent.time_base = frame.time_base
        return silent

    def stop(self) -> None:
        """Stop the gate and release the microphone."""
        super().stop()
        self.microphone.stop()


class VolumeTrack(MediaStreamTrack):
    """The GP's audio with the station's volume applied; notes every frame on ``clock``."""

    kind = "audio"

    def __init__(
        self, source: MediaStreamTrack, clock: MediaClock, *, volume: Callable[[], int]
    ) -> None:
        super().__init__()
        self._source = source
        self._clock = clock
        self._volume = volume

    async def recv(self) -> av.AudioFrame:
        """The next decoded frame from the GP, scaled to the volume."""
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._source.recv()
        assert isinstance(frame, av.AudioFrame)
        self._clock.audio()
        gain = volume_gain(self._volume())
        if gain == 1.0 or frame.format.name != "s16":
            return frame
        samples = frame.to_ndarray().astype(np.float32) * gain
        scaled = av.AudioFrame.from_ndarray(
            np.clip(samples, -32768, 32767).astype(np.int16),
            format="s16",
            layout=frame.layout.name,
        )
        scaled.sample_rate = frame.sample_rate
        scaled.pts = frame.pts
        scaled.time_base = frame.time_base
        return scaled

    def stop(self) -> None:
        """Stop reading the GP's audio."""
        super().stop()
        self._source.stop()


async def pump_remote_video(track: MediaStreamTrack, sink: FrameSink, clock: MediaClock) -> None:
    """Show every frame of the GP's video as soon as it is decoded, until the track ends.

    The sink must return at once (it keeps only the newest frame), so this loop drains aiortc's
    decoder output as fast as it is produced: latency cannot build up here.
    """
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            clock.video()
            if isinstance(frame, av.VideoFrame):
                sink.show(frame, "remote")

"""The Raspberry Pi camera through picamera2 (apt ``python3-picamera2``, imported lazily).

Over 600 lines for one backend: picamera2's camera as an aiortc track in both modes, with
the self-view and the workarounds each Pi model needs written beside the code they explain.

Two paths, chosen by ``encoding``:

- ``"h264"`` (the Pi 4): the VideoCore's hardware H.264 encoder (picamera2's ``H264Encoder``:
  constrained baseline, SPS/PPS repeated before every keyframe, a keyframe at least every
  ``iperiod`` frames) and the encoded access units passed to aiortc as ``av.Packet``s, which
  it packetises without re-encoding (``H264Encoder.pack``). The call must negotiate H.264.
  Keyframe requests from the peer reach the track through
  :func:`~hardware.camera.base.forward_keyframe_requests` and the encoder through the V4L2
  control ``V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME``. The packet queue is bounded; when it
  overflows everything up to the next keyframe is dropped and a keyframe is requested.
  Packets have no picture for the station's own screen, so this path also configures
  picamera2's ``lores`` stream (a small YUV420 picture the ISP scales from the same sensor
  frame, beside ``main``) and reads it with ``capture_array("lores")`` while recording, at
  the rate the caller asks for: :meth:`Picamera2Camera.self_view` (the optional
  :class:`~hardware.camera.base.SelfViewSource` port). On a Pi 4 (VC4) lores must be YUV420
  and no larger than main; rows come padded to the ISP's stride, which
  :func:`yuv420_array_to_frame` removes. No decoder runs on the Pi for it.
- ``"raw"`` (the Pi 5 has no H.264 encoder): YUV 4:2:0 frames, newest wins, for aiortc's VP8.

``"auto"`` picks ``h264`` when the board has the hardware encoder, else ``raw``.

The picamera2 API is injected as a :class:`Picamera2Api`: :func:`load_picamera2_api` imports
the real one; :mod:`hardware.camera.fake_picamera2` ships a fake that runs anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import struct
import threading
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .._capture import raise_for_closed_queue
from .._queue import KeyframeQueue, LatestQueue, QueueClosedError
from .._thread import CaptureThread, Emit
from ..errors import BackendUnavailableError, CameraUnavailableError
from .base import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE, CameraStats, check_size

__all__ = [
    "Encoding",
    "Picamera2Api",
    "Picamera2Camera",
    "board_has_hardware_h264",
    "load_picamera2_api",
    "self_view_size",
    "v4l2_force_key_frame",
    "v4l2_set_bitrate",
    "yuv420_array_to_frame",
]

_log = logging.getLogger(__name__)

Encoding = Literal["auto", "h264", "raw"]

# VIDIOC_S_CTRL = _IOWR('V', 28, struct v4l2_control {__u32 id; __s32 value;})
_VIDIOC_S_CTRL = 0xC008561C
# V4L2_CID_CODEC_BASE (0x00990900) + 229; a "button" control: any write forces a keyframe.
_V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME = 0x009909E5
# V4L2_CID_CODEC_BASE + 207, bit/s. The Pi's bcm2835-codec driver passes a write while
# encoding on to the firmware's run-time rate control (MMAL_PARAMETER_VIDEO_BIT_RATE).
_V4L2_CID_MPEG_VIDEO_BITRATE = 0x009909CF

#: Width of the self-view (the ``lores`` stream) by default: the surface draws the self-view
#: at a quarter of the screen's width, 320 px on a 1280 px screen; a multiple of 64, so the
#: VC4's rows need no padding.
DEFAULT_SELF_VIEW_WIDTH = 320
#: How long one ``capture_array("lores")`` may wait for a frame (picamera2's ``wait``).
_LORES_TIMEOUT = 1.0
#: Consecutive failed lores captures after which the self-view gives up (the call goes on).
_LORES_MAX_FAILURES = 3


@dataclass(frozen=True)
class Picamera2Api:
    """The few picamera2 names this backend uses, so a fake can stand in for them."""

    #: ``picamera2.Picamera2`` (called with ``camera_num``).
    picamera2: Callable[..., Any]
    #: ``picamera2.encoders.H264Encoder``.
    h264_encoder: Callable[..., Any]
    #: ``picamera2.outputs.Output`` (encoders insist on an instance of it).
    output: type
    #: ``Picamera2.global_camera_info``: one dict per connected camera.
    global_camera_info: Callable[[], list[dict[str, Any]]]
    #: Whether this board has the hardware H.264 encoder (Pi 4: yes, Pi 5: no).
    has_hardware_h264: Callable[[], bool]


def board_has_hardware_h264(
    model_path: Path = Path("/proc/device-tree/model"),
    encoder_device: Path = Path("/dev/video11"),
) -> bool:
    """True on a board with the VideoCore H.264 encoder (Pi 4 and earlier), False on a Pi 5."""
    try:
        model = model_path.read_bytes()
    except OSError:
        model = b""
    if b"Raspberry Pi 5" in model or b"Compute Module 5" in model:
        return False
    return encoder_device.exists()


def load_picamera2_api() -> Picamera2Api:
    """Import the real picamera2 (only here, never at module level: it exists only on a Pi)."""
    try:
        from picamera2 import Picamera2
        from picamera2.encoders import H264Encoder
        from picamera2.outputs import Output
    except Exception as exc:
        # Not only ImportError: a numpy in the venv that shadows apt's makes apt's simplejpeg
        # raise ValueError at import (picamera2 issues 1088, 1211), and libcamera's bindings
        # can fail with RuntimeError. Whatever it is, the camera is unavailable, not stationd.
        raise BackendUnavailableError(
            "camera",
            "picamera2",
            f"picamera2 is not importable ({type(exc).__name__}: {exc}); on a Pi install "
            "python3-picamera2 from apt, make the venv with --system-site-packages and let "
            "numpy come from apt (provisioning/pi/setup.sh does both)",
        ) from exc
    return Picamera2Api(
        picamera2=Picamera2,
        h264_encoder=H264Encoder,
        output=Output,
        global_camera_info=Picamera2.global_camera_info,
        has_hardware_h264=board_has_hardware_h264,
    )


def v4l2_force_key_frame(fd: int, ioctl: Callable[[int, int, bytes], bytes] = fcntl.ioctl) -> None:
    """Ask a V4L2 memory-to-memory encoder (the Pi's ``/dev/video11``) for a keyframe now."""
    ioctl(fd, _VIDIOC_S_CTRL, struct.pack("=Ii", _V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME, 1))


def v4l2_set_bitrate(
    fd: int, bitrate: int, ioctl: Callable[[int, int, bytes], bytes] = fcntl.ioctl
) -> None:
    """Change a running V4L2 memory-to-memory encoder's bitrate (bit/s)."""
    ioctl(fd, _VIDIOC_S_CTRL, struct.pack("=Ii", _V4L2_CID_MPEG_VIDEO_BITRATE, bitrate))


def _set_encoder_bitrate(encoder: Any, bitrate: int) -> None:
    """Change a running picamera2 encoder's bitrate, whichever way it offers."""
    # picamera2 sets the bitrate only when the encoder starts; a fake may offer a call.
    change = getattr(encoder, "set_bitrate", None)
    if callable(change):
        change(bitrate)
        return
    device = getattr(encoder, "vd", None)  # V4L2Encoder's open /dev/video11
    if device is None or getattr(device, "closed", True):
        raise OSError("the encoder is not running")
    v4l2_set_bitrate(device.fileno(), bitrate)


def _request_encoder_keyframe(encoder: Any) -> None:
    """Force a keyframe on a picamera2 encoder, whichever way it offers."""
    # picamera2 has no public call for this; a fake (or a future picamera2) may.
    force = getattr(encoder, "force_key_frame", None)
    if callable(force):
        force()
        return
    device = getattr(encoder, "vd", None)  # V4L2Encoder's open /dev/video11
    if device is None or getattr(device, "closed", True):
        raise OSError("the encoder is not running")
    v4l2_force_key_frame(device.fileno())


def self_view_size(width: int, height: int, target_width: int) -> tuple[int, int]:
    """The ``lores`` size for a ``width`` x ``height`` main stream: ``target_width`` wide at
    most (never wider than main: picamera2 refuses a lores larger than main), main's aspect
    ratio, both even (YUV 4:2:0)."""
    lores_width = max(2, min(target_width, width) & ~1)
    lores_height = max(2, round(height * lores_width / width / 2) * 2)
    return lores_width, min(lores_height, height & ~1)


def yuv420_array_to_frame(array: npt.NDArray[np.uint8], width: int, height: int) -> av.VideoFrame:
    """Turn picamera2's ``YUV420`` capture array into a ``yuv420p`` frame.

    picamera2 returns ``(height * 3 / 2, stride)`` bytes where ``stride`` may exceed ``width``
    (rows padded for the ISP); chroma rows then have ``stride / 2`` bytes each.
    """
    flat = np.ascontiguousarray(array).reshape(-1)
    stride = flat.size * 2 // (height * 3)
    if stride < width or flat.size != stride * height * 3 // 2:
        raise ValueError(f"YUV420 array of {flat.size} bytes does not fit {width}x{height}")
    if stride == width:
        return av.VideoFrame.from_ndarray(flat.reshape(height * 3 // 2, width), format="yuv420p")
    luma_size, chroma_size = stride * height, (stride // 2) * (height // 2)
    y = flat[:luma_size].reshape(height, stride)[:, :width]
    u = flat[luma_size : luma_size + chroma_size].reshape(height // 2, stride // 2)
    v = flat[luma_size + chroma_size : luma_size + 2 * chroma_size].reshape(
        height // 2, stride // 2
    )
    packed = np.concatenate(
        [y.reshape(-1), u[:, : width // 2].reshape(-1), v[:, : width // 2].reshape(-1)]
    )
    return av.VideoFrame.from_ndarray(packed.reshape(height * 3 // 2, width), format="yuv420p")


def _make_output(base: type, sink: Callable[[bytes, bool, int | None], None]) -> Any:
    """An instance of a subclass of picamera2's ``Output`` that calls ``sink`` per frame."""

    class _TrackOutput(base):  # type: ignore[misc]  # picamera2 is untyped
        def outputframe(
            self,
            frame: bytes | None,
            keyframe: bool = True,
            timestamp: int | None = None,
            packet: Any = None,
            audio: bool = False,
        ) -> None:
            if audio or frame is None:
                return
            sink(bytes(frame), bool(keyframe), timestamp)

    return _TrackOutput()


@dataclass
class _Packet:
    packet: av.Packet[Any]
    keyframe: bool


class Picamera2Camera(MediaStreamTrack):
    """The Pi camera as an aiortc video track (see the module docstring for the two paths)."""

    kind = "video"

    def __init__(
        self,
        *,
        width: int = 640,
        height: int = 480,
        fps: float = 30.0,
        encoding: Encoding = "auto",
        bitrate: int = 1_000_000,
        iperiod: int = 60,
        queue_size: int = 4,
        keyframe_min_interval: float = 0.5,
        camera_num: int = 0,
        api: Picamera2Api | None = None,
        start_timeout: float = 10.0,
        self_view_width: int | None = DEFAULT_SELF_VIEW_WIDTH,
    ) -> None:
        super().__init__()
        check_size(width, height)
        if encoding not in ("auto", "h264", "raw"):
            raise ValueError(f"encoding must be auto, h264 or raw, not {encoding!r}")
        if self_view_width is not None and self_view_width < 64:
            raise ValueError("self_view_width must be at least 64 (or None: no self-view)")
        self._self_view_width = self_view_width
        self._width = width
        self._height = height
        self._fps = fps
        self._requested_encoding: Encoding = encoding
        self._bitrate = bitrate
        self._wanted_bitrate = bitrate  # the call's video ladder may lower it
        self._iperiod = iperiod
        self._keyframe_min_interval = keyframe_min_interval
        self._camera_num = camera_num
        self._api = api
        self._start_timeout = start_timeout
        self._encoding: Literal["h264", "raw"] | None = None
        self._packets: KeyframeQueue[_Packet] = KeyframeQueue(queue_size, self._on_gap)
        self._frames: LatestQueue[av.VideoFrame] = LatestQueue(1)
        self._started = False
        self._start_error: BaseException | None = None
        self._camera: Any = None
        self._encoder: Any = None
        self._capture: CaptureThread[av.VideoFrame] | None = None
        self._closer: threading.Thread | None = None
        self._self_views: set[CaptureThread[av.VideoFrame]] = set()
        #: Set once recording began, failed to begin, or the track stopped.
        self._start_settled = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._first_ts: int | None = None
        self._last_keyframe_request = -1e9
        self._captured = 0
        self._delivered = 0
        #: Keyframe requests that reached the encoder (the peer's and our own after a gap).
        self.keyframe_requests = 0
        #: Bitrate changes that reached the running encoder (the call's video ladder).
        self.bitrate_changes = 0

    # -- configuration ------------------------------------------------------------------

    @staticmethod
    def probe(api: Picamera2Api | None = None) -> str | None:
        """Why the Pi camera cannot be used here (English), or ``None`` if it can."""
        try:
            api = api or load_picamera2_api()
        except BackendUnavailableError as exc:
            return exc.reason
        try:
            cameras = api.global_camera_info()
        except Exception as exc:  # libcamera errors are plain RuntimeErrors
            return f"libcamera cannot list cameras: {exc}"
        if not cameras:
            return "no camera is connected to the camera connector"
        return None

    @property
    def backend(self) -> str:
        """Always ``"picamera2"``."""
        return "picamera2"

    @property
    def encoding(self) -> Literal["h264", "raw"]:
        """The path in use (``"auto"`` resolved against the board)."""
        if self._encoding is None:
            if self._requested_encoding == "auto":
                self._encoding = "h264" if self._get_api().has_hardware_h264() else "raw"
            else:
                self._encoding = self._requested_encoding
        return self._encoding

    @property
    def passthrough_codec(self) -> str | None:
        """``"video/H264"`` on the hardware-encoder path, ``None`` for raw frames."""
        return "video/H264" if self.encoding == "h264" else None

    @property
    def stats(self) -> CameraStats:
        """Captured frames or packets, delivered, and dropped (stale or waiting for a key)."""
        dropped = self._packets.dropped if self.encoding == "h264" else self._frames.dropped
        captured = self._captured if self.encoding == "h264" else self._frames.offered
        return CameraStats(captured=captured, delivered=self._delivered, dropped=dropped)

    @property
    def self_view_size(self) -> tuple[int, int] | None:
        """The ``lores`` stream's size on the H.264 path; ``None`` where there is no self-view."""
        if self._self_view_width is None or self.encoding != "h264":
            return None
        return self_view_size(self._width, self._height, self._self_view_width)

    def _get_api(self) -> Picamera2Api:
        if self._api is None:
            self._api = load_picamera2_api()
        return self._api

    # -- start and stop -----------------------------------------------------------------

    async def _start(self) -> None:
        try:
            await self._start_capture()
        finally:
            self._start_settled.set()

    async def _start_capture(self) -> None:
        self._started = True
        self._loop = asyncio.get_running_loop()
        api = self._get_api()
        if self.encoding == "raw":
            self._capture = CaptureThread(
                "picamera2-capture",
                self._produce_raw,
                self._frames.put_nowait,
                self._frames.close,
                self._loop,
            )
            self._capture.start()
            return
        try:
            await asyncio.wait_for(
                asyncio.to_thread(self._start_recording, api), self._start_timeout
            )
        except TimeoutError:
            self._start_error = CameraUnavailableError(
                f"the Pi camera did not start within {self._start_timeout:g} s"
            )
        except CameraUnavailableError as exc:
            self._start_error = exc
        except Exception as exc:  # libcamera/picamera2 raise RuntimeError and friends
            self._start_error = CameraUnavailableError(f"the Pi camera did not start: {exc}")
        if self._start_error is not None:
            self._packets.close(self._start_error)

    def _open_camera(self, api: Picamera2Api) -> Any:
        if not api.global_camera_info():
            raise CameraUnavailableError("no camera is connected to the camera connector")
        camera = api.picamera2(self._camera_num)
        streams: dict[str, Any] = {}
        lores = self.self_view_size
        if lores is not None:
            # The self-view beside the encoded main stream; a Pi 4 wants it YUV420, <= main.
            streams["lores"] = {"size": lores, "format": "YUV420"}
        try:
            config = camera.create_video_configuration(
                main={"size": (self._width, self._height), "format": "YUV420"},
                controls={"FrameRate": self._fps},
                **streams,
            )
            camera.configure(config)
        except Exception:
            with contextlib.suppress(Exception):
                camera.close()
            raise
        return camera

    def _start_recording(self, api: Picamera2Api) -> None:
        camera = self._open_camera(api)
        self._camera = camera
        bitrate = self._wanted_bitrate
        try:
            # "constrained baseline" is what every WebRTC browser decodes (42e0xx); older
            # picamera2 releases lack the profile argument and encode baseline anyway.
            encoder = api.h264_encoder(
                bitrate=bitrate,
                repeat=True,
                iperiod=self._iperiod,
                profile="constrained baseline",
            )
        except TypeError:
            encoder = api.h264_encoder(bitrate=bitrate, repeat=True, iperiod=self._iperiod)
        self._encoder = encoder
        try:
            camera.start_recording(encoder, _make_output(api.output, self._on_encoded))
        except Exception:
            self._close_camera_blocking(recording=False)
            raise
        if self._wanted_bitrate != bitrate:  # the ladder moved while the encoder started
            self.set_bitrate(self._wanted_bitrate)
        if self.readyState != "live" or self._start_error is not None:
            # Stopped (or timed out) while starting: nobody will close it otherwise.
            self._close_camera_blocking(recording=True)

    def _produce_raw(self, emit: Emit[av.VideoFrame], stopping: threading.Event) -> None:
        try:
            camera = self._open_camera(self._get_api())
        except CameraUnavailableError:
            raise
        except Exception as exc:
            raise CameraUnavailableError(f"the Pi camera did not start: {exc}") from exc
        self._camera = camera
        try:
            camera.start()
            start: float | None = None
            while not stopping.is_set():
                array = camera.capture_array("main")
                now = time.monotonic()
                start = now if start is None else start
                frame = yuv420_array_to_frame(array, self._width, self._height)
                frame.pts = round((now - start) * VIDEO_CLOCK_RATE)
                frame.time_base = VIDEO_TIME_BASE
                if not emit(frame):
                    return
        except Exception as exc:
            if stopping.is_set():
                return
            raise CameraUnavailableError(f"the Pi camera stopped: {exc}") from exc
        finally:
            self._close_camera_blocking(recording=False)

    def _close_camera_blocking(self, recording: bool) -> None:
        camera, self._camera = self._camera, None
        if camera is None:
            return
        with contextlib.suppress(Exception):  # already stopped, or the camera went away
            if recording:
                camera.stop_recording()
            else:
                camera.stop()
        with contextlib.suppress(Exception):
            camera.close()

    def stop(self) -> None:
        """End the track; the camera is stopped and closed on a helper thread."""
        super().stop()
        self._packets.close()
        self._frames.close()
        for self_view in self._self_views:
            self_view.stop()
        self._start_settled.set()
        if self._capture is not None:
            self._capture.stop()  # the capture thread closes the camera itself
        elif self._camera is not None and self._closer is None:
            self._closer = threading.Thread(
                target=self._close_camera_blocking,
                args=(True,),
                name="picamera2-close",
                daemon=True,
            )
            self._closer.start()

    async def aclose(self, grace: float = 10.0) -> None:
        """Stop and wait up to ``grace`` seconds until the camera is released."""
        self.stop()
        if self._capture is not None:
            await self._capture.join(grace)
        for self_view in tuple(self._self_views):
            await self_view.join(grace)
        if self._closer is not None:
            await asyncio.to_thread(self._closer.join, grace)

    # -- the encoded path ---------------------------------------------------------------

    def _on_encoded(self, data: bytes, keyframe: bool, timestamp_us: int | None) -> None:
        """picamera2's encoder thread: hand the access unit to the loop."""
        loop = self._loop
        if loop is None or self.readyState != "live":
            return
        with contextlib.suppress(RuntimeError):  # loop closed during shutdown
            loop.call_soon_threadsafe(self._offer_packet, data, keyframe, timestamp_us)

    def _offer_packet(self, data: bytes, keyframe: bool, timestamp_us: int | None) -> None:
        if timestamp_us is None:
            timestamp_us = time.monotonic_ns() // 1000
        if self._first_ts is None:
            self._first_ts = timestamp_us
        packet = av.Packet(data)
        packet.pts = (timestamp_us - self._first_ts) * VIDEO_CLOCK_RATE // 1_000_000
        packet.time_base = VIDEO_TIME_BASE
        self._captured += 1
        self._packets.put_nowait(_Packet(packet, keyframe), keyframe)

    def _on_gap(self) -> None:
        self._force_keyframe()

    def _force_keyframe(self) -> None:
        encoder = self._encoder
        if encoder is None:
            return
        self._last_keyframe_request = time.monotonic()
        try:
            _request_encoder_keyframe(encoder)
        except OSError as exc:
            # The encoder still makes a keyframe every `iperiod` frames; say so and go on.
            _log.warning("could not force a keyframe: %s", exc)
            return
        self.keyframe_requests += 1

    @property
    def max_bitrate(self) -> int:
        """The bitrate the hardware encoder was configured with (bit/s)."""
        return self._bitrate

    def set_bitrate(self, bitrate: int) -> None:
        """Encode at ``bitrate`` (at most the configured one) from now on; the hardware path
        only (on the raw path aiortc's encoder has the rate). Before the encoder runs (the
        camera opens at the call's first picture) the rate is kept for its start. Never fails
        the call."""
        if self.encoding != "h264":
            return
        self._wanted_bitrate = max(1, min(int(bitrate), self._bitrate))
        encoder = self._encoder
        if encoder is None:
            return
        try:
            _set_encoder_bitrate(encoder, self._wanted_bitrate)
        except (OSError, ValueError) as exc:  # ValueError: the device closed meanwhile
            _log.warning("could not change the encoder's bitrate: %s", exc)
            return
        self.bitrate_changes += 1

    def request_keyframe(self) -> None:
        """Ask the hardware encoder for a keyframe (at most one per ``keyframe_min_interval``).

        A flood of PLIs from a lossy path would otherwise turn every frame into a keyframe.
        No-op on the raw path (aiortc's VP8 encoder handles its own requests).
        """
        if self.encoding != "h264":
            return
        if time.monotonic() - self._last_keyframe_request < self._keyframe_min_interval:
            return
        self._force_keyframe()

    # -- the self-view (h264 path) ------------------------------------------------------

    async def self_view(self, fps: float) -> AsyncGenerator[av.VideoFrame, None]:
        """Pictures from the ``lores`` stream, at most ``fps`` a second (H.264 path only).

        See :class:`~hardware.camera.base.SelfViewSource`. Waits until recording began (the
        first ``recv()``), then a thread of its own reads ``capture_array("lores")`` at the
        throttled rate; the newest picture wins. Ends when the track stops, at once on the
        raw path (its frames are the self-view), and after a few failed captures in a row.
        """
        if not fps > 0:
            raise ValueError("fps must be positive")
        size = self.self_view_size
        if size is None:
            return
        await self._start_settled.wait()
        camera = self._camera
        if camera is None or self._start_error is not None or self.readyState != "live":
            return
        pictures: LatestQueue[av.VideoFrame] = LatestQueue(1)
        thread: CaptureThread[av.VideoFrame] = CaptureThread(
            "picamera2-self-view",
            functools.partial(self._produce_self_view, camera, size, fps),
            pictures.put_nowait,
            pictures.close,
            asyncio.get_running_loop(),
        )
        self._self_views.add(thread)
        thread.start()
        try:
            while True:
                try:
                    picture = await pictures.get()
                except QueueClosedError:
                    return
                yield picture
        finally:
            thread.stop()

    def _produce_self_view(
        self,
        camera: Any,
        size: tuple[int, int],
        fps: float,
        emit: Emit[av.VideoFrame],
        stopping: threading.Event,
    ) -> None:
        """The self-view thread: one lores capture per ``1/fps`` seconds while recording."""
        width, height = size
        interval = 1.0 / fps
        due = time.monotonic()
        failures = 0
        while not stopping.is_set() and self.readyState == "live":
            delay = due - time.monotonic()
            if delay > 0 and stopping.wait(delay):
                return
            due = max(due + interval, time.monotonic())
            try:
                array = camera.capture_array("lores", wait=_LORES_TIMEOUT)
                picture = yuv420_array_to_frame(array, width, height)
            except Exception:
                if stopping.is_set() or self.readyState != "live":
                    return  # the camera is closing under us: not a failure
                failures += 1
                if failures >= _LORES_MAX_FAILURES:
                    raise
                continue
            failures = 0
            if not emit(picture):
                return

    # -- the track ----------------------------------------------------------------------

    async def recv(self) -> av.VideoFrame | av.Packet[Any]:
        """The next encoded packet (h264) or the newest frame (raw)."""
        if self.readyState != "live":
            raise MediaStreamError
        if not self._started:
            await self._start()
        try:
            if self.encoding == "h264":
                item: av.VideoFrame | av.Packet[Any] = (await self._packets.get()).packet
            else:
                item = await self._frames.get()
        except QueueClosedError as exc:
            raise_for_closed_queue(
                self,
                exc,
                CameraUnavailableError,
                lambda cause: CameraUnavailableError(f"the Pi camera failed: {cause}"),
            )
        self._delivered += 1
        return item

"""A stand-in for the small part of picamera2 that :class:`Picamera2Camera` uses.

Shipped product code, like gpiozero's ``MockFactory``: the demo and the tests run the real
``Picamera2Camera`` against it on any Linux machine. Its "sensor" is the stamped test pattern,
so whatever comes out the other end can be checked frame by frame; its "hardware encoder" is
real H.264 (libx264 through PyAV, constrained baseline, SPS/PPS before every IDR, a keyframe
every ``iperiod`` frames and on request), so the packets are what a browser would decode.
A ``lores`` stream can be configured beside ``main`` and read with ``capture_array("lores")``
while recording, as on the Pi: the same stamped sensor picture, scaled down, with rows padded
to the stride picamera2 reports for YUV420.

Build one with :func:`fake_picamera2_api`; its :class:`FakeCameraState` records what happened.
"""

from __future__ import annotations

import fractions
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from station.core.clock import Clock, SystemClock

from .picamera2_backend import Picamera2Api
from .stamp import datetime_to_us
from .testpattern import TestPattern

__all__ = [
    "FakeCameraState",
    "FakeH264Encoder",
    "FakeOutput",
    "FakePicamera2",
    "fake_picamera2_api",
]


@dataclass
class FakeCameraState:
    """What the fake camera did, and how it should misbehave."""

    #: How many cameras ``global_camera_info`` reports (0: "nothing plugged in").
    cameras: int = 1
    #: Whether the "board" has the hardware H.264 encoder (a Pi 4: True; a Pi 5: False).
    hardware_h264: bool = True
    #: Make ``start()``/``start_recording()`` fail like a camera whose cable is loose.
    fail_start: bool = False
    #: Make capture fail after this many frames (None: never).
    fail_after_frames: int | None = None
    #: The clock the "sensor" stamps frames with.
    clock: Clock = field(default_factory=SystemClock)
    opened: int = 0
    closed: int = 0
    frames: int = 0
    keyframes: int = 0
    forced_keyframes: int = 0
    #: Every bitrate a running encoder was asked for (bit/s), in order.
    bitrates: list[int] = field(default_factory=list)
    #: ``capture_array`` calls answered, per stream name ("main", "lores").
    captures: dict[str, int] = field(default_factory=dict)
    encoders: list[FakeH264Encoder] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeOutput:
    """Stands in for ``picamera2.outputs.Output``: encoders call ``outputframe`` per frame."""

    def outputframe(
        self,
        frame: bytes | None,
        keyframe: bool = True,
        timestamp: int | None = None,
        packet: Any = None,
        audio: bool = False,
    ) -> None:
        """Receive one encoded frame (subclasses override this)."""


class FakeH264Encoder:
    """Stands in for ``picamera2.encoders.H264Encoder``, encoding with libx264."""

    def __init__(
        self,
        bitrate: int | None = None,
        repeat: bool = True,
        iperiod: int | None = None,
        framerate: float | None = None,
        profile: str | None = None,
        *,
        state: FakeCameraState | None = None,
    ) -> None:
        if profile is not None and profile.lower() not in (
            "baseline",
            "constrained baseline",
            "main",
            "high",
        ):
            raise RuntimeError(f"Profile {profile} not recognised")
        self.bitrate = bitrate or 1_000_000
        self.repeat = repeat
        self.iperiod = iperiod or 60
        self.framerate = framerate
        self.profile = profile
        self._state = state
        self._force = threading.Event()
        self._codec: Any = None
        self._restart = False
        if state is not None:
            state.encoders.append(self)

    def force_key_frame(self) -> None:
        """Make the next encoded frame an IDR (the real encoder: a V4L2 control write)."""
        self._force.set()
        if self._state is not None:
            with self._state.lock:
                self._state.forced_keyframes += 1

    def set_bitrate(self, bitrate: int) -> None:
        """Encode at ``bitrate`` from the next frame (the real encoder: a V4L2 control write,
        :func:`~hardware.camera.picamera2_backend.v4l2_set_bitrate`, taken live). The fake
        starts a new libx264 stream, with an IDR: a rate set on a running x264 through PyAV
        was not taken here (packet sizes unchanged after 60 frames)."""
        self.bitrate = int(bitrate)
        self._restart = True
        if self._state is not None:
            with self._state.lock:
                self._state.bitrates.append(self.bitrate)

    def _encode(
        self, yuv: npt.NDArray[np.uint8], width: int, height: int, index: int
    ) -> list[tuple[bytes, bool]]:
        if self._restart:
            self._restart = False
            self._codec = None
        if self._codec is None:
            codec = av.CodecContext.create("libx264", "w")
            codec.width = width
            codec.height = height
            codec.pix_fmt = "yuv420p"
            codec.bit_rate = self.bitrate
            codec.framerate = fractions.Fraction(30, 1)
            codec.time_base = fractions.Fraction(1, 30)
            codec.gop_size = self.iperiod
            codec.profile = "Constrained Baseline"
            codec.options = {
                "preset": "ultrafast",
                "tune": "zerolatency",
                # A one-second rate buffer, like a hardware encoder's rate control.
                "maxrate": str(self.bitrate),
                "bufsize": str(self.bitrate),
                # A requested I frame must be an IDR, or a decoder joining there cannot start.
                "forced-idr": "1",
                "level": "31",
                # Keyframes only every `iperiod` frames or on request, like the Pi's encoder.
                "x264-params": "scenecut=0",
            }
            self._codec = codec
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = index
        frame.time_base = fractions.Fraction(1, 30)
        if self._force.is_set():
            self._force.clear()
            frame.pict_type = av.video.frame.PictureType.I
        else:
            frame.pict_type = av.video.frame.PictureType.NONE
        return [(bytes(p), bool(p.is_keyframe)) for p in self._codec.encode(frame)]


#: Row alignment of the fake's YUV420 capture arrays (picamera2's optimal YUV420 alignment).
_STRIDE_ALIGN = 64


def _padded_yuv420(
    picture: npt.NDArray[np.uint8], width: int, height: int
) -> npt.NDArray[np.uint8]:
    """An I420 picture as picamera2 returns YUV420: ``(height * 3 / 2, stride)``, rows padded.

    Luma rows are ``stride`` bytes; each array row of chroma holds two ``stride / 2`` rows.
    """
    stride = -(-width // _STRIDE_ALIGN) * _STRIDE_ALIGN
    if stride == width:
        return picture
    source = picture.reshape(-1)
    out = np.zeros(stride * height * 3 // 2, dtype=np.uint8)
    planes = ((width, height, stride), (width // 2, height // 2, stride // 2))
    read = write = 0
    for plane_width, plane_height, plane_stride in (planes[0], planes[1], planes[1]):
        rows = source[read : read + plane_width * plane_height].reshape(plane_height, plane_width)
        target = out[write : write + plane_stride * plane_height].reshape(
            plane_height, plane_stride
        )
        target[:, :plane_width] = rows
        read += plane_width * plane_height
        write += plane_stride * plane_height
    return out.reshape(height * 3 // 2, stride)


class FakePicamera2:
    """Stands in for ``picamera2.Picamera2`` (only what the station uses)."""

    def __init__(self, camera_num: int = 0, *, state: FakeCameraState | None = None) -> None:
        self.state = state or FakeCameraState()
        if camera_num >= self.state.cameras:
            raise IndexError("list index out of range")  # what picamera2 raises, verbatim
        with self.state.lock:
            self.state.opened += 1
        self._size = (640, 480)
        self._lores_size: tuple[int, int] | None = None
        self._fps = 30.0
        self._configured = False
        self._started = False
        self._closed = False
        self._pattern: TestPattern | None = None
        self._seq = 0
        self._next_due: float | None = None
        self._recorder: threading.Thread | None = None
        self._stop_recording = threading.Event()
        # The recorder's newest sensor picture, for capture_array() while recording.
        self._latest = threading.Condition()
        self._latest_number = 0
        self._latest_picture: npt.NDArray[np.uint8] | None = None
        self._recording = False

    @staticmethod
    def global_camera_info() -> list[dict[str, Any]]:
        """One camera (use :func:`fake_picamera2_api` to configure how many)."""
        return [{"Model": "fake", "Location": 2, "Rotation": 0, "Id": "fake", "Num": 0}]

    def create_video_configuration(
        self,
        main: dict[str, Any] | None = None,
        lores: dict[str, Any] | None = None,
        controls: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """A configuration dict shaped like picamera2's (the fields the fake reads).

        As picamera2's: ``lores`` defaults to YUV420 at main's size, and both sizes are
        rounded down to even numbers.
        """
        main = {"size": (640, 480), "format": "XBGR8888", **(main or {})}
        main["size"] = _even(main["size"])
        if lores is not None:
            lores = {"size": main["size"], "format": "YUV420", **lores}
            lores["size"] = _even(lores["size"])
        return {
            "use_case": "video",
            "main": main,
            "lores": lores,
            "controls": dict(controls or {}),
            **kwargs,
        }

    def configure(self, config: dict[str, Any]) -> None:
        """Apply a configuration (sizes, format YUV420, FrameRate), checked as on a Pi 4."""
        self._check_open()
        main = config["main"]
        if main.get("format") != "YUV420":
            raise RuntimeError("the fake camera only produces YUV420")
        size = (int(main["size"][0]), int(main["size"][1]))
        lores = config.get("lores")
        lores_size: tuple[int, int] | None = None
        if lores is not None:
            # picamera2's own checks; on a Pi 4 (VC4) lores must also be a YUV format.
            if lores.get("format") != "YUV420":
                raise RuntimeError("lores stream must be YUV")
            lores_size = (int(lores["size"][0]), int(lores["size"][1]))
            if lores_size[0] > size[0] or lores_size[1] > size[1]:
                raise RuntimeError("lores stream dimensions may not exceed main stream")
        self._size = size
        self._lores_size = lores_size
        self._fps = float(config["controls"].get("FrameRate", 30.0))
        self._pattern = TestPattern(*self._size)
        self._configured = True

    def start(self) -> None:
        """Start the "sensor"."""
        self._check_open()
        if not self._configured:
            raise RuntimeError("Camera has not been configured")
        if self.state.fail_start:
            raise RuntimeError("Camera frontend has timed out!")
        self._started = True

    def stop(self) -> None:
        """Stop the "sensor"."""
        self._started = False

    def close(self) -> None:
        """Release the camera (idempotent, as picamera2's is)."""
        if self._closed:
            return
        self.stop_recording()
        self._closed = True
        self._started = False
        with self.state.lock:
            self.state.closed += 1

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("Camera is closed")

    def _next_picture(self) -> npt.NDArray[np.uint8]:
        """Wait until the next frame is due and return it as an I420 array."""
        assert self._pattern is not None
        now = time.monotonic()
        if self._next_due is None:
            self._next_due = now
        elif now < self._next_due:
            time.sleep(self._next_due - now)
        self._next_due = max(self._next_due + 1 / self._fps, time.monotonic() - 1 / self._fps)
        limit = self.state.fail_after_frames
        if limit is not None and self.state.frames >= limit:
            raise RuntimeError("Camera frontend has timed out!")
        seq = self._seq
        self._seq += 1
        with self.state.lock:
            self.state.frames += 1
        return self._pattern.render_yuv(seq, datetime_to_us(self.state.clock.now()))

    def capture_array(
        self, name: str = "main", wait: float | bool | None = None
    ) -> npt.NDArray[np.uint8]:
        """Block until the next frame and return stream ``name`` as picamera2 does for YUV420.

        While recording, the next picture the "sensor" gives the encoder (as picamera2 hands
        out the next completed request); otherwise the sensor is driven from here. ``wait``
        as picamera2's: a number of seconds to wait at most (then ``TimeoutError``).
        """
        self._check_open()
        if not self._started:
            raise RuntimeError("Camera is not running")
        if name == "main":
            width, height = self._size
        elif name == "lores" and self._lores_size is not None:
            width, height = self._lores_size
        else:
            raise RuntimeError(f"Stream {name!r} is not defined")
        timeout = wait if isinstance(wait, (int, float)) and not isinstance(wait, bool) else None
        picture = self._recorded_picture(timeout) if self._recording else self._next_picture()
        if (width, height) != self._size:
            # The ISP scales the same sensor picture down for lores.
            frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
            scaled = frame.reformat(width=width, height=height, format="yuv420p")
            picture = np.asarray(scaled.to_ndarray(), dtype=np.uint8)
        with self.state.lock:
            self.state.captures[name] = self.state.captures.get(name, 0) + 1
        return _padded_yuv420(picture, width, height)

    def _recorded_picture(self, timeout: float | None) -> npt.NDArray[np.uint8]:
        with self._latest:
            after = self._latest_number
            arrived = self._latest.wait_for(
                lambda: self._latest_number > after or not self._recording, timeout
            )
            if not self._recording:
                raise RuntimeError("Camera is not running")
            if not arrived or self._latest_picture is None:
                raise TimeoutError
            return self._latest_picture

    def start_recording(self, encoder: Any, output: Any, quality: Any = None) -> None:
        """Start the sensor and feed ``encoder``'s output from a background thread."""
        self.start()
        if not isinstance(encoder, FakeH264Encoder):
            raise TypeError("the fake camera records only with FakeH264Encoder")
        self._stop_recording.clear()
        with self._latest:
            self._recording = True
        self._recorder = threading.Thread(
            target=self._record, args=(encoder, output), name="fake-picamera2-encoder", daemon=True
        )
        self._recorder.start()

    def _record(self, encoder: FakeH264Encoder, output: Any) -> None:
        width, height = self._size
        start_us: int | None = None
        index = 0
        while not self._stop_recording.is_set() and self._started:
            try:
                picture = self._next_picture()
            except RuntimeError:
                return  # the "camera" failed: frames simply stop, as with a loose cable
            with self._latest:
                self._latest_picture = picture
                self._latest_number += 1
                self._latest.notify_all()
            now_us = time.monotonic_ns() // 1000
            start_us = now_us if start_us is None else start_us
            for data, keyframe in encoder._encode(picture, width, height, index):
                if keyframe:
                    with self.state.lock:
                        self.state.keyframes += 1
                output.outputframe(data, keyframe, now_us - start_us)
            index += 1

    def stop_recording(self) -> None:
        """Stop the encoder thread and the sensor."""
        self._stop_recording.set()
        with self._latest:
            self._recording = False
            self._latest.notify_all()
        recorder, self._recorder = self._recorder, None
        if recorder is not None and recorder is not threading.current_thread():
            recorder.join(5.0)
        self._started = False


def _even(size: Any) -> tuple[int, int]:
    return int(size[0]) & ~1, int(size[1]) & ~1


def fake_picamera2_api(state: FakeCameraState | None = None) -> Picamera2Api:
    """A :class:`Picamera2Api` whose camera and encoder are the fakes, sharing ``state``."""
    shared = state or FakeCameraState()

    def make_camera(camera_num: int = 0) -> FakePicamera2:
        return FakePicamera2(camera_num, state=shared)

    def make_encoder(*args: Any, **kwargs: Any) -> FakeH264Encoder:
        return FakeH264Encoder(*args, state=shared, **kwargs)

    def camera_info() -> list[dict[str, Any]]:
        return [
            {"Model": "fake", "Location": 2, "Rotation": 0, "Id": f"fake{i}", "Num": i}
            for i in range(shared.cameras)
        ]

    return Picamera2Api(
        picamera2=make_camera,
        h264_encoder=make_encoder,
        output=FakeOutput,
        global_camera_info=camera_info,
        has_hardware_h264=lambda: shared.hardware_h264,
    )

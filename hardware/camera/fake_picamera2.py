"""A stand-in for the small part of picamera2 that :class:`Picamera2Camera` uses.

Shipped product code, like gpiozero's ``MockFactory``: the demo and the tests run the real
``Picamera2Camera`` against it on any Linux machine. Its "sensor" is the stamped test pattern,
so whatever comes out the other end can be checked frame by frame; its "hardware encoder" is
real H.264 (libx264 through PyAV, constrained baseline, SPS/PPS before every IDR, a keyframe
every ``iperiod`` frames and on request), so the packets are what a browser would decode.

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
        if state is not None:
            state.encoders.append(self)

    def force_key_frame(self) -> None:
        """Make the next encoded frame an IDR (the real encoder: a V4L2 control write)."""
        self._force.set()
        if self._state is not None:
            with self._state.lock:
                self._state.forced_keyframes += 1

    def _encode(
        self, yuv: npt.NDArray[np.uint8], width: int, height: int, index: int
    ) -> list[tuple[bytes, bool]]:
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


class FakePicamera2:
    """Stands in for ``picamera2.Picamera2`` (only what the station uses)."""

    def __init__(self, camera_num: int = 0, *, state: FakeCameraState | None = None) -> None:
        self.state = state or FakeCameraState()
        if camera_num >= self.state.cameras:
            raise IndexError("list index out of range")  # what picamera2 raises, verbatim
        with self.state.lock:
            self.state.opened += 1
        self._size = (640, 480)
        self._fps = 30.0
        self._configured = False
        self._started = False
        self._closed = False
        self._pattern: TestPattern | None = None
        self._seq = 0
        self._next_due: float | None = None
        self._recorder: threading.Thread | None = None
        self._stop_recording = threading.Event()

    @staticmethod
    def global_camera_info() -> list[dict[str, Any]]:
        """One camera (use :func:`fake_picamera2_api` to configure how many)."""
        return [{"Model": "fake", "Location": 2, "Rotation": 0, "Id": "fake", "Num": 0}]

    def create_video_configuration(
        self,
        main: dict[str, Any] | None = None,
        controls: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """A configuration dict shaped like picamera2's (the fields the fake reads)."""
        main = {"size": (640, 480), "format": "XBGR8888", **(main or {})}
        return {"use_case": "video", "main": main, "controls": dict(controls or {}), **kwargs}

    def configure(self, config: dict[str, Any]) -> None:
        """Apply a configuration (size, format YUV420, FrameRate)."""
        self._check_open()
        main = config["main"]
        if main.get("format") != "YUV420":
            raise RuntimeError("the fake camera only produces YUV420")
        self._size = (int(main["size"][0]), int(main["size"][1]))
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

    def capture_array(self, name: str = "main") -> npt.NDArray[np.uint8]:
        """Block until the next frame and return it as picamera2 does for ``YUV420``."""
        self._check_open()
        if not self._started:
            raise RuntimeError("Camera is not running")
        return self._next_picture()

    def start_recording(self, encoder: Any, output: Any, quality: Any = None) -> None:
        """Start the sensor and feed ``encoder``'s output from a background thread."""
        self.start()
        if not isinstance(encoder, FakeH264Encoder):
            raise TypeError("the fake camera records only with FakeH264Encoder")
        self._stop_recording.clear()
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
        recorder, self._recorder = self._recorder, None
        if recorder is not None and recorder is not threading.current_thread():
            recorder.join(5.0)
        self._started = False


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

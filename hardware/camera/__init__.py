"""The station's camera: a port (:class:`Camera`, an aiortc video track) and its backends.

- :class:`TestPatternCamera`: synthetic, stamped with capture time and sequence number
  (read back with :func:`decode_stamp`); development, demo, tests.
- :class:`V4L2Camera`: a USB webcam through PyAV.
- :class:`Picamera2Camera`: the Pi camera; hardware H.264 passed through on a Pi 4 (with a
  self-view from picamera2's ``lores`` stream, see :class:`SelfViewSource`), raw frames for
  VP8 on a Pi 5; :func:`fake_picamera2_api` runs it anywhere.

:func:`build_camera_factory` chooses one from the environment (see :mod:`.select`).
"""

from __future__ import annotations

from .base import (
    VIDEO_CLOCK_RATE,
    VIDEO_TIME_BASE,
    Camera,
    CameraStats,
    FramePacer,
    SelfViewSource,
    forward_keyframe_requests,
    parse_size,
)
from .fake_picamera2 import (
    FakeCameraState,
    FakeH264Encoder,
    FakeOutput,
    FakePicamera2,
    fake_picamera2_api,
)
from .picamera2_backend import (
    Picamera2Api,
    Picamera2Camera,
    board_has_hardware_h264,
    load_picamera2_api,
)
from .select import (
    CAMERA_BACKENDS,
    CAMERA_ENV,
    CAMERA_FALLBACK_ORDER,
    CameraFactory,
    build_camera_factory,
)
from .stamp import Stamp, decode_stamp, decode_stamp_luma, draw_stamp
from .testpattern import TestPattern, TestPatternCamera
from .v4l2 import DEFAULT_V4L2_DEVICE, V4L2Camera

__all__ = [
    "CAMERA_BACKENDS",
    "CAMERA_ENV",
    "CAMERA_FALLBACK_ORDER",
    "DEFAULT_V4L2_DEVICE",
    "VIDEO_CLOCK_RATE",
    "VIDEO_TIME_BASE",
    "Camera",
    "CameraFactory",
    "CameraStats",
    "FakeCameraState",
    "FakeH264Encoder",
    "FakeOutput",
    "FakePicamera2",
    "FramePacer",
    "Picamera2Api",
    "Picamera2Camera",
    "SelfViewSource",
    "Stamp",
    "TestPattern",
    "TestPatternCamera",
    "V4L2Camera",
    "board_has_hardware_h264",
    "build_camera_factory",
    "decode_stamp",
    "decode_stamp_luma",
    "draw_stamp",
    "fake_picamera2_api",
    "forward_keyframe_requests",
    "load_picamera2_api",
    "parse_size",
]

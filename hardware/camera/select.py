"""Choosing the camera backend from the environment.

``KONTAKTSTATION_CAMERA`` names the backend: ``picamera2``, ``v4l2`` or ``testpattern``.
When it is unset the fallback order is ``picamera2`` (a camera on the CSI connector), then
``v4l2`` (a USB webcam at ``KONTAKTSTATION_CAMERA_DEVICE``); the test pattern is never chosen
silently, since a GP must never see a test pattern where a resident should be. Set
``KONTAKTSTATION_CAMERA=testpattern`` (or ``KONTAKTSTATION_HARDWARE=fake``) for the demo.
A backend that was asked for by name and cannot be used is an error, not a fallback.

Other settings: ``KONTAKTSTATION_CAMERA_SIZE`` (``640x480``), ``KONTAKTSTATION_CAMERA_FPS``
(``30``), ``KONTAKTSTATION_CAMERA_DEVICE`` (``/dev/video0``),
``KONTAKTSTATION_CAMERA_INPUT_FORMAT`` (V4L2 pixel format, e.g. ``mjpeg``; default: the
driver's), ``KONTAKTSTATION_CAMERA_ENCODING`` (picamera2: ``auto``, ``h264`` or ``raw``),
``KONTAKTSTATION_CAMERA_BITRATE`` (picamera2 H.264, bits/s, default 1000000).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import cast

from .._env import choose, env_float, env_int
from ..errors import BackendUnavailableError
from .base import Camera, parse_size
from .picamera2_backend import Encoding, Picamera2Api, Picamera2Camera
from .testpattern import TestPatternCamera
from .v4l2 import DEFAULT_V4L2_DEVICE, V4L2Camera

__all__ = [
    "CAMERA_BACKENDS",
    "CAMERA_ENV",
    "CAMERA_FALLBACK_ORDER",
    "CameraFactory",
    "build_camera_factory",
]

CAMERA_ENV = "KONTAKTSTATION_CAMERA"
CAMERA_BACKENDS = ("picamera2", "v4l2", "testpattern")
CAMERA_FALLBACK_ORDER = ("picamera2", "v4l2")

#: Makes a fresh camera track (one per call: aiortc stops a track with its connection).
CameraFactory = Callable[[], Camera]

_log = logging.getLogger(__name__)


def build_camera_factory(
    env: Mapping[str, str], *, picamera2_api: Picamera2Api | None = None
) -> tuple[str, CameraFactory]:
    """The chosen backend's name and a factory for its tracks.

    Raises ``UnknownBackendError`` for a misspelt name, ``BackendUnavailableError`` when the
    requested backend (or every one in the fallback order) cannot be used, ``ValueError`` for
    a malformed size or number.
    """
    width, height = parse_size(env.get("KONTAKTSTATION_CAMERA_SIZE", "") or "640x480")
    fps = env_float(env, "KONTAKTSTATION_CAMERA_FPS", 30.0)
    device = env.get("KONTAKTSTATION_CAMERA_DEVICE", "") or DEFAULT_V4L2_DEVICE
    input_format = env.get("KONTAKTSTATION_CAMERA_INPUT_FORMAT", "") or None
    encoding = (env.get("KONTAKTSTATION_CAMERA_ENCODING", "") or "auto").lower()
    if encoding not in ("auto", "h264", "raw"):
        raise ValueError(f"KONTAKTSTATION_CAMERA_ENCODING={encoding!r} is not auto, h264 or raw")
    bitrate = env_int(env, "KONTAKTSTATION_CAMERA_BITRATE", 1_000_000)

    def testpattern() -> Camera:
        return TestPatternCamera(width, height, fps)

    def v4l2() -> Camera:
        return V4L2Camera(device, width=width, height=height, fps=fps, input_format=input_format)

    def picamera2() -> Camera:
        return Picamera2Camera(
            width=width,
            height=height,
            fps=fps,
            encoding=cast(Encoding, encoding),
            bitrate=bitrate,
            api=picamera2_api,
        )

    factories: dict[str, CameraFactory] = {
        "testpattern": testpattern,
        "v4l2": v4l2,
        "picamera2": picamera2,
    }
    probes: dict[str, Callable[[], str | None]] = {
        "testpattern": lambda: None,
        "v4l2": lambda: V4L2Camera.probe(device),
        "picamera2": lambda: Picamera2Camera.probe(picamera2_api),
    }

    name = choose(env, CAMERA_ENV, CAMERA_BACKENDS, fake="testpattern")
    if name is not None:
        reason = probes[name]()
        if reason is not None:
            raise BackendUnavailableError("camera", name, reason)
        return name, factories[name]

    reasons = []
    for candidate in CAMERA_FALLBACK_ORDER:
        reason = probes[candidate]()
        if reason is None:
            return candidate, factories[candidate]
        _log.info("camera backend %s unavailable: %s", candidate, reason)
        reasons.append(f"{candidate}: {reason}")
    raise BackendUnavailableError(
        "camera",
        "auto",
        "; ".join(reasons) + f" (set {CAMERA_ENV}=testpattern for the demo)",
    )

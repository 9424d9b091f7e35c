"""Choosing the camera backend from the environment.

``KONTAKTSTATION_CAMERA`` names the backend: ``picamera2``, ``v4l2`` or ``testpattern``.
When it is unset the fallback order is ``picamera2`` (a camera on the CSI connector), then
``v4l2`` (a USB webcam at ``KONTAKTSTATION_CAMERA_DEVICE``); the test pattern is never chosen
silently, since a GP must never see a test pattern where a resident should be. Set
``KONTAKTSTATION_CAMERA=testpattern`` (or ``KONTAKTSTATION_HARDWARE=fake``) for the demo.
A backend that was asked for by name and cannot be used is an error, not a fallback.
:func:`probe_camera` asks again, cheaply, whether a chosen backend's device is still there
(stationd re-probes a station whose camera went missing or came back).

Other settings: ``KONTAKTSTATION_CAMERA_SIZE`` (``640x480``), ``KONTAKTSTATION_CAMERA_FPS``
(``30``), ``KONTAKTSTATION_CAMERA_DEVICE`` (``/dev/video0``),
``KONTAKTSTATION_CAMERA_INPUT_FORMAT`` (V4L2 pixel format, e.g. ``mjpeg``; default: the
driver's), ``KONTAKTSTATION_CAMERA_ENCODING`` (picamera2: ``auto``, ``h264`` or ``raw``),
``KONTAKTSTATION_CAMERA_BITRATE`` (picamera2 H.264, bits/s, default 1000000).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import cast

from .._env import choose, env_float, env_int
from ..errors import BackendUnavailableError, HardwareSettingError
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
    "probe_camera",
]

CAMERA_ENV = "KONTAKTSTATION_CAMERA"
CAMERA_BACKENDS = ("picamera2", "v4l2", "testpattern")
CAMERA_FALLBACK_ORDER = ("picamera2", "v4l2")

#: Makes a fresh camera track (one per call: aiortc stops a track with its connection).
CameraFactory = Callable[[], Camera]


def _device(env: Mapping[str, str]) -> str:
    return env.get("KONTAKTSTATION_CAMERA_DEVICE", "") or DEFAULT_V4L2_DEVICE


def _probes(
    env: Mapping[str, str], picamera2_api: Picamera2Api | None
) -> dict[str, Callable[[], str | None]]:
    device = _device(env)
    return {
        "testpattern": lambda: None,
        "v4l2": lambda: V4L2Camera.probe(device),
        "picamera2": lambda: Picamera2Camera.probe(picamera2_api),
    }


def probe_camera(
    env: Mapping[str, str], backend: str, *, picamera2_api: Picamera2Api | None = None
) -> str | None:
    """Why ``backend``'s camera cannot be used now (English), or ``None`` if it looks usable.

    Cheap (a device node's ``stat``, libcamera's camera list) and opens nothing; it does not
    log, since stationd calls it every few seconds.
    """
    probe = _probes(env, picamera2_api).get(backend)
    return None if probe is None else probe()


def build_camera_factory(
    env: Mapping[str, str], *, picamera2_api: Picamera2Api | None = None
) -> tuple[str, CameraFactory]:
    """The chosen backend's name and a factory for its tracks.

    Raises ``UnknownBackendError`` for a misspelt name and ``HardwareSettingError`` (a
    ``ValueError``) for a malformed size or number, both before any device is looked at;
    ``BackendUnavailableError`` when the requested backend (or every one in the fallback
    order) cannot be used. Nothing is logged: the error says it all, once, where it is caught.
    """
    try:
        width, height = parse_size(env.get("KONTAKTSTATION_CAMERA_SIZE", "") or "640x480")
    except ValueError as exc:
        raise HardwareSettingError(f"KONTAKTSTATION_CAMERA_SIZE: {exc}") from None
    fps = env_float(env, "KONTAKTSTATION_CAMERA_FPS", 30.0)
    device = _device(env)
    input_format = env.get("KONTAKTSTATION_CAMERA_INPUT_FORMAT", "") or None
    encoding = (env.get("KONTAKTSTATION_CAMERA_ENCODING", "") or "auto").lower()
    if encoding not in ("auto", "h264", "raw"):
        raise HardwareSettingError(
            f"KONTAKTSTATION_CAMERA_ENCODING={encoding!r} is not auto, h264 or raw"
        )
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
    probes = _probes(env, picamera2_api)

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
        reasons.append(f"{candidate}: {reason}")
    raise BackendUnavailableError(
        "camera",
        "auto",
        "; ".join(reasons) + f" (set {CAMERA_ENV}=testpattern for the demo)",
    )

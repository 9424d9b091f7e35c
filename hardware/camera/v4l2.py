"""A USB webcam through PyAV's V4L2 demuxer (development machines and Pis without a CSI camera).

The device is opened and read on a thread; frames reach ``recv()`` through a queue of one,
newest wins, so a slow encoder never makes the picture lag. The device path comes from
``KONTAKTSTATION_CAMERA_DEVICE`` (default ``/dev/video0``).
"""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import av

from .._capture import CapturedTrack
from .._queue import LatestQueue
from .._thread import Emit
from ..errors import CameraUnavailableError
from .base import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE, CameraStats, check_size

__all__ = ["DEFAULT_V4L2_DEVICE", "V4L2Camera"]

DEFAULT_V4L2_DEVICE = "/dev/video0"


def own_copy(frame: av.VideoFrame) -> av.VideoFrame:
    """A yuv420p ``frame`` copied into memory of its own.

    FFmpeg's V4L2 demuxer hands raw frames out *in the device's mmap'ed buffers* (zero copy;
    FFmpeg asks for yuv420p first, so a webcam or ``vivid`` that offers it gives exactly
    those). Such a frame gives its buffer back to the device when it is freed, through the
    demuxer's context; a frame that outlives the device (the health check's frame, one in the
    loop's queue or the encoder when the camera closes) then writes into freed memory.
    stationd crashed so (SIGSEGV on the loop's thread, dropping such a frame after the camera
    closed) in the booted appliance. ``reformat`` returns the frame itself when nothing needs
    converting, hence the copy; a converted frame has memory of its own already.
    """
    return av.VideoFrame.from_ndarray(frame.to_ndarray(), format="yuv420p")


class V4L2Camera(CapturedTrack[av.VideoFrame]):
    """A webcam as an aiortc video track; opened on the first ``recv()``.

    ``container_format`` is PyAV's input format, ``"v4l2"`` for a webcam; tests and the bench
    pass ``"lavfi"`` with a filter graph as ``device`` to run the same capture machinery
    without a camera.
    """

    kind = "video"

    def __init__(
        self,
        device: str = DEFAULT_V4L2_DEVICE,
        *,
        width: int = 640,
        height: int = 480,
        fps: float = 30.0,
        input_format: str | None = None,
        container_format: str = "v4l2",
        open_timeout: float = 5.0,
        read_timeout: float = 2.0,
    ) -> None:
        super().__init__(LatestQueue(1))
        check_size(width, height)
        self.device = device
        self._width = width
        self._height = height
        self._fps = fps
        self._input_format = input_format
        self._container_format = container_format
        self._open_timeout = open_timeout
        self._read_timeout = read_timeout
        self._delivered = 0

    @staticmethod
    def probe(device: str = DEFAULT_V4L2_DEVICE) -> str | None:
        """Why ``device`` cannot be a webcam (English), or ``None`` if it looks usable."""
        try:
            mode = os.stat(device).st_mode
        except FileNotFoundError:
            return f"{device} does not exist (no webcam plugged in?)"
        except OSError as exc:
            return f"{device} cannot be inspected: {exc.strerror}"
        if not stat.S_ISCHR(mode):
            return f"{device} is not a video device"
        if not os.access(device, os.R_OK | os.W_OK):
            return f"{device} is not readable and writable by this user (group 'video'?)"
        return None

    @property
    def backend(self) -> str:
        """Always ``"v4l2"``."""
        return "v4l2"

    @property
    def passthrough_codec(self) -> str | None:
        """``None``: decoded frames, encoded by aiortc."""
        return None

    @property
    def stats(self) -> CameraStats:
        """Frames read from the device, handed out, and dropped as stale."""
        return CameraStats(
            captured=self._queue.offered,
            delivered=self._delivered,
            dropped=self._queue.dropped,
        )

    def _options(self) -> dict[str, str]:
        if self._container_format not in ("v4l2", "video4linux2"):
            return {}
        options = {"video_size": f"{self._width}x{self._height}", "framerate": f"{self._fps:g}"}
        if self._input_format:
            options["input_format"] = self._input_format
        return options

    def _produce(self, emit: Emit[av.VideoFrame], stopping: threading.Event) -> None:
        if self._container_format in ("v4l2", "video4linux2") and not Path(self.device).exists():
            raise CameraUnavailableError(f"webcam {self.device} does not exist")
        try:
            container = av.open(
                self.device,
                format=self._container_format,
                options=self._options(),
                timeout=(self._open_timeout, self._read_timeout),
            )
        except (av.FFmpegError, OSError) as exc:
            raise CameraUnavailableError(f"cannot open webcam {self.device}: {exc}") from exc
        try:
            if not container.streams.video:
                raise CameraUnavailableError(f"{self.device} has no video stream")
            start: float | None = None
            for frame in container.decode(video=0):
                if stopping.is_set():
                    return
                now = time.monotonic()
                start = now if start is None else start
                if frame.format.name != "yuv420p":
                    # Converted here, off the loop; aiortc's encoders want yuv420p anyway.
                    frame = frame.reformat(format="yuv420p")
                else:
                    frame = own_copy(frame)
                # Re-stamped with the capture clock: device pts can jump or start anywhere.
                frame.pts = round((now - start) * VIDEO_CLOCK_RATE)
                frame.time_base = VIDEO_TIME_BASE
                if not emit(frame):
                    return
            raise CameraUnavailableError(f"webcam {self.device} stopped delivering frames")
        except av.FFmpegError as exc:
            raise CameraUnavailableError(f"reading webcam {self.device} failed: {exc}") from exc
        finally:
            container.close()

    def _thread_name(self) -> str:
        return f"v4l2-capture {self.device}"

    def _failed(self, cause: BaseException | None) -> Exception:
        return CameraUnavailableError(f"webcam {self.device} failed: {cause or 'capture ended'}")

    async def recv(self) -> av.VideoFrame:
        """The newest captured frame; raises ``CameraUnavailableError`` if the device fails."""
        frame = await self._next(CameraUnavailableError)
        self._delivered += 1
        return frame

    def request_keyframe(self) -> None:
        """Nothing to do: aiortc's encoder makes keyframes from decoded frames."""

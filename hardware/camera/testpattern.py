"""A synthetic camera: colour bars, something moving, and a machine-readable capture stamp.

It serves development, the demo on a laptop, and every test that needs video: the stamp (see
:mod:`hardware.camera.stamp`) lets a receiver measure latency and loss from the picture alone.
"""

from __future__ import annotations

from datetime import datetime

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from station.core.clock import Clock, SystemClock

from .base import VIDEO_TIME_BASE, CameraStats, FramePacer, check_size
from .stamp import datetime_to_us, draw_stamp, stamp_band_height

__all__ = ["TestPattern", "TestPatternCamera"]

# Colour bars (75 %), as RGB in 0..1: white, yellow, cyan, green, magenta, red, blue.
_BARS = (
    (0.75, 0.75, 0.75),
    (0.75, 0.75, 0.0),
    (0.0, 0.75, 0.75),
    (0.0, 0.75, 0.0),
    (0.75, 0.0, 0.75),
    (0.75, 0.0, 0.0),
    (0.0, 0.0, 0.75),
)


def _rgb_to_yuv(r: float, g: float, b: float) -> tuple[int, int, int]:
    """BT.601 video-range YCbCr for one RGB colour (components in 0..1)."""
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    u = 128 - 37.797 * r - 74.203 * g + 112.0 * b
    v = 128 + 112.0 * r - 93.786 * g - 18.214 * b
    return round(y), round(u), round(v)


class TestPattern:
    """Renders stamped test-pattern pictures of one size as planar YUV 4:2:0.

    Not a track: :class:`TestPatternCamera` paces it, and the shipped ``FakePicamera2`` uses it
    to make its "sensor" pictures.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, width: int = 640, height: int = 480) -> None:
        check_size(width, height)
        band = stamp_band_height(width)
        if height < band * 2:
            raise ValueError(f"{width}x{height} leaves no room below the stamp band")
        self.width = width
        self.height = height
        self._band = band
        self._background = self._make_background()
        self._box = max(16, (height - band) // 6) & ~1

    def _make_background(self) -> npt.NDArray[np.uint8]:
        w, h = self.width, self.height
        yuv = np.empty((h * 3 // 2, w), dtype=np.uint8)
        y_plane = yuv[:h]
        u_plane = yuv[h : h + h // 4].reshape(h // 2, w // 2)
        v_plane = yuv[h + h // 4 :].reshape(h // 2, w // 2)
        for i, colour in enumerate(_BARS):
            x0, x1 = i * w // len(_BARS), (i + 1) * w // len(_BARS)
            y, u, v = _rgb_to_yuv(*colour)
            y_plane[:, x0:x1] = y
            u_plane[:, x0 // 2 : x1 // 2] = u
            v_plane[:, x0 // 2 : x1 // 2] = v
        # The stamp is grey: neutral chroma under it, and a mid-grey rule below it so its last
        # row of cells has a clean edge.
        y_plane[: self._band + 4] = 128
        u_plane[: (self._band + 4) // 2] = 128
        v_plane[: (self._band + 4) // 2] = 128
        return yuv

    def _draw(
        self,
        y_plane: npt.NDArray[np.uint8],
        u_plane: npt.NDArray[np.uint8],
        v_plane: npt.NDArray[np.uint8],
        seq: int,
        capture_us: int,
    ) -> None:
        """Paint one picture into the three planes (views of wherever it is going)."""
        w, h = self.width, self.height
        background = self._background
        np.copyto(y_plane, background[:h])
        np.copyto(u_plane, background[h : h + h // 4].reshape(h // 2, w // 2))
        np.copyto(v_plane, background[h + h // 4 :].reshape(h // 2, w // 2))
        # For people: a white box bouncing left and right, and a dark bar sweeping down.
        span = w - self._box
        step = (seq * 8) % (2 * span) if span > 0 else 0
        x = (step if step < span else 2 * span - step) & ~1
        top = (self._band + 8 + (h - self._band - 8 - self._box) // 2) & ~1
        y_plane[top : top + self._box, x : x + self._box] = 235
        cy, cx, cb = top // 2, x // 2, self._box // 2
        u_plane[cy : cy + cb, cx : cx + cb] = 128
        v_plane[cy : cy + cb, cx : cx + cb] = 128
        sweep_range = h - self._band - 8 - 4
        row = self._band + 8 + (seq * 4) % max(sweep_range, 1)
        y_plane[row : row + 4] = 40
        draw_stamp(y_plane, capture_us, seq)

    def render_yuv(self, seq: int, capture_us: int) -> npt.NDArray[np.uint8]:
        """One picture as an ``(height * 3 / 2, width)`` I420 array: bars, moving box, stamp."""
        w, h = self.width, self.height
        yuv = np.empty_like(self._background)
        self._draw(
            yuv[:h],
            yuv[h : h + h // 4].reshape(h // 2, w // 2),
            yuv[h + h // 4 :].reshape(h // 2, w // 2),
            seq,
            capture_us,
        )
        return yuv

    def render(self, seq: int, capture_us: int) -> av.VideoFrame:
        """One picture as a ``yuv420p`` ``av.VideoFrame`` (no pts set).

        Drawn straight into the frame's own planes: going through an intermediate array and
        ``VideoFrame.from_ndarray`` costs about four times as much at 640x480.
        """
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        views = []
        for index, (width, height) in enumerate(
            ((self.width, self.height),) + ((self.width // 2, self.height // 2),) * 2
        ):
            plane = frame.planes[index]
            raw = np.frombuffer(memoryview(plane), dtype=np.uint8)
            views.append(raw.reshape(height, plane.line_size)[:, :width])
        self._draw(views[0], views[1], views[2], seq, capture_us)
        return frame


class TestPatternCamera(MediaStreamTrack):
    """A synthetic camera track: stamped test pattern at ``fps``, paced in real time.

    Each frame carries its capture time (from ``clock``, microseconds) and its sequence number
    (0, 1, 2, ... with no gaps) in the picture; read them back with ``decode_stamp``.
    """

    __test__ = False
    kind = "video"

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        fps: float = 30.0,
        *,
        clock: Clock | None = None,
    ) -> None:
        super().__init__()
        self._pattern = TestPattern(width, height)
        self._pacer = FramePacer(fps)
        self._clock: Clock = clock or SystemClock()
        self._seq = 0

    @property
    def backend(self) -> str:
        """Always ``"testpattern"``."""
        return "testpattern"

    @property
    def passthrough_codec(self) -> str | None:
        """``None``: this camera delivers decoded frames."""
        return None

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the pictures."""
        return self._pattern.width, self._pattern.height

    @property
    def stats(self) -> CameraStats:
        """Every frame made is delivered; nothing is dropped."""
        return CameraStats(captured=self._seq, delivered=self._seq, dropped=0)

    def capture_time(self) -> datetime:
        """The clock this camera stamps with (tests compare against it)."""
        return self._clock.now()

    async def recv(self) -> av.VideoFrame:
        """The next stamped frame, when it is due."""
        if self.readyState != "live":
            raise MediaStreamError
        pts = await self._pacer.next_pts()
        if self.readyState != "live":
            raise MediaStreamError
        seq = self._seq
        self._seq += 1
        frame = self._pattern.render(seq & 0xFFFF_FFFF, datetime_to_us(self._clock.now()))
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        return frame

    def request_keyframe(self) -> None:
        """Nothing to do: aiortc's encoder makes the keyframe for decoded frames."""

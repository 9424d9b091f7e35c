"""The GP's video in the terminal, for a station without a display (the demo in a terminal).

On a station the video surface (``kontaktstation surface``, an SDL window beside the UI in
the kiosk compositor) draws the GP. Where no display exists — the demo run over SSH or in a
plain terminal — the person at the "station" must still see the GP: :class:`TerminalVideo`
reads the same shared memory the surface reads (stationd's frame sink, newest frame wins)
and draws it with half blocks: each cell is two pixels, the upper one the foreground colour
of ``▀`` and the lower one its background, in 24-bit colour. A small self-view sits in the
bottom-right corner, as on the surface.

It is switched on by ``KONTAKTSTATION_TERMINAL_VIDEO=1`` (the demo sets it when there is no
display); a kiosk never sets it, and without it neither UI loads anything of this module
beyond its import.

Rate: a 60x20-cell picture is 1,200 cells of two colours, about 40 KB of escape codes a
frame; at :data:`DEFAULT_FPS` (8) that is ~320 KB/s through the terminal (and tmux), which a
local terminal or an SSH session carries without falling behind. The reader only takes a
frame newer than the last one drawn, so a slow terminal skips frames rather than lagging.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from rich.segment import Segment
from rich.style import Style
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from hardware.surface.transport import FrameSlotReader, frame_file, surface_dir
from hardware.video import FrameRole
from station.i18n import _

__all__ = [
    "DEFAULT_FPS",
    "TERMINAL_VIDEO_ENV",
    "VIDEO_TOP_ENV",
    "TerminalVideo",
    "half_block_rows",
    "terminal_video_enabled",
    "video_rows",
]

TERMINAL_VIDEO_ENV: Final = "KONTAKTSTATION_TERMINAL_VIDEO"
#: Percent of the screen's height, from the top, that the video surface's window covers
#: during a call (the kiosk unit sets it; labwc's ``video`` region in rc.xml is the same).
VIDEO_TOP_ENV: Final = "KONTAKTSTATION_VIDEO_TOP"
#: Frames drawn per second at most (see the module docs for why this many).
DEFAULT_FPS: Final = 8.0
_HALF_BLOCK: Final = "▀"
#: The self-view's share of the picture's width.
_SELF_SHARE: Final = 0.3
_RGB = npt.NDArray[np.uint8]


def terminal_video_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this UI draws the GP's video itself (no display: the demo in a terminal)."""
    env = os.environ if environ is None else environ
    return env.get(TERMINAL_VIDEO_ENV, "").strip().lower() in ("1", "true", "yes")


def video_rows(rows: int, environ: Mapping[str, str] | None = None) -> int:
    """How many of the terminal's top rows the kiosk's video window covers during a call.

    In the kiosk the UI has the whole screen and the video surface's window lies over its top
    :data:`VIDEO_TOP_ENV` percent while a call has a picture. The screens shown during a call
    keep their content below it. The terminal does not know its pixels, so this is the
    percentage of the rows, rounded up, plus one row for foot's padding and the cell a pixel
    edge may cut through. 0 where the variable is unset (a terminal, the demo, tests).
    """
    env = os.environ if environ is None else environ
    try:
        percent = float(env.get(VIDEO_TOP_ENV, "").strip() or 0)
    except ValueError:
        return 0
    if not 0 < percent < 100 or rows <= 0:
        return 0
    return min(rows, math.ceil(rows * percent / 100) + 1)


def half_block_rows(picture: _RGB) -> list[Strip]:
    """One :class:`Strip` per two pixel rows of an RGB picture (``height`` must be even)."""
    height, width, _channels = picture.shape
    strips: list[Strip] = []
    styles: dict[tuple[int, ...], Style] = {}
    for row in range(0, height - 1, 2):
        pairs = np.concatenate((picture[row], picture[row + 1]), axis=1).tolist()
        segments: list[Segment] = []
        for pair in pairs:
            key = tuple(pair)
            style = styles.get(key)
            if style is None:
                r1, g1, b1, r2, g2, b2 = key
                style = Style.parse(f"rgb({r1},{g1},{b1}) on rgb({r2},{g2},{b2})")
                styles[key] = style
            segments.append(Segment(_HALF_BLOCK, style))
        strips.append(Strip(Segment.simplify(segments), width))
    return strips


class TerminalVideo(Widget):
    """The GP's newest picture (and a small self-view) in half blocks; see the module docs."""

    DEFAULT_CSS = """
    TerminalVideo {
        width: 1fr;
        height: 1fr;
        min-height: 6;
    }
    """

    waiting_text: reactive[str] = reactive("")
    """Shown instead of a picture until the GP's first frame arrives."""

    def __init__(
        self,
        directory: Path | None = None,
        *,
        fps: float = DEFAULT_FPS,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.directory = directory or surface_dir()
        self._fps = fps
        self._readers: dict[FrameRole, FrameSlotReader] = {}
        self._pictures: dict[FrameRole, _RGB | None] = {"remote": None, "self": None}
        self._raw: dict[FrameRole, object] = {}
        self._strips: list[Strip] = []
        self._checks = 0
        #: Frames drawn (tests and the demo's own check read it).
        self.frames_drawn = 0

    def on_mount(self) -> None:
        """Start reading the shared memory."""
        self.waiting_text = _("Waiting for the doctor's picture …")
        self.set_interval(1.0 / self._fps, self._poll)

    def on_unmount(self) -> None:
        """Release the mappings."""
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()

    def _reader(self, role: FrameRole) -> FrameSlotReader:
        reader = self._readers.get(role)
        if reader is None:
            reader = self._readers[role] = FrameSlotReader(frame_file(self.directory, role))
        return reader

    def _poll(self) -> None:
        self._checks += 1
        recheck = self._checks % max(1, int(self._fps)) == 0  # a replaced file, once a second
        changed = False
        for role in ("remote", "self"):
            received = self._reader(role).read_new(recheck_file=recheck)
            if received is None:
                continue
            self._raw[role] = received.frame
            changed = True
        if changed:
            self._compose_picture()

    def on_resize(self) -> None:
        """Scale the newest pictures to the new size."""
        self._compose_picture()

    def _compose_picture(self) -> None:
        width, height = self.size.width, self.size.height * 2
        remote = self._raw.get("remote")
        if width < 4 or height < 4 or remote is None:
            self._strips = []
            self.refresh()
            return
        picture = _scaled(remote, width, height)
        own = self._raw.get("self")
        if own is not None:
            small_w = max(4, int(width * _SELF_SHARE))
            small_h = max(2, (small_w * 3 // 4) // 2 * 2)
            if small_h < height:
                inset = _scaled(own, small_w, small_h)
                picture[height - small_h :, width - small_w :] = inset
        self._strips = half_block_rows(picture)
        self.frames_drawn += 1
        self.refresh()

    def render_line(self, y: int) -> Strip:
        """One row of half blocks (or the waiting text while no picture has come)."""
        if not self._strips:
            if y == self.size.height // 2:
                text = self.waiting_text[: self.size.width]
                pad = max(0, (self.size.width - len(text)) // 2)
                return Strip([Segment(" " * pad + text)], self.size.width)
            return Strip.blank(self.size.width)
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width)


def _scaled(frame: object, width: int, height: int) -> _RGB:
    """The frame as an RGB array of exactly ``width`` x ``height`` pixels."""
    import av

    assert isinstance(frame, av.VideoFrame)
    rgb = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
    return np.array(rgb, dtype=np.uint8, copy=True)

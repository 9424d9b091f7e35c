"""Drawing the surface with SDL2 (pygame-ce): GP video large, self-view small, two overlays.

The window exists only while there is a picture to show: it opens at the first frame of a call
and closes when the call's pictures are cleared (:meth:`SurfaceRenderer.present`). In the
kiosk the UI has the whole screen outside a call; labwc puts this window over the top of it
during one (``systemd/kiosk/labwc/rc.xml``). Each opening is a new Wayland toplevel, so the
kiosk's window rules (placement, and the keyboard focus handed back to the UI) run every time.

The layout is fixed: the GP's picture fills the window (aspect kept, letterboxed); the
self-view sits in the bottom-right corner at a quarter of the width; the "private call" badge
and the connection quality sit at the bottom-left. Nothing is drawn over the top of the GP's
picture, where the test pattern's stamp (and usually the GP's face) is.

Each picture is scaled and converted to RGB once, by FFmpeg's swscale (PyAV), straight into
the size it is drawn at; the composed window is then flipped. Only the newest frame of each
role is ever converted: the caller hands over at most one per role per draw.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Final

import av
import numpy as np
import numpy.typing as npt

from hardware.surface.transport import OverlayState, Quality
from hardware.video import FrameRole
from station.i18n import N_, _

__all__ = [
    "BADGE_COLOUR",
    "PRIVATE_CALL_TEXT",
    "QUALITY_COLOURS",
    "QUALITY_TEXT",
    "Rect",
    "SurfaceRenderer",
]

_log = logging.getLogger("hardware.surface")

PRIVATE_CALL_TEXT: Final = N_("Private call")
QUALITY_TEXT: Final[dict[Quality, str]] = {
    "unknown": "",
    "good": N_("Good connection"),
    "fair": N_("The connection is weak"),
    "poor": N_("Poor connection"),
    "reconnecting": N_("Restoring the connection …"),
}
#: The label while the video is paused (the GP's last picture stays under it).
AUDIO_ONLY_TEXT: Final[dict[str, str]] = {
    "choice": N_("Audio only"),
    "poor_connection": N_("Audio only — poor connection"),
}
AUDIO_ONLY_COLOUR: Final = (40, 70, 150)
#: Badge background: a deep violet that neither a face nor a test pattern has much of.
BADGE_COLOUR: Final = (110, 40, 170)
QUALITY_COLOURS: Final[dict[Quality, tuple[int, int, int]]] = {
    "unknown": (0, 0, 0),
    "good": (20, 140, 60),
    "fair": (200, 150, 0),
    "poor": (200, 40, 30),
    "reconnecting": (200, 40, 30),
}
_BACKGROUND: Final = (0, 0, 0)
_TEXT: Final = (255, 255, 255)
_SELF_FRACTION: Final = 0.25
_MARGIN: Final = 16


@dataclass(frozen=True)
class Rect:
    """A rectangle in window pixels."""

    x: int
    y: int
    width: int
    height: int

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        return self.width, self.height


def _fit(frame_size: tuple[int, int], box: Rect) -> Rect:
    """The largest rectangle of the frame's aspect inside ``box``, centred; even sides."""
    fw, fh = frame_size
    scale = min(box.width / fw, box.height / fh)
    width = max(2, int(fw * scale) & ~1)
    height = max(2, int(fh * scale) & ~1)
    return Rect(box.x + (box.width - width) // 2, box.y + (box.height - height) // 2, width, height)


class SurfaceRenderer:
    """Owns the SDL window; ``update()`` takes new pictures, ``present()`` draws and flips."""

    def __init__(
        self,
        size: tuple[int, int] = (1280, 720),
        *,
        title: str = "",
        top_percent: float | None = None,
    ) -> None:
        # pygame prints a banner on import unless told not to; our stdout is the journal.
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        import pygame  # SDL starts here, not at import: the sink side never loads it

        self._pg: Any = pygame
        self._requested = size
        self._title = title
        #: Open at the screen's width and this percent of its height (the kiosk's video
        #: region) instead of ``size``: labwc 0.8.3's SnapToRegion did not size the window in
        #: the booted appliance, so the window asks for the region's size itself.
        self._top_percent = top_percent
        pygame.font.init()
        #: The window's surface while it is open (a picture to show), else None.
        self._screen: Any = None
        self._font: Any = pygame.font.Font(None, max(20, size[1] // 24))
        self._pictures: dict[FrameRole, tuple[Any, npt.NDArray[np.uint8]]] = {}
        self._frames: dict[FrameRole, av.VideoFrame] = {}
        self.overlay = OverlayState()
        #: Where each role was drawn by the last :meth:`present` (tests read pixels there).
        self.drawn: dict[str, Rect] = {}
        #: Frames drawn per role since start.
        self.frames_drawn: dict[FrameRole, int] = {"remote": 0, "self": 0}
        #: How often the window was opened since start.
        self.openings = 0

    @property
    def shown(self) -> bool:
        """Whether the window is open (a call has a picture to show)."""
        return self._screen is not None

    @property
    def size(self) -> tuple[int, int]:
        """The window's size now (the size it will open at while it is closed)."""
        if self._screen is None:
            return self._requested
        width, height = self._screen.get_size()
        return int(width), int(height)

    def _open(self) -> None:
        """Open the window: a new toplevel, which the compositor places (and its rules run)."""
        pg = self._pg
        pg.display.init()
        if self._title:
            pg.display.set_caption(self._title)
        if self._top_percent is not None:
            screens = pg.display.get_desktop_sizes()
            if screens:
                width, height = screens[0]
                self._requested = (int(width), max(1, round(height * self._top_percent / 100)))
            else:
                _log.warning("screen size unknown; the window opens at %s", self._requested)
        self._screen = pg.display.set_mode(self._requested, pg.RESIZABLE)
        self._pictures.clear()
        self.openings += 1
        _log.info("video window opened")

    def _close_window(self) -> None:
        """Close the window (the display connection with it): nothing of the call stays."""
        if self._screen is None:
            return
        self._screen = None
        self._pictures.clear()
        self._pg.display.quit()
        _log.info("video window closed")

    def resized(self) -> None:
        """Pick up a new window size (the compositor sized the window)."""
        if self._screen is None:
            return
        self._screen = self._pg.display.get_surface()
        self._pictures.clear()  # re-scaled from the kept frames at the next present

    def update(self, role: FrameRole, frame: av.VideoFrame | None) -> None:
        """The newest picture of ``role`` (``None``: stop showing it)."""
        self._pictures.pop(role, None)
        if frame is None:
            self._frames.pop(role, None)
        else:
            self._frames[role] = frame

    def _layout(self) -> dict[FrameRole, Rect]:
        width, height = self.size
        rects: dict[FrameRole, Rect] = {}
        remote = self._frames.get("remote")
        if remote is not None:
            rects["remote"] = _fit((remote.width, remote.height), Rect(0, 0, width, height))
        own = self._frames.get("self")
        if own is not None:
            box_w = int(width * _SELF_FRACTION)
            box_h = int(box_w * own.height / own.width)
            box = Rect(width - box_w - _MARGIN, height - box_h - _MARGIN, box_w, box_h)
            rects["self"] = _fit((own.width, own.height), box)
        return rects

    def _picture(self, role: FrameRole, rect: Rect) -> Any:
        cached = self._pictures.get(role)
        if cached is not None and tuple(cached[0].get_size()) == rect.size:
            return cached[0]
        frame = self._frames[role]
        rgb = frame.reformat(width=rect.width, height=rect.height, format="rgb24")
        pixels: npt.NDArray[np.uint8] = np.ascontiguousarray(rgb.to_ndarray())
        surface = self._pg.image.frombuffer(pixels, rect.size, "RGB")
        self._pictures[role] = (surface, pixels)  # the surface borrows the array's memory
        return surface

    def present(self) -> None:
        """Compose the window from the newest pictures and the overlay, and flip it; with no
        picture to show (no call, or the call's pictures cleared) close the window instead."""
        self.drawn = {}
        if not self._frames:
            self._close_window()
            return
        if self._screen is None:
            self._open()
        screen = self._screen
        screen.fill(_BACKGROUND)
        for role, rect in self._layout().items():
            screen.blit(self._picture(role, rect), (rect.x, rect.y))
            self.drawn[role] = rect
            self.frames_drawn[role] += 1
        self._draw_overlay()
        self._pg.display.flip()

    def _label(self, text: str, background: tuple[int, int, int], x: int, bottom: int) -> Rect:
        label = self._font.render(text, True, _TEXT)
        pad = max(8, label.get_height() // 3)
        height = label.get_height() + 2 * pad
        rect = Rect(x, bottom - height, label.get_width() + 2 * pad, height)
        self._screen.fill(background, (rect.x, rect.y, rect.width, rect.height))
        self._screen.blit(label, (rect.x + pad, rect.y + pad))
        return rect

    def _draw_overlay(self) -> None:
        _width, height = self.size
        bottom = height - _MARGIN
        if self.overlay.private_call:
            badge = self._label(_(PRIVATE_CALL_TEXT), BADGE_COLOUR, _MARGIN, bottom)
            self.drawn["private_call"] = badge
            bottom = badge.y - _MARGIN // 2
        if self.overlay.audio_only is not None:
            label = _(AUDIO_ONLY_TEXT[self.overlay.audio_only])
            badge = self._label(label, AUDIO_ONLY_COLOUR, _MARGIN, bottom)
            self.drawn["audio_only"] = badge
            bottom = badge.y - _MARGIN // 2
        text = _(QUALITY_TEXT[self.overlay.quality])
        if text:
            self.drawn["quality"] = self._label(
                text, QUALITY_COLOURS[self.overlay.quality], _MARGIN, bottom
            )

    def pixels(self) -> npt.NDArray[np.uint8]:
        """The window as drawn, ``(height, width, 3)`` RGB (a copy); black while closed."""
        width, height = self.size
        if self._screen is None:
            return np.zeros((height, width, 3), dtype=np.uint8)
        data = self._pg.image.tobytes(self._screen, "RGB")
        return np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3).copy()

    def pump(self) -> bool:
        """Handle window events; False when the window was closed."""
        pg = self._pg
        alive = True
        if self._screen is None:
            return alive  # no window, no events (SDL's video part is not even running)
        for event in pg.event.get():
            if event.type == pg.QUIT:
                alive = False
            elif event.type in (pg.VIDEORESIZE, pg.WINDOWSIZECHANGED):
                self.resized()
        return alive

    def close(self) -> None:
        """Close the window."""
        self._close_window()
        self._pg.font.quit()

"""A coarse live camera thumbnail in the terminal: two pixels per cell with half blocks.

Each character cell shows two stacked pixels: "▀" with the upper pixel as the foreground
colour and the lower as the background. A 64x48 thumbnail fills 64x24 cells: enough to aim
the camera and see that someone is in the picture. stationd scales the frame down; this
widget only draws what it is given (``frame``: width, height, rgb24 bytes).
"""

from __future__ import annotations

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

__all__ = ["CameraPreview", "Frame"]

#: (width, height, rgb24 bytes)
Frame = tuple[int, int, bytes]
_UPPER_HALF = "▀"


class CameraPreview(Widget):
    """Draws :attr:`frame` with half blocks, centred; a message when there is none."""

    DEFAULT_CSS = """
    CameraPreview {
        width: 66;
        height: 1fr;
        border: round $secondary;
    }
    """

    frame: reactive[Frame | None] = reactive(None)
    """The newest thumbnail (None: no picture yet)."""
    placeholder: reactive[str] = reactive("")
    """Shown when there is no picture (already translated)."""

    def render_line(self, y: int) -> Strip:
        """One row of cells: two rows of pixels."""
        width = self.size.width
        frame = self.frame
        if frame is None:
            text = self.placeholder if y == self.size.height // 2 else ""
            text = text[:width].center(width)
            return Strip([Segment(text)], width)
        fw, fh, data = frame
        if len(data) < fw * fh * 3:
            return Strip.blank(width)
        pad = max(0, (width - fw) // 2)
        top, bottom = 2 * y, 2 * y + 1
        segments = [Segment(" " * pad)] if pad else []
        if top >= fh:
            return Strip.blank(width)
        for x in range(min(fw, width - pad)):
            i = (top * fw + x) * 3
            upper = Color.from_rgb(data[i], data[i + 1], data[i + 2])
            if bottom < fh:
                j = (bottom * fw + x) * 3
                lower = Color.from_rgb(data[j], data[j + 1], data[j + 2])
            else:
                lower = upper
            segments.append(Segment(_UPPER_HALF, Style(color=upper, bgcolor=lower)))
        return Strip(Segment.simplify(segments), width).adjust_cell_length(width)

"""A microphone level meter: a bar from -60 dBFS (silence) to 0 dBFS (full scale)."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

__all__ = ["LevelMeter"]

_FLOOR = -60.0


class LevelMeter(Widget):
    """Shows :attr:`level` (dBFS) as a bar; green in the speaking range, red near clipping."""

    DEFAULT_CSS = """
    LevelMeter {
        height: 1;
        width: 1fr;
    }
    """

    level: reactive[float | None] = reactive(None)
    """The latest RMS level in dBFS (None: not measured yet)."""

    def render(self) -> Text:
        """The bar and the number."""
        width = max(10, self.size.width - 10)
        if self.level is None:
            return Text("·" * width)
        fraction = min(1.0, max(0.0, (self.level - _FLOOR) / -_FLOOR))
        filled = round(fraction * width)
        style = "red" if self.level > -3 else "green" if self.level > -45 else "yellow"
        bar = Text("█" * filled, style=style)
        bar.append("·" * (width - filled), style="dim")
        bar.append(f" {self.level:6.1f} dB")
        return bar

"""Issue 17, item 4: the station's screen in cells, derived from the kiosk's own files."""

from __future__ import annotations

import pytest

from tests.tui.station_screen import (
    BELOW_VIDEO_SIZES,
    STATION_SIZES,
    cell_for,
    derive,
    foot_font,
)


def test_foot_cell_of_the_kiosk_font() -> None:
    font, points, pad = foot_font()
    assert (font.name, points, pad) == ("DejaVuSansMono.ttf", 16.0, (8, 8))
    cell = cell_for(font, points)
    # 16 pt at 96 dpi = 21.33 px, rounded to ppem 21 (head.flags bit 3): 13 x 25 px.
    assert (cell.width, cell.height, cell.ppem) == (13, 25, 21.0)
    # A control: the derivation follows the size (16.5 pt is ppem 22, a taller cell).
    assert cell_for(font, 16.5).height > cell.height


@pytest.mark.parametrize("screen", [*sorted(STATION_SIZES), "1280x800", "1024x600", "800x480"])
def test_the_stated_sizes_are_the_derived_ones(screen: str) -> None:
    """The stated sizes are the derived ones; on other common screens too, the rows kept
    below the video lie wholly below its window (``derive`` checks it in pixels)."""
    below = derive(screen, below_video=True)
    if screen in STATION_SIZES:
        assert derive(screen) == STATION_SIZES[screen]
        assert below == BELOW_VIDEO_SIZES[screen]
    assert below[1] >= 4, below

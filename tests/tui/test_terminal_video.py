"""The GP's video drawn in the terminal (the demo without a display), read from the same
shared memory the video surface reads."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from textual.app import App, ComposeResult

from hardware.surface.transport import SharedMemoryFrameSink
from tui.video import TerminalVideo, half_block_rows, terminal_video_enabled


def solid(rgb: tuple[int, int, int], size: tuple[int, int] = (320, 240)) -> av.VideoFrame:
    width, height = size
    return av.VideoFrame.from_ndarray(
        np.full((height, width, 3), rgb, dtype=np.uint8), format="rgb24"
    ).reformat(format="yuv420p")


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SharedMemoryFrameSink]:
    sink = SharedMemoryFrameSink(tmp_path / "surface")
    yield sink
    sink.close()


class VideoApp(App[None]):
    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory

    def compose(self) -> ComposeResult:
        yield TerminalVideo(self.directory, fps=20, id="video")


def colours(widget: TerminalVideo) -> set[tuple[str, str]]:
    """Every (foreground, background) pair of the drawn half blocks."""
    found = set()
    for y in range(widget.size.height):
        for segment in widget.render_line(y):
            style = segment.style
            if segment.text.strip() and style is not None and style.color and style.bgcolor:
                found.add((style.color.name, style.bgcolor.name))
    return found


def near(name: str, rgb: tuple[int, int, int]) -> bool:
    values = [int(v) for v in name.removeprefix("rgb(").removesuffix(")").split(",")]
    return all(abs(a - b) <= 12 for a, b in zip(values, rgb, strict=True))


def test_it_is_off_unless_asked_for() -> None:
    assert not terminal_video_enabled({})
    assert terminal_video_enabled({"KONTAKTSTATION_TERMINAL_VIDEO": "1"})


def test_half_blocks_carry_two_pixels_a_cell() -> None:
    picture = np.zeros((4, 2, 3), dtype=np.uint8)
    picture[0] = (255, 0, 0)  # top row red
    picture[1] = (0, 0, 255)  # second row blue
    rows = half_block_rows(picture)
    assert len(rows) == 2
    (segment,) = list(rows[0])
    assert segment.text == "▀▀"
    assert segment.style is not None
    assert segment.style.color is not None and segment.style.bgcolor is not None
    assert near(segment.style.color.name, (255, 0, 0))
    assert near(segment.style.bgcolor.name, (0, 0, 255))


async def test_the_gp_is_drawn_with_the_self_view_and_leaves_when_cleared(
    sink: SharedMemoryFrameSink,
) -> None:
    app = VideoApp(sink.directory)
    async with app.run_test(size=(60, 20)) as pilot:
        widget = app.query_one(TerminalVideo)
        await pilot.pause()
        assert colours(widget) == set()  # nothing yet: the waiting text
        sink.show(solid((200, 30, 30)), "remote")  # the GP: red
        sink.show(solid((30, 200, 30)), "self")  # the station's camera: green
        async with asyncio.timeout(10):
            while not (
                any(near(fg, (200, 30, 30)) for fg, _ in colours(widget))
                and any(near(fg, (30, 200, 30)) for fg, _ in colours(widget))
            ):
                await pilot.pause(0.05)
        drawn = widget.frames_drawn
        # The GP fills the picture; the self-view is the small inset at the bottom right.
        top_left = next(iter(widget.render_line(0))).style
        bottom_right = list(widget.render_line(widget.size.height - 1))[-1].style
        assert top_left is not None and top_left.color is not None
        assert bottom_right is not None and bottom_right.color is not None
        assert near(top_left.color.name, (200, 30, 30))
        assert near(bottom_right.color.name, (30, 200, 30))
        # The call ends: stationd clears both roles, the terminal shows no picture.
        sink.clear("remote")
        sink.clear("self")
        async with asyncio.timeout(10):
            while colours(widget):
                await pilot.pause(0.05)
        assert widget.frames_drawn >= drawn

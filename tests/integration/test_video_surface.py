"""The video surface: frames from stationd's sink reach the screen, newest only, crash-proof.

SDL runs with ``SDL_VIDEODRIVER=dummy`` (a real SDL window in memory). Pictures are the
hardware layer's stamped test pattern, so what was drawn is read back from the window's pixels
with :func:`hardware.camera.stamp.decode_stamp_luma`, not taken on trust from the renderer.
The crash tests run the surface as a real subprocess (``python -m hardware.surface``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from hardware.camera.stamp import Stamp, decode_stamp_luma
from hardware.camera.testpattern import TestPattern
from hardware.surface.app import SurfaceLoop
from hardware.surface.render import BADGE_COLOUR, QUALITY_COLOURS, SurfaceRenderer
from hardware.surface.transport import (
    FrameSlotReader,
    OverlayState,
    SharedMemoryFrameSink,
    frame_file,
)
from hardware.video import FrameSink

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _dummy_sdl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    monkeypatch.setenv("PYGAME_HIDE_SUPPORT_PROMPT", "1")


@pytest.fixture
def surface_dir() -> Iterator[Path]:
    # A short path: the wake-up socket's address must fit in 107 bytes.
    path = Path(tempfile.mkdtemp(prefix="ks-surf-", dir="/tmp"))
    try:
        yield path / "surface"
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def sink(surface_dir: Path) -> Iterator[SharedMemoryFrameSink]:
    sink = SharedMemoryFrameSink(surface_dir)
    yield sink
    sink.close()


@pytest.fixture
def surface(surface_dir: Path, sink: SharedMemoryFrameSink) -> Iterator[SurfaceLoop]:
    renderer = SurfaceRenderer((800, 600))
    loop = SurfaceLoop(surface_dir, renderer)
    yield loop
    loop.close()
    renderer.close()


PATTERN = TestPattern(640, 480)
SMALL = TestPattern(320, 240)


def stamped(seq: int, pattern: TestPattern = PATTERN) -> av.VideoFrame:
    return pattern.render(seq, 1_000_000 + seq)


def drawn_stamp(loop: SurfaceLoop, role: str = "remote") -> Stamp | None:
    """Decode the stamp from the window's pixels where ``role`` was drawn."""
    rect = loop.renderer.drawn[role]
    rgb = loop.renderer.pixels()[rect.y : rect.y + rect.height, rect.x : rect.x + rect.width]
    luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return decode_stamp_luma(np.clip(luma, 0, 255).astype(np.uint8))


def test_the_files_are_group_readable_under_stationds_umask(surface_dir: Path) -> None:
    """stationd runs with UMask=0077; the surface is another user in stationd's group. The
    frames and the overlay state must be readable by the group whatever the umask (the booted
    appliance found them 0600: no picture could ever reach the screen)."""
    import stat

    from hardware.surface.transport import OverlayState

    old = os.umask(0o077)
    try:
        sink = SharedMemoryFrameSink(surface_dir)
        sink.set_overlay(OverlayState(True, "good"))
        sink.close()
    finally:
        os.umask(old)
    for name in ("remote.frames", "self.frames", "state.json"):
        mode = stat.S_IMODE((surface_dir / name).stat().st_mode)
        assert mode == 0o640, (name, oct(mode))


def test_the_sink_is_a_frame_sink(sink: SharedMemoryFrameSink) -> None:
    port: FrameSink = sink
    port.show(stamped(1), "remote")
    assert sink.latest("remote") == 1


def test_frames_arrive_and_are_drawn(sink: SharedMemoryFrameSink, surface: SurfaceLoop) -> None:
    sink.show(stamped(7), "remote")
    sink.show(stamped(3, SMALL), "self")
    surface.step(timeout=5)
    assert drawn_stamp(surface, "remote") == Stamp(1_000_007, 7)
    assert drawn_stamp(surface, "self") == Stamp(1_000_003, 3)
    remote, own = surface.renderer.drawn["remote"], surface.renderer.drawn["self"]
    # GP large, self-view small in the bottom-right corner, inside the window.
    assert remote.width * remote.height > 8 * own.width * own.height
    assert own.x > remote.x + remote.width // 2 and own.y > remote.height // 2
    assert own.x + own.width <= 800 and own.y + own.height <= 600


def test_the_window_is_open_only_while_a_call_has_a_picture(
    sink: SharedMemoryFrameSink, surface: SurfaceLoop
) -> None:
    """Outside a call the kiosk's UI has the whole screen: no window until the first picture,
    and none once the call's pictures are cleared (stationd clears both roles at its end).
    Each opening is a new window (the compositor's window rules run again)."""
    import pygame

    surface.step(timeout=0.2)
    assert not surface.renderer.shown and not pygame.display.get_init()
    assert surface.renderer.openings == 0
    for call in (1, 2):
        sink.show(stamped(call, SMALL), "self")  # the self-view comes first in a call
        surface.step(timeout=5)
        assert surface.renderer.shown and pygame.display.get_init()
        assert surface.renderer.openings == call
        sink.show(stamped(10 + call), "remote")
        surface.step(timeout=5)
        assert drawn_stamp(surface) == Stamp(1_000_010 + call, 10 + call)
        sink.clear("remote")
        surface.step(timeout=5)
        assert surface.renderer.shown  # the self-view is still a picture of the call
        sink.clear("self")
        surface.step(timeout=5)
        assert not surface.renderer.shown and not pygame.display.get_init()
        assert surface.renderer.drawn == {}
        assert not surface.renderer.pixels().any()


def test_the_window_opens_at_the_kiosks_video_region(
    surface_dir: Path, sink: SharedMemoryFrameSink
) -> None:
    """``--top 60`` (the unit's): the window asks for the screen's width and 60 % of its
    height (labwc's SnapToRegion left it 1280x720 in the booted appliance). SDL's dummy
    display is 1024x768."""
    import pygame

    renderer = SurfaceRenderer((800, 600), top_percent=60)
    loop = SurfaceLoop(surface_dir, renderer)
    try:
        sink.show(stamped(1), "remote")
        loop.step(timeout=5)
        assert renderer.shown
        width, height = pygame.display.get_desktop_sizes()[0]
        assert (width, height) == (1024, 768)
        assert renderer.size == (1024, round(768 * 0.6))
        assert pygame.display.get_surface().get_size() == (1024, 461)
    finally:
        loop.close()
        renderer.close()


def test_a_burst_is_drawn_as_its_newest_frame_only(
    sink: SharedMemoryFrameSink, surface: SurfaceLoop
) -> None:
    for burst in range(5):
        first = burst * 10 + 1
        for seq in range(first, first + 1 + burst * 2):
            sink.show(stamped(seq), "remote")
        newest = first + burst * 2
        surface.step(timeout=5)
        # No queue: whatever came in before the draw, the draw shows the newest.
        assert drawn_stamp(surface) == Stamp(1_000_000 + newest, newest)


def test_each_frame_is_drawn_at_the_next_draw(
    sink: SharedMemoryFrameSink, surface: SurfaceLoop
) -> None:
    """Latency at most one frame: frame n is on screen after the first draw that follows it."""
    for seq in range(1, 31):
        sink.show(stamped(seq), "remote")
        surface.step(timeout=5)
        stamp = drawn_stamp(surface)
        assert stamp is not None and stamp.seq == seq


def test_with_a_sender_running_the_drawn_frame_is_never_older_than_at_draw_start(
    sink: SharedMemoryFrameSink, surface: SurfaceLoop
) -> None:
    """A sender at full speed: every draw shows a frame at least as new as the newest one
    stored before the draw began (nothing stale is shown, however the two interleave)."""
    stop = threading.Event()

    def sender() -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            sink.show(stamped(seq), "remote")  # frame number == stamp sequence
            time.sleep(0.0002)  # thousands a second: far faster than any camera

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    try:
        checked = 0
        while checked < 40:
            before = sink.latest("remote")
            if before == 0:
                time.sleep(0.001)
                continue
            surface.step(timeout=5)
            stamp = drawn_stamp(surface)
            torn = surface.readers["remote"].torn
            assert stamp is not None, f"no stamp drawn (torn copies: {torn})"
            assert stamp.seq >= before, f"drew {stamp.seq}, {before} was stored (torn: {torn})"
            checked += 1
    finally:
        stop.set()
        thread.join(10)
    assert surface.renderer.frames_drawn["remote"] >= 40


def test_private_call_and_quality_overlays(
    sink: SharedMemoryFrameSink, surface: SurfaceLoop
) -> None:
    sink.show(stamped(1), "remote")
    surface.step(timeout=5)
    assert "private_call" not in surface.renderer.drawn
    assert "quality" not in surface.renderer.drawn

    sink.set_overlay(OverlayState(private_call=True, quality="poor"))
    surface.step(timeout=5)
    pixels = surface.renderer.pixels()

    def share(name: str, colour: tuple[int, int, int]) -> float:
        rect = surface.renderer.drawn[name]
        area = pixels[rect.y : rect.y + rect.height, rect.x : rect.x + rect.width]
        return float(np.all(area == np.array(colour, dtype=np.uint8), axis=-1).mean())

    assert share("private_call", BADGE_COLOUR) > 0.5
    assert share("quality", QUALITY_COLOURS["poor"]) > 0.5
    # The overlays stay off the top band, where the GP's picture carries the stamp.
    assert drawn_stamp(surface) == Stamp(1_000_001, 1)

    sink.set_overlay(OverlayState(private_call=False, quality="good"))
    surface.step(timeout=5)
    assert "private_call" not in surface.renderer.drawn
    pixels = surface.renderer.pixels()
    assert share("quality", QUALITY_COLOURS["good"]) > 0.5


def test_the_audio_only_label(sink: SharedMemoryFrameSink, surface: SurfaceLoop) -> None:
    """Issue 18: while the video is paused the GP's last picture stays, labelled in Danish
    with why; the label goes when the video is back."""
    from hardware.surface.render import AUDIO_ONLY_COLOUR

    sink.show(stamped(1), "remote")
    sink.set_overlay(OverlayState(quality="poor", audio_only="poor_connection"))
    surface.step(timeout=5)
    rect = surface.renderer.drawn["audio_only"]
    area = surface.renderer.pixels()[rect.y : rect.y + rect.height, rect.x : rect.x + rect.width]
    assert float(np.all(area == np.array(AUDIO_ONLY_COLOUR, np.uint8), axis=-1).mean()) > 0.5
    # Wider than "Kun lyd" alone: the reason is written out.
    sink.set_overlay(OverlayState(quality="poor", audio_only="choice"))
    surface.step(timeout=5)
    assert surface.renderer.drawn["audio_only"].width < rect.width
    quality = surface.renderer.drawn["quality"]
    assert quality.y + quality.height < surface.renderer.drawn["audio_only"].y
    sink.set_overlay(OverlayState(quality="good"))
    surface.step(timeout=5)
    assert "audio_only" not in surface.renderer.drawn
    assert drawn_stamp(surface) == Stamp(1_000_001, 1)


def test_clear_removes_a_role_from_the_screen(
    sink: SharedMemoryFrameSink, surface: SurfaceLoop
) -> None:
    sink.show(stamped(1), "remote")
    sink.show(stamped(1, SMALL), "self")
    surface.step(timeout=5)
    sink.clear("remote")
    surface.step(timeout=5)
    assert "remote" not in surface.renderer.drawn
    assert "self" in surface.renderer.drawn


def test_odd_sized_rgb_and_oversized_frames_are_stored(surface_dir: Path) -> None:
    sink = SharedMemoryFrameSink(surface_dir, max_size=(640, 480))
    reader = FrameSlotReader(frame_file(surface_dir, "remote"))
    try:
        rgb = av.VideoFrame.from_ndarray(np.full((241, 321, 3), 200, np.uint8), format="rgb24")
        sink.show(rgb, "remote")
        got = reader.read_new()
        assert got is not None and got.frame is not None
        assert (got.frame.width, got.frame.height) == (320, 240)
        sink.show(stamped(5, TestPattern(1280, 720)), "remote")
        got = reader.read_new()
        assert got is not None and got.frame is not None
        assert (got.frame.width, got.frame.height) == (640, 360)
        assert reader.read_new() is None  # nothing newer
    finally:
        reader.close()
        sink.close()


def test_a_reader_discards_a_slot_overwritten_during_its_copy(
    surface_dir: Path, sink: SharedMemoryFrameSink
) -> None:
    reader = FrameSlotReader(frame_file(surface_dir, "remote"))
    try:
        sink.show(stamped(1), "remote")
        # Simulate the writer starting on this slot again while the reader copies: the
        # slot's "begin" no longer matches the frame number the reader set out to take.
        fd = os.open(frame_file(surface_dir, "remote"), os.O_RDWR)
        try:
            import mmap

            with mmap.mmap(fd, 0) as raw:
                slot_stride = (raw.size() - 64) // 3
                base = 64 + (1 % 3) * slot_stride
                raw[base : base + 8] = (99).to_bytes(8, "little")
        finally:
            os.close(fd)
        assert reader.read_new() is None
        assert reader.torn > 0
        sink.show(stamped(2), "remote")  # the next frame goes to the next slot, intact
        got = reader.read_new()
        assert got is not None and got.number == 2
    finally:
        reader.close()


def test_a_restarted_stationd_reuses_the_files_a_surface_has_mapped(surface_dir: Path) -> None:
    first = SharedMemoryFrameSink(surface_dir)
    reader = FrameSlotReader(frame_file(surface_dir, "remote"))
    try:
        first.show(stamped(1), "remote")
        assert reader.read_new() is not None
        first.close()
        second = SharedMemoryFrameSink(surface_dir)
        assert second.latest("remote") == 1  # continues the numbering in the same file
        second.show(stamped(2), "remote")
        got = reader.read_new()
        assert got is not None and got.number == 2
        second.close()
    finally:
        reader.close()


# --------------------------------------------------------------------------- as a process


class SurfaceProcess:
    """``python -m hardware.surface`` with a trace file: one JSON line per draw."""

    def __init__(self, directory: Path, trace: Path) -> None:
        self.trace = trace
        self.trace.write_text("")
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hardware.surface", "--dir", str(directory),
             "--size", "640x480", "--trace", str(trace), "--log-level", "WARNING"],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def draws(self) -> list[dict[str, Any]]:
        lines = self.trace.read_text().splitlines()
        return [json.loads(line) for line in lines if line.endswith("}")]

    def wait_for(self, role: str, number: int, within: float = 60.0) -> list[dict[str, Any]]:
        """Wait until a draw shows frame ``number`` of ``role``; the draws so far."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            draws = self.draws()
            if any(d["frames"].get(role) == number for d in draws):
                return draws
            assert self.process.poll() is None, "the surface exited"
            time.sleep(0.02)
        raise AssertionError(f"frame {number} of {role} was never drawn")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(20)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_killed_surface_never_disturbs_the_sender_and_a_restarted_one_picks_up(
    surface_dir: Path, sink: SharedMemoryFrameSink
) -> None:
    trace_dir = surface_dir.parent
    first = SurfaceProcess(surface_dir, trace_dir / "first.jsonl")
    try:
        sink.show(stamped(1), "remote")
        first.wait_for("remote", 1)
        for seq in range(2, 6):
            sink.show(stamped(seq), "remote")
        first.wait_for("remote", 5)

        # Frozen (SIGSTOP): its socket queue fills up. The sink's socket is non-blocking, so
        # show() keeps returning; a blocking send would hang here until the test times out.
        first.process.send_signal(signal.SIGSTOP)
        for seq in range(6, 2006):
            sink.show(stamped(seq, SMALL), "self")
        assert sink.failures == 0

        first.process.kill()  # a crash, not a clean exit
        first.process.wait(20)
        for seq in range(2006, 2106):
            sink.show(stamped(seq), "remote")  # nobody listening: still no exception
        assert sink.failures == 0
        newest_remote = sink.latest("remote")
    finally:
        first.stop()

    second = SurfaceProcess(surface_dir, trace_dir / "second.jsonl")
    try:
        # systemd's Restart=always brings it back; it draws what is waiting at once...
        draws = second.wait_for("remote", newest_remote)
        assert draws[0]["frames"]["remote"] == newest_remote
        assert draws[0]["frames"]["self"] == sink.latest("self")
        # ...and follows new frames and overlay changes from there.
        sink.show(stamped(9999), "remote")
        second.wait_for("remote", newest_remote + 1)
        sink.set_overlay(OverlayState(private_call=True, quality="reconnecting"))
        deadline = time.monotonic() + 60
        while not any(d["private_call"] for d in second.draws()):
            assert time.monotonic() < deadline, "the overlay change was never drawn"
            time.sleep(0.02)
        assert second.draws()[-1]["quality"] == "reconnecting"
    finally:
        second.stop()
    assert second.process.returncode == 0  # SIGTERM: a clean exit


def test_the_kiosk_unit_s_wayland_driver_finds_the_compositor_socket(tmp_path: Path) -> None:
    """The unit sets SDL_VIDEODRIVER=wayland but cannot know the socket's name: the surface
    waits for the compositor's socket in the session's runtime directory."""
    import socket as socketlib

    from hardware.surface.app import _prepare_display

    runtime = tmp_path / "run-user"
    runtime.mkdir()
    environ = {"SDL_VIDEODRIVER": "wayland", "XDG_RUNTIME_DIR": str(runtime)}
    assert _prepare_display(environ, 0.3) is False  # no compositor yet
    server = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
    try:
        server.bind(str(runtime / "wayland-1"))
        (runtime / "wayland-1.lock").touch()
        assert _prepare_display(environ, 0.3) is True
    finally:
        server.close()
    assert environ["WAYLAND_DISPLAY"] == "wayland-1"
    assert environ["SDL_VIDEODRIVER"] == "wayland"
    headless = {"SDL_VIDEODRIVER": "dummy"}
    assert _prepare_display(headless, 0) is True and "WAYLAND_DISPLAY" not in headless


@pytest.mark.timeout(120)
def test_sigusr1_writes_what_the_surface_drew(
    surface_dir: Path, sink: SharedMemoryFrameSink
) -> None:
    """The one way to see the drawn screen without a display: the picture and its layout."""
    from hardware.surface.app import DRAWN_FILE, read_drawn

    process = SurfaceProcess(surface_dir, surface_dir.parent / "trace.jsonl")
    try:
        sink.show(stamped(41), "remote")
        process.wait_for("remote", sink.latest("remote"))
        process.process.send_signal(signal.SIGUSR1)
        drawn = surface_dir / DRAWN_FILE
        deadline = time.monotonic() + 30
        while not drawn.with_suffix(".json").exists():
            assert time.monotonic() < deadline, "no picture was written"
            time.sleep(0.05)
        width, height, rgb = read_drawn(drawn)
        layout = json.loads(drawn.with_suffix(".json").read_text())
        assert (width, height) == (640, 480)
        x, y, w, h = layout["remote"]
        picture = np.frombuffer(rgb, dtype=np.uint8).reshape(height, width, 3)
        luma = picture[y : y + h, x : x + w].astype(np.float32) @ np.array(
            [0.299, 0.587, 0.114], dtype=np.float32
        )
        stamp = decode_stamp_luma(np.clip(luma, 0, 255).astype(np.uint8))
        assert stamp is not None and stamp.seq == 41
    finally:
        process.stop()

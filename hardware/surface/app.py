"""The video-surface process: ``kontaktstation surface`` (``python -m hardware.surface``).

It waits for wake-ups from stationd, takes the newest frame of each role from shared memory,
draws, and goes back to waiting: a frame is drawn as soon as it arrives, and frames that came
in while a draw was running are skipped for the newest one (at most one frame of latency).

Its window is open only while a call has a picture to show (the first frame opens it, the
call's end, which clears the pictures, closes it): outside a call the kiosk's UI has the whole
screen (``systemd/kiosk/labwc/rc.xml``).

It is a process of its own (``kontaktstation-surface.service``, ``Restart=always``) so that a
crash in SDL, the GPU driver or the compositor connection never touches the call: stationd's
sink only writes to shared memory and sends datagrams nobody has to receive. A restarted
surface maps the same files and draws the newest frame at once.

Under the kiosk it finds the compositor itself: with ``WAYLAND_DISPLAY`` unset it waits for a
``wayland-*`` socket in ``XDG_RUNTIME_DIR`` (default ``/run/user/<uid>``, the kiosk session's,
since this service runs as the kiosk user). ``SDL_VIDEODRIVER=dummy`` runs it headless (tests).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import IO, Final

from hardware.surface.render import SurfaceRenderer
from hardware.surface.transport import (
    ROLES,
    FrameSlotReader,
    WakeListener,
    frame_file,
    read_overlay,
    surface_dir,
)

__all__ = ["APP_ID", "DRAWN_FILE", "SurfaceLoop", "find_wayland_display", "main", "read_drawn"]

_log = logging.getLogger("hardware.surface")

#: What :meth:`SurfaceLoop.dump` writes (a binary PPM) in the surface directory.
DRAWN_FILE: Final = "drawn.ppm"
#: The Wayland app_id / window title the kiosk's window rules place.
APP_ID: Final = "kontaktstation-video"
#: How often files and the socket are re-checked, and window events handled, when idle.
_IDLE_TICK: Final = 0.5


def find_wayland_display(environ: Mapping[str, str], uid: int) -> str | None:
    """The name of a Wayland socket in the session's runtime directory, if one exists."""
    runtime = Path(environ.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}")
    try:
        names = sorted(p.name for p in runtime.glob("wayland-*") if not p.name.endswith(".lock"))
    except OSError:
        return None
    return names[0] if names else None


def _prepare_display(environ: MutableMapping[str, str], wait_seconds: float) -> bool:
    """Point SDL at the kiosk compositor; False if none appeared within ``wait_seconds``."""
    environ.setdefault("SDL_VIDEO_WAYLAND_WMCLASS", APP_ID)
    environ.setdefault("SDL_APP_ID", APP_ID)
    driver = environ.get("SDL_VIDEODRIVER", "").strip().lower()
    if driver not in ("", "wayland"):
        return True  # dummy, offscreen (tests), kmsdrm, x11: SDL finds its own way
    if environ.get("WAYLAND_DISPLAY"):
        return True
    if not driver and environ.get("DISPLAY"):
        return True  # an X11 desktop (the demo on a developer's machine)
    # The kiosk unit asks for Wayland (SDL_VIDEODRIVER=wayland) but cannot know the socket's
    # name: wait for the compositor to make it in the session's runtime directory.
    deadline = time.monotonic() + wait_seconds
    while True:
        name = find_wayland_display(environ, os.getuid())
        if name is not None:
            environ.setdefault("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}")
            environ["WAYLAND_DISPLAY"] = name
            environ["SDL_VIDEODRIVER"] = "wayland"
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)


class SurfaceLoop:
    """Wake-ups in, newest frames drawn; one iteration per :meth:`step`."""

    def __init__(
        self,
        directory: Path,
        renderer: SurfaceRenderer,
        *,
        trace: IO[str] | None = None,
    ) -> None:
        self.directory = directory
        self.renderer = renderer
        self.readers = {role: FrameSlotReader(frame_file(directory, role)) for role in ROLES}
        self.wake = WakeListener(directory / "wake.sock")
        self._trace = trace
        self._last_check = 0.0
        self.renderer.overlay = read_overlay(directory)
        self._dirty = True  # draw the newest frames already waiting at start

    def step(self, timeout: float = _IDLE_TICK) -> bool:
        """Wait up to ``timeout`` for news, draw if anything changed; False to stop."""
        words = self.wake.wait(timeout)
        alive = self.renderer.pump()
        now = time.monotonic()
        recheck = now - self._last_check >= _IDLE_TICK
        if recheck:
            self._last_check = now
            self.wake.check()
        drawn: dict[str, int] = {}
        for role, reader in self.readers.items():
            received = reader.read_new(recheck_file=recheck)
            if received is not None:
                self.renderer.update(role, received.frame)
                drawn[role] = received.number
                self._dirty = True
        if "state" in words or recheck:
            overlay = read_overlay(self.directory)
            if overlay != self.renderer.overlay:
                self.renderer.overlay = overlay
                self._dirty = True
        if self._dirty:
            self.renderer.present()
            self._dirty = False
            if self._trace is not None:
                overlay = self.renderer.overlay
                record = {
                    "t": time.monotonic(),
                    "frames": drawn,
                    "private_call": overlay.private_call,
                    "quality": overlay.quality,
                    "shown": self.renderer.shown,
                }
                self._trace.write(json.dumps(record) + "\n")
                self._trace.flush()
        return alive

    def dump(self) -> Path:
        """Write what is on the screen now to ``drawn.ppm`` in the surface directory.

        ``SIGUSR1`` asks for it: the one way to see what the surface drew without a screen
        (the system test reads it under SDL's offscreen driver; IT can look at a station's
        screen the same way). It is tmpfs, next to the frames themselves, group-readable like
        them, and replaced atomically.
        """
        pixels = self.renderer.pixels()
        height, width, _ = pixels.shape
        path = self.directory / DRAWN_FILE
        tmp = self.directory / f".{DRAWN_FILE}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
        try:
            os.fchmod(fd, 0o640)  # group-readable whatever the unit's umask (0077)
            os.write(fd, f"P6\n{width} {height}\n255\n".encode() + pixels.tobytes())
        finally:
            os.close(fd)
        os.replace(tmp, path)
        # Where each part landed (the GP, the self-view, the badges), to read the picture by.
        layout = {
            name: [rect.x, rect.y, rect.width, rect.height]
            for name, rect in self.renderer.drawn.items()
        }
        layout_tmp = self.directory / f".{DRAWN_FILE}.{os.getpid()}.json.tmp"
        layout_tmp.write_text(json.dumps(layout))
        os.chmod(layout_tmp, 0o640)
        os.replace(layout_tmp, path.with_suffix(".json"))
        return path

    def close(self) -> None:
        """Release the socket and the mappings."""
        self.wake.close()
        for reader in self.readers.values():
            reader.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kontaktstation surface",
        description="the video surface: the GP's video and the self-view on the station's screen",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="shared-memory directory (default: $KONTAKTSTATION_SURFACE_DIR or "
        "/run/kontaktstation/surface)",
    )
    parser.add_argument("--size", default="1280x720", help="window size WxH (default 1280x720)")
    parser.add_argument(
        "--top",
        type=float,
        default=None,
        metavar="PERCENT",
        help="open the window at the screen's width and PERCENT of its height (the kiosk's "
        "video region, as KONTAKTSTATION_VIDEO_TOP tells the UI); overrides --size",
    )
    parser.add_argument(
        "--wait-display",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for the kiosk compositor's socket",
    )
    parser.add_argument("--trace", type=Path, help=argparse.SUPPRESS)  # tests: one line a draw
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the surface until SIGTERM/SIGINT or the window closes; the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        width, height = (int(v) for v in args.size.lower().split("x", 1))
    except ValueError:
        print("--size must look like 1280x720", file=sys.stderr)
        return 2
    directory: Path = args.dir or surface_dir()
    if not directory.is_dir():
        _log.error("%s does not exist (is stationd running?)", directory)
        return 1  # systemd restarts us; stationd makes the directory
    if not _prepare_display(os.environ, args.wait_display):
        _log.error("no Wayland display appeared (is the kiosk running?)")
        return 1
    stop = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    dump_requested = False

    def request_dump(_signum: int, _frame: object) -> None:
        nonlocal dump_requested
        dump_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGUSR1, request_dump)
    trace = args.trace.open("a", encoding="utf-8") if args.trace else None
    if args.top is not None and not 0 < args.top <= 100:
        print("--top must be a percentage above 0 and at most 100", file=sys.stderr)
        return 2
    renderer = SurfaceRenderer((width, height), title=APP_ID, top_percent=args.top)
    loop = SurfaceLoop(directory, renderer, trace=trace)
    _log.info("video surface drawing from %s", directory)
    try:
        while not stop and loop.step():
            if dump_requested:
                dump_requested = False
                try:
                    loop.dump()
                except OSError as exc:
                    _log.warning("could not write what the surface drew: %s", exc.strerror)
    finally:
        loop.close()
        renderer.close()
        if trace is not None:
            trace.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())


def read_drawn(path: Path) -> tuple[int, int, bytes]:
    """``(width, height, rgb)`` of a picture :meth:`SurfaceLoop.dump` wrote."""
    data = path.read_bytes()
    magic, size, depth, pixels = data.split(b"\n", 3)
    if magic != b"P6" or depth != b"255":
        raise ValueError(f"{path} is not a picture the surface wrote")
    width, height = (int(v) for v in size.split())
    if len(pixels) != width * height * 3:
        raise ValueError(f"{path} is truncated")
    return width, height, pixels

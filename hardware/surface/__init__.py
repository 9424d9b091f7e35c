"""The video surface: the GP's video and the station's self-view on the station's screen.

Two halves, in two processes:

- stationd's side, :class:`~hardware.surface.transport.SharedMemoryFrameSink`: the real
  :class:`~hardware.video.FrameSink`. ``show(frame, role)`` copies the frame into a
  shared-memory slot in a tmpfs directory and sends a wake-up datagram; it returns at once and
  never raises, whether a surface is running or not. It imports no SDL.
- the surface process, :mod:`hardware.surface.app` (``kontaktstation surface``): SDL2 through
  pygame-ce, in the Wayland kiosk; draws the newest frame of each role, the "private call"
  badge and the connection quality; restarted by systemd when it dies.

Why SDL2 via pygame-ce (and not GStreamer): pygame-ce publishes cp311 aarch64 manylinux
wheels with SDL 2.32 built in, whose Wayland and KMSDRM video drivers are loaded at run time
(libwayland-client, libdrm/libgbm, EGL/GLES from the Pi's Mesa), so the same pip install works
on a Pi 4 and a Pi 5 under Bookworm and in CI (``SDL_VIDEODRIVER=dummy``). The frames are
already decoded by aiortc/PyAV in stationd, so no media pipeline is needed: only a window to
draw pictures in. GStreamer would need the apt Python bindings (PyGObject with
``--system-site-packages``), has no pip wheels for it, and its Pi-specific sinks changed
between Pi 4 and Pi 5 (no ``v4l2h264dec`` on the Pi 5).

Importing this package loads neither SDL nor the renderer.
"""

from __future__ import annotations

from hardware.surface.transport import (
    DEFAULT_SURFACE_DIR,
    SURFACE_DIR_ENV,
    FrameSlotReader,
    FrameSlotWriter,
    OverlayState,
    Quality,
    SharedMemoryFrameSink,
    SurfaceError,
    WakeListener,
    read_overlay,
    surface_dir,
)

__all__ = [
    "DEFAULT_SURFACE_DIR",
    "SURFACE_DIR_ENV",
    "FrameSlotReader",
    "FrameSlotWriter",
    "OverlayState",
    "Quality",
    "SharedMemoryFrameSink",
    "SurfaceError",
    "WakeListener",
    "read_overlay",
    "surface_dir",
]

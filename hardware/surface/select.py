"""Choosing the frame sink by name (``KONTAKTSTATION_FRAME_SINK``), as every port is chosen.

``shm`` (the default) is the shared memory the video surface draws from; ``recording`` is the
shipped fake, used only when named. An unknown name, or a surface directory that cannot be
prepared, is an error: a station never falls back to a sink nobody sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..errors import UnknownBackendError
from ..video import FRAME_SINK_ENV, FRAME_SINKS, FrameSink, RecordingFrameSink
from .transport import SharedMemoryFrameSink, surface_dir

__all__ = ["build_frame_sink"]


def build_frame_sink(
    env: Mapping[str, str], *, directory: Path | None = None
) -> tuple[str, FrameSink]:
    """The sink ``KONTAKTSTATION_FRAME_SINK`` names (default ``shm``) and its name.

    ``shm`` prepares the shared-memory directory (``KONTAKTSTATION_SURFACE_DIR``, or
    ``directory``) and raises ``SurfaceError`` when it cannot: a station whose screen cannot
    show the GP must say so at start, not run a call nobody sees. An unknown name raises
    ``UnknownBackendError``.
    """
    name = env.get(FRAME_SINK_ENV, "").strip().lower() or "shm"
    if name == "recording":
        return name, RecordingFrameSink()
    if name == "shm":
        return name, SharedMemoryFrameSink(directory or surface_dir(dict(env)))
    raise UnknownBackendError(FRAME_SINK_ENV, name, FRAME_SINKS)

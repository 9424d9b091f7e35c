"""One alsa-lib in stationd's process: the system's.

PyAV's wheel carries its own alsa-lib (``libasound-<hash>.so.2``), pointed at the system's
configuration and plugins by :func:`hardware.audio.pyav.apply_alsa_environment`. Those
plugins (PipeWire's ``pipewire`` PCM above all) are built against the system's
``libasound.so.2`` and load it: two alsa-libs in one process, each with its own global state,
one running the PCM core and the other the plugin's half of the same PCM, and on Bookworm of
different versions (the wheel's 1.2.14, the system's 1.2.8) that share internal structures.
No crash was traced to it (stationd's was the camera's: ``hardware.camera.v4l2.own_copy``),
but nothing guarantees two copies agree.

:func:`use_system_alsa_lib` loads the system's library first and into the global namespace,
so every ALSA call in the process binds to it, PyAV's own included. Python loads extension
modules with ``RTLD_NOW``, which binds PyAV's libraries as they load: it must run before
anything imports ``av``. This module imports nothing that does.
"""

from __future__ import annotations

import ctypes
import logging
import sys

__all__ = ["SYSTEM_ALSA_LIB", "use_system_alsa_lib"]

#: The system's alsa-lib, by its soname.
SYSTEM_ALSA_LIB = "libasound.so.2"


_loaded: bool | None = None


def use_system_alsa_lib() -> bool:
    """Load the system's alsa-lib globally; ``False`` where it is not installed (PyAV's own
    then serves, alone). Raises ``RuntimeError`` if ``av`` was imported before the first call
    (too late: the call would change nothing, and silently); later calls answer the first's."""
    global _loaded
    if _loaded is not None:
        return _loaded
    if "av" in sys.modules:
        raise RuntimeError("use_system_alsa_lib() must run before av is imported")
    try:
        ctypes.CDLL(SYSTEM_ALSA_LIB, mode=ctypes.RTLD_GLOBAL)
    except OSError as exc:
        # Said once, in the log: on the appliance alsa-lib is always there (pipewire-alsa
        # needs it), so its absence is worth a line for IT, not a refusal.
        logging.getLogger(__name__).warning(
            "the system's alsa-lib (%s) did not load (%s): PyAV's bundled copy serves alone",
            SYSTEM_ALSA_LIB,
            exc.strerror or type(exc).__name__,
        )
        _loaded = False
    else:
        _loaded = True
    return _loaded

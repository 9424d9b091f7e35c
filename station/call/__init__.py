"""The station's call engine: peer connection set-up, ICE configuration, media watchdog.

Only the ICE configuration helper lives here so far (:mod:`station.call.ice`); the call engine
itself comes next. Nothing in this package is imported by the station's domain
(``station.core``): aiortc is an adapter concern.
"""

from __future__ import annotations

__all__: list[str] = []

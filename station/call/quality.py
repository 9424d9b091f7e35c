"""How good the call is: the quality level both sides show, and what the connection uses.

:func:`grade_quality` uses the GP page's thresholds, so both screens agree on good / fair /
poor / lost; :func:`selected_pair` reads the ICE pair aiortc settled on, for the call's status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Quality", "grade_quality", "selected_pair"]


@dataclass(frozen=True, slots=True)
class Quality:
    """One statistics sample and the level the UIs show."""

    level: str
    rtt_ms: float | None
    loss: float
    fps: float
    bitrate_kbps: float

    def as_json(self) -> dict[str, Any]:
        """The event's data."""
        return {
            "level": self.level,
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 1),
            "loss": round(self.loss, 4),
            "fps": round(self.fps, 1),
            "bitrate_kbps": round(self.bitrate_kbps, 1),
        }


def grade_quality(
    rtt_ms: float | None,
    loss: float,
    fps: float,
    media_age: float | None,
    *,
    video_expected: bool = True,
) -> str:
    """good / fair / poor / lost, with the GP page's thresholds (so both sides agree).

    ``media_age`` is the age of the last sign of life (media or the page's heartbeat); the
    frame rate counts only while the GP sends video (a GP without a camera is not "poor").
    """
    if media_age is None or media_age > 1.5:
        return "lost"
    slow = video_expected and fps < 10
    if (rtt_ms is not None and rtt_ms > 400) or loss > 0.08 or slow:
        return "poor"
    slowish = video_expected and fps < 20
    if (rtt_ms is not None and rtt_ms > 150) or loss > 0.02 or slowish:
        return "fair"
    return "good"


def selected_pair(pc: Any) -> dict[str, str] | None:
    """The candidate types of the nominated pair (aioice's internals, read only; aiortc pinned).

    When the station's side is a relay, ``relay_protocol`` says how it reaches the TURN server
    (``udp``, ``tcp`` or ``tls``, as WebRTC's statistics name it): an aioice connection has one
    TURN server, so the relay is the one its ``turn_ssl``/``turn_transport`` describe.
    """
    try:
        for transceiver in pc.getTransceivers():
            ice = transceiver.sender.transport.transport
            connection = ice._connection
            for pair in connection._nominated.values():
                found = {
                    "local": str(pair.local_candidate.type),
                    "remote": str(pair.remote_candidate.type),
                }
                if found["local"] == "relay":
                    found["relay_protocol"] = (
                        "tls" if connection.turn_ssl else str(connection.turn_transport)
                    )
                return found
    except AttributeError:
        return None
    return None

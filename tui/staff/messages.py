"""App-wide messages of the staff UI (dataclasses, as Textual allows)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

__all__ = ["CallStatus", "RecordsChanged", "SessionChanged"]


@dataclass
class SessionChanged(Message):
    """stationd's session moved (an unlocked state); the app shows the matching screen."""

    state: str
    appointment_id: str | None = None
    call_admitted: bool = False


@dataclass
class CallStatus(Message):
    """The call engine reported a status (connecting, connected, reconnecting, quality)."""

    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class RecordsChanged(Message):
    """Records changed (an appointment, a resident, a note): screens reload what they show."""

    consultation_id: str | None = None

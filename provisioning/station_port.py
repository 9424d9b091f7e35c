"""What the station's provisioning agent needs from stationd: :class:`StationPort`.

stationd implements it (``station.daemon.provisioning_port``); the tests use a fake. A
snapshot holds states, counts and hashes only: the heartbeat built from it carries no names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from provisioning.schema import StationConfig

__all__ = ["LockState", "StationPort", "StationSnapshot"]

LockState = Literal["locked", "unlocked", "private_call"]


@dataclass(frozen=True, slots=True)
class StationSnapshot:
    """What stationd tells the agent for a heartbeat: states, counts, hashes; no names."""

    lock_state: LockState
    session_state: str
    in_call: bool
    health: tuple[tuple[str, bool], ...] = ()
    last_call_outcome: str | None = None
    queue_length: int = 0
    audit_head: tuple[int, str] | None = None
    #: Which backend serves each port (see ``provisioning.schema.PortName``).
    ports: tuple[tuple[str, str], ...] = ()
    #: Booked slots that passed without a call in the last 7 days (a number only).
    missed_consultations: int = 0
    #: Calls that ended without a note longer ago than stationd's limit (a number only).
    undocumented_consultations: int = 0


class StationPort(Protocol):
    """What the agent needs from stationd."""

    async def snapshot(self) -> StationSnapshot:
        """The station's state for a heartbeat."""
        ...

    async def audit_hash_at(self, seq: int) -> str:
        """The audit log's hash at ``seq``, recomputed from the start of the chain (the
        proof of an anchored head; see ``AuditLog.chain_hash_at``)."""
        ...

    def lock_now(self) -> None:
        """Lock at once (a remote ``lock``; also before a wipe)."""
        ...

    def current_staff(self) -> str | None:
        """The unlocked staff member's id, if any."""
        ...

    def audit(self, action: str, staff: str | None, outcome: str) -> None:
        """Record a provisioning action in the station's audit log."""
        ...

    def config_applied(self, config: StationConfig) -> None:
        """A configuration is now in force (at start, and after each successful apply)."""
        ...

    def request_restart(self) -> None:
        """Ask stationd to restart (after a wipe: the store is deleted at the next start)."""
        ...

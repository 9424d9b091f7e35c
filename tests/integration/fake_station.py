"""A fake of stationd for the agent (tests and benchmarks): :class:`FakeStationPort`.

It records what the agent asked for (locks, audits, configurations, restarts) and reports a
settable snapshot, so the agent can run against a real hub without a whole daemon.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provisioning.agent import LockState, StationSnapshot
from provisioning.schema import StationConfig

__all__ = ["FakeStationPort"]


@dataclass
class FakeStationPort:
    """:class:`provisioning.agent.StationPort` with settable state and recorded calls."""

    lock_state: LockState = "locked"
    session_state: str = "locked"
    in_call: bool = False
    staff: str | None = None
    health: tuple[tuple[str, bool], ...] = (("camera", True), ("microphone", True))
    last_call_outcome: str | None = None
    queue_length: int = 0
    audit_head: tuple[int, str] | None = (1, "0" * 64)
    locks: int = 0
    restarts: int = 0
    audits: list[tuple[str, str | None, str]] = field(default_factory=list)
    configs: list[StationConfig] = field(default_factory=list)

    async def snapshot(self) -> StationSnapshot:
        """The settable state."""
        return StationSnapshot(
            lock_state=self.lock_state,
            session_state=self.session_state,
            in_call=self.in_call,
            health=self.health,
            last_call_outcome=self.last_call_outcome,
            queue_length=self.queue_length,
            audit_head=self.audit_head,
        )

    async def audit_hash_at(self, seq: int) -> str:
        """The head's hash for the head's seq (the fake's log is its head alone)."""
        if self.audit_head is not None and seq == self.audit_head[0]:
            return self.audit_head[1]
        return "0" * 64

    def lock_now(self) -> None:
        """Count the lock; a private call stays a private call."""
        self.locks += 1
        self.staff = None
        if self.lock_state == "unlocked":
            self.lock_state = "locked"
            self.session_state = "locked"

    def current_staff(self) -> str | None:
        """The settable unlocked staff id."""
        return self.staff

    def audit(self, action: str, staff: str | None, outcome: str) -> None:
        """Record the audit entry."""
        self.audits.append((action, staff, outcome))

    def config_applied(self, config: StationConfig) -> None:
        """Record the configuration now in force."""
        self.configs.append(config)

    def request_restart(self) -> None:
        """Count the restart request."""
        self.restarts += 1

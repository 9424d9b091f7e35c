"""stationd's side of the agent: :class:`DaemonStationPort`, and :func:`start_agent` to wire it.

The port reads only what a heartbeat may carry: the session's state names, the hardware
checks' names and verdicts, the last call's outcome code, a count of upcoming consultations,
and the audit log's head. The store is asked for a count, never a row's content.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from provisioning.agent import LockState, ProvisioningAgent, StationSnapshot
from provisioning.schema import StationConfig
from station.core.clock import Clock
from station.core.session import LockReason, SessionState, Transition

__all__ = ["HUB_URL_ENV", "DaemonStationPort", "start_agent"]

_log = logging.getLogger(__name__)

#: Where stationd finds the hub (no hub: no provisioning agent runs).
HUB_URL_ENV = "KONTAKTSTATION_HUB_URL"


class DaemonStationPort:
    """:class:`provisioning.agent.StationPort` over a running stationd."""

    def __init__(
        self,
        service: Any,
        *,
        audit_log: Any = None,
        audit_worker: Any = None,
        request_restart: Callable[[], None] | None = None,
    ) -> None:
        self._service = service
        self._audit_log = audit_log
        self._audit_worker = audit_worker
        self._restart = request_restart
        self._last_outcome: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.config: StationConfig | None = None
        service.session.subscribe(self._on_transition)

    def _on_transition(self, transition: Transition) -> None:
        if transition.name == "call_ended" and transition.reason:
            self._last_outcome = str(transition.reason)

    async def snapshot(self) -> StationSnapshot:
        """States, names, counts and the audit head."""
        service = self._service
        state: SessionState = service.session.state
        lock_state: LockState = "unlocked"
        if state is SessionState.LOCKED:
            lock_state = "locked"
        elif state is SessionState.IN_CALL_PRIVATE:
            lock_state = "private_call"
        _at, results = service.health
        try:
            _now, upcoming = await service.upcoming(1000)
            queue = len(upcoming)
        except Exception:  # the count is informative; the heartbeat must go out regardless
            queue = 0
        head = None
        if self._audit_log is not None and self._audit_worker is not None:
            try:
                head = await self._audit_worker.run(self._audit_log.head)
            except Exception as exc:
                _log.warning("audit head unavailable: %s", type(exc).__name__)
        outcome = self._last_outcome
        known = {"hung_up_station", "hung_up_gp", "connection_lost", "failed"}
        return StationSnapshot(
            lock_state=lock_state,
            session_state=state.value,
            in_call=bool(service.in_call),
            health=tuple((r.name, bool(r.ok)) for r in results),
            last_call_outcome=outcome if outcome in known else None,
            queue_length=queue,
            audit_head=None if head is None else (int(head[0]), str(head[1])),
        )

    def lock_now(self) -> None:
        """A remote lock (the same path as the button's)."""
        self._service.request_lock(LockReason.REMOTE)

    def current_staff(self) -> str | None:
        """The unlocked staff member, if any."""
        staff = self._service.session.staff
        return None if staff is None else str(staff)

    def audit(self, action: str, staff: str | None, outcome: str) -> None:
        """Audit through stationd's serial sink (actions the log does not know are logged)."""
        from station.audit import AUDIT_ACTIONS

        if action not in AUDIT_ACTIONS:
            _log.info("provisioning: %s (%s)", action, outcome)
            return
        self._service.audit.record(action, staff=staff, resident=None, outcome=outcome)

    def config_applied(self, config: StationConfig) -> None:
        """Adopt a configuration: its GP clinics go into the store (metadata in clear)."""
        self.config = config
        from station.store import Clinic

        clinics = [
            Clinic(id=c.id, name=c.name, provider_number=c.provider_number, video_room=c.video_room)
            for c in config.clinics
        ]

        async def store_clinics() -> None:
            for clinic in clinics:
                try:
                    await self._service.db(self._service.store.put_clinic, clinic)
                except Exception as exc:
                    _log.error("clinic from the configuration not stored: %s", exc)

        task = asyncio.get_running_loop().create_task(store_clinics())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def request_restart(self) -> None:
        """Ask stationd to restart (it finishes a wipe before opening the store)."""
        if self._restart is not None:
            self._restart()


def start_agent(
    service: Any,
    data_dir: Path,
    hub_url: str,
    clock: Clock,
    *,
    audit_log: Any = None,
    audit_worker: Any = None,
    request_restart: Callable[[], None] | None = None,
    options: Mapping[str, Any] | None = None,
) -> tuple[ProvisioningAgent, DaemonStationPort]:
    """Build the agent for a running stationd (``await agent.start()`` then run it)."""
    port = DaemonStationPort(
        service, audit_log=audit_log, audit_worker=audit_worker, request_restart=request_restart
    )
    agent = ProvisioningAgent(data_dir, hub_url, port, clock, **dict(options or {}))
    service.provisioning = agent
    return agent, port

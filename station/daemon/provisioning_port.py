"""stationd's side of the agent: :class:`DaemonStationPort`, and :func:`start_agent` to wire it.

The port reads only what a heartbeat may carry: the session's state names, the hardware
checks' names and verdicts, the last call's outcome code, a count of upcoming consultations,
counts of missed and undocumented consultations, and the audit log's head. The store is
asked for a count, never a row's content.

A configuration in force (:meth:`DaemonStationPort.config_applied`) takes effect everywhere:

- GP clinics → the store;
- language → ``GET /v1/settings`` (both UIs set their language from it at start) and
  stationd's own texts (:func:`station.i18n.adopt_language`);
- ``timeouts.idle_lock_seconds`` → the session's idle timeout;
- ICE servers, relay-only, language, ``timeouts.call_connect_seconds`` → the call engine's
  configuration for the *next* call (a running call is never touched: see
  ``CallController.apply_settings``);
- ``timeouts.heartbeat_seconds`` → the agent's own heartbeat interval;
- ``retention.purge_after_hours`` → the export service's purge loop (a pass runs at once);
- ``retention.undocumented_alert_days`` → when an undocumented consultation counts in the
  heartbeat;
- ``eoj`` → ``export.json`` (written atomically, 0600) and the export service reloads it;
  no ``eoj`` section leaves an ``export.json`` already there (a hand-made one) alone.

stationd builds the call controller and the export service after the agent has started
(the agent applies its last good configuration in ``start``), so :meth:`bind` hands them
over later and re-applies what is in force.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from provisioning.agent import LockState, ProvisioningAgent, StationSnapshot
from provisioning.schema import StationConfig
from station.core.clock import Clock
from station.core.session import LockReason, SessionState, Transition
from station.i18n import adopt_language

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
        self._calls: Any = None
        self._exports: Any = None
        self._data_dir: Path | None = None
        # Applies run one after another, in the order the configurations came.
        self._apply_lock = asyncio.Lock()
        service.session.subscribe(self._on_transition)

    def bind(self, *, data_dir: Path, calls: Any = None, exports: Any = None) -> None:
        """Hand over the call controller and export service; re-applies the config in force."""
        self._data_dir = data_dir
        self._calls = calls
        self._exports = exports
        if self.config is not None:
            self._spawn(self._apply(self.config))

    async def settled(self) -> None:
        """Wait until every configuration handed over so far has taken effect (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
        try:
            missed, undocumented = await service.attendance_counts()
        except Exception:  # likewise
            missed = undocumented = 0
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
            ports=tuple(sorted(service.ports.items())),
            missed_consultations=missed,
            undocumented_consultations=undocumented,
        )

    async def audit_hash_at(self, seq: int) -> str:
        """The audit chain recomputed up to ``seq`` (on the audit log's worker thread)."""
        if self._audit_log is None or self._audit_worker is None:
            return "0" * 64
        digest: str = await self._audit_worker.run(self._audit_log.chain_hash_at, seq)
        return digest

    def lock_now(self) -> None:
        """A remote lock (the same path as the button's)."""
        self._service.request_lock(LockReason.REMOTE)

    def current_staff(self) -> str | None:
        """The unlocked staff member, if any."""
        staff = self._service.session.staff
        return None if staff is None else str(staff)

    def audit(self, action: str, staff: str | None, outcome: str) -> None:
        """Audit through stationd's serial sink (actions the log does not know are logged)."""
        from station.storage.audit import AUDIT_ACTIONS

        if action not in AUDIT_ACTIONS:
            _log.info("provisioning: %s (%s)", action, outcome)
            return
        self._service.audit.record(action, staff=staff, resident=None, outcome=outcome)

    def config_applied(self, config: StationConfig) -> None:
        """Adopt a configuration everywhere (see the module docs); the rest runs in a task."""
        self.config = config
        # At once, so the next request already sees it: the UIs' language, and stationd's
        # own texts (its refusals' user_message) in the same language.
        self._service.language = config.language
        adopt_language(config.language)
        try:
            self._service.session.set_idle_timeout(
                timedelta(seconds=config.timeouts.idle_lock_seconds)
            )
        except ValueError as exc:  # the schema bounds it; kept for a hand-made config
            _log.error("idle timeout from the configuration refused: %s", exc)
        self._service.undocumented_after = timedelta(days=config.retention.undocumented_alert_days)
        from station.storage.store import Clinic

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

        self._spawn(store_clinics())
        self._spawn(self._apply(config))

    async def _apply(self, config: StationConfig) -> None:
        """The parts owned by the call controller and the export service."""
        async with self._apply_lock:
            if self._calls is not None:
                try:
                    self._calls.apply_settings(
                        ice_servers=_call_ice_servers(config),
                        relay_only=config.ice_relay_only,
                        language=config.language,
                        connect_timeout_seconds=config.timeouts.call_connect_seconds,
                    )
                except Exception as exc:
                    # The type only: a validation message could quote a TURN credential.
                    _log.error("call settings not applied: %s", type(exc).__name__)
            if self._exports is not None:
                try:
                    self._exports.set_retention(timedelta(hours=config.retention.purge_after_hours))
                except Exception as exc:
                    _log.error("retention not applied: %s", type(exc).__name__)
            if config.eoj is not None and self._data_dir is not None:
                await self._apply_eoj(config, self._data_dir)

    async def _apply_eoj(self, config: StationConfig, data_dir: Path) -> None:
        from station.errors import StationError
        from station.export.config import EXPORT_CONFIG_FILENAME, save_export_config

        try:
            export = _export_config(config)
            await asyncio.to_thread(save_export_config, data_dir / EXPORT_CONFIG_FILENAME, export)
            if self._exports is not None:
                await self._exports.reload_config(export)
        except StationError as exc:
            # ExportConfigError names fields and paths, never values.
            _log.error("care-record delivery settings not applied: %s", exc)
        except Exception as exc:
            _log.error("care-record delivery settings not applied: %s", type(exc).__name__)

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


def _call_ice_servers(config: StationConfig) -> list[Any]:
    """The configuration's ICE servers as the call engine's model."""
    from station.call.ice import IceServerConfig

    return [
        IceServerConfig.model_validate(
            {"urls": list(s.urls), "username": s.username, "credential": s.credential}
        )
        for s in config.ice_servers
    ]


def _export_config(config: StationConfig) -> Any:
    """The export's configuration from the ``eoj`` section (validated by the export's rules)."""
    from station.export.config import DEFAULT_STAFF_IDENTIFIER_SYSTEM, ExportConfig

    eoj = config.eoj
    assert eoj is not None
    return ExportConfig.parse(
        {
            "fhir_base_url": eoj.fhir_base_url,
            "token_url": eoj.token_url,
            "client_id": eoj.client_id,
            "client_secret": eoj.client_secret,
            "scope": eoj.scope,
            "care_home": {"name": config.care_home.name, "sor": eoj.care_home_sor},
            "staff_identifier_system": eoj.staff_identifier_system
            or DEFAULT_STAFF_IDENTIFIER_SYSTEM,
            "timeout_seconds": eoj.timeout_seconds,
            "allow_insecure_loopback": eoj.allow_insecure_loopback,
        }
    )

"""The station's provisioning agent, run by stationd: enroll, pull config, beat, obey commands.

Over 500 lines for one job, the agent's loop: enrollment, heartbeats, configuration, commands
and staff enrollment are its steps and share its state; what it needs from stationd is
:mod:`provisioning.station_port`.

It only ever *pulls* (no inbound port). One loop on stationd's event loop:

* not yet approved: ``enroll`` every few seconds; the lock screen shows the code and QR
  (``GET /v1/enrollment`` in stationd's local API) until IT approves, or the station is
  pre-authorised and accepted at once;
* approved: a heartbeat every ``heartbeat_seconds``; its answer says which configuration
  version to run (pulled, verified and applied by :class:`~provisioning.configstore.
  ConfigStore` when it differs) and carries signed commands.

Offline it keeps running on the last good configuration and queues the essentials of the
heartbeats it could not send (bounded), sent with the next one that gets through.

The station's side of stationd is reached through :class:`StationPort`, so the agent runs
the same against the real daemon and against a plain test double of the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any, Final, Literal

import httpx
from pydantic import ValidationError

from provisioning.checks import config_health_check, disk_ok, turn_reachable
from provisioning.client import HubClient
from provisioning.configstore import ConfigHealthCheck, ConfigStore
from provisioning.errors import (
    ConfigRejected,
    EnrollmentError,
    HubUnreachable,
    ProvisioningError,
    SignatureInvalid,
    StaffEnrollmentError,
)
from provisioning.identity import (
    FileIdentity,
    IdentitySource,
    RequestCounter,
    StationIdentity,
    provisioning_dir,
)
from provisioning.protocol import SignedEnvelope, b64decode, open_envelope
from provisioning.schema import (
    AuditHead,
    CommandAck,
    CommandKind,
    CommandPayload,
    EnrollStatus,
    HealthCheck,
    HealthName,
    Heartbeat,
    OfflineSample,
    PinCounters,
    PortName,
)
from provisioning.staff import USER_MESSAGES, StaffKeyslots
from provisioning.station_port import LockState, StationPort, StationSnapshot
from provisioning.updates import ReleaseFollower
from provisioning.wipe import WipeKind, destroy_keys, forget_identity
from station.core.clock import Clock
from station.keys.device_secret import DeviceSecretSource
from station.keys.keyring import DEFAULT_KDF_PARAMS, KdfParams
from station.storage.datadir import DataDir
from station.storage.durable import StepHook, atomic_write, no_step

__all__ = [
    "COMMAND_CLOCK_SKEW",
    "SOFTWARE_VERSION",
    "AgentStatus",
    "LockState",
    "ProvisioningAgent",
    "StationPort",
    "StationSnapshot",
]

_log = logging.getLogger(__name__)

#: What the heartbeat reports: the installed distribution's version (pyproject.toml is the
#: one place it is written).
SOFTWARE_VERSION: Final = version("kontaktstation")
_ENROLLMENT_FILE: Final = DataDir.ENROLLMENT
_LEDGER_FILE: Final = DataDir.COMMAND_LEDGER
_OFFLINE_FILE: Final = DataDir.OFFLINE_QUEUE
_MAX_OFFLINE: Final = 120
_MAX_LEDGER: Final = 500
_CLOCK_TOLERANCE_SECONDS: Final = 60.0
#: How far in the future a command's ``issued_at`` may be (clocks differ a little).
COMMAND_CLOCK_SKEW: Final = timedelta(minutes=5)
_HEALTH_NAMES: Final = {h.value for h in HealthName}

AgentStatus = Literal["unenrolled", "pending", "approved", "decommissioned"]


def _load_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return default
    except (OSError, ValueError):
        _log.error("%s is damaged; starting it afresh", path.name)
        return default


class ProvisioningAgent:
    """The agent; build it, ``await start()``, then ``await run()`` (or drive the steps)."""

    def __init__(
        self,
        data_dir: Path,
        hub_url: str,
        port: StationPort,
        clock: Clock,
        *,
        identity_source: IdentitySource | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        health_check: ConfigHealthCheck = config_health_check,
        kdf_params: KdfParams = DEFAULT_KDF_PARAMS,
        heartbeat_seconds: float = 60.0,
        pinned_keys: tuple[str, ...] = (),
        software_version: str = SOFTWARE_VERSION,
        step: StepHook = no_step,
        check_turn: bool = True,
        device_secret: DeviceSecretSource | None = None,
        update_status: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.hub_url = hub_url.rstrip("/")
        self.port = port
        self.clock = clock
        self._identity_source = identity_source or FileIdentity(data_dir)
        self._transport = transport
        self._health_check = health_check
        self._default_heartbeat = heartbeat_seconds
        self._pinned_keys = pinned_keys
        self.software_version = software_version
        self._step = step
        self._check_turn = check_turn
        self._dir = provisioning_dir(data_dir)
        self.staff = StaffKeyslots(data_dir, clock, kdf_params=kdf_params, secret=device_secret)
        #: The release IT's configuration names: fetched, handed to the updater when idle.
        self.releases = ReleaseFollower(DataDir(data_dir).updates, update_status, software_version)
        self.identity: StationIdentity | None = None
        self.client: HubClient | None = None
        self.config_store: ConfigStore | None = None
        self.status: AgentStatus = "unenrolled"
        self.last_error: str | None = None
        self._enrollment: dict[str, Any] = {}
        self._ledger: dict[str, str] = {}
        self._offline: list[dict[str, Any]] = []
        self._clock_offset: float | None = None
        #: The seq of the hub's last anchored audit head: proven in the next heartbeat.
        self._audit_anchor_seq: int | None = None
        self._network_ok: bool | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._busy = asyncio.Lock()
        #: Called after each successful configuration apply (tests and the bench wait on it).
        self.on_config: Callable[[int], Awaitable[None] | None] | None = None

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Load (or make) the identity, the configuration and the agent's small state."""
        self.identity = await asyncio.to_thread(self._identity_source.load)
        counter = RequestCounter(self.data_dir)
        self.client = HubClient(
            self.hub_url, self.identity, counter, self.clock, transport=self._transport
        )
        self.config_store = await asyncio.to_thread(
            ConfigStore.open, self.data_dir, self.identity.station_id, step=self._step
        )
        if self._pinned_keys and not self.config_store.trusted_keys:
            await asyncio.to_thread(self.config_store.pin_keys, self._pinned_keys)
        self._enrollment = _load_json(self._dir / _ENROLLMENT_FILE, {})
        status = self._enrollment.get("status")
        if status in ("pending", "approved"):
            self.status = status
        ledger = _load_json(self._dir / _LEDGER_FILE, {})
        self._ledger = ledger if isinstance(ledger, dict) else {}
        offline = _load_json(self._dir / _OFFLINE_FILE, [])
        self._offline = offline if isinstance(offline, list) else []
        current = self.config_store.current
        if current is not None:
            self.port.config_applied(current.config)
        _log.info("provisioning agent started: station %s, %s", self.identity.fingerprint, status)

    async def stop(self, *, within: float = 2.0) -> None:
        """Say "going offline" (bounded), then close the client."""
        self._stopping = True
        self._wake.set()
        if self.client is None:
            return
        if self.status == "approved":
            with contextlib.suppress(ProvisioningError, TimeoutError):
                await asyncio.wait_for(self.heartbeat_once(going_offline=True), within)
        await self.client.aclose()

    async def run(self) -> None:
        """Loop until :meth:`stop`; never raises for network or hub trouble."""
        while not self._stopping:
            delay = await self.step_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()

    def wake(self) -> None:
        """Do the next step now (e.g. after a staff enrollment changed the configuration)."""
        self._wake.set()

    async def step_once(self) -> float:
        """One enrollment poll or one heartbeat; the delay before the next."""
        try:
            if self.status in ("unenrolled", "pending"):
                return await self.enroll_once()
            if self.status == "approved":
                await self.heartbeat_once()
                return self.heartbeat_seconds
            return 3600.0
        except HubUnreachable as exc:
            self.last_error = "hub_unreachable"
            self._network_ok = False
            _log.warning("hub unreachable: %s", exc)
            return min(30.0, self.heartbeat_seconds)
        except EnrollmentError as exc:
            self.last_error = exc.code
            _log.error("hub refused the station: %s", exc.code)
            if exc.code == "station_decommissioned":
                self.status = "decommissioned"
            return 60.0
        except ProvisioningError as exc:
            self.last_error = type(exc).__name__
            _log.error("provisioning step failed: %s", exc)
            return 60.0

    @property
    def heartbeat_seconds(self) -> float:
        """From the configuration, else the default."""
        store = self.config_store
        if store is not None and store.current is not None:
            return float(store.current.config.timeouts.heartbeat_seconds)
        return self._default_heartbeat

    def _save(self, name: str, value: Any) -> None:
        atomic_write(self._dir / name, json.dumps(value, sort_keys=True).encode(), replace=True)

    def _require(self) -> tuple[HubClient, ConfigStore, StationIdentity]:
        if self.client is None or self.config_store is None or self.identity is None:
            raise ProvisioningError("the provisioning agent is not started")
        return self.client, self.config_store, self.identity

    # ------------------------------------------------------------------ enrollment

    async def enroll_once(self) -> float:
        """Contact the hub; on approval pin its keys and go straight on to configuration."""
        client, store, _identity = self._require()
        renew = self.status == "pending" and not self._enrollment.get("code")
        response = await client.enroll(self.software_version, renew_code=renew)
        self._network_ok = True
        if response.status is EnrollStatus.DECOMMISSIONED:
            self.status = "decommissioned"
            return 3600.0
        if response.status is EnrollStatus.APPROVED:
            if response.config_keys and not store.trusted_keys:
                await asyncio.to_thread(store.pin_keys, response.config_keys)
            if not store.trusted_keys:
                # Approved, but IT has signed nothing for it yet (the hub has no key to offer):
                # ask again rather than go on with nothing to check configurations against.
                _log.warning("approved, but no configuration signed by IT yet; asking again")
                return float(response.poll_seconds)
            self.status = "approved"
            self._enrollment = {"status": "approved"}
            await asyncio.to_thread(self._save, _ENROLLMENT_FILE, self._enrollment)
            await self.heartbeat_once()
            return self.heartbeat_seconds
        self.status = "pending"
        if response.code is not None:
            self._enrollment = {
                "status": "pending",
                "code": response.code,
                "expires_at": None
                if response.code_expires_at is None
                else response.code_expires_at.isoformat(),
            }
            await asyncio.to_thread(self._save, _ENROLLMENT_FILE, self._enrollment)
        return float(response.poll_seconds)

    def enrollment_view(self) -> dict[str, str | None] | None:
        """What the lock screen shows until approval (None once enrolled)."""
        if self.status in ("approved", "decommissioned") or self.identity is None:
            return None
        code = self._enrollment.get("code") if self.status == "pending" else None
        payload = None
        if isinstance(code, str):
            fp = self.identity.fingerprint.replace("-", "")
            payload = f"{self.hub_url}/enroll#code={code}&fp={fp}"
        return {
            "code": code if isinstance(code, str) else None,
            "qr_payload": payload,
            "fingerprint": self.identity.fingerprint,
        }

    # ------------------------------------------------------------------ heartbeats

    async def _audit_fields(
        self, head: tuple[int, str] | None, identity: StationIdentity
    ) -> tuple[AuditHead | None, AuditHead | None]:
        """The signed head, and the proof of the hub's last anchor (issue 14, item 6)."""
        if head is None:
            return None, None
        seq, digest = head
        signed = AuditHead(seq=seq, hash=digest, signature=identity.sign_audit_head(seq, digest))
        anchor = self._audit_anchor_seq
        if anchor is None:
            return signed, None
        try:
            proven = await self.port.audit_hash_at(anchor)
        except Exception as exc:  # the heartbeat goes out; the hub sees no proof
            _log.warning("audit proof unavailable: %s", type(exc).__name__)
            return signed, None
        return signed, AuditHead(seq=anchor, hash=proven)

    async def build_heartbeat(self, *, going_offline: bool = False) -> Heartbeat:
        """The heartbeat for now: from the port, the keyring's counters and own checks."""
        _client, store, identity = self._require()
        snap = await self.port.snapshot()
        health = [
            HealthCheck(name=HealthName(name), ok=ok)
            for name, ok in snap.health
            if name in _HEALTH_NAMES
        ]
        health.append(
            HealthCheck(name=HealthName.DISK, ok=await asyncio.to_thread(disk_ok, self.data_dir))
        )
        if self._network_ok is not None:
            health.append(HealthCheck(name=HealthName.NETWORK, ok=self._network_ok))
        if self._clock_offset is not None:
            ok = abs(self._clock_offset) <= _CLOCK_TOLERANCE_SECONDS
            health.append(HealthCheck(name=HealthName.CLOCK, ok=ok))
        current = store.current
        if self._check_turn and current is not None and not going_offline:
            reachable = await turn_reachable(current.config, within=1.0)
            if reachable is not None:
                health.append(HealthCheck(name=HealthName.TURN, ok=reachable))
        try:
            failures, by_staff = await asyncio.to_thread(self.staff.pin_counters)
            enrolled = len(by_staff)
        except Exception as exc:  # a damaged keyring must not stop heartbeats
            _log.warning("PIN counters unavailable: %s", type(exc).__name__)
            failures, by_staff, enrolled = 0, {}, 0
        audit_head, audit_proof = await self._audit_fields(snap.audit_head, identity)
        offline = []
        for item in self._offline[-_MAX_OFFLINE:]:
            with contextlib.suppress(ValidationError):
                offline.append(OfflineSample.model_validate(item))
        return Heartbeat(
            sent_at=self.clock.now(),
            software_version=self.software_version,
            config_version=store.version,
            config_rejected=store.rejected_reason(),
            lock_state=snap.lock_state,
            session_state=snap.session_state,  # type: ignore[arg-type]
            in_call=snap.in_call,
            health=tuple(health[:16]),
            ports=_known_ports(snap.ports),
            pins=PinCounters(station_failures=failures, by_staff=by_staff),
            last_call_outcome=snap.last_call_outcome,  # type: ignore[arg-type]
            queue_length=snap.queue_length,
            missed_consultations=snap.missed_consultations,
            undocumented_consultations=snap.undocumented_consultations,
            audit_head=audit_head,
            audit_proof=audit_proof,
            enrolled_staff=enrolled,
            offline=tuple(offline),
            going_offline=going_offline,
            update=self.releases.report,
        )

    async def heartbeat_once(self, *, going_offline: bool = False) -> None:
        """Send one heartbeat; then sync the configuration and run the commands it brought."""
        client, store, _identity = self._require()
        async with self._busy:
            beat = await self.build_heartbeat(going_offline=going_offline)
            try:
                response = await client.heartbeat(beat)
            except HubUnreachable:
                self._queue_offline(beat)
                raise
            self._network_ok = True
            self._clock_offset = (self.clock.now() - response.server_time).total_seconds()
            self._audit_anchor_seq = response.audit_anchor_seq
            if response.audit_alarm:
                _log.error("the hub reports that the audit log no longer extends its anchored head")
            if self._offline:
                self._offline = []
                await asyncio.to_thread(self._save, _OFFLINE_FILE, [])
            if going_offline:
                return
            if response.config_version != store.version and await self.sync_config():
                self.wake()  # tell the hub the new version at once, not a minute later
            for envelope in response.commands:
                await self.handle_command(envelope)
        await self.follow_release()

    async def follow_release(self) -> None:
        """Fetch the release the configuration names; hand it to the updater when idle."""
        client, store, _identity = self._require()
        current = store.current
        envelope = None
        if current is not None:
            with contextlib.suppress(OSError, ValidationError):
                envelope = SignedEnvelope.model_validate_json(
                    await asyncio.to_thread((store.directory / current.file).read_bytes)
                )
        wanted = None if current is None else current.config.software
        # Only a locked station with no call is handed over: the restart never ends a call
        # nor a staff member's session.
        busy = (await self.port.snapshot()).session_state != "locked"
        version = 0 if current is None else current.version
        chain = await asyncio.to_thread(store.key_chain) if wanted is not None else []
        await self.releases.follow(
            client, wanted, envelope, config_version=version, busy=busy, chain=chain
        )

    def _queue_offline(self, beat: Heartbeat) -> None:
        sample = OfflineSample(
            at=beat.sent_at,
            lock_state=beat.lock_state,
            healthy=all(h.ok for h in beat.health),
            config_version=beat.config_version,
        )
        self._offline = [*self._offline, sample.model_dump(mode="json")][-_MAX_OFFLINE:]
        try:
            self._save(_OFFLINE_FILE, self._offline)
        except OSError as exc:
            _log.warning("offline queue not saved: %s", exc.strerror)

    # ------------------------------------------------------------------ configuration

    async def sync_config(self) -> bool:
        """Pull the current configuration and apply it if new; True if one was applied."""
        client, store, _identity = self._require()
        envelope = await client.config()
        if envelope is None:
            return False
        try:
            applied = await store.apply(envelope, self._health_check)
        except ConfigRejected as exc:
            if exc.reason != "previously_rejected":
                _log.warning("configuration refused: %s", exc.reason)
            return False
        if applied is None:
            return False
        _log.info("configuration version %d applied", applied.version)
        self.port.config_applied(applied.config)
        self.port.audit("config_applied", None, "done")
        if self.on_config is not None:
            result = self.on_config(applied.version)
            if result is not None:
                await result
        return True

    # ------------------------------------------------------------------ commands

    def _verify_command(self, envelope: SignedEnvelope) -> CommandPayload | None:
        _client, store, identity = self._require()
        try:
            trusted = [b64decode(k, length=32) for k in store.trusted_keys]
            raw = open_envelope(envelope, "command", trusted)
            payload = CommandPayload.model_validate(raw)
        except (SignatureInvalid, ValidationError) as exc:
            _log.error("command refused: %s", type(exc).__name__)
            return None
        if payload.station_id != identity.station_id:
            _log.error("command for another station refused")
            return None
        return payload

    def _stale(self, payload: CommandPayload) -> str | None:
        """Why a command is out of its time (a machine word), or None when it is current.

        Checked on the station's own clock: a hub (or whoever holds its database) cannot
        hold a signed command back and play it later, nor pre-date one for later use.
        """
        now = self.clock.now()
        if payload.issued_at > now + COMMAND_CLOCK_SKEW:
            return "issued_in_future"
        if now > payload.issued_at + timedelta(seconds=payload.lifetime_seconds):
            return "expired"
        return None

    async def handle_command(self, envelope: SignedEnvelope) -> str | None:
        """Verify, run (once per command id) and acknowledge one command; its outcome."""
        client, _store, _identity = self._require()
        payload = self._verify_command(envelope)
        if payload is None:
            return None
        outcome = self._ledger.get(payload.command_id)
        detail = ""
        after: Callable[[], Awaitable[None]] | None = None
        if outcome is None and (why := self._stale(payload)) is not None:
            _log.error(
                "command %s (%s) refused: %s (issued %s, valid for %d s)",
                payload.command_id,
                payload.kind.value,
                why.replace("_", " "),
                payload.issued_at.isoformat(),
                payload.lifetime_seconds,
            )
            self.port.audit("remote_command_refused", None, why)
            outcome, detail = "refused", why
            self._ledger[payload.command_id] = outcome
            await asyncio.to_thread(self._save, _LEDGER_FILE, self._ledger)
        if outcome is None:
            outcome, detail, after = await self._execute(payload)
            if outcome != "deferred":
                self._ledger[payload.command_id] = outcome
                items = list(self._ledger.items())[-_MAX_LEDGER:]
                self._ledger = dict(items)
                await asyncio.to_thread(self._save, _LEDGER_FILE, self._ledger)
        ack = CommandAck(outcome=outcome, detail=detail)  # type: ignore[arg-type]
        try:
            await client.ack(payload.command_id, ack)
        except (HubUnreachable, EnrollmentError) as exc:
            # Acknowledged again when the hub re-sends it (the ledger keeps the outcome).
            _log.warning("command ack not delivered: %s", exc)
        if after is not None:
            await after()
        return outcome

    async def _execute(
        self, payload: CommandPayload
    ) -> tuple[str, str, Callable[[], Awaitable[None]] | None]:
        kind = payload.kind
        snap = await self.port.snapshot()
        if kind is CommandKind.LOCK:
            self.port.lock_now()
            self.port.audit("remote_lock", None, "done")
            return "done", "", None
        if kind is CommandKind.REVOKE_STAFF:
            staff_id = payload.staff_id
            if staff_id is None:
                return "refused", "no_staff_id", None
            if self.port.current_staff() == staff_id:
                self.port.lock_now()
            removed = await asyncio.to_thread(self.staff.remove, staff_id)
            outcome = "removed" if removed else "no_slot"
            self.port.audit("remote_revoke_staff", staff_id, outcome)
            return "done", outcome, None
        if snap.in_call and not payload.now:
            # Nothing wipes during a call unless the command says "now".
            return "deferred", "in_call", None
        self.port.lock_now()
        wipe_kind: WipeKind = "crypto_wipe" if kind is CommandKind.CRYPTO_WIPE else "decommission"
        await asyncio.to_thread(destroy_keys, self.data_dir, wipe_kind)
        if kind is CommandKind.CRYPTO_WIPE:
            self.port.audit("remote_crypto_wipe", None, "done")

            async def restart() -> None:
                self.port.request_restart()

            return "done", "", restart
        self.port.audit("remote_decommission", None, "done")

        async def forget() -> None:
            await asyncio.to_thread(self._forget_identity)
            self.port.request_restart()

        return "done", "", forget

    def _forget_identity(self) -> None:
        if self.config_store is not None:
            self.config_store.destroy()
        self._identity_source.destroy()
        # Every identity file the data directory names (the wipe's one list).
        forget_identity(self.data_dir)
        self.status = "decommissioned"
        self._stopping = True

    # ------------------------------------------------------------------ staff enrollment

    async def enroll_staff(
        self,
        code: str,
        pin: str,
        *,
        sponsor_number: str | None = None,
        sponsor_pin: str | None = None,
    ) -> tuple[str, str]:
        """Enroll a staff member with their one-time code and new PIN; their pseudonymous
        staff id and the staff number they log in with.

        Raises :class:`StaffEnrollmentError` (``code`` says why, ``user_message`` translated).
        """
        client, store, _identity = self._require()
        current = store.current
        if self.status != "approved" or current is None:
            raise StaffEnrollmentError("not_configured", None, USER_MESSAGES["not_configured"])
        await asyncio.to_thread(self.staff.check_pin, pin)
        has_keyring = await asyncio.to_thread(self.staff.exists)
        if has_keyring:
            await asyncio.to_thread(self.staff.check_sponsor, sponsor_number, sponsor_pin)
        elif current.config.escrow_public_key is None:
            raise StaffEnrollmentError("not_configured", None, USER_MESSAGES["not_configured"])
        elif self.staff.secret_kind == "file" and not current.config.allow_file_device_secret:  # noqa: S105
            # Before the code is spent: a keyring guarded by a file on the card needs IT's yes.
            raise StaffEnrollmentError(
                "no_hardware_secret",
                "first keyring refused: the device secret is a file and the configuration "
                "does not allow_file_device_secret",
                USER_MESSAGES["no_hardware_secret"],
            )
        try:
            redeemed = await client.redeem_staff_code(code)
        except HubUnreachable:
            raise StaffEnrollmentError(
                "hub_unreachable", None, USER_MESSAGES["hub_unreachable"]
            ) from None
        except StaffEnrollmentError as exc:
            self.port.audit("staff_enrollment", None, "refused")
            raise StaffEnrollmentError(exc.code, None, USER_MESSAGES.get(exc.code)) from None
        number = await asyncio.to_thread(
            self.staff.add,
            redeemed.staff_id,
            pin,
            escrow_public_key=current.config.escrow_public_key,
            sponsor_number=sponsor_number,
            sponsor_pin=sponsor_pin,
        )
        self.port.audit("keyslot_added", redeemed.staff_id, "enrolled")
        self.wake()  # the hub published a configuration naming the new staff id
        return redeemed.staff_id, number

    def describe(self) -> dict[str, Any]:
        """A short summary (status, versions) without secrets."""
        store = self.config_store
        return {
            "status": self.status,
            "fingerprint": None if self.identity is None else self.identity.fingerprint,
            "config_version": 0 if store is None else store.version,
            "last_error": self.last_error,
            "offline_queued": len(self._offline),
        }


def _known_ports(ports: tuple[tuple[str, str], ...]) -> dict[PortName, str]:
    """The ports a heartbeat can name; anything else stationd reports is left out."""
    known = {p.value: p for p in PortName}
    return {known[name]: backend for name, backend in ports if name in known}

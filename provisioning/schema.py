"""What travels between station and hub: the configuration, heartbeats, commands, enrollment.

Every model forbids unknown fields, so a typo or an injected field is refused rather than
ignored. The heartbeat is the one place a station speaks about itself regularly, so its model
is a closed list of enums, counts, versions and hashes: there is no free-text field in it,
which is how "never personal data" is kept by construction (and proven by a test).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from provisioning.errors import ConfigRejected, SignatureInvalid
from provisioning.protocol import SignedEnvelope, b64decode, open_envelope
from station.core.rules import check_endpoint_url
from station.core.text import SingleLine, has_control

__all__ = [
    "COMMAND_FORMAT",
    "CONFIG_FORMAT",
    "DEFAULT_COMMAND_LIFETIME_SECONDS",
    "MAX_COMMAND_LIFETIME_SECONDS",
    "AuditHead",
    "CareHome",
    "ClinicConfig",
    "CommandAck",
    "CommandKind",
    "CommandPayload",
    "ConfigPayload",
    "EnrollRequest",
    "EnrollResponse",
    "EnrollStatus",
    "EojDelivery",
    "HealthCheck",
    "HealthName",
    "Heartbeat",
    "HeartbeatResponse",
    "IceServerConfig",
    "OfflineSample",
    "PinCounters",
    "PortName",
    "Retention",
    "SoftwareRelease",
    "StaffEntry",
    "StaffRedeemRequest",
    "StaffRedeemResponse",
    "StaffRight",
    "StationConfig",
    "Timeouts",
    "UpdateReport",
    "UpdateState",
    "open_config",
]

CONFIG_FORMAT: Final = "kontaktstation-config-1"
COMMAND_FORMAT: Final = "kontaktstation-command-1"
#: How long a command is valid after ``issued_at`` unless it says otherwise (3 days: a
#: station offline over a weekend still obeys a lock or a wipe sent on Friday).
DEFAULT_COMMAND_LIFETIME_SECONDS: Final = 3 * 24 * 3600
#: The longest lifetime a command may ask for.
MAX_COMMAND_LIFETIME_SECONDS: Final = 14 * 24 * 3600

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
_HEX64 = re.compile(r"[0-9a-f]{64}", re.ASCII)


def _opaque_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError("ids are 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit")
    return value


OpaqueId = Annotated[str, AfterValidator(_opaque_id)]
Name = Annotated[SingleLine, Field(min_length=1, max_length=120)]


# One model per document of the protocol, each with its own fields and limits: the models
# below are alike by design.
class _Model(BaseModel):
    # Inputs stay out of validation errors: a refused document may hold credentials.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


# --------------------------------------------------------------------------- configuration


# station.export.config has a CareHome too: the care home as the EOJ needs it (a name and
# the SOR code); see the note there.
class CareHome(_Model):
    """The care home the station stands in."""

    id: OpaqueId
    name: Name


class ClinicConfig(_Model):
    """A GP clinic the station may call, and its video room on the hub."""

    id: OpaqueId
    name: Name
    #: The clinic's provider number ("ydernummer").
    provider_number: Annotated[str, Field(pattern=r"^[0-9]{4,10}$")]
    video_room: OpaqueId


class StaffRight(StrEnum):
    """What an enrolled staff member may do at the station."""

    CALL = "call"
    RECORDS = "records"
    NOTES = "notes"
    ROUNDS = "rounds"


class StaffEntry(_Model):
    """One enrolled staff member, by pseudonymous id only (the name stays on the hub)."""

    staff_id: OpaqueId
    rights: tuple[StaffRight, ...] = (StaffRight.CALL, StaffRight.RECORDS, StaffRight.NOTES)


class IceServerConfig(_Model):
    """A STUN or TURN server (the ``RTCIceServer`` dictionary)."""

    urls: tuple[Annotated[str, Field(max_length=256)], ...] = Field(min_length=1, max_length=4)
    username: Annotated[str, Field(max_length=256)] | None = None
    credential: Annotated[str, Field(max_length=256)] | None = Field(default=None, repr=False)

    @field_validator("urls")
    @classmethod
    def _schemes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not url.startswith(("stun:", "stuns:", "turn:", "turns:")):
                raise ValueError("ICE URLs start with stun:, stuns:, turn: or turns:")
            if has_control(url):
                raise ValueError("control characters are not allowed")
        return value


class Timeouts(_Model):
    """Timers of the station (seconds)."""

    idle_lock_seconds: int = Field(default=300, ge=30, le=3600)
    #: How long a dialled call waits for media after the GP's answer before it re-dials
    #: (the call engine's ``connect_timeout_seconds``; the same default and bounds).
    call_connect_seconds: int = Field(default=15, ge=5, le=120)
    heartbeat_seconds: int = Field(default=60, ge=10, le=3600)


class Retention(_Model):
    """How long personal data stays on the station after a consultation is documented."""

    purge_after_hours: int = Field(default=24, ge=1, le=24 * 14)
    #: A consultation held this many days ago and still without a note counts in the
    #: heartbeat's ``undocumented_consultations`` (IT sees a station whose notes are being
    #: forgotten; its personal data stays until someone documents or cancels it).
    undocumented_alert_days: int = Field(default=1, ge=1, le=30)


class EojDelivery(_Model):
    """Where the station delivers notes to the care record (EOJ) and how it authenticates.

    The URLs follow :func:`check_endpoint_url`, as the station's ``export.json`` does. The
    client secret never appears in a repr.
    """

    #: The FHIR server's base URL (a transaction Bundle is POSTed to it).
    fhir_base_url: Annotated[str, Field(min_length=1, max_length=512)]
    #: OAuth2 token endpoint (client-credentials grant).
    token_url: Annotated[str, Field(min_length=1, max_length=512)]
    client_id: Annotated[str, Field(min_length=1, max_length=256)]
    #: A plain string (like an ICE credential) so the signed document carries it; never in
    #: a repr, nor in a validation error.
    client_secret: str = Field(min_length=1, max_length=1024, repr=False)
    scope: Annotated[str, Field(max_length=512)] | None = None
    #: The care home's SOR code (the encounter's service provider in the EOJ).
    care_home_sor: Annotated[str, Field(pattern=r"^[0-9]{6,18}$")]
    #: The system staff ids are named under in the EOJ (e.g. the municipality's directory).
    staff_identifier_system: Annotated[str, Field(max_length=256)] | None = None
    timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    #: Tests only: plain http to a loopback address. Never set in production.
    allow_insecure_loopback: bool = False

    @model_validator(mode="after")
    def _check_urls(self) -> EojDelivery:
        for name in ("fhir_base_url", "token_url"):
            check_endpoint_url(
                name, getattr(self, name), allow_insecure_loopback=self.allow_insecure_loopback
            )
        system = self.staff_identifier_system
        if system is not None and (not urlsplit(system).scheme or has_control(system)):
            raise ValueError("staff_identifier_system must be a URI")
        return self


class SoftwareRelease(_Model):
    """The station's software IT wants it to run: a release archive, named by its hash.

    IT's signature over the configuration is the signature over the release: the station
    installs only the archive whose SHA-256 is this (``provisioning/release.py``).
    """

    version: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z.+!-]+$")]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class StationConfig(_Model):
    """Everything IT configures for one station (the layers merged into one)."""

    care_home: CareHome
    station_name: Name
    language: Literal["da", "en"] = "da"
    clinics: tuple[ClinicConfig, ...] = Field(default=(), max_length=200)
    staff: tuple[StaffEntry, ...] = Field(default=(), max_length=500)
    ice_servers: tuple[IceServerConfig, ...] = Field(default=(), max_length=8)
    #: Media only through TURN (needs a TURN server in ``ice_servers``).
    ice_relay_only: bool = False
    timeouts: Timeouts = Timeouts()
    retention: Retention = Retention()
    #: Whether the first staff member may enroll on a station whose device secret is a file on
    #: its SD card (no OTP key: a generic board, a development machine). Off by default: a
    #: copied card then carries what the PINs are guessed against (issue 14), so IT says so
    #: explicitly, and the heartbeat's ``ports.device_secret`` shows it.
    allow_file_device_secret: bool = False
    #: IT's escrow (recovery) X25519 public key, base64url; the station's keyring is sealed
    #: to it when the first staff member enrolls. None: staff enrollment is not possible yet.
    escrow_public_key: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{43}$")] | None = None
    #: Delivery of notes to the care record; None: the staff UI shows the plain-text summary.
    eoj: EojDelivery | None = None
    #: The release to run (None: whatever the set-up installed). Set in a care home's or a
    #: station's layer first to roll a release out to a group (``admin release rollout``).
    software: SoftwareRelease | None = None

    @model_validator(mode="after")
    def _relay_needs_turn(self) -> StationConfig:
        if self.ice_relay_only and not any(
            url.startswith(("turn:", "turns:")) for s in self.ice_servers for url in s.urls
        ):
            raise ValueError("ice_relay_only needs a TURN server in ice_servers")
        return self


class ConfigPayload(_Model):
    """The signed configuration document for one station and version."""

    format: Literal["kontaktstation-config-1"] = CONFIG_FORMAT
    station_id: OpaqueId
    version: int = Field(ge=1, le=2**31)
    issued_at: AwareDatetime
    #: Set only on a rollback: the version being rolled back. A station accepts a version at
    #: or below its current one only when this names exactly its current version.
    rollback_of: int | None = Field(default=None, ge=1, le=2**31)
    #: IT's signing keys the station trusts once this configuration is applied
    #: (base64url raw Ed25519 public keys): how IT's key rotates.
    trusted_config_keys: tuple[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{43}$")], ...] = Field(
        min_length=1, max_length=4
    )
    config: StationConfig


# --------------------------------------------------------------------------- commands


def open_config(envelope: SignedEnvelope, trusted: Sequence[str]) -> ConfigPayload:
    """The configuration in ``envelope`` if one of ``trusted`` (base64url hub keys) signed it
    and it validates; :class:`ConfigRejected` (``no_trusted_keys``, ``bad_signature``,
    ``invalid``) otherwise. Whose station it is, and which version, the caller checks.
    One reading for stationd's configuration store and the root updater."""
    if not trusted:
        raise ConfigRejected("no_trusted_keys", "no hub key is trusted yet")
    try:
        raw = open_envelope(envelope, "config", [b64decode(k, length=32) for k in trusted])
    except SignatureInvalid as exc:
        raise ConfigRejected("bad_signature", str(exc)) from None
    try:
        return ConfigPayload.model_validate(raw)
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0].get("loc", ())) or "payload"
        raise ConfigRejected("invalid", f"configuration does not validate at {where}") from None


class CommandKind(StrEnum):
    """What IT can ask a station to do remotely."""

    LOCK = "lock"
    REVOKE_STAFF = "revoke_staff"
    CRYPTO_WIPE = "crypto_wipe"
    DECOMMISSION = "decommission"


class CommandPayload(_Model):
    """A signed remote command; ``command_id`` makes it idempotent."""

    format: Literal["kontaktstation-command-1"] = COMMAND_FORMAT
    command_id: OpaqueId
    station_id: OpaqueId
    kind: CommandKind
    issued_at: AwareDatetime
    #: Seconds after ``issued_at`` the station still runs it; later it is refused as
    #: ``expired`` (as is one issued in the future beyond a small clock skew).
    lifetime_seconds: int = Field(
        default=DEFAULT_COMMAND_LIFETIME_SECONDS, ge=60, le=MAX_COMMAND_LIFETIME_SECONDS
    )
    #: Run even during a call (otherwise wipes and decommissions wait for the call to end).
    now: bool = False
    staff_id: OpaqueId | None = None


class CommandAck(_Model):
    """The station's report on one command."""

    outcome: Literal["done", "deferred", "refused", "failed"]
    detail: Annotated[str, Field(max_length=64, pattern=r"^[a-z0-9_]*$")] = ""


# --------------------------------------------------------------------------- enrollment


class EnrollStatus(StrEnum):
    """Where a station stands with the hub."""

    PENDING = "pending"
    APPROVED = "approved"
    DECOMMISSIONED = "decommissioned"


class EnrollRequest(_Model):
    """First contact (and every retry until approved); the key is in the signed headers."""

    software_version: Annotated[str, Field(max_length=32, pattern=r"^[0-9A-Za-z.+-]+$")]


class EnrollResponse(_Model):
    """The hub's answer: approved, or pending with the code to show on the lock screen."""

    station_id: OpaqueId
    status: EnrollStatus
    code: str | None = None
    code_expires_at: AwareDatetime | None = None
    #: Where IT approves (the QR code points here with the code).
    approve_url: str | None = None
    poll_seconds: int = Field(default=10, ge=1, le=3600)
    #: IT's keys as its latest signed configuration names them (base64url); pinned at approval
    #: only by a station whose set-up gave it none (``--it-key`` is the out-of-band check).
    config_keys: tuple[str, ...] = ()


# --------------------------------------------------------------------------- heartbeats


class HealthName(StrEnum):
    """The parts a heartbeat reports on."""

    CAMERA = "camera"
    MICROPHONE = "microphone"
    LOUDSPEAKER = "loudspeaker"
    BUTTON = "button"
    LED = "led"
    NETWORK = "network"
    TURN = "turn"
    DISK = "disk"
    CLOCK = "clock"
    HARDWARE = "hardware"
    HEALTH = "health"
    #: The spoken reminders (espeak-ng); failing means the station only chimes.
    SPEECH = "speech"


class HealthCheck(_Model):
    """One part: ok or not, and a short machine word (no free text)."""

    name: HealthName
    ok: bool


class PortName(StrEnum):
    """The station's ports whose backend a heartbeat names."""

    CAMERA = "camera"
    AUDIO = "audio"
    GPIO = "gpio"
    FRAME_SINK = "frame_sink"
    HUB = "hub"
    EXPORT = "export"
    #: ``otp`` (the SoC's key), ``file`` (on the SD card: a copied card carries it), ...
    DEVICE_SECRET = "device_secret"  # noqa: S105 (a port name)


#: A backend's name (``v4l2``, ``pyav``, ``lgpio``, ``shm``, ``fhir``): a machine word.
BackendName = Annotated[str, Field(max_length=24, pattern=r"^[a-z0-9_]+$")]


class PinCounters(_Model):
    """Wrong-PIN counts: station-wide and per pseudonymous staff id (consecutive failures)."""

    station_failures: int = Field(default=0, ge=0, le=10**9)
    by_staff: dict[OpaqueId, Annotated[int, Field(ge=0, le=10**6)]] = Field(
        default_factory=dict, max_length=500
    )


class AuditHead(_Model):
    """An audit log entry's ``(seq, hash)``: the head the hub anchors, or a proof.

    As the heartbeat's ``audit_head`` it carries the station's Ed25519 signature
    (:func:`provisioning.protocol.sign_audit_head`); as ``audit_proof`` it is the hash the
    station's log has *now* for the entry the hub anchored last, recomputed from the start of
    the chain (so a rewritten, re-chained middle shows as a different hash there).
    """

    seq: int = Field(ge=0, le=2**62)
    hash: str
    signature: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{86}$")] | None = None

    @field_validator("hash")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not _HEX64.fullmatch(value):
            raise ValueError("the audit hash is 64 lower-case hex digits")
        return value


LockState = Literal["locked", "unlocked", "private_call"]
SessionStateName = Literal[
    "locked",
    "staff",
    "pre_call_check",
    "waiting_for_gp",
    "in_call_attended",
    "in_call_private",
    "wrap_up",
]
CallOutcomeName = Literal["hung_up_station", "hung_up_gp", "connection_lost", "failed"]


class OfflineSample(_Model):
    """The essentials of a heartbeat that could not be sent (queued while offline)."""

    at: AwareDatetime
    lock_state: LockState
    healthy: bool
    config_version: int = Field(ge=0, le=2**31)


UpdateState = Literal[
    # the archive is being fetched from the hub
    "downloading",
    # fetched and checked; waits for the station to be locked with no call
    "waiting",
    # handed to the updater: installing, switching, health-checking
    "installing",
    # the station runs it (it passed the health check after its restart)
    "installed",
    # it was installed but failed the health check: the station runs the previous release
    "rolled_back",
    # it could not be fetched, checked or installed (the reason is a machine word)
    "failed",
]


class UpdateReport(_Model):
    """Where the station stands with the release its configuration names."""

    version: Annotated[str, Field(max_length=32, pattern=r"^[0-9A-Za-z.+!-]+$")]
    state: UpdateState
    reason: Annotated[str, Field(max_length=32, pattern=r"^[a-z_]*$")] = ""


class Heartbeat(_Model):
    """A station's regular report: enums, counts, versions and hashes, nothing else."""

    sent_at: AwareDatetime
    software_version: Annotated[str, Field(max_length=32, pattern=r"^[0-9A-Za-z.+-]+$")]
    config_version: int = Field(ge=0, le=2**31)
    #: Why the last offered configuration was refused, if it was (a machine word).
    config_rejected: Annotated[str, Field(max_length=32, pattern=r"^[a-z_]*$")] | None = None
    lock_state: LockState
    session_state: SessionStateName
    in_call: bool = False
    health: tuple[HealthCheck, ...] = Field(default=(), max_length=16)
    #: Which backend serves each port, so IT sees a station running on a fake or without one.
    ports: dict[PortName, BackendName] = Field(default_factory=dict, max_length=8)
    pins: PinCounters = PinCounters()
    last_call_outcome: CallOutcomeName | None = None
    queue_length: int = Field(default=0, ge=0, le=10**6)
    #: Booked consultations whose slot passed without a call, last 7 days: a station being
    #: forgotten (issue 17). A number only.
    missed_consultations: int = Field(default=0, ge=0, le=10**6)
    #: Calls that ended without a note in the care record for longer than the station's
    #: limit (default a day). A number only.
    undocumented_consultations: int = Field(default=0, ge=0, le=10**6)
    audit_head: AuditHead | None = None
    #: The entry at the hub's last anchored seq (``HeartbeatResponse.audit_anchor_seq``).
    audit_proof: AuditHead | None = None
    enrolled_staff: int = Field(default=0, ge=0, le=10**4)
    offline: tuple[OfflineSample, ...] = Field(default=(), max_length=120)
    going_offline: bool = False
    #: The release the configuration names, when it is not the one running (or just was).
    update: UpdateReport | None = None


class HeartbeatResponse(_Model):
    """The hub's answer: the configuration version to run and commands waiting."""

    config_version: int = Field(ge=0)
    commands: tuple[SignedEnvelope, ...] = Field(default=(), max_length=32)
    next_in_seconds: int = Field(default=60, ge=1, le=3600)
    server_time: datetime
    #: The seq of the last audit head the hub anchored: prove it in the next heartbeat.
    #: (None, and left out of the answer, for a station that sends no signed head: a station
    #: from before anchoring refuses fields it does not know.)
    audit_anchor_seq: int | None = Field(default=None, ge=0, le=2**62)
    #: The station's audit log no longer extends an anchored head (IT sees it too).
    audit_alarm: bool | None = None


# --------------------------------------------------------------------------- staff


class StaffRedeemRequest(_Model):
    """The staff enrollment code typed at the station (never a name, never a PIN)."""

    code: Annotated[str, Field(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9 -]+$")]


class StaffRedeemResponse(_Model):
    """The pseudonymous staff id the new keyslot is made for, and their rights."""

    staff_id: OpaqueId
    rights: tuple[StaffRight, ...]

"""The hub's settings: one validated object, from the environment (CLI) or built by tests."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from provisioning.schema import IceServerConfig
from station.core.rules import check_base_url, check_station_token

__all__ = ["DEFAULT_HUB_DATA_DIR", "HubSettings"]

#: Production default; systemd's StateDirectory=kontaktstation-hub creates it for the hub's user.
DEFAULT_HUB_DATA_DIR = Path("/var/lib/kontaktstation-hub")

_ENV_PREFIX = "KONTAKTSTATION_HUB_"


class HubSettings(BaseModel):
    """Everything the hub needs to run; immutable once built."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Where the SQLite database lives (created 0700 when missing).
    data_dir: Path = DEFAULT_HUB_DATA_DIR
    #: The SQLite file; defaults to ``data_dir / "hub.sqlite3"``.
    database_path: Path | None = None
    #: The URL the GP's browser reaches the hub at (behind the TLS proxy); GP links start with it.
    public_base_url: str = "http://127.0.0.1:8470"
    #: LEGACY: one shared bearer token every station presents. Stations now authenticate with
    #: their enrolled Ed25519 identity (:mod:`hub.station_auth`); the shared token is accepted
    #: only while IT sets ``allow_shared_station_token`` too (migration of old stations).
    station_token: SecretStr | None = None
    #: IT's explicit opt-in to the legacy shared token (rooms made with it belong to no station).
    allow_shared_station_token: bool = False
    #: How long a rendezvous session token (issued for a signed request) is valid.
    station_session_ttl: timedelta = timedelta(minutes=15)
    #: coturn's ``static-auth-secret`` (``use-auth-secret``): the hub issues per-call TURN
    #: credentials valid until the room's link closes plus ``turn_credential_margin``.
    turn_secret: SecretStr | None = None
    #: The TURN URLs those credentials are for (``turn:host:3478?transport=udp``, ...).
    turn_urls: tuple[str, ...] = ()
    turn_credential_margin: timedelta = timedelta(minutes=30)
    #: The GP link opens this long before the appointment starts ...
    link_opens_before_start: timedelta = timedelta(minutes=30)
    #: ... and closes this long after it starts (or at the booked end, if that is later).
    link_closes_after_start: timedelta = timedelta(hours=2)
    #: Request bodies above this are refused with 413 before they are parsed. The largest is
    #: the station's first offer: the SDP and the sealed round (20 residents with every field
    #: at its longest in 4-byte characters seal to ~72 kB: tests/unit/test_room_seal.py).
    max_body_bytes: int = Field(default=160 * 1024, ge=4096, le=1024 * 1024)
    #: An offer/answer above this is refused (Chromium's are about 5 KiB, aiortc's about 3 KiB).
    max_sdp_bytes: int = Field(default=48 * 1024, ge=1024, le=1024 * 1024)
    #: The longest a long-poll request is held open (clients ask for less; proxies allow 60 s).
    long_poll_max_seconds: float = Field(default=25.0, gt=0, le=55)
    #: An admitted browser counts as present this long after its last request; until then a
    #: second browser is refused (409). Longer than ``long_poll_max_seconds``. After it, a
    #: second browser is still refused while the first one's answer to the current offer
    #: stands (it is in the call); only an unanswered re-dial frees the seat.
    gp_session_lease: timedelta = timedelta(seconds=45)
    #: How long the skeleton of a finished room (no personal data, no SDP) is kept, so a late
    #: click on the link says "ended"/"expired" instead of "unknown".
    finished_room_retention: timedelta = timedelta(days=7)
    #: How often expired rooms are purged of personal data in the background.
    purge_interval_seconds: float = Field(default=60.0, gt=0)
    #: The most trickled ICE candidates kept per offer generation.
    max_gp_candidates: int = Field(default=64, ge=1, le=1000)
    #: STUN/TURN for the GP's browser (empty: host candidates only, e.g. tests on loopback);
    #: the same ``RTCIceServer`` dictionary as the stations' signed configuration.
    gp_ice_servers: tuple[IceServerConfig, ...] = ()
    #: The GP page shows "reconnecting" when no media arrives for this long.
    media_watchdog_seconds: float = Field(default=4.0, gt=0, le=60)
    #: PostgreSQL (``postgresql://...``) for several hub instances: rooms, their wake-ups
    #: (LISTEN/NOTIFY) and provisioning all use it. None: SQLite files in ``data_dir``.
    database_url: SecretStr | None = None
    #: The hub's own secret (code pepper, session tokens; 0600, shared by every instance);
    #: default ``hub.secret`` in ``data_dir``. The hub holds no signing key: IT signs.
    hub_secret_path: Path | None = None
    #: How long a station's on-screen enrollment code stays valid.
    enroll_code_ttl: timedelta = timedelta(hours=24)
    #: How long a staff enrollment code stays valid.
    staff_code_ttl: timedelta = timedelta(minutes=30)
    #: How often stations send a heartbeat.
    heartbeat_seconds: int = Field(default=60, ge=5, le=3600)

    # The rules are station.core.rules' and shared; only these thin pydantic hooks repeat in
    # the station's CallConfig (station.call.config), as each model needs its own.
    @field_validator("public_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_base_url("public_base_url", value)

    @field_validator("station_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_station_token(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _shared_token_opt_in(self) -> HubSettings:
        if self.station_token is not None and not self.allow_shared_station_token:
            raise ValueError(
                "a shared station token is configured but not allowed: set "
                "allow_shared_station_token (KONTAKTSTATION_HUB_ALLOW_SHARED_STATION_TOKEN=1) "
                "to keep accepting it, or remove it"
            )
        if self.allow_shared_station_token and self.station_token is None:
            raise ValueError("allow_shared_station_token needs a station_token")
        if self.turn_urls and self.turn_secret is None:
            raise ValueError("turn_urls need a turn_secret")
        return self

    @property
    def sqlite_path(self) -> Path:
        """The SQLite database file."""
        return self.database_path or self.data_dir / "hub.sqlite3"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> HubSettings:
        """Settings from ``KONTAKTSTATION_HUB_*`` variables, then ``overrides`` on top.

        The station token comes from ``KONTAKTSTATION_HUB_STATION_TOKEN`` or, better, a file
        named by ``KONTAKTSTATION_HUB_STATION_TOKEN_FILE`` (a systemd credential), never from
        the command line, where every local user could read it.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if data_dir := env.get(_ENV_PREFIX + "DATA_DIR"):
            values["data_dir"] = Path(data_dir)
        if db := env.get(_ENV_PREFIX + "DATABASE"):
            values["database_path"] = Path(db)
        if url := env.get(_ENV_PREFIX + "PUBLIC_URL"):
            values["public_base_url"] = url
        if db_url_file := env.get(_ENV_PREFIX + "DATABASE_URL_FILE"):
            values["database_url"] = Path(db_url_file).read_text(encoding="utf-8").strip()
        elif db_url := env.get(_ENV_PREFIX + "DATABASE_URL"):
            values["database_url"] = db_url
        if env.get(_ENV_PREFIX + "PROVISIONING_KEY"):
            raise ValueError(
                f"{_ENV_PREFIX}PROVISIONING_KEY: the hub holds no signing key any more; give "
                "that key to 'kontaktstation admin --signing-key' on IT's machine, and the hub "
                f"its own secret with {_ENV_PREFIX}SECRET (or let it make hub.secret)"
            )
        if secret_path := env.get(_ENV_PREFIX + "SECRET"):
            values["hub_secret_path"] = Path(secret_path)
        if token_file := env.get(_ENV_PREFIX + "STATION_TOKEN_FILE"):
            values["station_token"] = Path(token_file).read_text(encoding="utf-8").strip()
        elif token := env.get(_ENV_PREFIX + "STATION_TOKEN"):
            values["station_token"] = token
        if env.get(_ENV_PREFIX + "ALLOW_SHARED_STATION_TOKEN", "").lower() in ("1", "true", "yes"):
            values["allow_shared_station_token"] = True
        if turn_file := env.get(_ENV_PREFIX + "TURN_SECRET_FILE"):
            values["turn_secret"] = Path(turn_file).read_text(encoding="utf-8").strip()
        if turn_urls := env.get(_ENV_PREFIX + "TURN_URLS"):
            values["turn_urls"] = tuple(u for u in turn_urls.split() if u)
        values.update(overrides)
        return cls(**values)

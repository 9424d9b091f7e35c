"""The call engine's configuration: one validated object (:class:`CallConfig`).

Today it comes from a JSON file or the environment of stationd; provisioning's signed
configuration replaces that source later (the model stays the same). Environment:

* ``KONTAKTSTATION_CALL_CONFIG``: a JSON file holding a :class:`CallConfig` (takes precedence);
* otherwise ``KONTAKTSTATION_HUB_URL`` (the hub's base URL). stationd signs in to the
  rendezvous with the station's identity (see :class:`station.call.hub.SessionCredentials`);
  only for a hub that still allows the LEGACY shared token, that token in
  ``KONTAKTSTATION_HUB_STATION_TOKEN_FILE`` (a systemd credential) or
  ``KONTAKTSTATION_HUB_STATION_TOKEN``; ``KONTAKTSTATION_ICE_SERVERS`` (a JSON list of
  ``{"urls": ..., "username": ..., "credential": ...}``), ``KONTAKTSTATION_ICE_RELAY_ONLY=1``,
  ``KONTAKTSTATION_CALL_LOOPBACK=1`` (host candidates only on 127.0.0.1: tests, benches, demo).

Without a hub URL the station has no call configuration and the call endpoints say so (503).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from station.call.errors import CallConfigError
from station.call.ice import IceServerConfig
from station.core.rules import check_base_url, check_station_token

__all__ = ["CALL_CONFIG_ENV", "CallConfig", "call_config_from_env"]

CALL_CONFIG_ENV = "KONTAKTSTATION_CALL_CONFIG"
_TRUE = frozenset({"1", "true", "yes", "on"})


class CallConfig(BaseModel):
    """Everything the call engine is configured with; immutable once built."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The hub's base URL (the rendezvous API lives under ``/api/station``).
    hub_url: str
    #: LEGACY: the hub's shared station token, only for a hub where IT still allows it.
    #: Without it the station signs in with its identity key (per-station credentials).
    station_token: SecretStr | None = None
    #: STUN/TURN servers, preferred first (aiortc uses only the first STUN and first TURN).
    ice_servers: tuple[IceServerConfig, ...] = ()
    #: Media only through TURN (needs a TURN server in ``ice_servers``).
    relay_only: bool = False
    #: Offer only 127.0.0.1 as host address (tests, benches and the demo in a loopback-only
    #: network namespace). Never on a real station.
    loopback_only: bool = False
    #: The GP page's language for rooms this station creates.
    language: Literal["da", "en"] = "da"
    #: A STUN/TURN server that does not answer a probe within this is left out of the attempt.
    server_probe_seconds: float = Field(default=1.0, gt=0, le=10)
    #: ICE gathering (setLocalDescription) is abandoned after this long.
    gather_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    #: No inbound media for this long: "reconnecting", and a re-dial with a new peer connection.
    #: Measured (``bench/redial.py``, stationd and Chromium over a veth whose link is cut):
    #: a pause of up to 2.5 s comes back by itself about 0.1 s after the link does, while a
    #: re-dial costs about 0.9 s after it even with the next attempt prepared (more over a
    #: real link: round trips to the hub and the TURN server). A Wi-Fi roam pauses media for
    #: well under a second with fast roaming (802.11r/OKC) and for one to two seconds with a
    #: full 802.1X re-authentication: shorter than this, so a roam never costs a re-dial,
    #: while a dead path is given up one second after the longest roam.
    media_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    #: From the GP's answer to a connected transport and first media, at most this long.
    connect_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    #: While an attempt is connected, the next one's peer connection is prepared and gathered
    #: in the background, so a re-dial posts its offer at once (``station.call.warm``) ...
    prewarm: bool = True
    #: ... and made again when older than this (a NAT forgets idle mappings in minutes).
    warm_max_age_seconds: float = Field(default=120.0, ge=5, le=600)
    #: Re-dial back-off: first delay, doubled each failed attempt, capped.
    redial_initial_seconds: float = Field(default=0.5, gt=0, le=60)
    redial_max_seconds: float = Field(default=5.0, gt=0, le=300)
    #: After the GP left (closed the page, or gone from the network for good) the call ends by
    #: itself this long later, unless the GP comes back; both screens say so meanwhile.
    gp_left_end_seconds: float = Field(default=60.0, ge=5, le=600)
    #: Nothing heard from the GP (no media, no heartbeat) and the hub has not heard from the
    #: GP's page for this long either: the GP's network is gone for good. Must exceed the
    #: page's in-call poll interval (5 s) with room for a slow request.
    gp_absent_seconds: float = Field(default=15.0, ge=8, le=120)
    #: While nothing is heard from the GP, the hub is asked about the GP's page this often.
    presence_check_seconds: float = Field(default=1.0, gt=0, le=10)
    #: The GP sends video, yet no frame was decoded for this long while audio or the page's
    #: heartbeat still arrive: frozen video, and a keyframe is requested (RTCP PLI, repeated
    #: every second) ...
    video_stall_seconds: float = Field(default=2.0, ge=0.5, le=30)
    #: ... and if no frame follows within this long of the first request, the engine re-dials.
    video_keyframe_wait_seconds: float = Field(default=3.0, ge=0.5, le=30)
    #: Call statistics and the quality level are sampled this often.
    stats_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    #: Video pauses both ways (audio only, labelled) when the link cannot carry it, and comes
    #: back by itself (``station.call.linkjudge``).
    auto_audio_only: bool = True
    #: The self-view goes to the frame sink at most this often.
    self_view_fps: float = Field(default=10.0, gt=0, le=60)
    #: Timeouts of the hub's plain requests (long-polls add their own wait to the read timeout).
    hub_connect_seconds: float = Field(default=2.0, gt=0, le=60)
    hub_request_seconds: float = Field(default=5.0, gt=0, le=120)
    #: Long-polls ask the hub to hold the request this long.
    hub_long_poll_seconds: float = Field(default=20.0, gt=0, le=55)

    @field_validator("hub_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_base_url("hub_url", value)

    @field_validator("station_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_station_token(value.get_secret_value())
        return value


def call_config_from_env(environ: Mapping[str, str] | None = None) -> CallConfig | None:
    """The call configuration from the environment (see the module docs); None if absent.

    Raises :class:`CallConfigError` when a configuration is present but invalid (the daemon
    then starts without calls and says why, rather than calling with half a configuration).
    """
    env = os.environ if environ is None else environ
    try:
        if path := env.get(CALL_CONFIG_ENV):
            return CallConfig.model_validate_json(Path(path).read_text(encoding="utf-8"))
        hub_url = env.get("KONTAKTSTATION_HUB_URL")
        if not hub_url:
            return None
        token: str | None = None
        if token_file := env.get("KONTAKTSTATION_HUB_STATION_TOKEN_FILE"):
            token = Path(token_file).read_text(encoding="utf-8").strip()
        elif env_token := env.get("KONTAKTSTATION_HUB_STATION_TOKEN"):
            token = env_token
        servers = json.loads(env.get("KONTAKTSTATION_ICE_SERVERS", "[]"))
        return CallConfig(
            hub_url=hub_url,
            station_token=None if token is None else SecretStr(token),
            ice_servers=tuple(IceServerConfig.model_validate(s) for s in servers),
            relay_only=env.get("KONTAKTSTATION_ICE_RELAY_ONLY", "").lower() in _TRUE,
            loopback_only=env.get("KONTAKTSTATION_CALL_LOOPBACK", "").lower() in _TRUE,
        )
    except (OSError, ValueError, ValidationError) as exc:
        # The type only: a validation message could quote the token.
        raise CallConfigError(f"call configuration is invalid ({type(exc).__name__})") from None

"""ICE configuration for the station's aiortc peer connections.

Two facts about aiortc 1.16 shape this module (see PLATFORM-NOTES):

* ``RTCConfiguration(iceServers=None)`` makes aiortc add Google's public STUN server. The
  station must never reach a server it was not configured for, so
  :func:`build_rtc_configuration` always passes an explicit list, empty when nothing is
  configured.
* aiortc uses only the **first** STUN URL and the **first** usable TURN URL it is given (and
  ``turns:`` only over TCP); further servers are silently ignored. Put the preferred server
  first in the signed configuration.

And one fact about aioice: it leaves 127.0.0.1 out when it gathers host candidates, so two
peers in a loopback-only network namespace (tests, benches, the demo) find no path at all.
:func:`restrict_host_candidates_to_loopback` is the documented switch for that case.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from station.errors import StationError
from station.i18n import N_

__all__ = [
    "LOOPBACK_HOST_ADDRESS",
    "IceConfigError",
    "IceServerConfig",
    "build_rtc_configuration",
    "loopback_host_candidates_active",
    "restrict_host_candidates_to_loopback",
]

#: The only host address offered while :func:`restrict_host_candidates_to_loopback` is active.
LOOPBACK_HOST_ADDRESS = "127.0.0.1"

_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


class IceConfigError(StationError):
    """The ICE (STUN/TURN) configuration cannot be used."""

    default_user_message = N_(
        "The station's network set-up for video calls is invalid. Contact IT."
    )


class IceServerConfig(BaseModel):
    """One STUN or TURN server, as the call engine holds it.

    ``credential`` is a secret (a TURN password): it is kept out of ``repr()``, logs and dumps.
    Kept apart from the signed configuration's :class:`provisioning.schema.IceServerConfig`
    on purpose: that document is signed and must serialise the password in the clear, while
    nothing the station dumps of a call configuration may show it (a ``SecretStr`` here).
    stationd converts one into the other when a configuration is applied.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    urls: tuple[str, ...] = Field(min_length=1)
    username: str | None = None
    credential: SecretStr | None = None

    @field_validator("urls", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        # The WebRTC dictionary allows a single string or a list; accept both.
        return (value,) if isinstance(value, str) else value

    @field_validator("urls")
    @classmethod
    def _known_schemes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not url.startswith(_SCHEMES):
                raise ValueError("ICE server URLs must start with stun:, stuns:, turn: or turns:")
        return value


def build_rtc_configuration(servers: Sequence[IceServerConfig], *, relay_only: bool = False) -> Any:
    """An aiortc ``RTCConfiguration`` with exactly ``servers`` (an empty list when none).

    ``relay_only`` sets the relay transport policy (media only through TURN); it needs a TURN
    server in ``servers``, otherwise no candidate could ever be gathered, so that is refused.
    aiortc uses only the first STUN and the first TURN URL of the list.
    """
    # aiortc is imported here so this module's model can be used where aiortc is not loaded.
    from aiortc import RTCConfiguration, RTCIceServer
    from aiortc.rtcconfiguration import RTCIceTransportPolicy

    ice_servers = [
        RTCIceServer(
            urls=list(server.urls),
            username=server.username,
            credential=(
                server.credential.get_secret_value() if server.credential is not None else None
            ),
        )
        for server in servers
    ]
    if relay_only and not any(
        url.startswith(("turn:", "turns:")) for server in servers for url in server.urls
    ):
        raise IceConfigError("relay-only ICE needs a TURN server, and none is configured")
    policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
    # Always a list, never None: None would make aiortc add a public STUN server.
    return RTCConfiguration(iceServers=ice_servers, iceTransportPolicy=policy)


_install_lock = threading.Lock()
_install_depth = 0
_original_get_host_addresses: Callable[[bool, bool], list[str]] | None = None


def _loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    # IPv4 loopback only: Chromium's loopback candidates are 127.0.0.1 too, and offering ::1
    # would only add checks that can never succeed against it.
    return [LOOPBACK_HOST_ADDRESS] if use_ipv4 else []


def loopback_host_candidates_active() -> bool:
    """Whether aioice currently offers only the loopback host address."""
    return _install_depth > 0


@contextmanager
def restrict_host_candidates_to_loopback() -> Iterator[None]:
    """Within this block, aioice gathers exactly one host address: 127.0.0.1.

    For tests, benches and the demo, which run inside a loopback-only network namespace (and
    must never send traffic anywhere else). It patches ``aioice.ice.get_host_addresses``,
    which is process-wide, so it affects every peer connection gathering inside the block;
    nesting is allowed, and the original function is restored when the outermost block ends.
    Server-reflexive and relay candidates (a STUN/TURN server on 127.0.0.1) still work.
    """
    global _install_depth, _original_get_host_addresses
    import aioice.ice

    with _install_lock:
        if _install_depth == 0:
            _original_get_host_addresses = aioice.ice.get_host_addresses
            aioice.ice.get_host_addresses = _loopback_host_addresses
        _install_depth += 1
    try:
        yield
    finally:
        with _install_lock:
            _install_depth -= 1
            if _install_depth == 0 and _original_get_host_addresses is not None:
                aioice.ice.get_host_addresses = _original_get_host_addresses  # type: ignore[assignment]
                _original_get_host_addresses = None

"""Per-station credentials for the rendezvous API, and per-call TURN credentials.

Stations authenticate to ``/api/station/...`` with their Ed25519 identity, in two steps:

1. A **signed session request**: ``POST /api/provisioning/v1/rendezvous-session``, signed
   like every provisioning request (method, path, counter, time, SHA-256 of the body; domain
   ``kontaktstation request v1``; see :mod:`provisioning.protocol`). The hub checks the key
   against the enrolled, approved station, the time window and that the counter is above the
   last one (a replay, or a cloned identity, is refused and flagged).
2. A **short-lived session token** in the answer, sent as ``Authorization: Bearer`` on the
   rendezvous routes: ``v1.<station id>.<expiry>.<MAC>``, the MAC an HMAC-SHA256 under a key
   derived from the hub's own secret, ``hub.secret`` (domain
   ``kontaktstation rendezvous session v1``).

Why not sign every rendezvous request: the call engine runs requests concurrently (a long-poll
on the room beside an offer and a candidates request), and the provisioning counter must reach
the hub in order, so signing them all would either serialise the call or weaken the replay
check to a nonce cache that several hub instances would have to share. A token verified with
one HMAC needs no state and no database read, every hub instance checks it, and the expensive,
stateful check (signature, counter, enrolled key) happens once per session.

TURN credentials follow coturn's REST scheme (``use-auth-secret`` + ``static-auth-secret``):
username ``<expiry unix time>:<room id>``, password ``base64(HMAC-SHA1(secret, username))``;
coturn refuses them after the expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "SHARED_TOKEN_STATION",
    "SessionTokens",
    "turn_credential",
]

_SESSION_DOMAIN: Final = b"kontaktstation rendezvous session v1"
_KEY_INFO: Final = b"kontaktstation rendezvous session key v1"
#: The owner of rooms made with the legacy shared token (a station id is base32, 24 chars).
SHARED_TOKEN_STATION: Final = "shared-token"  # noqa: S105 (a name, not a secret)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SessionTokens:
    """Issues and checks the rendezvous session tokens (stateless, see the module docs)."""

    def __init__(self, secret_key_material: bytes, ttl: timedelta) -> None:
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO).derive(
            secret_key_material
        )
        self.ttl = ttl

    def _mac(self, station_id: str, expires: int) -> str:
        message = b"\n".join((_SESSION_DOMAIN, station_id.encode("ascii"), str(expires).encode()))
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def issue(self, station_id: str, now: datetime) -> tuple[str, datetime]:
        """A token for ``station_id`` and when it expires."""
        expires = int((now + self.ttl).timestamp())
        token = f"v1.{station_id}.{expires}.{self._mac(station_id, expires)}"
        return token, datetime.fromtimestamp(expires, tz=now.tzinfo)

    def verify(self, token: str, now: datetime) -> str | None:
        """The station id a valid, unexpired token was issued to; None otherwise."""
        if len(token) > 256 or not token.isascii():
            return None
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != "v1":
            return None
        _, station_id, expires_text, mac = parts
        if not station_id.isalnum() or not expires_text.isdigit() or len(expires_text) > 12:
            return None
        expires = int(expires_text)
        if not hmac.compare_digest(mac.encode("ascii"), self._mac(station_id, expires).encode()):
            return None
        if expires <= now.timestamp():
            return None
        return station_id


def turn_credential(secret: bytes, room_id: str, expires: datetime) -> tuple[str, str]:
    """coturn's REST-API credential for one room: ``(username, password)``."""
    username = f"{int(expires.timestamp())}:{room_id}"
    password = base64.b64encode(hmac.new(secret, username.encode(), hashlib.sha1).digest())
    return username, password.decode("ascii")

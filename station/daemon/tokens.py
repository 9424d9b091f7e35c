"""Staff-session tokens: what a verified unlock gives the staff UI, and what every lock takes away.

A token is 256 random bits (``secrets.token_urlsafe``). The daemon keeps only SHA-256 digests,
so a memory dump of stationd does not hand out live tokens, and lookups are by digest (no
early-exit comparison of the secret itself). :meth:`TokenRegistry.revoke_all` is called at the
instant of every lock, synchronously, before any other work: there is no await between the
lock and the revocation in which a request could slip through.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

__all__ = ["StaffToken", "TokenRegistry"]

_TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class StaffToken:
    """Who a live token belongs to and when it was issued (no secret in here)."""

    staff_id: str
    issued_at: datetime
    generation: int


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class TokenRegistry:
    """The live staff-session tokens; empty whenever the station is locked."""

    def __init__(self) -> None:
        self._live: dict[bytes, StaffToken] = {}
        # Bumped by every revocation, so a token issued before a lock can never be confused
        # with one issued after it, even if issue() and a lock interleave.
        self._generation = 0

    @property
    def generation(self) -> int:
        """How many times every token was revoked (diagnostics and tests)."""
        return self._generation

    def __len__(self) -> int:
        return len(self._live)

    def issue(self, staff_id: str, now: datetime) -> str:
        """A new token for ``staff_id``; the secret is returned once and never stored."""
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        self._live[_digest(token)] = StaffToken(staff_id, now, self._generation)
        return token

    def verify(self, token: str) -> StaffToken | None:
        """The token's owner, or None if it is unknown or was revoked."""
        entry = self._live.get(_digest(token))
        if entry is None or entry.generation != self._generation:
            return None
        return entry

    def revoke_all(self) -> int:
        """Forget every token (a lock); returns how many were live."""
        count = len(self._live)
        self._live.clear()
        self._generation += 1
        return count

    def __repr__(self) -> str:
        return f"TokenRegistry(live={len(self._live)}, generation={self._generation})"

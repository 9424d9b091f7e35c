"""Short codes a care worker reads over the phone, for the GP to type at ``/kode``.

The fallback for a GP whose clinic has no other way in: the 60-character link is for e-mail
and the QR code; the code is 8 characters from 31 unambiguous ones (``ABCD-EFGH``, about 39.6
bits). Redeeming it gives the room's full link (a 303 to it), so it is exactly as powerful as
the link while it lives, and it lives less:

- one room; it dies with the room's link (``valid_until``), when the room ends, and once a GP
  has been admitted;
- guesses are bounded: a client address gets ``PER_ADDRESS_FAILURES`` wrong codes per
  ``WINDOW``, and all addresses together ``GLOBAL_FAILURES`` (a botnet with many addresses
  still meets the global limit). With 100 live codes and the global limit, a day of guessing
  finds one with a probability of about 1e-5;
- the hub keeps only a keyed hash of each code, and the link token it leads to only in this
  process's memory (never in the database or a log). A hub restart forgets the codes (the
  link keeps working); several hub instances behind one address would each know only their
  own (not supported: the code page must go to the instance that made the room).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Final

__all__ = ["ALPHABET", "CODE_LENGTH", "CodeBook", "CodeRefused", "format_code", "normalise_code"]

#: No 0/O, 1/I/L: read over the phone and typed back without doubt.
ALPHABET: Final = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH: Final = 8
WINDOW: Final = 600.0  # seconds
PER_ADDRESS_FAILURES: Final = 10
GLOBAL_FAILURES: Final = 200


class CodeRefused(Exception):
    """Why a code did not lead anywhere: ``unknown`` (wrong, expired, used) or ``limited``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalise_code(text: str) -> str | None:
    """The code typed (any case, spaces and dashes), or None when it cannot be one."""
    code = "".join(c for c in text.upper() if c not in " -\t")
    if len(code) != CODE_LENGTH or any(c not in ALPHABET for c in code):
        return None
    return code


def format_code(code: str) -> str:
    """``ABCDEFGH`` as ``ABCD-EFGH``, as staff read it."""
    return f"{code[:4]}-{code[4:]}"


@dataclass(slots=True)
class _Entry:
    room_id: str
    gp_url: str
    valid_until: datetime


class CodeBook:
    """The live codes of this hub process, and the failed-guess limits."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._entries: dict[bytes, _Entry] = {}
        self._failures: dict[str, deque[float]] = {}
        self._all_failures: deque[float] = deque()

    def _hash(self, code: str) -> bytes:
        return hmac.new(self._key, code.encode(), hashlib.sha256).digest()

    def issue(self, room_id: str, gp_url: str, valid_until: datetime) -> str:
        """A new code for the room (formatted ``ABCD-EFGH``)."""
        while True:
            code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
            digest = self._hash(code)
            if digest not in self._entries:
                break
        self._entries[digest] = _Entry(room_id, gp_url, valid_until)
        return format_code(code)

    def forget_room(self, room_id: str) -> None:
        """The room's code stops working (the room ended, or its GP was admitted)."""
        for digest in [d for d, e in self._entries.items() if e.room_id == room_id]:
            del self._entries[digest]

    def redeem(self, typed: str, address: str, now: datetime) -> tuple[str, str]:
        """``(room_id, gp_url)`` for a live code; :class:`CodeRefused` otherwise."""
        clock = now.timestamp()
        self._prune(clock, now)
        mine = self._failures.get(address)
        if (mine is not None and len(mine) >= PER_ADDRESS_FAILURES) or len(
            self._all_failures
        ) >= GLOBAL_FAILURES:
            raise CodeRefused("limited")
        code = normalise_code(typed)
        entry = self._entries.get(self._hash(code)) if code is not None else None
        if entry is None:
            self._failures.setdefault(address, deque()).append(clock)
            self._all_failures.append(clock)
            raise CodeRefused("unknown")
        return entry.room_id, entry.gp_url

    def _prune(self, clock: float, now: datetime) -> None:
        for digest in [d for d, e in self._entries.items() if e.valid_until <= now]:
            del self._entries[digest]
        horizon = clock - WINDOW
        while self._all_failures and self._all_failures[0] < horizon:
            self._all_failures.popleft()
        for address in list(self._failures):
            times = self._failures[address]
            while times and times[0] < horizon:
                times.popleft()
            if not times:
                del self._failures[address]

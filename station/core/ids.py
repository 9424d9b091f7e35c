"""The one rule for opaque ids, used by the domain, the store, the keyring and the audit log.

Ids appear in clear metadata, logs and the audit trail, so they are short ASCII tokens,
random, and never shaped like a CPR number (``DDMMYY-SSSS`` with or without the hyphen).
"""

from __future__ import annotations

import base64
import re
import secrets
from typing import Final

__all__ = ["is_opaque_id", "new_id"]

_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
_CPR_LIKE_RE: Final = re.compile(r"[0-9]{6}-?[0-9]{4}", re.ASCII)
# An RFC 4122 uuid4 as 32 hex digits. About one in twelve holds ten decimal digits in a row
# by pure chance; in such an id that run means nothing, so it is not refused.
_UUID_HEX_RE: Final = re.compile(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}", re.ASCII)


def is_opaque_id(value: object) -> bool:
    """Whether ``value`` is acceptable as an id: 1-64 of ``A-Z a-z 0-9 . _ -``, starting
    with a letter or digit, not all digits, and with no CPR-like run of digits (unless the
    whole id is a random uuid4 in hex)."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value) or value.isdigit():
        return False
    return not _CPR_LIKE_RE.search(value) or _UUID_HEX_RE.fullmatch(value) is not None


def new_id() -> str:
    """A fresh random id: 16 characters of lower-case base32 (80 bits).

    Base32's digits are 2-7 only, so ten digits in a row are all but impossible; the loop
    makes it certain.
    """
    while True:
        candidate = base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()
        if is_opaque_id(candidate):
            return candidate

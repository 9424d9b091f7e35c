"""The blind store's checks on what it is given, and its one time format.

Every check raises :class:`~station.storage.store.errors.StoreInvalid` with a message that
never quotes the value (a mistyped id may be a CPR number).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final, TypeVar

from station.core.ids import is_opaque_id
from station.storage.store.errors import StoreInvalid
from station.storage.store.records import ENTRY_FIELDS

__all__ = [
    "MAX_SEALED_BYTES",
    "PROVIDER_RE",
    "SEALED_FIELD_MIN_BYTES",
    "WRAPPED_KEY_MAX_BYTES",
    "WRAPPED_KEY_MIN_BYTES",
    "check_enum",
    "check_fields",
    "check_id",
    "check_sealed",
    "check_text",
    "dt",
    "looks_like_text",
    "ts",
]

#: Largest sealed value accepted: a note of a few pages, far below SQLite's limits.
MAX_SEALED_BYTES: Final = 64 * 1024
#: seal_field's output is a format byte, a 12-byte nonce and a 16-byte tag around the text.
SEALED_FIELD_MIN_BYTES: Final = 1 + 12 + 16
#: Wrapped keys: AES key wrap of 32 bytes is 40 bytes, seal_field of 32 bytes is 61.
WRAPPED_KEY_MIN_BYTES: Final = 40
WRAPPED_KEY_MAX_BYTES: Final = 1024

_E = TypeVar("_E", bound=StrEnum)


PROVIDER_RE: Final = re.compile(r"[A-Za-z0-9-]{1,16}", re.ASCII)


def check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not is_opaque_id(value):
        # Never quote the value: a mistyped id may be a CPR number.
        raise StoreInvalid(
            f"{what} must be an opaque id of 1-64 ASCII letters, digits, '-' or '_', "
            "and never a CPR number"
        )
    return value


def check_text(value: object, what: str, max_len: int) -> str:
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > max_len
        or not value.isprintable()
    ):
        raise StoreInvalid(f"{what} must be printable text of 1-{max_len} characters")
    return value


def looks_like_text(blob: bytes) -> bool:
    """True when ``blob`` is printable UTF-8: plaintext handed over by mistake.

    seal_field's output starts with the format byte 0x01 (not printable), so a real sealed
    field is never taken for text; for random bytes (a sealed box) the chance is below 1e-10.
    """
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\t\n\r" for ch in text)


def check_sealed(
    value: object, what: str, *, min_len: int = SEALED_FIELD_MIN_BYTES, max_len: int
) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise StoreInvalid(f"{what} must be bytes (a sealed value)")
    blob = bytes(value)
    if not min_len <= len(blob) <= max_len:
        raise StoreInvalid(
            f"{what} must be a sealed value of {min_len}-{max_len} bytes, got {len(blob)}"
        )
    if looks_like_text(blob):
        raise StoreInvalid(f"{what} is readable text, not a sealed value: seal it first")
    return blob


def check_fields(sealed: object) -> dict[str, bytes]:
    if not isinstance(sealed, Mapping):
        raise StoreInvalid("sealed fields must be a mapping of field name to sealed bytes")
    checked: dict[str, bytes] = {}
    for name, blob in sealed.items():
        if name not in ENTRY_FIELDS:
            raise StoreInvalid(
                f"unknown sealed field name; allowed: {', '.join(sorted(ENTRY_FIELDS))}"
            )
        checked[name] = check_sealed(blob, f"sealed field {name}", max_len=MAX_SEALED_BYTES)
    return checked


def check_enum(cls: type[_E], value: object, what: str) -> _E:
    try:
        if not isinstance(value, str):
            raise ValueError(what)
        return cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise StoreInvalid(f"{what} must be one of: {allowed}") from None


def ts(value: object, what: str) -> str:
    """A timezone-aware time as fixed-width UTC text, so text order is time order in SQL."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise StoreInvalid(f"{what} must be a timezone-aware datetime")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dt(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)

"""Residents and notes to and from the blind store's sealed fields.

This is the record code: it runs only in a process that holds the vault key (the staff UI,
and the self-check). Each consultation has its own random data key, wrapped by the vault key
and kept in the store; every personal field of that consultation is sealed under the data
key, bound to its table, row and field. Purging a consultation destroys its wrapped key, so
its fields can never be opened again, whatever copies of the rows survive.

The locked UI never imports this module (an import-linter contract says so).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from station.core.cpr import parse_cpr
from station.core.model import Resident, WithCpr, WithoutCpr
from station.keys.crypto import KEY_BYTES, FieldRef, SealError
from station.keys.crypto import open_field as _open
from station.keys.crypto import seal_field as _seal
from station.keys.vault import VaultKey

__all__ = [
    "ENTRY_TABLE",
    "NOTE_TABLE",
    "ConsultationKey",
    "OpenedEntry",
    "SealedEntry",
    "open_entry",
    "open_note",
    "seal_entry",
    "seal_note",
]

#: The table names bound into each sealed field's associated data (the store's own tables).
ENTRY_TABLE = "queue_entries"
NOTE_TABLE = "notes"
KEY_TABLE = "consultation_keys"


class ConsultationKey:
    """One consultation's data key, held as a bytearray that :meth:`zero` overwrites."""

    def __init__(self, consultation_id: str, key: bytearray) -> None:
        if len(key) != KEY_BYTES:
            raise SealError(f"a consultation key must be {KEY_BYTES} bytes")
        self.consultation_id = consultation_id
        self._key = key

    def __repr__(self) -> str:
        return f"ConsultationKey({self.consultation_id!r}, <hidden>)"

    @classmethod
    def new(cls, vault: VaultKey, consultation_id: str) -> tuple[ConsultationKey, bytes]:
        """A fresh random key and its wrapped form for ``BlindStore.put_consultation_key``."""
        key = bytearray(os.urandom(KEY_BYTES))
        return cls(consultation_id, key), vault.wrap(key, cls._ref(consultation_id))

    @classmethod
    def unwrap(cls, vault: VaultKey, consultation_id: str, wrapped: bytes) -> ConsultationKey:
        """Open a wrapped key read from ``BlindStore.get_consultation_key``."""
        return cls(consultation_id, vault.unwrap(wrapped, cls._ref(consultation_id)))

    @staticmethod
    def _ref(consultation_id: str) -> FieldRef:
        return FieldRef(KEY_TABLE, consultation_id, "key")

    def seal(self, plaintext: str, ref: FieldRef) -> bytes:
        """Seal one text field."""
        return _seal(self._key, plaintext.encode("utf-8"), ref)

    def open(self, blob: bytes, ref: FieldRef) -> str:
        """Open one text field sealed by :meth:`seal`."""
        return _open(self._key, blob, ref).decode("utf-8")

    def zero(self) -> None:
        """Overwrite the key; the object is useless afterwards."""
        for i in range(len(self._key)):
            self._key[i] = 0
        self._key = bytearray()


class SealedEntry(Protocol):
    """A queue entry as the blind store keeps it: its id and its sealed fields by name.

    The store's row and the API's answer are both this; the record code needs nothing else
    of them (and so imports neither the store nor the wire models).
    """

    @property
    def id(self) -> str: ...

    @property
    def sealed(self) -> Mapping[str, bytes]: ...


@dataclass(frozen=True)
class OpenedEntry:
    """A queue entry with its resident and reason opened."""

    entry: SealedEntry
    resident: Resident
    reason: str | None


def _entry_ref(entry_id: str, name: str) -> FieldRef:
    return FieldRef(ENTRY_TABLE, entry_id, name)


def seal_entry(
    key: ConsultationKey, entry_id: str, resident: Resident, reason: str | None = None
) -> dict[str, bytes]:
    """The sealed fields for ``BlindStore.add_entry`` (only the fields that have a value)."""
    identity = resident.identity
    fields: dict[str, str | None] = {"display_name": identity.display_name, "reason": reason}
    if isinstance(identity, WithoutCpr):
        fields |= {
            "birth_date": identity.birth_date.isoformat(),
            "room": identity.room,
            "note": identity.note,
        }
    else:
        fields |= {"cpr": identity.cpr.digits, "room": identity.room, "note": identity.note}
    return {
        name: key.seal(value, _entry_ref(entry_id, name))
        for name, value in fields.items()
        if value is not None
    }


def open_entry(key: ConsultationKey, entry: SealedEntry) -> OpenedEntry:
    """Open every sealed field of ``entry``; :class:`SealError` if any fails to open."""
    values = {
        name: key.open(blob, _entry_ref(entry.id, name)) for name, blob in entry.sealed.items()
    }
    name = values.get("display_name")
    if name is None:
        raise SealError("a queue entry has no sealed display name")
    identity: WithCpr | WithoutCpr
    if "cpr" in values:
        identity = WithCpr(
            parse_cpr(values["cpr"]), name, room=values.get("room"), note=values.get("note")
        )
    else:
        identity = WithoutCpr(
            name,
            date.fromisoformat(values["birth_date"]),
            values.get("room") or "",
            note=values.get("note"),
        )
    return OpenedEntry(entry, Resident(entry.id, identity), values.get("reason"))


def seal_note(key: ConsultationKey, note_id: str, text: str) -> bytes:
    """A wrap-up note's body, sealed for ``BlindStore.add_note``."""
    return key.seal(text, FieldRef(NOTE_TABLE, note_id, "body"))


def open_note(key: ConsultationKey, note_id: str, blob: bytes) -> str:
    """Open a note body sealed by :func:`seal_note`."""
    return key.open(blob, FieldRef(NOTE_TABLE, note_id, "body"))

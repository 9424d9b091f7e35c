"""Every text a person reads, through one gettext catalogue: Danish by default, English too.

Source strings (msgids) are English, as code is; the Danish catalogue lives in
``tui/locale/da/LC_MESSAGES/*.po`` (one file per app: ``locked.po``, ``staff.po``,
``common.po``), read with Babel and merged into one catalogue at first use. English needs no
catalogue: an English msgid is its own translation. The language comes from
``KONTAKTSTATION_LANG`` (``da`` or ``en``; the signed configuration sets it on a station) or
:func:`set_language`.

A test extracts every ``_("...")`` from ``tui/`` and fails if Danish lacks one, so a
missing translation can never show English to a resident by accident.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Final

from babel.messages.pofile import read_po

__all__ = ["LANGUAGES", "_", "current_language", "danish_catalogue", "set_language"]

LANGUAGES: Final = ("da", "en")
_LOCALE_DIR: Final = Path(__file__).parent / "locale"
_language: str | None = None


@cache
def danish_catalogue() -> dict[str, str]:
    """msgid → Danish text, from every ``.po`` file of the Danish catalogue."""
    merged: dict[str, str] = {}
    for po in sorted((_LOCALE_DIR / "da" / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as handle:
            for message in read_po(handle, locale="da"):
                msgid, text = message.id, message.string
                # Plural entries (tuples) are not used; fuzzy ones are not yet reviewed.
                if message.fuzzy or not isinstance(msgid, str) or not isinstance(text, str):
                    continue
                if msgid and text:
                    merged[msgid] = text
    return merged


def current_language() -> str:
    """The language in use: set explicitly, else ``KONTAKTSTATION_LANG``, else Danish."""
    if _language is not None:
        return _language
    env = os.environ.get("KONTAKTSTATION_LANG", "da").strip().lower()[:2]
    return env if env in LANGUAGES else "da"


def set_language(language: str) -> None:
    """Choose ``da`` or ``en`` for this process."""
    global _language
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}; choose one of {LANGUAGES}")
    _language = language


def _(message: str) -> str:
    """Translate ``message`` (an English msgid) into the current language."""
    if current_language() == "en":
        return message
    return danish_catalogue().get(message, message)

"""Every text a person reads, through one gettext catalogue: Danish by default, English too.

The bottom of every layer (below :mod:`station.errors`), so any package may translate: the
UIs, stationd and its parts, the hardware, the provisioning agent, the hub, the command line.
It imports nothing of the project and no library but Babel (contract ``catalogue``).

Source strings (msgids) are English, as code is; the Danish catalogue lives in
``station/i18n/locale/da/LC_MESSAGES/*.po`` (one file per app or package: ``common.po``,
``locked.po``, ``staff.po``, ``station.po``, ``hardware.po``, ``provisioning.po``,
``hub.po``, ``kontaktstation.po``), read with Babel and merged into one catalogue at first use.
English needs no catalogue: an English msgid is its own translation. The language comes from
``KONTAKTSTATION_LANG`` (``da`` or ``en``; the signed configuration sets it on a station) or
:func:`set_language`.

Three ways to mark a text (a test extracts all three from every package and fails if Danish
lacks one, so a missing translation can never show English to a resident by accident):

- ``_("…")`` translates now, for a text made when it is shown;
- ``N_("…")`` only marks a msgid to translate later (a class attribute, a table);
- ``LazyText("… {name} …", name=value)`` keeps a msgid and its parameters and translates when
  it is read (``str()``), so an error made before the language is known still speaks it.

Parameters always go through ``.format(name=...)`` on the translated text, never an f-string
inside ``_()`` (the catalogue could not know it).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Final

from babel.messages.pofile import read_po

__all__ = [
    "LANGUAGES",
    "LANGUAGE_ENV",
    "N_",
    "LazyText",
    "_",
    "adopt_language",
    "current_language",
    "danish_catalogue",
    "set_language",
    "translate",
]

LANGUAGES: Final = ("da", "en")
#: The development override: when set, it wins over IT's configuration.
LANGUAGE_ENV: Final = "KONTAKTSTATION_LANG"
LOCALE_DIR: Final = Path(__file__).parent / "locale"
_language: str | None = None


@cache
def danish_catalogue() -> dict[str, str]:
    """msgid → Danish text, from every ``.po`` file of the Danish catalogue."""
    merged: dict[str, str] = {}
    for po in sorted((LOCALE_DIR / "da" / "LC_MESSAGES").glob("*.po")):
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
    env = os.environ.get(LANGUAGE_ENV, "da").strip().lower()[:2]
    return env if env in LANGUAGES else "da"


def set_language(language: str) -> None:
    """Choose ``da`` or ``en`` for this process."""
    global _language
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}; choose one of {LANGUAGES}")
    _language = language


def adopt_language(language: str) -> bool:
    """Use IT's ``language`` for this process unless ``KONTAKTSTATION_LANG`` overrides it.

    Whether the language was set (stationd calls it when a signed configuration applies).
    """
    if os.environ.get(LANGUAGE_ENV, "").strip():
        return False
    set_language(language)
    return True


def translate(message: str, language: str | None = None) -> str:
    """``message`` (an English msgid) in ``language`` (default: the one in use).

    A text that is no msgid (already translated, or received from another process) is
    returned as it is.
    """
    if (language or current_language()) == "en":
        return message
    return danish_catalogue().get(message, message)


def _(message: str) -> str:
    """Translate ``message`` (an English msgid) into the current language."""
    return translate(message)


def N_(message: str) -> str:  # the gettext convention for "translate later"
    """Mark ``message`` as a msgid to translate later; returns it unchanged."""
    return message


class LazyText:
    """A msgid and its parameters, translated each time it is read (``str()``)."""

    __slots__ = ("msgid", "params")

    def __init__(self, msgid: str, /, **params: object) -> None:
        self.msgid = msgid
        self.params = params

    def translated(self, language: str | None = None) -> str:
        """The text in ``language`` (default: the one in use), parameters filled in."""
        params = {
            name: value.translated(language) if isinstance(value, LazyText) else value
            for name, value in self.params.items()
        }
        text = translate(self.msgid, language)
        return text.format(**params) if params else text

    def __str__(self) -> str:
        return self.translated()

    def __repr__(self) -> str:
        return f"LazyText({self.msgid!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyText):
            return (self.msgid, self.params) == (other.msgid, other.params)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.msgid)

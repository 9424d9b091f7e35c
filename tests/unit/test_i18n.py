"""The string catalogue: Danish by default, English on request, nothing untranslated."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

import tui
from tui import i18n


def test_danish_is_the_default_and_english_is_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KONTAKTSTATION_LANG", raising=False)
    monkeypatch.setattr(i18n, "_language", None)
    assert i18n._("Station locked") == "Stationen er låst"
    monkeypatch.setenv("KONTAKTSTATION_LANG", "en")
    assert i18n._("Station locked") == "Station locked"
    monkeypatch.setenv("KONTAKTSTATION_LANG", "xx")
    assert i18n.current_language() == "da"
    with pytest.raises(ValueError, match="unsupported language"):
        i18n.set_language("de")


def test_every_string_in_the_uis_has_a_danish_translation() -> None:
    root = Path(tui.__file__).parent
    found = {
        message
        for _filename, _lineno, message, _comments, _context in extract_from_dir(
            str(root), method_map=[("**.py", "python")], keywords={"_": None}
        )
        if isinstance(message, str)
    }
    missing = sorted(found - set(i18n.danish_catalogue()))
    assert missing == [], f"msgids without Danish text: {missing}"


def test_no_two_po_files_translate_one_msgid_differently() -> None:
    from babel.messages.pofile import read_po

    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for po in sorted((Path(tui.__file__).parent / "locale" / "da" / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as handle:
            for message in read_po(handle, locale="da"):
                if not isinstance(message.id, str) or not message.id:
                    continue
                text = str(message.string)
                if message.id in seen and seen[message.id][1] != text:
                    clashes.append((message.id, seen[message.id][0], po.name))
                seen.setdefault(message.id, (po.name, text))
    assert clashes == [], f"one msgid, two Danish texts (file, file): {clashes}"

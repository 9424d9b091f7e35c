"""The string catalogue: Danish by default, English on request, nothing untranslated.

Every package with text a person reads (the UIs, stationd and its parts, the hardware, the
provisioning agent, the hub, the command line) marks it for the one catalogue in
``station/i18n/locale/da/LC_MESSAGES/``; these tests hold that true.
"""

from __future__ import annotations

import io
import re
import string
import tokenize
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from station import i18n

REPO = Path(__file__).resolve().parents[2]
#: Every package whose code may hold text a person reads.
PACKAGES = ("station", "stationapi", "hardware", "tui", "provisioning", "hub", "kontaktstation")
#: The three ways a text is marked (see station.i18n).
KEYWORDS = {"_": None, "N_": None, "LazyText": None}
#: A string literal that is data, not text (a made-up name, a note as staff would type it)
#: says so on its line.
DATA_PRAGMA = "# i18n: data"


@pytest.fixture
def language(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No language set explicitly; the test chooses with ``KONTAKTSTATION_LANG``."""
    monkeypatch.delenv("KONTAKTSTATION_LANG", raising=False)
    monkeypatch.setattr(i18n, "_language", None)
    return monkeypatch


def test_danish_is_the_default_and_english_is_available(language: pytest.MonkeyPatch) -> None:
    assert i18n._("Station locked") == "Stationen er låst"
    language.setenv("KONTAKTSTATION_LANG", "en")
    assert i18n._("Station locked") == "Station locked"
    language.setenv("KONTAKTSTATION_LANG", "xx")
    assert i18n.current_language() == "da"
    with pytest.raises(ValueError, match="unsupported language"):
        i18n.set_language("de")


def _extracted() -> dict[str, list[str]]:
    """msgid → where it is marked, from every package."""
    found: dict[str, list[str]] = {}
    for package in PACKAGES:
        for filename, lineno, message, _comments, _context in extract_from_dir(
            str(REPO / package), method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            if isinstance(message, str) and message:
                found.setdefault(message, []).append(f"{package}/{filename}:{lineno}")
    return found


def test_the_extraction_covers_every_package_with_text() -> None:
    places = [place for where in _extracted().values() for place in where]
    for package in PACKAGES:
        assert any(place.startswith(f"{package}/") for place in places), package


def test_every_marked_string_has_a_danish_translation() -> None:
    catalogue = i18n.danish_catalogue()
    missing = {msgid: where for msgid, where in _extracted().items() if msgid not in catalogue}
    assert missing == {}, f"msgids without Danish text: {missing}"


def test_every_translation_keeps_the_msgid_s_parameters() -> None:
    def names(text: str) -> set[str]:
        return {field for _, field, _, _ in string.Formatter().parse(text) if field}

    wrong = {
        msgid: danish
        for msgid, danish in i18n.danish_catalogue().items()
        if names(msgid) != names(danish)
    }
    assert wrong == {}, f"Danish text with other {{parameters}} than its msgid: {wrong}"


def test_no_two_po_files_translate_one_msgid_differently() -> None:
    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for po in sorted((i18n.LOCALE_DIR / "da" / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as handle:
            for message in read_po(handle, locale="da"):
                if not isinstance(message.id, str) or not message.id:
                    continue
                text = str(message.string)
                if message.id in seen and seen[message.id][1] != text:
                    clashes.append((message.id, seen[message.id][0], po.name))
                seen.setdefault(message.id, (po.name, text))
    assert clashes == [], f"one msgid, two Danish texts (file, file): {clashes}"


_DANISH_LETTERS = re.compile("[æøåÆØÅ]")
_STRING_PARTS = {tokenize.STRING} | (
    {tokenize.FSTRING_MIDDLE} if hasattr(tokenize, "FSTRING_MIDDLE") else set()
)


def test_no_danish_string_literal_outside_the_catalogue() -> None:
    """Danish text belongs in the .po files: a literal with æ, ø or å anywhere in the code
    (docstrings included; tests and the .po files excepted) fails, unless its line says it is
    data (``# i18n: data``)."""
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            lines = source.splitlines()
            for token in tokenize.generate_tokens(io.StringIO(source).readline):
                if token.type not in _STRING_PARTS or not _DANISH_LETTERS.search(token.string):
                    continue
                own_lines = lines[token.start[0] - 1 : token.end[0]]
                if any(DATA_PRAGMA in line for line in own_lines):
                    continue
                found.append(f"{path.relative_to(REPO)}:{token.start[0]}: {token.string[:60]}")
    assert found == [], "Danish text outside the catalogue:\n" + "\n".join(found)


def test_the_gp_page_speaks_through_the_catalogue() -> None:
    """The GP's page (HTML and script, no build step) carries no text of its own: the hub
    fills it in from the catalogue, in the link's language, and the script reads that block."""
    import json
    from importlib import resources

    from hub.gp_texts import render_gp_page

    static = resources.files("hub").joinpath("static")
    for name in ("gp.html", "gp.js", "enroll.html", "enroll.js"):
        text = static.joinpath(name).read_text(encoding="utf-8")
        assert not _DANISH_LETTERS.search(text), f"Danish text in hub/static/{name}"
    template = static.joinpath("gp.html").read_text(encoding="utf-8")
    for language, admit, error in (
        ("da", "Lad komme ind", "Samtalen er afsluttet."),
        ("en", "Admit", "The conversation has ended."),
    ):
        page = render_gp_page(template, language)
        assert "{{" not in page and f'<html lang="{language}">' in page
        block = page.split('<script id="gp-texts" type="application/json">')[1]
        texts = json.loads(block.split("</script>")[0])
        assert texts["admit"] == admit and texts["errors"]["call_ended"] == error
        assert f'class="primary">{admit}</button>' in page
    with pytest.raises(ValueError, match="unsupported language"):
        render_gp_page(template, "de")


def test_errors_speak_the_language_in_use_when_read(language: pytest.MonkeyPatch) -> None:
    """An error keeps its msgid: made while Danish applied, read after English was chosen,
    it is English (and str() stays English for logs, whatever the language)."""
    from hardware.errors import CameraUnavailableError, missing_part_message
    from station.core.cpr import CprError, parse_cpr
    from station.keys.pin_guard import WrongPin

    with pytest.raises(CprError) as bad_cpr:
        parse_cpr("12345")
    camera = CameraUnavailableError("camera /dev/video0 gave no frame")
    wrong_pin = WrongPin(retry_after_seconds=30)

    assert bad_cpr.value.user_message == (
        "CPR-nummeret har for få cifre (5 af 10). Skriv CPR-nummeret som DDMMÅÅ-XXXX (10 cifre)."
    )
    assert camera.user_message.startswith("Kameraet virker ikke.")
    assert wrong_pin.user_message == "Forkert PIN-kode. Prøv igen om 30 sekunder."
    assert missing_part_message("camera").startswith("Kameraet er ikke fundet.")

    language.setenv("KONTAKTSTATION_LANG", "en")
    assert bad_cpr.value.user_message == (
        "The CPR number has too few digits (5 of 10). "
        "Write the CPR number as DDMMYY-XXXX (10 digits)."
    )
    assert camera.user_message == (
        "The camera does not work. Check that the camera is plugged in, and restart the "
        "station. Contact IT if that does not help."
    )
    assert wrong_pin.user_message == "Wrong PIN. Try again in 30 seconds."
    assert missing_part_message("camera").startswith("The camera was not found.")
    assert str(bad_cpr.value) == "CPR number rejected: wrong shape"
    assert str(camera) == "camera /dev/video0 gave no frame"


def test_the_hub_and_the_agent_speak_english_too(language: pytest.MonkeyPatch) -> None:
    from hub.errors import LinkExpired
    from provisioning.staff import USER_MESSAGES
    from station.daemon.errors import ApiError

    expired = LinkExpired()
    conflict = ApiError.conflict("the session moved on")
    assert expired.user_message == "Linket er udløbet. Aftal en ny tid med plejehjemmet."
    assert i18n._(USER_MESSAGES["code_expired"]) == "Koden er udløbet. Bed IT om en ny."
    language.setenv("KONTAKTSTATION_LANG", "en")
    assert expired.user_message == "The link has expired. Book a new time with the care home."
    assert conflict.user_message == (
        "That cannot be done right now. Refresh the screen and try again."
    )


def test_the_care_record_stays_danish_whatever_the_ui_speaks(
    language: pytest.MonkeyPatch,
) -> None:
    from station.core.model import ConsultationType
    from station.export.summary import record_text

    language.setenv("KONTAKTSTATION_LANG", "en")
    assert ConsultationType.VIDEO_CONSULTATION.label_da == "Videokonsultation"
    assert record_text("Resident: {who}", who="X") == "Borger: X"


def test_lazy_text_fills_in_its_parameters_after_translating(
    language: pytest.MonkeyPatch,
) -> None:
    text = i18n.LazyText("{n} minutes", n=16)
    assert str(text) == "16 minutter"
    assert text.translated("en") == "16 minutes"
    assert i18n.translate("not a msgid at all") == "not a msgid at all"


def test_it_s_configuration_sets_the_language_unless_the_environment_overrides(
    language: pytest.MonkeyPatch,
) -> None:
    from station.core.cpr import CprError

    error = CprError("CPR number rejected: empty")
    assert i18n.adopt_language("en") is True
    assert error.user_message.startswith("The CPR number is not valid.")
    language.setattr(i18n, "_language", None)
    language.setenv("KONTAKTSTATION_LANG", "da")
    assert i18n.adopt_language("en") is False
    assert error.user_message.startswith("CPR-nummeret er ikke gyldigt.")

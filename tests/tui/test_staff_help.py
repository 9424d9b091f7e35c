"""Issue 17, item 5: help where the work is. F1 (or ``?`` where nothing is being typed) on every
staff screen shows that screen's help, in Danish, fitting the station's screen; the printed
quick guide (``kontaktstation guide``) is made from the same texts.

And what the help found on its way: a dialog opened over the call (the help, "End the call?",
the GP's code) was centred on the whole screen, where in the kiosk the GP's video window
covers the top 60 %: each now keeps to the rows below the video.
"""

from __future__ import annotations

import html
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.screen import Screen
from textual.widgets import Button, Static, TextArea

from station.i18n import set_language
from tests.integration.daemon_harness import short_socket_dir
from tests.tui.fit import assert_fits
from tests.tui.station_screen import STATION_SIZES
from tests.tui.test_staff_gp_link import CODE, CODE_URL, GP_URL
from tests.tui.test_staff_support import Station, seed, threaded_station, wait_for
from tests.tui.test_station_fit import SCREENS, attended_call, settle, today, wrap_up
from tui.staff.guide import guide_html, guide_text
from tui.staff.help import GUIDE_TOPICS, TOPICS, topic
from tui.staff.screens.base import StaffScreen
from tui.staff.screens.dialogs import ConfirmDialog
from tui.staff.screens.enroll import EnrollScreen
from tui.staff.screens.gp_link import GpLinkScreen
from tui.staff.screens.help import HelpScreen
from tui.staff.screens.pin import PinScreen
from tui.video import VIDEO_TOP_ENV, video_rows

REPO = Path(__file__).resolve().parents[2]
SMALL = STATION_SIZES["1280x720"]
SIZES = sorted(STATION_SIZES.items())
IDS = [name for name, _size in SIZES]

#: Each screen (reached as staff reach it, tests/tui/test_station_fit.py) and its help; a
#: dialog's help is the screen's under it.
HELPED = {
    "log_in": "unlock",
    "enroll": "enroll",
    "today": "today",
    "appointment_dialog": "today",
    "resident_with_cpr": "today",
    "precheck": "precheck",
    "attended_call": "call",
    "wrap_up": "wrapup",
}


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    with short_socket_dir() as path:
        yield path


@pytest.fixture
def station(data_dir: Path, socket_dir: Path) -> Iterator[Station]:
    with threaded_station(data_dir, socket_dir, prepare=seed) as running:
        yield running


def _steps(help_screen: Screen[Any]) -> list[str]:
    return [str(step.render()) for step in help_screen.query(".help-step").results(Static)]


def test_every_staff_screen_has_help_and_every_help_a_screen() -> None:
    screens = [*StaffScreen.__subclasses__(), PinScreen, EnrollScreen]
    keys = {cls.__name__: getattr(cls, "HELP_TOPIC", None) for cls in screens}
    assert all(key in TOPICS for key in keys.values()), keys
    assert set(keys.values()) == set(TOPICS) == set(GUIDE_TOPICS)


@pytest.mark.parametrize("name", sorted(HELPED))
async def test_f1_shows_the_help_of_the_screen_in_front_and_closes_again(
    station: Station, name: str
) -> None:
    async with station.app(live_interval=0).run_test(size=SMALL) as pilot:
        await SCREENS[name](pilot, station)
        under = pilot.app.screen
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))
        shown = pilot.app.screen
        assert isinstance(shown, HelpScreen)
        expected = topic(HELPED[name])
        assert shown.topic is expected
        assert _steps(shown) == [f"{n}. {step}" for n, step in enumerate(expected.steps, 1)]
        assert str(shown.query_one(".title", Static).render()) == f"Hjælp: {expected.title}"
        await settle(pilot)
        assert_fits(shown)
        await pilot.press("f1")
        await wait_for(pilot, lambda: pilot.app.screen is under)


async def test_question_mark_opens_help(station: Station) -> None:
    async with station.app(live_interval=0).run_test(size=SMALL) as pilot:
        await today(pilot, station)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(pilot.app.screen, HelpScreen))


async def test_question_mark_in_a_text_field_is_typed(station: Station) -> None:
    async with station.app(live_interval=0).run_test(size=SMALL) as pilot:
        await wrap_up(pilot, station)
        note = pilot.app.screen.query_one("#note-text", TextArea)
        note.focus()
        note.move_cursor(note.document.end)
        await pilot.press("question_mark")
        await pilot.pause(0.3)
        assert not isinstance(pilot.app.screen, HelpScreen)
        assert note.text.endswith("?")


def _below(screen: Screen[Any], covered: int, rows: int) -> None:
    """Everything the dialog draws lies in the rows the video leaves free."""
    drawn = [w for w in screen.query("*") if isinstance(w, Static | Button) and w.display]
    assert drawn
    for widget in drawn:
        region = widget.region
        if region.height == 0:
            continue
        assert region.y >= covered and region.bottom <= rows, (widget, region, covered)


@pytest.mark.parametrize(("screen_name", "size"), SIZES, ids=IDS)
async def test_dialogs_over_the_call_stay_below_the_video_in_the_kiosk(
    station: Station, monkeypatch: pytest.MonkeyPatch, screen_name: str, size: tuple[int, int]
) -> None:
    """The kiosk unit's ``KONTAKTSTATION_VIDEO_TOP=60``: the help, the GP's code (read out over
    the phone) and "End the call?" opened over the call keep below the video's window, whole."""
    monkeypatch.setenv(VIDEO_TOP_ENV, "60")
    covered = video_rows(size[1])
    async with station.app(live_interval=0).run_test(size=size) as pilot:
        await attended_call(pilot, station)
        call = pilot.app.screen
        # The help.
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))
        await settle(pilot)
        assert_fits(pilot.app.screen)
        _below(pilot.app.screen, covered, size[1])
        assert len(_steps(pilot.app.screen)) == len(topic("call").steps)
        await pilot.press("escape")
        await wait_for(pilot, lambda: pilot.app.screen is call)
        # The GP's code, as the app opens it after the call screen shows.
        code = GpLinkScreen(GP_URL, CODE, CODE_URL)
        pilot.app.push_screen(code)
        await wait_for(pilot, lambda: pilot.app.screen is code)
        await settle(pilot)
        assert_fits(code)
        _below(code, covered, size[1])
        assert "KX4M-7QP2" in str(code.query_one("#gp-code", Static).render())
        assert "hub.example.dk/kode" in str(code.query_one("#gp-address", Static).render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: pilot.app.screen is call)
        # "End the call?"
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog))
        await settle(pilot)
        assert_fits(pilot.app.screen)
        _below(pilot.app.screen, covered, size[1])
        await pilot.press("escape")
        await wait_for(pilot, lambda: pilot.app.screen is call)


async def test_outside_a_call_dialogs_use_the_whole_screen(
    station: Station, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The video window exists only in a call: elsewhere a dialog is centred as before."""
    monkeypatch.setenv(VIDEO_TOP_ENV, "60")
    async with station.app(live_interval=0).run_test(size=SMALL) as pilot:
        await today(pilot, station)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))
        shown = pilot.app.screen
        assert not shown.has_class("below-video")
        assert shown.styles.padding.top == 0


@pytest.mark.parametrize("language", ["da", "en"])
def test_the_quick_guide_is_the_help_screens_text(language: str) -> None:
    set_language(language)
    try:
        text, page = guide_text(), guide_html()
        for key in GUIDE_TOPICS:
            entry = topic(key)
            assert entry.title in text
            for step in entry.steps:
                assert step in text
                assert html.escape(step) in page
    finally:
        set_language("da")
    # Every step is translated (the catalogue test holds that too), so the two differ.
    set_language("en")
    english = guide_text()
    set_language("da")
    assert english != guide_text()


def test_kontaktstation_guide_prints_it(tmp_path: Path) -> None:
    """The console command as IT runs it: plain text on stdout, and a printable HTML file."""
    command = [str(Path(sys.prefix) / "bin" / "kontaktstation"), "guide"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=60, check=True,
        env={"PATH": "/usr/bin:/bin", "KONTAKTSTATION_LANG": "da"},
    )  # fmt: skip
    assert done.stdout.startswith("KontaktStation — lynvejledning for personalet\n")
    assert topic("unlock").steps_msgids[0] not in done.stdout  # Danish, not the msgids
    out = tmp_path / "guide.html"
    subprocess.run([*command, "--html", "--lang", "en", "-o", str(out)], check=True, timeout=60)
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and '<html lang="en">' in page
    assert "KontaktStation — quick guide for staff" in page
    # A place it cannot write: one line, no traceback.
    nowhere = subprocess.run(
        [*command, "-o", str(tmp_path / "missing" / "guide.txt")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert nowhere.returncode == 1 and "Traceback" not in nowhere.stderr
    assert "cannot write" in nowhere.stderr and "No such file or directory" in nowhere.stderr

"""Names and notes are data, never markup or terminal codes, and never break the layout.

Two ways hostile text can arrive: typed by staff (the domain refuses control characters,
bidi controls and over-long names, and the dialog shows its Danish reason), or already in
the store (written by a faulty or hostile client, bypassing the domain): then the UI shows it
literally, with controls made visible, and cut with an ellipsis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from rich.text import Text
from textual.widgets import Button, DataTable, Input, Static, TextArea

from tests.integration.daemon_harness import short_socket_dir
from tests.tui.test_staff_support import (
    SIZE,
    Station,
    press_leaving,
    seed,
    staff_station,
    unlock,
    wait_for,
)
from tui.safe_text import ELLIPSIS, clean, literal
from tui.staff.screens.resident import ResidentDetail, ResidentDialog
from tui.staff.screens.today import TodayScreen
from tui.staff.screens.wrapup import WrapUpScreen

MARKUP = "[bold red]Fed[/] [link=https://evil.example]klik[/link] [/]"
ANSI = "Ole \x1b[31mRød\x1b[0m \x1b]0;title\x07 \x1b[2J"
CONTROL = "Bo\x00\x07\x08\r\nLine\x7f\x9b"
BIDI = "Anna \u202eNESNAH\u202c \u200f\u2066x\u2069"
EMOJI = "Grethe 👩‍👩‍👧 🎉 ❤️"
#: Emoji the domain accepts in a name (no zero-width joiner, which is a format character).
EMOJI_NAME = "Grethe 🎉 ❤️ 👍🏽"
HUGE = "Å" * 10_000
HOSTILE = (MARKUP, ANSI, CONTROL, BIDI, EMOJI, HUGE)


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    with short_socket_dir() as path:
        yield path


@pytest.fixture
async def station(data_dir: Path, socket_dir: Path) -> AsyncIterator[Station]:
    async with staff_station(data_dir, socket_dir) as running:
        await seed(running, raw_names=HOSTILE)
        yield running


def assert_safe(text: str) -> None:
    """No terminal control can reach the screen from ``text``."""
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
    assert not any(ord(c) < 32 and c != "\n" for c in text)
    assert not any(c in text for c in "\u202e\u202c\u200f\u2066\u2069")


def test_clean_makes_controls_visible_and_cuts_long_text() -> None:
    assert clean(MARKUP, 200) == MARKUP  # markup is text, shown as typed
    assert clean(ANSI, 200) == "Ole ␛[31mRød␛[0m ␛]0;title␇ ␛[2J"
    assert clean(CONTROL, 200) == "Bo␀␇␈␍␊Line␡\ufffd"
    assert clean(CONTROL, 200, keep_newlines=True) == "Bo␀␇␈␍\nLine␡\ufffd"
    assert clean(BIDI, 200) == "Anna \ufffdNESNAH\ufffd \ufffd\ufffdx\ufffd"
    assert clean(EMOJI, 200) == EMOJI  # the joiner keeps the family together
    cut = clean(HUGE, 40)
    assert len(cut) == 40 and cut.endswith(ELLIPSIS)
    for value in HOSTILE:
        assert_safe(clean(value, 20_000))
    rendered = literal(MARKUP)
    assert isinstance(rendered, Text) and rendered.plain == MARKUP and not rendered.spans


async def test_stored_hostile_names_show_literally_and_keep_the_layout(station: Station) -> None:
    app = station.app(live_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        today = app.screen
        assert isinstance(today, TodayScreen)
        queue = today.query_one("#queue", DataTable)
        names = [str(queue.get_row_at(i)[1]) for i in range(queue.row_count)]
        assert names[3] == clean(MARKUP, 28)  # literally, not bold red
        assert names[4].startswith("Ole ␛[31mRød")
        assert names[8] == clean(HUGE, 28) and names[8].endswith(ELLIPSIS)
        for name in names:
            assert_safe(name)
        # The layout: fixed columns, nothing wider than the terminal.
        assert sum(c.get_render_width(queue) for c in queue.columns.values()) <= SIZE[0]
        assert queue.virtual_size.width <= SIZE[0]
        screenshot = app.export_screenshot()
        assert "evil.example" not in screenshot.split("klik")[0] or "[link=" in screenshot
        assert "\x1b" not in screenshot
        # The record itself: every field literal, long ones cut.
        queue.focus()
        await pilot.press(*(["down"] * 8), "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ResidentDetail))
        values = [str(s.render()) for s in app.screen.query(".value").results(Static)]
        assert values and all(len(v) <= 2000 for v in values)
        assert values[0].endswith(ELLIPSIS)
        for value in values:
            assert_safe(value)


async def test_the_domain_refuses_hostile_names_with_a_clear_danish_message(
    station: Station,
) -> None:
    app = station.app(live_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        today = app.screen
        assert isinstance(today, TodayScreen)
        before = len(today.appointments[0].residents)
        for name, expected in (
            (ANSI, "Navnet indeholder tegn, der ikke kan bruges."),
            (BIDI, "Navnet indeholder tegn, der ikke kan bruges."),
            ("A" * 201, "Navnet må højst være 200 tegn."),
            ("   ", "Navnet skal udfyldes."),
        ):
            await pilot.press("r")
            await wait_for(pilot, lambda: isinstance(app.screen, ResidentDialog))
            dialog = app.screen
            dialog.query_one("#name", Input).value = name
            dialog.query_one("#birth", Input).value = "01-01-1940"
            dialog.query_one("#room", Input).value = "1"
            dialog.query_one("#save", Button).press()
            await pilot.pause()
            error = dialog.query_one("#dialog-error", Static)
            assert str(error.render()) == expected and error.display
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, TodayScreen))
        # Markup and emoji are fine names: kept exactly as typed.
        for name in (MARKUP, EMOJI_NAME):
            await pilot.press("r")
            await wait_for(pilot, lambda: isinstance(app.screen, ResidentDialog))
            dialog = app.screen
            dialog.query_one("#name", Input).value = name
            dialog.query_one("#birth", Input).value = "01-01-1940"
            dialog.query_one("#room", Input).value = "1"
            dialog.query_one("#save", Button).press()
            await wait_for(pilot, lambda: isinstance(app.screen, TodayScreen))
        await wait_for(pilot, lambda: len(today.appointments[0].residents) == before + 2)
        stored = [r.name for r in today.appointments[0].residents[-2:]]
        assert stored == [MARKUP, EMOJI_NAME]


async def test_hostile_notes_are_sealed_as_written_and_shown_safely(station: Station) -> None:
    from station.core.session import CallOutcome

    app = station.app(live_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await press_leaving(pilot, "c")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "PreCheckScreen")
        await press_leaving(pilot, "ctrl+s")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "CallScreen")
        station.service.call_gp_admitted()
        station.service.call_ended(CallOutcome.HUNG_UP_GP)
        await wait_for(pilot, lambda: isinstance(app.screen, WrapUpScreen))
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen)
        await wait_for(pilot, lambda: wrap.appointment is not None)
        note = MARKUP + ANSI + CONTROL + BIDI + EMOJI
        wrap.query_one("#note-text", TextArea).text = note
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: len(wrap.notes) == 1)
        assert wrap.notes[0]["text"] == note.strip()  # sealed exactly as written
        shown = str(wrap.query_one("#saved-note", Static).render())
        assert "[bold red]Fed[/]" in shown
        assert_safe(shown)
        table = wrap.query_one("#wrapup-residents", DataTable)
        for i in range(table.row_count):
            for cell in table.get_row_at(i):
                assert_safe(str(cell))

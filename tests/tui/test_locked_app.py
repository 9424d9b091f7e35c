"""The locked UI against a real stationd: lock screen, reminder, private call, log-in."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from kontaktstation.demo_data import DEMO_CLINIC
from station import i18n
from tests.tui.test_locked_harness import (
    PERSONAL,
    SIZE,
    DaemonThread,
    RecordingCallStation,
    make_app,
    screen_text,
    station,
    wait_until,
)
from tui.locked.link import CallAction, SupervisorSocket
from tui.locked.screens import LockScreen, PrivateCallScreen
from tui.locked.widgets import MAX_NAME, qr_lines
from tui.safe_text import clean

__all__ = ["station"]  # the fixture, re-exported for pytest


@pytest.fixture(autouse=True)
def danish(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(i18n, "_language", "da")


async def test_lock_screen_shows_times_and_clinic_and_the_due_soon_reminder(
    station: DaemonThread,
) -> None:
    await station.arun(station.seed())
    app = make_app(station)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.loaded, pilot)
        await pilot.pause()
        text = screen_text(app)
        assert isinstance(app.screen, LockScreen)
        assert "Plejecenter Solbakken" in text
        assert "09:50" in text and "onsdag den 25. november" in text
        assert "Stationen er låst" in text
        assert "10:00–10:30" in text and "11:00–11:15" in text
        assert DEMO_CLINIC.name in text
        assert "Videokonsultation om 10 min." in text
        assert not [p for p in PERSONAL if p in text]


async def test_the_reminder_appears_when_the_clock_reaches_15_minutes_before(
    station: DaemonThread,
) -> None:
    await station.arun(station.seed(round_in=timedelta(minutes=40)))
    app = make_app(station, tick_seconds=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.loaded, pilot)
        assert "Videokonsultation om" not in screen_text(app)
        assert not app.lock_screen.query_one("#reminder").display
        station.clock.advance(timedelta(minutes=26))
        await wait_until(lambda: "Videokonsultation om 14 min." in screen_text(app), pilot)
        assert app.lock_screen.query_one("#reminder").display
        station.clock.advance(timedelta(minutes=15))
        await wait_until(lambda: "Videokonsultationen er begyndt!" in screen_text(app), pilot)


async def test_private_call_shows_the_residents_controls_and_returns_to_the_lock_screen(
    station: DaemonThread,
) -> None:
    seeded = await station.arun(station.seed())
    app = make_app(station)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.loaded, pilot)
        assert await station.arun(station.go_private(seeded[0].id)) == "in_call_private"
        await wait_until(lambda: isinstance(app.screen, PrivateCallScreen), pilot)
        await pilot.pause()
        text = screen_text(app)
        for label in ("Højere", "Lavere", "Slå mikrofonen fra", "Kald personalet"):
            assert label in text
        assert "Afslut samtalen" in text
        assert "Privat samtale med din læge" in text
        assert not [p for p in PERSONAL if p in text]
        await station.arun(station.end_private_call())
        await wait_until(lambda: isinstance(app.screen, LockScreen), pilot)


async def test_call_controls_reach_stationd_and_a_refusal_is_shown_plainly(
    station: DaemonThread,
) -> None:
    seeded = await station.arun(station.seed())
    app = make_app(station)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.loaded, pilot)
        await station.arun(station.go_private(seeded[0].id))
        await wait_until(lambda: isinstance(app.screen, PrivateCallScreen), pilot)
        await wait_until(lambda: "Kald personalet" in screen_text(app), pilot)
        await pilot.pause()
        await pilot.click("#louder")
        await wait_until(lambda: bool(app.private_screen.notice), pilot)
        # Either the call engine took it, or its refusal reads as Danish the resident can act on.
        assert app.control_log == [CallAction.LOUDER]
        assert app.private_screen.notice in (
            "Højere.",
            "Knappen virker ikke lige nu. Tryk på «Kald personalet».",
        )


async def test_end_call_needs_a_second_press(station: DaemonThread) -> None:
    seeded = await station.arun(station.seed())
    link = RecordingCallStation(station.socket_path)
    app = make_app(station, link=link)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.loaded, pilot)
        await station.arun(station.go_private(seeded[0].id))
        await wait_until(lambda: isinstance(app.screen, PrivateCallScreen), pilot)
        await wait_until(lambda: "Kald personalet" in screen_text(app), pilot)
        await pilot.pause()
        app.private_screen.query_one("#end").active_effect_duration = 0  # type: ignore[attr-defined]
        await pilot.click("#end")
        await pilot.pause()
        assert "Tryk igen for at afslutte" in screen_text(app)
        assert link.sent == []
        await pilot.click("#end")
        await wait_until(lambda: link.sent == [CallAction.END], pilot)
        await pilot.click("#microphone")
        await wait_until(lambda: not app.private_screen.microphone_on, pilot)
        assert "Slå mikrofonen til" in screen_text(app)
        assert link.sent[-1] is CallAction.MICROPHONE_OFF


async def test_log_in_asks_the_supervisor(station: DaemonThread, tmp_path: Path) -> None:
    requests: list[bytes] = []

    async def supervisor(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readline())
        writer.write(b"ok\n")
        await writer.drain()
        writer.close()

    path = tmp_path / "c.sock"
    server = await asyncio.start_unix_server(supervisor, path=str(path))
    app = make_app(station, login=SupervisorSocket(path))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(lambda: app.loaded, pilot)
            await pilot.press("enter")  # the focused "Log ind" button
            await wait_until(lambda: requests == [b"login\n"], pilot)
            await wait_until(lambda: "Starter personaleskærmen" in screen_text(app), pilot)
    finally:
        server.close()
        await server.wait_closed()


async def test_the_pointer_selects_no_text(station: DaemonThread) -> None:
    """A triple click (Textual's "select all") on the lock screen selects nothing: in the
    booted appliance it highlighted every text on the screen, which could then be copied."""
    app = make_app(station)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.loaded, pilot)
        await pilot.click(offset=(10, 3), times=3)
        await pilot.pause()
        assert app.screen.selections == {}
        assert app.screen.get_selected_text() is None


async def test_log_in_without_a_supervisor_says_so(station: DaemonThread) -> None:
    app = make_app(station)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.loaded, pilot)
        await pilot.press("l")
        await wait_until(lambda: "Log ind er ikke muligt" in screen_text(app), pilot)


async def test_clinic_names_are_shown_literally(station: DaemonThread) -> None:
    # The store accepts printable text only (control characters are covered by tui.safe_text).
    evil = "[bold red]Klinik[/] [link=https://x.example]rød 😀 " + "x" * 150
    await station.arun(station.seed(clinic_name=evil))
    app = make_app(station)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.loaded, pilot)
        await pilot.pause()
        text = screen_text(app)
        assert "[bold red]Klinik[/] [link=https://x.example]" in text
        assert "x" * 150 not in text and "xxx…" in text  # truncated, not wrapped
        # The layout held: the log-in button is still on screen.
        assert "Log ind" in text


def test_outside_text_shows_controls_as_symbols_and_is_cut_to_fit() -> None:
    # The one sanitizer of both UIs: an escape can move no cursor, a bidi mark reorders
    # nothing, a new line breaks no row, and a long clinic name keeps the layout whole.
    assert clean("a\x1b[2Jb\u200fc\nd", MAX_NAME) == "a\u241b[2Jb\ufffdc\u240ad"
    assert len(clean("y" * 10_000, MAX_NAME)) == MAX_NAME


async def test_english_by_configuration(
    station: DaemonThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(i18n, "_language", None)
    monkeypatch.setenv("KONTAKTSTATION_LANG", "en")
    app = make_app(station)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.loaded, pilot)
        await pilot.pause()
        text = screen_text(app)
        assert "Station locked" in text and "Log in" in text
        assert "Wednesday 25. November" in text


async def test_connection_loss_is_shown_and_recovered(data_dir: Path) -> None:
    from station.core.clock import FakeClock
    from tests.integration.daemon_harness import enrol, short_socket_dir
    from tests.tui.test_locked_harness import T0

    enrol(data_dir)
    with short_socket_dir() as socket_dir:
        thread = DaemonThread(data_dir, socket_dir, FakeClock(T0))
        app = make_app(thread)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(lambda: "Forbinder til stationen" in screen_text(app), pilot)
            with thread:
                await wait_until(lambda: app.connected, pilot)
                await wait_until(lambda: "Forbinder til stationen" not in screen_text(app), pilot)


def test_qr_lines_encode_the_payload() -> None:
    lines = qr_lines("KS-ENROL-1234")
    assert len({len(line) for line in lines}) == 1
    assert set("".join(lines)) <= {" ", "█", "▀", "▄"}
    # A quiet zone of light modules all round (the top half of the first line, the
    # first and last columns).
    assert set(lines[0]) <= {"█", "▀"}
    assert {line[0] for line in lines[:-1]} == {"█"} and {line[-1] for line in lines[:-1]} == {"█"}
    import segno

    assert (
        len(lines)
        == (
            segno.make("KS-ENROL-1234", error="l", micro=False).symbol_size(scale=1, border=1)[1]
            + 1
        )
        // 2
    )

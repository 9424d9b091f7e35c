"""Escape test: nothing a resident presses or touches leaves the private-call screen.

Every printable key, F1-F12, ctrl and alt combinations (ctrl+c, ctrl+z, ctrl+\\, ctrl+p,
ctrl+q ...), tab and escape, then hundreds of random clicks: the app keeps running, stays on
the private screen with no other screen pushed, and never draws personal data (the daemon
holds the demo residents, sealed; the locked UI could not show them if it tried).

Call controls are recorded instead of sent (:class:`RecordingCallStation`): a stray double
"end call" must not end the session under the test; the state still comes from stationd.
"""

from __future__ import annotations

import random
import string

import pytest

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
from tui.locked.app import LockedApp
from tui.locked.screens import PrivateCallScreen

__all__ = ["station"]

pytestmark = pytest.mark.slow

NAMED = [
    "space", "enter", "tab", "shift+tab", "escape", "backspace", "delete", "insert", "home",
    "end", "pageup", "pagedown", "up", "down", "left", "right",
    *(f"f{n}" for n in range(1, 13)),
    *(f"ctrl+f{n}" for n in range(1, 13)),
    *(f"ctrl+{c}" for c in string.ascii_lowercase),
    "ctrl+backslash", "ctrl+right_square_bracket", "ctrl+circumflex_accent", "ctrl+underscore",
    "ctrl+space", "ctrl+at", "ctrl+left", "ctrl+right", "ctrl+up", "ctrl+down", "ctrl+home",
    "ctrl+end", "ctrl+shift+q", "ctrl+shift+c", "ctrl+shift+p", "ctrl+shift+z",
    *(f"alt+{c}" for c in string.ascii_lowercase + string.digits),
    "alt+f4", "alt+tab", "alt+escape", "alt+enter", "alt+space", "ctrl+alt+delete",
    "ctrl+alt+backspace", "super+q", "super+c",
]  # fmt: skip
PRINTABLE = [c for c in string.printable if not c.isspace()] + ["æ", "ø", "å", "Æ", "Ø", "Å"]


def assert_still_private(app: LockedApp) -> None:
    assert app.is_running and app.return_code is None
    assert isinstance(app.screen, PrivateCallScreen)
    # Textual's blank default screen sits under the app's own; nothing is pushed on top.
    assert app.screen_stack[1:] == [app.private_screen], "a screen was pushed or popped"
    assert not app.screen.query("CommandPalette")
    text = screen_text(app)
    assert not [p for p in PERSONAL if p in text]


async def test_no_key_and_no_click_leaves_the_private_call_screen(
    station: DaemonThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(i18n, "_language", "da")
    seeded = await station.arun(station.seed())
    link = RecordingCallStation(station.socket_path)
    app = make_app(station, link=link)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.loaded, pilot)
        await station.arun(station.go_private(seeded[0].id))
        await wait_until(lambda: isinstance(app.screen, PrivateCallScreen), pilot)
        await wait_until(lambda: "Kald personalet" in screen_text(app), pilot)
        for key in NAMED + PRINTABLE:
            await pilot.press(key)
            assert_still_private(app)
        rng = random.Random(4711)
        width, height = SIZE
        for _ in range(300):
            await pilot.click(offset=(rng.randrange(width), rng.randrange(height)))
            assert_still_private(app)
        await pilot.pause()
        assert_still_private(app)
        svg = app.export_screenshot()
        assert not [p for p in PERSONAL if p in svg]
        # The controls did work while all this went on (they were recorded, not lost).
        assert link.sent
    assert app.return_code is None or app.return_code == 0


async def test_quit_actions_do_nothing_in_a_private_call(station: DaemonThread) -> None:
    seeded = await station.arun(station.seed())
    app = make_app(station, link=RecordingCallStation(station.socket_path), allow_quit=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.loaded, pilot)
        await station.arun(station.go_private(seeded[0].id))
        await wait_until(lambda: isinstance(app.screen, PrivateCallScreen), pilot)
        for action in ("quit", "app.quit", "help_quit", "suspend_process", "command_palette"):
            await app.run_action(action)
            await pilot.pause()
            assert_still_private(app)
        assert not app.ENABLE_COMMAND_PALETTE
        assert app.BINDINGS == []
        assert not [b for b in app._bindings if b[1].action in ("quit", "app.quit")]

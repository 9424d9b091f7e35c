"""The staff call screen's audio only: its label follows stationd's ``call`` events, and its
button asks stationd (a real daemon; this harness has no call engine, so stationd refuses and
the screen goes back to what is true)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from textual.widgets import Button, Static

from station import i18n
from tests.integration.daemon_harness import short_socket_dir
from tests.tui.test_gp_left_screens import in_call, text_of
from tests.tui.test_locked_harness import SIZE
from tests.tui.test_staff_support import Station, seed, staff_station, wait_for

POOR = "Kun lyd — dårlig forbindelse"


@pytest.fixture(autouse=True)
def danish(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(i18n, "_language", "da")


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    with short_socket_dir() as path:
        yield path


@pytest.fixture
async def staff(data_dir: Path, socket_dir: Path) -> AsyncIterator[Station]:
    async with staff_station(data_dir, socket_dir) as running:
        await seed(running)
        yield running


async def test_audio_only_label_and_button_follow_stationd(staff: Station) -> None:
    app = staff.app(live_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        call = await in_call(pilot, staff)
        status = call.query_one("#call-status", Static)
        button = call.query_one("#btn-audio-only", Button)
        assert "Kun lyd" not in text_of(status)
        assert str(button.label) == "Kun lyd"

        # The link cannot carry video: stationd says so; video comes back by itself.
        staff.service.publish_call_status(
            "controls", audio_only=True, audio_only_reason="poor_connection", muted=False
        )
        await wait_for(pilot, lambda: POOR in text_of(status))
        assert str(button.label) == "Kun lyd"  # staff may still choose it
        staff.service.publish_call_status("controls", audio_only=False, audio_only_reason=None)
        await wait_for(pilot, lambda: "Kun lyd" not in text_of(status))

        # Chosen (by staff elsewhere, or by the GP): the label, and the button brings video back.
        staff.service.publish_call_status("controls", audio_only=True, audio_only_reason="choice")
        await wait_for(pilot, lambda: "Kun lyd" in text_of(status))
        assert POOR not in text_of(status)
        await wait_for(pilot, lambda: str(button.label) == "Vis video igen")
        staff.service.publish_call_status("controls", audio_only=False, audio_only_reason=None)
        await wait_for(pilot, lambda: str(button.label) == "Kun lyd")

        # The key asks stationd; without a call engine it refuses, and nothing pretends.
        notices = len(app._notifications)
        await pilot.press("l")
        await wait_for(pilot, lambda: len(app._notifications) > notices)  # the refusal, shown
        await wait_for(pilot, lambda: call.audio_only is None and str(button.label) == "Kun lyd")
        assert "Kun lyd" not in text_of(status)

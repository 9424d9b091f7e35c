"""Issue 17, item 4: the resident's private-call controls fit the kiosk and are hit at their
centres.

During a private call the GP's video fills labwc's top region and the locked UI has the ``ui``
region below it: 97 x 10 cells at 1280x720, 146 x 16 at 1920x1080
(``tests/tui/station_screen.py``). At those sizes, and at the whole screen, the private screen
fits (no scroll bar, every button whole), every button is a finger's size, and a click at each
button's centre (screen coordinates, as a touch screen sends it) is that button's action.
"""

from __future__ import annotations

import pytest

from tests.tui.fit import assert_fits
from tests.tui.station_screen import STATION_SIZES, UI_REGION_SIZES
from tests.tui.test_locked_harness import (
    DaemonThread,
    RecordingCallStation,
    make_app,
    station,
    wait_until,
)
from tui.locked.link import CallAction
from tui.locked.screens import PrivateCallScreen

__all__ = ["station"]  # the fixture, re-exported for pytest

SIZES = {
    **{f"region-{k}": v for k, v in UI_REGION_SIZES.items()},
    **{f"screen-{k}": v for k, v in STATION_SIZES.items()},
}
#: A finger's size at 13 x 25 px cells: at least 12 x 3 cells (156 x 75 px).
MIN_BUTTON = (12, 3)
#: Each button, and what a press at its centre must send (the end button needs two).
BUTTONS = (
    ("louder", [CallAction.LOUDER]),
    ("softer", [CallAction.SOFTER]),
    ("microphone", [CallAction.MICROPHONE_OFF]),
    ("call-staff", [CallAction.CALL_STAFF]),
    ("end", [CallAction.END]),
)


@pytest.mark.parametrize("size", sorted(SIZES), ids=sorted(SIZES))
async def test_private_controls_fit_and_are_hit_at_their_centres(
    station: DaemonThread, size: str
) -> None:
    seeded = await station.arun(station.seed())
    link = RecordingCallStation(station.socket_path)
    app = make_app(station, link=link)
    async with app.run_test(size=SIZES[size]) as pilot:
        await wait_until(lambda: app.loaded, pilot)
        await station.arun(station.go_private(seeded[0].id))
        await wait_until(lambda: isinstance(app.screen, PrivateCallScreen), pilot)
        await wait_until(lambda: any(str(b.label) for b in app.screen.query("#microphone")), pilot)
        await pilot.pause()
        screen = app.screen
        assert_fits(screen)
        for button_id, expected in BUTTONS:
            button = screen.query_one(f"#{button_id}")
            button.active_effect_duration = 0  # type: ignore[attr-defined]
            region = button.region
            assert region.width >= MIN_BUTTON[0] and region.height >= MIN_BUTTON[1], (
                button_id,
                region,
            )
            x, y = region.x + region.width // 2, region.y + region.height // 2
            hit, _region = screen.get_widget_at(x, y)
            assert hit is button, (button_id, hit)
            before = len(link.sent)
            presses = 2 if button_id == "end" else 1
            for _ in range(presses):
                await pilot.click(offset=(x, y))
                await pilot.pause()
            await wait_until(lambda n=before: len(link.sent) > n, pilot)  # type: ignore[misc]
            assert link.sent[before:] == expected, (button_id, link.sent)

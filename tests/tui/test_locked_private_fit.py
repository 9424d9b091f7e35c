"""Issue 17, item 4: the resident's private-call controls fit the kiosk and are hit at their
centres.

During a private call the GP's video window lies over the top 60 % of the kiosk's screen and
the locked UI keeps the private screen's content in the rows below it: 97 x 10 cells at
1280x720, 146 x 15 at 1920x1080 (``tests/tui/station_screen.py``). At those sizes, at the
whole screen, and at the whole screen with the video above (``KONTAKTSTATION_VIDEO_TOP``, as
the kiosk unit sets it), the private screen fits (no scroll bar, every button whole, nothing
under the video), every button is a finger's size, and a click at each button's centre
(screen coordinates, as a touch screen sends it) is that button's action.
"""

from __future__ import annotations

import pytest

from tests.tui.fit import assert_fits
from tests.tui.station_screen import BELOW_VIDEO_SIZES, STATION_SIZES
from tests.tui.test_locked_harness import (
    DaemonThread,
    RecordingCallStation,
    make_app,
    station,
    wait_until,
)
from tui.locked.link import CallAction
from tui.locked.screens import PrivateCallScreen
from tui.video import VIDEO_TOP_ENV, video_rows

__all__ = ["station"]  # the fixture, re-exported for pytest

SIZES = {
    **{f"below-video-{k}": v for k, v in BELOW_VIDEO_SIZES.items()},
    **{f"screen-{k}": v for k, v in STATION_SIZES.items()},
    **{f"kiosk-{k}": v for k, v in STATION_SIZES.items()},
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
    station: DaemonThread, size: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    covered = 0
    if size.startswith("kiosk-"):
        monkeypatch.setenv(VIDEO_TOP_ENV, "60")  # as kontaktstation-kiosk.service sets it
        covered = video_rows(SIZES[size][1])
    else:
        monkeypatch.delenv(VIDEO_TOP_ENV, raising=False)
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
        for part in ("#private-title", "#private-status"):
            assert screen.query_one(part).region.y >= covered, (part, covered)
        for button_id, expected in BUTTONS:
            button = screen.query_one(f"#{button_id}")
            button.active_effect_duration = 0  # type: ignore[attr-defined]
            region = button.region
            assert region.width >= MIN_BUTTON[0] and region.height >= MIN_BUTTON[1], (
                button_id,
                region,
            )
            # Nothing of it under the video's window (the rows it covers in the kiosk).
            assert region.y >= covered, (button_id, region, covered)
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

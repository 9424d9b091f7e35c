"""Audio only by choice, both sides: stationd (hub, fake hardware) and Chromium as the GP.

Staff choose it through stationd's API; the GP with the page's button (the data channel).
Either way video stops both ways (counted: Chromium's decoded frames, the station's frame
sink), audio goes on (both sides' counters), both sides say so, the call is not re-dialled
for the missing video, and video comes back by choice.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from .call_harness import StationD, wait_for
from .netns import delegated_to_loopback_namespace
from .test_call_browser import FRAMES_DECODED_JS, admitted_call, scenario

AUDIO_PACKETS_JS = """
async () => {
  const pc = window.kontaktGp.peerConnection();
  let packets = 0;
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") packets += s.packetsReceived || 0;
  });
  return packets;
}
"""


async def counters(st: StationD, page: Page) -> dict[str, int]:
    """Video and audio that arrived so far, at the station and at the GP."""
    media = (await st.call())["media"]
    return {
        "station_video": st.sink.stats("remote").frames,
        "station_audio": int(media["remote_audio_frames"]),
        "gp_video": int(await page.evaluate(FRAMES_DECODED_JS)),
        "gp_audio": int(await page.evaluate(AUDIO_PACKETS_JS)),
    }


async def flow_over(st: StationD, page: Page, seconds: float) -> dict[str, int]:
    """How much of each arrived during ``seconds``."""
    before = await counters(st, page)
    await asyncio.sleep(seconds)
    after = await counters(st, page)
    return {key: after[key] - before[key] for key in before}


async def status(st: StationD) -> tuple[bool, Any]:
    call = await st.call()
    return call.get("audio_only", False), call.get("audio_only_reason")


@pytest.mark.browser
@pytest.mark.slow
def test_audio_only_chosen_by_staff_and_by_the_gp(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def run() -> None:
        async with scenario(tmp_path) as (_hub, st, context):
            page = await admitted_call(st, context)
            attempt = (await st.call())["attempt"]
            label = page.locator("#audio-only-notice")
            button = page.locator("#audio-only")
            await expect(label).to_be_hidden()
            await expect(button).to_have_text("Kun lyd")
            flowing = await flow_over(st, page, 1.0)
            assert all(v > 0 for v in flowing.values()), flowing

            # Staff choose audio only.
            response = await st.http.post("/v1/call/audio-only", json={"on": True}, headers=st.auth)
            assert response.status_code == 200, response.text
            assert response.json()["audio_only"] is True
            assert response.json()["audio_only_reason"] == "choice"
            await expect(label).to_be_visible()
            await expect(label).to_have_text("Kun lyd")
            await expect(button).to_have_text("Vis video igen")
            await asyncio.sleep(1.0)  # frames on their way when it changed
            # Past the frozen-video watchdog's stall time (2 s): nothing is re-dialled.
            paused = await flow_over(st, page, 3.0)
            print("audio only (staff), 3 s:", paused)
            assert paused["station_video"] == 0 and paused["gp_video"] == 0, paused
            assert paused["station_audio"] > 50 and paused["gp_audio"] > 50, paused
            call = await st.call()
            assert call["attempt"] == attempt and call["phase"] == "connected", call
            assert not call["gp"]["video_stalled"]

            # The GP brings video back with the page's button.
            await button.click()
            await wait_for(lambda: _audio_only_is(st, False), what="video back", timeout=10)
            await expect(label).to_be_hidden()
            await expect(button).to_have_text("Kun lyd")
            await asyncio.sleep(1.0)
            back = await flow_over(st, page, 2.0)
            print("video back (GP's choice), 2 s:", back)
            assert all(v > 0 for v in back.values()), back

            # The GP chooses audio only; staff see it and bring video back.
            await button.click()
            await wait_for(lambda: _audio_only_is(st, True), what="GP's audio only", timeout=10)
            await expect(label).to_have_text("Kun lyd")
            await asyncio.sleep(1.0)
            paused = await flow_over(st, page, 2.0)
            assert paused["station_video"] == 0 and paused["gp_video"] == 0, paused
            assert paused["station_audio"] > 0 and paused["gp_audio"] > 0, paused
            response = await st.http.post(
                "/v1/call/audio-only", json={"on": False}, headers=st.auth
            )
            assert response.json()["audio_only"] is False
            await expect(label).to_be_hidden()
            await asyncio.sleep(1.0)
            back = await flow_over(st, page, 2.0)
            assert back["station_video"] > 0 and back["gp_video"] > 0, back
            assert (await st.call())["attempt"] == attempt
            await page.close()

    asyncio.run(run())


async def _audio_only_is(st: StationD, on: bool) -> bool:
    return (await status(st))[0] is on

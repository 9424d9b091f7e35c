"""The GP page's waiting room in real headless Chromium: self-view before Admit, no early call.

The page starts the GP's camera and microphone (and gathers ICE candidates) while the station
waits, so Admit only has to answer. These tests check what that must not change: the station
gets no answer, and so cannot connect, before the GP admits it; a refused camera leaves a
working audio-only call with a clear Danish message; the camera is released when the call ends.
Each test re-runs itself inside a loopback-only network namespace (see ``netns.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, async_playwright, expect

from station.call.ice import restrict_host_candidates_to_loopback

from .chromium import CHROMIUM, CHROMIUM_ARGS, chromium
from .hub_server import STATION_TOKEN, RunningHub, running_hub
from .netns import delegated_to_loopback_namespace
from .station_peer import StationHubClient, StationPeer
from .test_gp_page_browser import EXPECT_TIMEOUT_MS, RESIDENTS, STEP_TIMEOUT_S, _room

# Frames the waiting room's self-view has shown (counted by requestVideoFrameCallback).
COUNT_PREVIEW_FRAMES_JS = """
() => {
  const video = document.getElementById("preview-video");
  window.previewFrames = 0;
  const count = () => { window.previewFrames += 1; video.requestVideoFrameCallback(count); };
  video.requestVideoFrameCallback(count);
}
"""

LOCAL_TRACKS_JS = """
() => {
  const stream = window.kontaktGp.localStream();
  return stream ? stream.getTracks().map((t) => [t.kind, t.readyState]) : null;
}
"""


@asynccontextmanager
async def _hub_and_station(tmp_path: Path) -> AsyncIterator[tuple[RunningHub, StationHubClient]]:
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with restrict_host_candidates_to_loopback():
        async with running_hub(tmp_path / "hub") as hub:
            station = StationHubClient(hub.base_url, STATION_TOKEN)
            try:
                yield hub, station
            finally:
                await station.aclose()


@asynccontextmanager
async def _chromium_without_camera(profile: Path, origin: str) -> AsyncIterator[BrowserContext]:
    """Chromium whose user allows the microphone but refuses the camera."""
    # Without the fake UI flag Playwright answers the permission prompt itself: only what
    # was granted is allowed, so the camera is refused as if the GP clicked "Block".
    args = [arg for arg in CHROMIUM_ARGS if arg != "--use-fake-ui-for-media-stream"]
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=args
        )
        try:
            await context.grant_permissions(["microphone"], origin=origin)
            yield context
        finally:
            await context.close()


async def _station_answers_as_soon_as_it_can(
    station: StationHubClient, peer: StationPeer, room_id: str, generation: int
) -> None:
    """What a real station does: apply the GP's answer the moment the hub hands it over."""
    await peer.accept_answer(await station.wait_answer(room_id, generation))


@pytest.mark.browser
def test_gp_sees_self_view_before_admit_and_the_station_waits_for_admit(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def scenario() -> None:
        async with (
            _hub_and_station(tmp_path) as (_hub, station),
            chromium(tmp_path / "profile") as context,
        ):
            created = await _room(station)
            room_id = created["room_id"]
            peer = StationPeer()
            answered: asyncio.Task[None] | None = None
            try:
                generation = await station.post_offer(room_id, await peer.create_offer(), RESIDENTS)
                answered = asyncio.create_task(
                    _station_answers_as_soon_as_it_can(station, peer, room_id, generation)
                )
                page = await context.new_page()
                await page.goto(created["gp_link"])
                await expect(page.get_by_role("heading", name="Stationen venter")).to_be_visible()

                # The GP sees their own camera in the waiting room, before Admit.
                await expect(page.locator("#preview-video")).to_be_visible()
                await expect(page.locator("#preview-label")).to_have_text("Sådan ser borgeren dig.")
                await page.wait_for_function(
                    "() => document.getElementById('preview-video').videoWidth > 0",
                    timeout=EXPECT_TIMEOUT_MS,
                )
                await page.evaluate(COUNT_PREVIEW_FRAMES_JS)
                await page.wait_for_function(
                    "() => window.previewFrames >= 15", polling=50, timeout=EXPECT_TIMEOUT_MS
                )
                assert sorted(await page.evaluate(LOCAL_TRACKS_JS)) == [
                    ["audio", "live"],
                    ["video", "live"],
                ]
                await expect(page.locator("#preview-warning")).to_be_hidden()

                # ... but nothing reached the station: no answer, no connection, still waiting.
                assert not answered.done()
                assert peer.pc.connectionState == "new"
                assert not peer.connected.is_set()
                assert await page.evaluate("() => window.kontaktGp.peerConnection()") is None
                room = (await station.http.get(f"/api/station/rooms/{room_id}")).json()
                assert room["state"] == "waiting"

                # Admit: the answer goes out, the station connects, media flows.
                await page.get_by_role("button", name="Lad komme ind").click()
                await asyncio.wait_for(answered, STEP_TIMEOUT_S)
                await asyncio.wait_for(peer.connected.wait(), STEP_TIMEOUT_S)
                await asyncio.wait_for(peer.first_video_frame.wait(), STEP_TIMEOUT_S)
                await expect(page.locator("#view-call")).to_be_visible()
                # The call uses the very tracks the GP saw in the waiting room.
                assert await page.evaluate(
                    "() => document.getElementById('self-video').srcObject"
                    " === window.kontaktGp.localStream()"
                )

                # The GP hangs up: camera and microphone are released.
                tracks = await page.evaluate_handle("() => window.kontaktGp.localStream()")
                await page.get_by_role("button", name="Afslut").click()
                await expect(page.locator("#message")).to_have_text("Du har afsluttet samtalen.")
                assert await page.evaluate(
                    "(s) => s.getTracks().every((t) => t.readyState === 'ended')", tracks
                )
                assert await page.evaluate(LOCAL_TRACKS_JS) is None
            finally:
                if answered is not None:
                    answered.cancel()
                await peer.close()

    asyncio.run(scenario())


@pytest.mark.browser
def test_refused_camera_gives_a_clear_message_and_an_audio_only_call(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def scenario() -> None:
        async with (
            _hub_and_station(tmp_path) as (hub, station),
            _chromium_without_camera(tmp_path / "profile", hub.base_url) as context,
        ):
            created = await _room(station)
            room_id = created["room_id"]
            peer = StationPeer()
            try:
                generation = await station.post_offer(room_id, await peer.create_offer(), RESIDENTS)
                page = await context.new_page()
                await page.goto(created["gp_link"])
                await expect(page.get_by_role("heading", name="Stationen venter")).to_be_visible()
                # Said in the waiting room, before the resident is connected.
                warning = page.locator("#preview-warning")
                await expect(warning).to_be_visible()
                await expect(warning).to_contain_text(
                    "Kameraet kunne ikke startes. Borgeren kan høre dig, men ikke se dig."
                )
                await expect(warning).to_contain_text("lov til at bruge kamera og mikrofon")
                await expect(page.locator("#preview")).to_be_hidden()
                assert await page.evaluate(LOCAL_TRACKS_JS) == [["audio", "live"]]

                # Admit still works: an audio-only call.
                answer = asyncio.create_task(station.wait_answer(room_id, generation))
                await page.get_by_role("button", name="Lad komme ind").click()
                await peer.accept_answer(await asyncio.wait_for(answer, STEP_TIMEOUT_S))
                await asyncio.wait_for(peer.connected.wait(), STEP_TIMEOUT_S)
                await expect(page.locator("#view-call")).to_be_visible()
                await expect(page.locator("#media-warning")).to_contain_text(
                    "Borgeren kan høre dig, men ikke se dig."
                )
                kinds = await page.evaluate(
                    "() => window.kontaktGp.peerConnection().getSenders()"
                    ".filter((s) => s.track).map((s) => s.track.kind)"
                )
                assert kinds == ["audio"]
            finally:
                await peer.close()

    asyncio.run(scenario())

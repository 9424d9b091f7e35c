"""The GP's page in a real headless Chromium, talking to a real hub and an aiortc "station".

Each browser test re-runs itself inside a loopback-only network namespace (see ``netns.py``):
hub (uvicorn on 127.0.0.1), station peer (aiortc, test video and silence, data channel) and
Chromium (fake camera and microphone) all live there, so no packet can leave 127.0.0.1.

The ICE helper's own tests (no browser) are at the end.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCPeerConnection
from playwright.async_api import BrowserContext, Page, expect

from station.call.ice import (
    IceConfigError,
    IceServerConfig,
    build_rtc_configuration,
    loopback_host_candidates_active,
    restrict_host_candidates_to_loopback,
)

from .chromium import chromium
from .hub_server import STATION_TOKEN, RunningHub, running_hub
from .netns import delegated_to_loopback_namespace
from .station_peer import StationHubClient, StationPeer

# Generous upper bounds so a failure cannot hang the run; never a speed assertion.
STEP_TIMEOUT_S = 20
EXPECT_TIMEOUT_MS = 15_000

MARKUP_NAME = '<b>Anna</b> & "Bo" <script>window.pwned = 1</script>'
RESIDENTS = [
    {
        "display_name": MARKUP_NAME,
        "birth_date": "1931-04-02",
        "room": "Stue <i>12</i>",
        "reason": "Hoste & feber",
    },
    {"display_name": "Karl Åge Jensen", "birth_date": "1940-01-15", "room": "Stue 7"},
]

FRAMES_DECODED_JS = """
async () => {
  const pc = window.kontaktGp.peerConnection();
  if (!pc) return false;
  const stats = await pc.getStats();
  let frames = 0;
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
  });
  return frames > 0;
}
"""

ADMIT_TO_FIRST_FRAME_JS = """
() => {
  const admit = performance.getEntriesByName("gp-admit")[0];
  const frame = performance.getEntriesByName("gp-first-remote-frame")[0];
  return admit && frame ? frame.startTime - admit.startTime : null;
}
"""

SENT_VIDEO_PARAMETERS_JS = """
() => {
  const pc = window.kontaktGp.peerConnection();
  const sender = pc.getSenders().find((s) => s.track && s.track.kind === "video");
  return sender ? sender.getParameters().encodings : null;
}
"""


@dataclass
class Call:
    """A connected call: hub, station (API client + aiortc peer) and the GP's page."""

    hub: RunningHub
    station: StationHubClient
    peer: StationPeer
    page: Page
    room_id: str


@asynccontextmanager
async def _scenario(
    tmp_path: Path, chromium_args: tuple[str, ...] = (), **hub_settings: Any
) -> AsyncIterator[tuple[RunningHub, StationHubClient, BrowserContext]]:
    """Hub, station client and Chromium, all on loopback, torn down in order."""
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with restrict_host_candidates_to_loopback():
        async with running_hub(tmp_path / "hub", **hub_settings) as hub:
            station = StationHubClient(hub.base_url, STATION_TOKEN)
            try:
                async with chromium(tmp_path / "profile", chromium_args) as context:
                    yield hub, station, context
            finally:
                await station.aclose()


async def _room(
    station: StationHubClient, starts_in: timedelta = timedelta(minutes=5)
) -> dict[str, Any]:
    start = datetime.now(UTC) + starts_in
    return await station.create_room(start, start + timedelta(minutes=30))


async def _connect(hub: RunningHub, station: StationHubClient, context: BrowserContext) -> Call:
    """Station calls in, the GP sees who waits, admits, and the call connects."""
    created = await _room(station)
    room_id = created["room_id"]
    peer = StationPeer()
    generation = await station.post_offer(room_id, await peer.create_offer(), RESIDENTS)
    page = await context.new_page()
    # The link as stationd gives it: the room's key after the token (the hub never saw it).
    await page.goto(created["gp_link"])

    await expect(page.get_by_role("heading", name="Stationen venter")).to_be_visible()
    residents = page.locator("#residents > li")
    await expect(residents).to_have_count(2)
    # Markup in names is shown literally, never interpreted.
    await expect(residents.nth(0).locator(".name")).to_have_text(MARKUP_NAME)
    await expect(residents.nth(0)).to_contain_text("Værelse: Stue <i>12</i>")
    await expect(residents.nth(0)).to_contain_text("Årsag: Hoste & feber")
    await expect(residents.nth(0)).to_contain_text("2. april 1931")
    assert await page.locator("#residents b, #residents i, #residents script").count() == 0
    assert await page.evaluate("() => window.pwned") is None

    answer = asyncio.create_task(station.wait_answer(room_id, generation))
    await page.get_by_role("button", name="Lad komme ind").click()
    await peer.accept_answer(await asyncio.wait_for(answer, STEP_TIMEOUT_S))
    await asyncio.wait_for(peer.connected.wait(), STEP_TIMEOUT_S)
    await expect(page.locator("#view-call")).to_be_visible()
    return Call(hub=hub, station=station, peer=peer, page=page, room_id=room_id)


OUTBOUND_STATS_JS = """
async () => {
  const pc = window.kontaktGp.peerConnection();
  const out = [];
  (await pc.getStats()).forEach((s) => {
    if (s.type === "outbound-rtp" || s.type === "candidate-pair" || s.type === "codec") out.push(s);
  });
  return out;
}
"""


async def _frames_both_ways(call: Call) -> None:
    await call.page.wait_for_function(FRAMES_DECODED_JS, polling=50, timeout=EXPECT_TIMEOUT_MS)
    try:
        await asyncio.wait_for(call.peer.first_video_frame.wait(), STEP_TIMEOUT_S)
    except TimeoutError:
        stats = await call.page.evaluate(OUTBOUND_STATS_JS)
        directions = [(t.kind, t.currentDirection) for t in call.peer.pc.getTransceivers()]
        raise AssertionError(
            f"no video frame reached the station; Chromium's stats: {stats}; "
            f"station transceivers: {directions}"
        ) from None


@pytest.mark.browser
def test_gp_admits_the_station_and_the_call_runs(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def scenario() -> None:
        async with _scenario(tmp_path) as (hub, station, context):
            call = await _connect(hub, station, context)
            page = call.page
            try:
                await _frames_both_ways(call)
                admit_to_frame = await page.evaluate(ADMIT_TO_FIRST_FRAME_JS)
                assert admit_to_frame is not None
                print(f"MEASURED admit_to_first_decoded_frame_ms={admit_to_frame:.0f}")

                # The page caps what it sends so a Raspberry Pi can decode it.
                encodings = await page.evaluate(SENT_VIDEO_PARAMETERS_JS)
                assert encodings and encodings[0]["maxBitrate"] == 800_000
                assert encodings[0]["maxFramerate"] == 30
                assert (
                    await page.evaluate(
                        "() => document.getElementById('self-video').srcObject"
                        ".getVideoTracks()[0].getSettings().width"
                    )
                    <= 640
                )

                await expect(page.locator("#quality")).to_have_attribute(
                    "data-quality", re.compile("^(good|fair|poor)$")
                )
                await expect(page.locator("#quality")).to_contain_text("Forbindelse: ")

                # The live path: data-channel notices from the station.
                await call.peer.send(
                    {
                        "type": "current_resident",
                        "display_name": "Karl <i>Åge</i> Jensen",
                        "position": 2,
                        "of": 3,
                    }
                )
                await expect(page.locator("#current-resident")).to_have_text(
                    "Foran kameraet nu: Karl <i>Åge</i> Jensen (2 af 3)"
                )
                assert await page.locator("#current-resident i").count() == 0
                await expect(page.locator("#private-notice")).to_be_hidden()
                await call.peer.send({"type": "private"})
                await expect(page.locator("#private-notice")).to_be_visible()
                await expect(page.locator("#private-notice")).to_contain_text(
                    "Personalet har forladt rummet"
                )

                # The GP hangs up: the station's peer connection ends (DTLS close from
                # Chromium) and the hub tells the station too.
                ended = asyncio.create_task(
                    station.wait_room(call.room_id, lambda view: view["state"] == "ended")
                )
                await page.get_by_role("button", name="Afslut").click()
                await asyncio.wait_for(call.peer.closed.wait(), STEP_TIMEOUT_S)
                assert call.peer.pc.connectionState == "closed"
                view = await asyncio.wait_for(ended, STEP_TIMEOUT_S)
                assert view["end_reason"] == "gp_hung_up"
                await expect(page.locator("#message")).to_have_text("Du har afsluttet samtalen.")
                assert await page.evaluate("() => window.kontaktGp.peerConnection()") is None
            finally:
                await call.peer.close()

    asyncio.run(scenario())


@pytest.mark.browser
def test_station_ends_the_call_and_the_hub_path_carries_notices(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def scenario() -> None:
        async with _scenario(tmp_path) as (hub, station, context):
            call = await _connect(hub, station, context)
            page = call.page
            try:
                await _frames_both_ways(call)
                # The fallback path: the same notices through the hub, no data channel.
                # (sealed by the station; the page opens it with the key from its link).
                await station.current_resident(
                    call.room_id, {"display_name": "Ebba", "position": 3, "of": 3}
                )
                await expect(page.locator("#current-resident")).to_have_text(
                    "Foran kameraet nu: Ebba (3 af 3)"
                )
                await station.notice(call.room_id, {"type": "private"})
                await expect(page.locator("#private-notice")).to_be_visible()

                await station.end(call.room_id)
                await call.peer.close()
                await expect(page.locator("#message")).to_have_text("Samtalen er afsluttet.")
                assert await page.evaluate("() => window.kontaktGp.peerConnection()") is None
                assert await page.evaluate(
                    "() => document.getElementById('self-video').srcObject"
                    ".getTracks().every((t) => t.readyState === 'ended')"
                )
            finally:
                await call.peer.close()

    asyncio.run(scenario())


@pytest.mark.browser
def test_page_shows_reconnecting_and_takes_the_station_redial(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def scenario() -> None:
        async with _scenario(tmp_path, media_watchdog_seconds=1.0) as (hub, station, context):
            call = await _connect(hub, station, context)
            page = call.page
            second = StationPeer()
            try:
                await _frames_both_ways(call)
                await expect(page.locator("#reconnecting")).to_be_hidden()
                first_pc = await page.evaluate_handle("() => window.kontaktGp.peerConnection()")

                # Media stops (the station drops its peer connection) ...
                await call.peer.close()
                await expect(page.locator("#reconnecting")).to_be_visible()
                await expect(page.locator("#reconnecting")).to_have_text(
                    "Genopretter forbindelse …"
                )
                # ... and the station re-dials: a new offer generation for the same room.
                generation = await station.post_offer(
                    call.room_id, await second.create_offer(), None
                )
                assert generation == 2
                answer = await asyncio.wait_for(
                    station.wait_answer(call.room_id, generation), STEP_TIMEOUT_S
                )
                await second.accept_answer(answer)
                await asyncio.wait_for(second.connected.wait(), STEP_TIMEOUT_S)
                await asyncio.wait_for(second.first_video_frame.wait(), STEP_TIMEOUT_S)
                await page.wait_for_function(
                    FRAMES_DECODED_JS, polling=50, timeout=EXPECT_TIMEOUT_MS
                )
                await expect(page.locator("#reconnecting")).to_be_hidden()
                replaced = await page.evaluate(
                    "(old) => window.kontaktGp.peerConnection() !== old", first_pc
                )
                assert replaced
                assert await page.evaluate("(old) => old.connectionState", first_pc) == "closed"
            finally:
                await second.close()
                await call.peer.close()

    asyncio.run(scenario())


@pytest.mark.browser
def test_bad_links_show_clear_messages(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def scenario() -> None:
        async with _scenario(tmp_path) as (hub, station, context):
            page = await context.new_page()
            message = page.locator("#message")

            await page.goto(f"{hub.base_url}/gp/#{'A' * 43}")
            await expect(message).to_have_text(re.compile("^Linket er ugyldigt"))
            await page.goto(f"{hub.base_url}/gp/?lang=en#{'A' * 43}")
            await expect(message).to_have_text(re.compile("^This link is not valid"))
            await page.goto(f"{hub.base_url}/gp")  # no token at all; redirected to /gp/
            await expect(message).to_have_text(re.compile("^Linket er ugyldigt"))

            revoked = await _room(station)
            await station.http.post(f"/api/station/rooms/{revoked['room_id']}/revoke")
            await page.goto(revoked["gp_url"])
            await expect(message).to_have_text("Aftalen er aflyst, og linket virker ikke længere.")

            later = await _room(station, starts_in=timedelta(hours=3))
            await page.goto(later["gp_url"])
            await expect(message).to_have_text(re.compile("^Linket virker først fra "))

            booked = await _room(station)
            await page.goto(booked["gp_url"])
            await expect(message).to_have_text("Stationen har ikke ringet op endnu.")
            # The page long-polls: the station's call-in shows up without a reload.
            peer = StationPeer()
            try:
                await station.post_offer(booked["room_id"], await peer.create_offer(), RESIDENTS)
                await expect(page.get_by_role("heading", name="Stationen venter")).to_be_visible()
                # The hub's own link carries no key (as after the short code): the sealed
                # round stays shut, and the page says when the names come.
                await expect(page.locator("#residents-note")).to_have_text(
                    "Navnene vises, når du har lukket stationen ind."
                )
                assert await page.locator("#residents > li").count() == 0
                # A second window cannot join once the first has admitted the station (a new
                # tab has its own sessionStorage, so to the hub it is another browser).
                await page.get_by_role("button", name="Lad komme ind").click()
                await expect(page.locator("#view-call")).to_be_visible()
                second = await context.new_page()
                await second.goto(booked["gp_url"])
                await expect(second.locator("#message")).to_have_text(
                    "Samtalen er allerede åbnet i et andet vindue eller en anden browser."
                )
            finally:
                await peer.close()

    asyncio.run(scenario())


@pytest.mark.browser
def test_a_gp_in_another_tab_sees_and_hears_the_station_waiting(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Issue 16: the GP opened the link early and works elsewhere: when the station calls in,
    the tab's title says so and a chime plays, once; after admitting, the title is plain.
    (Chromium's autoplay policy lets a page that captures the camera play sound; this headless
    one is told to allow it, as a GP's browser with the waiting room's camera on does.)"""
    if delegated_to_loopback_namespace(request):
        return
    plain = "Videokonsultation – KontaktStation"

    async def scenario() -> None:
        autoplay = ("--autoplay-policy=no-user-gesture-required",)
        async with _scenario(tmp_path, autoplay) as (_hub, station, context):
            booked = await _room(station)
            page = await context.new_page()
            await page.goto(booked["gp_url"])
            await expect(page.locator("#message")).to_have_text(
                "Stationen har ikke ringet op endnu."
            )
            await expect(page).to_have_title(plain)
            assert await page.evaluate("() => window.kontaktGp.chimes()") == {
                "played": 0,
                "refused": 0,
            }
            peer = StationPeer()
            try:
                await station.post_offer(booked["room_id"], await peer.create_offer(), RESIDENTS)
                await expect(page).to_have_title("● Stationen venter – " + plain)
                await page.wait_for_function("() => window.kontaktGp.chimes().played === 1")
                await asyncio.sleep(3)  # more polls while waiting: no second chime
                assert await page.evaluate("() => window.kontaktGp.chimes()") == {
                    "played": 1,
                    "refused": 0,
                }
                await page.get_by_role("button", name="Lad komme ind").click()
                await expect(page.locator("#view-call")).to_be_visible()
                await expect(page).to_have_title(plain)
            finally:
                await peer.close()

    asyncio.run(scenario())


# -- station.call.ice (no browser) --------------------------------------------------------------


def test_rtc_configuration_always_has_an_explicit_server_list() -> None:
    empty = build_rtc_configuration([])
    assert empty.iceServers == []  # never None: None would add Google's public STUN server
    turn = IceServerConfig(urls="turn:127.0.0.1:3478", username="station", credential="secret")
    relay = build_rtc_configuration(
        [IceServerConfig(urls=["stun:127.0.0.1:3478"]), turn], relay_only=True
    )
    assert [server.urls for server in relay.iceServers] == [
        ["stun:127.0.0.1:3478"],
        ["turn:127.0.0.1:3478"],
    ]
    assert relay.iceServers[1].credential == "secret"
    assert relay.iceTransportPolicy.value == "relay"
    assert "secret" not in repr(turn)
    with pytest.raises(IceConfigError):
        build_rtc_configuration([IceServerConfig(urls="stun:127.0.0.1:3478")], relay_only=True)
    with pytest.raises(ValueError, match="stun:"):
        IceServerConfig(urls="http://127.0.0.1")


async def test_loopback_restriction_offers_only_127_0_0_1_and_is_undone() -> None:
    import aioice.ice

    original = aioice.ice.get_host_addresses
    with restrict_host_candidates_to_loopback():
        with restrict_host_candidates_to_loopback():  # nesting is fine
            assert loopback_host_candidates_active()
        assert loopback_host_candidates_active()
        pc = RTCPeerConnection(build_rtc_configuration([]))
        try:
            pc.createDataChannel("probe")
            await pc.setLocalDescription(await pc.createOffer())
            candidates = [
                line.split()[4]
                for line in pc.localDescription.sdp.splitlines()
                if line.startswith("a=candidate:")
            ]
        finally:
            await pc.close()
    assert candidates and set(candidates) == {"127.0.0.1"}
    assert not loopback_host_candidates_active()
    assert aioice.ice.get_host_addresses is original

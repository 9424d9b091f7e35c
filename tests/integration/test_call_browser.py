"""The call end to end: hub + the real stationd (fake camera and audio) + headless Chromium as GP.

Each test re-runs itself inside a loopback-only network namespace (``netns.py``): hub, stationd
and Chromium (and coturn, for the relay test) all live there, on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, expect

from hardware.video import OverlayState

from .call_harness import (
    RESIDENTS,
    StationD,
    call_config,
    running_coturn,
    running_stationd,
    wait_for,
)
from .chromium import chromium
from .hub_server import RunningHub, running_hub
from .netns import delegated_to_loopback_namespace

EXPECT_TIMEOUT_MS = 20_000

FRAMES_DECODED_JS = """
async () => {
  const pc = window.kontaktGp.peerConnection();
  if (!pc) return 0;
  let frames = 0;
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
  });
  return frames;
}
"""

SELECTED_PAIR_JS = """
async () => {
  const pc = window.kontaktGp.peerConnection();
  const stats = await pc.getStats();
  let pairId = null;
  stats.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
  });
  if (!pairId) return null;
  const pair = stats.get(pairId);
  return {local: stats.get(pair.localCandidateId).candidateType,
          remote: stats.get(pair.remoteCandidateId).candidateType};
}
"""


@contextlib.asynccontextmanager
async def scenario(
    tmp_path: Path, *, hub_settings: dict[str, Any] | None = None, **call: Any
) -> AsyncIterator[tuple[RunningHub, StationD, BrowserContext]]:
    """Hub, stationd (unlocked, a consultation in its pre-call check) and Chromium."""
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    async with running_hub(tmp_path / "hub", **(hub_settings or {})) as hub:  # noqa: SIM117
        async with running_stationd(tmp_path / "station", call_config(hub.base_url, **call)) as st:
            await st.unlock()
            await st.book_and_check()
            async with chromium(tmp_path / "profile") as context:
                yield hub, st, context


async def admitted_call(st: StationD, context: BrowserContext) -> Page:
    """Start the call, open the GP link, check the waiting room, admit; media both ways."""
    started = await st.start_call()
    assert started["gp_url"].startswith("http://127.0.0.1:")
    page = await context.new_page()
    await page.goto(started["gp_url"])
    await expect(page.get_by_role("heading", name="Stationen venter")).to_be_visible()
    residents = page.locator("#residents > li")
    await expect(residents).to_have_count(2)
    await expect(residents.nth(0).locator(".name")).to_have_text("Anna <b>Hansen</b>")
    await expect(residents.nth(0)).to_contain_text("Værelse: Stue 12")
    assert (await st.call())["phase"] == "waiting_for_gp"
    assert (await st.state())["state"] == "waiting_for_gp"

    await page.get_by_role("button", name="Lad komme ind").click()
    await expect(page.locator("#view-call")).to_be_visible()
    await wait_for(lambda: _state_is(st, "in_call_attended"), what="session in call")
    # Frames decoded both ways: Chromium's getStats, and the station's frame sink.
    await page.wait_for_function(f"async () => (await ({FRAMES_DECODED_JS})()) > 0", polling=100)
    await wait_for(lambda: st.sink.stats("remote").frames > 0, what="GP video at the station")
    await wait_for(lambda: st.sink.stats("self").frames > 0, what="self-view")
    await wait_for(lambda: _phase_is(st, "connected"), what="call connected")
    return page


async def _state_is(st: StationD, state: str) -> bool:
    return (await st.state())["state"] == state


async def _phase_is(st: StationD, phase: str) -> bool:
    return (await st.call())["phase"] == phase


@pytest.mark.browser
@pytest.mark.slow
def test_call_runs_goes_private_and_the_gp_hangs_up(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def run() -> None:
        async with scenario(tmp_path) as (_hub, st, context):
            page = await admitted_call(st, context)
            # The data channel brings the GP up to date as soon as it opens.
            current = page.locator("#current-resident")
            await expect(current).to_have_text("Foran kameraet nu: Anna <b>Hansen</b> (1 af 2)")
            response = await st.http.post("/v1/call/next", headers=st.auth)
            assert response.status_code == 200, response.text
            assert response.json()["resident"] == {"position": 2, "of": 2}
            await expect(current).to_have_text("Foran kameraet nu: Karl Åge Jensen (2 af 2)")
            response = await st.http.post("/v1/call/next", headers=st.auth)
            assert response.status_code == 409
            assert response.json()["code"] == "no_such_resident"

            # Statistics become a quality level. Chromium's fake camera sends 20 fps on
            # loopback: once frames flow, a later sample is never "lost" and its frame rate is a
            # real one.
            await wait_for(lambda: _quality_with_frames(st), what="frames in a sample", timeout=20)
            await asyncio.sleep(2 * st.daemon.calls.engine.config.stats_interval_seconds)
            quality = await _quality(st)
            assert quality is not None
            assert quality["level"] != "lost"
            assert 5 <= quality["fps"] <= 40

            # Staff leave: the call turns private, the GP is told, the resident's controls work
            # without a token, the staff-only ones do not.
            response = await st.http.post("/v1/lock", json={"reason": "leave"})
            assert response.json()["state"] == "in_call_private"
            await expect(page.locator("#private-notice")).to_be_visible()
            response = await st.http.post("/v1/call/volume", json={"direction": "up"})
            assert response.status_code == 200 and response.json()["volume"] == 8
            response = await st.http.post("/v1/call/mute", json={"muted": True})
            assert response.json()["muted"] is True
            response = await st.http.post("/v1/call/previous")
            assert response.status_code == 401
            response = await st.http.post("/v1/call/call-staff")
            assert response.status_code == 200
            assert st.daemon.hardware is not None
            assert getattr(st.daemon.hardware, "pattern", None) == "staff_called_back"

            # Staff come back: unlocking says so to the GP.
            await st.unlock()
            assert (await st.state())["state"] == "in_call_attended"
            await expect(page.locator("#private-notice")).to_be_hidden()

            # The GP hangs up: the session moves on to the wrap-up, the call is over.
            await page.get_by_role("button", name="Afslut").click()
            await expect(page.locator("#message")).to_have_text("Du har afsluttet samtalen.")
            await wait_for(lambda: _state_is(st, "wrap_up"), what="wrap-up")
            call = await st.call()
            assert call["active"] is False and call["phase"] == "ended"
            await wait_for(lambda: _consultation_status(st, "ended"), what="consultation ended")
            # The screen followed the call: the private badge while staff were away, and at
            # the end the GP's and the resident's pictures are taken off it.
            overlays = st.sink.overlays
            assert any(o.private_call for o in overlays)
            assert overlays[-1] == OverlayState()
            assert st.sink.stats("remote").frames > 0 and st.sink.newest("remote") is None
            assert st.sink.stats("self").frames > 0 and st.sink.newest("self") is None

    asyncio.run(run())


async def _quality(st: StationD) -> dict[str, Any] | None:
    quality: dict[str, Any] | None = (await st.call())["quality"]
    return quality


async def _quality_with_frames(st: StationD) -> dict[str, Any] | None:
    """A quality sample taken while the GP's frames were arriving (the first may be empty)."""
    quality = await _quality(st)
    return quality if quality is not None and quality["fps"] > 0 else None


async def _consultation_status(st: StationD, status: str) -> bool:
    response = await st.http.get(f"/v1/consultations/{st.consultation_id}", headers=st.auth)
    return bool(response.json()["status"] == status)


@pytest.mark.browser
@pytest.mark.slow
def test_resident_ends_a_private_call_and_the_station_locks(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def run() -> None:
        async with scenario(tmp_path) as (_hub, st, context):
            page = await admitted_call(st, context)
            await st.http.post("/v1/lock", json={"reason": "leave"})
            await expect(page.locator("#private-notice")).to_be_visible()
            # The resident's own "end call" on the locked screen: no token needed.
            response = await st.http.post("/v1/call/end")
            assert response.status_code == 200, response.text
            await expect(page.locator("#message")).to_have_text("Samtalen er afsluttet.")
            state = await st.state()
            assert state["state"] == "locked"
            assert state["pending_wrap_ups"] == [st.consultation_id]
            assert (await st.call())["active"] is False
            # Controls after the end: a clear 409, not a crash.
            response = await st.http.post("/v1/call/mute", json={"muted": True}, headers=st.auth)
            assert response.status_code in (401, 409)

    asyncio.run(run())


@pytest.mark.browser
@pytest.mark.slow
def test_bad_input_leaves_the_running_call_unharmed(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def run() -> None:
        async with scenario(tmp_path) as (hub, st, context):
            page = await admitted_call(st, context)
            frames_before = st.sink.stats("remote").frames
            gp_url = page.url

            # A second GP with the same link is refused; the first stays in the call.
            second = await context.new_page()
            await second.goto(gp_url)
            await expect(second.locator("#message")).to_have_text(
                "Samtalen er allerede åbnet i et andet vindue eller en anden browser."
            )
            # A wrong link, and a right link used without the admitted session.
            await second.goto(re.sub(r"#.*$", "#" + "B" * 43, gp_url))
            await expect(second.locator("#message")).to_have_text(re.compile("^Linket er ugyldigt"))
            token = gp_url.split("#", 1)[1].split(".")[0]
            async with httpx.AsyncClient(base_url=hub.base_url) as gp:
                headers = {"Authorization": f"Bearer {token}"}
                answer = await gp.post(
                    "/api/gp/answer",
                    headers=headers,
                    json={"generation": 1, "type": "answer", "sdp": "v=0\r\nnonsense"},
                )
                assert answer.status_code == 403, answer.text

            # Bad requests to stationd: clear 4xx, nothing else changes.
            bad: list[tuple[str, dict[str, Any], dict[str, str]]] = [
                (
                    "/v1/call/start",
                    {"consultation_id": st.consultation_id, "residents": RESIDENTS},
                    st.auth,
                ),
                (
                    "/v1/call/start",
                    {"consultation_id": st.consultation_id, "residents": []},
                    st.auth,
                ),
                (
                    "/v1/call/start",
                    {
                        "consultation_id": st.consultation_id,
                        "residents": [{"display_name": "Anna\x1b[2J"}],
                    },
                    st.auth,
                ),
                (
                    "/v1/call/start",
                    {"consultation_id": "0101901234", "residents": RESIDENTS},
                    st.auth,
                ),
                ("/v1/call/volume", {"direction": "sideways"}, st.auth),
                ("/v1/call/mute", {"muted": "yes please"}, st.auth),
                ("/v1/call/next", {}, {}),
                ("/v1/call/end", {}, {"Authorization": "Bearer nonsense"}),
            ]
            for path, body, headers in bad:
                response = await st.http.post(path, json=body, headers=headers)
                assert 400 <= response.status_code < 500, (
                    path,
                    response.status_code,
                    response.text,
                )
                payload = response.json()
                assert payload["code"] and payload["user_message"], payload
                # Errors never echo what was sent (it may be a name or a CPR number).
                assert "Anna" not in response.text and "0101901234" not in response.text
            response = await st.http.post(
                "/v1/call/mute",
                content=b'{"muted": true' + b" " * (600 * 1024) + b"}",
                headers={**st.auth, "Content-Type": "application/json"},
            )
            assert response.status_code == 413

            # The call goes on: still connected, frames still arriving, GP still in it.
            await wait_for(
                lambda: st.sink.stats("remote").frames > frames_before + 30,
                what="frames keep arriving",
            )
            call = await st.call()
            assert call["active"] and call["phase"] == "connected" and call["attempt"] == 1
            assert (await st.state())["state"] == "in_call_attended"
            await expect(page.locator("#view-call")).to_be_visible()
            await expect(page.locator("#reconnecting")).to_be_hidden()

            response = await st.http.post("/v1/call/end", headers=st.auth)
            assert response.status_code == 200
            await expect(page.locator("#message")).to_have_text("Samtalen er afsluttet.")
            assert (await st.state())["state"] == "wrap_up"

    asyncio.run(run())


@pytest.mark.browser
@pytest.mark.turn
@pytest.mark.slow
def test_relay_only_call_through_coturn(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def run() -> None:
        async with running_coturn(tmp_path) as turn:  # noqa: SIM117
            async with scenario(tmp_path, ice_servers=(turn.ice_server(),), relay_only=True) as (
                _hub,
                st,
                context,
            ):
                page = await admitted_call(st, context)
                pair = await page.evaluate(SELECTED_PAIR_JS)
                # The station offered relay candidates only: Chromium's chosen pair ends at
                # the station's TURN relay address.
                assert pair is not None and pair["remote"] == "relay", pair
                call = await st.call()
                assert call["selected_pair"]["local"] == "relay", call["selected_pair"]
                await st.http.post("/v1/call/end", headers=st.auth)

    asyncio.run(run())

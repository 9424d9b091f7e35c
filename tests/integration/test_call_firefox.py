"""The GP in Firefox ESR: the same journey as the Chromium test (test_call_browser.py).

Hub, the real stationd (fake camera and audio) and headless Firefox, in the test's private
namespace. Firefox never gathers 127.0.0.1, so the namespace gets a veth pair with an
address and a default route (``firefox.routable_address``); its packets stay on this machine.
Debian's Firefox has no H.264: the call runs over VP8, also with the Pi 4's H.264 camera.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from hardware.camera import FakeCameraState
from hardware.video import OverlayState

from .call_harness import StationD, call_config, running_stationd, wait_for
from .firefox import FirefoxPage, firefox, routable_address
from .hub_server import running_hub
from .netns import delegated_to_loopback_namespace
from .test_call_h264_browser import pi4_hardware

FRAMES_DECODED_JS = """
(async () => {
  const pc = window.kontaktGp.peerConnection();
  if (!pc) return 0;
  let frames = 0;
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
  });
  return frames;
})()
"""

VIDEO_CODEC_JS = """
(async () => {
  const stats = await window.kontaktGp.peerConnection().getStats();
  const codecs = {};
  stats.forEach((s) => { if (s.type === "codec") codecs[s.id] = s.mimeType; });
  let found = {inbound: null, outbound: null};
  stats.forEach((s) => {
    if (s.kind !== "video" || !s.codecId) return;
    if (s.type === "inbound-rtp") found.inbound = codecs[s.codecId];
    if (s.type === "outbound-rtp") found.outbound = codecs[s.codecId];
  });
  return found;
})()
"""


async def _state_is(st: StationD, state: str) -> bool:
    return (await st.state())["state"] == state


async def _phase_is(st: StationD, phase: str) -> bool:
    return (await st.call())["phase"] == phase


async def _wait_text(page: FirefoxPage, selector: str, text: str) -> None:
    element = f"document.querySelector({json.dumps(selector)})"
    expr = f"{element}?.textContent?.trim() === {json.dumps(text)}"
    await page.wait_for(expr, what=f"{selector} to read {text!r}")


async def _wait_visible(page: FirefoxPage, selector: str, visible: bool = True) -> None:
    expr = (
        f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
        " const shown = !!e && !e.closest('[hidden]') && e.getClientRects().length > 0;"
        f" return shown === {json.dumps(visible)}; }})()"
    )
    await page.wait_for(expr, what=f"{selector} {'shown' if visible else 'hidden'}")


@pytest.mark.browser
@pytest.mark.firefox
@pytest.mark.slow
@pytest.mark.parametrize("camera", ["raw", "pi4-h264"])
def test_firefox_gp_admits_sees_private_mode_and_hangs_up(
    request: pytest.FixtureRequest, tmp_path: Path, camera: str
) -> None:
    """Both camera modes: raw pictures (aiortc encodes VP8), and the Pi 4's hardware H.264,
    which Debian's Firefox cannot decode: the station offers VP8 beside it and, when the GP
    takes VP8, decodes its camera's packets and encodes VP8 in software."""
    if delegated_to_loopback_namespace(request):
        return

    async def run() -> None:
        hardware = await pi4_hardware(FakeCameraState()) if camera == "pi4-h264" else None
        with routable_address():
            async with running_hub(tmp_path / "hub") as hub:
                # The station's host candidates are the namespace's own (10.203.0.1): Firefox
                # neither gathers nor (by default) pairs with loopback candidates.
                config = call_config(hub.base_url, loopback_only=False)
                async with running_stationd(tmp_path / "station", config, hardware=hardware) as st:
                    await st.unlock()
                    await st.book_and_check()
                    async with firefox(tmp_path / "profile") as browser:
                        await journey(st, await browser.new_page(), camera)

    asyncio.run(run())


async def journey(st: StationD, page: FirefoxPage, camera: str) -> None:
    started = await st.start_call()
    assert started["gp_url"].startswith("http://127.0.0.1:")
    await page.goto(started["gp_url"])
    # The waiting room, in Danish, with the round.
    await _wait_text(page, "#waiting-title", "Stationen venter")
    await _wait_visible(page, "#view-waiting")
    names = await page.evaluate(
        "[...document.querySelectorAll('#residents > li')].map((li) => li.textContent)"
    )
    assert len(names) == 2 and "Anna <b>Hansen</b>" in names[0], names
    assert "Værelse: Stue 12" in names[0]
    assert (await st.call())["phase"] == "waiting_for_gp"

    admitted = time.monotonic()
    await page.click("#admit")
    await _wait_visible(page, "#view-call")
    await wait_for(lambda: _state_is(st, "in_call_attended"), what="session in call")
    # Frames decoded both ways: Firefox's getStats, and the station's frame sink.
    await page.wait_for(f"(await {FRAMES_DECODED_JS}) > 0", what="frames decoded in Firefox")
    in_firefox = time.monotonic() - admitted
    await wait_for(lambda: st.sink.stats("remote").frames > 0, what="Firefox's video at station")
    at_station = time.monotonic() - admitted
    # Polled every 0.1 s, in that order: upper bounds.
    print(
        f"firefox {camera}: admit -> first frame in Firefox {in_firefox:.2f} s, "
        f"both ways {at_station:.2f} s"
    )
    await wait_for(lambda: st.sink.stats("self").frames > 0, what="self-view")
    await wait_for(lambda: _phase_is(st, "connected"), what="call connected")
    codecs = await page.evaluate(VIDEO_CODEC_JS)
    assert codecs == {"inbound": "video/VP8", "outbound": "video/VP8"}, codecs
    engine = st.daemon.calls.engine
    assert engine is not None and engine._attempt is not None
    feed = engine._attempt.camera
    assert feed is not None
    if camera == "pi4-h264":
        assert feed.camera.passthrough_codec == "video/H264"
        offer = engine._attempt.pc.localDescription.sdp
        assert "H264/90000" in offer and "VP8/90000" in offer
        assert feed.decode_packets  # H.264 from the camera, decoded, sent as VP8
    else:
        assert not feed.decode_packets

    await _wait_text(page, "#current-resident", "Foran kameraet nu: Anna <b>Hansen</b> (1 af 2)")
    response = await st.http.post("/v1/call/next", headers=st.auth)
    assert response.status_code == 200, response.text
    await _wait_text(page, "#current-resident", "Foran kameraet nu: Karl Åge Jensen (2 af 2)")

    # Staff leave: private; they come back.
    response = await st.http.post("/v1/lock", json={"reason": "leave"})
    assert response.json()["state"] == "in_call_private"
    await _wait_visible(page, "#private-notice")
    await st.unlock()
    assert (await st.state())["state"] == "in_call_attended"
    await _wait_visible(page, "#private-notice", visible=False)

    frames = st.sink.stats("remote").frames
    await wait_for(lambda: st.sink.stats("remote").frames > frames + 20, what="frames go on")

    # The GP hangs up.
    await page.click("#hangup")
    await _wait_text(page, "#message", "Du har afsluttet samtalen.")
    await wait_for(lambda: _state_is(st, "wrap_up"), what="wrap-up")
    call = await st.call()
    assert call["active"] is False and call["phase"] == "ended"
    assert st.sink.overlays[-1] == OverlayState()

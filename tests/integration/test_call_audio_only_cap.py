"""Automatic audio only: a 256 kbit/s link pauses video both ways, labelled; uncapped, it is back.

The station (a real ``kontaktstation daemon`` process) in its own network namespace, the hub
and Chromium (the GP) in the test's, linked by a veth pair (``test_call_network_loss``). The
cap is an ``htb`` class of 256 kbit/s with a 50-packet queue on both ends of the veth (this
kernel has neither netem nor tbf). Times are measured from the cap (and from its removal) to
the state both sides show.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from .call_harness import wait_for
from .netns import delegated_to_loopback_namespace
from .test_call_network_loss import (
    FRAMES_DECODED_JS,
    StationNetns,
    _call,
    a_connected_call,
    in_station_netns,
)

CAP = "256kbit"
#: Issue 18's targets are 10 s to audio only and 10 s to video back. They are figures (the
#: MEASURED line; bench/README.md), not asserted here: this test proves the behaviour, with
#: bounds wide enough for a loaded CI machine. Measured on 2 cores (2026-12-07, five runs, the
#: judge on each report's own round trip): audio only after 3.9-4.9 s (GP label 4.7-6.7 s),
#: video back after 5.2-9.9 s.
SWITCH_BOUND_SECONDS = 30.0
BACK_BOUND_SECONDS = 45.0


def _tc(netns: StationNetns, inside: bool, *args: str) -> None:
    command = ["tc", *args]
    if inside:
        netns.inside(*command)
    else:
        subprocess.run(command, check=True, capture_output=True)


def cap(netns: StationNetns, rate: str = CAP) -> None:
    """``rate`` each way: an htb class with a 50-packet FIFO on each end of the veth."""
    for dev, inside in (("vh", False), ("vs", True)):
        _tc(
            netns,
            inside,
            "qdisc",
            "replace",
            "dev",
            dev,
            "root",
            "handle",
            "1:",
            "htb",
            "default",
            "10",
        )
        _tc(
            netns,
            inside,
            "class",
            "add",
            "dev",
            dev,
            "parent",
            "1:",
            "classid",
            "1:10",
            "htb",
            "rate",
            rate,
            "ceil",
            rate,
        )
        _tc(
            netns,
            inside,
            "qdisc",
            "add",
            "dev",
            dev,
            "parent",
            "1:10",
            "handle",
            "10:",
            "pfifo",
            "limit",
            "50",
        )


def uncap(netns: StationNetns) -> None:
    for dev, inside in (("vh", False), ("vs", True)):
        _tc(netns, inside, "qdisc", "del", "dev", dev, "root")


@pytest.mark.network
@pytest.mark.browser
@pytest.mark.slow
def test_a_256_kbit_link_goes_audio_only_and_comes_back(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def scenario(http: httpx.AsyncClient, context: Any, netns: StationNetns) -> None:
        page, auth = await a_connected_call(http, context)
        await asyncio.sleep(6)  # past the judge's warm-up, video at its clean-link rate
        label = page.locator("#audio-only-notice")
        assert not (await _call(http)).get("audio_only")
        await expect(label).to_be_hidden()

        cap(netns)
        capped_at = time.monotonic()
        await wait_for(
            lambda: _audio_only(http, "poor_connection"),
            timeout=SWITCH_BOUND_SECONDS,
            interval=0.1,
            what="audio only at the station",
        )
        station_after = time.monotonic() - capped_at
        await expect(label).to_have_text(
            "Kun lyd — dårlig forbindelse", timeout=SWITCH_BOUND_SECONDS * 1000
        )
        gp_after = time.monotonic() - capped_at

        # Audio goes on, in audio only, for a while (probes included).
        audio0 = (await _call(http))["media"]["remote_audio_frames"]
        await asyncio.sleep(8)
        call = await _call(http)
        audio_frames = call["media"]["remote_audio_frames"] - audio0
        assert call["audio_only"], call

        uncap(netns)
        uncapped_at = time.monotonic()
        await wait_for(
            lambda: _audio_only(http, None),
            timeout=BACK_BOUND_SECONDS,
            interval=0.1,
            what="video back at the station",
        )
        back_station = time.monotonic() - uncapped_at
        await expect(label).to_be_hidden(timeout=15_000)
        frames0 = int(await page.evaluate(FRAMES_DECODED_JS))
        remote0 = (await _call(http))["media"]["remote_video_frames"]
        await wait_for(
            lambda: _gp_frames_after(page, frames0 + 10), what="video at the GP", timeout=10
        )
        await wait_for(
            lambda: _station_frames_after(http, remote0 + 10), what="video at the station"
        )
        back_video = time.monotonic() - uncapped_at
        print(
            f"MEASURED cap={CAP} audio_only_station_s={station_after:.1f} "
            f"audio_only_gp_label_s={gp_after:.1f} audio_frames_8s={audio_frames} "
            f"video_back_station_s={back_station:.1f} video_flowing_both_s={back_video:.1f} "
            f"attempts={(await _call(http))['attempt']}"
        )
        assert audio_frames > 300  # 8 s of 20 ms frames is 400
        await http.post("/v1/call/end", headers=auth)

    def decisions(line: str) -> bool:
        """The judge's decisions and why (no personal data in these lines)."""
        return ": link " in line or "audio only" in line or "uncap" in line

    asyncio.run(in_station_netns(tmp_path, scenario, show_log=decisions))


async def _audio_only(http: httpx.AsyncClient, reason: str | None) -> bool:
    call = await _call(http)
    if reason is None:
        return not call.get("audio_only")
    return bool(call.get("audio_only")) and call.get("audio_only_reason") == reason


async def _gp_frames_after(page: Any, frames: int) -> bool:
    return int(await page.evaluate(FRAMES_DECODED_JS)) > frames


async def _station_frames_after(http: httpx.AsyncClient, frames: int) -> bool:
    return int((await _call(http))["media"]["remote_video_frames"]) > frames

"""A call on a bad link (issue 18): loss, jitter and a cap together, and bursty loss.

stationd (the ``kontaktstation daemon`` process) in its own network namespace, the hub and
Chromium (the GP) in the test's, the link between them through the userspace netem of
:mod:`.impair` (this kernel has no netem). Audio gaps are measured as a listener would hear
them, from the station's tone at the GP (:mod:`.tone_meter`); the picture from the GP's
``inbound-rtp`` statistics.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from .netns import delegated_to_loopback_namespace
from .test_call_network_loss import (
    StationNetns,
    _call,
    a_connected_call,
    in_station_netns,
)
from .test_call_video_ladder import GP_INBOUND_VIDEO_JS
from .tone_meter import GP_REMOTE_AUDIO_TRACK_JS, TONE_METER_INSTALL_JS, TONE_METER_READ_JS

#: The issue's first impairment, each way: 5 % random loss, 50 ms ± 50 ms delay (uniform, so
#: packets overtake each other) and a 1 Mbit/s cap with a 50-packet queue.
LOSSY = {"loss": 0.05, "delay_ms": 50, "jitter_ms": 50, "rate_bps": 1_000_000, "queue": 50}
#: Bursty loss (Gilbert-Elliott): into a bad spell with 2 % per packet, out of it with 25 %
#: (four packets on average), 80 % lost in it: about 6 % lost overall, in bursts.
BURSTY = {"burst": [0.02, 0.25, 0.8]}
LOSSY_SECONDS = 30
BURSTY_SECONDS = 60
GAP_LIMIT_MS = 200
FREEZE_LIMIT_S = 2.0

pytestmark = [pytest.mark.network, pytest.mark.browser, pytest.mark.slow]

#: The GP's video to the station: packets sent, NACKs the station sent for them, resent.
GP_OUTBOUND_VIDEO_JS = """
async () => {
  const pc = window.kontaktGp.peerConnection();
  const out = {packets: 0, nacks: 0, resent: 0};
  for (const s of (await pc.getStats()).values()) {
    if (s.type === "outbound-rtp" && s.kind === "video") {
      out.packets += s.packetsSent || 0; out.nacks += s.nackCount || 0;
      out.resent += s.retransmittedPacketsSent || 0;
    }
  }
  return out;
}
"""


async def start_tone_meter(page: Any) -> None:
    state = await page.evaluate(
        f"async () => ({TONE_METER_INSTALL_JS})(({GP_REMOTE_AUDIO_TRACK_JS})())"
    )
    assert state == "running", state
    await asyncio.sleep(2)
    clean = await page.evaluate(TONE_METER_READ_JS)  # the tone is there on a clean link
    assert clean["seconds"] > 1.5 and max(clean["gaps_ms"], default=0) < 50, clean


def test_loss_jitter_and_a_1_mbit_cap_keep_video_and_audio_without_gaps(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def scenario(http: httpx.AsyncClient, context: Any, netns: StationNetns) -> None:
        page, auth = await a_connected_call(http, context)
        await asyncio.sleep(8)  # past the ladder's and the judge's warm-up
        await start_tone_meter(page)
        before = await _call(http)

        netns.impair(to_station=LOSSY, to_hub=LOSSY)
        await asyncio.sleep(5)  # the ladder finds its rung
        await page.evaluate(TONE_METER_READ_JS)
        gp0 = await page.evaluate(GP_INBOUND_VIDEO_JS)
        sent0 = await page.evaluate(GP_OUTBOUND_VIDEO_JS)
        media0 = (await _call(http))["media"]
        rates, audio_only = [], []
        started = time.monotonic()
        while time.monotonic() - started < LOSSY_SECONDS:
            await asyncio.sleep(1)
            call = await _call(http)
            rates.append(call["media"]["sent_video"]["bitrate"])
            audio_only.append(call["audio_only"])
        elapsed = time.monotonic() - started
        tone = await page.evaluate(TONE_METER_READ_JS)
        gp1 = await page.evaluate(GP_INBOUND_VIDEO_JS)
        sent1 = await page.evaluate(GP_OUTBOUND_VIDEO_JS)
        call = await _call(http)
        counters = netns.counters()
        gaps = sorted(tone["gaps_ms"])
        to_station = {k: sent1[k] - sent0[k] for k in sent1}
        fps = (gp1["frames"] - gp0["frames"]) / elapsed
        decoded = call["media"]["remote_video_frames"] - media0["remote_video_frames"]
        station_fps = decoded / elapsed
        kbps = (gp1["bytes"] - gp0["bytes"]) * 8 / elapsed / 1000
        audio_share = (call["media"]["remote_audio_frames"] - media0["remote_audio_frames"]) / (
            elapsed * 50
        )
        print(
            f"MEASURED lossy={LOSSY} seconds={elapsed:.0f} gp_fps={fps:.1f} "
            f"station_fps={station_fps:.1f} "
            f"gp_width={gp1['width']} gp_kbps={kbps:.0f} "
            f"station_rungs_bps={sorted(set(rates))} tone_heard_s={tone['seconds']:.1f} "
            f"audio_gaps={len(gaps)} longest_gap_ms={gaps[-1] if gaps else 0:.0f} "
            f"station_audio_frames_share={audio_share:.2f} audio_only_samples={sum(audio_only)} "
            f"gp_video_to_station={to_station} "
            f"link={counters}"
        )
        assert call["generation"] == before["generation"], "re-dialled"
        # What the issue asks: video goes on both ways at a reduced rate. (The link judge may
        # still pause it for a moment and try again: one CI run, the machine loaded, saw the
        # GP's video decoded at the station under 5 fps for 3 s and 18 of 30 samples in audio
        # only or trials, while the GP still decoded 25.8 fps; printed above, not asserted.)
        assert fps >= 10, fps
        assert station_fps >= 10, station_fps
        assert max(rates) < 1_000_000  # never above what the link carries
        assert not gaps or gaps[-1] <= GAP_LIMIT_MS, gaps[-5:]
        assert tone["silent_now_ms"] <= GAP_LIMIT_MS
        assert audio_share >= 0.8, audio_share
        await http.post("/v1/call/end", headers=auth)

    asyncio.run(in_station_netns(tmp_path, scenario, show_log=_decisions, impaired=True))


def test_a_minute_of_bursty_loss_costs_no_redial_and_no_unlabelled_freeze(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def scenario(http: httpx.AsyncClient, context: Any, netns: StationNetns) -> None:
        page, auth = await a_connected_call(http, context)
        await asyncio.sleep(8)
        await start_tone_meter(page)
        before = await _call(http)
        label = page.locator("#audio-only-notice")

        netns.impair(to_station=BURSTY, to_hub=BURSTY)
        started = time.monotonic()
        frames = (await page.evaluate(GP_INBOUND_VIDEO_JS))["frames"]
        station_frames = before["media"]["remote_video_frames"]
        last_new = last_new_station = started
        longest_gp = longest_station = 0.0
        labelled = 0
        while time.monotonic() - started < BURSTY_SECONDS:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            gp = await page.evaluate(GP_INBOUND_VIDEO_JS)
            call = await _call(http)
            if await label.is_visible() or call["audio_only"]:
                labelled += 1
                last_new = last_new_station = now  # a labelled pause is no freeze
            # The longest time between two looks that each saw new frames (0.1 s at best).
            longest_gp = max(longest_gp, now - last_new)
            longest_station = max(longest_station, now - last_new_station)
            if gp["frames"] > frames:
                frames, last_new = gp["frames"], now
            if call["media"]["remote_video_frames"] > station_frames:
                station_frames, last_new_station = call["media"]["remote_video_frames"], now
        tone = await page.evaluate(TONE_METER_READ_JS)
        call = await _call(http)
        counters = netns.counters()
        gaps = sorted(tone["gaps_ms"])
        print(
            f"MEASURED bursty={BURSTY} seconds={BURSTY_SECONDS} "
            f"longest_freeze_gp_s={longest_gp:.2f} longest_freeze_station_s={longest_station:.2f} "
            f"labelled_samples={labelled} audio_gaps={len(gaps)} "
            f"longest_gap_ms={gaps[-1] if gaps else 0:.0f} "
            f"p99_gap_ms={gaps[int(len(gaps) * 0.99)] if gaps else 0:.0f} link={counters}"
        )
        assert call["generation"] == before["generation"], "re-dialled"
        assert longest_gp <= FREEZE_LIMIT_S, longest_gp
        assert longest_station <= FREEZE_LIMIT_S, longest_station
        lost = counters["to_b"]["lost"] + counters["to_a"]["lost"]
        assert lost > 0.03 * (lost + counters["to_b"]["passed"] + counters["to_a"]["passed"])
        await http.post("/v1/call/end", headers=auth)

    asyncio.run(in_station_netns(tmp_path, scenario, show_log=_decisions, impaired=True))


def test_the_round_trip_the_station_judges_follows_the_link_within_seconds(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The round trip stationd judges the link by (and shows as the call's quality) is each
    receiver report's own (``station.call.roundtrip``): 150 ms more each way shows within a
    few seconds, and so does its end (1.9 s and 2.0 s here). aiortc's own figure, an average
    that keeps 0.85 of the old value per report, had reached 189 of the 300 ms after 8 s
    (2026-12-07, this test with it)."""
    if delegated_to_loopback_namespace(request):
        return

    async def rtt_ms(http: httpx.AsyncClient) -> float | None:
        quality = (await _call(http)).get("quality") or {}
        return quality.get("rtt_ms")

    async def until(http: httpx.AsyncClient, ok: Any, within: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < within:
            value = await rtt_ms(http)
            if value is not None and ok(value):
                return time.monotonic() - started
            await asyncio.sleep(0.1)
        raise AssertionError(f"round trip {await rtt_ms(http)} ms after {within} s")

    async def scenario(http: httpx.AsyncClient, context: Any, netns: StationNetns) -> None:
        _page, auth = await a_connected_call(http, context)
        await asyncio.sleep(6)
        clean = await rtt_ms(http)
        assert clean is not None and clean < 60, clean
        delay = {"delay_ms": 150}
        netns.impair(to_station=delay, to_hub=delay)
        up = await until(http, lambda v: v >= 280, within=8)
        netns.impair(to_station={}, to_hub={})
        down = await until(http, lambda v: v < 60, within=6)
        print(f"MEASURED rtt_clean_ms={clean:.0f} rtt_up_s={up:.1f} rtt_down_s={down:.1f}")
        await http.post("/v1/call/end", headers=auth)

    asyncio.run(in_station_netns(tmp_path, scenario, show_log=_decisions, impaired=True))


def _decisions(line: str) -> bool:
    """The ladder's and the judge's decisions (no personal data in these lines)."""
    return ": video " in line or ": link " in line or "audio only" in line or "re-dial" in line

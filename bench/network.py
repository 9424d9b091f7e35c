"""Calls on bad links (issue 18): the station against Chromium↔Chromium, impairment by impairment.

Everything runs on this machine, in a loopback-only network namespace (the script re-runs
itself under ``unshare --net``): the hub and the GP's Chromium in it, the station in a second
namespace, the link between them through the userspace netem of
``tests/integration/impair.py`` (this kernel has no netem): loss, delay and a rate cap with a
50-packet queue, the same both ways.

Two pairs through the same hub, the same GP page and the same impaired link, interleaved (the
order alternates per repeat):

* **station ↔ Chromium**: the real stationd (``kontaktstation daemon`` in the station's
  namespace: test-pattern camera 640x480, a tone as its microphone) and the GP page;
* **Chromium ↔ Chromium**: a second headless Chromium *in the station's namespace* acting as
  the station (``bench/call_js.py``'s Chromium station: plain WebRTC through the hub's station
  API, its fake camera at 640x480 30 fps, with an oscillator at the station's tone level as its
  microphone) and the same GP page.

Each call is set up on the clean link, runs ``--settle`` seconds, then the row's impairment is
put on; after ``--adapt`` seconds the figures are taken over ``--seconds`` seconds:

* station → GP: the GP page's ``inbound-rtp`` (frames decoded per second, the last width, kbit/s)
  and audio gaps heard at the GP from the station's tone (``tests/integration/tone_meter.py``:
  silence after the GP's jitter buffer and concealment; p99 and longest);
* GP → station: frames per second at the station (stationd: its decoded frames from
  ``/v1/call``; the Chromium station: ``inbound-rtp``'s ``framesDecoded``) and the share of the
  GP's audio that was decoded rather than lost or concealed (stationd: decoded 20 ms frames
  over the time; Chromium: ``totalSamplesReceived - concealedSamples`` over the time);
* for the station: whether it went audio only, and re-dials (its attempt's generation).

Rows (``--rows``): clean, loss2, loss5, loss10 (random loss), rtt200 (100 ms each way), cap1m,
cap512k, cap256k.

Times to adapt and recover (``--transitions N``, N interleaved calls per pair): after
``--settle`` seconds clean, a 256 kbit/s cap both ways for ``--hold`` seconds, then none. One
stopwatch (this script's monotonic clock, polled every 0.1 s) from the moment the cap is put
on: the GP page's "Kun lyd" label shown and stationd in audio only (the Chromium station has
no audio only: none); from the moment it is taken off: video back at the GP (at least 10
frames decoded in the last second, and neither the label nor stationd saying audio only: a
trial's video under the label is not back) and back to full size (640 wide, at least 20
frames in the last second), the same criteria for both pairs (Chromium, never audio only,
has its video back at the first full second).

Not here yet: UDP blocked (``tests/integration/test_turn_paths.py`` has the station's side of
it) and glass-to-glass latency under impairment.

Prints one JSON object per line: ``network_row`` per pair and repeat, ``network_ratio`` per row
(the station's median ÷ Chromium's for fps each way; ``met`` when both are at least 0.95,
a run's noise, and the station's audio gap p99 is no longer than Chromium's or 20 ms);
``network_transition`` per pair and call and ``network_transitions`` (medians with 95 %
intervals; the recovery's station ÷ Chromium ratio with a paired bootstrap interval). As root:
``.venv/bin/python bench/network.py [--rows clean,loss5,cap1m,cap256k] [--repeats 2]
[--transitions 5]`` (``--rows=`` for none).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() not in (HERE, REPO))]

from playwright.async_api import async_playwright  # noqa: E402

from bench.call import (  # noqa: E402
    HubApi,
    emit,
    load,
    median_ci,
    percentile,
    ratio_ci,
    rerun_in_loopback_namespace,
)
from bench.call_js import JS_STATION_PREPARE, JS_STATION_START  # noqa: E402
from tests.integration.call_harness import wait_for  # noqa: E402
from tests.integration.chromium import CHROMIUM, CHROMIUM_ARGS, chromium  # noqa: E402
from tests.integration.daemon_harness import uds_client  # noqa: E402
from tests.integration.hub_server import STATION_TOKEN  # noqa: E402
from tests.integration.test_call_network_loss import (  # noqa: E402
    HUB_ADDRESS,
    StationNetns,
    _call,
    _prepare_station_data,
    a_connected_call,
    hub_on,
    stationd_in,
)
from tests.integration.test_call_video_ladder import GP_INBOUND_VIDEO_JS  # noqa: E402
from tests.integration.tone_meter import (  # noqa: E402
    GP_REMOTE_AUDIO_TRACK_JS,
    TONE_METER_INSTALL_JS,
    TONE_METER_READ_JS,
)

ROWS: dict[str, dict[str, Any]] = {
    "clean": {},
    "loss2": {"loss": 0.02},
    "loss5": {"loss": 0.05},
    "loss10": {"loss": 0.10},
    "rtt200": {"delay_ms": 100},
    "cap1m": {"rate_bps": 1_000_000, "queue": 50},
    "cap512k": {"rate_bps": 512_000, "queue": 50},
    "cap256k": {"rate_bps": 256_000, "queue": 50},
}
#: The transitions' cap (the issue's: audio only within 10 s, video back within 10 s).
TRANSITION_CAP = ROWS["cap256k"]
POLL_S = 0.1
#: The station's video at the GP: flowing, and back to full size (the same for both pairs).
FLOWING_FPS = 10.0
FULL_FPS = 20.0
FULL_WIDTH = 640

#: What the station side tells: frames decoded, audio, and anything else to report.
StationNow = Callable[[], Awaitable[dict[str, Any]]]
#: What a call is used for once connected: the GP's page and the station's figures in, figures out.
Phase = Callable[[Any, StationNow], Awaitable[dict[str, Any]]]

CHROMIUM_STATION_INBOUND_JS = """
async () => {
  const out = {frames: 0, width: 0, samples: 0, concealed: 0, connected: false};
  out.connected = window.benchPc.connectionState === "connected";
  for (const s of (await window.benchPc.getStats()).values()) {
    if (s.type === "inbound-rtp" && s.kind === "video") {
      out.frames = s.framesDecoded || 0; out.width = s.frameWidth || 0;
    }
    if (s.type === "inbound-rtp" && s.kind === "audio") {
      out.samples = s.totalSamplesReceived || 0; out.concealed = s.concealedSamples || 0;
    }
  }
  return out;
}
"""


@contextlib.asynccontextmanager
async def browser_in(netns: StationNetns, profile: Path, origin: str) -> AsyncIterator[Any]:
    """A headless Chromium whose network is the station's namespace (a wrapper ``nsenter``s
    it; Playwright talks to it over pipes, which no namespace touches). The hub's address
    there is plain http, so it is declared a secure origin for the camera."""
    wrapper = profile.parent / "chromium-in-station-netns"
    wrapper.write_text(f'#!/bin/sh\nexec nsenter -t {netns.pid} -n -- {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    args = [
        *CHROMIUM_ARGS,
        f"--unsafely-treat-insecure-origin-as-secure={origin}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(wrapper), headless=True, args=args
        )
        try:
            yield context
        finally:
            await context.close()


async def start_tone_meter(gp: Any) -> None:
    state = await gp.evaluate(
        f"async () => ({TONE_METER_INSTALL_JS})(({GP_REMOTE_AUDIO_TRACK_JS})())"
    )
    assert state == "running", state


async def gp_side(gp: Any, before: dict[str, Any] | None, seconds: float) -> dict[str, Any]:
    stats = await gp.evaluate(GP_INBOUND_VIDEO_JS)
    if before is None:
        return dict(stats)
    tone = await gp.evaluate(TONE_METER_READ_JS)
    gaps = sorted(tone["gaps_ms"]) or [0.0]
    return {
        "to_gp_fps": round((stats["frames"] - before["frames"]) / seconds, 1),
        "to_gp_width": stats["width"],
        "to_gp_kbps": round((stats["bytes"] - before["bytes"]) * 8 / seconds / 1000),
        "to_gp_audio_gap_p99_ms": round(percentile(gaps, 0.99), 1),
        "to_gp_audio_gap_longest_ms": round(gaps[-1], 1),
        "to_gp_tone_heard_s": round(tone["seconds"], 1),
    }


async def measure(
    netns: StationNetns,
    impairment: dict[str, Any],
    args: argparse.Namespace,
    gp: Any,
    station_now: Any,
) -> dict[str, Any]:
    """Impair, wait ``--adapt``, then the figures over ``--seconds`` (see the module)."""
    await asyncio.sleep(args.settle)
    await start_tone_meter(gp)
    netns.impair(to_station=impairment, to_hub=impairment)
    await asyncio.sleep(args.adapt)
    await gp.evaluate(TONE_METER_READ_JS)  # start counting gaps now
    gp0, st0, t0 = await gp_side(gp, None, 0), await station_now(), time.monotonic()
    await asyncio.sleep(args.seconds)
    elapsed = time.monotonic() - t0
    gp1, st1 = await gp_side(gp, gp0, elapsed), await station_now()
    netns.impair()  # clean again for the next call's set-up
    return {
        **gp1,
        "to_station_fps": round((st1["frames"] - st0["frames"]) / elapsed, 1),
        "to_station_audio_share": round((st1["audio_s"] - st0["audio_s"]) / elapsed, 3),
        **{k: v for k, v in st1.items() if k not in ("frames", "audio_s")},
    }


async def transition(
    netns: StationNetns, args: argparse.Namespace, gp: Any, station_now: StationNow
) -> dict[str, Any]:
    """The cap on, then off (see the module): seconds to each step, None when not reached."""
    await asyncio.sleep(args.settle)
    label = gp.locator("#audio-only-notice")
    netns.impair(to_station=TRANSITION_CAP, to_hub=TRANSITION_CAP)
    capped = time.monotonic()
    label_s = station_s = None
    while time.monotonic() - capped < args.hold:
        await asyncio.sleep(POLL_S)
        now = time.monotonic()  # what the two looks below see is stamped with this
        if label_s is None and await label.is_visible():
            label_s = now - capped
        if station_s is None and (await station_now()).get("audio_only"):
            station_s = now - capped
    netns.impair()
    cleared = time.monotonic()
    window: deque[tuple[float, int]] = deque()
    back_s = full_s = None
    while full_s is None and (now := time.monotonic()) - cleared < args.recover_limit:
        stats = await gp.evaluate(GP_INBOUND_VIDEO_JS)
        # Audio only ends when both sides say so (a trial's video under the label is not back).
        labelled = await label.is_visible() or bool((await station_now()).get("audio_only"))
        window.append((now, stats["frames"]))
        while len(window) > 1 and now - window[1][0] >= 1.0:
            window.popleft()  # the oldest look at least a second ago stays first
        then, frames = window[0]
        if now - then >= 0.95:
            fps = (stats["frames"] - frames) / (now - then)
            if back_s is None and fps >= FLOWING_FPS and not labelled:
                back_s = now - cleared
            if fps >= FULL_FPS and stats["width"] >= FULL_WIDTH:
                full_s = now - cleared
        await asyncio.sleep(POLL_S)
    last = await station_now()
    return {
        "audio_only_label_s": _r2(label_s),
        "audio_only_station_s": _r2(station_s),
        "video_back_s": _r2(back_s),
        "full_size_s": _r2(full_s),
        "redialled": last.get("redialled"),
    }


def _r2(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 2)


async def station_pair(http: Any, gp_context: Any, phase: Phase) -> dict[str, Any]:
    gp, auth = await a_connected_call(http, gp_context)
    generation = (await _call(http))["generation"]

    async def station_now() -> dict[str, Any]:
        call = await _call(http)
        media = call["media"]
        return {
            "frames": media["remote_video_frames"],
            "audio_s": media["remote_audio_frames"] * 0.02,
            "audio_only": call["audio_only"],
            "redialled": call["generation"] != generation,
            "sent_video_bps": (media.get("sent_video") or {}).get("bitrate"),
        }

    try:
        return await phase(gp, station_now)
    finally:
        await http.post("/v1/call/end", headers=auth)
        await http.post("/v1/lock")  # from wrap-up, so that the next call's staff can unlock
        await gp.close()


async def chromium_pair(
    hub: HubApi, hub_url: str, gp_context: Any, station_context: Any, phase: Phase
) -> dict[str, Any]:
    room = await hub.room()
    station = await station_context.new_page()
    await station.goto(f"{hub_url}/bench-station")  # any same-origin page will do
    await station.evaluate(JS_STATION_PREPARE, {"tone": True})
    await station.evaluate(JS_STATION_START, {"roomId": room["room_id"], "token": hub.token})
    gp = await gp_context.new_page()
    await gp.goto(room["gp_url"])
    await gp.get_by_role("button", name="Lad komme ind").click()

    async def connected() -> bool:
        return bool((await station.evaluate(CHROMIUM_STATION_INBOUND_JS))["connected"])

    await wait_for(connected, what="Chromium station connected", timeout=30)

    async def station_now() -> dict[str, Any]:
        stats = await station.evaluate(CHROMIUM_STATION_INBOUND_JS)
        return {
            "frames": stats["frames"],
            "audio_s": (stats["samples"] - stats["concealed"]) / 48000,
            "from_gp_width": stats["width"],
        }

    try:
        return await phase(gp, station_now)
    finally:
        await hub.end(room["room_id"])
        await gp.close()
        await station.close()


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ks-bench-network-") as tmp:
        tmp_path = Path(tmp)
        netns = StationNetns(impaired=True)
        try:
            data_dir = tmp_path / "station" / "data"
            _prepare_station_data(data_dir)
            async with hub_on(HUB_ADDRESS, tmp_path / "hub") as hub_url:
                hub = HubApi(hub_url, STATION_TOKEN)
                origin = hub_url
                async with (
                    stationd_in(netns, data_dir, hub_url) as socket_path,
                    chromium(tmp_path / "gp-profile") as gp_context,
                    browser_in(netns, tmp_path / "station-profile", origin) as station_context,
                ):
                    http = uds_client(socket_path, timeout=30.0)
                    try:
                        bench = Pairs(http, hub, hub_url, gp_context, station_context)
                        await rows(args, bench, netns)
                        await transitions(args, bench, netns)
                    finally:
                        await http.aclose()
        finally:
            netns.close()
            if args.stationd_log is not None:
                with contextlib.suppress(OSError):
                    shutil.copyfile(tmp_path / "station" / "stationd.log", args.stationd_log)


@dataclass(frozen=True)
class Pairs:
    """What both pairs' calls are made with (see the module)."""

    http: Any  # stationd's socket
    hub: HubApi
    hub_url: str
    gp_context: Any
    station_context: Any  # the Chromium station's browser

    async def call(self, pair: str, phase: Phase) -> dict[str, Any]:
        """One call of ``pair`` ("station" or "chromium"), used for ``phase``."""
        if pair == "station":
            return await station_pair(self.http, self.gp_context, phase)
        return await chromium_pair(
            self.hub, self.hub_url, self.gp_context, self.station_context, phase
        )


async def rows(args: argparse.Namespace, bench: Pairs, netns: StationNetns) -> None:
    for name in args.rows:
        row = ROWS[name]
        results: dict[str, list[dict[str, Any]]] = {"station": [], "chromium": []}
        for repeat in range(args.repeats):
            order = ["station", "chromium"] if repeat % 2 == 0 else ["chromium", "station"]
            for pair in order:
                counted = netns.counters()

                async def phase(gp: Any, station_now: StationNow, row: dict[str, Any] = row) -> Any:
                    return await measure(netns, row, args, gp, station_now)

                figures = await bench.call(pair, phase)
                results[pair].append(figures)
                emit(
                    bench="network_row",
                    row=name,
                    impairment=row,
                    pair=pair,
                    repeat=repeat,
                    link=_packets_since(counted, netns.counters()),
                    **figures,
                )
        ratios = {}
        for key in ("to_gp_fps", "to_station_fps"):
            ours = statistics.median(r[key] for r in results["station"])
            theirs = statistics.median(r[key] for r in results["chromium"])
            ratios[key] = round(ours / theirs, 2) if theirs else None
        gaps = {
            pair: statistics.median(r["to_gp_audio_gap_p99_ms"] for r in results[pair])
            for pair in results
        }
        emit(
            bench="network_ratio",
            row=name,
            repeats=args.repeats,
            fps_ratio=ratios,
            audio_gap_p99_ms=gaps,
            met=all(v is not None and v >= 0.95 for v in ratios.values())
            and gaps["station"] <= max(gaps["chromium"], 20),
        )


async def transitions(args: argparse.Namespace, bench: Pairs, netns: StationNetns) -> None:
    """``--transitions`` calls per pair, interleaved: the cap on and off (see the module)."""
    if not args.transitions:
        return
    results: dict[str, list[dict[str, Any]]] = {"station": [], "chromium": []}

    async def phase(gp: Any, station_now: StationNow) -> dict[str, Any]:
        return await transition(netns, args, gp, station_now)

    for repeat in range(args.transitions):
        order = ["station", "chromium"] if repeat % 2 == 0 else ["chromium", "station"]
        for pair in order:
            figures = await bench.call(pair, phase)
            results[pair].append(figures)
            emit(bench="network_transition", pair=pair, repeat=repeat, **figures)
    summary: dict[str, Any] = {}
    for pair, calls in results.items():
        for key in ("audio_only_label_s", "audio_only_station_s", "video_back_s", "full_size_s"):
            values = [call[key] for call in calls if call[key] is not None]
            if values:
                median, low, high = median_ci(values)
                summary[f"{pair}_{key}"] = {
                    "median": round(median, 2),
                    "ci95": [round(low, 2), round(high, 2)],
                    "reached": f"{len(values)}/{len(calls)}",
                }
    for key in ("video_back_s", "full_size_s"):
        pairs = [
            (ours[key], theirs[key])
            for ours, theirs in zip(results["station"], results["chromium"], strict=True)
            if ours[key] is not None and theirs[key] is not None
        ]
        if pairs and all(theirs > 0 for _ours, theirs in pairs):
            point, low, high = ratio_ci([o for o, _ in pairs], [t for _, t in pairs])
            summary[f"{key}_ratio"] = {
                "ratio": round(point, 2),
                "ci95": [round(low, 2), round(high, 2)],
            }
    emit(
        bench="network_transitions",
        cap=TRANSITION_CAP,
        hold_s=args.hold,
        calls_per_pair=args.transitions,
        **summary,
    )


def _packets_since(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The impairing bridge's counters over one call, towards the station and the hub."""
    names = {"to_b": "to_station", "to_a": "to_hub"}
    return {names[way]: {k: after[way][k] - before[way][k] for k in after[way]} for way in names}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows",
        type=lambda text: [name for name in text.split(",") if name],
        default=list(ROWS),
        help=", ".join(ROWS),
    )
    parser.add_argument("--repeats", type=int, default=1, help="calls per pair and row")
    parser.add_argument("--settle", type=float, default=8.0, help="seconds clean after set-up")
    parser.add_argument("--adapt", type=float, default=10.0, help="seconds impaired, unmeasured")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds measured")
    parser.add_argument(
        "--transitions", type=int, default=0, help="calls per pair with the cap on and off"
    )
    parser.add_argument("--hold", type=float, default=20.0, help="seconds under the cap")
    parser.add_argument(
        "--recover-limit", type=float, default=60.0, help="seconds to wait for full size"
    )
    parser.add_argument(
        "--stationd-log", type=Path, help="keep stationd's log here (the link judge's steps)"
    )
    args = parser.parse_args()
    unknown = [name for name in args.rows if name not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; known: {', '.join(ROWS)}")
    if (status := rerun_in_loopback_namespace()) is not None:
        return status
    emit(
        bench="network_environment",
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=platform.machine(),
        python=platform.python_version(),
        cpus=os.cpu_count(),
        load_average=load(),
        rows=args.rows,
        repeats=args.repeats,
        settle_s=args.settle,
        adapt_s=args.adapt,
        seconds=args.seconds,
        transitions=args.transitions,
        hold_s=args.hold,
    )
    asyncio.run(run(args))
    emit(bench="network_environment_end", load_average=load())
    return 0


if __name__ == "__main__":
    sys.exit(main())

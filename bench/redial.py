"""Network pauses and re-dials, measured on stationd as a process: what the media timeout and
the prepared next attempt (issue 18 item 4) cost or save.

Everything runs on this machine, in a loopback-only network namespace (the script re-runs
itself under ``unshare --net``), with the machinery of
``tests/integration/test_call_network_loss.py``: the hub on one end of a veth pair, stationd
(``python -m station.daemon.app``, fake hardware) in a namespace of its own on the other, and
the GP page in Debian's Chromium. One call per round; inside it the station's link is cut
(every packet dropped both ways, silently: a dead Wi-Fi) for each pause in ``--pauses``, twice,
in a shuffled order. Pauses under the media timeout (3 s) should come back by themselves;
longer ones end the attempt and the station re-dials.

**One stopwatch**: this process's ``time.monotonic()``. The cut and the restore are ``tc``
commands run from here; after the restore, stationd's ``GET /v1/call`` (its Unix socket, not
cut) is read every 20 ms until the GP's decoded video frames grow: ``back_after_restore_s``.
Whether the station re-dialled is read from the call's generation.

**Like with like**: rounds alternate between stationd with the prepared next attempt
(``prewarm: true``, the default) and without it (``prewarm: false``); everything else (the GP
page, which prepares its side in both, the hub, the pauses and their order) is the same.
Before every cut the call has flowed for ``--settle`` seconds, and with ``prewarm`` the next
attempt is prepared. Per mode and pause: median and its 95 % order-statistic interval.

Host candidates on the veth only (no STUN or TURN in the path): the prepared attempt saves
its gathering and server probes, which on a link without delay take milliseconds; on a real
link each TURN allocation alone is two round trips more.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() not in (HERE, REPO))]

from bench.call import emit, median_ci, rerun_in_loopback_namespace, run_measured  # noqa: E402
from tests.integration.call_harness import wait_for  # noqa: E402
from tests.integration.test_call_network_loss import (  # noqa: E402
    gp_admits_a_call,
    in_station_netns,
)


async def _call(http: Any) -> dict[str, Any]:
    return dict((await http.get("/v1/call")).json())


async def _frames(http: Any) -> int:
    return int((await _call(http))["media"]["remote_video_frames"])


async def _flowing(http: Any, prewarm: bool) -> bool:
    call = await _call(http)
    return call["phase"] == "connected" and (not prewarm or call["next_attempt_prepared"])


async def one_round(
    args: argparse.Namespace, number: int, prewarm: bool, out: dict[tuple[bool, float], list]
) -> None:
    pauses = [p for p in args.pauses for _ in range(args.cuts_per_pause)]
    random.Random(number).shuffle(pauses)

    async def scenario(http: Any, context: Any, netns: Any) -> None:
        _page, auth = await gp_admits_a_call(http, context)
        for pause in pauses:
            await wait_for(lambda: _flowing(http, prewarm), timeout=60, what="flowing")
            await asyncio.sleep(args.settle)
            await wait_for(lambda: _flowing(http, prewarm), timeout=60, what="still flowing")
            generation = (await _call(http))["generation"]
            netns.cut()
            await asyncio.sleep(pause)
            netns.restore()
            restored = time.monotonic()
            frames = await _frames(http)
            audio_only = False
            while True:
                call = await _call(http)
                audio_only = audio_only or call["audio_only"]
                if call["media"]["remote_video_frames"] > frames:
                    break
                if time.monotonic() - restored > 60:
                    raise AssertionError(f"no video 60 s after a {pause} s pause")
                await asyncio.sleep(0.02)
            back = time.monotonic() - restored
            call = await _call(http)
            redialled = call["generation"] > generation
            out.setdefault((prewarm, pause), []).append(back)
            emit(
                bench="redial_cut",
                round=number,
                prewarm=prewarm,
                pause_s=pause,
                back_after_restore_s=round(back, 3),
                redialled=redialled,
                audio_only=audio_only,
                attempt_prepared=call["attempt_prepared"] if redialled else None,
            )
        await http.post("/v1/call/end", headers=auth)

    with tempfile.TemporaryDirectory(prefix="ks-redial-") as tmp:
        shown = (lambda line: "call" in line) if args.show_log else None
        await in_station_netns(Path(tmp), scenario, call={"prewarm": prewarm}, show_log=shown)


async def run(args: argparse.Namespace) -> None:
    out: dict[tuple[bool, float], list[float]] = {}
    for number in range(args.rounds):
        await one_round(args, number, prewarm=number % 2 == 0, out=out)
    for (prewarm, pause), values in sorted(out.items()):
        median, low, high = median_ci(values)
        emit(
            bench="redial",
            prewarm=prewarm,
            pause_s=pause,
            figure="back_after_restore_s",
            median=round(median, 3),
            ci95=[round(low, 3), round(high, 3)],
            n=len(values),
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6, help="calls; modes alternate")
    parser.add_argument(
        "--pauses",
        type=lambda text: [float(x) for x in text.split(",")],
        default=[0.5, 1.0, 2.0, 2.5, 4.0, 6.0],
        help="seconds the link is cut, comma-separated",
    )
    parser.add_argument("--cuts-per-pause", type=int, default=2)
    parser.add_argument(
        "--show-log", action="store_true", help="print stationd's call log lines after each call"
    )
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of flow before a cut")
    args = parser.parse_args()
    if (status := rerun_in_loopback_namespace()) is not None:
        return status
    os.environ["KONTAKTSTATION_TEST_NETNS"] = "loopback-only"
    return run_measured("redial", run(args), rounds=args.rounds, pauses=args.pauses)


if __name__ == "__main__":
    sys.exit(main())

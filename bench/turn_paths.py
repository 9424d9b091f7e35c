"""Set-up through TURN over UDP, TCP and TLS on 443: what each path costs.

coturn (with a test CA's certificate, made here) on 127.0.0.1: UDP and TCP on 3478, TLS on
443, in a loopback-only network namespace (the script re-runs itself under ``unshare --net``
when it is not in one; binding 443 needs root there). The station's CA trust is the real
mechanism: ``SSL_CERT_FILE`` names the test CA (OpenSSL's default store; on the Pi the OS
store with the municipality's CA); verification stays on.

For each path, interleaved (UDP, TCP, TLS, UDP, ...) ``--repeats`` times:

* ``allocation_ms``: one authenticated TURN allocation (``station.call.probe.probe_turn_paths``,
  what the pre-call check does), TLS handshake included;
* ``setup_ms``: two aiortc peers in this process, the "station" relay-only through that path,
  the other host-only on 127.0.0.1: ``createOffer`` → the data channel open at both ends
  (gathering with its TURN allocation, the answer, ICE checks through the relay, DTLS, SCTP).

One JSON object per line: each repeat's figures, then per path the median with its 95 %
interval (binomial order statistics) and the ratio TCP/UDP and TLS/UDP of the medians.
Usage: ``.venv/bin/python bench/turn_paths.py --repeats 15``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() not in (HERE, REPO))]

from bench.call import median_ci, rerun_in_loopback_namespace, run_measured  # noqa: E402
from station.call.ice import build_rtc_configuration, restrict_host_candidates_to_loopback  # noqa: E402
from station.call.probe import probe_turn_paths  # noqa: E402
from tests.integration.turn_tls import TlsCoturn, running_coturn_tls  # noqa: E402

PATHS = ("udp", "tcp", "tls")


def emit(**figures: Any) -> None:
    print(json.dumps(figures), flush=True)


async def setup_once(turn: TlsCoturn, path: str) -> float:
    """ms from createOffer to the data channel open at both ends, station relayed via ``path``."""
    from aiortc import RTCPeerConnection

    url = turn.urls[PATHS.index(path)]
    station = RTCPeerConnection(build_rtc_configuration([turn.ice_server((url,))], relay_only=True))
    gp = RTCPeerConnection(build_rtc_configuration([]))
    opened = [asyncio.get_running_loop().create_future() for _ in range(2)]
    channel = station.createDataChannel("control")
    channel.on("open", lambda: opened[0].done() or opened[0].set_result(None))

    @gp.on("datachannel")
    def _on_channel(remote: Any) -> None:
        if not opened[1].done():
            opened[1].set_result(None)

    try:
        with restrict_host_candidates_to_loopback():
            started = time.perf_counter()
            await station.setLocalDescription(await station.createOffer())
            await gp.setRemoteDescription(station.localDescription)
            await gp.setLocalDescription(await gp.createAnswer())
            await station.setRemoteDescription(gp.localDescription)
            async with asyncio.timeout(20):
                await asyncio.gather(*opened)
            took = (time.perf_counter() - started) * 1000
        offer = station.localDescription.sdp
        assert " typ relay" in offer and " typ host" not in offer, "relay-only offer expected"
        return took
    finally:
        await station.close()
        await gp.close()


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ks-turn-bench-") as tmp:
        async with running_coturn_tls(Path(tmp), "127.0.0.1") as turn:
            os.environ["SSL_CERT_FILE"] = str(turn.ca.ca_pem)
            setup: dict[str, list[float]] = {p: [] for p in PATHS}
            allocation: dict[str, list[float]] = {p: [] for p in PATHS}
            for warm in PATHS:  # one of each first, not counted (imports, first TLS context)
                await setup_once(turn, warm)
            for repeat in range(args.repeats):
                for index, path in enumerate(PATHS):
                    server = turn.ice_server((turn.urls[index],))
                    (result,) = await probe_turn_paths([server], 3.0)
                    assert result.ok and result.ms is not None, result
                    allocation[path].append(result.ms)
                    ms = await setup_once(turn, path)
                    setup[path].append(ms)
                    emit(
                        bench="turn_path_repeat",
                        repeat=repeat,
                        path=path,
                        allocation_ms=round(result.ms, 2),
                        setup_ms=round(ms, 1),
                    )
                    await asyncio.sleep(args.interval)
            medians: dict[str, float] = {}
            for path in PATHS:
                figures = (("allocation_ms", allocation[path]), ("setup_ms", setup[path]))
                for name, values in figures:
                    median, low, high = median_ci(values)
                    if name == "setup_ms":
                        medians[path] = median
                    emit(
                        bench="turn_path",
                        path=path,
                        figure=name,
                        median=round(median, 2),
                        ci95=[round(low, 2), round(high, 2)],
                        n=len(values),
                    )
            emit(
                bench="turn_path_ratio",
                figure="setup_ms",
                tcp_over_udp=round(medians["tcp"] / medians["udp"], 3),
                tls_over_udp=round(medians["tls"] / medians["udp"], 3),
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between set-ups")
    args = parser.parse_args()
    if (status := rerun_in_loopback_namespace()) is not None:
        return status
    return run_measured("turn_paths", run(args), repeats=args.repeats)


if __name__ == "__main__":
    sys.exit(main())

"""The GP page opens the sealed round: what it costs the GP (issue 14's figure).

The hub on 127.0.0.1 (``tests.integration.hub_server``), a station client that seals the round
as stationd does (``station.keys.room_seal``, 20 residents with birth date, room and a
reason by default), and Debian's Chromium (headless, through Playwright) opening the GP link
with the room's key in its fragment. The page's own stopwatch (``performance.measure`` in
``hub/static/gp.js``, ``showWaiting``):

* ``opened_ms``: the sealed box in hand → opened (base64url, WebCrypto's AES-GCM decrypt,
  JSON);
* ``shown_ms``: the same start → the list of residents built in the page (before paint).

Each run is a new room and a new page. One JSON object per line: each run, then the medians
with their 95 % intervals (binomial order statistics). Usage:
``.venv/bin/python bench/gp_round.py --runs 15 --residents 20``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() not in (HERE, REPO))]

from bench.call import median_ci  # noqa: E402
from station.call.ice import restrict_host_candidates_to_loopback  # noqa: E402
from tests.integration.chromium import chromium  # noqa: E402
from tests.integration.hub_server import STATION_TOKEN, running_hub  # noqa: E402
from tests.integration.station_peer import StationHubClient, StationPeer  # noqa: E402

MEASURES_JS = """
() => {
  const get = (name) => performance.getEntriesByName(name)[0];
  const opened = get("round-opened"), shown = get("round-shown");
  return opened && shown ? [opened.duration, shown.duration] : null;
}
"""


def round_of(count: int) -> list[dict[str, Any]]:
    """``count`` residents as a nursing-home round would have them (fields at their usual size)."""
    return [
        {
            "display_name": f"Beboer Nummer {i:02d} Sørensen-Kræmer",
            "birth_date": f"19{30 + i % 60:02d}-0{1 + i % 9}-1{i % 10}",
            "room": f"Stue {i}B",
            "reason": "Hoste gennem tre dage, feber om aftenen; pårørende spørger til medicinen.",
        }
        for i in range(1, count + 1)
    ]


async def run(runs: int, residents: int) -> None:
    opened_all: list[float] = []
    shown_all: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-gp-round-") as tmp,
        restrict_host_candidates_to_loopback(),
    ):
        async with running_hub(Path(tmp) / "hub") as hub:
            station = StationHubClient(hub.base_url, STATION_TOKEN)
            try:
                async with chromium(Path(tmp) / "profile") as context:
                    for index in range(runs):
                        start = datetime.now(UTC) + timedelta(minutes=5)
                        created = await station.create_room(start, start + timedelta(minutes=30))
                        peer = StationPeer()
                        try:
                            offer = await peer.create_offer()
                            await station.post_offer(created["room_id"], offer, round_of(residents))
                            page = await context.new_page()
                            await page.goto(created["gp_link"])
                            await page.wait_for_function(MEASURES_JS, timeout=30_000)
                            opened, shown = await page.evaluate(MEASURES_JS)
                            count = await page.locator("#residents > li").count()
                            if count != residents:
                                raise SystemExit(f"the page showed {count} of {residents}")
                            await page.close()
                        finally:
                            await peer.close()
                            await station.end(created["room_id"])
                        opened_all.append(opened)
                        shown_all.append(shown)
                        print(
                            json.dumps(
                                {
                                    "run": index,
                                    "opened_ms": round(opened, 3),
                                    "shown_ms": round(shown, 3),
                                }
                            ),
                            flush=True,
                        )
            finally:
                await station.aclose()
    summary: dict[str, Any] = {
        "summary": "gp_round",
        "runs": runs,
        "residents": residents,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
    }
    for name, values in (("opened_ms", opened_all), ("shown_ms", shown_all)):
        median, low, high = median_ci(values)
        summary[name] = {
            "median": round(median, 3),
            "ci95": [round(low, 3), round(high, 3)],
            "max": round(max(values), 3),
        }
    print(json.dumps(summary), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--residents", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(run(args.runs, args.residents))


if __name__ == "__main__":
    main()

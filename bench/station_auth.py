"""The hub's cost of per-station credentials (issue 14 item 5).

Prints one JSON object per measurement:

* ``verify_signature``: the hub's check of one signed request's Ed25519 signature
  (:func:`provisioning.protocol.verify_request`, the same for a session request and every
  provisioning request), in-process;
* ``verify_session_token``: the check every rendezvous request pays (one HMAC-SHA256 and a
  parse, no database), in-process;
* ``session_request_http``: ``POST /api/provisioning/v1/rendezvous-session`` end to end over
  HTTP on 127.0.0.1 against a real hub (uvicorn, SQLite): signature, enrolled key, counter
  compare-and-set in the database, token issued; the station side's signing and counter fsync
  are outside the timed span (headers made beforehand);
* ``room_request_http``: ``GET /api/station/rooms/{id}`` with a session token vs the legacy
  shared token, interleaved, so the difference is the token check's.

Run: ``.venv/bin/python bench/station_auth.py [--n 2000] [--http 300]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from hub.provisioning.api import open_provisioning  # noqa: E402
from hub.station_auth import SessionTokens  # noqa: E402
from provisioning.identity import StationIdentity  # noqa: E402
from provisioning.protocol import sign_request, verify_request  # noqa: E402
from station.core.clock import SystemClock  # noqa: E402
from tests.integration.hub_server import STATION_TOKEN, it_key, running_hub  # noqa: E402

SESSION = "/api/provisioning/v1/rendezvous-session"


def figures(name: str, samples: list[float], **extra: object) -> None:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        json.dumps(
            {
                "measure": name,
                "n": len(samples),
                "median_us": round(statistics.median(samples) * 1e6, 1),
                "p99_us": round(p99 * 1e6, 1),
                **extra,
            }
        ),
        flush=True,
    )


def micro(n: int) -> None:
    key = Ed25519PrivateKey.generate()
    body = b'{"sent_at":"2026-12-06T12:00:00+00:00"}'
    now = int(time.time())
    signed = [sign_request(key, "POST", SESSION, i + 1, now, body) for i in range(n)]
    samples = []
    for headers in signed:
        started = time.perf_counter()
        verify_request(dict(headers), "POST", SESSION, body)
        samples.append(time.perf_counter() - started)
    figures("verify_signature", samples)

    tokens = SessionTokens(b"k" * 32, timedelta(minutes=15))
    token, _ = tokens.issue("abcdefghijklmnopqrstuvwx", datetime.now(UTC))
    clock = datetime.now(UTC)
    samples = []
    for _ in range(n * 10):
        started = time.perf_counter()
        tokens.verify(token, clock)
        samples.append(time.perf_counter() - started)
    figures("verify_session_token", samples)


async def http(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with running_hub(Path(tmp) / "hub") as hub:
            admin = open_provisioning(hub.settings, SystemClock(), signer=it_key(hub.settings))
            await admin.start()
            identity = StationIdentity(Ed25519PrivateKey.generate())
            await admin.preauthorise(identity.fingerprint, "solhaven", "Bench", "bench")
            async with httpx.AsyncClient(base_url=hub.base_url) as client:
                now = int(time.time())
                enroll, body = "/api/provisioning/v1/enroll", b'{"software_version":"0.1.0"}'
                headers = identity.sign_request("POST", enroll, 1, now, body)
                headers["Content-Type"] = "application/json"
                first = await client.post(enroll, content=body, headers=headers)
                assert first.status_code == 200, first.text  # first contact: approved
                session_samples = []
                token = ""
                for counter in range(2, n + 2):
                    headers = identity.sign_request("POST", SESSION, counter, now, b"")
                    started = time.perf_counter()
                    response = await client.post(SESSION, headers=headers)
                    session_samples.append(time.perf_counter() - started)
                    assert response.status_code == 200, response.text
                    token = response.json()["token"]
                figures("session_request_http", session_samples, backend="sqlite")
                booking = {
                    "starts_at": (datetime.now(UTC) + timedelta(minutes=5)).isoformat(),
                    "ends_at": (datetime.now(UTC) + timedelta(minutes=20)).isoformat(),
                }
                room_id = {}
                for name, bearer in (("session", token), ("shared", STATION_TOKEN)):
                    created = await client.post(
                        "/api/station/rooms",
                        json=booking,
                        headers={"Authorization": f"Bearer {bearer}"},
                    )
                    assert created.status_code == 201, created.text
                    room_id[name] = created.json()["room_id"]
                samples: dict[str, list[float]] = {"session": [], "shared": []}
                for _ in range(n):
                    for name, bearer in (("session", token), ("shared", STATION_TOKEN)):
                        started = time.perf_counter()
                        response = await client.get(
                            f"/api/station/rooms/{room_id[name]}",
                            headers={"Authorization": f"Bearer {bearer}"},
                        )
                        samples[name].append(time.perf_counter() - started)
                        assert response.status_code == 200
                for name, values in samples.items():
                    figures("room_request_http", values, credential=name)
            await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--http", type=int, default=300)
    args = parser.parse_args()
    micro(args.n)
    asyncio.run(http(args.http))


if __name__ == "__main__":
    main()

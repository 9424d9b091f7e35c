"""Body limits over a real TCP connection: the client gets its 413, not a reset."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.integration.hub_server import STATION_TOKEN, running_hub


async def test_an_oversized_body_over_tcp_gets_a_413_not_a_reset(tmp_path: Path) -> None:
    async with running_hub(tmp_path / "hub") as hub, httpx.AsyncClient(timeout=10) as client:
        headers = {"Authorization": f"Bearer {STATION_TOKEN}"}
        for size in (200 * 1024, 900 * 1024):
            response = await client.post(
                f"{hub.base_url}/api/station/rooms",
                content=b"x" * size,
                headers={**headers, "Content-Type": "application/json"},
            )
            assert response.status_code == 413
            assert response.json()["code"] == "body_too_large"

        # Streamed (chunked) without a Content-Length: the same answer.
        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(40):
                yield b"y" * 8192

        response = await client.post(
            f"{hub.base_url}/api/station/rooms", content=chunks(), headers=headers
        )
        assert response.status_code == 413

"""The enrollment QR leads somewhere: the hub's /enroll page, in real headless Chromium.

A station's agent makes first contact with a real hub and gets its code; the QR payload the
lock screen draws is opened as IT's phone would open it: the page shows the same code and
fingerprint as the station's screen, and the command that approves it, and sends nothing to
the hub (the fragment never leaves the browser). A link without a valid code says so.
Runs inside a loopback-only network namespace (see ``netns.py``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import Request, expect

from provisioning.agent import ProvisioningAgent
from station.core.clock import SystemClock
from tests.integration.fake_station import FakeStationPort

from .chromium import chromium
from .daemon_harness import PROVISIONING_TEST_KDF
from .hub_server import provisioning_hub
from .netns import delegated_to_loopback_namespace

pytestmark = pytest.mark.browser

_TIMEOUT_MS = 15_000


async def _scenario(tmp_path: Path) -> None:
    expect.set_options(timeout=_TIMEOUT_MS)
    async with provisioning_hub(tmp_path / "hub") as (hub, admin):
        data_dir = tmp_path / "station"
        data_dir.mkdir(mode=0o700)
        agent = ProvisioningAgent(
            data_dir,
            hub.base_url,
            FakeStationPort(),
            SystemClock(),
            kdf_params=PROVISIONING_TEST_KDF,
            check_turn=False,
        )
        try:
            await agent.start()
            await agent.step_once()
            view = agent.enrollment_view()
            assert view is not None and view["qr_payload"] is not None and view["code"]
            async with chromium(tmp_path / "profile") as context:
                page = await context.new_page()
                requests: list[str] = []

                def seen(request: Request) -> None:
                    requests.append(request.url)

                page.on("request", seen)
                response = await page.goto(view["qr_payload"])
                assert response is not None and response.status == 200
                csp = response.headers["content-security-policy"]
                assert "connect-src 'none'" in csp and "script-src 'self'" in csp

                await expect(page.locator("#enroll-details")).to_be_visible()
                await expect(page.locator("#enroll-code")).to_have_text(view["code"])
                await expect(page.locator("#enroll-fingerprint")).to_have_text(
                    view["fingerprint"] or ""
                )
                await expect(page.locator("#enroll-command")).to_contain_text(
                    f"kontaktstation admin approve {view['code']} --care-home"
                )
                await expect(page.locator("#enroll-error")).to_be_hidden()
                # Only the page and its own script and style; the code never reached the hub.
                paths = sorted(url.removeprefix(hub.base_url).split("#")[0] for url in requests)
                assert paths == ["/enroll", "/enroll/enroll.js", "/gp/gp.css"]
                assert not any(view["code"] in url.split("#")[0] for url in requests)

                # The command on the page approves the station (as the CLI would run it).
                await admin.approve(view["code"], "solhaven", "Stue 1", "it-test")
                await agent.step_once()
                assert agent.status == "approved"

                for broken in ("#code=NOT-A-CODE&fp=X", "", "#fp=" + "A" * 24):
                    await page.goto(f"{hub.base_url}/enroll{broken}")
                    await page.reload()  # a fragment-only change would not re-run the script
                    await expect(page.locator("#enroll-error")).to_be_visible()
                    await expect(page.locator("#enroll-details")).to_be_hidden()
        finally:
            if agent.client is not None:
                await agent.client.aclose()


def test_enrollment_qr_opens_a_page_with_the_code_fingerprint_and_command(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if delegated_to_loopback_namespace(request):
        return
    asyncio.run(_scenario(tmp_path))

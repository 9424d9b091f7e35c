"""The GP types the short code staff read out (``/kode``) and reaches the waiting room.

Hub, the real stationd and headless Chromium (``scenario()`` of test_call_browser.py), in the
test's loopback-only namespace. stationd's call start hands staff the code and the address;
Chromium opens the address, types the code as a person might (lower case, a space), lands on
the GP page with the link's token, sees the waiting room, admits, and media flows. After
admission the code leads nowhere.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from playwright.async_api import expect

from .call_harness import wait_for
from .netns import delegated_to_loopback_namespace
from .test_call_browser import FRAMES_DECODED_JS, _state_is, scenario


@pytest.mark.browser
@pytest.mark.slow
def test_gp_types_the_code_and_reaches_the_waiting_room(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def run() -> None:
        async with scenario(tmp_path) as (_hub, st, context):
            started = await st.start_call()
            code, code_url = started["gp_code"], started["gp_code_url"]
            assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", code), code
            assert code_url.startswith("http://127.0.0.1:") and code_url.endswith("/kode")
            page = await context.new_page()
            await page.goto(code_url)
            field = page.get_by_label("Skriv koden, du har fået af plejehjemmet")
            # A wrong code first: a clear Danish message, still on the code page.
            await field.fill("ZZZZ ZZZZ" if code != "ZZZZ-ZZZZ" else "YYYY YYYY")
            await page.get_by_role("button", name="Gå til samtalen").click()
            await expect(page.locator("#code-error")).to_contain_text("Koden er ugyldig")
            # The right one, typed loosely.
            field = page.get_by_label("Skriv koden, du har fået af plejehjemmet")
            await field.fill(code.lower().replace("-", " "))
            await page.get_by_role("button", name="Gå til samtalen").click()
            await expect(page.get_by_role("heading", name="Stationen venter")).to_be_visible()
            # The link behind the code: the hub's token in the fragment, but not the room's
            # key (the hub never had it), so the sealed round stays shut until admitting.
            link, _key = started["gp_url"].rsplit(".", 1)
            assert page.url == link
            await expect(page.locator("#residents-note")).to_have_text(
                "Navnene vises, når du har lukket stationen ind."
            )
            assert await page.locator("#residents > li").count() == 0

            await page.get_by_role("button", name="Lad komme ind").click()
            await expect(page.locator("#view-call")).to_be_visible()
            # Admitted: the station sends the round and who is in front of the camera on the
            # data channel (end to end, DTLS), the first one marked.
            await expect(page.locator("#current-resident")).to_have_text(
                "Foran kameraet nu: Anna <b>Hansen</b> (1 af 2)"
            )
            round_ = page.locator("#call-round > li")
            await expect(round_).to_have_count(2)
            await expect(round_.nth(0).locator(".name")).to_have_text("Anna <b>Hansen</b>")
            await expect(round_.nth(1)).to_contain_text("Værelse: Stue 7")
            await expect(round_.nth(0)).to_have_attribute("aria-current", "true")
            assert await page.locator("#call-round b, #call-round script").count() == 0
            await wait_for(lambda: _state_is(st, "in_call_attended"), what="session in call")
            await page.wait_for_function(
                f"async () => (await ({FRAMES_DECODED_JS})()) > 0", polling=100
            )
            await wait_for(lambda: st.sink.stats("remote").frames > 0, what="GP video")

            # Admitted: the code has done its job and leads nowhere now.
            second = await context.new_page()
            await second.goto(code_url)
            await second.get_by_label("Skriv koden, du har fået af plejehjemmet").fill(code)
            await second.get_by_role("button", name="Gå til samtalen").click()
            await expect(second.locator("#code-error")).to_contain_text("Koden er ugyldig")
            await st.http.post("/v1/call/end", headers=st.auth)

    asyncio.run(run())

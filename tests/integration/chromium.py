"""Headless Chromium (the Debian package) as the GP's browser, driven by Playwright.

Never ``playwright install``: the system's /usr/bin/chromium is used. Fake camera and
microphone, permission prompts answered yes, and the two flags a loopback-only namespace needs
(without them ICE gathering never completes there).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, async_playwright

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "chromium"]

CHROMIUM = "/usr/bin/chromium"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream=fps=30",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


@asynccontextmanager
async def chromium(
    profile_dir: Path, extra_args: Sequence[str] = ()
) -> AsyncIterator[BrowserContext]:
    """A headless Chromium with a fresh profile; closed when the block ends.

    ``extra_args`` are added to :data:`CHROMIUM_ARGS` (e.g. a file for the fake camera).
    """
    if shutil.which(CHROMIUM) is None:
        pytest.skip("needs Debian's chromium (scripts/ensure-system-deps installs it)")
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=CHROMIUM,
            headless=True,
            args=[*CHROMIUM_ARGS, *extra_args],
        )
        try:
            yield context
        finally:
            await context.close()

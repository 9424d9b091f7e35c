"""Headless Firefox ESR (the Debian package) as the GP's browser, driven over WebDriver BiDi.

Firefox has WebDriver BiDi built in (``--remote-debugging-port``): no geckodriver, Playwright
or downloaded browser build. This is a small client over the ``websockets`` package with the
few commands the tests use: open a page, evaluate a script (awaiting promises), wait for a
condition, close.

Firefox never gathers a 127.0.0.1 candidate, and in a namespace with only ``lo`` it gathers
nothing at all: :func:`routable_address` gives the test's private namespace an interface with
an IPv4 address and a default route (a veth pair inside it: traffic stays in it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from .netns import inside_loopback_namespace

__all__ = ["FIREFOX", "FIREFOX_PREFS", "Firefox", "FirefoxPage", "firefox", "routable_address"]

FIREFOX = "/usr/bin/firefox-esr"

FIREFOX_PREFS: dict[str, Any] = {
    # Fake camera and microphone, no permission prompt.
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    # Host candidates as addresses, not mDNS names (mDNS needs a resolver here).
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    # The remote video and audio play without a click on the page.
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    # Nothing in the background wants the network.
    "app.update.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
}

_LISTENING = re.compile(r"WebDriver BiDi listening on (ws://\S+)")


class BiDiError(RuntimeError):
    """A WebDriver BiDi command failed, or a script threw."""


class Firefox:
    """One BiDi session: commands by id, events ignored."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def command(self, method: str, **params: Any) -> dict[str, Any]:
        command_id = next(self._ids)
        await self._ws.send(json.dumps({"id": command_id, "method": method, "params": params}))
        while True:
            message = json.loads(await self._ws.recv())
            if message.get("id") != command_id:
                continue  # an event, or an answer to nothing we wait for
            if message.get("type") == "error":
                raise BiDiError(f"{method}: {message.get('error')}: {message.get('message')}")
            result: dict[str, Any] = message["result"]
            return result

    async def new_page(self) -> FirefoxPage:
        created = await self.command("browsingContext.create", type="tab")
        return FirefoxPage(self, created["context"])


class FirefoxPage:
    """A browsing context (tab)."""

    def __init__(self, browser: Firefox, context: str) -> None:
        self.browser = browser
        self.context = context

    async def goto(self, url: str) -> None:
        await self.browser.command(
            "browsingContext.navigate", context=self.context, url=url, wait="complete"
        )

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` (awaited when it is a promise)."""
        result = await self.browser.command(
            "script.evaluate",
            expression=f"(async () => JSON.stringify(await ({expression})))()",
            target={"context": self.context},
            awaitPromise=True,
        )
        if result.get("type") == "exception":
            details = result.get("exceptionDetails", {})
            raise BiDiError(f"script threw: {details.get('text')}")
        value = result["result"].get("value")
        return None if value is None else json.loads(value)

    async def wait_for(self, expression: str, *, what: str, timeout: float = 20.0) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = await self.evaluate(expression)
            if last:
                return last
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what} (last value {last!r})")

    async def text(self, selector: str) -> str | None:
        return await self.evaluate(  # type: ignore[no-any-return]
            f"document.querySelector({json.dumps(selector)})?.textContent?.trim() ?? null"
        )

    async def visible(self, selector: str) -> bool:
        return bool(
            await self.evaluate(
                f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                " return !!e && !e.closest('[hidden]') && e.getClientRects().length > 0; })()"
            )
        )

    async def click(self, selector: str) -> None:
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")


@contextlib.asynccontextmanager
async def firefox(profile_dir: Path) -> AsyncIterator[Firefox]:
    """A headless Firefox ESR with a fresh profile and the fake-media prefs; closed at the end."""
    if shutil.which(FIREFOX) is None:
        pytest.skip("needs Debian's firefox-esr (scripts/ensure-system-deps installs it)")
    profile_dir.mkdir(parents=True, exist_ok=True)
    (profile_dir / "user.js").write_text(
        "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in FIREFOX_PREFS.items())
    )
    process = await asyncio.create_subprocess_exec(
        FIREFOX,
        "--headless",
        "--no-remote",
        "--profile",
        str(profile_dir),
        "--remote-debugging-port=0",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        url = None
        async with asyncio.timeout(30):
            while url is None:
                line = await process.stderr.readline()
                if not line:
                    raise AssertionError("firefox-esr exited before WebDriver BiDi listened")
                match = _LISTENING.search(line.decode(errors="replace"))
                url = match.group(1) if match else None
        drain = asyncio.create_task(_drain(process.stderr))
        async with websockets.connect(f"{url}/session", max_size=None) as ws:
            browser = Firefox(ws)
            await browser.command("session.new", capabilities={})
            try:
                yield browser
            finally:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(5):
                        await browser.command("browser.close")
        drain.cancel()
    finally:
        if process.returncode is None:
            process.terminate()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


ROUTABLE_ADDRESS = "10.203.0.1"


@contextlib.contextmanager
def routable_address() -> Iterator[str]:
    """An IPv4 address with a default route, in the test's private namespace only.

    A veth pair with both ends in this namespace (the kernel here has no ``dummy`` module):
    packets to the address are delivered locally (over ``lo``), packets to anywhere else go
    into the pair and end there, so nothing leaves this namespace. Removed at the end, so the
    namespace is loopback-only again.
    """
    assert inside_loopback_namespace(), "only ever inside the test's private namespace"
    commands = [
        ["ip", "link", "add", "ff0", "type", "veth", "peer", "name", "ff1"],
        ["ip", "addr", "add", f"{ROUTABLE_ADDRESS}/24", "dev", "ff0"],
        ["ip", "link", "set", "ff1", "up"],
        ["ip", "link", "set", "ff0", "up"],
        ["ip", "route", "add", "default", "dev", "ff0"],
    ]
    for command in commands:
        subprocess.run(command, check=True, capture_output=True)
    try:
        yield ROUTABLE_ADDRESS
    finally:
        subprocess.run(["ip", "link", "del", "ff0"], check=False, capture_output=True)

"""Staff enrollment at the station, in the staff UI, against a real stationd and a real hub.

IT issues one-time codes (the hub's admin service); the staff member types the code and
chooses a PIN on the station's screen; stationd redeems the code at the hub and makes the
keyslot; the new staff id is shown and filled into the PIN screen, and the PIN unlocks. The
second staff member needs a colleague's id and PIN; typing errors are caught on the screen.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Button, Digits, Input, Static

from hub.provisioning.service import ProvisioningService
from station.daemon.app import Daemon
from station.i18n import set_language
from tests.integration.daemon_harness import provisioned_daemon
from tests.integration.hub_server import provisioning_hub
from tests.tui.test_staff_support import wait_for
from tui.staff.main import create_app
from tui.staff.screens.enroll import EnrollScreen
from tui.staff.screens.pin import PinScreen
from tui.staff.screens.today import TodayScreen

SIZE = (100, 50)


async def until(condition: Callable[[], Any], within: float = 30.0) -> None:
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.05)


@asynccontextmanager
async def enrolled_station(tmp_path: Path) -> AsyncIterator[tuple[Daemon, ProvisioningService]]:
    """A hub, and a stationd approved by IT and running its first configuration."""
    set_language("da")
    async with provisioning_hub(tmp_path / "hub") as (hub, admin):
        data_dir = tmp_path / "station"
        data_dir.mkdir(mode=0o700)
        async with provisioned_daemon(data_dir, hub.base_url) as daemon:
            agent = daemon.provisioning
            assert agent is not None
            await until(lambda: agent.status == "pending")
            view = agent.enrollment_view()
            assert view is not None and view["code"]
            await admin.approve(view["code"], "solhaven", "Stue 1", "it-test")
            agent.wake()
            await until(lambda: agent.config_store is not None and agent.config_store.version)
            yield daemon, admin


def fill(screen: Any, **values: str) -> None:
    for field, value in values.items():
        screen.query_one(f"#{field.replace('_', '-')}", Input).value = value


def text(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def number_shown(screen: Any) -> str:
    """The staff number the result shows (large digits)."""
    return str(screen.query_one("#enroll-staff-number", Digits).value)


async def open_enrollment(pilot: Pilot[Any]) -> EnrollScreen:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, PinScreen))
    pilot.app.screen.query_one("#enroll", Button).press()
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, EnrollScreen))
    return pilot.app.screen  # type: ignore[return-value]


async def submit(pilot: Pilot[Any], screen: EnrollScreen, expect_in_message: str) -> None:
    screen.query_one("#enroll-submit", Button).press()
    await wait_for(pilot, lambda: expect_in_message in text(screen, "#enroll-message"))


async def test_first_and_second_staff_member_enroll_on_the_station(tmp_path: Path) -> None:
    async with enrolled_station(tmp_path) as (daemon, admin):
        station_id = daemon.provisioning.identity.station_id  # type: ignore[union-attr]
        anna_id, anna_code, _ = await admin.issue_staff_code(station_id, "Anna Jensen", "it")
        _bo_id, bo_code, _ = await admin.issue_staff_code(station_id, "Bo Holm", "it")
        socket_path = daemon.config.socket_path

        # Anna, the first: code and PIN only. A typo in the repeated PIN is caught here.
        app = create_app(socket_path)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_enrollment(pilot)
            fill(screen, enroll_code=anna_code, new_pin="482916", new_pin_again="482917")
            await submit(pilot, screen, "De to PIN-koder er ikke ens")
            assert screen.query_one("#new-pin", Input).value == ""  # emptied after every try
            fill(screen, new_pin="4829", new_pin_again="4829", enroll_code="")
            await submit(pilot, screen, "Skriv engangskoden fra IT")
            # A new PIN has at least 6 digits (issue 14).
            fill(screen, enroll_code=anna_code, new_pin="4829", new_pin_again="4829")
            await submit(pilot, screen, "PIN-koden skal være 6 til 12 cifre")
            fill(screen, enroll_code=anna_code.lower(), new_pin="482916", new_pin_again="482916")
            screen.query_one("#enroll-submit", Button).press()
            await wait_for(pilot, lambda: screen.query_one("#enroll-done").display)
            anna_number = number_shown(screen)
            assert re.fullmatch(r"[0-9]{3,4}", anna_number)
            shown = " ".join(str(w.render()) for w in screen.query("#enroll-done Static"))
            assert anna_id not in shown  # the number, not the pseudonymous id
            assert not screen.query_one("#enroll-form").display
            screen.query_one("#enroll-continue", Button).press()
            await wait_for(pilot, lambda: isinstance(pilot.app.screen, PinScreen))
            pin_screen = pilot.app.screen
            assert pin_screen.query_one("#staff-number", Input).value == anna_number
            await pilot.press(*"482916", "enter")
            await wait_for(pilot, lambda: isinstance(pilot.app.screen, TodayScreen))
            await pilot.press("ctrl+l")
        await until(lambda: daemon.service.session.state == "locked")

        # Bo, the second: refused without a colleague, enrolled with Anna vouching.
        app = create_app(socket_path)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_enrollment(pilot)
            fill(screen, enroll_code=bo_code, new_pin="730155", new_pin_again="730155")
            await submit(pilot, screen, "En kollega, der allerede er oprettet, skal godkende")
            assert "error" in screen.query_one("#enroll-message").classes
            assert screen.query_one("#enroll-form").display  # still the form: nothing lost
            fill(screen, sponsor_number=anna_number, sponsor_pin="000000")
            fill(screen, new_pin="730155", new_pin_again="730155")
            await submit(pilot, screen, "Kollegaens personale-nummer eller PIN-kode blev ikke")
            fill(screen, sponsor_number=anna_number)
            fill(screen, new_pin="730155", new_pin_again="730155")
            await submit(pilot, screen, "Skriv både kollegaens personale-nummer og PIN-kode")
            fill(screen, new_pin="730155", new_pin_again="730155", sponsor_pin="482916")
            screen.query_one("#enroll-submit", Button).press()
            await wait_for(pilot, lambda: screen.query_one("#enroll-done").display)
            bo_number = number_shown(screen)
            assert re.fullmatch(r"[0-9]{3,4}", bo_number) and bo_number != anna_number
            await pilot.press("escape")  # back, with the number: the same as "continue"
            await wait_for(pilot, lambda: isinstance(pilot.app.screen, PinScreen))
            assert pilot.app.screen.query_one("#staff-number", Input).value == bo_number
            await pilot.press(*"730155", "enter")
            await wait_for(pilot, lambda: isinstance(pilot.app.screen, TodayScreen))
            await pilot.press("ctrl+l")

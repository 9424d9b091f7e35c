"""The wrap-up screen hands each note to the care record (EOJ): FHIR outbox or a summary.

A real stationd (fake hardware) and, for delivery, the local FHIR-shaped receiver of
``tests/integration/fhir_receiver.py`` on 127.0.0.1, configured like the export's own tests
(``export.json`` in the data directory). The staff app is driven with Pilot.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Checkbox, DataTable, Static, TextArea

from station.core.session import CallOutcome
from station.export.config import EXPORT_CONFIG_FILENAME
from tests.integration.daemon_harness import short_socket_dir
from tests.integration.fhir_receiver import (
    CLIENT_ID,
    CLIENT_SECRET,
    RunningReceiver,
    running_receiver,
)
from tests.integration.test_export_delivery import communication_of
from tests.tui.test_staff_support import (
    SIZE,
    Station,
    on_call_screen,
    press_leaving,
    seed,
    staff_station,
    unlock,
    wait_for,
)
from tui.staff.app import ExitCode, StaffApp
from tui.staff.screens.precheck import PreCheckScreen
from tui.staff.screens.today import TodayScreen
from tui.staff.screens.wrapup import EXPORT_POLL_SECONDS, WrapUpScreen

#: Danish letters, emoji (with a joiner), markup that must stay text, quotes, new lines.
NOTE = (
    "Lægen øger Furix til 40 mg; blodtryk 135/85 — ny kontrol om 3 mdr. 👩‍⚕️💊\n"
    "[bold]ikke markup[/bold] <b>heller ikke</b> & \"citat\" 'æøå ÆØÅ'\n"
    "Pårørende (datter) orienteret."
)


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    with short_socket_dir() as path:
        yield path


def write_export_config(data_dir: Path, rr: RunningReceiver) -> None:
    """The EOJ endpoint (plain http to loopback, allowed for tests only), mode 0600."""
    path = data_dir / EXPORT_CONFIG_FILENAME
    path.write_text(
        json.dumps(
            {
                "fhir_base_url": rr.fhir_url,
                "token_url": rr.token_url,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "care_home": {"name": "Plejecenter Solhaven", "sor": "123456789012345"},
                "timeout_seconds": 5,
                "allow_insecure_loopback": True,
            }
        )
    )
    path.chmod(0o600)


@pytest.fixture
async def receiver() -> AsyncIterator[RunningReceiver]:
    async with running_receiver() as rr:
        yield rr


def text_of(widget: Static) -> str:
    return str(widget.render())


def eoj_cells(screen: WrapUpScreen) -> list[str]:
    table = screen.query_one("#wrapup-residents", DataTable)
    return [str(table.get_row_at(i)[3]) for i in range(table.row_count)]


async def to_wrap_up(pilot: Pilot[Any], app: StaffApp, station: Station) -> WrapUpScreen:
    """Unlock, run the 10:00 round's call (attended) and end it: the wrap-up screen."""
    await unlock(pilot)
    await press_leaving(pilot, "c")
    await wait_for(pilot, lambda: isinstance(app.screen, PreCheckScreen))
    await press_leaving(pilot, "ctrl+s")
    await on_call_screen(pilot)
    station.service.call_gp_admitted()
    station.clock.advance(600)
    station.service.call_ended(CallOutcome.HUNG_UP_GP)
    await wait_for(pilot, lambda: isinstance(app.screen, WrapUpScreen))
    wrap = app.screen
    assert isinstance(wrap, WrapUpScreen)
    await wait_for(pilot, lambda: wrap.appointment is not None and wrap.delivery is not None)
    await wait_for(pilot, lambda: bool(wrap.call_events))
    return wrap


async def save_note(pilot: Pilot[Any], wrap: WrapUpScreen, text: str) -> dict[str, Any]:
    wrap.query_one("#note-text", TextArea).text = text
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: len(wrap.notes) == 1)
    return wrap.notes[0]


async def test_with_an_endpoint_the_note_is_delivered_once_byte_for_byte(
    data_dir: Path, socket_dir: Path, receiver: RunningReceiver
) -> None:
    write_export_config(data_dir, receiver)
    async with staff_station(data_dir, socket_dir) as station:
        await seed(station)
        app = station.app(live_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            wrap = await to_wrap_up(pilot, app, station)
            assert wrap.delivery == "fhir"
            note = await save_note(pilot, wrap, NOTE)
            note_id = note["note_id"]
            # Polled from stationd's outbox until the receiver confirmed it.
            await wait_for(pilot, lambda: wrap.export_states.get(note_id) == "delivered", 60)
            await wait_for(pilot, lambda: eoj_cells(wrap)[0] == "leveret")
            assert eoj_cells(wrap)[1:] == ["", ""]  # no note yet, nothing to hand on
            help_line = text_of(wrap.query_one("#export-help", Static))
            assert "leveret til omsorgsjournalen" in help_line
            assert not wrap.query_one("#export-summary", TextArea).display
            assert not wrap.query_one("#btn-retry").display
            # A pending or delivered export does not hold up "documented".
            await pilot.press("f2")
            await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ConfirmDialog")
            await pilot.press("y")
            await wait_for(pilot, lambda: isinstance(app.screen, TodayScreen))
    # Exactly one Bundle reached the receiver, and its Communication is the note, exactly.
    assert len(receiver.receiver.bodies) == 1 and len(receiver.receiver.stored_at) == 1
    bundle = json.loads(receiver.receiver.bodies[0])
    assert bundle["resourceType"] == "Bundle"
    sent = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Communication"
    ]
    assert [c["payload"] for c in sent] == [[{"contentString": NOTE}]]
    (stored,) = communication_of(receiver, note_id)
    assert stored["payload"][0]["contentString"].encode() == NOTE.encode()  # byte for byte
    assert receiver.receiver.count("Communication") == 1


async def test_without_an_endpoint_the_summary_is_shown_and_nothing_is_sent(
    data_dir: Path, socket_dir: Path
) -> None:
    async with staff_station(data_dir, socket_dir) as station:
        await seed(station)
        app = station.app(live_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            wrap = await to_wrap_up(pilot, app, station)
            assert wrap.delivery == "summary"
            # Staff set the call up and left: the summary must say so.
            wrap.query_one("#staff-took-part", Checkbox).value = False
            await save_note(pilot, wrap, NOTE)
            area = wrap.query_one("#export-summary", TextArea)
            await wait_for(pilot, lambda: area.display and bool(area.text))
            assert area.read_only
            assert NOTE in area.text and "Karen Jensen" in area.text
            assert "Lægehuset Åboulevarden" in area.text
            assert "satte samtalen op og deltog ikke" in area.text
            help_line = text_of(wrap.query_one("#export-help", Static))
            assert "Kopiér teksten herunder ind i omsorgsjournalen (EOJ)" in help_line
            assert "ikke sendt" in help_line and "leveret" not in help_line
            assert eoj_cells(wrap)[0] == "kopiér"
            assert wrap.query_one("#btn-copy").display
            assert not wrap.query_one("#btn-retry").display
            assert await app.station.exports(station.round_id) == []


async def test_a_failed_delivery_shows_error_and_try_again_delivers_it(
    data_dir: Path, socket_dir: Path, receiver: RunningReceiver
) -> None:
    write_export_config(data_dir, receiver)
    receiver.receiver.fail_next("503")
    async with staff_station(data_dir, socket_dir) as station:
        await seed(station)
        app = station.app(live_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            wrap = await to_wrap_up(pilot, app, station)
            note_id = (await save_note(pilot, wrap, NOTE))["note_id"]
            # The station's clock stands still, so the back-off never ends by itself.
            await wait_for(pilot, lambda: eoj_cells(wrap)[0] == "fejl", 60)
            retry = wrap.query_one("#btn-retry", Button)
            assert retry.display and str(retry.label) == "Prøv igen"
            assert "Prøv igen" in text_of(wrap.query_one("#export-help", Static))
            retry.press()
            await wait_for(pilot, lambda: eoj_cells(wrap)[0] == "leveret", 60)
            assert not retry.display
    assert receiver.receiver.log == ["503", "ok"]
    (stored,) = communication_of(receiver, note_id)
    assert stored["payload"][0]["contentString"] == NOTE


async def test_a_pending_export_does_not_keep_the_station_unlocked(
    data_dir: Path, socket_dir: Path, receiver: RunningReceiver
) -> None:
    """The wrap-up polls a failed export every few seconds; that is no person at the station,
    so the idle lock still comes (the note stays safe in the outbox)."""
    write_export_config(data_dir, receiver)
    receiver.receiver.fail_next(*["503"] * 50)  # refused for as long as the test runs
    async with staff_station(data_dir, socket_dir, tick_seconds=0.05) as station:
        await seed(station)
        app = station.app(live_interval=0)
        async with app.run_test(size=SIZE) as pilot:
            wrap = await to_wrap_up(pilot, app, station)
            await save_note(pilot, wrap, NOTE)
            await wait_for(pilot, lambda: eoj_cells(wrap)[0] == "fejl", 60)
            for _ in range(6):  # six minutes of station time, the export polled meanwhile
                station.clock.advance(60)
                await asyncio.sleep(EXPORT_POLL_SECONDS * 1.2)
                if app.exit_code is not None:
                    break
            await wait_for(pilot, lambda: app.exit_code is not None, 10)
        assert app.return_value == ExitCode.LOCKED
        assert station.service.session.state.value == "locked"

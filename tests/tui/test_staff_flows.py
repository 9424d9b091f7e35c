"""The staff UI against a real stationd (fake hardware): every flow, keyboard first.

Each test starts stationd in its loop (real socket, real store, real keyring with cheap
Argon2), then the staff app with ``run_test(size=(100, 30))``, and drives it with Pilot.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from textual.widgets import Button, DataTable, Input, RadioButton, Select, Static, TextArea

from station.core.session import CallOutcome
from station.keys.records import ConsultationKey, open_note
from tests.integration.call_harness import running_coturn
from tests.integration.daemon_harness import short_socket_dir
from tests.tui.test_staff_support import (
    SIZE,
    STAFF_NUMBER,
    Station,
    on_call_screen,
    press_leaving,
    seed,
    staff_station,
    type_pin,
    unlock,
    wait_for,
)
from tui.staff.app import ExitCode
from tui.staff.data import AppointmentView, StaffRecords
from tui.staff.labels import type_label
from tui.staff.screens.booking import AppointmentDialog
from tui.staff.screens.call import CallScreen
from tui.staff.screens.pin import PinScreen
from tui.staff.screens.precheck import PreCheckScreen
from tui.staff.screens.resident import ResidentDetail, ResidentDialog
from tui.staff.screens.today import TodayScreen
from tui.staff.screens.wrapup import WrapUpScreen
from tui.staff.widgets.meter import LevelMeter
from tui.staff.widgets.preview import CameraPreview


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    with short_socket_dir() as path:
        yield path


@pytest.fixture
async def station(data_dir: Path, socket_dir: Path) -> AsyncIterator[Station]:
    async with staff_station(data_dir, socket_dir) as running:
        await seed(running)
        yield running


def text_of(widget: Static) -> str:
    return str(widget.render())


def cells(table: DataTable, column: int) -> list[str]:  # type: ignore[type-arg]
    return [str(table.get_row_at(i)[column]) for i in range(table.row_count)]


async def audit_actions(station: Station) -> list[tuple[str, str | None]]:
    await asyncio.sleep(0.1)  # the audit worker writes queued entries
    return [(e.action, e.resident) for e in station.running.daemon._audit.entries()]


# --------------------------------------------------------------------------- PIN entry


async def test_unlock_hands_the_vault_key_to_the_ui_and_shows_today(station: Station) -> None:
    app = station.app()
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, PinScreen)
        assert app.screen.query_one("#pin", Input).password  # masked
        await unlock(pilot)
        assert app.vault is not None and not app.vault.is_zeroed
        assert app.vault.public_key() == station.vault.public_key()
        screen = app.screen
        assert isinstance(screen, TodayScreen)
        appointments = screen.query_one("#appointments", DataTable)
        assert cells(appointments, 0) == ["10:00-10:30", "11:00-11:30"]
        assert cells(appointments, 1) == ["Lægehuset Åboulevarden"] * 2
        assert cells(appointments, 2) == ["Videokonsultation", "Assisteret videokonsultation"]
        queue = screen.query_one("#queue", DataTable)
        assert cells(queue, 1) == ["Karen Jensen", "Poul Madsen", "Inger Nielsen"]
        assert cells(queue, 2) == ["02-04-1931", "23-11-1938", "09-07-1942"]
        assert cells(queue, 3) == ["12", "14B", "3"]


async def test_wrong_pin_and_unknown_staff_get_the_same_answer_then_back_off(
    station: Station,
) -> None:
    app = station.app()
    async with app.run_test(size=SIZE) as pilot:
        message = app.screen.query_one("#pin-message", Static)
        answers = []
        for number, pin in (("999", "1234"), (STAFF_NUMBER, "0000"), ("12", "1")):
            await type_pin(pilot, number, pin)
            await wait_for(
                pilot, lambda: "Forkert" in text_of(message) or "For mange" in text_of(message)
            )
            answers.append(text_of(message))
            message.update("")
        assert answers == ["Forkert personale-nummer eller PIN-kode."] * 3
        assert app.screen.query_one("#pin", Input).value == ""  # the PIN is never kept
        for attempt in range(6):  # the PIN guard backs off after a few wrong PINs in a row
            message.update("")
            await type_pin(pilot, STAFF_NUMBER, f"000{attempt + 1}")
            await wait_for(pilot, lambda: text_of(message) not in ("", "Kontrollerer PIN-koden…"))
            if "Prøv igen om" in text_of(message):
                break
        assert "For mange forkerte forsøg. Prøv igen om" in text_of(message)
        assert "sekunder" in text_of(message)
        assert isinstance(app.screen, PinScreen) and app.records is None
    assert station.service.session.state.value == "locked"


async def test_escape_on_the_pin_screen_leaves_without_unlocking(station: Station) -> None:
    app = station.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.exit_code is not None)
    assert app.return_value == ExitCode.CANCELLED


# --------------------------------------------------------------------------- Today


async def test_booking_needs_an_agreed_time(station: Station) -> None:
    app = station.app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AppointmentDialog))
        dialog = app.screen
        dialog.query_one("#clinic", Select).value = "clinic-2"
        dialog.query_one("#save", Button).press()
        await pilot.pause()
        error = dialog.query_one("#dialog-error", Static)
        assert "klokkeslæt" in text_of(error) and error.display
        dialog.query_one("#time", Input).value = "25:99"
        dialog.query_one("#save", Button).press()
        await pilot.pause()
        assert "TT:MM" in text_of(error)
        dialog.query_one("#time", Input).value = "13:30"
        dialog.query_one("#type", Select).value = "video_conference"
        dialog.query_one("#save", Button).press()
        await wait_for(pilot, lambda: isinstance(app.screen, TodayScreen))
        today = app.screen
        assert isinstance(today, TodayScreen)
        await wait_for(pilot, lambda: len(today.appointments) == 3)
        booked = today.appointments[2]
        assert booked.clinic_name == "Lægerne i Vestergade"
        assert type_label(booked.consultation_type) == "Videokonference"
        assert f"{booked.starts_at.astimezone(today.appointments[0].starts_at.tzinfo)}"
        # Its data key is stored (wrapped) and opens with the vault key.
        wrapped = await station.service.db(station.service.store.get_consultation_key, booked.id)
        ConsultationKey.unwrap(station.vault, booked.id, wrapped).zero()


async def test_add_resident_without_and_with_cpr(station: Station) -> None:
    app = station.app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        today = app.screen
        assert isinstance(today, TodayScreen)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ResidentDialog))
        dialog = app.screen
        dialog.query_one("#name", Input).value = "Else Sørensen"
        dialog.query_one("#birth", Input).value = "31-02-1930"
        dialog.query_one("#room", Input).value = "21"
        dialog.query_one("#save", Button).press()
        await pilot.pause()
        assert "DD-MM-ÅÅÅÅ" in text_of(dialog.query_one("#dialog-error", Static))
        dialog.query_one("#birth", Input).value = "28-02-1930"
        dialog.query_one("#save", Button).press()
        await wait_for(pilot, lambda: isinstance(app.screen, TodayScreen))
        await wait_for(pilot, lambda: len(today.appointments[0].residents) == 4)
        assert today.appointments[0].residents[3].name == "Else Sørensen"

        # With CPR: checked while typing; modulus 11 is a warning, not an error.
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ResidentDialog))
        dialog = app.screen
        dialog.query_one("#with", RadioButton).value = True
        await pilot.pause()
        status = dialog.query_one("#cpr-status", Static)
        cpr = dialog.query_one("#cpr", Input)
        cpr.focus()
        await pilot.press(*"3202")
        await wait_for(pilot, lambda: "Dagen" in text_of(status))
        assert status.has_class("error")
        cpr.value = ""
        await pilot.press(*"0101")
        await wait_for(pilot, lambda: "Mangler 6 cifre" in text_of(status))
        cpr.value = ""
        await pilot.press(*"010190-1235")  # a valid date that fails modulus 11
        await wait_for(pilot, lambda: status.has_class("warning"))
        assert "modulus 11" in text_of(status)
        dialog.query_one("#name", Input).value = "Bent Holm"
        dialog.query_one("#save", Button).press()
        await wait_for(pilot, lambda: isinstance(app.screen, TodayScreen))
        await wait_for(pilot, lambda: len(today.appointments[0].residents) == 5)
        added = today.appointments[0].residents[4]
        assert (added.name, added.cpr, added.birth_date) == (
            "Bent Holm",
            "010190-1235",
            "01-01-1990",
        )


async def test_reorder_skip_and_remove(station: Station) -> None:
    app = station.app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        today = app.screen
        assert isinstance(today, TodayScreen)
        queue = today.query_one("#queue", DataTable)
        queue.focus()
        await pilot.press("down")  # Poul Madsen
        await pilot.press("shift+up")
        await wait_for(pilot, lambda: today.appointments[0].residents[0].name == "Poul Madsen")
        assert [r.name for r in today.appointments[0].residents] == [
            "Poul Madsen",
            "Karen Jensen",
            "Inger Nielsen",
        ]
        assert queue.cursor_row == 0  # the cursor follows the moved resident
        await pilot.press("s")
        await wait_for(pilot, lambda: today.appointments[0].residents[0].status == "skipped")
        assert cells(queue, 5)[0] == "Sprunget over"
        await pilot.press("s")  # skipped again: back to waiting
        await wait_for(pilot, lambda: today.appointments[0].residents[0].status == "waiting")
        await pilot.press("x")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ConfirmDialog")
        await pilot.press("y")
        await wait_for(pilot, lambda: len(today.appointments[0].residents) == 2)
        assert [r.name for r in today.appointments[0].residents] == [
            "Karen Jensen",
            "Inger Nielsen",
        ]


async def test_opening_a_resident_record_is_audited(station: Station) -> None:
    app = station.app()
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        today = app.screen
        assert isinstance(today, TodayScreen)
        entry_id = today.appointments[0].residents[1].entry_id
        today.query_one("#queue", DataTable).focus()
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ResidentDetail))
        shown = " ".join(text_of(s) for s in app.screen.query(".value").results(Static))
        assert "Poul Madsen" in shown and "Kontrol" in shown
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, TodayScreen))
    assert ("record_opened", entry_id.lower()) in await audit_actions(station)


# --------------------------------------------------------------------------- the call


async def begin_check(pilot: object, app: object) -> PreCheckScreen:
    await press_leaving(pilot, "c")  # type: ignore[attr-defined]
    await wait_for(pilot, lambda: isinstance(app.screen, PreCheckScreen))  # type: ignore[arg-type,attr-defined]
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, PreCheckScreen)
    return screen


async def test_start_call_pressed_before_the_appointment_arrives_still_starts(
    station: Station, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A care worker presses "start call" at once; stationd answers only after that."""
    real = StaffRecords.appointment
    answer = asyncio.Event()

    async def held(self: StaffRecords, consultation_id: str) -> AppointmentView:
        await answer.wait()
        return await real(self, consultation_id)

    monkeypatch.setattr(StaffRecords, "appointment", held)
    app = station.app(live_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        screen = await begin_check(pilot, app)
        assert screen.appointment is None
        await press_leaving(pilot, "ctrl+s")
        await pilot.pause(0.3)
        answer.set()
        await on_call_screen(pilot)
        assert station.service.session.state.value == "waiting_for_gp"


@pytest.mark.turn
async def test_pre_call_check_shows_camera_microphone_tone_and_network(
    data_dir: Path, socket_dir: Path
) -> None:
    # A real TURN server (coturn, UDP only here): the check makes an allocation with the
    # configured credentials. tests/integration/test_turn_paths.py has TCP, TLS 443 and
    # firewalls.
    async with (
        running_coturn(data_dir.parent) as turn,
        staff_station(
            data_dir,
            socket_dir,
            ice_servers=[
                {
                    "urls": f"turn:127.0.0.1:{turn.port}",
                    "username": turn.username,
                    "credential": turn.password,
                }
            ],
        ) as station,
    ):
        await seed(station)
        await _pre_call_check_shows_camera_microphone_tone_and_network(station)


async def _pre_call_check_shows_camera_microphone_tone_and_network(station: Station) -> None:
    app = station.app(live_interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        screen = await begin_check(pilot, app)
        preview = screen.query_one(CameraPreview)
        await wait_for(pilot, lambda: preview.frame is not None)
        width, height, data = preview.frame  # type: ignore[misc]
        assert 0 < width <= 160 and 0 < height <= 160 and len(data) == width * height * 3
        assert len(set(data)) > 8  # a real picture (the test pattern), not a blank
        meter = screen.query_one(LevelMeter)
        await wait_for(pilot, lambda: meter.level is not None)
        assert meter.level is not None and meter.level > -70  # the tone microphone
        await wait_for(pilot, lambda: screen.results.get("turn", (None, ""))[0] is not None)
        assert screen.results["camera"][0] is True
        assert screen.results["microphone"][0] is True
        assert screen.results["hub"][0] is True and screen.results["turn"][0] is True
        assert screen.results["button"][0] is True
        listing = text_of(screen.query_one("#check-list", Static))
        assert "✔  Kamera: OK" in listing and "✔  Videoserver (TURN): UDP" in listing
        speaker = station.running.daemon.hardware.hw.speaker  # type: ignore[union-attr]
        before = speaker.total_frames
        await pilot.press("t")
        await wait_for(pilot, lambda: speaker.total_frames > before)
        # Call off: back to Today, and the camera is released.
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, TodayScreen))
        assert station.service.session.state.value == "staff"


async def test_a_failed_check_says_what_to_do(
    station: Station, monkeypatch: pytest.MonkeyPatch
) -> None:
    station.running.daemon._precheck._environ = {}  # no network configuration
    station.running.daemon._precheck.ice_servers = lambda: []
    app = station.app(live_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        screen = await begin_check(pilot, app)
        await wait_for(pilot, lambda: screen.results.get("network", (None, ""))[0] is False)
        assert "Kontakt IT" in screen.results["network"][1]
        listing = text_of(screen.query_one("#check-list", Static))
        assert "✘  Netværk" in listing and "netværksopsætning" in listing


async def test_attended_call_round_and_leaving_the_room(station: Station) -> None:
    app = station.app(live_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await begin_check(pilot, app)
        await press_leaving(pilot, "ctrl+s")
        await on_call_screen(pilot)
        call = app.screen
        assert isinstance(call, CallScreen)
        assert station.service.session.state.value == "waiting_for_gp"
        await wait_for(pilot, lambda: call.current is not None)
        assert call.current is not None and call.current.name == "Karen Jensen"
        assert "Venter på lægen" in text_of(call.query_one("#call-status", Static))
        station.service.call_gp_admitted()
        await wait_for(pilot, lambda: call.admitted)
        assert "I samtale" in text_of(call.query_one("#call-status", Static))
        await pilot.press("n")
        await wait_for(
            pilot, lambda: call.current is not None and call.current.name == "Poul Madsen"
        )
        assert "Poul Madsen" in text_of(call.query_one("#now", Static))
        await pilot.press("p")
        await wait_for(
            pilot, lambda: call.current is not None and call.current.name == "Karen Jensen"
        )
        await pilot.press("m")
        assert call.muted and "Mikrofon slukket" in text_of(call.query_one("#call-status", Static))
        await pilot.press("f")  # Forlad rummet
        await wait_for(pilot, lambda: app.exit_code is not None)
    assert app.return_value == ExitCode.LOGGED_OUT
    assert app.vault is not None and app.vault.is_zeroed
    assert station.service.session.state.value == "in_call_private"


async def test_wrap_up_seals_a_note_and_marks_documented(station: Station) -> None:
    app = station.app(live_interval=0)
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await begin_check(pilot, app)
        await press_leaving(pilot, "ctrl+s")
        await on_call_screen(pilot)
        station.service.call_gp_admitted()
        station.clock.advance(600)
        station.service.call_ended(CallOutcome.HUNG_UP_GP)
        await wait_for(pilot, lambda: isinstance(app.screen, WrapUpScreen))
        wrap = app.screen
        assert isinstance(wrap, WrapUpScreen)
        await wait_for(pilot, lambda: wrap.appointment is not None)
        await wait_for(pilot, lambda: "10 min" in text_of(wrap.query_one("#wrapup-call", Static)))
        wrap.query_one("#note-text", TextArea).text = "Blodtryk fint. Ny kontrol om 3 mdr."
        wrap.query_one("#outcome", Select).value = "follow_up"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: len(wrap.notes) == 1)
        first = wrap.appointment.residents[0]  # type: ignore[union-attr]
        assert wrap.notes[0]["text"] == "Blodtryk fint. Ny kontrol om 3 mdr."
        assert wrap.notes[0]["outcome"] == "follow_up"
        assert wrap.notes[0]["gp_clinic"] == "Lægehuset Åboulevarden"
        assert first.status == "done"
        await pilot.press("f2")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ConfirmDialog")
        await pilot.press("y")  # two residents without a note: documented anyway
        await wait_for(pilot, lambda: isinstance(app.screen, TodayScreen))
    service = station.service
    consultation = await service.db(service.store.get_consultation, station.round_id)
    assert consultation.status.value == "documented"
    notes = await service.db(service.store.list_notes, station.round_id)
    wrapped = await service.db(service.store.get_consultation_key, station.round_id)
    key = ConsultationKey.unwrap(station.vault, station.round_id, wrapped)
    assert "Blodtryk fint" in open_note(key, notes[0].id, notes[0].body)
    assert b"Blodtryk" not in notes[0].body  # sealed at rest
    assert base64.b64encode(b"Blodtryk") not in notes[0].body

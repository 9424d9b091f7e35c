"""The contracts between station, hub and GP page: the waiting room defined once (and sealed:
the hub's models hold only boxes), the GP page and the station's rendezvous client held to
them."""

from __future__ import annotations

import dataclasses
import re
import typing
from enum import StrEnum
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

import hub.models
import station.call.hub
import station.call.ice
import stationapi.models
from station.core.waiting_room import CurrentResident, WaitingResident

GP_JS = (Path(hub.models.__file__).parent / "static" / "gp.js").read_text("utf-8")


def _function(name: str) -> str:
    start = GP_JS.index(f"function {name}(")
    return GP_JS[start : GP_JS.index("\n  }\n", start)]


def test_station_and_hub_use_the_one_definition() -> None:
    # The staff UI sends the residents to stationd with the same model.
    assert stationapi.models.WaitingResident is WaitingResident
    starting = stationapi.models.CallStartRequest.model_fields["residents"]
    assert starting.annotation == list[WaitingResident]
    # The hub holds who is waiting only as a box sealed for the GP page.
    view = hub.models.GpRoomView.model_fields
    assert view["waiting"].annotation == hub.models.SealedBox | None
    assert view["current_resident"].annotation == hub.models.SealedBox | None
    assert hub.models.OfferBody.model_fields["waiting"].annotation == hub.models.SealedBox | None
    for model in vars(hub.models).values():
        if isinstance(model, type) and issubclass(model, BaseModel):
            fields = set(model.model_fields)
            assert not fields & {"display_name", "birth_date", "reason", "residents"}


def test_the_gp_page_reads_exactly_the_waiting_residents_fields() -> None:
    read = set(re.findall(r"\bresident\.(\w+)", _function("residentItem")))
    assert read == set(WaitingResident.model_fields)


def test_the_gp_page_reads_the_current_residents_fields() -> None:
    read = set(re.findall(r"\bmessage\.(\w+)", _function("showCurrentResident")))
    assert read == set(CurrentResident.model_fields)


def test_the_gp_page_handles_every_notice_the_station_sends() -> None:
    handled = set(re.findall(r'message\.type === "(\w+)"', _function("handleNotice")))
    for notice in (
        hub.models.PrivateNotice,
        hub.models.StaffPresentNotice,
        hub.models.CurrentResidentNotice,
    ):
        (kind,) = notice.model_fields["type"].annotation.__args__  # type: ignore[union-attr]
        assert kind in handled


def test_personal_fields_stay_out_of_reprs_and_errors() -> None:
    resident = WaitingResident(display_name="Anna Hansen", room="12", reason="Hoste")
    assert "Anna" not in repr(resident) and "Hoste" not in repr(resident)
    with pytest.raises(ValidationError) as caught:
        WaitingResident(display_name="Anna\x1b[2J Hansen")
    assert "Anna" not in str(caught.value)
    assert resident.for_hub() == {"display_name": "Anna Hansen", "room": "12", "reason": "Hoste"}


@pytest.mark.parametrize(
    ("station_side", "hub_side"),
    [
        (station.call.hub.CreatedRoom, hub.models.CreatedRoom),
        (station.call.hub.RoomView, hub.models.StationRoomView),
    ],
)
def test_the_stations_rendezvous_client_reads_the_hubs_answers(
    station_side: type, hub_side: type[BaseModel]
) -> None:
    # The station does not import hub/: its client reads the fields it needs, as the hub's
    # models define them (same names, same types).
    hints = typing.get_type_hints(station_side)
    for field in dataclasses.fields(station_side):
        assert field.name in hub_side.model_fields, field.name
        expected = hub_side.model_fields[field.name].annotation
        if isinstance(expected, type) and issubclass(expected, StrEnum):
            expected = str  # the client keeps the state's word
        if field.name == "ice_servers":
            # RTCIceServer dictionaries, which the client validates into its own model.
            assert expected == list[dict[str, object]]
            assert hints[field.name] == tuple[station.call.ice.IceServerConfig, ...]
            continue
        assert hints[field.name] == expected, field.name


def test_the_gp_page_handles_every_message_the_station_sends_on_the_data_channel() -> None:
    handled = set(re.findall(r'message\.type === "(\w+)"', _function("handleNotice")))
    sources = "".join(
        path.read_text("utf-8") for path in Path(station.call.hub.__file__).parent.glob("*.py")
    )
    sent = set(re.findall(r'_send\(\s*\{\s*"type": "(\w+)"', sources))
    sent |= set(re.findall(r'"type": "(\w+)" if [^"]+ else "(\w+)"', sources)[0])
    sent |= {"current_resident", "audio_only"}  # built in a dict first, then sent
    assert {"round", "call_ended", "private", "staff_present"} <= sent
    # "reconnecting" tells the page nothing it acts on: it sees the media stop by itself.
    assert sent - {"reconnecting"} <= handled

"""The waiting room's contract is defined once (provisioning.waiting_room); the GP page reads it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

import hub.models
import station.call.models
from provisioning.waiting_room import (
    CurrentResident,
    CurrentResidentNotice,
    PrivateNotice,
    StaffPresentNotice,
    WaitingInfo,
    WaitingResident,
)

GP_JS = (Path(hub.models.__file__).parent / "static" / "gp.js").read_text("utf-8")


def _function(name: str) -> str:
    start = GP_JS.index(f"function {name}(")
    return GP_JS[start : GP_JS.index("\n  }\n", start)]


def test_station_and_hub_use_the_one_definition() -> None:
    assert station.call.models.WaitingResident is WaitingResident
    view = hub.models.GpRoomView.model_fields
    assert view["waiting"].annotation == WaitingInfo | None
    assert view["current_resident"].annotation == CurrentResident | None


def test_the_gp_page_reads_exactly_the_waiting_residents_fields() -> None:
    read = set(re.findall(r"\bresident\.(\w+)", _function("showWaiting")))
    assert read == set(WaitingResident.model_fields)


def test_the_gp_page_reads_the_current_residents_fields() -> None:
    read = set(re.findall(r"\bmessage\.(\w+)", _function("showCurrentResident")))
    assert read == set(CurrentResident.model_fields)


def test_the_gp_page_handles_every_notice_the_station_sends() -> None:
    handled = set(re.findall(r'message\.type === "(\w+)"', _function("handleNotice")))
    for notice in (PrivateNotice, StaffPresentNotice, CurrentResidentNotice):
        (kind,) = notice.model_fields["type"].annotation.__args__  # type: ignore[union-attr]
        assert kind in handled


def test_personal_fields_stay_out_of_reprs_and_errors() -> None:
    resident = WaitingResident(display_name="Anna Hansen", room="12", reason="Hoste")
    assert "Anna" not in repr(resident) and "Hoste" not in repr(resident)
    with pytest.raises(ValidationError) as caught:
        WaitingResident(display_name="Anna\x1b[2J Hansen")
    assert "Anna" not in str(caught.value)
    assert resident.for_hub() == {"display_name": "Anna Hansen", "room": "12", "reason": "Hoste"}

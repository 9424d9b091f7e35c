"""The domain model: validation and hidden personal fields."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from station.core.cpr import parse_cpr
from station.core.ids import is_opaque_id, new_id
from station.core.model import (
    ConsultationType,
    DomainError,
    InvalidValue,
    Resident,
    WithCpr,
    WithoutCpr,
    check_opaque_id,
)
from station.errors import StationError

NAME = "Karen Testesen"
ROOM = "Stue 14B"
NOTE = "Hører dårligt på venstre øre"
BORN = date(1931, 5, 17)


def resident_without_cpr(name: str = NAME) -> Resident:
    return Resident.new(WithoutCpr(name, BORN, ROOM, NOTE))


def resident_with_cpr() -> Resident:
    return Resident.new(WithCpr(parse_cpr("170531-1234"), "Poul Prøvesen", "Stue 3", None))


# -- consultation types -----------------------------------------------------------------------


def test_consultation_types_carry_medcoms_danish_labels() -> None:
    assert ConsultationType.VIDEO_CONSULTATION.label_da == "Videokonsultation"
    assert ConsultationType.ASSISTED_CONSULTATION.label_da == "Assisteret videokonsultation"
    assert ConsultationType.VIDEO_CONFERENCE.label_da == "Videokonference"
    assert len(ConsultationType) == 3


# -- residents -------------------------------------------------------------------------------


def test_resident_ids_are_random_and_never_derived_from_cpr() -> None:
    cpr = parse_cpr("170531-1234")
    first = Resident.new(WithCpr(cpr, "Poul"))
    second = Resident.new(WithCpr(cpr, "Poul"))
    assert first.id != second.id
    assert is_opaque_id(first.id) and is_opaque_id(second.id)
    for resident in (first, second):
        assert cpr.digits not in resident.id
        assert cpr.digits[:6] not in resident.id


@pytest.mark.parametrize(
    "bad_id", ["1705311234", "170531-1234", "", "not an id", "x" * 65, "-lead", "123", 123]
)
def test_resident_rejects_ids_that_are_not_opaque(bad_id: object) -> None:
    with pytest.raises(InvalidValue):
        Resident(bad_id, WithoutCpr(NAME, BORN, ROOM))  # type: ignore[arg-type]


def test_reprs_never_show_personal_fields() -> None:
    without = resident_without_cpr()
    with_cpr = resident_with_cpr()
    secrets = [
        NAME,
        "Karen",
        ROOM,
        "14B",
        NOTE,
        "1931",
        "Poul",
        "Stue 3",
        "170531",
    ]
    shown = " ".join(
        [
            repr(without),
            str(without),
            repr(without.identity),
            repr(with_cpr),
            repr(with_cpr.identity),
        ]
    )
    for secret in secrets:
        assert secret not in shown, secret
    assert without.id in repr(without)  # the pseudonymous id is fine to show


def test_resident_fields_are_normalised_and_readable() -> None:
    resident = Resident.new(WithoutCpr("  Karen  ", BORN, " 14 ", "  "))
    assert resident.display_name == "Karen"
    assert resident.room == "14"
    assert resident.identity.note is None
    assert resident.birth_date == BORN
    assert not resident.has_cpr
    with_cpr = resident_with_cpr()
    assert with_cpr.has_cpr
    assert with_cpr.birth_date == date(1931, 5, 17)


@pytest.mark.parametrize(
    "name",
    ["", "   ", "x" * 201, "Karen\x00", "Karen\nHansen", "Kar\u202een", "Karen\x1b[31m"],
)
def test_resident_rejects_bad_names_with_a_danish_message(name: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        WithoutCpr(name, BORN, ROOM)
    assert "Navnet" in caught.value.user_message
    if name.strip():
        assert name.strip() not in str(caught.value)


def test_resident_rejects_implausible_birth_dates() -> None:
    tomorrow_plus = datetime.now(UTC).date() + timedelta(days=3)
    for born in (tomorrow_plus, date(1850, 1, 1)):
        with pytest.raises(InvalidValue) as caught:
            WithoutCpr(NAME, born, ROOM)
        assert "Fødselsdatoen" in caught.value.user_message
    with pytest.raises(InvalidValue):
        WithoutCpr(NAME, datetime(1931, 5, 17), ROOM)  # a datetime is not a date
    # A well-formed CPR number from the 1800s is not a living resident.
    with pytest.raises(InvalidValue):
        WithCpr(parse_cpr("010160-5000"), "Gammel")


def test_resident_rejects_long_rooms_and_notes_and_allows_multiline_notes() -> None:
    with pytest.raises(InvalidValue):
        WithoutCpr(NAME, BORN, "x" * 51)
    with pytest.raises(InvalidValue):
        WithoutCpr(NAME, BORN, ROOM, "x" * 2001)
    assert WithoutCpr(NAME, BORN, ROOM, "linje 1\nlinje 2").note == "linje 1\nlinje 2"
    with pytest.raises(InvalidValue):
        WithCpr("170531-1234", "Poul")  # type: ignore[arg-type]


def test_errors_belong_to_the_hierarchy() -> None:
    assert issubclass(InvalidValue, DomainError)
    assert issubclass(DomainError, StationError)


def test_opaque_ids() -> None:
    assert check_opaque_id("staff-7", "staff") == "staff-7"
    # A run of ten digits could be a CPR number inside an id ("a0101901234b" holds
    # 010190-1234): refused, except in a whole uuid4 hex, where it is chance.
    assert (
        check_opaque_id("8d0b1a2c3e4f4a5b9c7d1234567890ab", "x")
        == "8d0b1a2c3e4f4a5b9c7d1234567890ab"
    )
    for _ in range(200):
        fresh = new_id()
        assert check_opaque_id(fresh, "appointment") == fresh
    for bad in ("", "1705311234", "a0101901234b", "17053-11234x" * 10, "a b", "12345", "-x", None):
        with pytest.raises(InvalidValue):
            check_opaque_id(bad, "staff")

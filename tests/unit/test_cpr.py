"""CPR numbers: the century table, the calendar, the shapes refused, and nothing shown."""

from __future__ import annotations

import pickle
from datetime import date

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from station.core.cpr import (
    Cpr,
    CprError,
    PartialCprStatus,
    Sex,
    check_partial_cpr,
    is_cpr_shaped,
    looks_like_cpr,
    parse_cpr,
)
from station.errors import StationError

# The CPR office's table, written out independently of the code under test: for each 7th
# digit, the (first year, last year) ranges it can encode.
CENTURY_RANGES: dict[int, list[tuple[int, int]]] = {
    0: [(1900, 1999)],
    1: [(1900, 1999)],
    2: [(1900, 1999)],
    3: [(1900, 1999)],
    4: [(2000, 2036), (1937, 1999)],
    9: [(2000, 2036), (1937, 1999)],
    5: [(2000, 2057), (1858, 1899)],
    6: [(2000, 2057), (1858, 1899)],
    7: [(2000, 2057), (1858, 1899)],
    8: [(2000, 2057), (1858, 1899)],
}


def digit_allows(seventh: int, year: int) -> bool:
    return any(lo <= year <= hi for lo, hi in CENTURY_RANGES[seventh])


def make_text(born: date, seventh: int, rest: str, *, hyphen: bool = True) -> str:
    head = born.strftime("%d%m") + f"{born.year % 100:02d}"
    return head + ("-" if hyphen else "") + str(seventh) + rest


@st.composite
def valid_cpr_text(draw: st.DrawFn) -> tuple[str, date, int, str]:
    """A valid CPR text, its birth date, 7th digit and last three digits."""
    seventh = draw(st.integers(0, 9))
    lo, hi = draw(st.sampled_from(CENTURY_RANGES[seventh]))
    born = draw(st.dates(min_value=date(lo, 1, 1), max_value=date(hi, 12, 31)))
    rest = draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
    hyphen = draw(st.booleans())
    return make_text(born, seventh, rest, hyphen=hyphen), born, seventh, rest


@given(valid_cpr_text(), st.sampled_from(["", " ", "\t", "\n ", "  "]))
@example(("010100-0001", date(1900, 1, 1), 0, "001"), "")
@example(("311299-9999", date(1999, 12, 31), 9, "999"), "")
@example(("010158-5000", date(1858, 1, 1), 5, "000"), "")
@example(("311257-8999", date(2057, 12, 31), 8, "999"), "")
@example(("290200-4000", date(2000, 2, 29), 4, "000"), "")
@example(("290296-5000", date(1896, 2, 29), 5, "000"), "")
def test_every_valid_date_in_its_century_parses_back(
    case: tuple[str, date, int, str], padding: str
) -> None:
    text, born, _seventh, rest = case
    cpr = parse_cpr(padding + text + padding)
    assert cpr.birth_date == born
    assert cpr.digits == text.replace("-", "")
    assert cpr.formatted() == cpr.digits[:6] + "-" + cpr.digits[6:]
    assert cpr.sex is (Sex.MALE if int(rest[-1]) % 2 else Sex.FEMALE)
    assert parse_cpr(cpr.formatted()) == cpr


def test_all_three_centuries_are_reached() -> None:
    assert parse_cpr("010160-5000").birth_date == date(1860, 1, 1)
    assert parse_cpr("010160-0000").birth_date == date(1960, 1, 1)
    assert parse_cpr("010110-4000").birth_date == date(2010, 1, 1)
    assert parse_cpr("010137-4000").birth_date == date(1937, 1, 1)
    assert parse_cpr("010157-5000").birth_date == date(2057, 1, 1)
    assert parse_cpr("010158-5000").birth_date == date(1858, 1, 1)
    assert parse_cpr("010136-9000").birth_date == date(2036, 1, 1)
    assert parse_cpr("010137-9000").birth_date == date(1937, 1, 1)


@given(
    st.dates(min_value=date(1800, 1, 1), max_value=date(2099, 12, 31)),
    st.integers(0, 9),
    st.from_regex(r"[0-9]{3}", fullmatch=True),
)
# The edges of the table: each must land in the other century.
@example(date(2037, 1, 1), 4, "000")
@example(date(2037, 1, 1), 9, "000")
@example(date(1936, 12, 31), 4, "000")
@example(date(2058, 1, 1), 5, "000")
@example(date(1957, 1, 1), 8, "000")
@example(date(1858, 1, 1), 3, "000")
@example(date(2000, 1, 1), 0, "000")
def test_a_seventh_digit_never_yields_a_century_it_does_not_allow(
    born: date, seventh: int, rest: str
) -> None:
    """Numbers written for a date outside the 7th digit's range never give that date back."""
    assume(not digit_allows(seventh, born.year))
    try:
        cpr = parse_cpr(make_text(born, seventh, rest))
    except CprError:
        return  # e.g. 29 February in a century where that year is not a leap year
    assert cpr.birth_date != born
    assert digit_allows(seventh, cpr.birth_date.year)


@pytest.mark.parametrize(
    "text",
    [
        "290200-0000",  # 1900 is not a leap year; 7th digit 0 means 1900
        "290200-3999",
        "290237-4000",  # 1937 is not a leap year
        "290258-5000",  # 1858 is not a leap year
        "290223-0000",  # 1923 is not a leap year
        "290223-4000",  # 2023 is not a leap year
        "310299-0000",  # no 31 February
        "310499-1234",  # no 31 April
        "000199-1234",  # day 0
        "320199-1234",  # day 32
        "011399-1234",  # month 13
        "010099-1234",  # month 0
    ],
)
def test_impossible_dates_are_rejected(text: str) -> None:
    with pytest.raises(CprError) as caught:
        parse_cpr(text)
    assert "dato" in caught.value.user_message


def test_29_february_depends_on_the_seventh_digit() -> None:
    with pytest.raises(CprError):
        parse_cpr("290200-0000")  # 1900
    assert parse_cpr("290200-4000").birth_date == date(2000, 2, 29)  # 2000 is a leap year
    assert parse_cpr("290296-5000").birth_date == date(1896, 2, 29)
    assert parse_cpr("290296-0000").birth_date == date(1996, 2, 29)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "010190123",  # 9 digits
        "01019012345",  # 11 digits
        "0101901-234",  # hyphen in the wrong place
        "01019-01234",
        "010190--1234",
        "-0101901234",
        "0101901234-",
        "010190 1234",  # space is not a separator
        "010190/1234",
        "010190.1234",
        "010190–1234",  # en dash
        "01o190-1234",  # letter o
        "O10190-1234",
        "abcdefghij",
        "010190-12a4",
        "０１０１９０-１２３４",  # fullwidth digits
        "٠١٠١٩٠-١٢٣٤",  # Arabic-Indic digits: \\d would take them
        "01 01 90-1234",
        "010190-1234\x00",
    ],
)
def test_malformed_shapes_are_rejected_with_a_danish_reason(text: str) -> None:
    with pytest.raises(CprError) as caught:
        parse_cpr(text)
    error = caught.value
    assert isinstance(error, StationError)
    assert "CPR" in error.user_message or "Bindestregen" in error.user_message
    assert error.user_message != ""


@given(
    st.text(alphabet=st.sampled_from("0123456789-/ .xX"), min_size=0, max_size=14).filter(
        lambda t: not (t.strip().replace("-", "", 1).isdigit())
    )
)
def test_anything_but_digits_and_one_hyphen_is_rejected(text: str) -> None:
    with pytest.raises(CprError):
        parse_cpr(text)


@given(st.from_regex(r"[0-9]{1,9}|[0-9]{11,14}", fullmatch=True))
def test_wrong_number_of_digits_is_rejected(text: str) -> None:
    with pytest.raises(CprError):
        parse_cpr(text)


@given(valid_cpr_text())
def test_repr_str_and_errors_never_contain_the_digits(case: tuple[str, date, int, str]) -> None:
    text, _born, _seventh, _rest = case
    cpr = parse_cpr(text)
    digits = cpr.digits
    for shown in (repr(cpr), str(cpr), f"{cpr}", f"{cpr!r}", f"{cpr:>30}", repr([cpr])):
        assert digits not in shown
        assert digits[:6] not in shown
        assert "skjult" in shown


@given(st.from_regex(r"[0-9]{6}-?[0-9]{4}", fullmatch=True))
def test_error_messages_never_contain_the_digits(text: str) -> None:
    try:
        parse_cpr(text, today=date(2026, 1, 1))
    except CprError as error:
        digits = text.replace("-", "")
        assert digits[:6] not in str(error)
        assert digits[6:] not in str(error)
        assert digits[:6] not in error.user_message


def test_a_number_failing_modulus_11_is_still_accepted() -> None:
    # Since 2007 the CPR office issues numbers that fail modulus 11 (e.g. many born
    # 1 January 1965 and 1 January 1966 got such numbers).
    cpr = parse_cpr("010165-1234")
    total = sum(
        int(d) * w for d, w in zip("0101651234", (4, 3, 2, 7, 6, 5, 4, 3, 2, 1), strict=True)
    )
    assert total % 11 != 0
    assert cpr.mod11_valid is False
    assert cpr.birth_date == date(1965, 1, 1)


def test_a_number_passing_modulus_11_says_so() -> None:
    # The textbook example 070761-4285 satisfies modulus 11.
    cpr = parse_cpr("070761-4285")
    assert cpr.mod11_valid is True
    assert cpr.birth_date == date(1961, 7, 7)
    assert cpr.sex is Sex.MALE
    assert cpr.sex.label_da == "Mand"
    assert parse_cpr("070761-4284").sex is Sex.FEMALE


def test_a_birth_date_after_today_is_refused_when_today_is_given() -> None:
    assert parse_cpr("010150-5000").birth_date == date(2050, 1, 1)
    with pytest.raises(CprError) as caught:
        parse_cpr("010150-5000", today=date(2026, 6, 1))
    assert "fremtiden" in caught.value.user_message
    assert parse_cpr("010626-4000", today=date(2026, 6, 1)).birth_date == date(2026, 6, 1)


def test_cpr_is_frozen_comparable_and_validates_direct_construction() -> None:
    cpr = parse_cpr("0101901234")
    assert cpr == Cpr("0101901234")
    assert hash(cpr) == hash(Cpr("0101901234"))
    with pytest.raises(AttributeError):
        cpr.digits = "0202901234"  # type: ignore[misc]
    for bad in ("010190-1234", "310299-0000".replace("-", ""), "12345"):
        with pytest.raises(CprError):
            Cpr(bad)
    # A round trip through pickle (e.g. multiprocessing) keeps it valid and hidden.
    assert pickle.loads(pickle.dumps(cpr)) == cpr


def test_looks_like_cpr() -> None:
    assert looks_like_cpr("0101901234")
    assert looks_like_cpr("id 010190-1234 here")
    assert not looks_like_cpr("3f2a9c0e1b7d4e5f8a6b2c1d0e9f8a7b")
    assert not looks_like_cpr("01019012345")  # eleven digits: not a CPR number
    assert not looks_like_cpr("staff-7")


def test_is_cpr_shaped_checks_the_whole_value() -> None:
    assert is_cpr_shaped("0101901234")
    assert is_cpr_shaped(" 010190-1234 ")
    assert not is_cpr_shaped("a0101901234b")
    assert not is_cpr_shaped("010190 1234x")


class TestPartial:
    """The as-you-type verdicts."""

    @pytest.mark.parametrize(
        "text", ["", "0", "01", "0101", "010190", "010190-", "0101901", "010190-123", "  0101"]
    )
    def test_incomplete_prefixes(self, text: str) -> None:
        state = check_partial_cpr(text)
        assert state.status is PartialCprStatus.INCOMPLETE
        assert state.cpr is None
        assert state.reason

    @pytest.mark.parametrize(
        ("text", "word"),
        [
            ("32", "Dagen"),
            ("00", "Dagen"),
            ("0113", "Måneden"),
            ("3104", "dato"),
            ("3002", "dato"),
            ("290223", "dato"),  # no century makes 23 a leap year (1823, 1923, 2023)
            ("2902000", "århundrede"),  # 1900 is no leap year
            ("01a", "cifre"),
            ("0101-90", "Bindestregen"),
            ("01019012345", "10 cifre"),
        ],
    )
    def test_invalid_as_soon_as_it_can_be_known(self, text: str, word: str) -> None:
        state = check_partial_cpr(text)
        assert state.status is PartialCprStatus.INVALID
        assert state.reason is not None
        assert word in state.reason

    def test_leap_day_waits_for_the_seventh_digit(self) -> None:
        assert check_partial_cpr("290200").status is PartialCprStatus.INCOMPLETE
        assert check_partial_cpr("2902004").status is PartialCprStatus.INCOMPLETE
        assert check_partial_cpr("2902000").status is PartialCprStatus.INVALID

    def test_complete_valid_with_mod11_warning(self) -> None:
        state = check_partial_cpr("010165-1234")
        assert state.status is PartialCprStatus.VALID
        assert state.cpr == parse_cpr("0101651234")
        assert state.mod11_warning is True
        assert check_partial_cpr("070761-4285").mod11_warning is False
        assert "0101651234" not in repr(state)

    def test_future_date_with_today(self) -> None:
        state = check_partial_cpr("0101505", today=date(2026, 1, 1))
        assert state.status is PartialCprStatus.INVALID

    @given(valid_cpr_text())
    def test_every_prefix_of_a_valid_number_is_never_invalid(
        self, case: tuple[str, date, int, str]
    ) -> None:
        text = case[0]
        for end in range(len(text)):
            assert check_partial_cpr(text[:end]).status is PartialCprStatus.INCOMPLETE
        final = check_partial_cpr(text)
        assert final.status is PartialCprStatus.VALID
        assert final.cpr == parse_cpr(text)

    @given(st.from_regex(r"[0-9]{6}-?[0-9]{4}", fullmatch=True))
    def test_complete_verdict_agrees_with_parse(self, text: str) -> None:
        try:
            expected = parse_cpr(text)
        except CprError:
            assert check_partial_cpr(text).status is PartialCprStatus.INVALID
        else:
            assert check_partial_cpr(text).cpr == expected

"""The Danish personal identity number (CPR number), parsed and kept out of sight.

A CPR number is ``DDMMYY-SSSS``: a birth date without its century, then four serial digits.
The first serial digit (the number's 7th digit) and the year together give the century, by
the CPR office's table (``_century``). Since 2007 the office hands out numbers that fail the
old modulus-11 check, so that check is reported (``Cpr.mod11_valid``), never enforced.

A ``Cpr`` never shows its digits by accident: ``repr()`` and ``str()`` are ``Cpr(<skjult>)``,
errors never quote the input, and the one screen that must show it calls ``formatted()``. A
CPR number is never a key: residents have random ids (see ``station.core.model``).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from typing import Final

from station.core.errors import CoreError
from station.i18n import N_, LazyText, _, translate

__all__ = [
    "Cpr",
    "CprError",
    "PartialCprState",
    "PartialCprStatus",
    "Sex",
    "check_partial_cpr",
    "is_cpr_shaped",
    "looks_like_cpr",
    "parse_cpr",
]

#: Weights of the modulus-11 check, digit by digit.
_MOD11_WEIGHTS: Final = (4, 3, 2, 7, 6, 5, 4, 3, 2, 1)

# ASCII digits only: ``\d`` would also take Arabic-Indic and other Unicode digits.
_FULL_RE: Final = re.compile(r"([0-9]{6})-?([0-9]{4})")
_DIGITS_RE: Final = re.compile(r"[0-9]{10}")
_PARTIAL_ALLOWED_RE: Final = re.compile(r"[0-9-]*")
_CPR_LIKE_RE: Final = re.compile(r"(?<![0-9])[0-9]{6}[- ]?[0-9]{4}(?![0-9])")


class CprError(CoreError):
    """A text is not a valid CPR number. ``str()`` never contains the digits typed."""

    default_user_message = N_(
        "The CPR number is not valid. Write the CPR number as DDMMYY-XXXX (10 digits)."
    )


class Sex(Enum):
    """Legal sex as the CPR number's last digit records it (odd male, even female)."""

    MALE = "male"
    FEMALE = "female"

    @property
    def label_da(self) -> str:
        """The Danish word (as the care record writes it, whatever the UI's language)."""
        return translate(N_("Male") if self is Sex.MALE else N_("Female"), "da")


def _century(seventh: int, yy: int) -> int:
    """The century (1800, 1900 or 2000) the CPR office's table gives a 7th digit and year."""
    if seventh <= 3:
        return 1900
    if seventh in (4, 9):
        return 2000 if yy <= 36 else 1900
    # 5 to 8
    return 2000 if yy <= 57 else 1800


def _mod11(digits: str) -> bool:
    return sum(int(d) * w for d, w in zip(digits, _MOD11_WEIGHTS, strict=True)) % 11 == 0


def _birth_date(digits: str) -> date:
    """The birth date the ten digits encode, or CprError when that date does not exist."""
    day, month, yy = int(digits[0:2]), int(digits[2:4]), int(digits[4:6])
    year = _century(int(digits[6]), yy) + yy
    try:
        return date(year, month, day)
    except ValueError:
        # The message says which part, never the digits themselves.
        raise CprError(
            "CPR number rejected: the first six digits are not a date in the century the "
            "7th digit gives",
            N_(
                "The first six digits of the CPR number are not a valid birth date (DDMMYY). "
                "Check the number."
            ),
        ) from None


@dataclass(frozen=True, repr=False)
class Cpr:
    """A valid CPR number. Construct it with ``parse_cpr``; it never shows itself in logs."""

    #: The ten digits, without the hyphen. Read it only to seal or compare it.
    digits: str
    birth_date: date = field(init=False, compare=False)
    sex: Sex = field(init=False, compare=False)
    mod11_valid: bool = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.digits, str) or _DIGITS_RE.fullmatch(self.digits) is None:
            raise CprError("CPR number rejected: Cpr() needs exactly ten ASCII digits")
        object.__setattr__(self, "birth_date", _birth_date(self.digits))
        object.__setattr__(self, "sex", Sex.MALE if int(self.digits[9]) % 2 else Sex.FEMALE)
        object.__setattr__(self, "mod11_valid", _mod11(self.digits))

    def formatted(self) -> str:
        """``DDMMYY-SSSS``: only for the one place that must show the number to staff."""
        return f"{self.digits[:6]}-{self.digits[6:]}"

    def __repr__(self) -> str:
        return "Cpr(<skjult>)"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        # f"{cpr}" must not be a way round the hiding either.
        return format(repr(self), format_spec)


def parse_cpr(text: str, *, today: date | None = None) -> Cpr:
    """Parse ``DDMMYY-SSSS`` or ``DDMMYYSSSS`` (surrounding whitespace allowed).

    The date must exist in the century the 7th digit and the year give. With ``today``, a
    birth date after it is refused too (nobody is born in the future); without it, only
    the shape and the calendar are checked. Modulus 11 is not required: see
    ``Cpr.mod11_valid``. Raises ``CprError`` with a ``user_message`` that says why.
    """
    if not isinstance(text, str):
        raise CprError("CPR number rejected: not a string")
    stripped = text.strip()
    if not stripped:
        raise CprError(
            "CPR number rejected: empty",
            N_("Enter the CPR number. Write the CPR number as DDMMYY-XXXX (10 digits)."),
        )
    match = _FULL_RE.fullmatch(stripped)
    if match is None:
        raise CprError("CPR number rejected: wrong shape", _shape_reason(stripped))
    cpr = Cpr(match.group(1) + match.group(2))
    if today is not None and cpr.birth_date > today:
        raise CprError(
            "CPR number rejected: birth date is in the future",
            N_("The birth date in the CPR number is in the future. Check the number."),
        )
    return cpr


def _shape_reason(text: str) -> str | LazyText:
    """Why ``text`` is not shaped like a CPR number (a msgid), without quoting it."""
    if any(not ("0" <= ch <= "9" or ch == "-") for ch in text):
        return N_(
            "The CPR number may only contain digits and one hyphen. "
            "Write the CPR number as DDMMYY-XXXX (10 digits)."
        )
    if text.count("-") > 1 or ("-" in text and text.index("-") != 6):
        return N_(
            "The hyphen must come after the first six digits. "
            "Write the CPR number as DDMMYY-XXXX (10 digits)."
        )
    count = sum(ch.isdigit() for ch in text)
    if count < 10:
        return LazyText(
            "The CPR number has too few digits ({count} of 10). "
            "Write the CPR number as DDMMYY-XXXX (10 digits).",
            count=count,
        )
    return LazyText(
        "The CPR number has too many digits ({count} instead of 10). "
        "Write the CPR number as DDMMYY-XXXX (10 digits).",
        count=count,
    )


def looks_like_cpr(text: str) -> bool:
    """Whether free ``text`` holds something shaped like a CPR number anywhere in it.

    Ten digits in a row (maybe with a hyphen or space after six) not inside a longer run of
    digits. A cheap guard for free text that must never carry one (log lines, outcomes); it
    does not validate the date. Do not use it on random hex ids: about one uuid4 hex in
    twelve holds ten digits in a row. Use ``is_cpr_shaped`` for ids.
    """
    return _CPR_LIKE_RE.search(text) is not None


def is_cpr_shaped(text: str) -> bool:
    """Whether ``text`` as a whole is shaped like a CPR number (guard for ids)."""
    return _FULL_RE.fullmatch(text.strip()) is not None


class PartialCprStatus(Enum):
    """How far a CPR number typed so far has come."""

    INCOMPLETE = "incomplete"
    INVALID = "invalid"
    VALID = "valid"


@dataclass(frozen=True)
class PartialCprState:
    """The verdict on a CPR number while it is being typed.

    ``reason`` says what is wrong (INVALID) or what is missing (INCOMPLETE), translated
    when the verdict is made;
    ``cpr`` is set only when VALID. ``mod11_warning`` is true for a complete number that
    fails modulus 11: legal since 2007, but worth a second look.
    """

    status: PartialCprStatus
    reason: str | None = None
    cpr: Cpr | None = field(default=None, repr=False)

    @property
    def mod11_warning(self) -> bool:
        """True when the number is complete and valid but fails the modulus-11 check."""
        return self.cpr is not None and not self.cpr.mod11_valid


def check_partial_cpr(text: str, *, today: date | None = None) -> PartialCprState:
    """Judge a CPR number while it is typed, so a field can say what is wrong at once.

    Checks what can already be known: characters, the hyphen's place, the day (after two
    digits), the month and the day in that month (after four), whether the date exists in
    any century (after six) and in the 7th digit's century (after seven).
    """
    stripped = text.strip()
    if _PARTIAL_ALLOWED_RE.fullmatch(stripped) is None:
        return PartialCprState(
            PartialCprStatus.INVALID,
            _("The CPR number may only contain digits and one hyphen."),
        )
    if stripped.count("-") > 1 or ("-" in stripped and stripped.index("-") != 6):
        return PartialCprState(
            PartialCprStatus.INVALID, _("The hyphen must come after the first six digits.")
        )
    digits = stripped.replace("-", "")
    if len(digits) > 10:
        return PartialCprState(PartialCprStatus.INVALID, _("The CPR number has only 10 digits."))
    bad_date = _("The first six digits must be a valid birth date (DDMMYY).")
    if len(digits) >= 2 and not 1 <= int(digits[:2]) <= 31:
        return PartialCprState(PartialCprStatus.INVALID, _("The day must be between 01 and 31."))
    if len(digits) >= 4:
        month = int(digits[2:4])
        if not 1 <= month <= 12:
            return PartialCprState(
                PartialCprStatus.INVALID, _("The month must be between 01 and 12.")
            )
        # 2000 is a leap year, so this allows 29 February until the year is known.
        if int(digits[:2]) > calendar.monthrange(2000, month)[1]:
            return PartialCprState(PartialCprStatus.INVALID, bad_date)
    if len(digits) >= 6:
        day, month, yy = int(digits[:2]), int(digits[2:4]), int(digits[4:6])
        if not any(
            day <= calendar.monthrange(century + yy, month)[1] for century in (1800, 1900, 2000)
        ):
            return PartialCprState(PartialCprStatus.INVALID, bad_date)
    if len(digits) >= 7:
        day, month, yy = int(digits[:2]), int(digits[2:4]), int(digits[4:6])
        year = _century(int(digits[6]), yy) + yy
        if day > calendar.monthrange(year, month)[1]:
            return PartialCprState(
                PartialCprStatus.INVALID,
                _("The date does not exist in the century the 7th digit gives. Check the number."),
            )
        if today is not None and date(year, month, day) > today:
            return PartialCprState(PartialCprStatus.INVALID, _("The birth date is in the future."))
    if len(digits) < 10:
        missing = 10 - len(digits)
        reason = (
            _("1 digit of 10 is missing.")
            if missing == 1
            else _("{missing} digits of 10 are missing.").format(missing=missing)
        )
        return PartialCprState(PartialCprStatus.INCOMPLETE, reason)
    try:
        cpr = parse_cpr(digits, today=today)
    except CprError as error:  # pragma: no cover - every rejection is caught above
        return PartialCprState(PartialCprStatus.INVALID, error.user_message)
    return PartialCprState(PartialCprStatus.VALID, None, cpr)

"""Help where the work is: one text per staff screen, shown by F1 or ``?`` and printed as the
station's one-page quick guide (:mod:`tui.staff.guide`), so both always say the same.

Each :class:`HelpTopic` is marked for the catalogue (``N_``) and translated when it is read:
Danish by default, English with ``KONTAKTSTATION_LANG=en``. A screen names its topic in its
``HELP_TOPIC`` class attribute; a test holds every staff screen to having one. The texts name
keys and buttons as the screens show them; they never hold a resident's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from station.i18n import N_, _

__all__ = ["GUIDE_TOPICS", "TOPICS", "HelpTopic", "guide_title", "topic"]


@dataclass(frozen=True, slots=True)
class HelpTopic:
    """The help for one screen: a title and the steps, as msgids."""

    key: str
    title_msgid: str
    steps_msgids: tuple[str, ...]

    @property
    def title(self) -> str:
        """The title in the station's language."""
        return _(self.title_msgid)

    @property
    def steps(self) -> tuple[str, ...]:
        """The steps in the station's language."""
        return tuple(_(step) for step in self.steps_msgids)


_ALL: Final = (
    HelpTopic(
        "unlock",
        N_("Unlock the station"),
        (
            N_("Type your staff number (3-4 digits) and your PIN code, then press Enter."),
            N_(
                'First time at this station? Choose "New staff member" and type the one-time '
                "code from IT."
            ),
            N_(
                "Forgot your PIN code? Ask IT for a new one-time code and enroll again: your "
                "old PIN code stops working."
            ),
            N_("After several wrong attempts the station makes you wait before the next one."),
            N_(
                "The station locks by itself when nobody uses it, and at once when the privacy "
                "button is pressed."
            ),
        ),
    ),
    HelpTopic(
        "enroll",
        N_("New staff member"),
        (
            N_("Type the one-time code from IT."),
            N_("Choose a PIN code of 6 to 12 digits and type it twice."),
            N_(
                "Not the first one on this station? A colleague who is enrolled types their "
                "staff number and PIN code to vouch for you."
            ),
            N_(
                "You get a staff number. Remember it: you type it with your PIN code to unlock "
                "the station."
            ),
        ),
    ),
    HelpTopic(
        "today",
        N_("Today"),
        (
            N_(
                "The list shows today's booked video consultations. A books a new one: only a "
                "time agreed with the GP."
            ),
            N_(
                "R adds a resident to the queue, with or without CPR number: several in a row "
                "for a round with the GP."
            ),
            N_("Choose a resident with the arrow keys; S skips, Delete removes."),
            N_("C starts the call: the pre-call check comes first."),
            N_("W writes the note after a call."),
            N_("Ctrl+L locks the station at once."),
        ),
    ),
    HelpTopic(
        "precheck",
        N_("Pre-call check"),
        (
            N_("Check that the resident can be seen in the picture."),
            N_("Speak: the microphone level must move. T plays a test tone: listen for it."),
            N_("The connection line tells whether the GP can be reached, and how."),
            N_("Ctrl+S or F2 starts the call. Esc calls it off."),
            N_(
                "The GP gets a code: read the address and the code to the GP over the phone, "
                "or let the GP scan the QR code."
            ),
        ),
    ),
    HelpTopic(
        "call",
        N_("The call"),
        (
            N_("N and P go to the next and previous resident: the GP sees who is on camera."),
            N_("M turns the microphone on and off, V the camera, L audio only."),
            N_(
                "The resident wants privacy: press the privacy button (or F) and leave the "
                "room. Everything personal on the screen is locked; the call goes on."
            ),
            N_("Reconnecting: the station restores the call by itself. Wait; do not call again."),
            N_("E ends the call. Then write the note."),
        ),
    ),
    HelpTopic(
        "wrapup",
        N_("Note for the care record"),
        (
            N_("Write a note for each resident, and save it with Ctrl+S."),
            N_("F2 marks the consultation documented when every resident has a note."),
            N_("A note that cannot be sent now waits encrypted on the station and is sent later."),
            N_(
                "A consultation without a note is shown again at every log-in until it is "
                "documented."
            ),
        ),
    ),
)

#: Every topic by its key.
TOPICS: Final[dict[str, HelpTopic]] = {t.key: t for t in _ALL}
#: The quick guide's order: a consultation from log-in to note.
GUIDE_TOPICS: Final = tuple(t.key for t in _ALL)


def topic(key: str) -> HelpTopic:
    """The topic named ``key`` (a ``KeyError`` names a screen with a topic nobody wrote)."""
    return TOPICS[key]


def guide_title() -> str:
    """The quick guide's heading, in the station's language."""
    return _("KontaktStation — quick guide for staff")

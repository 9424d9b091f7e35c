"""The reminder that a call still needs its note: shown on Today until the wrap-up is done.

A call that ended while the station was locked (the staff UI was not running) leaves its
wrap-up pending; this banner names it (time and clinic) and the key that opens it.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import Static

from station.i18n import N_, _
from tui.localtime import local
from tui.safe_text import literal
from tui.staff.data import AppointmentView, MissedView, UndocumentedView

__all__ = ["MissedNotice", "UndocumentedReminder", "WrapUpReminder"]


class WrapUpReminder(Static):
    """Hidden while no wrap-up is pending."""

    DEFAULT_CSS = """
    WrapUpReminder {
        background: $warning 30%;
        color: $text;
        padding: 0 1;
        height: auto;
    }
    """

    def on_mount(self) -> None:
        """Hidden until there is something to say."""
        self.display = False

    def show(self, pending: Sequence[AppointmentView], count: int) -> None:
        """``count`` wrap-ups are pending; ``pending`` are those among today's appointments."""
        self.display = count > 0
        if not count:
            self.update("")
            return
        when = ", ".join(f"{local(a.starts_at):%H:%M} {a.clinic_name}" for a in pending)
        self.update(
            literal(
                _("A call needs its note for the care record: {which}. Press W.").format(
                    which=when or str(count)
                ),
                200,
            )
        )


class _ConsultationBanner(Static):
    """A banner listing consultations by time and clinic (the first :attr:`SHOWN`, the rest as
    a count); hidden when there is none. Subclasses say what the list means (:attr:`SENTENCE`)."""

    #: Listed by time and clinic; the rest as a count.
    SHOWN = 3
    #: What the banner says (a msgid with ``{count}`` and ``{which}``).
    SENTENCE = ""

    def on_mount(self) -> None:
        """Hidden until there is something to say."""
        self.display = False

    def show(self, items: Sequence[UndocumentedView | MissedView]) -> None:
        """The consultations to name (oldest first)."""
        self.display = bool(items)
        if not items:
            self.update("")
            return
        which = ", ".join(
            f"{local(v.starts_at):%d-%m %H:%M} {v.clinic_name}" for v in items[: self.SHOWN]
        )
        if len(items) > self.SHOWN:
            which += " " + _("and {count} more").format(count=len(items) - self.SHOWN)
        self.update(literal(_(self.SENTENCE).format(count=len(items), which=which), 300))


class UndocumentedReminder(_ConsultationBanner):
    """ "Mangler dokumentation": every consultation whose call ended without a note, at every
    log-in, until it is documented or cancelled (issue 17, item 3). Hidden when there is none."""

    DEFAULT_CSS = """
    UndocumentedReminder {
        background: $error 30%;
        color: $text;
        padding: 0 1;
        height: auto;
        max-height: 3;
    }
    """

    SENTENCE = N_("Missing documentation ({count}): {which}")


class MissedNotice(_ConsultationBanner):
    """ "Glemt videokonsultation": booked slots that passed without a call, shown at the next
    log-in (issue 17, item 2), then acknowledged. Hidden when there is none."""

    DEFAULT_CSS = """
    MissedNotice {
        background: $error 50%;
        color: $text;
        padding: 0 1;
        height: auto;
        max-height: 3;
    }
    """

    SENTENCE = N_(
        "Missed video consultations ({count}): {which}. No call was made; "
        "contact the clinic to book a new time."
    )

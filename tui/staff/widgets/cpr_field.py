"""A CPR number field that checks the number as it is typed, with the domain's own rules.

The verdict shows under the field at every key: not valid (red, and why), still incomplete
(what is missing), valid but failing modulus 11 (a warning only: numbers issued since 2007
may), or valid. The input keeps its id (``cpr``), so the dialog reads it as any other field.
"""

from __future__ import annotations

from datetime import date

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Static

from station.core.cpr import PartialCprStatus, check_partial_cpr
from station.i18n import _

__all__ = ["CprField"]


class CprField(Vertical):
    """The CPR input and its verdict line (see the module docs)."""

    DEFAULT_CSS = """
    CprField {
        height: auto;
    }
    """

    def __init__(
        self, today: date, *, input_id: str = "cpr", status_id: str = "cpr-status"
    ) -> None:
        super().__init__()
        #: The day the check counts from (the century rule).
        self.today = today
        self._input_id = input_id
        self._status_id = status_id

    def compose(self) -> ComposeResult:
        """The field, then its verdict."""
        yield Input(id="cpr", max_length=11, restrict=r"[0-9-]*")
        yield Static("", id="cpr-status", markup=False)

    @property
    def value(self) -> str:
        """What is typed."""
        return self.query_one(Input).value

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        status = self.query_one(Static)
        verdict = check_partial_cpr(event.value, today=self.today)
        status.remove_class("error", "warning", "ok")
        if not event.value:
            status.update("")
        elif verdict.status is PartialCprStatus.INVALID:
            status.update(verdict.reason or _("The CPR number is not valid."))
            status.add_class("error")
        elif verdict.status is PartialCprStatus.INCOMPLETE:
            status.update(verdict.reason or "")
        elif verdict.mod11_warning:
            status.update(
                _(
                    "Note: the number fails the modulus 11 check. Numbers issued since 2007 "
                    "may do that; check it against the health card."
                )
            )
            status.add_class("warning")
        else:
            status.update(_("The CPR number is valid."))
            status.add_class("ok")

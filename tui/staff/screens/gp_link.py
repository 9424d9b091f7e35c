"""How staff pass the call on to a GP: a short code to read over the phone, the address the
GP types it at, and a QR code of the full link for a phone.

Shown when the call starts and stays until staff close it (Escape or the button): no toast
that vanishes while someone is still reading the code out. The code and the link are
credentials for this one call: they are shown here and nowhere else (never logged).
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from station.i18n import _
from tui.qr import qr_lines
from tui.safe_text import literal
from tui.staff.screens.base import StaffDialog

__all__ = ["GpLinkScreen"]


class GpLinkScreen(StaffDialog[None]):
    """The code, the address and the link's QR code, until dismissed."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", _("Close"), id="gp-link.close"),
    ]

    DEFAULT_CSS = """
    GpLinkScreen .dialog.gp-link { width: auto; max-width: 100; height: auto; }
    GpLinkScreen #gp-qr { width: auto; margin-right: 2; color: white; background: black; }
    GpLinkScreen #gp-code { text-style: bold; margin: 1 0; }
    GpLinkScreen .gp-link-text { width: 40; height: auto; }
    /* Over the call in the kiosk only the rows below the video are free: the code and the
       address, which staff read out, stay; the QR code (for a GP's phone) does not fit. */
    GpLinkScreen.below-video #gp-qr, GpLinkScreen.below-video #gp-qr-help { display: none; }
    GpLinkScreen.below-video .gp-link-text { width: 1fr; }
    GpLinkScreen.below-video .dialog.gp-link { width: 100%; max-width: 100%; }
    GpLinkScreen.below-video #gp-code { margin: 0; }
    """

    def __init__(self, gp_url: str, code: str | None, code_url: str | None) -> None:
        super().__init__()
        self._gp_url = gp_url
        self._code = code
        self._code_url = code_url

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog gp-link"):
            yield Static(_("Give the GP the way in"), classes="title")
            with Horizontal(classes="row"):
                yield Static("\n".join(qr_lines(self._gp_url)), id="gp-qr")
                with Vertical(classes="gp-link-text"):
                    if self._code and self._code_url:
                        yield Static(
                            literal(
                                _("Read this to the GP over the phone: open {address}").format(
                                    address=_address(self._code_url)
                                ),
                                200,
                            ),
                            id="gp-address",
                        )
                        yield Static(
                            literal(_("Code: {code}").format(code=self._code), 40), id="gp-code"
                        )
                    yield Static(_("Or let the GP scan the QR code with a phone."), id="gp-qr-help")
                    yield Static(
                        _("The code works for this call only, until the GP has joined."),
                        classes="dialog-help",
                    )
            with Horizontal(classes="buttons"):
                yield Button(_("Close"), id="close", variant="primary")

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        """Back to the call."""
        self.dismiss(None)


def _address(url: str) -> str:
    """The address as a person types it: without ``https://``."""
    for scheme in ("https://", "http://"):
        if url.startswith(scheme):
            return url[len(scheme) :]
    return url

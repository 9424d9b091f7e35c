"""The GP page's texts, through the catalogue like every other text people read.

The page (``hub/static/gp.html`` and ``gp.js``, no build step) gets them in the language
the link asks for (``?lang=en``; Danish by default) as a JSON data block the hub writes into
the HTML when it serves it: no second request before the page can speak, and nothing the
page's Content-Security-Policy has to allow (a ``type="application/json"`` block is never
run). ``{time}`` in a text is filled in by the page.
"""

from __future__ import annotations

import html
import json
from typing import Final

from station.i18n import LANGUAGES, N_, translate

__all__ = ["CODE_TEXTS", "GP_TEXTS", "render_code_page", "render_gp_page"]

#: key → English msgid; ``errors`` maps the hub's error codes to what the GP reads.
GP_TEXTS: Final[dict[str, object]] = {
    "title": N_("Video consultation"),
    "loading": N_("Loading the appointment …"),
    "booked": N_("The station has not called in yet."),
    "bookedDetail": N_(
        "The appointment is {time}. This page updates itself when the station is ready."
    ),
    "stationWaiting": N_("The station is waiting"),
    "admit": N_("Admit"),
    "born": N_("Born"),
    "room": N_("Room"),
    "reason": N_("Reason"),
    "namesAfterAdmit": N_("The names are shown when you have admitted the station."),
    "connecting": N_("Connecting …"),
    "reconnecting": N_("Reconnecting …"),
    "mute": N_("Mute microphone"),
    "unmute": N_("Unmute microphone"),
    "cameraOff": N_("Turn camera off"),
    "cameraOn": N_("Turn camera on"),
    "audioOnlyButton": N_("Audio only"),
    "showVideo": N_("Show video again"),
    "audioOnly": N_("Audio only"),
    "audioOnlyPoor": N_("Audio only — poor connection"),
    "hangup": N_("End call"),
    "inFrontNow": N_("In front of the camera now"),
    "of": N_("of"),
    "private": N_("The staff have left the room. The call is private now."),
    "quality": N_("Connection"),
    "good": N_("good"),
    "fair": N_("fair"),
    "poor": N_("poor"),
    "noMedia": N_(
        "Camera and microphone could not be started. The connection to the resident is kept, "
        "but the resident can neither see nor hear you."
    ),
    "noVideo": N_("The camera could not be started. The resident can hear you but not see you."),
    "permissionHint": N_("Check that the browser may use the camera and microphone on this page."),
    "deviceHint": N_(
        "Also check that the camera and microphone are connected and not used by another "
        "program, then reload the page."
    ),
    "preview": N_("This is how the resident sees you."),
    "networkTrouble": N_("Lost the connection to the server. Retrying …"),
    "errors": {
        "you_ended": N_("You ended the call."),
        "unknown_link": N_(
            "This link is not valid. Check that you used the whole link from the invitation."
        ),
        "link_not_yet_valid": N_("This link works from {time}. The page will try again by itself."),
        "link_expired": N_("This link has expired. Agree a new time with the care home."),
        "link_revoked": N_("The appointment was cancelled; the link no longer works."),
        "call_ended": N_("The conversation has ended."),
        "room_already_admitted": N_("The call is already open in another window or browser."),
        "not_admitted_browser": N_("This window is no longer part of the call. Reload the page."),
        "station_not_waiting": N_("The station is not ready yet. Please wait a moment."),
        "unsupported": N_(
            "Your browser cannot make video calls. Use a recent Chrome, Edge, Firefox or Safari."
        ),
        "generic": N_("Something went wrong. Try reloading the page."),
    },
    # The HTML's own words, before the script runs (or when it cannot).
    "noscript": N_("This page needs JavaScript."),
}


def _translated(texts: dict[str, object], language: str) -> dict[str, object]:
    return {
        key: _translated(value, language)
        if isinstance(value, dict)
        else translate(str(value), language)
        for key, value in texts.items()
    }


def render_gp_page(template: str, language: str) -> str:
    """``gp.html`` with the texts of ``language`` filled in (``{{key}}``, and the JSON block)."""
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}")
    texts = _translated(GP_TEXTS, language)
    # "</" would end the <script> element early; JSON allows it escaped.
    block = json.dumps(texts, ensure_ascii=False).replace("</", "<\\/")
    page = template.replace("{{texts_json}}", block).replace("{{lang}}", language)
    for key, value in texts.items():
        if isinstance(value, str):
            page = page.replace("{{" + key + "}}", value)
    return page


#: The page where the GP types the short code staff read out (``/kode``).
CODE_TEXTS: Final[dict[str, str]] = {
    "title": N_("Video consultation"),
    "prompt": N_("Enter the code the care home gave you"),
    "submit": N_("Go to the call"),
    "unknown": N_(
        "The code is not valid. Check it with the care home; it only works on the day of the "
        "appointment and until the call has started."
    ),
    "limited": N_("Too many wrong codes. Wait ten minutes and try again."),
}


def render_code_page(language: str, error: str | None = None) -> str:
    """The code page; ``error`` (``unknown`` or ``limited``) shows why the last code failed."""
    t = {key: html.escape(translate(value, language)) for key, value in CODE_TEXTS.items()}
    message = f'<p id="code-error" role="alert">{t[error]}</p>' if error in t else ""
    return (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="stylesheet" href="/gp/gp.css"><title>{t["title"]}</title></head>'
        f'<body><main><h1>{t["title"]}</h1><form method="post" action="/kode">'
        f'<label for="code">{t["prompt"]}</label> '
        f'<input id="code" name="code" autocomplete="off" autocapitalize="characters" '
        f'spellcheck="false" maxlength="20" required>'
        f' <button id="go" type="submit">{t["submit"]}</button></form>{message}</main>'
        "</body></html>"
    )

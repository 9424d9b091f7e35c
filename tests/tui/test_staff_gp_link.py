"""The screen staff pass the call on with: the code, the address, the link's QR code.

A Textual app test (Pilot): the screen stays until staff close it, speaks Danish, shows the
code and the address as a person types it, and its QR code is the full link (compared module
for module with segno's matrix of that link).
"""

from __future__ import annotations

import asyncio

import segno
from textual.app import App
from textual.widgets import Static

from station.i18n import set_language
from tui.staff.screens.gp_link import GpLinkScreen

GP_URL = "https://hub.example.dk/gp/#" + "k" * 43
CODE = "KX4M-7QP2"
CODE_URL = "https://hub.example.dk/kode"


class _Host(App[None]):
    pass


def _text(screen: GpLinkScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_the_code_address_and_qr_stay_until_staff_close_them() -> None:
    set_language("da")
    app = _Host()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = GpLinkScreen(GP_URL, CODE, CODE_URL)
        app.push_screen(screen)
        await pilot.pause()
        assert app.screen is screen
        assert _text(screen, "#gp-address") == (
            "Læs op for lægen i telefonen: åbn hub.example.dk/kode"
        )
        assert _text(screen, "#gp-code") == "Kode: KX4M-7QP2"
        assert "scanne QR-koden" in _text(screen, "#gp-qr-help")
        # The long link itself is not written out anywhere on the screen.
        shown = "\n".join(str(w.render()) for w in screen.query(Static))
        assert GP_URL not in shown
        # The QR code: light modules are blocks, dark ones spaces, two rows per line.
        lines = _text(screen, "#gp-qr").split("\n")
        matrix = [list(r) for r in segno.make(GP_URL, error="l").matrix_iter(border=1)]
        if len(matrix) % 2:
            matrix.append([0] * len(matrix[0]))
        for i, line in enumerate(lines):
            for j, char in enumerate(line):
                top, bottom = not matrix[2 * i][j], not matrix[2 * i + 1][j]
                assert (
                    char
                    == {(1, 1): "█", (1, 0): "▀", (0, 1): "▄", (0, 0): " "}[(int(top), int(bottom))]
                )
        # It fits whole: every QR line is drawn in full.
        qr = screen.query_one("#gp-qr", Static)
        assert qr.region.width >= len(lines[0]) and qr.region.height >= len(lines)
        # Time passes: it is still there (no toast that vanishes while the code is read).
        await asyncio.sleep(0.5)
        await pilot.pause()
        assert app.screen is screen
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not screen


async def test_without_a_code_the_qr_code_still_shows() -> None:
    set_language("da")
    app = _Host()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = GpLinkScreen(GP_URL, None, None)
        app.push_screen(screen)
        await pilot.pause()
        assert not screen.query("#gp-code")
        assert screen.query_one("#gp-qr", Static).region.height > 10
        await pilot.click("#close")
        await pilot.pause()
        assert app.screen is not screen

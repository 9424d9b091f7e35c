"""QR codes drawn in text with half blocks, for the station's screens (segno makes the code)."""

from __future__ import annotations

import segno

__all__ = ["qr_lines"]


def qr_lines(payload: str, border: int = 1) -> list[str]:
    """``payload`` as a QR code in text: two modules per character (▀ ▄ █), dark on light.

    The text is for a light-on-dark terminal, so a *dark* module is a space and a light one
    a block, as a phone's camera expects (dark modules on a light quiet zone).
    """
    code = segno.make(payload, error="l", micro=False)
    rows = [list(row) for row in code.matrix_iter(scale=1, border=border)]
    if len(rows) % 2:
        rows.append([0] * len(rows[0]))
    lines = []
    for top, bottom in zip(rows[0::2], rows[1::2], strict=True):
        chars = []
        for t, b in zip(top, bottom, strict=True):
            light_top, light_bottom = not t, not b
            chars.append(
                "█"
                if light_top and light_bottom
                else "▀"
                if light_top
                else "▄"
                if light_bottom
                else " "
            )
        lines.append("".join(chars))
    return lines

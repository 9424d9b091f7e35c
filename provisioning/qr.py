"""The enrollment QR code (segno): the hub's URL, the station's code and its fingerprint.

The lock screen gets ``qr_payload`` from ``GET /v1/enrollment`` and draws it; these helpers
give it (and ``kontaktstation hw-check``) the QR as terminal text or as SVG, without pulling
segno into the lock screen's own code.
"""

from __future__ import annotations

import io

import segno

__all__ = ["qr_matrix", "qr_svg", "qr_text"]


def _make(payload: str) -> segno.QRCode:
    # Error level M: still readable with a smudge on the screen, small enough for a text QR.
    return segno.make(payload, error="m", micro=False)


def qr_text(payload: str, *, border: int = 2) -> str:
    """The QR as lines of half-block characters (two modules per character row)."""
    out = io.StringIO()
    _make(payload).terminal(out=out, compact=True, border=border)
    return out.getvalue()


def qr_svg(payload: str, *, scale: int = 4) -> str:
    """The QR as an SVG document (dark modules black, light ones white)."""
    out = io.BytesIO()
    _make(payload).save(out, kind="svg", scale=scale, xmldecl=False)
    return out.getvalue().decode("utf-8")


def qr_matrix(payload: str) -> list[list[bool]]:
    """The QR's modules, True for dark (for a UI that draws its own squares)."""
    return [[bool(cell) for cell in row] for row in _make(payload).matrix]

"""Outside text on screen: always literal, never markup, never terminal codes.

The one sanitizer of both UIs: the staff UI's residents' names and notes, the locked UI's
station name, clinic names and enrollment code. Whatever a person typed (or whatever reached
the store or the configuration) is data, never instructions to the screen.
:func:`literal` turns any string into a Rich :class:`~rich.text.Text` that

- is never parsed as Rich/Textual markup (``[bold]``, ``[link=...]``, ``[/]`` show as typed),
- carries no control characters: C0/C1 controls and DEL (so no ANSI escape sequence ever
  reaches the terminal) are shown as visible symbols, e.g. ``␛`` for ESC,
- carries no invisible formatting characters that reorder or hide text (right-to-left
  marks and overrides, isolates, zero-width spaces): each shows as ``�``; the zero-width
  joiner is kept so emoji sequences stay whole,
- is at most ``limit`` characters long, cut with an ellipsis (a 10,000-character name
  never pushes the layout apart).

Widgets get these :class:`Text` objects (or ``markup=False``), never raw strings.
"""

from __future__ import annotations

import unicodedata
from typing import Final

from rich.text import Text

__all__ = ["ELLIPSIS", "clean", "literal"]

ELLIPSIS: Final = "…"
_ZWJ: Final = "\u200d"
_REPLACEMENT: Final = "\ufffd"


def _visible(ch: str, keep_newlines: bool) -> str:
    code = ord(ch)
    if ch == "\n" and keep_newlines:
        return ch
    if ch == "\t":
        return " "
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode "control pictures" block: ␀ … ␟, ␛ for ESC
    if code == 0x7F:
        return "\u2421"  # ␡
    category = unicodedata.category(ch)
    if 0x80 <= code <= 0x9F or (category == "Cf" and ch != _ZWJ) or category in ("Cs", "Co"):
        return _REPLACEMENT
    if category == "Zl" or category == "Zp":  # line/paragraph separators break rows
        return "\n" if keep_newlines else " "
    return ch


def clean(value: object, limit: int = 80, *, keep_newlines: bool = False) -> str:
    """``value`` as safe plain text: controls made visible, at most ``limit`` characters."""
    text = value if isinstance(value, str) else str(value)
    # Cut first (cheaply), then clean: a 10 MB string costs no more than its first part.
    cut = len(text) > limit
    if cut:
        text = text[: max(0, limit - 1)]
    out = "".join(_visible(ch, keep_newlines) for ch in text)
    return out + ELLIPSIS if cut else out


def literal(
    value: object, limit: int = 80, *, style: str = "", keep_newlines: bool = False
) -> Text:
    """A :class:`Text` showing ``value`` literally (see the module docs); never markup."""
    text = Text(clean(value, limit, keep_newlines=keep_newlines), style=style, no_wrap=True)
    if not keep_newlines:
        text.overflow = "ellipsis"
    return text

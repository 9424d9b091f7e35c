"""Text rules every boundary shares: one line, or free text without control characters.

Control characters in text that reaches a screen could rewrite a page's layout (the GP's) or
a terminal (the station's); text that must be one line (a name, a room) has no line breaks
either. The hub, stationd's API, the provisioning documents and the waiting room all refuse
them with these same rules, so a person gets the same clear error wherever it is typed.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import AfterValidator

__all__ = ["SingleLine", "Text", "has_control", "single_line", "text"]

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_NEWLINE: Final = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def has_control(value: str) -> bool:
    """Whether ``value`` holds a control character (a line break counts)."""
    return _CONTROL.search(value) is not None


def single_line(value: str) -> str:
    """``value`` if it has no control character; ``ValueError`` otherwise."""
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed")
    return value


def text(value: str) -> str:
    """``value`` if it has no control character but line breaks; ``ValueError`` otherwise."""
    if _CONTROL_BUT_NEWLINE.search(value):
        raise ValueError("control characters are not allowed")
    return value


#: Text on one line.
SingleLine = Annotated[str, AfterValidator(single_line)]
#: Free text: newlines allowed, other control characters not.
Text = Annotated[str, AfterValidator(text)]

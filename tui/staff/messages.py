"""App-wide messages of the staff UI: what a screen tells the app, which decides (messages up).

Screens never call the app. When what happens next is the app's to decide (which screen
shows, the lock, the exit), a screen posts one of these and the app handles it. Messages
that only one screen sends nest in that screen's class (``PinScreen.Unlocked``,
``PreCheckScreen.CheckPassed``), as ``LockScreen.LoginPressed`` does in the locked UI.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

__all__ = ["LockRequested", "LockedOut", "SessionMoved"]


@dataclass
class SessionMoved(Message):
    """A screen moved stationd's session (the check begun or called off, a wrap-up resumed or
    finished): the app reads the session again and shows its screen."""


@dataclass
class LockRequested(Message):
    """Staff asked to lock: the lock key or button (``staff_action``), or leaving the room
    during the call (``leave``: the call goes private). Before the unlock: back to the lock
    screen."""

    reason: str = "staff_action"


@dataclass
class LockedOut(Message):
    """stationd refused a request because the station is locked (401): the app zeroes the
    keys and exits at once."""

"""The staff UI (Textual): PIN entry, Today, pre-call check, attended call, wrap-up.

The only process that holds the vault key; it exits on every lock. Start it with
``python -m tui.staff`` (the supervisor does) or build it with :func:`create_app`.
"""

from __future__ import annotations

from tui.staff.main import create_app, main

__all__ = ["create_app", "main"]

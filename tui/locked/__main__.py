"""``python -m tui.locked``: the locked UI, as the supervisor starts it."""

from __future__ import annotations

import sys

from tui.locked import kiosk_environment

kiosk_environment()

from tui.locked.app import main  # noqa: E402 (after the environment is cleaned)

sys.exit(main())

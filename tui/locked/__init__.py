"""The locked UI (``python -m tui.locked``): lock screen and the resident's call controls.

It imports no vault, keyring, record, store or cryptography code: there is nothing in this
process to leak. ``tui.locked.app`` holds the Textual app; this module stays free of Textual
so :func:`kiosk_environment` can run before Textual reads its environment.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

__all__ = ["kiosk_environment"]


def kiosk_environment(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Remove every ``TEXTUAL*`` variable (devtools, debug, timed screenshots, ...).

    Call before Textual is imported: it reads them once, at import. Returns the names removed.
    """
    env = os.environ if environ is None else environ
    removed = [key for key in env if key.upper().startswith("TEXTUAL")]
    for key in removed:
        del env[key]
    return removed

"""Size limits shared by the export's modules (kept apart so light modules can import them)."""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_NOTE_CHARS", "MAX_SEALED_EXPORT_BYTES"]

#: A wrap-up note is a few lines; 100,000 characters is generous and still bounded.
MAX_NOTE_CHARS: Final = 100_000
#: Largest sealed export the outbox accepts: 256 KiB, far more than any real note in UTF-8.
MAX_SEALED_EXPORT_BYTES: Final = 256 * 1024

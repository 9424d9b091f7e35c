"""``python -m hardware.surface``: run the video-surface process."""

from __future__ import annotations

import sys

from hardware.surface.app import main

sys.exit(main())

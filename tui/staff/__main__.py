"""``python -m tui.staff``: the staff UI on stationd's socket."""

from __future__ import annotations

import sys

from tui.staff.main import main

sys.exit(main())

"""The pre-call check's results, one line each: pass, fail (and what to do), or not yet known.

The screen owns the results and hands them down (:attr:`CheckList.results`); the hints are
stationd's, shown literally. The order is fixed (camera first, network last) so a result that
arrives late does not move the others.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from station.i18n import _
from tui.safe_text import literal
from tui.staff.labels import check_label

__all__ = ["CheckList", "CheckResults"]

#: name -> (passed, what to do); passed is None while not checked yet.
CheckResults = Mapping[str, tuple[bool | None, str]]
_ORDER = ("camera", "microphone", "loudspeaker", "button", "hub", "turn", "network")


class CheckList(Static):
    """One line per check (see the module docs)."""

    DEFAULT_CSS = """
    CheckList {
        height: auto;
    }
    """

    results: reactive[CheckResults] = reactive(dict, always_update=True)
    """Every check's result so far."""

    #: What a check found, shown after its name instead of "OK" (the TURN path: "TLS 443").
    values: Mapping[str, str] = {}
    #: Beneath a check: each way it was tried and whether it worked (the TURN paths).
    details: Mapping[str, tuple[tuple[str, bool], ...]] = {}

    def watch_results(self, results: CheckResults) -> None:
        """Redraw every line."""
        text = Text()
        names = sorted(results, key=lambda n: _ORDER.index(n) if n in _ORDER else 99)
        for name in names:
            passed, hint = results[name]
            if passed is None:
                text.append("…  ", style="dim")
                text.append(check_label(name) + "\n")
                continue
            text.append("✔  " if passed else "✘  ", style="bold green" if passed else "bold red")
            text.append(check_label(name), style="" if passed else "bold")
            value = self.values.get(name, "")
            if value:
                text.append_text(literal(": " + value, 40))
            else:
                text.append((": " + _("OK")) if passed else "")
            text.append("\n")
            tried = self.details.get(name, ())
            if len(tried) > 1:
                text.append("   ")
                for label, worked in tried:
                    text.append_text(literal(label, 20, style="dim"))
                    text.append(" ✔  " if worked else " ✘  ", style="green" if worked else "red")
                text.append("\n")
            if not passed and hint:
                text.append_text(literal(hint, 300, style="red", keep_newlines=True))
                text.append("\n")
        self.update(text)

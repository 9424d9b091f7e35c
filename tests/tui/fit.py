"""Does a screen fit the station's terminal? (issue 17, item 4) — no scroll bar, every control
whole on screen.

A picture alone does not fail when a form grows a scroll bar; these checks do. A screen fits
when no widget on it shows a vertical scroll bar (lists that hold more rows than the test data
are the one kind of scrolling a station may need, and the test data fits) and every control a
person uses (buttons, fields, choices, tables, text areas) is drawn whole: its region on the
screen is as large as the widget itself, so nothing is clipped or scrolled out of sight.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, DataTable, Input, RadioButton, Select, TextArea

__all__ = ["CONTROLS", "assert_fits", "misfits"]

#: What a person touches; each must be drawn whole.
CONTROLS: tuple[type[Widget], ...] = (
    Button,
    Input,
    Select,
    TextArea,
    DataTable,
    RadioButton,
    Checkbox,
)


def _shown(widget: Widget) -> bool:
    node: Widget | None = widget
    while isinstance(node, Widget):
        if not node.display or not node.visible:
            return False
        parent = node.parent
        node = parent if isinstance(parent, Widget) else None
    return True


def misfits(screen: Screen[object]) -> list[str]:
    """What does not fit: scroll bars shown, controls clipped or out of sight."""
    problems = []
    for widget in screen.query("*"):
        if not _shown(widget):
            continue
        name = f"{type(widget).__name__}#{widget.id or '-'}"
        inside, needed = widget.scrollable_content_region.size, widget.virtual_size
        if widget.show_vertical_scrollbar:
            problems.append(
                f"{name} shows a vertical scroll bar ({needed.height} rows in {inside})"
            )
        if widget.show_horizontal_scrollbar:
            problems.append(
                f"{name} shows a horizontal scroll bar ({needed.width} columns in {inside})"
            )
        if isinstance(widget, CONTROLS):
            region, size = widget.region, widget.outer_size
            if region.width < size.width or region.height < size.height:
                problems.append(f"{name} is clipped: {region.size} of {size} on screen")
    return problems


def assert_fits(screen: Screen[object]) -> None:
    """Raise with the list of :func:`misfits` unless the screen fits."""
    problems = misfits(screen)
    assert not problems, f"{type(screen).__name__} does not fit {screen.size}: {problems}"

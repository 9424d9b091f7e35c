"""``kontaktstation guide``: the station's one-page quick guide for staff, printed from the same
texts as the help screens (:mod:`tui.staff.help`), so the paper beside the station and F1 on
its screen never disagree.

Plain text by default (for a terminal or an email); ``--html`` gives a page that prints on one
A4 sheet (proven by printing it with Chromium in ``tests/integration/test_quick_guide_print.py``).
No station data goes in: the guide is the same for every station.
"""

from __future__ import annotations

import argparse
import html
import sys
from collections.abc import Sequence
from pathlib import Path

from station.i18n import LANGUAGES, _, current_language, set_language
from tui.staff.help import GUIDE_TOPICS, guide_title, topic

__all__ = ["guide_html", "guide_text", "main"]


def guide_text() -> str:
    """The quick guide as plain text, in the station's language."""
    lines = [guide_title(), ""]
    for key in GUIDE_TOPICS:
        entry = topic(key)
        lines += [entry.title, *(f"  {n}. {step}" for n, step in enumerate(entry.steps, 1)), ""]
    lines.append(_("On the station's screen, F1 shows the help for the screen you are on."))
    return "\n".join(lines) + "\n"


_CSS = """
@page { size: A4; margin: 12mm; }
body { font-family: "DejaVu Sans", sans-serif; font-size: 9.5pt; line-height: 1.3; margin: 0; }
h1 { font-size: 15pt; margin: 0 0 4mm; }
main { columns: 2; column-gap: 8mm; }
section { break-inside: avoid; margin-bottom: 3mm; }
h2 { font-size: 11pt; margin: 0 0 1mm; }
ol { margin: 0; padding-left: 5mm; }
li { margin-bottom: 0.8mm; }
footer { margin-top: 3mm; font-style: italic; }
"""


def guide_html() -> str:
    """The quick guide as one printable HTML page, in the station's language."""
    e = html.escape
    sections = []
    for key in GUIDE_TOPICS:
        entry = topic(key)
        items = "".join(f"<li>{e(step)}</li>" for step in entry.steps)
        sections.append(
            f'<section id="{e(key)}"><h2>{e(entry.title)}</h2><ol>{items}</ol></section>'
        )
    footer = e(_("On the station's screen, F1 shows the help for the screen you are on."))
    return (
        f'<!doctype html>\n<html lang="{e(current_language())}"><head><meta charset="utf-8">'
        f"<title>{e(guide_title())}</title><style>{_CSS}</style></head>"
        f"<body><h1>{e(guide_title())}</h1><main>{''.join(sections)}</main>"
        f"<footer>{footer}</footer></body></html>\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Print (or write) the quick guide; the exit status."""
    parser = argparse.ArgumentParser(
        prog="kontaktstation guide",
        description="the station's one-page quick guide for staff (the help screens' text)",
    )
    parser.add_argument("--html", action="store_true", help="a printable HTML page (one A4 sheet)")
    parser.add_argument("--lang", choices=LANGUAGES, help="language (default: the station's)")
    parser.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")
    args = parser.parse_args(argv)
    if args.lang:
        set_language(args.lang)
    text = guide_html() if args.html else guide_text()
    if args.output is None:
        sys.stdout.write(text)
    else:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            print(
                f"kontaktstation guide: cannot write {args.output}: {exc.strerror}", file=sys.stderr
            )
            return 1
    return 0

"""The quick guide prints on one A4 sheet (issue 17, item 5): ``kontaktstation guide --html``
printed by Chromium (the Debian package) to PDF, in both languages, and the sheet holds every
step of every help screen."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from station.i18n import set_language
from tests.integration.chromium import chromium
from tui.staff.help import GUIDE_TOPICS, topic

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("language", ["da", "en"])
async def test_the_quick_guide_prints_on_one_a4_sheet(tmp_path: Path, language: str) -> None:
    page_file = tmp_path / "guide.html"
    subprocess.run(
        [str(Path(sys.prefix) / "bin" / "kontaktstation"), "guide", "--html", "--lang", language,
         "-o", str(page_file)],
        check=True, timeout=60,
    )  # fmt: skip
    async with chromium(tmp_path / "profile") as context:
        page = await context.new_page()
        await page.goto(page_file.as_uri())
        pdf = await page.pdf(prefer_css_page_size=True, print_background=False)
        shown = await page.inner_text("body")
    sheets = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert sheets == 1, f"the quick guide takes {sheets} A4 sheets"
    # A4 (595 x 842 points), as the page's CSS asks.
    assert re.search(rb"/MediaBox\s*\[\s*0 0 59[45](?:\.\d+)? 84[12](?:\.\d+)?\s*\]", pdf), pdf[
        :2000
    ]
    set_language(language)
    try:
        for key in GUIDE_TOPICS:
            for step in topic(key).steps:
                assert " ".join(step.split()) in " ".join(shown.split())
    finally:
        set_language("da")

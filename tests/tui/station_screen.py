"""The station's real screen in terminal cells (issue 17, item 4), derived from the kiosk's files.

The kiosk is foot under labwc (``systemd/kiosk/``). foot's cell is the font's: with foot's
default ``dpi-aware=no`` a font of ``size=P`` points is ``P * 96 / 72`` pixels at scale 1, and
foot asks fcft/FreeType for it. DejaVu Sans Mono's ``head.flags`` has bit 3 set ("force ppem to
an integer"), so FreeType rounds 21.33 px to ppem 21 and scales the font's metrics by
21/2048 with its grid-fitting rules (``ft_recompute_scaled_metrics``): ascender rounded up,
descender down, height and advances to the nearest pixel. foot's cell is the space glyph's
advance wide and ``max(height, ascent + descent)`` high, so ``size=16`` is 13 x 25 pixels.
foot's ``pad`` is taken off each side before the grid is counted (whole cells only).

Full screen that is 97 x 28 cells at 1280x720 and 146 x 42 at 1920x1080: the sizes the staff
screens are tested at (:data:`STATION_SIZES`), and what the UI's window always has (labwc's
``rc.xml``). During a call the video surface's window lies over the top 60 % (the ``video``
region) and the in-call screens keep their content in the rows below it
(:func:`tui.video.video_rows`): 97 x 10 and 146 x 15 cells (:data:`BELOW_VIDEO_SIZES`), what
the locked UI's private-call controls get while the GP is on screen.

Not measured in a running foot (no compositor on the development machine): derived, and
:func:`derive` recomputes it from the files so a change of font, size, padding or region
changes the figures in the test (``tests/tui/test_station_screen.py``).
"""

from __future__ import annotations

import configparser
import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from tui.video import VIDEO_TOP_ENV, video_rows

REPO = Path(__file__).resolve().parents[2]
FOOT_INI = REPO / "systemd" / "kiosk" / "foot.ini"
LABWC_RC = REPO / "systemd" / "kiosk" / "labwc" / "rc.xml"
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/TTF"))

#: (columns, rows) of the kiosk's terminal when it has the whole screen, by screen.
STATION_SIZES: dict[str, tuple[int, int]] = {"1280x720": (97, 28), "1920x1080": (146, 42)}
#: (columns, rows) the in-call screens keep below the video's window, by screen.
BELOW_VIDEO_SIZES: dict[str, tuple[int, int]] = {"1280x720": (97, 10), "1920x1080": (146, 15)}


@dataclass(frozen=True)
class Cell:
    """One terminal cell in pixels, and how it was derived."""

    width: int
    height: int
    ppem: float


def _tables(data: bytes) -> dict[str, int]:
    count = struct.unpack(">H", data[4:6])[0]
    out = {}
    for i in range(count):
        tag, _checksum, offset, _length = struct.unpack(">4sIII", data[12 + 16 * i : 28 + 16 * i])
        out[tag.decode("latin-1")] = offset
    return out


def _advance(data: bytes, tables: dict[str, int], glyph: int) -> int:
    hhea = tables["hhea"]
    long_metrics = struct.unpack(">H", data[hhea + 34 : hhea + 36])[0]
    index = min(glyph, long_metrics - 1)
    return int(
        struct.unpack(">H", data[tables["hmtx"] + 4 * index : tables["hmtx"] + 4 * index + 2])[0]
    )


def _space_glyph(data: bytes, tables: dict[str, int]) -> int:
    """The glyph of U+0020 from the format 4 cmap subtable."""
    cmap = tables["cmap"]
    for i in range(struct.unpack(">H", data[cmap + 2 : cmap + 4])[0]):
        platform, encoding, offset = struct.unpack(
            ">HHI", data[cmap + 4 + 8 * i : cmap + 12 + 8 * i]
        )
        sub = cmap + offset
        if (platform, encoding) in ((3, 1), (0, 3)) and struct.unpack(">H", data[sub : sub + 2])[
            0
        ] == 4:
            segs = struct.unpack(">H", data[sub + 6 : sub + 8])[0] // 2
            ends = struct.unpack(f">{segs}H", data[sub + 14 : sub + 14 + 2 * segs])
            starts_at = sub + 16 + 2 * segs
            starts = struct.unpack(f">{segs}H", data[starts_at : starts_at + 2 * segs])
            deltas = struct.unpack(f">{segs}h", data[starts_at + 2 * segs : starts_at + 4 * segs])
            ranges_at = starts_at + 4 * segs
            offsets = struct.unpack(f">{segs}H", data[ranges_at : ranges_at + 2 * segs])
            for k in range(segs):
                if starts[k] <= 0x20 <= ends[k]:
                    if offsets[k] == 0:
                        return (0x20 + deltas[k]) & 0xFFFF
                    at = ranges_at + 2 * k + offsets[k] + 2 * (0x20 - starts[k])
                    glyph = struct.unpack(">H", data[at : at + 2])[0]
                    return (glyph + deltas[k]) & 0xFFFF if glyph else 0
    raise ValueError("no format 4 cmap with U+0020")


def cell_for(font: Path, points: float, dpi: float = 96.0) -> Cell:
    """foot's cell for ``font`` at ``points`` (FreeType's grid-fitted metrics, see the docs)."""
    data = font.read_bytes()
    tables = _tables(data)
    head = tables["head"]
    flags, units = struct.unpack(">HH", data[head + 16 : head + 20])
    hhea = tables["hhea"]
    ascender, descender, gap = struct.unpack(">hhh", data[hhea + 4 : hhea + 10])
    ppem = points * dpi / 72.0
    if flags & 8:  # integer ppem forced
        ppem = float(math.floor(ppem + 0.5))
    scale = ppem / units
    ascent = math.ceil(ascender * scale)
    descent = -math.floor(descender * scale)
    height = math.floor((ascender - descender + gap) * scale + 0.5)
    width = math.floor(_advance(data, tables, _space_glyph(data, tables)) * scale + 0.5)
    return Cell(width=width, height=max(height, ascent + descent), ppem=ppem)


def foot_font() -> tuple[Path, float, tuple[int, int]]:
    """The font file, its size in points and foot's padding, from the kiosk's foot.ini."""
    ini = configparser.ConfigParser(interpolation=None, strict=False)
    ini.read_string(FOOT_INI.read_text("utf-8"))
    spec = ini["main"]["font"]
    family, _sep, options = spec.partition(":")
    size = float(re.search(r"size=([0-9.]+)", options).group(1))  # type: ignore[union-attr]
    pad_x, _x, pad_y = ini["main"].get("pad", "0x0").partition("x")
    file_name = family.strip().replace(" ", "") + ".ttf"
    for directory in FONT_DIRS:
        if (directory / file_name).exists():
            return directory / file_name, size, (int(pad_x), int(pad_y))
    raise FileNotFoundError(f"{file_name} (fonts-dejavu-core) is not installed")


def video_region_percent() -> float:
    """The height of labwc's ``video`` region (from the top of the screen), in percent."""
    root = ElementTree.parse(LABWC_RC).getroot()
    for region in root.iter("region"):
        if region.get("name") == "video":
            assert region.get("y", "0%") == "0%", "the video region starts at the top"
            return float(region.get("height", "100%").rstrip("%"))
    raise ValueError("rc.xml has no video region")


def derive(screen: str, *, below_video: bool = False) -> tuple[int, int]:
    """(columns, rows) of the kiosk's terminal on ``screen`` ("WxH"), whole or the rows the
    in-call screens keep below the video's window."""
    width, height = (int(n) for n in screen.split("x"))
    font, points, (pad_x, pad_y) = foot_font()
    cell = cell_for(font, points)
    columns, rows = (width - 2 * pad_x) // cell.width, (height - 2 * pad_y) // cell.height
    if below_video:
        percent = video_region_percent()
        covered = video_rows(rows, {VIDEO_TOP_ENV: f"{percent:g}"})
        # The first row kept lies wholly below the video window's bottom edge (in pixels).
        assert pad_y + covered * cell.height >= height * percent / 100, (screen, covered)
        rows -= covered
    return columns, rows

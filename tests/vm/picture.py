"""Run *inside* the appliance test's guest, as stationd's user, with the station's venv Python:
a call's picture in the video surface's shared memory, stored exactly as stationd's sink stores
it, so the surface opens its window as it does when a call's first frame arrives (``show``), or
closes it as at a call's end (``clear``).

    runuser -u kontaktstation -- /opt/kontaktstation/venv/bin/python /mnt/ks/tools/picture.py show
    runuser -u kontaktstation -- /opt/kontaktstation/venv/bin/python /mnt/ks/tools/picture.py clear

The writer maps stationd's own file if stationd made one (same size and layout: it reuses it,
the inode stays), or makes it as stationd does at its first call; the running surface reads
the picture with no restart. The picture is one solid colour
(:data:`COLOUR`) the test finds in QEMU's screenshot.
"""

from __future__ import annotations

import sys

import av
import numpy as np

from hardware.surface.transport import FrameSlotWriter, frame_file, surface_dir

#: The picture's colour (RGB); nothing on the lock screen has it.
COLOUR = (200, 30, 160)


def main(argv: list[str]) -> int:
    """``show`` or ``clear``; prints the frame number stored."""
    if argv[:1] not in (["show"], ["clear"]):
        print(__doc__, file=sys.stderr)
        return 2
    writer = FrameSlotWriter(frame_file(surface_dir(), "remote"))
    try:
        if argv[0] == "show":
            rgb = np.empty((480, 640, 3), dtype=np.uint8)
            rgb[:] = COLOUR
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            number = writer.write(frame)
        else:
            number = writer.write(None)
    finally:
        writer.close()
    print(number)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

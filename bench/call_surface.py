"""The video surface's reading side, for ``bench/call.py``: when the GP's picture arrived.

``python bench/call_surface.py SURFACE_DIR OUT.jsonl`` does what the real surface process
(``kontaktstation surface``) does up to drawing: it binds the surface's wake-up socket in
``SURFACE_DIR``, and each time stationd's frame sink (``SharedMemoryFrameSink``) announces a
new ``remote`` frame it takes the newest one from shared memory with the surface's own reader
(``FrameSlotReader``). Instead of drawing it, it writes one JSON line: the wall-clock time
(``time.time()``) the frame was taken, its number and size, and the test-pattern capture stamp
in it if there is one (``hardware.camera.stamp``; the GP's bench camera carries one). A
cleared role (the call ended) is a line with ``"cleared": true``.

So "arrived" here is the moment the real surface would start drawing the frame (the drawing
itself takes ~4 ms more, ``bench/video_surface.py``). It runs in its own process, as the surface
does, so its work neither delays stationd nor the bench. Stops on SIGTERM.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() != REPO / "bench")]

from hardware.camera.stamp import decode_stamp  # noqa: E402
from hardware.surface.transport import FrameSlotReader, WakeListener, frame_file  # noqa: E402


def main() -> int:
    directory, out_path = Path(sys.argv[1]), Path(sys.argv[2])
    directory.mkdir(mode=0o2770, parents=True, exist_ok=True)
    listener = WakeListener(directory / "wake.sock")
    reader = FrameSlotReader(frame_file(directory, "remote"))
    running = True

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    with out_path.open("a", buffering=1) as out:
        out.write(json.dumps({"ready": time.time()}) + "\n")
        while running:
            words = listener.wait(0.5)
            if "remote" not in words:
                continue
            received = reader.read_new(recheck_file=True)
            t = time.time()
            if received is None:
                continue
            frame = received.frame
            if frame is None:
                out.write(json.dumps({"t": t, "n": received.number, "cleared": True}) + "\n")
                continue
            stamp = decode_stamp(frame)
            line = {"t": t, "n": received.number, "w": frame.width, "h": frame.height}
            if stamp is not None:
                line["capture_us"] = stamp.capture_us
                line["seq"] = stamp.seq
            out.write(json.dumps(line) + "\n")
    listener.close()
    reader.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

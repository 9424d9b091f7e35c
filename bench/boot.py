"""Service start to the lock screen's first frame, as the kiosk starts them.

systemd starts stationd and the kiosk terminal in parallel; the locked UI waits for
stationd's socket and then draws the lock screen. This starts both at the same instant
(stationd with fake hardware, the locked UI in a private tmux server standing in for the
kiosk terminal) and polls the terminal until the lock screen is drawn (the locked UI draws
it at once, before stationd answers: a station must never show anything else) and until
stationd's socket is there. Prints one JSON line
per run and a summary line (median, max). The machine is shared: compare within one run.

    .venv/bin/python bench/boot.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOCKED_MARK = "Stationen er låst"


def _one(run: int) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="ks-boot-"))
    sock = root / "stationd.sock"
    data = root / "data"
    data.mkdir(mode=0o700)
    env = {
        **os.environ,
        "KONTAKTSTATION_HARDWARE": "fake",
        "GPIOZERO_PIN_FACTORY": "mock",
        "KONTAKTSTATION_LANG": "da",
    }
    tmux = ["tmux", "-S", str(root / "tmux.sock"), "-f", "/dev/null"]
    ui = f"{sys.executable} -m tui.locked --socket {sock} --station-name Bench"
    start = time.perf_counter()
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "station.daemon.app",
            "--data-dir",
            str(data),
            "--socket",
            str(sock),
            "--hardware",
            "fake",
            "--log-level",
            "WARNING",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    subprocess.run([*tmux, "new-session", "-d", "-x", "100", "-y", "30", ui], env=env, check=True)
    socket_at = drawn_at = None
    try:
        deadline = start + 60
        while time.perf_counter() < deadline:
            now = time.perf_counter()
            if socket_at is None and sock.exists():
                socket_at = now
            pane = subprocess.run(
                [*tmux, "capture-pane", "-p"], capture_output=True, text=True, check=False
            ).stdout
            if drawn_at is None and LOCKED_MARK in pane:
                drawn_at = now
            if drawn_at is not None and socket_at is not None:
                break
            time.sleep(0.005)
        if drawn_at is None:
            raise SystemExit("the lock screen never appeared")
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, capture_output=True)
        daemon.terminate()
        daemon.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)
    figures = {
        "run": run,
        "stationd_socket_ms": round(((socket_at or drawn_at) - start) * 1000, 1),
        "lock_screen_drawn_ms": round((drawn_at - start) * 1000, 1),
    }
    print(json.dumps({"bench": "boot", **figures}), flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("needs tmux (scripts/ensure-system-deps installs it)")
    runs = [_one(i) for i in range(args.runs)]
    drawn = [r["lock_screen_drawn_ms"] for r in runs]
    ready = [r["stationd_socket_ms"] for r in runs]
    summary = {
        "bench": "boot-summary",
        "runs": args.runs,
        "service_start_to_lock_screen_median_ms": statistics.median(drawn),
        "service_start_to_lock_screen_max_ms": max(drawn),
        "service_start_to_stationd_socket_median_ms": statistics.median(ready),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

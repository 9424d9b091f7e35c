"""Run *inside* the appliance test's guest with its system Python (stdlib only): stationd's
local API and the simulated privacy button, timed where they happen.

    python3 /mnt/ks/tools/probe.py get /v1/state
    python3 /mnt/ks/tools/probe.py post /v1/unlock '{"staff_number": "...", "pin": "..."}'
    python3 /mnt/ks/tools/probe.py press-button

``press-button`` pulls GPIO17 of the gpio-sim chip down (the button pressed) and polls
``/v1/state`` until stationd says locked; it prints one JSON line with the milliseconds from
the edge to the lock, then releases the button. Timing in the guest keeps the host's
round-trips through the guest agent out of the figure.
"""

from __future__ import annotations

import glob
import http.client
import json
import socket
import sys
import time

SOCKET = "/run/kontaktstation/stationd.sock"
BUTTON_LINE = 17


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 55.0) -> None:
        super().__init__("stationd", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def request(method: str, path: str, body: str | None = None) -> tuple[int, object]:
    """One request to stationd; the status and the decoded JSON body."""
    connection = _UnixConnection(SOCKET)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None
    finally:
        connection.close()


def pull_file(line: int) -> str:
    """The sysfs file that sets the simulated line's pull (its input level)."""
    matches = glob.glob(f"/sys/devices/platform/gpio-sim.*/gpiochip*/sim_gpio{line}/pull")
    if not matches:
        raise SystemExit(f"no gpio-sim line {line}")
    return matches[0]


def press_button(within: float = 10.0) -> dict[str, object]:
    """Press (pull down), wait for locked, release; the timing."""
    status, state = request("GET", "/v1/state")
    assert status == 200 and isinstance(state, dict)
    before = state["state"]
    path = pull_file(BUTTON_LINE)
    started = time.monotonic()
    with open(path, "w") as pull:
        pull.write("pull-down")
    locked_after = None
    polls = 0
    try:
        while time.monotonic() - started < within:
            polls += 1
            _, now = request("GET", "/v1/state")
            if isinstance(now, dict) and now.get("locked"):
                locked_after = time.monotonic() - started
                break
            time.sleep(0.005)
    finally:
        time.sleep(0.2)
        with open(path, "w") as pull:
            pull.write("pull-up")
    return {
        "before": before,
        "locked_ms": None if locked_after is None else round(locked_after * 1000, 1),
        "polls": polls,
    }


def main(argv: list[str]) -> int:
    """The command line (see the module docs)."""
    if argv[:1] == ["press-button"]:
        print(json.dumps(press_button()))
        return 0
    if len(argv) >= 2 and argv[0] in ("get", "post"):
        status, body = request(argv[0].upper(), argv[1], argv[2] if len(argv) > 2 else None)
        print(json.dumps({"status": status, "body": body}))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

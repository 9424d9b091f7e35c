"""The GP call, measured: a fair set-up figure, glass-to-glass latency both ways, a Pi-class run.

Everything runs on this machine, inside a loopback-only network namespace (the script re-runs
itself under ``unshare --net`` when it is not in one): the hub in its own process
(``kontaktstation hub``), stationd as a subprocess (``bench/call_stationd.py``, which is
``python -m station.daemon.app`` plus bench-only switches), Debian's Chromium driven by
Playwright, and ``bench/call_surface.py``, which plays the video surface's reading side.

**One stopwatch.** Every time is a wall-clock time of this machine: stationd and the bench take
``time.time()`` (CLOCK_REALTIME); a page takes ``performance.timeOrigin + performance.now()``,
which Chromium derives from the same clock, and the bench measures each page's offset to
``time.time()`` (the smallest-round-trip of 7 evaluations; the offset and its ± half round
trip are printed) and moves the page's marks onto ``time.time()``. Whatever can be measured in
a page is (the GP's Admit, the GP's first frame, the Chromium station's first frame).

**Fair set-up** (``call_setup_*`` lines). Two pairs through the same hub, the same GP page, the
same ICE configuration (``iceServers: []``, host candidates on loopback):

* **station ↔ Chromium**: the real stationd (test-pattern camera, fake audio, the call
  engine) and the real GP page in headless Chromium (fake devices at 30 fps);
* **Chromium ↔ Chromium**: a second Chromium page acting as the station (plain WebRTC, the
  hub's station API, a complete offer).

Both stations are prepared the way their product prepares: the Chromium station opens its
camera and microphone, makes its peer connection with the tracks and gathers ahead
(``iceCandidatePoolSize: 1``) before Start, as the GP page does in its waiting room; stationd
gets exactly what the product does: staff book, run the pre-call check (``begin-check``), and
press Start (``POST /v1/call/start``); everything stationd prepares happens in the product's own
code. The GP page is open from before Start (as a GP opens the link ahead of the time), shows the
waiting room when the offer arrives, prepares there (camera, a gathering peer connection) and
clicks "Lad komme ind" ``--read-seconds`` after the waiting room appeared (the page clicks
itself, so no bench round trip sits in the way).

The first frame is taken at the same point at every end: **the decoded frame handed to the
display path**. In Chromium that is ``requestVideoFrameCallback``'s ``presentationTime`` (the
frame submitted to the compositor), for the GP page and the Chromium station alike; in
stationd it is ``first_remote_video_at``: the moment its first decoded GP frame is handed to
the frame sink (``MediaClock.video()`` runs right before ``FrameSink.show``), whose surface
process then draws it as Chromium's compositor does. (The bench's surface reader also records
when that frame reached the surface's shared memory: printed beside it, ~1 ms later.)

Headline (``call_setup_fair``): the GP's Admit → the later of the two first frames, median of
the station pair ÷ median of the Chromium pair, over ``--repeats`` (≥ 20) interleaved
repeats (the two pairs alternate which goes first). Its 95 % interval is a paired percentile
bootstrap (10,000 resamples of the repeat index, seed 1); each median's interval is the
distribution-free binomial order-statistic interval. Target ≤ 0.70. Also printed: each
direction apart (station → GP: the GP page's first frame; GP → station), start → both frames
on the one stopwatch (it includes the GP's reading pause, printed too), and the GP page's and
stationd's steps after the Admit (``call_setup_steps``), to see where the time goes.

The old figures are gone: ``start_to_both_frames`` was the *sum* of two intervals measured
apart (and took the GP's first frame at the callback, stationd's at its sink), and
``admit_to_both_frames`` timed the Chromium station with its camera opened after Start.

**Glass-to-glass both ways** (``call_latency`` lines), on one station ↔ Chromium call that runs
``--duration`` seconds, the GP's camera replaced by a canvas drawing the station's own stamp
layout (``hardware/camera/stamp.py``) with the page's wall clock at drawing time:

* station → GP: the test pattern's capture stamp (stationd's ``time.time()`` when the picture
  is made) read in the GP page from every frame at ``presentationTime`` (the older figure, at
  ``expectedDisplayTime``, is printed beside it);
* GP → station: the canvas stamp read by ``bench/call_surface.py`` from the frames stationd's
  frame sink put into the surface's shared memory, at the moment it takes them (where the
  real surface starts drawing).

Median and p90 each way (target < 150 ms), frame rates both ways, stationd's CPU per second of
call (the whole process; the fake encoder's thread apart where there is one) and RSS (its range,
and for calls of two minutes or more the growth of its floor and ceiling per 10 minutes).

**Pi-class** (``--pi-ratios``, ``call_pi_class`` lines): stationd is put in a cgroup whose CPU
bandwidth is that fraction of one core of this machine (cgroup v1 ``cpu.cfs_quota_us`` over
a 10 ms ``cpu.cfs_period_us`` here: this machine mounts the cpu controller on v1, where that is
the same CFS bandwidth limit cgroup v2 calls ``cpu.max``); a short period keeps the throttling
gaps short (a slow CPU is slow all the time, a throttled one runs and stops). Then the same
long-call measurements for VP8 (the test-pattern camera, aiortc's software VP8) and H.264
(``Picamera2Camera`` on the shipped fake picamera2, whose libx264 stands in for the Pi 4's
VideoCore encoder). On a Pi 4 that encode (and the "sensor" picture) is done by the ISP and
the VideoCore, not an ARM core, so the fake's encoder thread (named ``ks-fake-vc``) is moved out
of the confined cgroup and its CPU is reported apart. ``--pi-ratios`` is a list: see
``bench/README.md`` for where the ratios come from.

Prints one JSON object per line. Run (as root, or where user namespaces are allowed):
``.venv/bin/python bench/call.py [--repeats 21] [--duration 60] [--pi-ratios 0.61,0.25]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import platform
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# The repository first, and never this folder: bench/provisioning.py would shadow the
# ``provisioning`` package.
sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() not in (HERE, REPO))]

import httpx  # noqa: E402

from bench.call_js import (  # noqa: E402
    CANVAS_CAMERA_JS,
    GP_INIT_JS,
    GP_STAMP_READER_JS,
    JS_STATION_PREPARE,
    JS_STATION_START,
)
from tests.integration.call_harness import terminate  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
INSIDE_FLAG = "KONTAKTSTATION_BENCH_IN_NETNS"
TARGET_RATIO = 0.70
TARGET_LATENCY_MS = 150
#: How often the bench looks for marks. They are timestamps taken where things happen (the
#: pages, stationd), so a slow look loses no accuracy and does not load what is measured.
POLL_S = 0.05
CGROUP_ROOT = Path("/sys/fs/cgroup/cpu")
CGROUP_PERIOD_US = 10_000


def emit(**fields: Any) -> None:
    """One JSON line."""
    print(json.dumps(fields, ensure_ascii=False), flush=True)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_measured(name: str, work: Coroutine[Any, Any, Any], **settings: Any) -> int:
    """Run ``work`` between two environment lines: ``<name>_environment`` (the machine, the
    load and the run's ``settings``) and ``<name>_environment_end`` (the load after it)."""
    emit(
        bench=f"{name}_environment",
        machine=platform.machine(),
        python=platform.python_version(),
        cpus=os.cpu_count(),
        load_average=load(),
        **settings,
    )
    asyncio.run(work)
    emit(bench=f"{name}_environment_end", load_average=load())
    return 0


# ----------------------------------------------------------------------------- statistics


def median_ci(values: Sequence[float]) -> tuple[float, float, float]:
    """Median and its 95 % binomial order-statistic interval (distribution-free).

    The interval is [x_(j), x_(n+1-j)] (1-based order statistics) for the largest j whose
    coverage P(j <= B <= n-j), B ~ Binomial(n, 1/2), is still at least 95 %.
    """
    xs = sorted(values)
    n = len(xs)
    pmf = [math.comb(n, i) / 2**n for i in range(n + 1)]
    j = 1
    while j + 1 <= n - j and sum(pmf[j + 1 : n - j]) >= 0.95:
        j += 1
    if sum(pmf[j : n + 1 - j]) < 0.95:  # too few samples for any interval inside the data
        return statistics.median(xs), xs[0], xs[-1]
    return statistics.median(xs), xs[j - 1], xs[n - j]


def ratio_ci(
    ours: Sequence[float], theirs: Sequence[float], resamples: int = 10_000
) -> tuple[float, float, float]:
    """median(ours) / median(theirs) and a paired percentile-bootstrap 95 % interval."""
    rng = random.Random(1)
    n = len(ours)
    ratios = []
    for _ in range(resamples):
        index = [rng.randrange(n) for _ in range(n)]
        ratios.append(
            statistics.median(ours[i] for i in index) / statistics.median(theirs[i] for i in index)
        )
    ratios.sort()
    point = statistics.median(ours) / statistics.median(theirs)
    return point, ratios[int(0.025 * resamples)], ratios[int(0.975 * resamples) - 1]


def percentile(values: Sequence[float], q: float) -> float:
    xs = sorted(values)
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


def r1(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


# ----------------------------------------------------------------------------- processes


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def threads(pid: int) -> dict[int, str]:
    """Thread id -> kernel thread name."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            out[int(task.name)] = (task / "comm").read_text().strip()
    return out


def thread_cpu(pid: int) -> dict[int, float]:
    out = {}
    for tid in threads(pid):
        with contextlib.suppress(OSError):
            out[tid] = cpu_seconds(pid, tid)
    return out


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _in_loopback_namespace() -> bool:
    return sorted(name for _, name in socket.if_nameindex()) == ["lo"]


def rerun_in_loopback_namespace() -> int | None:
    """``None`` inside a network namespace with loopback alone; otherwise run this script
    again in a new one (``unshare --net``, as a mapped root for a user) and return its exit
    status. Every bench that sends traffic starts with it: nothing leaves the machine."""
    if _in_loopback_namespace():
        return None
    if os.environ.get(INSIDE_FLAG):
        raise SystemExit("not in a loopback-only namespace after unshare")
    prefix = ["unshare", "--net"]
    if os.geteuid() != 0:
        prefix[1:1] = ["--user", "--map-root-user"]
    command = [*prefix, "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    command += [sys.executable, *sys.argv]
    return subprocess.run(command, env={**os.environ, INSIDE_FLAG: "1"}, check=False).returncode


async def wait_until(probe: Callable[[], Any], within: float, interval: float = POLL_S) -> Any:
    async with asyncio.timeout(within):
        while True:
            value = probe()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(interval)


class CpuLimit:
    """A cgroup (v1 cpu controller) whose CPU bandwidth is ``ratio`` of one core."""

    def __init__(self, ratio: float) -> None:
        self.ratio = ratio
        self.path = CGROUP_ROOT / f"ks-bench-{os.getpid()}-{int(ratio * 1000)}"
        self.path.mkdir()
        (self.path / "cpu.cfs_period_us").write_text(str(CGROUP_PERIOD_US))
        (self.path / "cpu.cfs_quota_us").write_text(str(int(ratio * CGROUP_PERIOD_US)))

    def add_process(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    @staticmethod
    def release_thread(tid: int) -> None:
        """Move one thread back to the root cgroup (v1 places threads one by one)."""
        (CGROUP_ROOT / "tasks").write_text(str(tid))

    def throttled(self) -> dict[str, int]:
        stats = dict(line.split() for line in (self.path / "cpu.stat").read_text().splitlines())
        return {k: int(v) for k, v in stats.items() if k in ("nr_periods", "nr_throttled")}

    def remove(self) -> None:
        for line in (self.path / "tasks").read_text().split():
            with contextlib.suppress(OSError):
                (CGROUP_ROOT / "tasks").write_text(line)
        with contextlib.suppress(OSError):
            self.path.rmdir()

    @staticmethod
    def available() -> str | None:
        """Why the cgroup cannot be used here, or None."""
        if not (CGROUP_ROOT / "cpu.cfs_quota_us").exists():
            return f"no cgroup v1 cpu controller at {CGROUP_ROOT}"
        if not os.access(CGROUP_ROOT, os.W_OK):
            return f"{CGROUP_ROOT} is not writable"
        return None


# ----------------------------------------------------------------------------- stationd


class SurfaceReader:
    """``bench/call_surface.py`` on stationd's surface directory; its lines, parsed."""

    def __init__(self, directory: Path, out: Path) -> None:
        self.out = out
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "call_surface.py"), str(directory), str(out)], cwd=REPO
        )
        self._lines: list[dict[str, Any]] = []
        self._offset = 0

    async def ready(self) -> None:
        await wait_until(lambda: self.out.exists() and self.out.stat().st_size > 0, 30)

    def lines(self) -> list[dict[str, Any]]:
        with self.out.open() as f:
            f.seek(self._offset)
            for line in f:
                if not line.endswith("\n"):
                    break
                self._offset += len(line.encode())
                self._lines.append(json.loads(line))
        return self._lines

    def first_frame_after(self, t: float) -> dict[str, Any] | None:
        for line in self.lines():
            if "w" in line and line["t"] > t:
                return line
        return None

    def close(self) -> None:
        terminate(self.process)


class Station:
    """stationd as a subprocess, with a staff session and a fresh consultation per call."""

    def __init__(
        self,
        root: Path,
        hub_url: str,
        token: str,
        *,
        name: str = "station",
        env: dict[str, str] | None = None,
        args: Sequence[str] = (),
        trace: Path | None = None,
    ) -> None:
        from station.core.clock import SystemClock
        from station.storage.store import BlindStore
        from tests.integration.daemon_harness import CLINIC, enrol

        self.data_dir = root / name
        self.data_dir.mkdir(mode=0o700)
        enrol(self.data_dir)
        store = BlindStore.open(self.data_dir, clock=SystemClock())
        try:
            store.put_clinic(CLINIC)
        finally:
            store.close()
        self.clinic_id = CLINIC.id
        self.socket = root / f"{name}.sock"
        self.surface_dir = root / f"{name}-surface"
        self.surface = SurfaceReader(self.surface_dir, root / f"{name}-surface.jsonl")
        environment = {
            **os.environ,
            "GPIOZERO_PIN_FACTORY": "mock",
            "KONTAKTSTATION_HUB_URL": hub_url,
            "KONTAKTSTATION_HUB_STATION_TOKEN": token,
            "KONTAKTSTATION_CALL_LOOPBACK": "1",
            "KONTAKTSTATION_SURFACE_DIR": str(self.surface_dir),
            **(env or {}),
        }
        command = [sys.executable, str(HERE / "call_stationd.py"), *args]
        if trace is not None:
            command += ["--trace", str(trace)]
        command += ["--data-dir", str(self.data_dir), "--socket", str(self.socket)]
        command += ["--hardware", "fake", "--log-level", "WARNING"]
        self.log_path = root / f"{name}.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command, env=environment, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.http: httpx.AsyncClient | None = None
        self.auth: dict[str, str] = {}

    @property
    def pid(self) -> int:
        return self.process.pid

    async def start(self) -> None:
        from tests.integration.daemon_harness import STAFF_NUMBER, STAFF_PIN

        await self.surface.ready()

        def up() -> bool:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"stationd exited ({self.process.returncode}):\n{tail}")
            return self.socket.exists()

        await wait_until(up, 30, 0.02)
        self.http = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(self.socket)),
            base_url="http://stationd",
            timeout=30,
        )
        response = await self.http.post(
            "/v1/unlock", json={"staff_number": STAFF_NUMBER, "pin": STAFF_PIN}
        )
        response.raise_for_status()
        self.auth = {"Authorization": f"Bearer {response.json()['token']}"}

    async def book(self) -> tuple[str, str]:
        """Book a consultation, make its GP link, begin the pre-call check: (id, GP URL)."""
        from station.keys.crypto import FieldRef, seal_field

        assert self.http is not None
        now = datetime.now(UTC)
        response = await self.http.post(
            "/v1/consultations",
            headers=self.auth,
            json={
                "clinic_id": self.clinic_id,
                "starts_at": (now - timedelta(minutes=1)).isoformat(),
                "ends_at": (now + timedelta(minutes=60)).isoformat(),
                "consultation_type": "assisted_consultation",
            },
        )
        response.raise_for_status()
        cid = response.json()["id"]
        blob = seal_field(secrets.token_bytes(32), b"x", FieldRef("queue_entries", "e", "x"))
        entry = {"sealed": {"display_name": base64.b64encode(blob).decode()}}
        (
            await self.http.post(f"/v1/consultations/{cid}/entries", headers=self.auth, json=entry)
        ).raise_for_status()
        room = await self.http.post(
            "/v1/call/room", headers=self.auth, json={"consultation_id": cid}
        )
        room.raise_for_status()
        (
            await self.http.post(
                "/v1/session/begin-check", headers=self.auth, json={"appointment_id": cid}
            )
        ).raise_for_status()
        return cid, str(room.json()["gp_url"])

    async def start_call(self, cid: str) -> float:
        """Press Start; the wall time of the press."""
        assert self.http is not None
        started_at = time.time()
        response = await self.http.post(
            "/v1/call/start",
            headers=self.auth,
            json={"consultation_id": cid, "residents": [{"display_name": "Bench"}]},
        )
        response.raise_for_status()
        return started_at

    async def call(self) -> dict[str, Any]:
        assert self.http is not None
        return dict((await self.http.get("/v1/call")).json())

    async def end_call(self) -> None:
        assert self.http is not None
        (await self.http.post("/v1/call/end", headers=self.auth)).raise_for_status()
        await wait_until(lambda: self._state_is("wrap_up"), 10, 0.02)
        (
            await self.http.post("/v1/session/finish-wrap-up", headers=self.auth, json={})
        ).raise_for_status()

    async def _state_is(self, state: str) -> bool:
        assert self.http is not None
        return bool((await self.http.get("/v1/state")).json()["state"] == state)

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()
            self.http = None
        if self.process.returncode is None:
            terminate(self.process)
        self.log.close()
        self.surface.close()


class HubApi:
    """The bench's own calls to the hub's station API (rooms for the Chromium station)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.token = token
        self.http = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    async def room(self) -> dict[str, Any]:
        start = datetime.now(UTC)
        response = await self.http.post(
            "/api/station/rooms",
            json={
                "starts_at": (start - timedelta(minutes=1)).isoformat(),
                "ends_at": (start + timedelta(minutes=30)).isoformat(),
            },
        )
        response.raise_for_status()
        return dict(response.json())

    async def end(self, room_id: str) -> None:
        await self.http.post(f"/api/station/rooms/{room_id}/end")


@contextlib.asynccontextmanager
async def browser(profile: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    from tests.integration.chromium import CHROMIUM, CHROMIUM_ARGS

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield context
        finally:
            await context.close()


def start_hub(data_dir: Path, token: str) -> tuple[str, subprocess.Popen[bytes], Any]:
    """Start ``kontaktstation hub`` on a free loopback port: its URL, process and log file."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    data_dir.mkdir(mode=0o700)
    log = (data_dir / "hub.log").open("wb")
    command = [sys.executable, "-m", "kontaktstation.cli", "hub", "--port", str(port)]
    command += ["--data-dir", str(data_dir), "--public-url", url, "--log-level", "warning"]
    process = subprocess.Popen(
        command,
        # The bench's stationd is not enrolled at this hub: the legacy shared token, allowed
        # explicitly (hub/README.md); the rendezvous work per request is the same.
        env={
            **os.environ,
            "KONTAKTSTATION_HUB_STATION_TOKEN": token,
            "KONTAKTSTATION_HUB_ALLOW_SHARED_STATION_TOKEN": "1",
        },
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return url, process, log


@contextlib.asynccontextmanager
async def hub_process(data_dir: Path, token: str) -> AsyncIterator[str]:
    """``kontaktstation hub`` in its own process, as it runs in a municipality: its URL."""
    url, process, log = start_hub(data_dir, token)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=2) as client:

            async def up() -> bool:
                if process.poll() is not None:
                    tail = (data_dir / "hub.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"the hub exited ({process.returncode}):\n{tail}")
                try:
                    return (await client.get("/gp")).status_code < 500
                except httpx.TransportError:
                    return False

            await wait_until(up, 30, 0.05)
        yield url
    finally:
        terminate(process)
        log.close()


# ----------------------------------------------------------------------------- one stopwatch


async def page_offset(page: Any) -> tuple[float, float]:
    """(offset, ± bound) in seconds of the page's wall clock to ``time.time()``.

    The page's ``timeOrigin + now()`` is read between two ``time.time()``; of 7 tries the one
    with the shortest round trip counts, its half round trip bounds the error.
    """
    best: tuple[float, float] | None = None
    for _ in range(7):
        t0 = time.time()
        value = await page.evaluate("() => performance.timeOrigin + performance.now()")
        t1 = time.time()
        candidate = (value / 1000 - (t0 + t1) / 2, (t1 - t0) / 2)
        if best is None or candidate[1] < best[1]:
            best = candidate
    assert best is not None
    return best


def gp_init_script(admit_ms: float | None) -> str:
    return GP_INIT_JS.replace("__ADMIT_MS__", "null" if admit_ms is None else repr(admit_ms))


async def open_gp(context: Any, gp_url: str, admit_ms: float, camera: bool = False) -> Any:
    """The GP opens the link (before the station starts) and will admit by itself."""
    page = await context.new_page()
    if camera:
        await page.add_init_script(CANVAS_CAMERA_JS)
    await page.add_init_script(gp_init_script(admit_ms))
    await page.goto(gp_url)
    return page


GP_STATE_JS = """() => {
  const bench = window.__bench;
  const admit = performance.getEntriesByName("gp-admit")[0];
  const frame = performance.getEntriesByName("gp-first-remote-frame")[0];
  if (!bench || !bench.firstFrame || !admit) return null;
  return {marks: bench.marks, waitingShown: bench.waitingShown, firstFrame: bench.firstFrame,
          admit: performance.timeOrigin + admit.startTime,
          markedFrame: frame ? performance.timeOrigin + frame.startTime : null};
}"""


@dataclass
class Sample:
    """One set-up on the one stopwatch (seconds, ``time.time()``), and what it is made of."""

    start: float
    waiting_shown: float
    admit: float
    gp_frame: float
    station_frame: float
    #: Step name -> time, from the GP page and the station (see call_setup_steps).
    steps: dict[str, float] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)
    #: Other numbers, as they are (not times).
    info: dict[str, float] = field(default_factory=dict)

    def figures(self) -> dict[str, float]:
        both = max(self.gp_frame, self.station_frame)
        return {
            "admit_to_both_frames_ms": (both - self.admit) * 1000,
            "station_to_gp_first_frame_ms": (self.gp_frame - self.admit) * 1000,
            "gp_to_station_first_frame_ms": (self.station_frame - self.admit) * 1000,
            "start_to_waiting_room_ms": (self.waiting_shown - self.start) * 1000,
            "gp_pause_ms": (self.admit - self.waiting_shown) * 1000,
            "start_to_both_frames_ms": (both - self.start) * 1000,
            **{k: v * 1000 for k, v in self.extra.items()},
            **self.info,
        }


async def gp_marks(page: Any, offset: float) -> dict[str, Any]:
    handle = await page.wait_for_function(GP_STATE_JS, polling=POLL_S * 1000, timeout=30_000)
    state = await handle.json_value()

    def bench(t: float) -> float:
        return t / 1000 - offset

    steps: dict[str, float] = {}
    admit = bench(state["admit"])
    for name, times in state["marks"].items():
        after = [bench(t) for t in times if bench(t) >= admit - 0.001]
        if after:
            steps["gp." + name] = after[0]
    first = state["firstFrame"]
    return {
        "admit": admit,
        "waiting_shown": bench(state["waitingShown"]),
        "gp_frame": bench(first["presentation"]),
        "gp_frame_callback": bench(first["callback"]),
        "gp_frame_receive": bench(first["receive"]) if first["receive"] else None,
        "steps": steps,
    }


def read_trace(path: Path | None, since: float) -> dict[str, float]:
    if path is None or not path.exists():
        return {}
    steps: dict[str, float] = {}
    for line in path.read_text().splitlines():
        item = json.loads(line)
        if item["t"] >= since and "station." + item["step"] not in steps:
            steps["station." + item["step"]] = item["t"]
    return steps


async def station_pair(
    station: Station, context: Any, admit_ms: float, trace: Path | None
) -> Sample:
    cid, gp_url = await station.book()
    page = await open_gp(context, gp_url, admit_ms)
    offset, _ = await page_offset(page)
    started_at = await station.start_call(cid)
    gp = await gp_marks(page, offset)

    async def first() -> float | None:
        value: float | None = (await station.call())["media"]["first_remote_video_at"]
        return value

    station_frame = await wait_until(first, 20)
    surface = await wait_until(lambda: station.surface.first_frame_after(gp["admit"]), 5)
    await asyncio.sleep(0.3)  # let late steps reach the trace file
    steps = gp["steps"] | read_trace(trace, gp["admit"] - 0.001)
    await station.end_call()
    await page.close()
    return Sample(
        start=started_at,
        waiting_shown=gp["waiting_shown"],
        admit=gp["admit"],
        gp_frame=gp["gp_frame"],
        station_frame=station_frame,
        steps=steps,
        extra={
            "station_frame_at_surface_after_sink_ms": surface["t"] - station_frame,
            "gp_frame_callback_after_presentation_ms": gp["gp_frame_callback"] - gp["gp_frame"],
        },
        info={"gp_first_frame_width_at_station_px": surface["w"]},
    )


async def chromium_pair(hub: HubApi, hub_url: str, context: Any, admit_ms: float) -> Sample:
    room = await hub.room()
    station_page = await context.new_page()
    await station_page.goto(f"{hub_url}/bench-station")  # any same-origin page will do
    await station_page.evaluate(JS_STATION_PREPARE)
    gp_page = await open_gp(context, room["gp_url"], admit_ms)
    station_offset, _ = await page_offset(station_page)
    gp_offset, _ = await page_offset(gp_page)
    await asyncio.sleep(0.3)  # the prepared connection gathers (as the GP's in its waiting room)
    start_page = await station_page.evaluate(
        JS_STATION_START, {"roomId": room["room_id"], "token": hub.token}
    )
    gp = await gp_marks(gp_page, gp_offset)
    handle = await station_page.wait_for_function(
        "() => window.benchStation.firstFrame", polling=POLL_S * 1000, timeout=20_000
    )
    first = await handle.json_value()
    marks = await station_page.evaluate("() => window.benchStation.marks")
    await hub.end(room["room_id"])
    await gp_page.close()
    await station_page.close()
    steps = gp["steps"] | {
        "station." + k: v / 1000 - station_offset
        for k, v in marks.items()
        if v / 1000 - station_offset >= gp["admit"] - 0.001
    }
    return Sample(
        start=start_page / 1000 - station_offset,
        waiting_shown=gp["waiting_shown"],
        admit=gp["admit"],
        gp_frame=gp["gp_frame"],
        station_frame=first["presentation"] / 1000 - station_offset,
        steps=steps,
        extra={"gp_frame_callback_after_presentation_ms": gp["gp_frame_callback"] - gp["gp_frame"]},
    )


def summarise_pair(pair: str, samples: list[Sample]) -> dict[str, Any]:
    rows = [s.figures() for s in samples]
    out: dict[str, Any] = {"bench": "call_setup_pair", "pair": pair, "repeats": len(samples)}
    for key in rows[0]:
        values = [row[key] for row in rows]
        median, low, high = median_ci(values)
        out[key] = {"median": r1(median), "ci95": [r1(low), r1(high)]}
    return out


def summarise_steps(pair: str, samples: list[Sample]) -> dict[str, Any]:
    """Median time of each step after the Admit (ms), in order."""
    names = sorted({name for s in samples for name in s.steps})
    medians = {}
    for name in names:
        values = [(s.steps[name] - s.admit) * 1000 for s in samples if name in s.steps]
        if len(values) >= len(samples) // 2:
            medians[name] = r1(statistics.median(values))
    ordered = dict(sorted(medians.items(), key=lambda item: item[1] or 0.0))
    return {"bench": "call_setup_steps", "pair": pair, "ms_after_admit": ordered}


async def setup_phase(
    args: argparse.Namespace, station: Station, hub: HubApi, hub_url: str, context: Any
) -> None:
    admit_ms = args.read_seconds * 1000
    trace = station_trace(args)
    # Warm-up (first pages, codecs, imports), not counted.
    await chromium_pair(hub, hub_url, context, admit_ms)
    await station_pair(station, context, admit_ms, trace)
    ours: list[Sample] = []
    theirs: list[Sample] = []
    load_before = load()
    for i in range(args.repeats):
        if i % 2 == 0:
            ours.append(await station_pair(station, context, admit_ms, trace))
            theirs.append(await chromium_pair(hub, hub_url, context, admit_ms))
        else:
            theirs.append(await chromium_pair(hub, hub_url, context, admit_ms))
            ours.append(await station_pair(station, context, admit_ms, trace))
    emit(**summarise_pair("station_to_chromium", ours))
    emit(**summarise_pair("chromium_to_chromium", theirs))
    emit(**summarise_steps("station_to_chromium", ours))
    emit(**summarise_steps("chromium_to_chromium", theirs))
    key = "admit_to_both_frames_ms"
    a = [s.figures()[key] for s in ours]
    b = [s.figures()[key] for s in theirs]
    ratio, low, high = ratio_ci(a, b)
    extra = {}
    for name in (
        "station_to_gp_first_frame_ms",
        "gp_to_station_first_frame_ms",
        "start_to_both_frames_ms",
    ):
        point, lo, hi = ratio_ci(
            [s.figures()[name] for s in ours], [s.figures()[name] for s in theirs]
        )
        extra[name.removesuffix("_ms")] = {
            "ratio": round(point, 2),
            "ci95": [round(lo, 2), round(hi, 2)],
        }
    emit(
        bench="call_setup_fair",
        ratio=round(ratio, 3),
        ci95=[round(low, 3), round(high, 3)],
        repeats=args.repeats,
        met=ratio <= TARGET_RATIO,
    )
    emit(
        bench="call_setup_fair_detail",
        figure="GP Admit -> first decoded frame handed to the display path at both ends",
        target_at_most=TARGET_RATIO,
        met_by_whole_interval=high <= TARGET_RATIO,
        station_to_chromium_ms=r1(statistics.median(a)),
        chromium_to_chromium_ms=r1(statistics.median(b)),
        other_ratios=extra,
        load_average_before=load_before,
        load_average_after=load(),
    )


def station_trace(args: argparse.Namespace) -> Path | None:
    return Path(args.root) / "stationd-trace.jsonl" if args.trace else None


# ----------------------------------------------------------------------------- latency


async def long_call(
    station: Station,
    context: Any,
    duration: float,
    *,
    label: dict[str, Any],
    cpu_limit: CpuLimit | None = None,
) -> list[dict[str, Any]]:
    """One station <-> Chromium call with the GP's stamped canvas camera: its figures."""
    cid, gp_url = await station.book()
    page = await open_gp(context, gp_url, 1000.0, camera=True)
    offset, bound = await page_offset(page)
    await station.start_call(cid)
    await gp_marks(page, offset)
    await page.evaluate(GP_STAMP_READER_JS)
    pid = station.pid
    released: dict[int, str] = {}

    def release_encoder() -> None:
        if cpu_limit is None:
            return
        for tid, name in threads(pid).items():
            if name == "ks-fake-vc" and tid not in released:
                CpuLimit.release_thread(tid)
                released[tid] = name

    await asyncio.sleep(1.0)
    release_encoder()
    await asyncio.sleep(4.0)  # settle: bandwidth estimates, jitter buffers
    release_encoder()
    await page.evaluate("() => { window.benchStamps.samples = []; }")
    frames0 = await page.evaluate("() => window.benchStamps.frames")
    t0_wall = time.time()
    t0, cpu0, tcpu0, rss0 = time.monotonic(), cpu_seconds(pid), thread_cpu(pid), rss_kib(pid)
    throttled0 = cpu_limit.throttled() if cpu_limit else None
    rss_samples = [(0.0, rss0)]
    while time.monotonic() - t0 < duration:
        await asyncio.sleep(min(5.0, duration - (time.monotonic() - t0)))
        release_encoder()
        rss_samples.append((time.monotonic() - t0, rss_kib(pid)))
    t1, cpu1, tcpu1 = time.monotonic(), cpu_seconds(pid), thread_cpu(pid)
    t1_wall = time.time()
    throttled1 = cpu_limit.throttled() if cpu_limit else None
    frames1 = await page.evaluate("() => window.benchStamps.frames")
    gp = await page.evaluate(
        "() => ({samples: window.benchStamps.samples, width: window.benchStamps.width,"
        " height: window.benchStamps.height})"
    )
    call = await station.call()
    elapsed = t1 - t0
    # station -> GP: capture (stationd's clock) to presentation (page clock, moved by offset)
    to_gp = [(p / 1000 - offset) * 1000 - c for c, p, _e in gp["samples"]]
    to_gp_expected = [(e / 1000 - offset) * 1000 - c for c, _p, e in gp["samples"]]
    # GP -> station: capture (page clock) to arrival at the surface (time.time())
    arrivals = [x for x in station.surface.lines() if "w" in x and t0_wall <= x["t"] <= t1_wall]
    to_station = [
        (x["t"] - (x["capture_us"] / 1e6 - offset)) * 1000 for x in arrivals if "capture_us" in x
    ]
    sizes = sorted({f"{x['w']}x{x['h']}" for x in arrivals})
    common = {
        **label,
        "clock_offset_ms": round(offset * 1000, 2),
        "clock_bound_ms": round(bound * 1000, 2),
    }
    lines: list[dict[str, Any]] = []
    for direction, values, point in (
        ("station_camera_to_gp_screen", to_gp, "presentationTime"),
        ("gp_camera_to_station_surface", to_station, "surface reader"),
    ):
        lines.append(
            {
                "bench": "call_latency",
                **common,
                "direction": direction,
                "shown_at": point,
                "samples": len(values),
                "median_ms": r1(statistics.median(values)) if values else None,
                "p90_ms": r1(percentile(values, 0.9)) if values else None,
                "max_ms": r1(max(values)) if values else None,
                "target_below_ms": TARGET_LATENCY_MS,
                "met": bool(values) and percentile(values, 0.9) < TARGET_LATENCY_MS,
            }
        )
    if to_gp_expected:
        lines[0]["median_at_expected_display_ms"] = r1(statistics.median(to_gp_expected))
    lines.append(
        {
            "bench": "call_fps",
            **common,
            "station_to_gp_fps": round((frames1 - frames0) / (t1_wall - t0_wall), 1),
            "station_to_gp_size": f"{gp['width']}x{gp['height']}",
            "gp_to_station_fps_at_surface": round(len(arrivals) / (t1_wall - t0_wall), 1),
            "gp_to_station_sizes": sizes,
            "gp_to_station_stamped_share": round(len(to_station) / max(1, len(arrivals)), 3),
            "quality": call["quality"],
        }
    )
    # Python's threads all carry the process's name; only the fake's encoder is named.
    names = threads(pid)
    encoder = sum(
        seconds - tcpu0.get(tid, 0.0)
        for tid, seconds in tcpu1.items()
        if names.get(tid) == "ks-fake-vc"
    )
    cpu_line: dict[str, Any] = {
        "bench": "call_station_cpu",
        **common,
        "cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / elapsed, 1),
        "window_s": round(elapsed, 1),
        **rss_growth(rss_samples, elapsed),
    }
    if encoder:
        cpu_line["fake_encoder_thread_percent"] = round(100 * encoder / elapsed, 1)
        cpu_line["cpu_percent_without_fake_encoder"] = round(
            100 * (cpu1 - cpu0 - encoder) / elapsed, 1
        )
    if cpu_limit is not None and throttled0 and throttled1:
        periods = throttled1["nr_periods"] - throttled0["nr_periods"]
        cpu_line["throttled_share_of_periods"] = round(
            (throttled1["nr_throttled"] - throttled0["nr_throttled"]) / max(1, periods), 3
        )
        cpu_line["percent_of_limit"] = round(
            100 * (cpu1 - cpu0 - encoder) / elapsed / cpu_limit.ratio, 1
        )
    lines.append(cpu_line)
    await station.end_call()
    await page.close()
    return lines


def rss_growth(samples: list[tuple[float, int]], elapsed: float) -> dict[str, Any]:
    """RSS range, and its growth judged on floor and ceiling of the first and last minute.

    RSS swings by ~15 MiB as codec buffers and malloc arenas come and go, so growth is the
    change of the lowest and of the highest sample between the first and the last minute
    (the sample before the call warmed up left out), extrapolated to 10 minutes; only for
    calls of at least two minutes (shorter, the two minutes overlap).
    """
    values = [r for _, r in samples]
    out: dict[str, Any] = {
        "rss_mib": [round(min(values) / 1024, 1), round(max(values) / 1024, 1)],
        "rss_worst_growth_mib_per_10_min": None,
    }
    window = 60.0
    if elapsed >= 2 * window:
        early = [r for t, r in samples[1:] if t <= window]
        late = [r for t, r in samples[1:] if t >= elapsed - window]
        growth = max(min(late) - min(early), max(late) - max(early))
        out["rss_worst_growth_mib_per_10_min"] = round(growth * 600 / (elapsed - window) / 1024, 2)
    return out


async def latency_phase(args: argparse.Namespace, station: Station, context: Any) -> None:
    for line in await long_call(
        station, context, args.duration, label={"run": "this_machine", "codec": "VP8"}
    ):
        emit(**line)


async def pi_class_phase(
    args: argparse.Namespace, root: Path, hub_url: str, token: str, context: Any
) -> None:
    reason = CpuLimit.available()
    if reason is not None:
        emit(bench="call_pi_class", skipped=reason)
        return
    variants = {
        "VP8": ({}, ()),
        "H264": (
            {"KONTAKTSTATION_CAMERA": "picamera2", "KONTAKTSTATION_CAMERA_ENCODING": "h264"},
            ("--fake-picamera2", "--name-encoder-thread"),
        ),
    }
    for ratio in args.pi_ratios:
        for codec, (env, extra_args) in variants.items():
            if codec not in args.pi_codecs:
                continue
            name = f"pi-{codec.lower()}-{int(ratio * 1000)}"
            station = Station(root, hub_url, token, name=name, env=env, args=extra_args)
            limit = CpuLimit(ratio)
            try:
                await station.start()
                limit.add_process(station.pid)
                label = {"run": "pi_class", "codec": codec, "core_ratio": ratio}
                for line in await long_call(
                    station, context, args.pi_duration, label=label, cpu_limit=limit
                ):
                    line["bench"] = line["bench"].replace("call_", "call_pi_class_", 1)
                    emit(**line)
            finally:
                await station.close()
                limit.remove()


# ----------------------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> None:
    from tests.integration.hub_server import STATION_TOKEN

    root = Path(tempfile.mkdtemp(prefix="ks-bench-call-", dir="/tmp"))
    args.root = str(root)
    try:
        async with hub_process(root / "hub", STATION_TOKEN) as hub_url:
            hub = HubApi(hub_url, STATION_TOKEN)
            station = Station(root, hub_url, STATION_TOKEN, trace=station_trace(args))
            try:
                await station.start()
                async with browser(root / "profile") as context:
                    if args.repeats:
                        await setup_phase(args, station, hub, hub_url, context)
                    if args.duration:
                        await latency_phase(args, station, context)
                    await station.close()
                    if args.pi_ratios:
                        await pi_class_phase(args, root, hub_url, STATION_TOKEN, context)
            finally:
                await station.close()
                await hub.http.aclose()
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=21, help="set-ups per pair (0: none)")
    parser.add_argument(
        "--duration", type=float, default=60.0, help="seconds of the latency call (0: none)"
    )
    parser.add_argument(
        "--read-seconds",
        type=float,
        default=1.0,
        help="seconds the GP looks at the waiting room before Admit",
    )
    parser.add_argument(
        "--pi-ratios",
        type=lambda text: [float(x) for x in text.split(",") if x],
        default=[],
        help="Pi-class runs: CPU limits as fractions of one core here (e.g. 0.61,0.25)",
    )
    parser.add_argument("--pi-duration", type=float, default=60.0, help="seconds per Pi-class call")
    parser.add_argument(
        "--pi-codecs", type=lambda text: text.upper().split(","), default=["VP8", "H264"]
    )
    parser.add_argument("--trace", action="store_true", help="stationd records its set-up steps")
    parser.add_argument("--keep", action="store_true", help="keep the run's files (logs)")
    args = parser.parse_args()
    if (status := rerun_in_loopback_namespace()) is not None:
        return status
    emit(
        bench="call_environment",
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=platform.machine(),
        cpu=_cpu_model(),
        python=platform.python_version(),
        cpus=os.cpu_count(),
        load_average=load(),
        repeats=args.repeats,
        duration_s=args.duration,
        read_seconds=args.read_seconds,
        pi_ratios=args.pi_ratios,
        trace=args.trace,
    )
    asyncio.run(run(args))
    emit(bench="call_environment_end", load_average=load())
    return 0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())

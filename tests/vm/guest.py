"""A booted Debian 13 guest under QEMU (TCG), driven from the host.

:class:`Guest` starts ``qemu-system-x86_64`` on the image ``scripts/vm-image`` built (kernel,
initrd and a raw ext4 root, the root opened with ``snapshot=on`` so the cached image never
changes) with the station's hardware as real kernel drivers: ``virtio-gpu`` (the display the
kiosk compositor drives; QEMU's ``screendump`` is a screenshot of what it shows), a PS/2
keyboard and a ``virtio-tablet`` (keys and clicks go in through QMP ``send-key`` and
``input-send-event``, so they reach labwc through libinput like a real keyboard's), vivid,
snd-aloop and gpio-sim inside the guest (tests/vm/guest/), an ``i6300esb`` hardware watchdog
for systemd's ``RuntimeWatchdogSec``.

The host reaches the guest through two Unix sockets: QMP (the machine: screen, input, power)
and the QEMU guest agent (``guest-exec``: run a command in the guest, as root, and read its
output). Files go in through a read-only 9p share mounted at ``/mnt/ks``. The network is QEMU's
user network: the guest reaches the host's 127.0.0.1 at 10.0.2.2 and nothing else when QEMU
runs, as the test run does, in a namespace that has only loopback.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shlex
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ExecResult", "Guest", "GuestError", "Image", "read_ppm"]

#: What the appliance test gives QEMU (PLATFORM-NOTES: KVM here dies on a stock kernel).
#: ``max`` without AVX: QEMU 7.2's TCG emulates AVX/AVX2 since that release, and Mesa's
#: llvmpipe JIT code crashes on it (labwc's renderer and the surface's EGL segfaulted in the
#: guest); without AVX, LLVM emits SSE4 code that TCG runs correctly. The Pi has no AVX either.
MACHINE = [
    "-accel", "tcg,thread=multi",
    "-cpu", "max,avx=off,avx2=off,fma=off,f16c=off,vaes=off,avx512f=off",
    "-smp", "2", "-m", "2048",
]  # fmt: skip


class GuestError(RuntimeError):
    """The guest did not answer, or a command in it failed."""


@dataclass(frozen=True)
class Image:
    """What ``scripts/vm-image --print`` names."""

    kernel: Path
    initrd: Path
    root: Path
    wheels: Path
    image_wheels: Path
    key: str

    @classmethod
    def from_assignments(cls, text: str) -> Image:
        """Parse ``KS_VM_...=value`` lines."""
        values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        return cls(
            kernel=Path(values["KS_VM_KERNEL"]),
            initrd=Path(values["KS_VM_INITRD"]),
            root=Path(values["KS_VM_ROOT"]),
            wheels=Path(values["KS_VM_WHEELS"]),
            image_wheels=Path(values["KS_VM_IMAGE_WHEELS"]),
            key=values["KS_VM_KEY"],
        )


@dataclass(frozen=True)
class ExecResult:
    """A finished command in the guest."""

    command: str
    status: int
    stdout: str
    stderr: str

    def check(self) -> ExecResult:
        """Raise unless it exited 0."""
        if self.status != 0:
            output = self.stdout[-4000:] + self.stderr[-4000:]
            raise GuestError(f"`{self.command}` exited {self.status}:\n{output}")
        return self


class _JsonSocket:
    """A line-delimited JSON connection (QMP, the guest agent)."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self._buffer = b""

    def send(self, message: Mapping[str, Any]) -> None:
        self.sock.sendall(json.dumps(message).encode() + b"\n")

    def receive(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no answer")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            # The agent's sync delimiter (0xff) may precede an answer.
            self._buffer += chunk.replace(b"\xff", b"")
        line, _, self._buffer = self._buffer.partition(b"\n")
        if not line.strip():
            return self.receive(max(0.0, deadline - time.monotonic()))
        value: dict[str, Any] = json.loads(line)
        return value

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class Guest:
    """One QEMU process: boot, run commands, look at the screen, press keys, reboot."""

    def __init__(
        self,
        image: Image,
        workdir: Path,
        share: Path,
        *,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.image = image
        self.workdir = workdir
        self.share = share
        self.qmp_path = workdir / "qmp.sock"
        self.qga_path = workdir / "qga.sock"
        self.console = workdir / "console.log"
        #: The console's end each time an early-boot kernel oops made us reset the guest.
        self.emulator_resets: list[str] = []
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen[bytes] | None = None
        self._qmp: _JsonSocket | None = None
        self._qga: _JsonSocket | None = None
        self._sync = 0

    # ------------------------------------------------------------------ life cycle

    def command_line(self) -> list[str]:
        """The QEMU command line (printed in failures, for a person to re-run it)."""
        return [
            "qemu-system-x86_64",
            *MACHINE,
            "-nodefaults",
            "-no-user-config",
            "-kernel", str(self.image.kernel),
            "-initrd", str(self.image.initrd),
            "-append", "console=ttyS0 root=/dev/vda rw quiet loglevel=3 systemd.show_status=0",
            "-drive", f"file={self.image.root},format=raw,if=virtio,snapshot=on,cache=unsafe",
            "-vga", "none",
            "-device", "virtio-gpu-pci,xres=1280,yres=800",
            "-display", "none",
            "-device", "virtio-tablet-pci",
            "-device", "i6300esb",
            "-nic", "user,model=virtio-net-pci",
            "-virtfs", f"local,path={self.share},mount_tag=ks,security_model=none,readonly=on",
            "-chardev", f"socket,path={self.qga_path},server=on,wait=off,id=qga0",
            "-device", "virtio-serial-pci",
            "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
            "-serial", f"file:{self.console}",
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> None:
        """Start QEMU (the guest boots on its own; :meth:`wait_for_agent` waits for it)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with (self.workdir / "qemu.log").open("ab") as log:
            self.process = subprocess.Popen(
                self.command_line(), stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 30
        while not (self.qmp_path.exists() and self.qga_path.exists()):
            if self.process.poll() is not None:
                raise GuestError(f"qemu exited {self.process.returncode}: {self.qemu_log()}")
            if time.monotonic() > deadline:
                raise GuestError("qemu made no sockets within 30 s")
            time.sleep(0.05)
        self._qmp = _JsonSocket(self.qmp_path, 30)
        self._qmp.receive(30)  # the greeting
        self.qmp("qmp_capabilities")

    def qemu_log(self) -> str:
        """QEMU's own output."""
        path = self.workdir / "qemu.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def console_tail(self, chars: int = 6000) -> str:
        """The end of the guest's serial console."""
        return self.console.read_text(errors="replace")[-chars:] if self.console.exists() else ""

    def stop(self) -> None:
        """Power off hard (the image is a snapshot: nothing to save) and reap QEMU."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(Exception):
                self.qmp("quit")
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(20)
        for channel in (self._qmp, self._qga):
            if channel is not None:
                channel.close()
        self._qmp = self._qga = None

    # ------------------------------------------------------------------ QMP

    def qmp(self, command: str, **arguments: Any) -> Any:
        """Run a QMP command; its ``return`` value."""
        assert self._qmp is not None, "QEMU is not running"
        message: dict[str, Any] = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        self._qmp.send(message)
        while True:
            answer = self._qmp.receive(60)
            if "event" in answer:
                continue
            if "error" in answer:
                raise GuestError(f"QMP {command}: {answer['error']}")
            return answer.get("return")

    def screendump(self, path: Path) -> Path:
        """What the display shows now, as a PPM file (QEMU reads the scanout itself)."""
        self.qmp("screendump", filename=str(path))
        return path

    def press(self, *keys: str, hold_ms: int = 80) -> None:
        """Press a key combination (QEMU qcodes: ``alt``, ``f4``, ``meta_l``, ``ret``, ...)."""
        self.qmp(
            "send-key",
            keys=[{"type": "qcode", "data": key} for key in keys],
            **{"hold-time": hold_ms},
        )

    def pointer(
        self, x: float, y: float, button: str | None = None, *, keys: Sequence[str] = ()
    ) -> None:
        """Move the tablet's pointer to (x, y) in 0..1 of the screen; click ``button`` there
        (``left``, ``right``, ``middle``, ``wheel-up``, ``wheel-down``) with ``keys`` held."""
        move = [
            {"type": "abs", "data": {"axis": "x", "value": int(x * 0x7FFF)}},
            {"type": "abs", "data": {"axis": "y", "value": int(y * 0x7FFF)}},
        ]
        self.qmp("input-send-event", events=move)
        if button is None:
            return
        held = [{"type": "key", "data": {"down": True, "key": {"type": "qcode", "data": k}}}
                for k in keys]  # fmt: skip
        self.qmp(
            "input-send-event",
            events=[*held, {"type": "btn", "data": {"down": True, "button": button}}],
        )
        time.sleep(0.08)
        released = [{"type": "key", "data": {"down": False, "key": {"type": "qcode", "data": k}}}
                    for k in keys]  # fmt: skip
        self.qmp(
            "input-send-event",
            events=[{"type": "btn", "data": {"down": False, "button": button}}, *released],
        )

    # ------------------------------------------------------------------ guest agent

    def _agent(self, sync_within: float = 30) -> _JsonSocket:
        """The agent's channel; a new one is synchronised first (``guest-sync`` with a fresh
        id; answers to anything asked before, e.g. a call that timed out, are dropped)."""
        if self._qga is None:
            channel = _JsonSocket(self.qga_path, 10)
            self._sync += 1
            channel.send({"execute": "guest-sync", "arguments": {"id": self._sync}})
            try:
                deadline = time.monotonic() + sync_within
                while (
                    channel.receive(max(0.1, deadline - time.monotonic())).get("return")
                    != self._sync
                ):
                    pass
            except BaseException:
                channel.close()
                raise
            self._qga = channel
        return self._qga

    def _agent_call(self, command: str, timeout: float = 30, **arguments: Any) -> Any:
        channel = self._agent()
        message: dict[str, Any] = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        channel.send(message)
        try:
            answer = channel.receive(timeout)
        except (TimeoutError, ConnectionError, OSError):
            # The answer may still come: a later call must not take it for its own.
            channel.close()
            self._qga = None
            raise
        if "error" in answer:
            raise GuestError(f"guest agent {command}: {answer['error']}")
        return answer.get("return")

    def wait_for_agent(self, within: float = 300) -> float:
        """Wait until the guest agent answers (the guest has booted far enough); seconds.

        One exception is the emulator's, not the station's: under TCG (no KVM here) a
        two-vCPU guest kernel can oops while it patches its own code early in boot ("Oops:
        int3" in ``sched_clock_cpu``, seen once in a CI run at 7 s of boot, before systemd or
        any of the project's code ran). Such a boot is reset once (QMP ``system_reset``) and
        counted in :attr:`emulator_resets`; a second oops, or any other hang, fails.
        """
        started = time.monotonic()
        deadline = started + within
        console_from = self.console.stat().st_size if self.console.exists() else 0
        reset = False
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise GuestError(f"qemu exited: {self.qemu_log()}\n{self.console_tail()}")
            try:
                self._agent(sync_within=5)
                return time.monotonic() - started
            except (TimeoutError, ConnectionError, OSError, ValueError):
                pass
            if not reset and self._boot_oopsed(console_from):
                reset = True
                self.emulator_resets.append(self.console_tail(2000))
                print("guest kernel oopsed in early boot (TCG emulation): one reset")
                console_from = self.console.stat().st_size
                with contextlib.suppress(Exception):
                    self.qmp("system_reset")
                if self._qga is not None:
                    self._qga.close()
                    self._qga = None
                deadline = time.monotonic() + within
            if time.monotonic() > deadline:
                raise GuestError(f"the guest agent never answered:\n{self.console_tail()}")
            time.sleep(1)

    def _boot_oopsed(self, console_from: int) -> bool:
        """Whether the guest kernel oopsed in the early boot logged since ``console_from``
        (before systemd: the emulator's fault, see :meth:`wait_for_agent`)."""
        if not self.console.exists():
            return False
        with self.console.open("rb") as console:
            console.seek(console_from)
            text = console.read().decode(errors="replace")
        return "Oops: int3" in text

    def run(
        self,
        command: str,
        *,
        timeout: float = 120,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        """Run ``command`` with ``/bin/sh -c`` in the guest, as root; wait for it."""
        argv = ["-c", command]
        arguments: dict[str, Any] = {"path": "/bin/sh", "arg": argv, "capture-output": True}
        if env:
            arguments["env"] = [f"{k}={v}" for k, v in env.items()]
        pid = self._agent_call("guest-exec", **arguments)["pid"]
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            status = self._agent_call("guest-exec-status", pid=pid)
            if status.get("exited"):
                break
            if time.monotonic() > deadline:
                # Leave no stray command behind (this started it; its pid in the guest).
                with contextlib.suppress(GuestError):
                    self._agent_call("guest-exec", path="/bin/kill", arg=["-9", str(pid)], **{})
                raise GuestError(f"`{command}` did not finish within {timeout} s")
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        result = ExecResult(
            command,
            int(status.get("exitcode", -1 if "signal" in status else 0)),
            base64.b64decode(status.get("out-data", "")).decode(errors="replace"),
            base64.b64decode(status.get("err-data", "")).decode(errors="replace"),
        )
        return result.check() if check else result

    def sh(self, *words: str, **options: Any) -> ExecResult:
        """:meth:`run` with each word quoted."""
        return self.run(shlex.join(words), **options)

    def reboot(self, within: float = 400) -> float:
        """Reboot from inside (``systemctl reboot``) and wait for the agent; seconds."""
        started = time.monotonic()
        with contextlib.suppress(GuestError, TimeoutError, ConnectionError, OSError):
            self.run("systemctl reboot", timeout=10, check=False)
        # The agent goes away with the old boot: wait until it is gone before waiting for it.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                self._agent_call("guest-ping", timeout=2)
            except (GuestError, TimeoutError, ConnectionError, OSError):
                break
            time.sleep(0.5)
        if self._qga is not None:
            self._qga.close()
            self._qga = None
        self.wait_for_agent(within)
        return time.monotonic() - started

    @contextlib.contextmanager
    def running(self) -> Iterator[Guest]:
        """Start, and stop on the way out whatever happens."""
        try:
            self.start()
            yield self
        finally:
            self.stop()


def read_ppm(path: Path) -> tuple[int, int, bytes]:
    """Width, height and RGB bytes of a binary PPM (P6, maxval 255)."""
    data = path.read_bytes()
    fields: list[bytes] = []
    position = 0
    while len(fields) < 4:
        while data[position : position + 1].isspace():
            position += 1
        if data[position : position + 1] == b"#":
            position = data.index(b"\n", position) + 1
            continue
        end = position
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[position:end])
        position = end
    position += 1  # the single whitespace after maxval
    if fields[0] != b"P6" or fields[3] != b"255":
        raise ValueError(f"not an 8-bit P6 PPM: {fields}")
    width, height = int(fields[1]), int(fields[2])
    return width, height, data[position : position + width * height * 3]


def environ_without_proxies() -> dict[str, str]:
    """This process's environment without proxy settings (QEMU needs none)."""
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}

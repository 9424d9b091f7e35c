"""A userspace netem: loss, bursty loss, delay, jitter and a rate cap between two veths.

This machine's kernel has ``htb``, ``tbf`` and ``pfifo`` but no ``netem``, no random-drop
qdisc, no nftables, no ``act_gact`` and no iptables, so nothing in the kernel can drop one
packet in twenty or hold a packet 100 ms. This does it in a process of its own, placed in a
middle network namespace between the two ends of a link::

    host ns: vh (10.200.0.1) ══ mh │ this process │ ms ══ vs (10.200.0.2): station ns

It opens a raw ``AF_PACKET`` socket on ``mh`` and on ``ms`` and copies every Ethernet frame
(ARP included) from one to the other, impaired per direction. The middle interfaces have no
addresses, so the middle namespace's own stack stays silent. The sockets use
``PACKET_VNET_HDR``: a veth hands over TCP segments of up to 64 KiB and packets whose checksum
is still to be filled in; the virtio header that comes with each frame is passed on unchanged
so the kernel segments and checksums them on the way out, exactly as it would have.

The impairments, per direction, in the order a packet meets them (as netem does them):

* ``loss``: each packet dropped with this probability (independent), or ``burst``: a
  Gilbert-Elliott chain ``(p, r, loss_in_bad)``: good → bad with probability ``p`` per packet,
  bad → good with ``r``, and in the bad state a packet is lost with ``loss_in_bad``;
* ``rate_bps`` with a ``queue`` of packets (tail drop): a token-free serialisation clock, the
  way a slow link sends one packet after the other;
* ``delay_ms`` ± ``jitter_ms`` (uniform, packets may overtake each other as under netem).

Run as ``python -m tests.integration.impair mh ms`` inside the middle namespace; settings
arrive as JSON lines on stdin (``{"to_b": {...}, "to_a": {...}}``, or ``{"both": {...}}``),
``{"stats": true}`` prints the counters as one JSON line, end of input ends it.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import random
import selectors
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Direction", "Impairment"]

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23
VNET_HDR_BYTES = 10


@dataclass(frozen=True)
class Impairment:
    """What one direction of the link does to packets (all zero: a clean link)."""

    loss: float = 0.0
    burst: tuple[float, float, float] | None = None
    rate_bps: int = 0
    queue: int = 50
    delay_ms: float = 0.0
    jitter_ms: float = 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Impairment:
        burst = data.get("burst")
        return cls(
            loss=float(data.get("loss", 0.0)),
            burst=(float(burst[0]), float(burst[1]), float(burst[2])) if burst else None,
            rate_bps=int(data.get("rate_bps", 0)),
            queue=int(data.get("queue", 50)),
            delay_ms=float(data.get("delay_ms", 0.0)),
            jitter_ms=float(data.get("jitter_ms", 0.0)),
        )


@dataclass
class Direction:
    """One direction: decides each packet's fate and when it leaves."""

    impairment: Impairment = field(default_factory=Impairment)
    rng: random.Random = field(default_factory=random.Random)
    passed: int = 0
    lost: int = 0
    overflowed: int = 0
    _bad: bool = False
    _link_free_at: float = 0.0
    _in_queue: list[float] = field(default_factory=list)  # serialisation end times

    def offer(self, size: int, now: float) -> float | None:
        """When a packet of ``size`` bytes arriving ``now`` leaves, or None if it is lost."""
        imp = self.impairment
        if imp.burst is not None:
            p, r, loss_in_bad = imp.burst
            self._bad = (self.rng.random() >= r) if self._bad else (self.rng.random() < p)
            if self._bad and self.rng.random() < loss_in_bad:
                self.lost += 1
                return None
        elif imp.loss and self.rng.random() < imp.loss:
            self.lost += 1
            return None
        leave = now
        if imp.rate_bps:
            while self._in_queue and self._in_queue[0] <= now:
                heapq.heappop(self._in_queue)
            if len(self._in_queue) >= imp.queue:
                self.overflowed += 1
                return None
            start = max(now, self._link_free_at)
            self._link_free_at = start + size * 8 / imp.rate_bps
            heapq.heappush(self._in_queue, self._link_free_at)
            leave = self._link_free_at
        if imp.delay_ms or imp.jitter_ms:
            spread = self.rng.uniform(-imp.jitter_ms, imp.jitter_ms)
            leave += max(0.0, imp.delay_ms + spread) / 1000
        self.passed += 1
        return leave

    def counters(self) -> dict[str, int]:
        return {"passed": self.passed, "lost": self.lost, "overflowed": self.overflowed}


def _raw_socket(interface: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((interface, 0))
    sock.setblocking(False)
    return sock


def bridge(interface_a: str, interface_b: str) -> None:
    """Copy frames between two interfaces, impaired, until stdin ends."""
    a, b = _raw_socket(interface_a), _raw_socket(interface_b)
    to_b, to_a = Direction(), Direction()
    route = {a: (b, to_b), b: (a, to_a)}
    pending: list[tuple[float, int, socket.socket, bytes]] = []
    sequence = 0
    selector = selectors.DefaultSelector()
    selector.register(a, selectors.EVENT_READ)
    selector.register(b, selectors.EVENT_READ)
    selector.register(sys.stdin, selectors.EVENT_READ)
    print("ready", flush=True)
    buffered = b""
    while True:
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, _, out, frame = heapq.heappop(pending)
            with contextlib.suppress(OSError):  # a full send buffer loses it, as a NIC would
                out.send(frame)
        timeout = max(0.0, pending[0][0] - now) if pending else None
        for key, _ in selector.select(timeout):
            if key.fileobj is sys.stdin:
                chunk = os.read(sys.stdin.fileno(), 65536)
                if not chunk:
                    return
                buffered += chunk
                while b"\n" in buffered:
                    line, buffered = buffered.split(b"\n", 1)
                    _control(json.loads(line), to_b, to_a)
                continue
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            out, direction = route[sock]
            for _ in range(64):
                try:
                    frame = sock.recv(65536 + VNET_HDR_BYTES)
                except BlockingIOError:
                    break
                leave = direction.offer(len(frame) - VNET_HDR_BYTES, time.monotonic())
                if leave is not None:
                    sequence += 1
                    heapq.heappush(pending, (leave, sequence, out, frame))


def _control(message: dict[str, Any], to_b: Direction, to_a: Direction) -> None:
    if message.get("stats"):
        print(json.dumps({"to_b": to_b.counters(), "to_a": to_a.counters()}), flush=True)
        return
    for name, direction in (("to_b", to_b), ("to_a", to_a)):
        settings = message.get(name, message.get("both"))
        if isinstance(settings, dict):
            direction.impairment = Impairment.from_json(settings)


if __name__ == "__main__":
    bridge(sys.argv[1], sys.argv[2])

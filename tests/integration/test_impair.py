"""The userspace netem (:mod:`.impair`) does what it says: TCP and UDP pass whole on a clean
link, and loss, delay and a rate cap come out as set, each way apart."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from .impair import Direction, Impairment
from .netns import delegated_to_loopback_namespace
from .test_call_network_loss import STATION_ADDRESS, StationNetns

#: In the station's namespace: a UDP echo (16 bytes back per datagram) and a TCP sink that
#: answers with the number of bytes it got.
ECHO = f"""
import socket, threading
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("{STATION_ADDRESS}", 9000))
tcp = socket.socket()
tcp.bind(("{STATION_ADDRESS}", 9001))
tcp.listen()
def sink():
    while True:
        conn, _ = tcp.accept()
        total = 0
        while chunk := conn.recv(65536):
            total += len(chunk)
        conn.sendall(str(total).encode())
        conn.close()
threading.Thread(target=sink, daemon=True).start()
print("up", flush=True)
while True:
    data, peer = udp.recvfrom(2048)
    udp.sendto(data[:16], peer)
"""


@contextmanager
def echo_link() -> Iterator[StationNetns]:
    netns = StationNetns(impaired=True)
    echo = subprocess.Popen(
        ["nsenter", "-t", str(netns.pid), "-n", "--", sys.executable, "-c", ECHO],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert echo.stdout is not None and echo.stdout.readline().strip() == "up"
        yield netns
    finally:
        echo.kill()
        echo.wait()
        if echo.stdout is not None:
            echo.stdout.close()
        netns.close()


def udp_exchange(count: int, size: int, gap_s: float) -> list[tuple[int, float, float]]:
    """Send ``count`` numbered datagrams to the echo; (number, sent at, echo back at) for each
    echo that came back within a second of the last one sent."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.settimeout(1.0)
    sent: dict[int, float] = {}
    back: list[tuple[int, float, float]] = []

    def receive() -> None:
        try:
            while True:
                data, _ = sock.recvfrom(64)
                number = int.from_bytes(data[:4], "big")
                back.append((number, sent[number], time.monotonic()))
        except TimeoutError:
            pass

    receiver = threading.Thread(target=receive)
    for number in range(count):
        sent[number] = time.monotonic()
        sock.sendto(number.to_bytes(4, "big") + bytes(size - 4), (STATION_ADDRESS, 9000))
        if number == 0:
            receiver.start()
        time.sleep(gap_s)
    receiver.join()
    sock.close()
    return back


@pytest.mark.network
def test_a_clean_link_carries_tcp_and_udp_whole(request: pytest.FixtureRequest) -> None:
    if delegated_to_loopback_namespace(request):
        return
    with echo_link():
        with socket.create_connection((STATION_ADDRESS, 9001), timeout=10) as conn:
            conn.sendall(b"x" * 3_000_000)  # 64 KiB segments and offloaded checksums pass
            conn.shutdown(socket.SHUT_WR)
            assert conn.recv(100) == b"3000000"
        assert len(udp_exchange(300, 200, 0.002)) == 300


@pytest.mark.network
def test_loss_and_delay_are_as_set_each_way(request: pytest.FixtureRequest) -> None:
    if delegated_to_loopback_namespace(request):
        return
    with echo_link() as netns:
        netns.impair(to_station={"loss": 0.1}, to_hub={"delay_ms": 60, "jitter_ms": 20})
        back = udp_exchange(2000, 100, 0.002)
        counters = netns.counters()
    # 10 % of 2000 lost towards the station: 200, within four standard deviations (±54).
    assert 146 <= 2000 - len(back) <= 254, len(back)
    assert counters["to_a"]["lost"] == 0
    # The bridge lost what did not come back (and maybe an ARP or IPv6 packet beside them).
    assert 2000 - len(back) <= counters["to_b"]["lost"] <= 2000 - len(back) + 5
    delays = sorted(back_at - sent_at for _, sent_at, back_at in back)
    # 60 ± 20 ms one way (uniform), nothing the other way: 40-80 ms plus this machine.
    assert 0.040 <= delays[0] <= 0.050, delays[0]
    assert 0.055 <= delays[len(delays) // 2] <= 0.070, delays[len(delays) // 2]
    assert delays[-1] <= 0.150, delays[-1]
    # Jitter reorders, as under netem.
    order = [number for number, _, _ in sorted(back, key=lambda item: item[2])]
    assert order != sorted(order)


@pytest.mark.network
def test_a_rate_cap_sends_no_faster_than_the_rate(request: pytest.FixtureRequest) -> None:
    if delegated_to_loopback_namespace(request):
        return
    with echo_link() as netns:
        netns.impair(to_station={"rate_bps": 1_000_000, "queue": 1000})
        back = udp_exchange(200, 1200, 0.0)  # 2 Mbit at once: the cap spreads it over ~2 s
    assert len(back) == 200
    arrivals = sorted(back_at for _, _, back_at in back)
    frame_bits = (1200 + 8 + 20 + 14) * 8  # UDP, IPv4 and Ethernet headers on the wire
    rate = (len(arrivals) - 1) * frame_bits / (arrivals[-1] - arrivals[0])
    assert 900_000 <= rate <= 1_050_000, rate


def test_bursty_loss_comes_in_bursts_at_the_rate_the_chain_gives() -> None:
    # Gilbert-Elliott (p, r, loss in bad): time in the bad state p / (p + r) = 7.4 %, so
    # 5.9 % lost; a bad spell lasts 1 / r = 4 packets on average.
    direction = Direction(Impairment(burst=(0.02, 0.25, 0.8)), rng=random.Random(7))
    fates = [direction.offer(100, 0.0) is None for _ in range(200_000)]
    assert abs(sum(fates) / len(fates) - 0.059) < 0.004
    runs, run = [], 0
    for lost in fates:
        if lost:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    # Independent loss at 5.9 % would give runs of 1.06 on average; these are longer.
    assert sum(runs) / len(runs) > 1.5
    assert direction.lost == sum(fates) and direction.passed == len(fates) - sum(fates)


def test_a_full_queue_drops_the_newest_packet() -> None:
    direction = Direction(Impairment(rate_bps=80_000, queue=3))  # 1000 bytes: 0.1 s each
    leaves = [direction.offer(1000, 0.0) for _ in range(5)]
    assert leaves[:3] == pytest.approx([0.1, 0.2, 0.3]) and leaves[3:] == [None, None]
    assert direction.overflowed == 2
    assert direction.offer(1000, 0.15) == pytest.approx(0.4)  # one left the queue by then

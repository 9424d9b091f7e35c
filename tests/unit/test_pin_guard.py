"""PIN attempt counters: back-off, disabling, the station-wide cap, and durability."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from station.core.clock import FakeClock, SystemClock
from station.keys.keyring import KdfParams, Keyring, generate_escrow_keypair
from station.keys.pin_guard import (
    PinGuard,
    PinGuardError,
    PinPolicy,
    SlotDisabled,
    Throttled,
    WrongPin,
    wait_text,
)

REPO = Path(__file__).resolve().parents[2]
#: The device secret the staff-id key is derived from (any 32 bytes in these tests).
SECRET = bytes(range(32))
FAST = KdfParams(memory_kib=64, time_cost=1, parallelism=1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def guard(tmp_path: Path, clock: FakeClock) -> Iterator[PinGuard]:
    with PinGuard(tmp_path / "pin_attempts.sqlite3", clock, device_secret=SECRET) as g:
        yield g


def fail(guard: PinGuard, staff_id: str) -> Exception:
    """One wrong PIN, as the keyring does it: begin, then rejected."""
    return guard.rejected(guard.begin(staff_id))


def succeed(guard: PinGuard, staff_id: str) -> None:
    guard.succeeded(guard.begin(staff_id))


# --------------------------------------------------------------------------- the schedule


def test_backoff_schedule_values() -> None:
    policy = PinPolicy()
    assert [policy.backoff_seconds(n) for n in range(10)] == [
        0,
        0,
        0,
        30,
        60,
        120,
        240,
        480,
        900,
        900,
    ]


@given(a=st.integers(min_value=0, max_value=10_000), b=st.integers(min_value=0, max_value=10_000))
def test_backoff_never_decreases_as_failures_grow(a: int, b: int) -> None:
    policy = PinPolicy()
    low, high = sorted((a, b))
    assert policy.backoff_seconds(low) <= policy.backoff_seconds(high)
    assert policy.backoff_seconds(high) <= policy.max_delay_seconds


def test_wait_text() -> None:
    assert str(wait_text(30)) == "30 sekunder"
    assert str(wait_text(0.2)) == "1 sekund"
    assert str(wait_text(29.1)) == "30 sekunder"
    assert str(wait_text(120)) == "2 minutter"
    assert str(wait_text(61 * 15)) == "16 minutter"
    assert str(wait_text(91)) == "2 minutter"
    assert wait_text(61 * 15).translated("en") == "16 minutes"


# --------------------------------------------------------------------------- per id


def test_three_free_failures_then_back_off(guard: PinGuard, clock: FakeClock) -> None:
    for _ in range(2):
        err = fail(guard, "s-1")
        assert isinstance(err, WrongPin) and err.retry_after_seconds == 0
        assert err.user_message == "Forkert PIN-kode."
    third = fail(guard, "s-1")
    assert isinstance(third, WrongPin)
    assert third.retry_after_seconds == 30
    assert third.user_message == "Forkert PIN-kode. Prøv igen om 30 sekunder."

    with pytest.raises(Throttled) as caught:
        guard.begin("s-1")
    assert caught.value.retry_after_seconds == 30
    assert caught.value.user_message == "For mange forkerte forsøg. Prøv igen om 30 sekunder."
    assert guard.status("s-1").consecutive_failures == 3  # a refused attempt is not counted

    clock.advance(20)
    with pytest.raises(Throttled) as caught:
        guard.begin("s-1")
    assert caught.value.retry_after_seconds == 10
    assert "10 sekunder" in caught.value.user_message

    clock.advance(10)
    assert fail(guard, "s-1").retry_after_seconds == 60  # type: ignore[attr-defined]
    clock.advance(59)
    with pytest.raises(Throttled):
        guard.begin("s-1")


def test_other_ids_are_not_throttled_by_one_ids_failures(guard: PinGuard) -> None:
    for _ in range(3):
        fail(guard, "s-1")
    with pytest.raises(Throttled):
        guard.begin("s-1")
    succeed(guard, "s-2")


def test_success_resets_the_count(guard: PinGuard, clock: FakeClock) -> None:
    for _ in range(3):
        fail(guard, "s-1")
    clock.advance(30)
    succeed(guard, "s-1")
    status = guard.status("s-1")
    assert status.consecutive_failures == 0
    assert status.retry_after_seconds == 0
    assert fail(guard, "s-1").retry_after_seconds == 0  # type: ignore[attr-defined]


def test_disabled_after_ten_in_a_row_until_reenabled(guard: PinGuard, clock: FakeClock) -> None:
    errors = []
    for _ in range(10):
        clock.advance(timedelta(hours=1))
        errors.append(fail(guard, "s-1"))
    assert all(isinstance(e, WrongPin) for e in errors[:9])
    assert isinstance(errors[9], SlotDisabled)
    assert errors[9].user_message == (
        "Din PIN-kode er spærret efter for mange forkerte forsøg. Kontakt din leder eller IT."
    )
    clock.advance(timedelta(days=30))
    with pytest.raises(SlotDisabled):
        guard.begin("s-1")
    assert guard.status("s-1").disabled

    guard.reenable("s-1")
    assert not guard.status("s-1").disabled
    succeed(guard, "s-1")


@settings(max_examples=40, deadline=None)
@given(outcomes=st.lists(st.booleans(), max_size=25))
def test_counts_follow_a_simple_model(
    tmp_path_factory: pytest.TempPathFactory, outcomes: list[bool]
) -> None:
    """Whatever the sequence of right and wrong PINs, the count is wrong PINs since the last
    right one, and a wait never shrinks as that count grows."""
    clock = FakeClock()
    path = tmp_path_factory.mktemp("model") / "pins.sqlite3"
    with PinGuard(path, clock, device_secret=SECRET) as guard:
        expected = 0
        last_wait = 0.0
        for ok in outcomes:
            clock.advance(timedelta(hours=2))  # past any back-off and the hourly window
            if expected >= 10:
                with pytest.raises(SlotDisabled):
                    guard.begin("s-1")
                break
            attempt = guard.begin("s-1")
            if ok:
                guard.succeeded(attempt)
                expected, last_wait = 0, 0.0
            else:
                err = guard.rejected(attempt)
                expected += 1
                if isinstance(err, WrongPin):
                    assert err.retry_after_seconds >= last_wait
                    last_wait = err.retry_after_seconds
            assert guard.status("s-1").consecutive_failures == expected


def test_clock_going_backwards_restarts_the_wait(guard: PinGuard, clock: FakeClock) -> None:
    for _ in range(3):
        fail(guard, "s-1")
    clock.set(clock.now() - timedelta(days=1))  # a Pi without RTC boots with an old time
    with pytest.raises(Throttled) as caught:
        guard.begin("s-1")
    assert caught.value.retry_after_seconds == 30
    clock.advance(30)
    fail(guard, "s-1")


# --------------------------------------------------------------------------- station-wide


def test_many_ids_cost_others_only_the_spacing(guard: PinGuard, clock: FakeClock) -> None:
    """Issue 14, item 8: strangers' made-up ids hold an enrolled member back a few seconds at
    most (the old shared cap took the whole hour from everyone)."""
    spacing = guard.policy.station_spacing_seconds
    for n in range(25):
        if n:
            clock.advance(1 if n < 20 else spacing)
        fail(guard, f"s-unknown-{n}")  # one failure each: no per-id back-off
    assert guard.station_failures() == 25
    with pytest.raises(Throttled) as caught:
        guard.begin("s-enrolled")
    assert caught.value.station_wide
    assert 0 < caught.value.retry_after_seconds <= spacing
    clock.advance(spacing)
    succeed(guard, "s-enrolled")
    # Guessing across many ids is held to one try per spacing.
    fail(guard, "s-unknown-99")
    with pytest.raises(Throttled):
        guard.begin("s-unknown-100")


def test_failures_are_forgotten(guard: PinGuard, clock: FakeClock) -> None:
    fail(guard, "s-1")
    fail(guard, "s-2")
    clock.advance(timedelta(days=31))
    assert guard.station_failures() == 0
    with sqlite3.connect(guard._db.execute("PRAGMA database_list").fetchone()[2]) as db:
        assert db.execute("SELECT count(*) FROM pin_counters").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM pin_failures").fetchone()[0] == 0


def test_successes_do_not_count_toward_the_cap(guard: PinGuard) -> None:
    for _ in range(50):
        succeed(guard, "s-1")
    assert guard.station_failures() == 0
    fail(guard, "s-1")
    assert guard.station_failures() == 1


# --------------------------------------------------------------------------- durability


def test_counters_survive_reopening(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "pins.sqlite3"
    with PinGuard(path, clock, device_secret=SECRET) as guard:
        for _ in range(3):
            fail(guard, "s-1")
        fail(guard, "s-2")
    with PinGuard(path, clock, device_secret=SECRET) as guard:
        assert guard.status("s-1").consecutive_failures == 3
        assert guard.status("s-2").consecutive_failures == 1
        assert guard.station_failures() == 4
        with pytest.raises(Throttled):
            guard.begin("s-1")


def test_an_attempt_is_counted_before_verification(guard: PinGuard) -> None:
    """begin() alone (a crash before rejected/succeeded) already costs the attempt."""
    guard.begin("s-1")
    assert guard.status("s-1").consecutive_failures == 1
    assert guard.station_failures() == 1


def test_file_is_private_and_in_wal_mode(guard: PinGuard, tmp_path: Path) -> None:
    path = tmp_path / "pin_attempts.sqlite3"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_damaged_counter_file_fails_closed(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "pins.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    path.chmod(0o600)
    with pytest.raises(PinGuardError):
        PinGuard(path, clock, device_secret=SECRET)


def test_no_typed_id_is_stored(guard: PinGuard, tmp_path: Path) -> None:
    odd = "Karen Hansen 010203-1234"
    fail(guard, odd)
    fail(guard, "0101301237")
    fail(guard, "s-enrolled")
    assert guard.status(odd).consecutive_failures == 1
    assert guard.status("s-enrolled").consecutive_failures == 1
    with sqlite3.connect(guard._db.execute("PRAGMA database_list").fetchone()[2]) as db:
        keys = [row[0] for row in db.execute("SELECT staff_key FROM pin_counters")]
    assert len(keys) == 3 and all(k.startswith("k:") for k in keys)
    for path in tmp_path.glob("pin_attempts.sqlite3*"):
        data = path.read_bytes()
        for typed in ("Karen", "010203", "0101301237", "s-enrolled"):
            assert typed.encode() not in data


def test_the_old_format_is_converted_and_scrubbed(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "pins.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE pin_counters (staff_key TEXT PRIMARY KEY,"
            " consecutive_failures INTEGER NOT NULL, last_failure_at REAL NOT NULL)"
        )
        db.execute("CREATE TABLE pin_failures (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL)")
        db.execute(
            "INSERT INTO pin_counters VALUES ('0101301237', 4, ?)", (clock.now().timestamp(),)
        )
        db.execute("PRAGMA user_version = 1")
    path.chmod(0o600)
    with PinGuard(path, clock, device_secret=SECRET) as guard:
        assert guard.status("0101301237").consecutive_failures == 4
    for file in tmp_path.glob("pins.sqlite3*"):
        assert b"0101301237" not in file.read_bytes()


# --------------------------------------------------------------------------- a real kill


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import station.keys.keyring as kr
    from station.core.clock import SystemClock
    from station.keys.pin_guard import PinGuard

    keyring_path, guard_path, secret_hex, pin, hang = sys.argv[1:]
    real = kr._derive_kek

    def in_verification(*args, **kwargs):
        # Called by unlock between counting the attempt and knowing the answer.
        print("verifying", flush=True)
        if hang == "hang":
            time.sleep(600)
        return real(*args, **kwargs)

    kr._derive_kek = in_verification
    guard = PinGuard(Path(guard_path), SystemClock(), device_secret=bytes.fromhex(secret_hex))
    keyring = kr.Keyring.load(Path(keyring_path), bytes.fromhex(secret_hex), guard=guard)
    with keyring.unlock("s-kill", pin):
        print("unlocked", flush=True)
    """
)


def _child(tmp_path: Path, secret: bytes, pin: str, hang: bool) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            str(tmp_path / "keyslots.json"),
            str(tmp_path / "pins.sqlite3"),
            secret.hex(),
            pin,
            "hang" if hang else "run",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def kill_setup(tmp_path: Path) -> bytes:
    secret = os.urandom(32)
    with PinGuard(tmp_path / "pins.sqlite3", SystemClock(), device_secret=secret) as guard:
        keyring, vault_key = Keyring.initialise(
            tmp_path / "keyslots.json",
            secret,
            generate_escrow_keypair()[1],
            guard=guard,
            kdf_params=FAST,
        )
        keyring.add_slot(vault_key, "s-kill", "2468")
        vault_key.zero()
    return secret


def test_killing_the_process_mid_verification_still_costs_the_attempt(
    tmp_path: Path, kill_setup: bytes
) -> None:
    # The right PIN: had the process lived, the attempt would have been cleared.
    child = _child(tmp_path, kill_setup, "2468", hang=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "verifying"
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    with PinGuard(tmp_path / "pins.sqlite3", SystemClock(), device_secret=kill_setup) as guard:
        assert guard.status("s-kill").consecutive_failures == 1
        assert guard.station_failures() == 1


def test_the_same_child_left_alone_clears_the_attempt(tmp_path: Path, kill_setup: bytes) -> None:
    """The control for the kill test: without the kill, success takes the attempt back."""
    child = _child(tmp_path, kill_setup, "2468", hang=False)
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    assert out.split() == ["verifying", "unlocked"]
    with PinGuard(tmp_path / "pins.sqlite3", SystemClock(), device_secret=kill_setup) as guard:
        assert guard.status("s-kill").consecutive_failures == 0
        assert guard.station_failures() == 0

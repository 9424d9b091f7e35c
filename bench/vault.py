"""Benchmark the vault: PIN unlock, lock, and sealing a resident record.

Run: ``.venv/bin/python bench/vault.py [--unlocks 15]``. Prints one JSON object per line.

The unlock is the whole path a staff member waits for: read and authenticate keyslots.json,
count the attempt in the PIN guard's SQLite file (fsync), Argon2id with the default
parameters, unwrap, check the vault public key, clear the attempt (fsync). The Pi 4 figure is
an estimate: this machine's median times a stated factor (see DEFAULT_KDF_PARAMS).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from argon2.low_level import Type, hash_secret_raw

from station.core.clock import SystemClock
from station.keys.boxes import seal_to_vault
from station.keys.crypto import FieldRef
from station.keys.keyring import DEFAULT_KDF_PARAMS, Keyring, generate_escrow_keypair
from station.keys.pin_guard import PinGuard
from station.keys.vault import VaultKey

#: Cortex-A72 (Pi 4, 1.5-1.8 GHz) vs this x86 machine for memory-hard Argon2: 3-5x; 4 is used.
PI4_FACTOR = 4.0
PI4_FACTOR_RANGE = (3.0, 5.0)

#: A typical resident record: the six personal fields of a queued resident.
RECORD = {
    "name": b"Karen Margrethe Hansen",
    "cpr": b"0102031234",
    "birth_date": b"1931-02-01",
    "room": b"Stue 14, 2. sal",
    "reason": "Opfølgning på blodtryk og ny medicin".encode(),
    "notes": ("Hører dårligt på venstre øre. Datteren deltager gerne. " * 3).encode(),
}


def _stats(samples: list[float], unit: str, scale: float) -> dict[str, float | int | str]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "unit": unit,
        "n": len(samples),
        "median": round(statistics.median(ordered) * scale, 3),
        "p95": round(p95 * scale, 3),
        "min": round(ordered[0] * scale, 3),
    }


def _time(fn: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--unlocks", type=int, default=15)
    parser.add_argument("--records", type=int, default=2000)
    args = parser.parse_args()
    params = DEFAULT_KDF_PARAMS
    emit(
        bench="vault",
        metric="argon2id_params",
        memory_kib=params.memory_kib,
        time_cost=params.time_cost,
        parallelism=params.parallelism,
        cpus=os.cpu_count(),
    )

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        secret = os.urandom(32)
        with PinGuard(
            directory / "pin_attempts.sqlite3", SystemClock(), device_secret=secret
        ) as guard:
            keyring, vault_key = Keyring.initialise(
                directory / "keyslots.json", secret, generate_escrow_keypair()[1], guard=guard
            )
            keyring.add_slot(vault_key, "s-bench", "20261125")
            vault_key.zero()

            salt = os.urandom(16)
            kdf_only = _time(
                lambda: hash_secret_raw(
                    b"20261125",
                    salt,
                    params.time_cost,
                    params.memory_kib,
                    params.parallelism,
                    32,
                    Type.ID,
                ),
                args.unlocks,
            )
            emit(bench="vault", metric="argon2id_only", **_stats(kdf_only, "ms", 1e3))

            keys: list[VaultKey] = []
            unlock = _time(lambda: keys.append(keyring.unlock("s-bench", "20261125")), args.unlocks)
            unlock_stats = _stats(unlock, "ms", 1e3)
            emit(bench="vault", metric="unlock_pin_to_key", **unlock_stats)

            # Lock: from the request to the key bytes being zeros (the staff UI then exits).
            lock = []
            for key in keys:
                start = time.perf_counter()
                key.zero()
                lock.append(time.perf_counter() - start)
                assert key.is_zeroed
            emit(bench="vault", metric="lock_request_to_zeroed", **_stats(lock, "us", 1e6))

            median_ms = float(unlock_stats["median"])
            emit(
                bench="vault",
                metric="unlock_pi4_estimate",
                unit="ms",
                factor=PI4_FACTOR,
                estimate_median=round(median_ms * PI4_FACTOR, 1),
                estimate_range=[round(median_ms * f, 1) for f in PI4_FACTOR_RANGE],
                assumption=(
                    "Pi 4 Cortex-A72 3-5x slower than this machine for Argon2id at 64 MiB; "
                    "memory bandwidth dominates, extra cores not counted"
                ),
            )

            with keyring.unlock("s-bench", "20261125") as key:
                refs = {f: FieldRef("residents", "r-0001", f) for f in RECORD}
                sealed: dict[str, bytes] = {}

                def seal_record() -> None:
                    for field, value in RECORD.items():
                        sealed[field] = key.seal(value, refs[field])

                def open_record() -> None:
                    for field in RECORD:
                        key.open(sealed[field], refs[field])

                seal_record()
                emit(
                    bench="vault",
                    metric="seal_record_6_fields",
                    **_stats(_time(seal_record, args.records), "us", 1e6),
                )
                emit(
                    bench="vault",
                    metric="open_record_6_fields",
                    **_stats(_time(open_record, args.records), "us", 1e6),
                )
                public = key.public_key()
                box = seal_to_vault(public, b'{"event":"call_ended","s":612}', b"calls/c-1")
                emit(
                    bench="vault",
                    metric="sealed_box_seal",
                    **_stats(
                        _time(lambda: seal_to_vault(public, b"x" * 64, b"ctx"), 500), "us", 1e6
                    ),
                )
                emit(
                    bench="vault",
                    metric="sealed_box_open",
                    **_stats(_time(lambda: key.open_sealed_box(box, b"calls/c-1"), 500), "us", 1e6),
                )


if __name__ == "__main__":
    main()

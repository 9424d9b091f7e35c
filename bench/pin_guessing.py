"""What an offline attacker pays per PIN, and what the OTP device secret changes (issue 14).

Run: ``.venv/bin/python bench/pin_guessing.py [--guesses 12]``. Prints one JSON object per
line: the measured cost of one guess (one Argon2id evaluation with the station's production
parameters, the step a copied keyslots.json makes an attacker repeat per PIN tried), then the
time to try every PIN of each allowed length on one machine like this one, with the device
secret as a file (the copy carries it) and with the OTP (the copy does not: no guess can be
checked at all, whatever the cost).

One stopwatch (``time.perf_counter``) around each evaluation; the guesses are evaluated one
after another on this process (Argon2id's ``parallelism`` uses the cores itself). An attacker
with more machines divides the file-secret figures by their number.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import time

# The keyring's private derivation on purpose: the bench times exactly the step a guess repeats.
from station.keys.keyring import DEFAULT_KDF_PARAMS, _derive_kek

LENGTHS = (4, 6, 8, 12)


def one_guess(pin: str, salt: bytes, device_secret: bytes) -> float:
    """One try, timed: the keyring's own key derivation for a slot (Argon2id, then HKDF)."""
    started = time.perf_counter()
    _derive_kek(pin, DEFAULT_KDF_PARAMS, salt, device_secret, "s-bench")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guesses", type=int, default=12)
    args = parser.parse_args()
    salt = secrets.token_bytes(16)
    secret = secrets.token_bytes(32)  # what a copied card with a file secret carries
    samples = sorted(one_guess(f"{i:06d}", salt, secret) for i in range(args.guesses))
    median = statistics.median(samples)
    kdf = DEFAULT_KDF_PARAMS
    print(
        json.dumps(
            {
                "bench": "pin_guess",
                "argon2id": f"{kdf.memory_kib // 1024} MiB, t={kdf.time_cost}, p={kdf.parallelism}",
                "n": len(samples),
                "median_ms": round(median * 1000, 1),
                "min_ms": round(samples[0] * 1000, 1),
                "max_ms": round(samples[-1] * 1000, 1),
            }
        ),
        flush=True,
    )
    for digits in LENGTHS:
        seconds = (10**digits) * median
        print(
            json.dumps(
                {
                    "bench": "pin_space",
                    "digits": digits,
                    "pins": 10**digits,
                    "file_secret_all_pins_hours": round(seconds / 3600, 2),
                    "file_secret_all_pins_days": round(seconds / 86400, 2),
                    "otp_secret": "no guess can be checked without the chip's key",
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()

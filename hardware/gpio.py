"""Choosing gpiozero's pin factory: injected, named by ``GPIOZERO_PIN_FACTORY``, or found.

- ``GPIOZERO_PIN_FACTORY=mock`` (or ``KONTAKTSTATION_HARDWARE=fake``): gpiozero's
  ``MockFactory`` with PWM-capable mock pins; the demo and the tests drive its pins.
- Any other name is gpiozero's own (``lgpio``, ``rpigpio``, ``pigpio``, ``native``). A name
  gpiozero does not know is a configuration error (``UnknownBackendError``); a known one that
  cannot load here (no library, no GPIO chip) is ``BackendUnavailableError``.
- Unset: ``lgpio`` (every Pi, the only one that works on a Pi 5), then ``rpigpio``; never the
  ``native`` factory (it does not know the Pi 5). None available is an error naming the fix.

lgpio writes notification files into its working directory, or ``LG_WD`` when set, and the
service's working directory is not writable: :func:`ensure_lg_wd` points ``LG_WD`` at a
writable runtime directory before lgpio is imported.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, MutableMapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory, MockPWMPin

from ._env import fake_everything
from .errors import BackendUnavailableError, UnknownBackendError

__all__ = [
    "GPIO_FALLBACK_ORDER",
    "PIN_FACTORY_ENV",
    "ensure_lg_wd",
    "mock_pin_factory",
    "pin_factory_from_env",
]

PIN_FACTORY_ENV = "GPIOZERO_PIN_FACTORY"
GPIO_FALLBACK_ORDER = ("lgpio", "rpigpio")


def mock_pin_factory() -> MockFactory:
    """gpiozero's mock factory with PWM-capable pins (the status LED dims and pulses)."""
    return MockFactory(pin_class=MockPWMPin)


def ensure_lg_wd(env: MutableMapping[str, str] | None = None) -> str:
    """Make sure ``LG_WD`` names a writable directory; return it.

    Uses ``$RUNTIME_DIRECTORY`` (systemd's ``RuntimeDirectory=``) when set, else a private
    directory under the system's temporary directory.
    """
    target = os.environ if env is None else env
    current = target.get("LG_WD")
    if current and os.access(current, os.W_OK):
        return current
    runtime = target.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime and os.access(runtime, os.W_OK):
        directory = Path(runtime) / "lgpio"
    else:
        directory = Path(tempfile.gettempdir()) / f"kontaktstation-lgpio-{os.getuid()}"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    target["LG_WD"] = str(directory)
    return str(directory)


def _load_factory(name: str) -> Any:
    if name == "lgpio":
        ensure_lg_wd()
    for entry in entry_points(group="gpiozero_pin_factories"):
        if entry.name == name:
            return entry.load()()
    raise LookupError(f"gpiozero has no pin factory called {name!r}")


def pin_factory_from_env(env: Mapping[str, str]) -> Any:
    """The pin factory the environment asks for (see the module docstring)."""
    name = env.get(PIN_FACTORY_ENV, "").strip().lower()
    if not name and fake_everything(env):
        name = "mock"
    if name == "mock":
        return mock_pin_factory()
    if name:
        known = sorted({entry.name for entry in entry_points(group="gpiozero_pin_factories")})
        if name not in known:
            raise UnknownBackendError(PIN_FACTORY_ENV, name, tuple(known))
        try:
            return _load_factory(name)
        except Exception as exc:  # gpiozero raises many kinds (ImportError, OSError, ...)
            raise BackendUnavailableError("gpio", name, f"{type(exc).__name__}: {exc}") from exc
    reasons = []
    for candidate in GPIO_FALLBACK_ORDER:
        try:
            return _load_factory(candidate)
        except Exception as exc:
            reasons.append(f"{candidate}: {type(exc).__name__}: {exc}")
    raise BackendUnavailableError(
        "gpio",
        "auto",
        "; ".join(reasons) + f" (set {PIN_FACTORY_ENV}=mock off the Pi)",
    )

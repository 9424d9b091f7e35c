"""Reading the hardware configuration from the environment (gpiozero-style backend names)."""

from __future__ import annotations

from collections.abc import Mapping

from .errors import HardwareSettingError, UnknownBackendError

__all__ = ["HARDWARE_ENV", "choose", "env_float", "env_int", "fake_everything"]

#: ``KONTAKTSTATION_HARDWARE=fake`` makes every part default to its shipped fake (the demo).
HARDWARE_ENV = "KONTAKTSTATION_HARDWARE"


def fake_everything(env: Mapping[str, str]) -> bool:
    """True when ``KONTAKTSTATION_HARDWARE=fake`` asks for the fakes everywhere."""
    value = env.get(HARDWARE_ENV, "").strip().lower()
    if value not in ("", "fake", "real"):
        raise UnknownBackendError(HARDWARE_ENV, value, ("fake", "real"))
    return value == "fake"


def choose(env: Mapping[str, str], variable: str, known: tuple[str, ...], fake: str) -> str | None:
    """The backend named by ``variable``; the fake under ``KONTAKTSTATION_HARDWARE=fake``;
    ``None`` when unset (the caller then walks its fallback order)."""
    value = env.get(variable, "").strip().lower()
    if value:
        if value not in known:
            raise UnknownBackendError(variable, value, known)
        return value
    return fake if fake_everything(env) else None


def env_float(env: Mapping[str, str], variable: str, default: float) -> float:
    """A float setting; ``HardwareSettingError`` (a ``ValueError``) names the variable."""
    text = env.get(variable, "").strip()
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise HardwareSettingError(f"{variable}={text!r} is not a number") from None


def env_int(env: Mapping[str, str], variable: str, default: int) -> int:
    """An integer setting; ``HardwareSettingError`` (a ``ValueError``) names the variable."""
    text = env.get(variable, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise HardwareSettingError(f"{variable}={text!r} is not a whole number") from None

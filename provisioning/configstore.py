"""The station's configuration on disk: verified, versioned, applied atomically, rolled back.

Layout (``<data dir>/provisioning/config/``):

* ``<version>-<hash>.json``: each accepted envelope exactly as the hub signed it, so it is
  re-verified at every start (a file edited on the SD card is refused);
* ``state.json``: which file is *current*, which is the *last good* one, whether the current
  one is still on *trial* (applied, health check not passed yet), the trusted hub keys and
  the versions refused;
* ``keychain-<n>.json``: each committed configuration that changed the trusted keys, as
  signed, numbered in the order committed (a rollback's version is older than what it rolls
  back; the last :data:`KEY_CHAIN_LINKS`). The updater, which learns IT's keys only from the
  configurations that reach it, walks them link by link (each signed by the keys before it)
  when IT rotated its key between two releases (:meth:`ConfigStore.key_chain`). They are
  whole configurations, as the signature covers them whole: a superseded TURN credential or
  EOJ client secret stays in them until 16 later key changes or a wipe of the directory.

Applying (:meth:`ConfigStore.apply`) goes: verify signature and schema, check the version,
write the envelope file, mark it current-on-trial (``state.json``), run the health check,
then mark it good — or, on a failed check, point back at the last good file. Every write is
atomic (:func:`station.storage.durable.atomic_write`), so a power cut at any step leaves one of the
states above; :meth:`ConfigStore.open` finishes the story: a configuration found still on
trial never proved itself and is rolled back (after two such interruptions it is refused).
A damaged current file falls back to the last good one; with neither, the station runs
unconfigured and pulls again. It never stops booting because of a configuration.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from provisioning.errors import ConfigRejected
from provisioning.identity import provisioning_dir
from provisioning.protocol import SignedEnvelope, b64decode, b64encode
from provisioning.schema import ConfigPayload, StationConfig, open_config
from station.storage.datadir import DataDir
from station.storage.durable import StepHook, atomic_write, fsync_dir, no_step, sweep_temp_files

__all__ = [
    "KEY_CHAIN_LINKS",
    "AppliedConfig",
    "ConfigHealthCheck",
    "ConfigStore",
    "HealthVerdict",
]

_log = logging.getLogger(__name__)

_STATE_FILE: Final = DataDir.CONFIG_STATE
_MAX_INTERRUPTIONS: Final = 2
_KEY_CHAIN_PREFIX: Final = "keychain-"
#: Key changes kept for the updater: more rotations than this between two releases need the
#: set-up run again (``--it-key``), as before the chain existed.
KEY_CHAIN_LINKS: Final = 16


@dataclass(frozen=True, slots=True)
class HealthVerdict:
    """The outcome of a post-apply health check: ok, or a machine word saying why not."""

    ok: bool
    reason: str = ""


ConfigHealthCheck = Callable[[StationConfig], Awaitable[HealthVerdict]]


@dataclass(frozen=True, slots=True)
class AppliedConfig:
    """The configuration the station runs, and where it came from."""

    version: int
    config: StationConfig
    payload: ConfigPayload = field(repr=False)
    file: str


@dataclass(frozen=True)
class _State:
    current: str | None = None
    last_good: str | None = None
    trial: bool = False
    trusted_keys: tuple[str, ...] = ()
    rejected: dict[str, str] = field(default_factory=dict)  # "version:hash" -> reason
    interrupted: dict[str, int] = field(default_factory=dict)
    #: With no configuration in force (after a crypto-wipe): the lowest version accepted,
    #: the one that was in force, so a wipe does not open the door to an older one.
    floor: int = 0

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "current": self.current,
                "last_good": self.last_good,
                "trial": self.trial,
                "trusted_keys": list(self.trusted_keys),
                "rejected": self.rejected,
                "interrupted": self.interrupted,
                "floor": self.floor,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> _State:
        raw = json.loads(data)
        if not isinstance(raw, dict):
            raise ValueError("state is not an object")
        return cls(
            current=raw.get("current"),
            last_good=raw.get("last_good"),
            trial=bool(raw.get("trial", False)),
            trusted_keys=tuple(str(k) for k in raw.get("trusted_keys", [])),
            rejected={str(k): str(v) for k, v in dict(raw.get("rejected", {})).items()},
            interrupted={str(k): int(v) for k, v in dict(raw.get("interrupted", {})).items()},
            floor=int(raw.get("floor", 0)),
        )


def _file_name(payload: ConfigPayload, envelope: SignedEnvelope) -> str:
    digest = hashlib.sha256(envelope.model_dump_json().encode()).hexdigest()[:16]
    return f"{payload.version}-{digest}.json"


def _link_number(path: Path) -> int:
    """The order of a key chain link (0 for a name this store did not write)."""
    digits = path.name.removeprefix(_KEY_CHAIN_PREFIX).removesuffix(".json")
    return int(digits) if digits.isdigit() else 0


def _tag(file: str) -> str:
    return file.removesuffix(".json")


class ConfigStore:
    """The station's signed configuration files; see the module docs.

    Not thread-safe: the agent applies one configuration at a time on its loop.
    """

    def __init__(self, data_dir: Path, station_id: str, *, step: StepHook = no_step) -> None:
        self.directory = provisioning_dir(data_dir) / DataDir.CONFIG_DIR
        self.directory.mkdir(mode=0o700, exist_ok=True)
        self.station_id = station_id
        self._step = step
        self._state = _State()
        self._current: AppliedConfig | None = None
        #: Why the last offered document failed verification (bad signature, another
        #: station's, invalid): not a version to remember, but IT must see it in the heartbeat
        #: (a hub signing with a key the station does not trust is a hub to look at).
        self._unverified: str | None = None

    # ------------------------------------------------------------------ start-up

    @classmethod
    def open(cls, data_dir: Path, station_id: str, *, step: StepHook = no_step) -> ConfigStore:
        """Load the state, finish or undo an interrupted apply, verify the current file."""
        store = cls(data_dir, station_id, step=step)
        store._recover()
        return store

    def _read_state(self) -> _State:
        path = self.directory / _STATE_FILE
        try:
            return _State.from_json(path.read_bytes())
        except FileNotFoundError:
            return _State()
        except (ValueError, TypeError, json.JSONDecodeError):
            # Written atomically, so only a disk fault gets here: keep the files, start over
            # from the newest file that verifies.
            _log.error("configuration state file is damaged; rebuilding from the files")
            return _State()

    def _write_state(self, state: _State) -> None:
        atomic_write(self.directory / _STATE_FILE, state.to_json(), replace=True, step=self._step)
        self._state = state

    def _recover(self) -> None:
        sweep_temp_files(self.directory)
        state = self._read_state()
        self._state = state
        if state.trial and state.current is not None:
            tag = _tag(state.current)
            count = state.interrupted.get(tag, 0) + 1
            rejected = dict(state.rejected)
            if count >= _MAX_INTERRUPTIONS:
                rejected[tag] = "interrupted"
            _log.warning("configuration %s was interrupted on trial; rolling back", tag)
            state = replace(
                state,
                current=state.last_good,
                trial=False,
                rejected=rejected,
                interrupted={**state.interrupted, tag: count},
            )
            self._write_state(state)
        for candidate in (state.current, state.last_good):
            if candidate is None:
                continue
            try:
                self._current = self._load_file(candidate, list(state.trusted_keys))
            except ConfigRejected as exc:
                _log.error("configuration file %s refused at start: %s", candidate, exc.reason)
                continue
            if candidate != state.current:
                self._write_state(replace(state, current=candidate, last_good=candidate))
            return
        self._current = None

    def _load_file(self, name: str, trusted: list[str]) -> AppliedConfig:
        try:
            envelope = SignedEnvelope.model_validate_json((self.directory / name).read_bytes())
        except (OSError, ValidationError):
            raise ConfigRejected("damaged", f"configuration file {name} is unreadable") from None
        payload = self._verify(envelope, trusted)
        return AppliedConfig(payload.version, payload.config, payload, name)

    # ------------------------------------------------------------------ reading

    @property
    def current(self) -> AppliedConfig | None:
        """The configuration in force (None: never configured, or nothing verifies)."""
        return self._current

    @property
    def version(self) -> int:
        """The current version (0 without one)."""
        return 0 if self._current is None else self._current.version

    @property
    def trusted_keys(self) -> tuple[str, ...]:
        """The hub keys (base64url) this station trusts."""
        return self._state.trusted_keys

    def pin_keys(self, keys: tuple[str, ...] | list[str]) -> None:
        """Trust these keys (at enrollment, or from a pre-installed list). Only while no key
        is pinned: from then on the list changes only by a configuration signed by a key
        already trusted (:meth:`apply`), also when no configuration is in force (after a
        crypto-wipe, or when every configuration file was refused)."""
        if self._state.trusted_keys:
            if tuple(keys) != self._state.trusted_keys:
                _log.warning("a new list of trusted keys was offered unsigned; keeping the pinned")
            return
        for key in keys:
            b64decode(key, length=32)
        self._write_state(replace(self._state, trusted_keys=tuple(keys)))

    # ------------------------------------------------------------------ applying

    def _verify(self, envelope: SignedEnvelope, trusted: list[str]) -> ConfigPayload:
        payload = open_config(envelope, trusted)
        if payload.station_id != self.station_id:
            raise ConfigRejected("wrong_station", "configuration is for another station")
        return payload

    def check(self, envelope: SignedEnvelope) -> ConfigPayload | None:
        """Verify ``envelope`` and its version against the current one; None if it is the
        current configuration already. Raises :class:`ConfigRejected`."""
        try:
            payload = self._verify(envelope, list(self._state.trusted_keys))
        except ConfigRejected as exc:
            self._unverified = exc.reason
            raise
        self._unverified = None
        tag = _tag(_file_name(payload, envelope))
        if tag in self._state.rejected:
            raise ConfigRejected("previously_rejected", f"version {payload.version} was refused")
        current = self.version
        if self._current is not None and _tag(self._current.file) == tag:
            return None
        if self._current is None and payload.version < self._state.floor:
            raise ConfigRejected(
                "stale_version", f"version {payload.version} is below {self._state.floor}"
            )
        if payload.version > current:
            if payload.rollback_of is not None:
                raise ConfigRejected("invalid_rollback", "a rollback must go to a lower version")
            return payload
        if payload.rollback_of is not None and payload.rollback_of == current:
            return payload
        raise ConfigRejected(
            "stale_version", f"version {payload.version} is not above the current {current}"
        )

    async def apply(
        self, envelope: SignedEnvelope, health_check: ConfigHealthCheck
    ) -> AppliedConfig | None:
        """Verify, write, trial, health-check and commit ``envelope``; roll back on failure.

        Returns the new configuration, or None if it was the current one already. Raises
        :class:`ConfigRejected` (nothing changed, or rolled back to the last good one).
        """
        payload = self.check(envelope)
        if payload is None:
            return None
        self._step("verified")
        name = _file_name(payload, envelope)
        path = self.directory / name
        if not path.exists():
            atomic_write(path, envelope.model_dump_json().encode(), replace=False, step=self._step)
        previous = self._state
        self._write_state(replace(previous, current=name, trial=True))
        self._step("trial")
        candidate = AppliedConfig(payload.version, payload.config, payload, name)
        try:
            verdict = await health_check(payload.config)
        except Exception as exc:
            verdict = HealthVerdict(False, f"check_error_{type(exc).__name__.lower()}"[:32])
        self._step("checked")
        if not verdict.ok:
            reason = verdict.reason or "health_check_failed"
            self._write_state(
                replace(
                    previous,
                    current=previous.last_good,
                    trial=False,
                    rejected={**previous.rejected, _tag(name): reason},
                )
            )
            self._step("rolled_back")
            self._remove_unused()
            raise ConfigRejected("health_check_failed", f"health check failed: {reason}")
        self._write_state(
            replace(
                previous,
                current=name,
                last_good=name,
                trial=False,
                trusted_keys=tuple(payload.trusted_config_keys),
            )
        )
        self._current = candidate
        self._step("committed")
        if set(payload.trusted_config_keys) != set(previous.trusted_keys):
            self._add_key_change(envelope)
        self._remove_unused()
        return candidate

    def _add_key_change(self, envelope: SignedEnvelope) -> None:
        """Keep a configuration that changed the trusted keys, after the others (the newest
        :data:`KEY_CHAIN_LINKS`). Written after the commit: a power cut between the two loses
        only this link, and the updater then refuses until the set-up pins the key again."""
        links = sorted(self.directory.glob(f"{_KEY_CHAIN_PREFIX}*.json"))
        number = max((_link_number(link) for link in links), default=0) + 1
        path = self.directory / f"{_KEY_CHAIN_PREFIX}{number:012d}.json"
        atomic_write(path, envelope.model_dump_json().encode(), replace=True, step=self._step)
        links.append(path)
        for old in links[:-KEY_CHAIN_LINKS]:
            old.unlink(missing_ok=True)
        fsync_dir(self.directory)

    def key_chain(self) -> list[SignedEnvelope]:
        """The configurations that changed the trusted keys, oldest first, as signed (for the
        updater: it checks each link against the keys before it). A damaged file is left out
        (the chain then stops there for the updater, which refuses, as without it)."""
        chain = []
        for path in sorted(self.directory.glob(f"{_KEY_CHAIN_PREFIX}*.json")):
            with contextlib.suppress(OSError, ValidationError):
                chain.append(SignedEnvelope.model_validate_json(path.read_bytes()))
        return chain

    def _remove_unused(self) -> None:
        keep = {self._state.current, self._state.last_good, _STATE_FILE}
        removed = False
        for entry in self.directory.iterdir():
            if entry.name.startswith(_KEY_CHAIN_PREFIX):
                continue  # the key chain keeps its own count
            if entry.name not in keep and entry.name.endswith(".json"):
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
                    removed = True
        if removed:
            fsync_dir(self.directory)
        self._step("pruned")

    def rejected_reason(self) -> str | None:
        """The reason of the most recent refusal, for the heartbeat (None if none)."""
        if self._unverified is not None:
            return self._unverified[:32]
        if not self._state.rejected:
            return None
        return list(self._state.rejected.values())[-1][:32]

    def destroy(self) -> None:
        """Delete every configuration file (decommissioning)."""
        for entry in self.directory.iterdir():
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        fsync_dir(self.directory)
        self._state = _State()
        self._current = None

    def describe(self) -> dict[str, Any]:
        """A short, non-secret summary (for logs and tests)."""
        return {
            "current": self._state.current,
            "last_good": self._state.last_good,
            "trial": self._state.trial,
            "trusted": [b64encode(b64decode(k))[:8] for k in self._state.trusted_keys],
        }

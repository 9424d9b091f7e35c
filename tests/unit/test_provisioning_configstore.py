"""Signed configuration on the station: refused when unsigned, tampered, older, for another
station or invalid; rolled back when its health check fails; rotation of the hub's key."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provisioning.configstore import KEY_CHAIN_LINKS, ConfigStore, HealthVerdict
from provisioning.errors import ConfigRejected
from provisioning.protocol import (
    SignedEnvelope,
    b64decode,
    b64encode,
    canonical_json,
    open_envelope,
    public_key_bytes,
    seal_envelope,
)
from provisioning.schema import StationConfig

STATION = "stationaaaaaaaaaaaaaaaaa"
HUB_KEY = Ed25519PrivateKey.generate()
HUB_PUBLIC = b64encode(public_key_bytes(HUB_KEY))


def config(name: str = "Stue 1", **extra: Any) -> dict[str, Any]:
    return {"care_home": {"id": "solhaven", "name": "Solhaven"}, "station_name": name, **extra}


def envelope(
    version: int,
    *,
    key: Ed25519PrivateKey = HUB_KEY,
    station: str = STATION,
    rollback_of: int | None = None,
    trusted: tuple[str, ...] = (HUB_PUBLIC,),
    body: dict[str, Any] | None = None,
    kind: str = "config",
) -> SignedEnvelope:
    payload = {
        "format": "kontaktstation-config-1",
        "station_id": station,
        "version": version,
        "issued_at": datetime(2026, 1, 1, tzinfo=UTC).isoformat(),
        "rollback_of": rollback_of,
        "trusted_config_keys": list(trusted),
        "config": body if body is not None else config(f"Stue v{version}"),
    }
    return seal_envelope(key, kind, payload)  # type: ignore[arg-type]


async def healthy(_config: StationConfig) -> HealthVerdict:
    return HealthVerdict(True)


async def unhealthy(_config: StationConfig) -> HealthVerdict:
    return HealthVerdict(False, "turn_unreachable")


@pytest.fixture
def store(data_dir: Path) -> ConfigStore:
    s = ConfigStore.open(data_dir, STATION)
    s.pin_keys([HUB_PUBLIC])
    return s


async def test_applies_newer_versions_and_keeps_them_across_restarts(
    store: ConfigStore, data_dir: Path
) -> None:
    applied = await store.apply(envelope(1), healthy)
    assert applied is not None and applied.config.station_name == "Stue v1"
    assert await store.apply(envelope(1), healthy) is None  # the current one again: a no-op
    await store.apply(envelope(3), healthy)
    reopened = ConfigStore.open(data_dir, STATION)
    assert reopened.version == 3 and reopened.current is not None
    assert reopened.current.config.station_name == "Stue v3"
    # Only the current (= last good) file is kept.
    files = sorted(p.name for p in (data_dir / "provisioning" / "config").iterdir())
    assert len(files) == 2 and "state.json" in files


async def test_older_or_equal_versions_are_refused(store: ConfigStore) -> None:
    await store.apply(envelope(5), healthy)
    for version in (4, 1):
        with pytest.raises(ConfigRejected) as refused:
            await store.apply(envelope(version), healthy)
        assert refused.value.reason == "stale_version"
    with pytest.raises(ConfigRejected) as refused:  # same version, other content
        await store.apply(envelope(5, body=config("Other")), healthy)
    assert refused.value.reason == "stale_version"
    assert store.version == 5


async def test_a_signed_rollback_must_name_the_current_version(store: ConfigStore) -> None:
    await store.apply(envelope(2), healthy)
    await store.apply(envelope(3), healthy)
    with pytest.raises(ConfigRejected):  # a rollback of a version we are not on
        await store.apply(envelope(1, rollback_of=2), healthy)
    rolled = await store.apply(envelope(2, rollback_of=3, body=config("Stue v2")), healthy)
    assert rolled is not None and store.version == 2
    # The old rollback cannot be replayed later.
    await store.apply(envelope(4), healthy)
    with pytest.raises(ConfigRejected):
        await store.apply(envelope(2, rollback_of=3, body=config("Stue v2")), healthy)
    with pytest.raises(ConfigRejected) as refused:  # "rollback" upwards is malformed
        await store.apply(envelope(9, rollback_of=4), healthy)
    assert refused.value.reason == "invalid_rollback"


async def test_tampered_unsigned_foreign_and_invalid_configurations_are_refused(
    store: ConfigStore,
) -> None:
    good = envelope(1)
    payload = json.loads(b64decode(good.payload))
    payload["config"]["station_name"] = "Hacked"
    tampered = good.model_copy(update={"payload": b64encode(canonical_json(payload))})
    other_key = envelope(1, key=Ed25519PrivateKey.generate())
    bad_signature = good.model_copy(update={"signature": b64encode(bytes(64))})
    command = envelope(1, kind="command")
    for candidate, reason in (
        (tampered, "bad_signature"),
        (other_key, "bad_signature"),
        (bad_signature, "bad_signature"),
        (command, "bad_signature"),
        (envelope(1, station="someoneelseaaaaaaaaaaaa"), "wrong_station"),
        (envelope(1, body={"station_name": "no care home"}), "invalid"),
        (envelope(1, body=config(ice_servers=[{"urls": ["http://x"]}])), "invalid"),
    ):
        with pytest.raises(ConfigRejected) as refused:
            await store.apply(candidate, healthy)
        assert refused.value.reason == reason
    assert store.version == 0 and store.current is None


async def test_unsigned_file_on_disk_is_refused_at_start(
    store: ConfigStore, data_dir: Path
) -> None:
    await store.apply(envelope(1), healthy)
    await store.apply(envelope(2), healthy)
    assert store.current is not None
    path = store.directory / store.current.file
    raw = json.loads(path.read_text())
    raw["signature"] = b64encode(bytes(64))
    path.write_text(json.dumps(raw))
    reopened = ConfigStore.open(data_dir, STATION)
    assert reopened.current is None  # nothing verifies: unconfigured, but it starts


async def test_failed_health_check_rolls_back_to_the_last_good_version(
    store: ConfigStore, data_dir: Path
) -> None:
    await store.apply(envelope(1), healthy)
    with pytest.raises(ConfigRejected) as refused:
        await store.apply(envelope(2), unhealthy)
    assert refused.value.reason == "health_check_failed"
    assert store.version == 1 and store.rejected_reason() == "turn_unreachable"
    with pytest.raises(ConfigRejected) as again:  # the same refused version is not retried
        await store.apply(envelope(2), healthy)
    assert again.value.reason == "previously_rejected"
    assert ConfigStore.open(data_dir, STATION).version == 1
    assert (await store.apply(envelope(3), healthy)) is not None


async def test_a_crashing_health_check_counts_as_failed(store: ConfigStore) -> None:
    async def boom(_config: StationConfig) -> HealthVerdict:
        raise RuntimeError("camera exploded")

    await store.apply(envelope(1), healthy)
    with pytest.raises(ConfigRejected):
        await store.apply(envelope(2), boom)
    assert store.version == 1


async def test_key_rotation_through_signed_configuration(store: ConfigStore) -> None:
    new_key = Ed25519PrivateKey.generate()
    new_public = b64encode(public_key_bytes(new_key))
    with pytest.raises(ConfigRejected):  # not trusted yet
        await store.apply(envelope(1, key=new_key, trusted=(new_public,)), healthy)
    # The old key announces the new one ...
    await store.apply(envelope(1, trusted=(HUB_PUBLIC, new_public)), healthy)
    # ... the new key signs and drops the old one ...
    await store.apply(envelope(2, key=new_key, trusted=(new_public,)), healthy)
    # ... after which the old key is refused.
    with pytest.raises(ConfigRejected) as refused:
        await store.apply(envelope(3), healthy)
    assert refused.value.reason == "bad_signature"


async def test_trusted_keys_are_not_replaced_by_pinning_once_configured(
    store: ConfigStore,
) -> None:
    await store.apply(envelope(1), healthy)
    other = b64encode(public_key_bytes(Ed25519PrivateKey.generate()))
    store.pin_keys([other])
    assert store.trusted_keys == (HUB_PUBLIC,)


async def test_pinned_keys_stay_when_no_configuration_is_in_force(data_dir: Path) -> None:
    """Issue 14, item 3: after a crypto-wipe (the configuration versions gone, IT's keys kept)
    or when every configuration file is refused, nothing unsigned replaces the pinned keys."""
    from provisioning.wipe import destroy_keys

    store = ConfigStore.open(data_dir, STATION)
    store.pin_keys([HUB_PUBLIC])
    await store.apply(envelope(1), healthy)
    destroy_keys(data_dir, "crypto_wipe")
    reopened = ConfigStore.open(data_dir, STATION)
    assert reopened.current is None and reopened.trusted_keys == (HUB_PUBLIC,)
    attacker = Ed25519PrivateKey.generate()
    attacker_public = b64encode(public_key_bytes(attacker))
    reopened.pin_keys([attacker_public])  # e.g. a hub's enrollment answer with its own key
    assert reopened.trusted_keys == (HUB_PUBLIC,)
    with pytest.raises(ConfigRejected) as refused:
        await reopened.apply(envelope(2, key=attacker, trusted=(attacker_public,)), healthy)
    assert refused.value.reason == "bad_signature"
    # The old key still announces a change of keys.
    await reopened.apply(envelope(2, trusted=(HUB_PUBLIC, attacker_public)), healthy)
    assert reopened.trusted_keys == (HUB_PUBLIC, attacker_public)


async def test_a_crypto_wipe_does_not_open_the_door_to_an_older_version(data_dir: Path) -> None:
    from provisioning.wipe import destroy_keys

    store = ConfigStore.open(data_dir, STATION)
    store.pin_keys([HUB_PUBLIC])
    await store.apply(envelope(1), healthy)
    await store.apply(envelope(2), healthy)
    destroy_keys(data_dir, "crypto_wipe")
    reopened = ConfigStore.open(data_dir, STATION)
    assert reopened.current is None
    with pytest.raises(ConfigRejected) as refused:
        await reopened.apply(envelope(1), healthy)  # an old signed version, replayed
    assert refused.value.reason == "stale_version"
    assert (await reopened.apply(envelope(2), healthy)) is not None  # the one in force


async def test_every_key_change_is_kept_for_the_updater_in_order(
    store: ConfigStore, data_dir: Path
) -> None:
    """The configurations that changed the trusted keys stay, as signed, oldest first, across
    restarts and the pruning of older configurations; the newest 16 of them."""
    new_key = Ed25519PrivateKey.generate()
    new_public = b64encode(public_key_bytes(new_key))
    await store.apply(envelope(1), healthy)  # the pinned key again: no change
    announce = envelope(2, trusted=(HUB_PUBLIC, new_public))
    await store.apply(announce, healthy)
    await store.apply(envelope(3, key=new_key, trusted=(HUB_PUBLIC, new_public)), healthy)
    drop_old = envelope(4, key=new_key, trusted=(new_public,))
    await store.apply(drop_old, healthy)
    await store.apply(envelope(5, key=new_key, trusted=(new_public,)), healthy)

    reopened = ConfigStore.open(data_dir, STATION)
    assert reopened.key_chain() == [announce, drop_old]
    # Each link opens with the keys before it: what the updater checks.
    assert open_envelope(announce, "config", [public_key_bytes(HUB_KEY)])
    assert open_envelope(drop_old, "config", [public_key_bytes(new_key)])

    keys = [new_key]
    for version in range(6, 6 + KEY_CHAIN_LINKS + 2):
        key = Ed25519PrivateKey.generate()
        public = b64encode(public_key_bytes(key))
        await reopened.apply(envelope(version, key=keys[-1], trusted=(public,)), healthy)
        keys.append(key)
    chain = reopened.key_chain()
    assert len(chain) == KEY_CHAIN_LINKS
    assert [json.loads(b64decode(link.payload))["version"] for link in chain] == list(
        range(6 + 2, 6 + KEY_CHAIN_LINKS + 2)
    )

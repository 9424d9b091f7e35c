"""The vault key: sealing, wrapping, sealed boxes, zeroing, and the device secret file."""

from __future__ import annotations

import copy
import os
import pickle
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from station.keys.boxes import seal_to_vault
from station.keys.crypto import FieldRef, SealError
from station.keys.device_secret import DeviceSecret
from station.keys.errors import DeviceSecretError, VaultError, VaultLocked
from station.keys.vault import VaultKey
from station.storage.private_files import write_private_file

names = st.text(min_size=1, max_size=20)
refs = st.builds(
    FieldRef,
    table=names,
    row_id=names,
    field=names,
    schema_version=st.integers(min_value=1, max_value=1000),
)

# One key for the property tests: VaultKey derives an X25519 key per instance, so building
# one per example would only test the constructor many times.
KEY = VaultKey.generate()


# --------------------------------------------------------------------------- fields


@given(plaintext=st.binary(max_size=512), ref=refs)
def test_seal_open_round_trip(plaintext: bytes, ref: FieldRef) -> None:
    assert KEY.open(KEY.seal(plaintext, ref), ref) == plaintext


@given(
    plaintext=st.binary(max_size=64),
    ref=refs,
    part=st.sampled_from(["table", "row_id", "field", "schema_version"]),
    data=st.data(),
)
def test_open_under_another_ref_fails(
    plaintext: bytes, ref: FieldRef, part: str, data: st.DataObject
) -> None:
    if part == "schema_version":
        other = data.draw(
            st.integers(min_value=1, max_value=1000).filter(lambda v: v != ref.schema_version)
        )
    else:
        other = data.draw(names.filter(lambda v: v != getattr(ref, part)))
    moved = FieldRef(**{**_as_dict(ref), part: other})
    with pytest.raises(SealError):
        KEY.open(KEY.seal(plaintext, ref), moved)


def _as_dict(ref: FieldRef) -> dict[str, object]:
    return {
        "table": ref.table,
        "row_id": ref.row_id,
        "field": ref.field,
        "schema_version": ref.schema_version,
    }


def test_another_vault_key_cannot_open() -> None:
    ref = FieldRef("residents", "r-1", "name")
    blob = KEY.seal(b"Karen", ref)
    with pytest.raises(SealError):
        VaultKey.generate().open(blob, ref)


@given(data_key=st.binary(min_size=32, max_size=32), ref=refs)
def test_wrap_unwrap_round_trip(data_key: bytes, ref: FieldRef) -> None:
    unwrapped = KEY.unwrap(KEY.wrap(data_key, ref), ref)
    assert isinstance(unwrapped, bytearray)
    assert unwrapped == data_key


def test_unwrap_under_another_ref_fails() -> None:
    ref = FieldRef("consultations", "c-1", "data_key")
    blob = KEY.wrap(os.urandom(32), ref)
    with pytest.raises(SealError):
        KEY.unwrap(blob, FieldRef("consultations", "c-2", "data_key"))


def test_wrap_refuses_a_data_key_of_the_wrong_size() -> None:
    with pytest.raises(VaultError):
        KEY.wrap(b"short", FieldRef("consultations", "c-1", "data_key"))


def test_unwrap_refuses_a_sealed_value_that_is_not_a_key() -> None:
    ref = FieldRef("consultations", "c-1", "data_key")
    with pytest.raises(SealError):
        KEY.unwrap(KEY.seal(b"not 32 bytes", ref), ref)


# --------------------------------------------------------------------------- sealed boxes


@given(plaintext=st.binary(max_size=512), context=st.binary(max_size=64))
def test_sealed_box_round_trip(plaintext: bytes, context: bytes) -> None:
    blob = seal_to_vault(KEY.public_key(), plaintext, context)
    assert KEY.open_sealed_box(blob, context) == plaintext


@given(context=st.binary(max_size=32), other=st.binary(max_size=32))
def test_sealed_box_wrong_context_fails(context: bytes, other: bytes) -> None:
    if context == other:
        return
    blob = seal_to_vault(KEY.public_key(), b"call ended 10:42", context)
    with pytest.raises(SealError):
        KEY.open_sealed_box(blob, other)


@settings(max_examples=50)
@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_sealed_box_tampered_byte_fails(position: int, flip: int) -> None:
    blob = bytearray(seal_to_vault(KEY.public_key(), b"gp message", b"calls/c-1"))
    blob[position % len(blob)] ^= flip
    with pytest.raises(SealError):
        KEY.open_sealed_box(bytes(blob), b"calls/c-1")


def test_sealed_box_truncated_or_for_another_vault_fails() -> None:
    blob = seal_to_vault(KEY.public_key(), b"gp message", b"ctx")
    for cut in (0, 1, 20, 48, len(blob) - 1):
        with pytest.raises(SealError):
            KEY.open_sealed_box(blob[:cut], b"ctx")
    with pytest.raises(SealError):
        VaultKey.generate().open_sealed_box(blob, b"ctx")


def test_sealed_boxes_differ_each_time() -> None:
    """An ephemeral key per box: the same record sealed twice gives unrelated bytes."""
    a = seal_to_vault(KEY.public_key(), b"same", b"ctx")
    b = seal_to_vault(KEY.public_key(), b"same", b"ctx")
    assert a != b


def test_public_key_is_derived_from_the_vault_key() -> None:
    raw = os.urandom(32)
    assert VaultKey(raw).public_key() == VaultKey(raw).public_key()
    assert len(KEY.public_key()) == 32
    assert VaultKey(raw).public_key() != KEY.public_key()


def test_seal_to_vault_refuses_bad_public_keys() -> None:
    with pytest.raises(VaultError):
        seal_to_vault(b"\x01" * 31, b"x", b"ctx")
    # The all-zero point has small order: the shared secret would be predictable.
    with pytest.raises(VaultError):
        seal_to_vault(bytes(32), b"x", b"ctx")


# --------------------------------------------------------------------------- zeroing


def test_zero_overwrites_the_key_and_every_method_raises() -> None:
    key = VaultKey.generate()
    ref = FieldRef("residents", "r-1", "name")
    blob = key.seal(b"Karen", ref)
    wrapped = key.wrap(os.urandom(32), ref)
    box = seal_to_vault(key.public_key(), b"x", b"ctx")
    assert not key.is_zeroed

    key.zero()

    assert key.is_zeroed
    assert key._key == bytearray(32)  # the very buffer that held the key
    calls = [
        lambda: key.seal(b"x", ref),
        lambda: key.open(blob, ref),
        lambda: key.wrap(os.urandom(32), ref),
        lambda: key.unwrap(wrapped, ref),
        lambda: key.public_key(),
        lambda: key.open_sealed_box(box, b"ctx"),
    ]
    for call in calls:
        with pytest.raises(VaultLocked):
            call()
    key.zero()  # idempotent
    assert repr(key) == "VaultKey(zeroed)"


def test_context_manager_zeroes_on_exit_even_on_error() -> None:
    with pytest.raises(RuntimeError), VaultKey.generate() as key:
        raise RuntimeError("boom")
    assert key.is_zeroed


def test_repr_and_pickling_never_show_the_key() -> None:
    raw = os.urandom(32)
    key = VaultKey(raw)
    text = repr(key) + str(key)
    assert raw.hex() not in text
    assert "unlocked" in text
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(TypeError):
        copy.copy(key)
    with pytest.raises(TypeError):
        copy.deepcopy(key)


def test_the_callers_buffer_is_copied_not_shared() -> None:
    raw = bytearray(os.urandom(32))
    key = VaultKey(raw)
    key.zero()
    assert any(raw), "zeroing the vault key must not depend on the caller's buffer"


def test_bad_key_material_is_refused() -> None:
    with pytest.raises(VaultError):
        VaultKey(b"\x01" * 31)
    with pytest.raises(VaultError):
        VaultKey(bytes(32))


# --------------------------------------------------------------------------- device secret


def test_device_secret_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "device_secret"
    first = DeviceSecret.load_or_create(path)
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert DeviceSecret.load_or_create(path) == first
    assert DeviceSecret(path).load() == first
    assert [p.name for p in tmp_path.iterdir()] == ["device_secret"]  # no temp file left


def test_concurrent_creation_agrees_on_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "device_secret"
    results: list[bytes] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        results.append(DeviceSecret.load_or_create(path))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    assert len(set(results)) == 1
    assert path.read_bytes() == results[0]


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_device_secret_of_the_wrong_size_is_refused(tmp_path: Path, size: int) -> None:
    path = tmp_path / "device_secret"
    path.write_bytes(b"\x07" * size)
    path.chmod(0o600)
    with pytest.raises(DeviceSecretError, match="bytes"):
        DeviceSecret.load_or_create(path)
    assert path.read_bytes() == b"\x07" * size  # untouched


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o620])
def test_device_secret_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "device_secret"
    path.write_bytes(os.urandom(32))
    path.chmod(mode)
    with pytest.raises(DeviceSecretError, match="0600"):
        DeviceSecret.load_or_create(path)


def test_device_secret_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(os.urandom(32))
    target.chmod(0o600)
    (tmp_path / "device_secret").symlink_to(target)
    with pytest.raises(DeviceSecretError):
        DeviceSecret.load_or_create(tmp_path / "device_secret")


def test_device_secret_in_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DeviceSecretError, match="cannot create"):
        DeviceSecret.load_or_create(tmp_path / "missing" / "device_secret")


def test_write_private_file_without_replace_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "f"
    write_private_file(path, b"first", replace=False)
    with pytest.raises(FileExistsError):
        write_private_file(path, b"second", replace=False)
    assert path.read_bytes() == b"first"
    write_private_file(path, b"third", replace=True)
    assert path.read_bytes() == b"third"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["f"]

"""IT's signed configuration takes effect in a real stationd, against a real hub.

A station enrolls with a running hub; IT sets a station layer with ICE servers (TURN with a
credential), relay-only, an idle timeout, a retention, English and an EOJ endpoint. Once the
station applies it:

* the call engine's configuration for the next call carries the ICE servers and relay-only;
* the session's idle timeout is the new one (``/v1/state``'s countdown shows it);
* the purge uses the new retention (a consultation documented 2 h ago goes with 1 h, not
  with the default 24 h);
* ``GET /v1/settings`` reports ``en``, and a UI's start-up adopts it;
* ``export.json`` holds the endpoint (0600) and the export service delivers with it;
* a configuration pushed during a call leaves the running call alone; the next call gets it;
* neither the TURN credential nor the client secret reaches a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import stat
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hardware.video import RecordingFrameSink
from hub.provisioning.api import open_provisioning
from station import i18n
from station.core.clock import SystemClock
from station.daemon.app import Daemon
from station.daemon.provisioning_port import DaemonStationPort
from station.export.config import EXPORT_CONFIG_FILENAME, load_export_config
from station.keys.keyring import KdfParams
from station.storage.store import new_id
from tests.integration.call_harness import StationD, call_config
from tests.integration.daemon_harness import (
    CLINIC,
    enrol,
    fake_hardware,
    provisioned_daemon,
)
from tests.integration.daemon_harness import uds_client as uds
from tests.integration.hub_server import it_key, running_hub
from tests.integration.test_provisioning_abuse import StunResponder
from tui.station_language import adopt_station_language

TEST_KDF = KdfParams(memory_kib=64, time_cost=1, parallelism=1)
TURN_SECRET = "turn-credential-7f3a9c1e5b"
CLIENT_SECRET = "eoj-client-secret-51d0c8a2"
FHIR_URL = "http://127.0.0.1:9/fhir"
TOKEN_URL = "http://127.0.0.1:9/oauth2/token"


async def until(condition: Callable[[], Any], within: float = 60.0) -> None:
    """Wait (generously) for what the background agent brings about."""
    async with asyncio.timeout(within):
        while True:
            value = condition()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def station(data_dir: Path, hub_url: str) -> AsyncIterator[StationD]:
    """stationd with provisioning, a call engine (loopback) and an enrolled staff member."""
    enrol(data_dir)
    sink = RecordingFrameSink()
    async with provisioned_daemon(
        data_dir,
        hub_url,
        config={"call": call_config(hub_url)},
        hardware=await fake_hardware(),
        frame_sink=sink,
    ) as daemon:
        http = uds(daemon.config.socket_path, timeout=30.0)
        try:
            yield StationD(daemon=daemon, http=http, sink=sink)
        finally:
            await http.aclose()


async def push(daemon: Daemon, admin: Any, station_id: str, layer: dict[str, Any]) -> int:
    """IT sets the station's layer; the station pulls and applies it; its version."""
    published = await admin.set_layer("station", station_id, layer, "it")
    version = published[station_id]
    agent, port = daemon.provisioning, daemon.provisioning_port
    await agent.heartbeat_once()
    await until(lambda: agent.config_store.version == version)
    await port.settled()
    return int(version)


def ice_urls(config: Any) -> list[tuple[str, ...]]:
    return [server.urls for server in config.ice_servers]


async def seed_documented(st: StationD, ago: timedelta) -> str:
    """A consultation documented ``ago`` (nothing in it but times and a clinic)."""
    service = st.daemon.service
    cid = new_id()
    now = datetime.now(UTC)
    await service.db(service.store.put_clinic, CLINIC)
    await service.db(
        service.store.create_consultation,
        consultation_id=cid,
        clinic_id=CLINIC.id,
        starts_at=now - ago - timedelta(hours=1),
        ends_at=now - ago - timedelta(minutes=30),
        consultation_type="video_consultation",
    )
    await service.db(service.store.mark_documented, cid, now - ago)
    return cid


async def consultation_ids(st: StationD) -> set[str]:
    service = st.daemon.service
    return {c.id for c in await service.db(service.store.list_consultations)}


def layer(turn_port: int) -> dict[str, Any]:
    """IT's station layer; the TURN server is a STUN responder (the health check asks it)."""
    return {**LAYER, "ice_servers": [{**TURN, "urls": [f"turn:127.0.0.1:{turn_port}"]}]}


@contextlib.asynccontextmanager
async def stun_responder() -> AsyncIterator[int]:
    """A STUN responder on 127.0.0.1; its UDP port."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(StunResponder, local_addr=("127.0.0.1", 0))
    try:
        yield int(transport.get_extra_info("sockname")[1])
    finally:
        transport.close()


TURN: dict[str, Any] = {"urls": [], "username": "ks", "credential": TURN_SECRET}
LAYER: dict[str, Any] = {
    "language": "en",
    "ice_relay_only": True,
    "timeouts": {"idle_lock_seconds": 45, "call_connect_seconds": 25},
    "retention": {"purge_after_hours": 1, "undocumented_alert_days": 3},
    "eoj": {
        "fhir_base_url": FHIR_URL,
        "token_url": TOKEN_URL,
        "client_id": "kontaktstation",
        "client_secret": CLIENT_SECRET,
        "care_home_sor": "123456789012",
        "allow_insecure_loopback": True,
    },
}


async def test_signed_configuration_takes_effect_in_stationd(
    tmp_path: Path, data_dir: Path, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        running_hub(tmp_path / "hub") as hub,
        stun_responder() as turn_port,
        stun_responder() as stun_port,
    ):
        LAYER = layer(turn_port)
        admin = open_provisioning(hub.settings, SystemClock(), signer=it_key(hub.settings))
        await admin.start()
        await admin.set_layer("care_home", "solhaven", {"care_home": {"name": "Solhaven"}}, "it")
        try:
            async with station(data_dir, hub.base_url) as st:
                daemon = st.daemon
                agent = daemon.provisioning
                port = daemon.provisioning_port
                assert agent is not None and isinstance(port, DaemonStationPort)
                await until(lambda: agent.status == "pending")
                view = (await st.http.get("/v1/enrollment")).json()
                await admin.approve(view["code"], "solhaven", "Stue 1", "it")
                agent.wake()
                await until(lambda: agent.config_store.version)
                await port.settled()
                station_id = agent.identity.station_id

                # The defaults before IT says otherwise.
                assert (await st.http.get("/v1/settings")).json() == {"language": "da"}
                assert daemon.calls.next_config.ice_servers == ()
                old = await seed_documented(st, timedelta(hours=2))
                recent = await seed_documented(st, timedelta(minutes=20))
                # A purge pass at the retention in force (24 h) keeps both.
                purged = await daemon.service.db(
                    daemon.exports.purge_documented,
                    daemon.service.store,
                    datetime.now(UTC),
                    daemon.exports.retention,
                )
                assert purged == 0 and daemon.exports.retention == timedelta(hours=24)
                assert daemon.service.undocumented_after == timedelta(days=1)
                assert {old, recent} <= await consultation_ids(st)
                assert daemon.exports.config is None

                await push(daemon, admin, station_id, LAYER)

                # 1. ICE servers and relay-only for the next call.
                nxt = daemon.calls.next_config
                assert ice_urls(nxt) == [(f"turn:127.0.0.1:{turn_port}",)]
                assert nxt.ice_servers[0].credential.get_secret_value() == TURN_SECRET
                assert nxt.relay_only is True and nxt.language == "en"
                assert nxt.connect_timeout_seconds == 25
                assert daemon.calls.engine.config == nxt  # no call ran: in force now
                # 2. The idle timeout.
                assert daemon.service.session.idle_timeout == timedelta(seconds=45)
                await st.unlock()
                remaining = (await st.state())["idle_remaining_seconds"]
                assert remaining is not None and 0 < remaining <= 45
                # 3. Retention: the consultation documented 2 h ago goes, the recent one stays.
                await until(lambda: old_gone(st, old))
                assert recent in await consultation_ids(st)
                assert daemon.exports.retention == timedelta(hours=1)
                # ... and when a consultation without a note counts for IT.
                assert daemon.service.undocumented_after == timedelta(days=3)
                # 4. Language for the UIs.
                assert (await st.http.get("/v1/settings")).json() == {"language": "en"}
                assert i18n.current_language() == "en"  # stationd's own texts too
                monkeypatch.delenv("KONTAKTSTATION_LANG", raising=False)
                monkeypatch.setattr(i18n, "_language", None)
                adopted = await asyncio.to_thread(adopt_station_language, daemon.config.socket_path)
                assert adopted == "en" and i18n.current_language() == "en"
                monkeypatch.setenv("KONTAKTSTATION_LANG", "da")
                monkeypatch.setattr(i18n, "_language", None)
                assert (
                    await asyncio.to_thread(adopt_station_language, daemon.config.socket_path)
                    is None
                )
                assert i18n.current_language() == "da"
                # 5. The export configuration: the file (0600) and the service.
                path = data_dir / EXPORT_CONFIG_FILENAME
                assert stat.S_IMODE(path.stat().st_mode) == 0o600
                on_disk = load_export_config(path)
                assert on_disk is not None and on_disk.fhir_base_url == FHIR_URL
                assert on_disk.client_secret.get_secret_value() == CLIENT_SECRET
                assert on_disk.care_home.name == "Solhaven"
                assert daemon.exports.config == on_disk
                assert daemon.exports.delivery_enabled
                worker = daemon.exports.worker
                assert worker is not None and worker.config.token_url == TOKEN_URL

                # A configuration during a call: the running call keeps its own.
                await push(daemon, admin, station_id, {**LAYER, "ice_relay_only": False})
                before = daemon.calls.engine.config
                assert before.relay_only is False
                await st.book_and_check()
                await st.start_call()
                assert daemon.calls.engine.active
                during = {
                    **LAYER,
                    "ice_servers": [{"urls": [f"stun:127.0.0.1:{stun_port}"]}],
                    "ice_relay_only": False,
                    "language": "da",
                }
                await push(daemon, admin, station_id, during)
                assert daemon.calls.engine.config == before  # untouched
                assert ice_urls(daemon.calls.next_config) == [(f"stun:127.0.0.1:{stun_port}",)]
                assert daemon.calls.next_config.language == "da"
                ended = await st.http.post("/v1/call/end", headers=st.auth)
                assert ended.status_code in (200, 202), ended.text
                await until(lambda: not daemon.calls.engine.active)
                # The next call starts with it.
                await until(lambda: back_to_staff(st))
                again = await st.http.post(
                    "/v1/session/begin-check",
                    headers=st.auth,
                    json={"appointment_id": st.consultation_id},
                )
                assert again.status_code == 200, again.text
                await st.start_call()
                assert ice_urls(daemon.calls.engine.config) == [(f"stun:127.0.0.1:{stun_port}",)]
                await st.http.post("/v1/call/end", headers=st.auth)
                await until(lambda: not daemon.calls.engine.active)

                # A refused export section is not half-applied: the file and service keep
                # the last good endpoint (the hub refuses it before it is even signed).
                with pytest.raises(Exception, match="eoj"):
                    await admin.set_layer(
                        "station",
                        station_id,
                        {**LAYER, "eoj": {**LAYER["eoj"], "allow_insecure_loopback": False}},
                        "it",
                    )
                with pytest.raises(Exception, match="eoj"):
                    await admin.set_layer(
                        "station", station_id, {**LAYER, "eoj": {**LAYER["eoj"], "x": 1}}, "it"
                    )
                assert json.loads(path.read_text())["fhir_base_url"] == FHIR_URL
        finally:
            await admin.close()
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert TURN_SECRET not in logged
    assert CLIENT_SECRET not in logged


async def old_gone(st: StationD, cid: str) -> bool:
    return cid not in await consultation_ids(st)


async def back_to_staff(st: StationD) -> bool:
    state = await st.state()
    return bool(state["state"] == "staff")

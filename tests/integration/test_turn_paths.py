"""Calls through firewalls: TURN over UDP, TCP and TLS on 443, chosen by what gets through.

coturn runs with a test CA's certificate (made at test time), listening on UDP and TCP 3478
and TLS 443. The station trusts the CA as it trusts the municipality's in production: through
OpenSSL's default store (``SSL_CERT_FILE`` in stationd's environment here,
``update-ca-certificates`` on the Pi); verification is never switched off.

* :func:`test_tls_path_needs_the_ca_in_the_trust_store`: the allocation over TLS works with
  the CA trusted and fails without it (so the other tests' TLS path is a verified one).
* :func:`test_pre_call_check_names_the_path`: a real stationd in a namespace of its own behind
  a firewall (``turn_tls.Firewall``), the staff UI's pre-call screen against its socket: all
  open → "UDP"; UDP blocked → "TCP" (TCP and TLS work); only 443 → "TLS 443"; every TURN
  path blocked → "ingen", in Danish.
* :func:`test_call_through_turn_tls_on_443_when_udp_is_blocked`: the same station, a
  firewall that lets only TCP 443 (and the hub) through, real Chromium as the GP: the call
  connects through TURN over TLS on 443 by itself, media flows both ways, and the pair
  stationd reports is a relay over TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from station.call.ice import IceServerConfig
from station.call.probe import probe_turn_paths, probe_url
from station.core.clock import SystemClock
from station.core.ids import new_id
from station.core.model import Resident, WithoutCpr
from station.i18n import set_language
from station.keys.records import ConsultationKey, seal_entry
from station.storage.store import BlindStore

from .call_harness import wait_for
from .chromium import chromium
from .daemon_harness import CLINIC, STAFF_NUMBER, STAFF_PIN, enrol, uds_client
from .netns import delegated_to_loopback_namespace
from .test_call_network_loss import (
    FRAMES_DECODED_JS,
    HUB_ADDRESS,
    StationNetns,
    hub_on,
    stationd_in,
)
from .turn_tls import TLS_PORT, TURN_PORT, Firewall, TlsCoturn, running_coturn_tls

pytestmark = [pytest.mark.turn]


# --------------------------------------------------------------------------- trust


def test_tls_path_needs_the_ca_in_the_trust_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def run() -> None:
        async with running_coturn_tls(tmp_path, "127.0.0.1") as turn:
            server = turn.ice_server()
            # Not trusted: OpenSSL's default store does not hold the test CA.
            monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "nothing.pem"))
            untrusted = await probe_turn_paths([server], 3.0)
            # The call engine's probe before each attempt does the handshake too.
            engine_untrusted = await probe_url(turn.urls[2], 1.0)
            # Trusted, the way the station trusts the municipality's CA.
            monkeypatch.setenv("SSL_CERT_FILE", str(turn.ca.ca_pem))
            trusted = await probe_turn_paths([server], 3.0)
            engine_trusted = await probe_url(turn.urls[2], 1.0)
            wrong = await probe_turn_paths(
                [IceServerConfig(urls=turn.urls, username="station", credential="wrong")], 3.0
            )
        assert [(p.label, p.ok) for p in trusted] == [("UDP", True), ("TCP", True),
                                                       ("TLS 443", True)]  # fmt: skip
        assert [(p.label, p.ok) for p in untrusted] == [("UDP", True), ("TCP", True),
                                                         ("TLS 443", False)]  # fmt: skip
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted[2].detail, untrusted[2]
        assert engine_trusted.reachable, engine_trusted
        assert not engine_untrusted.reachable, engine_untrusted
        assert "CERTIFICATE_VERIFY_FAILED" in engine_untrusted.detail, engine_untrusted
        # A wrong password is no path either (the allocation is authenticated).
        assert [p.ok for p in wrong] == [False, False, False]

    asyncio.run(run())


def test_a_configuration_for_udp_blocking_firewalls_passes_the_health_check(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The health check a new configuration must pass (else it is rolled back) accepts an
    entry whose UDP URL gets no answer when its TCP or TLS URL does: exactly the stations
    behind a UDP-dropping firewall are the ones that need such an entry."""
    if delegated_to_loopback_namespace(request):
        return
    import socket

    from provisioning.checks import config_health_check, turn_reachable
    from provisioning.schema import StationConfig

    def config(*urls: str) -> StationConfig:
        return StationConfig.model_validate(
            {
                "care_home": {"id": "home-1", "name": "Testhjemmet"},  # i18n: data
                "station_name": "Station 1",
                "ice_servers": [{"urls": list(urls), "username": "station", "credential": "x"}],
            }
        )

    async def run() -> None:
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a UDP port that drops all
        silent.bind(("127.0.0.1", 0))
        dropped = f"turn:127.0.0.1:{silent.getsockname()[1]}"
        try:
            async with running_coturn_tls(tmp_path, "127.0.0.1") as turn:
                tcp, tls = turn.urls[1], turn.urls[2]
                mixed = config(dropped, tcp, tls)
                assert await turn_reachable(mixed, within=1.0) is True
                assert (await config_health_check(mixed)).ok
                closed = f"turn:127.0.0.1:{free_tcp_port()}?transport=tcp"
                dead = config(dropped, closed)
                assert await turn_reachable(dead, within=1.0) is False
                assert not (await config_health_check(dead)).ok
        finally:
            silent.close()

    asyncio.run(run())


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (now)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------- the station


@dataclass
class Site:
    """The station's namespace behind its firewall, coturn, the hub, a running stationd."""

    netns: StationNetns
    firewall: Firewall
    turn: TlsCoturn
    socket_path: Path
    data_dir: Path
    consultation_id: str


@contextlib.asynccontextmanager
async def site(tmp_path: Path, block: str) -> AsyncIterator[Site]:
    """Everything for one test; ``block``: ``none``, ``udp``, ``all_but_443`` or ``turn``."""
    netns = StationNetns()
    try:
        firewall = Firewall("vh", "vs", netns.inside)
        if block in ("udp", "all_but_443", "turn"):
            firewall.block_udp()
        if block in ("all_but_443", "turn"):
            firewall.block_tcp_port(TURN_PORT)
        if block == "turn":
            firewall.block_tcp_port(TLS_PORT)
        data_dir = tmp_path / "station" / "data"
        cid = prepare_station_data(data_dir)
        async with (
            running_coturn_tls(tmp_path / "turn", HUB_ADDRESS) as turn,
            hub_on(HUB_ADDRESS, tmp_path / "hub") as hub_url,
            stationd_in(
                netns,
                data_dir,
                hub_url,
                {
                    "KONTAKTSTATION_ICE_SERVERS": turn.ice_servers_json(),
                    # The test CA as the trust store (the Pi: the OS store with the
                    # municipality's CA added by update-ca-certificates).
                    "SSL_CERT_FILE": str(turn.ca.ca_pem),
                },
            ) as socket_path,
        ):
            yield Site(netns, firewall, turn, socket_path, data_dir, cid)
    finally:
        netns.close()


def prepare_station_data(data_dir: Path) -> str:
    """The keyring, the clinic and a consultation for now with one resident queued, sealed
    as the staff UI seals it (so the UI can open it); the consultation's id."""
    data_dir.mkdir(parents=True)
    os.chmod(data_dir, 0o700)
    vault = enrol(data_dir)
    store = BlindStore.open(data_dir, clock=SystemClock())
    try:
        store.put_clinic(CLINIC)
        cid = new_id()
        now = datetime.now(UTC)
        store.create_consultation(
            consultation_id=cid,
            clinic_id=CLINIC.id,
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(minutes=30),
            consultation_type="assisted_consultation",
        )
        key, wrapped = ConsultationKey.new(vault, cid)
        store.put_consultation_key(cid, wrapped)
        resident = Resident.new(WithoutCpr("Beboer Test", date(1940, 1, 1), "1"))  # i18n: data
        store.add_entry(
            entry_id=resident.id,
            consultation_id=cid,
            sealed=seal_entry(key, resident.id, resident, None),
        )
    finally:
        store.close()
    return cid


async def unlock_http(http: httpx.AsyncClient) -> dict[str, str]:
    """Unlock over the API; the staff token's header."""
    response = await http.post("/v1/unlock", json={"staff_number": STAFF_NUMBER, "pin": STAFF_PIN})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


# --------------------------------------------------------------------------- pre-call check

CASES = {
    # firewall: (the TURN line, each path's result)
    "none": ("UDP", [("UDP", True), ("TCP", True), ("TLS 443", True)]),
    "udp": ("TCP", [("UDP", False), ("TCP", True), ("TLS 443", True)]),
    "all_but_443": ("TLS 443", [("UDP", False), ("TCP", False), ("TLS 443", True)]),
    "turn": ("ingen", [("UDP", False), ("TCP", False), ("TLS 443", False)]),
}


@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize("block", list(CASES))
def test_pre_call_check_names_the_path(
    request: pytest.FixtureRequest, tmp_path: Path, block: str
) -> None:
    if delegated_to_loopback_namespace(request):
        return
    from tests.tui.test_staff_support import SIZE, press_leaving, unlock
    from tests.tui.test_staff_support import wait_for as ui_wait_for
    from tui.staff.main import create_app
    from tui.staff.screens.precheck import PreCheckScreen

    value, paths = CASES[block]

    async def run() -> None:
        set_language("da")
        async with site(tmp_path, block) as s:
            http = uds_client(s.socket_path, timeout=30.0)
            try:
                app = create_app(s.socket_path, live_interval=0)
                async with app.run_test(size=SIZE) as pilot:
                    await unlock(pilot)
                    started = time.monotonic()
                    await press_leaving(pilot, "c")
                    await ui_wait_for(pilot, lambda: isinstance(app.screen, PreCheckScreen))
                    screen = app.screen
                    assert isinstance(screen, PreCheckScreen)
                    await ui_wait_for(
                        pilot, lambda: screen.results.get("turn", (None, ""))[0] is not None
                    )
                    took = time.monotonic() - started
                    await pilot.pause(0.1)
                    listing = str(screen.query_one("#check-list").render())
                    token = app.station.client.token  # type: ignore[attr-defined]
                    answer = (
                        await http.get(
                            "/v1/precheck/network", headers={"Authorization": f"Bearer {token}"}
                        )
                    ).json()
            finally:
                await http.aclose()
        print(f"MEASURED block={block} precheck_turn_line_s={took:.2f}")
        print(listing)
        ok = value != "ingen"
        mark = "✔" if ok else "✘"
        assert f"{mark}  Videoserver (TURN): {value}" in listing, listing
        assert screen.results["turn"][0] is ok
        shown = "   " + "".join(f"{label} {'✔' if w else '✘'}  " for label, w in paths)
        assert shown.rstrip() in listing, listing
        if not ok:
            assert "Ingen vej til videoserveren (TURN) virker" in listing, listing
        assert screen.results["hub"][0] is True  # the hub's port is not blocked
        assert [(p["label"], p["ok"]) for p in answer["turn_paths"]] == paths, answer
        assert answer["turn_path"] == {"UDP": "udp", "TCP": "tcp", "TLS 443": "tls"}.get(
            value, "none"
        )

    asyncio.run(run())


# --------------------------------------------------------------------------- the call

STATS_JS = """
async () => {
  const pc = window.kontaktGp.peerConnection();
  if (!pc) return null;
  const stats = await pc.getStats();
  let pair = null, audio = 0, video = 0;
  stats.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) {
      pair = stats.get(s.selectedCandidatePairId);
    }
    if (s.type === "inbound-rtp" && s.kind === "audio") audio += s.packetsReceived || 0;
    if (s.type === "inbound-rtp" && s.kind === "video") video += s.framesDecoded || 0;
  });
  const remote = pair ? stats.get(pair.remoteCandidateId) : null;
  return {remoteType: remote ? remote.candidateType : null, audio, video};
}
"""


@pytest.mark.browser
@pytest.mark.network
@pytest.mark.slow
def test_call_through_turn_tls_on_443_when_udp_is_blocked(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    async def run() -> None:
        expect.set_options(timeout=30_000)
        async with (
            site(tmp_path, "all_but_443") as s,
            chromium(tmp_path / "profile") as context,
        ):
            http = uds_client(s.socket_path, timeout=30.0)
            try:
                await scenario(http, context, s)
            finally:
                await http.aclose()
        log = s.turn.log.read_text(errors="replace")
        # coturn's own word: an allocation came over TLS on 443, and media went through it.
        tls_sessions = {
            line.split(":")[2].split()[1]
            for line in log.splitlines()
            if "new, realm=" in line and "method=TLSv1" in line
        }
        assert tls_sessions, log[-3000:]
        relayed = [
            line
            for line in log.splitlines()
            if "peer usage:" in line and line.split(":")[2].split()[1] in tls_sessions
        ]
        assert any(int(line.split("rp=")[1].split(",")[0]) > 20 for line in relayed), relayed

    async def scenario(http: httpx.AsyncClient, context: Any, s: Site) -> None:
        auth = await unlock_http(http)
        cid = s.consultation_id
        response = await http.post(
            "/v1/session/begin-check", headers=auth, json={"appointment_id": cid}
        )
        assert response.status_code == 200, response.text
        started = time.monotonic()
        response = await http.post(
            "/v1/call/start",
            headers=auth,
            json={"consultation_id": cid, "residents": [{"display_name": "Beboer"}]},
        )
        assert response.status_code == 202, response.text
        page = await context.new_page()
        await page.goto(response.json()["gp_url"])
        admitted = time.monotonic()
        await page.get_by_role("button", name="Lad komme ind").click()
        await page.wait_for_function(f"async () => (await ({FRAMES_DECODED_JS})()) > 0")

        async def connected() -> dict[str, Any] | None:
            call = dict((await http.get("/v1/call")).json())
            return call if call["phase"] == "connected" else None

        try:
            call = await wait_for(connected, timeout=30, what="connected")
        except TimeoutError:
            raise AssertionError(f"not connected: {(await http.get('/v1/call')).json()}") from None
        connected_after = time.monotonic() - admitted
        assert call["selected_pair"] == {
            "local": "relay",
            "remote": call["selected_pair"]["remote"],
            "relay_protocol": "tls",
        }, call["selected_pair"]

        async def media_both_ways() -> dict[str, Any] | None:
            stats = await page.evaluate(STATS_JS)
            media = (await http.get("/v1/call")).json()["media"]
            if (
                stats
                and stats["video"] > 10
                and stats["audio"] > 20
                and media["remote_video_frames"] > 10
                and media["remote_audio_frames"] > 20
            ):
                return {"gp": stats, "station": media}
            return None

        both = await wait_for(media_both_ways, timeout=30, what="media both ways")
        # The GP's browser sees the station as a relay candidate (coturn's address).
        assert both["gp"]["remoteType"] == "relay", both
        print(
            f"MEASURED path=tls443 start_to_admit_s={admitted - started:.2f} "
            f"admit_to_connected_s={connected_after:.2f} pair={call['selected_pair']} "
            f"gp_video_frames={both['gp']['video']} station_video_frames="
            f"{both['station']['remote_video_frames']}"
        )
        events = (await http.get("/v1/call")).json()
        assert events["phase"] == "connected"
        response = await http.post("/v1/call/end", headers=auth)
        assert response.status_code == 200

    asyncio.run(run())

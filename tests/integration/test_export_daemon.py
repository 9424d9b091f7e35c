"""stationd's export endpoints: settings, enqueue (blind), progress, delivery while locked."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from station.export import seal_export
from tests.integration.daemon_harness import (
    CLINIC,
    enrol,
    running_daemon,
    short_socket_dir,
)
from tests.integration.fhir_receiver import FhirReceiver, running_receiver
from tests.integration.test_export_crash import write_config
from tests.integration.test_export_delivery import NAME, NOTE, communication_of, payload


async def _consultation(running: object, cid: str = "cons-cccc1") -> None:
    service = running.daemon.service  # type: ignore[attr-defined]
    await running.put_clinic()  # type: ignore[attr-defined]
    start = datetime.now(UTC)
    await service.db(
        service.store.create_consultation,
        consultation_id=cid,
        clinic_id=CLINIC.id,
        starts_at=start,
        ends_at=start + timedelta(minutes=15),
        consultation_type="assisted_consultation",
    )


async def test_summary_mode_without_endpoint(data_dir: Path) -> None:
    enrol(data_dir)
    with short_socket_dir() as sock_dir:
        async with running_daemon(data_dir, sock_dir) as running:
            await _consultation(running)
            token = await running.unlock()
            auth = {"Authorization": f"Bearer {token}"}
            settings = await running.http.get("/v1/exports/settings", headers=auth)
            assert settings.status_code == 200
            body = settings.json()
            assert body["delivery"] == "summary"
            key = base64.b64decode(body["outbox_public_key"])
            assert len(key) == 32
            p = payload()
            refused = await running.http.post(
                "/v1/exports",
                headers=auth,
                json={
                    "export_id": p.export_id,
                    "consultation_id": p.consultation_id,
                    "entry_id": p.entry_id,
                    "sealed": base64.b64encode(seal_export(p, key)).decode(),
                },
            )
            assert refused.status_code == 409
            assert refused.json()["code"] == "export_not_configured"
            # Staff-only: without a token, 401.
            assert (await running.http.get("/v1/exports/settings")).status_code == 401


@pytest.mark.slow
async def test_enqueue_then_delivered_while_locked(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    enrol(data_dir)
    async with running_receiver(FhirReceiver()) as rr:
        write_config(data_dir, rr)
        rr.receiver.fail_next("503")  # the first attempt fails: the retry runs while locked
        with short_socket_dir() as sock_dir:
            async with running_daemon(data_dir, sock_dir) as running:
                await _consultation(running)
                token = await running.unlock()
                auth = {"Authorization": f"Bearer {token}"}
                settings = (await running.http.get("/v1/exports/settings", headers=auth)).json()
                assert settings["delivery"] == "fhir"
                key = base64.b64decode(settings["outbox_public_key"])
                p = payload()
                request = {
                    "export_id": p.export_id,
                    "consultation_id": p.consultation_id,
                    "entry_id": p.entry_id,
                    "sealed": base64.b64encode(seal_export(p, key)).decode(),
                }
                first = await running.http.post("/v1/exports", headers=auth, json=request)
                assert first.status_code == 201, first.text
                assert first.json()["state"] == "pending"
                again = await running.http.post("/v1/exports", headers=auth, json=request)
                assert again.status_code == 200
                unknown = dict(request, consultation_id="cons-unknown")
                assert (
                    await running.http.post("/v1/exports", headers=auth, json=unknown)
                ).status_code == 404

                async with asyncio.timeout(60):
                    while not rr.receiver.log:
                        await asyncio.sleep(0.05)
                assert rr.receiver.log == ["503"]
                await running.http.post("/v1/lock", json={})
                assert running.daemon.service.session.is_locked
                # Back-off is ~5 s; the worker delivers with the station locked.
                async with asyncio.timeout(60):
                    while not communication_of(rr, p.export_id):
                        await asyncio.sleep(0.1)
                token = await running.unlock()
                auth = {"Authorization": f"Bearer {token}"}
                # The receiver has the Communication before stationd has its answer and marks
                # the export delivered: wait for that too (a few ms, more on a busy machine).
                async with asyncio.timeout(30):
                    while True:
                        listed = await running.http.get(
                            f"/v1/consultations/{p.consultation_id}/exports", headers=auth
                        )
                        (item,) = listed.json()["items"]
                        if item["state"] != "pending":
                            break
                        await asyncio.sleep(0.05)
                assert item["state"] == "delivered"
                assert item["attempts"] == 2
                assert item["last_outcome"] == "delivered"
                assert "sealed" not in item
    assert len(communication_of(rr, p.export_id)) == 1
    for needle in (NAME, NOTE, "0102301234"):
        assert needle not in caplog.text

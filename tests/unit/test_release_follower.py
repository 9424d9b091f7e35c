"""stationd's side of an update (``provisioning/updates.py``): when it fetches, when it hands
over, when it asks again. The fetch itself runs against the real hub in
``tests/integration/test_release_rollout.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from provisioning.schema import SoftwareRelease
from provisioning.updates import REQUEST_FILE, ReleaseFollower, UpdateStatus

WANTED = SoftwareRelease(version="2.0", sha256="ab" * 32)


class NoHub:
    """A hub the follower must not reach in these steps."""

    async def download_release(self, *_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("fetched while it should not have been")


def _follower(tmp_path: Path) -> ReleaseFollower:
    return ReleaseFollower(tmp_path / "updates", tmp_path / "status.json", "1.0")


async def test_nothing_is_fetched_or_handed_over_during_a_call_or_a_staff_session(
    tmp_path: Path,
) -> None:
    follower = _follower(tmp_path)
    await follower.follow(NoHub(), WANTED, None, config_version=3, busy=True)  # type: ignore[arg-type]
    assert follower.report is not None and follower.report.state == "waiting"
    assert not (tmp_path / "updates" / REQUEST_FILE).exists()


async def test_a_failed_release_is_asked_for_again_only_by_a_newer_configuration(
    tmp_path: Path,
) -> None:
    follower = _follower(tmp_path)
    status = UpdateStatus(release=WANTED, outcome="rolled_back", reason="health_check",
                          config_version=3)  # fmt: skip
    (tmp_path / "status.json").write_text(status.model_dump_json())

    await follower.follow(NoHub(), WANTED, None, config_version=3, busy=False)  # type: ignore[arg-type]
    assert follower.report is not None and follower.report.state == "rolled_back"

    fetched: list[str] = []

    class Hub:
        async def download_release(self, sha256: str, *_args: Any, **_kwargs: Any) -> None:
            fetched.append(sha256)

    # IT names it again in configuration 4: fetched again (here an empty answer: refused).
    await follower.follow(Hub(), WANTED, None, config_version=4, busy=False)  # type: ignore[arg-type]
    assert fetched == [WANTED.sha256]
    assert follower.report is not None and follower.report.reason == "release_invalid"


async def test_a_full_disk_is_reported_not_raised(tmp_path: Path) -> None:
    """The agent's loop (heartbeats, remote locks, wipes) must survive it."""
    (tmp_path / "updates").write_text("a file where the spool directory should be")
    follower = _follower(tmp_path)

    class Hub:
        async def download_release(self, *_args: Any, **_kwargs: Any) -> None:
            return None

    await follower.follow(Hub(), WANTED, None, config_version=3, busy=False)  # type: ignore[arg-type]
    assert follower.report is not None and follower.report.reason == "disk_error"

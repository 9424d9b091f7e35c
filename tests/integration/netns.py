"""Run a test inside a fresh network namespace that has only loopback.

WebRTC tests must send traffic to 127.0.0.1 only. Rather than trusting every peer to pick the
right address, the test runs where no other address exists: ``unshare --net`` gives a new
namespace with just ``lo`` (brought up here). The guard re-runs the very same test (pytest,
same node id) inside it, so assertions, fixtures and output look as usual:

    @pytest.mark.browser
    def test_something(request: pytest.FixtureRequest) -> None:
        if delegated_to_loopback_namespace(request):
            return  # it ran, and passed, inside the namespace
        asyncio.run(scenario())  # only ever runs inside

As root (here and in CI) plain ``unshare --net`` is used; otherwise an unprivileged user
namespace maps the user to root (where the kernel allows it), else the test is skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys

import pytest

__all__ = ["assert_loopback_only", "delegated_to_loopback_namespace", "inside_loopback_namespace"]

ENV_FLAG = "KONTAKTSTATION_TEST_IN_LOOPBACK_NETNS"
_INNER_TIMEOUT_S = 240


def _interfaces() -> list[str]:
    return sorted(name for _, name in socket.if_nameindex())


def inside_loopback_namespace() -> bool:
    """Whether this process runs where only ``lo`` exists.

    Either :func:`delegated_to_loopback_namespace` started it, or the whole test run is
    already inside such a namespace (``scripts/test`` runs pytest in one as root), in which
    case nothing needs re-running.
    """
    return os.environ.get(ENV_FLAG) == "1" or _interfaces() == ["lo"]


def assert_loopback_only() -> None:
    """Fail unless the only network interface here is ``lo``."""
    names = _interfaces()
    assert names == ["lo"], f"expected a loopback-only namespace, found interfaces {names}"


def _unshare_prefix() -> list[str]:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare (util-linux) and ip (iproute2) for a loopback-only namespace")
    prefix = ["unshare", "--net"]
    if os.geteuid() != 0:
        prefix[1:1] = ["--user", "--map-root-user"]
    probe = subprocess.run([*prefix, "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        if os.geteuid() == 0:
            pytest.fail(f"unshare --net failed as root: {probe.stderr.decode(errors='replace')}")
        pytest.skip("cannot create a network namespace (needs root or user namespaces)")
    return prefix


def delegated_to_loopback_namespace(request: pytest.FixtureRequest) -> bool:
    """Re-run the calling test inside a loopback-only namespace; True when that happened.

    Inside the namespace this checks that only ``lo`` exists and returns False, so the test
    body runs. Outside it runs ``pytest <node id>`` in the namespace, fails with the inner
    output unless exactly that test passed (a skip inside is a skip outside), and returns True.
    """
    if inside_loopback_namespace():
        assert_loopback_only()
        return False
    prefix = _unshare_prefix()
    inner = [
        sys.executable,
        "-m",
        "pytest",
        request.node.nodeid,
        "-q",
        "--no-header",
        "-p",
        "no:cacheprovider",
        "-rs",
        "-s",  # the inner test's prints (e.g. measured figures) reach the outer output
    ]
    command = [*prefix, "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *inner]
    env = {**os.environ, ENV_FLAG: "1"}
    completed = subprocess.run(
        command,
        cwd=request.config.rootpath,
        env=env,
        capture_output=True,
        text=True,
        timeout=_INNER_TIMEOUT_S,
        check=False,
    )
    output = completed.stdout + completed.stderr
    # Shown by pytest with the outer test's captured output (-rP, or on failure).
    print(output)
    if completed.returncode == 0 and re.search(r"\b1 passed\b", output):
        return True
    skipped = re.search(r"SKIPPED \[\d+\] [^:]+:\d+: (.*)", output)
    if completed.returncode == 0 and skipped:
        pytest.skip(f"inside the namespace: {skipped.group(1)}")
    pytest.fail(
        f"the test failed inside the loopback-only namespace (exit {completed.returncode}):\n"
        + output[-12000:],
        pytrace=False,
    )

"""A shape check for the SDP the hub relays, so garbage never reaches a peer.

The hub does not interpret SDP; it only refuses what cannot be a WebRTC offer or answer of
sane size: RFC 8866 line syntax, a session section, 1-16 media sections, ICE credentials and
a DTLS fingerprint (WebRTC needs both), and the DTLS role that tells an offer (``actpass``,
RFC 8842) from an answer (``active``/``passive``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from hub.errors import InvalidSessionDescription

__all__ = ["SdpSummary", "validate_candidate", "validate_session_description"]

_LINE = re.compile(r"[a-z]=[^\x00-\x08\x0a-\x1f\x7f]*")
_MEDIA = re.compile(r"m=(audio|video|application|text|message) \d+(/\d+)? [A-Za-z0-9/]+( \S+)+")
_CANDIDATE = re.compile(
    r"candidate:\S{1,32} \d{1,3} (?i:udp|tcp) \d{1,10} \S{1,255} \d{1,5} "
    r"typ (host|srflx|prflx|relay)( [!-~]+)*"
)
_MAX_LINES = 2000
_MAX_LINE_CHARS = 4096
_MAX_MEDIA = 16


@dataclass(frozen=True, slots=True)
class SdpSummary:
    """What the check learned: enough to compare an answer with its offer."""

    media_kinds: tuple[str, ...]


def validate_session_description(
    sdp: str, expected_type: Literal["offer", "answer"], *, max_bytes: int
) -> SdpSummary:
    """Raise :class:`InvalidSessionDescription` unless ``sdp`` is a sane ``expected_type``."""
    if len(sdp.encode("utf-8", "surrogatepass")) > max_bytes:
        raise InvalidSessionDescription(f"SDP larger than {max_bytes} bytes")
    lines = sdp.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or lines[0] != "v=0":
        raise InvalidSessionDescription("SDP must start with v=0")
    if len(lines) > _MAX_LINES:
        raise InvalidSessionDescription("SDP has too many lines")
    session: list[str] = []
    media: list[list[str]] = []
    for number, line in enumerate(lines, start=1):
        if len(line) > _MAX_LINE_CHARS or not _LINE.fullmatch(line):
            # The line number helps IT; the line itself is not echoed (it is caller data).
            raise InvalidSessionDescription(f"SDP line {number} is not a valid <type>=<value> line")
        if line.startswith("m="):
            if not _MEDIA.fullmatch(line):
                raise InvalidSessionDescription(f"SDP line {number} is not a valid media line")
            media.append([line])
        elif media:
            media[-1].append(line)
        else:
            session.append(line)
    for required in ("o=", "s=", "t="):
        if sum(line.startswith(required) for line in session) != 1:
            raise InvalidSessionDescription(
                f"SDP session section needs exactly one {required} line"
            )
    if not 1 <= len(media) <= _MAX_MEDIA:
        raise InvalidSessionDescription(f"SDP needs 1 to {_MAX_MEDIA} media sections")

    def has(prefix: str, section: list[str]) -> bool:
        return any(line.startswith(prefix) for line in section) or any(
            line.startswith(prefix) for line in session
        )

    setups: set[str] = set()
    for section in media:
        if section[0].split(" ", 2)[1] == "0":
            continue  # a rejected media section carries no transport
        for prefix in ("a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:"):
            if not has(prefix, section):
                raise InvalidSessionDescription(f"SDP media section lacks {prefix.rstrip(':')}")
        setups.update(
            line.removeprefix("a=setup:")
            for line in section + session
            if line.startswith("a=setup:")
        )
    allowed = {"actpass"} if expected_type == "offer" else {"active", "passive"}
    if not setups or not setups <= allowed:
        raise InvalidSessionDescription(f"SDP DTLS role does not fit an {expected_type}")
    return SdpSummary(media_kinds=tuple(section[0][2:].split(" ", 1)[0] for section in media))


def validate_candidate(candidate: str) -> None:
    """Raise :class:`InvalidSessionDescription` unless ``candidate`` is an ICE candidate line.

    The empty string is allowed: it is the browser's end-of-candidates marker.
    """
    if candidate and not _CANDIDATE.fullmatch(candidate):
        raise InvalidSessionDescription("not an ICE candidate line")

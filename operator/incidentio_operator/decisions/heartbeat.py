"""Pure: whether the operator is healthy enough to ping its heartbeats, and the status a beat leaves (DESIGN.md §10).

Healthy means all three of: its watches deliver events, its work queue drains, and its last status write
went through. Each beat writes the destination's status, and that write comes back through the watch; so
a beat pings only when some watch event arrived since the previous beat, which an idle cluster satisfies
with that echo alone. A replica kopf's peering holds on standby receives no watch events, so it never
pings; the first beat only writes (no ping), so a standby that was briefly unpaused while the replicas
started cannot ping on the strength of its startup listing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Vitals:
    """What the operator knows of itself at a beat.

    ``watch_silence``: seconds since the last watch event (None: none yet); ``events_since_beat``: whether
    one arrived since this heartbeat's previous beat (None: this is its first beat); ``queue_depth``: keys
    waiting; ``handled_since``: keys handled since the previous beat; ``write_error``: why the last status
    write failed ('' when it went through).
    """

    watch_silence: float | None
    events_since_beat: bool | None
    queue_depth: int
    handled_since: int
    write_error: str = ""


@dataclass(frozen=True)
class Verdict:
    """Why not to ping ('' to ping), and whether this replica may write the heartbeat's status at all."""

    why_not: str
    may_write: bool


def judge(vitals: Vitals) -> Verdict:
    """Ping only when healthy. Without live watches nothing is written either: this may be a standby replica,
    whose writes would contradict the active one's."""
    if vitals.watch_silence is None:
        return Verdict("no watch event received yet: this replica is on standby or its watches never started", False)
    if vitals.events_since_beat is None:
        return Verdict("first beat: checking that the watches deliver this status write before the first ping", True)
    if vitals.write_error:
        # Written again, without a ping: once it goes through, its echo shows the watches live again.
        return Verdict(f"the last status write failed: {vitals.write_error}", True)
    if not vitals.events_since_beat:
        # Written all the same: a write that changed nothing (another replica's identical beat) has no echo,
        # and a replica that stopped writing would then never see one again in a quiet cluster.
        return Verdict(
            f"no watch event since the last beat ({vitals.watch_silence:.0f}s): the watches are down, "
            "or this replica is on standby",
            True,
        )
    if vitals.queue_depth > 0 and vitals.handled_since == 0:
        return Verdict(
            f"the work queue is not draining: {vitals.queue_depth} object(s) waiting, none handled since the last beat",
            True,
        )
    return Verdict("", True)


def heartbeat_status(
    config_id: str, checked_at: str, result: str, message: str, last_ping_at: str = ""
) -> dict[str, Any]:
    """``status.heartbeat``: result is Succeeded (pinged), Failed (the ping was refused or had no token) or Skipped."""
    status = {"alertSourceConfigId": config_id, "checkedAt": checked_at, "result": result, "message": message}
    if last_ping_at:
        status["lastPingAt"] = last_ping_at
    return status

"""The heartbeat end to end: pinged while healthy, lapsing when the watches are cut, one pinger in HA."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from incidentio_operator.standins.simulator import AlertSourceConfig, HeartbeatSettings
from tests.e2e import objects as o
from tests.harness import DEMO_KEY, Environment, assert_secret_nowhere, wait_for

DESTINATIONS = "incidentiodestinations"
NS = o.NS
HEARTBEAT_ID = "01GW2G3V0S59R238FAHPDS1R67"
TOKEN = "heartbeat-token-5c2e"
INTERVAL = 10
HA = Path(__file__).resolve().parents[2] / "manifests" / "ha"


def setup_heartbeat(env: Environment) -> None:
    env.sim.set_alert_source(
        AlertSourceConfig(HEARTBEAT_ID, "incidentio-operator", TOKEN, "heartbeat", HeartbeatSettings(INTERVAL, 2))
    )
    env.client.apply(o.namespace())
    env.client.apply(o.secret(DEMO_KEY))
    env.client.apply(o.secret(TOKEN, name="heartbeat", field="token"))
    body = o.destination(env.sim.url)
    body["spec"]["heartbeat"] = {
        "alertSourceConfigId": HEARTBEAT_ID,
        "tokenSecretRef": {"name": "heartbeat"},
        "interval": f"{INTERVAL}s",
    }
    env.client.apply(body)


def pings(env: Environment) -> int:
    return len(env.sim.heartbeat(HEARTBEAT_ID).pings)


def heartbeat_status(env: Environment) -> dict[str, Any]:
    return dict(env.status(DESTINATIONS, NS, "incidentio").get("heartbeat") or {})


def test_pings_while_healthy_and_lapses_within_two_intervals_of_the_watches_being_cut(env: Environment) -> None:
    env.start_operator()
    setup_heartbeat(env)
    wait_for(lambda: pings(env) >= 2, timeout=6 * INTERVAL, what="two pings")
    status = wait_for(lambda: (s := heartbeat_status(env)).get("lastPingAt") and s, what="heartbeat status")
    assert status["result"] == "Succeeded" and status["alertSourceConfigId"] == HEARTBEAT_ID
    assert not env.sim.heartbeat(HEARTBEAT_ID).missed

    # The watches go down and cannot come back: requests to list or watch are held, open streams cut.
    env.kube.hold_next(100_000, verb="watch")
    env.kube.hold_next(100_000, verb="list")
    env.kube.drop_watches()
    cut_at = time.monotonic()  # the simulator's clock
    state = wait_for(
        lambda: (h := env.sim.heartbeat(HEARTBEAT_ID)).missed and h, timeout=6 * INTERVAL, what="heartbeat missed"
    )
    last_ping = state.pings[-1]
    assert last_ping - cut_at < 2 * INTERVAL, "the pings stopped within two intervals of the cut"
    (alert,) = state.alerts
    assert alert.resolved_at is None
    assert "the watches are down" in env.operator_log

    env.kube.release_held()
    wait_for(lambda: env.sim.heartbeat(HEARTBEAT_ID).pings[-1] > last_ping or None, timeout=4 * INTERVAL, what="pings")
    wait_for(lambda: not env.sim.heartbeat(HEARTBEAT_ID).missed or None, what="heartbeat alert resolved")
    assert env.sim.heartbeat(HEARTBEAT_ID).alerts[0].resolved_at is not None


def test_a_stopped_operator_stops_pinging_and_a_wrong_token_says_so(env: Environment) -> None:
    operator = env.start_operator()
    setup_heartbeat(env)
    wait_for(lambda: pings(env) >= 1, timeout=3 * INTERVAL, what="a ping")
    operator.stop()
    wait_for(lambda: env.sim.heartbeat(HEARTBEAT_ID).missed or None, timeout=4 * INTERVAL, what="heartbeat missed")

    env.client.apply(o.secret("not-the-token", name="heartbeat", field="token"))
    before = pings(env)
    env.start_operator()
    status = wait_for(
        lambda: (s := heartbeat_status(env)).get("result") == "Failed" and s, timeout=3 * INTERVAL, what="failed"
    )
    assert "refused the heartbeat token (HTTP 401)" in status["message"]
    assert "spec.heartbeat.tokenSecretRef" in status["message"]
    assert pings(env) == before
    assert_secret_nowhere(env, TOKEN, "not-the-token")


def test_only_the_active_replica_pings(env: Environment) -> None:
    env.apply_file(HA / "peering-crds.yaml")
    env.apply_file(HA / "peering.yaml")
    peering = ("--peering", "incidentio-operator")
    env.start_operator(*peering, "--priority", "100")
    env.start_operator(*peering, "--priority", "50")
    setup_heartbeat(env)
    # kopf peering may hold the active replica paused for up to its keep-alive lifetime (60 s) at start.
    wait_for(lambda: pings(env) >= 3, timeout=16 * INTERVAL, what="three pings")
    times = env.sim.heartbeat(HEARTBEAT_ID).pings
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # Two pingers would ping about twice per interval: every gap would not be close to one interval.
    assert all(gap > INTERVAL * 0.6 for gap in gaps), gaps
    assert "this replica is on standby" in env.operator_log


def test_failing_status_writes_let_the_heartbeat_lapse_until_they_go_through_again(env: Environment) -> None:
    env.start_operator()
    setup_heartbeat(env)
    wait_for(lambda: pings(env) >= 1, timeout=6 * INTERVAL, what="a ping")
    # The API server refuses the next status writes of destinations: the heartbeat's own among them.
    env.kube.fail_next(3, status=500, verb="patch", resource=DESTINATIONS, subresource="status")
    state = wait_for(
        lambda: (h := env.sim.heartbeat(HEARTBEAT_ID)).missed and h, timeout=8 * INTERVAL, what="heartbeat missed"
    )
    last_ping = state.pings[-1]
    assert "the last status write failed" in env.operator_log
    wait_for(lambda: env.sim.heartbeat(HEARTBEAT_ID).pings[-1] > last_ping or None, timeout=6 * INTERVAL, what="pings")
    status = wait_for(lambda: (s := heartbeat_status(env)).get("result") == "Succeeded" and s, what="pinged again")
    assert status["message"] == f"pinged heartbeat {HEARTBEAT_ID}"


def test_a_work_queue_that_stops_draining_lets_the_heartbeat_lapse(env: Environment) -> None:
    env.start_operator("--concurrency", "2")
    setup_heartbeat(env)
    wait_for(lambda: pings(env) >= 1, timeout=6 * INTERVAL, what="a ping")
    # Both workers hang on a DataAlert write; the alerts behind them wait in the queue.
    env.kube.hold_next(2, verb="patch", resource="dataalerts")
    for number in range(5):
        env.client.apply(o.alert(f"table-{number}"))
    state = wait_for(
        lambda: (h := env.sim.heartbeat(HEARTBEAT_ID)).missed and h, timeout=8 * INTERVAL, what="heartbeat missed"
    )
    skipped = heartbeat_status(env)
    assert skipped["result"] == "Skipped" and "the work queue is not draining" in skipped["message"]
    env.kube.release_held()
    wait_for(lambda: env.sim.heartbeat(HEARTBEAT_ID).pings[-1] > state.pings[-1] or None, timeout=6 * INTERVAL)
    assert not env.sim.heartbeat(HEARTBEAT_ID).missed

"""Exactly once under faults: incident.io failing, hanging and rate limiting, the Kubernetes API misbehaving."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from incidentio_operator.standins.simulator import ApiKeyConfig, SimulatorConfig
from tests.e2e import objects as o
from tests.harness import (
    DEMO_KEY,
    FULL,
    FULL_ROLES,
    GROUP_VERSION,
    Books,
    Environment,
    assert_secret_nowhere,
    put_at_once,
    rate_in_paced_phase,
    scaled,
    set_state_at_once,
    wait_for,
)

DESTINATIONS, RULES, ALERTS = "incidentiodestinations", "alertrules", "dataalerts"
NS = o.NS
FAST = ("--delivery-retry-base", "0.5", "--test-retry-base", "0.5", "--sweep-interval", "2")
REQUEST_ID = re.compile(r"\(request_id [0-9a-f-]{36}\)")


@contextmanager
def bench(tmp_path: Path, **config: Any) -> Iterator[Environment]:
    keys = config.pop("keys", {DEMO_KEY: ApiKeyConfig(name="demo", roles=FULL_ROLES)})
    env = Environment(tmp_path, SimulatorConfig(keys=keys, **config))
    try:
        yield env
    finally:
        env.close()


def setup_team(env: Environment, key: str = DEMO_KEY, **destination: Any) -> None:
    env.client.apply(o.namespace())
    env.client.apply(o.secret(key))
    env.client.apply(o.destination(env.sim.url, **destination))
    env.client.apply(o.rule("breaking", ["incidentio"]))
    env.wait_ready(DESTINATIONS, NS, "incidentio", timeout=30)


def reason(status: dict[str, Any]) -> str:
    return next((str(c.get("reason")) for c in status.get("conditions") or () if c.get("type") == "Ready"), "")


def count_reason(env: Environment, wanted: str, namespace: str = NS) -> int:
    return sum(1 for b in env.client.list(GROUP_VERSION, ALERTS, namespace) if reason(b.get("status") or {}) == wanted)


def wait_all(env: Environment, wanted: str, count: int, *, timeout: float, namespace: str = NS) -> None:
    wait_for(
        lambda: count_reason(env, wanted, namespace) == count,
        timeout=timeout,
        what=f"{count} alerts {wanted} (now {count_reason(env, wanted, namespace)})",
    )


def resolve_all(env: Environment, names: list[str], namespace: str = NS) -> None:
    for name in names:
        env.client.patch(o.GV, ALERTS, namespace, name, {"spec": {"state": "resolved"}})


def delivery(env: Environment, name: str) -> dict[str, Any]:
    deliveries = env.status(ALERTS, NS, name).get("deliveries") or [{}]
    return dict(deliveries[0])


def sweeps_pass(env: Environment, count: int) -> None:
    """Wait until the periodic sweep has run ``count`` more times (each sweep re-reads every destination's Secret)."""
    before = env.kube.count(verb="get", resource="secrets")
    wait_for(lambda: env.kube.count(verb="get", resource="secrets") >= before + count, timeout=30, what="sweeps")


def report(name: str, figures: dict[str, Any]) -> None:
    print(f"\nFIGURES {name}: " + ", ".join(f"{key}={value}" for key, value in figures.items()))


# ---------------------------------------------------------------------- incident.io faults


@pytest.mark.timeout(600 if FULL else 240)
def test_random_failures_hangs_and_429_bursts_still_give_one_closed_incident_per_alert(tmp_path: Path) -> None:
    count = scaled(60, 500)
    started = time.monotonic()
    with bench(tmp_path) as env:
        env.start_operator(*FAST, "--incidentio-timeout", "1", "--incidentio-max-attempts", "2")
        setup_team(env)
        env.sim.faults.random(error_rate=0.20, status=500, hang_rate=0.05, hang_seconds=3, seed=4)
        names = [f"fault-{n:04d}" for n in range(count)]
        for index, name in enumerate(names):
            env.client.apply(o.alert(name))
            if index == count // 4:
                env.sim.faults.fail_next(10, status=429, retry_after="1")
                env.sim.faults.lose_response_next(3, operation="create_incident")
            if index == count // 2:
                env.sim.faults.fail_next(10, status=429, retry_after=formatdate(time.time() + 2, usegmt=True))
        # Every alert is delivered before it resolves: an alert resolved before its incident went out
        # rightly gets none (reason Resolved), and this test is about one incident per alert.
        wait_for(lambda: len(env.incidents()) >= count, timeout=300 if FULL else 120, what="every incident")
        resolve_all(env, names)
        env.sim.faults.fail_next(10, status=429, retry_after="1")
        env.sim.faults.lose_response_next(3, operation="edit_incident")
        wait_all(env, "Closed", count, timeout=480 if FULL else 180)
        books = Books(env, [NS])
        retried = [
            d for b in books.alerts for d in (b.get("status") or {}).get("deliveries") or () if d["attempts"] > 2
        ]
        figures = {
            "alerts": count,
            "incidents_created": books.created,
            "duplicates": books.duplicates,
            "closes_missed": len(books.open_incidents()),
            "disagreements": len(books.disagreements()),
            "calls": len(env.sim.requests),
            "5xx": sum(1 for r in env.sim.requests if r.status >= 500),
            "429s": sum(1 for r in env.sim.requests if r.status == 429),
            "deliveries_retried": len(retried),
            "wall_seconds": round(time.monotonic() - started, 1),
        }
        report("incidentio-faults", figures)
        assert (books.created, books.duplicates, books.open_incidents(), books.disagreements()) == (count, 0, [], [])
        assert figures["429s"] >= 30 and figures["5xx"] > 0
        assert_secret_nowhere(env, DEMO_KEY)


@pytest.mark.timeout(60)
def test_failed_attempts_are_visible_in_the_status_while_they_retry(tmp_path: Path) -> None:
    with bench(tmp_path, rate_limit_per_minute=None) as env:
        env.start_operator("--delivery-retry-base", "1", "--incidentio-max-attempts", "1")
        setup_team(env)
        env.sim.faults.fail_next(3, status=503, operation="create_incident")
        env.client.apply(o.alert("orders"))
        retrying = wait_for(
            lambda: (d := delivery(env, "orders")).get("attempts", 0) >= 2 and d.get("lastError") and d,
            what="a second failed attempt on record",
        )
        assert retrying["state"] == "Pending"
        assert retrying["lastError"].startswith("HTTP 503: Injected failure (HTTP 503)")
        assert REQUEST_ID.search(retrying["lastError"]), retrying["lastError"]
        condition = env.condition(ALERTS, NS, "orders")
        assert condition["reason"] == "Retrying" and "incidentio: HTTP 503" in condition["message"]
        opened = wait_for(lambda: (d := delivery(env, "orders")).get("state") == "Open" and d, what="Open")
        assert opened["attempts"] == 4 and "lastError" not in opened
        assert len(env.incidents()) == 1
        assert_secret_nowhere(env, DEMO_KEY)


# ---------------------------------------------------------------------- rate limits


@pytest.mark.timeout(300 if FULL else 120)
def test_a_burst_stays_under_the_rate_limit_and_sustains_it(tmp_path: Path) -> None:
    # CI: a small bucket and a fast refill so the paced phase is long enough to measure in seconds.
    count = scaled(100, 1000)
    capacity, refill = (1200, 20.0) if FULL else (60, 6.0)
    started = time.monotonic()
    with bench(tmp_path, rate_limit_per_minute=capacity, refill_per_second=refill) as env:
        env.start_operator(*FAST, "--rate-limit-per-minute", str(capacity), "--rate-limit-refill", str(refill))
        setup_team(env)
        names = [f"burst-{n:04d}" for n in range(count)]
        put_at_once(env, [o.alert(name) for name in names])
        wait_all(env, "Delivered", count, timeout=240 if FULL else 60)
        closes_from = time.monotonic()
        set_state_at_once(env, NS, names, "resolved")
        wait_all(env, "Closed", count, timeout=240 if FULL else 60)
        calls = env.sim.requests
        accepted = [r.at for r in calls if r.status != 429]
        rejected = sum(1 for r in calls if r.status == 429)
        # The closes all queue at once: the bucket runs dry among them and pacing takes over.
        # The simulator stamps requests with time.monotonic of this process, so the clocks agree.
        rate, paced, seconds = rate_in_paced_phase(accepted, capacity, refill, since=closes_from)
        books = Books(env, [NS])
        figures = {
            "alerts": count,
            "limit": f"{capacity}/min bucket, {refill:g}/s refill",
            "calls": len(calls),
            "429s": rejected,
            "429_share": f"{rejected / len(calls):.2%}",
            "paced_calls": paced,
            "paced_seconds": round(seconds, 1),
            "achieved_rate": f"{rate:.2f}/s = {rate / refill:.1%} of the limit",
            "incidents_created": books.created,
            "duplicates": books.duplicates,
            "closes_missed": len(books.open_incidents()),
            "wall_seconds": round(time.monotonic() - started, 1),
        }
        report("rate-limit", figures)
        assert (books.created, books.duplicates, books.open_incidents()) == (count, 0, [])
        assert rejected <= 0.01 * len(calls)
        assert paced >= count // 3, "the burst must outrun the bucket, or pacing is not measured"
        assert rate >= 0.95 * refill
        assert rate <= 1.05 * refill
        assert_secret_nowhere(env, DEMO_KEY)


@pytest.mark.timeout(120)
def test_destinations_with_different_keys_are_paced_independently(tmp_path: Path) -> None:
    count_a, count_b, capacity, refill = 100, 40, 20, 5.0
    keys = {
        "key-team-a": ApiKeyConfig(name="team-a", roles=FULL_ROLES),
        "key-team-b": ApiKeyConfig(name="team-b", roles=FULL_ROLES),
    }
    with bench(tmp_path, keys=keys, rate_limit_per_minute=capacity, refill_per_second=refill) as env:
        env.start_operator(*FAST, "--rate-limit-per-minute", str(capacity), "--rate-limit-refill", str(refill))
        env.client.apply(o.namespace())
        for team in ("a", "b"):
            env.client.apply(o.secret(f"key-team-{team}", name=f"key-{team}"))
            env.client.apply(o.destination(env.sim.url, name=f"team-{team}", secret_name=f"key-{team}"))
            env.client.apply(
                o.rule(f"team-{team}", [f"team-{team}"], scope={"assetSelector": {"matchLabels": {"team": team}}})
            )
            env.wait_ready(DESTINATIONS, NS, f"team-{team}", timeout=30)
        put_at_once(env, [o.alert(f"a-{n:03d}", labels={"team": "a"}) for n in range(count_a)])
        wait_for(lambda: len(env.incidents()) >= capacity + 5, timeout=30, what="team a's burst being paced")
        b_from = time.monotonic()
        put_at_once(env, [o.alert(f"b-{n:03d}", labels={"team": "b"}) for n in range(count_b)])

        def delivered(team: str) -> int:
            return sum(1 for i in env.incidents() if i["creator"]["api_key"]["name"] == f"team-{team}")

        wait_for(lambda: delivered("b") == count_b, timeout=60, what="team b's burst")
        b_seconds = time.monotonic() - b_from
        a_done_when_b_done = delivered("a")
        wait_for(lambda: delivered("a") == count_a, timeout=60, what="team a's burst")
        calls = env.sim.requests
        rates = {}
        for team in ("a", "b"):
            times = [r.at for r in calls if r.key_name == f"team-{team}" and r.status != 429]
            rates[team] = rate_in_paced_phase(times, capacity, refill)
        rejected = sum(1 for r in calls if r.status == 429)
        figures = {t: f"{r[0]:.2f}/s over {r[1]} calls" for t, r in rates.items()}
        report(
            "independent-keys",
            {**figures, "b_seconds": round(b_seconds, 1), "a_done_when_b_done": a_done_when_b_done, "429s": rejected},
        )
        # Team b's burst is paced by its own bucket alone: it does not queue behind team a's backlog.
        assert a_done_when_b_done < count_a
        for rate, paced, _ in rates.values():
            assert paced >= count_b // 3 and rate >= 0.8 * refill
        books = Books(env, [NS])
        assert (books.created, books.duplicates) == (count_a + count_b, 0)
        assert_secret_nowhere(env, "key-team-a", "key-team-b")


# ---------------------------------------------------------------------- Kubernetes API faults


@pytest.mark.timeout(240)
def test_dropped_watches_and_failed_status_patches_lose_nothing_and_send_nothing_twice(tmp_path: Path) -> None:
    count = scaled(60, 300)
    with bench(tmp_path, rate_limit_per_minute=None) as env:
        env.start_operator(*FAST)
        setup_team(env)
        names = [f"kube-{n:04d}" for n in range(count)]
        for index, name in enumerate(names):
            env.client.apply(o.alert(name))
            if index % 10 == 5:
                env.kube.drop_watches()
            if index % 10 == 0:
                env.kube.fail_next(1, status=409, verb="patch", resource=ALERTS, subresource="status")
            if index % 10 == 7:
                env.kube.fail_next(1, status=500, verb="patch", resource=ALERTS, subresource="status")
        wait_all(env, "Delivered", count, timeout=120)
        books = Books(env, [NS])
        assert (books.created, books.duplicates, books.disagreements()) == (count, 0, [])
        for index, name in enumerate(names):
            env.client.patch(o.GV, ALERTS, NS, name, {"spec": {"state": "resolved"}})
            if index % 10 == 5:
                env.kube.drop_watches()
            if index % 10 == 0:
                env.kube.fail_next(1, status=409, verb="patch", resource=ALERTS, subresource="status")
            if index % 10 == 7:
                env.kube.fail_next(1, status=500, verb="patch", resource=ALERTS, subresource="status")
        wait_all(env, "Closed", count, timeout=120)
        books = Books(env, [NS])
        assert (books.created, books.duplicates, books.open_incidents(), books.disagreements()) == (count, 0, [], [])
        counters = wait_for(
            lambda: (
                (c := env.status(DESTINATIONS, NS, "incidentio").get("counters") or {})
                and c.get("incidentsClosed", 0) >= count
                and c
            ),
            what=f"destination counters caught up (now {env.status(DESTINATIONS, NS, 'incidentio').get('counters')})",
        )
        assert counters["incidentsCreated"] == count, counters
        failed = sum(1 for r in env.kube.requests if r.resource == ALERTS and r.status in (409, 500))
        report("kube-faults", {"alerts": count, "failed_status_patches": failed, "counters": counters})
        assert_secret_nowhere(env, DEMO_KEY)


@pytest.mark.timeout(60)
def test_the_sweep_picks_up_a_delivery_whose_wake_up_was_lost(tmp_path: Path) -> None:
    with bench(tmp_path, rate_limit_per_minute=None) as env:
        env.start_operator("--sweep-interval", "1")
        setup_team(env)
        # A 404 on the status write looks like the object went away: the worker drops the key with no retry.
        env.kube.fail_next(1, status=404, verb="patch", resource=ALERTS, subresource="status")
        env.client.apply(o.alert("orders"))
        env.wait_ready(ALERTS, NS, "orders", timeout=20)
        assert delivery(env, "orders")["state"] == "Open"
        assert len(env.incidents()) == 1


# ---------------------------------------------------------------------- destination failure mid-stream


@pytest.mark.timeout(180)
def test_a_revoked_key_parks_deliveries_until_the_secret_is_fixed_then_each_goes_once(tmp_path: Path) -> None:
    count = scaled(40, 200)
    with bench(tmp_path, rate_limit_per_minute=None) as env:
        env.start_operator(*FAST, "--concurrency", "4")
        setup_team(env)
        env.sim.faults.slow_next(count, seconds=0.05, operation="create_incident")
        names = [f"flow-{n:04d}" for n in range(count)]
        for index, name in enumerate(names):
            env.client.apply(o.alert(name))
            if index == count // 4:
                wait_for(lambda: len(env.incidents()) >= 3, what="alerts flowing")
                env.sim.revoke_key(DEMO_KEY)
        condition = env.wait_reason(DESTINATIONS, NS, "incidentio", "Unauthorized", timeout=30)
        assert condition["message"] == "HTTP 401: Unauthorized"
        wait_for(
            lambda: count_reason(env, "WaitingForDestination") + count_reason(env, "Delivered") == count,
            timeout=60,
            what="every alert delivered or waiting on the destination",
        )
        waiting = count_reason(env, "WaitingForDestination")
        assert waiting > 0
        example = next(
            b for b in env.client.list(GROUP_VERSION, ALERTS, NS) if reason(b["status"]) == "WaitingForDestination"
        )
        message = next(c["message"] for c in example["status"]["conditions"] if c["type"] == "Ready")
        assert "IncidentIoDestination incidentio is not Ready" in message and "Unauthorized" in message
        refused = len([r for r in env.requests("create_incident") if r.status == 401])
        sweeps_pass(env, 3)
        # Waiting, not spinning: no create went out while the destination stayed unauthorised.
        assert len([r for r in env.requests("create_incident") if r.status == 401]) == refused
        # The first refusal holds the destination; only calls already in flight (one per worker) are refused too.
        assert 1 <= refused <= 4, f"{refused} creates refused: more than the 4 workers had in flight"

        env.sim.set_key("sim-new-key", name="demo", roles=FULL_ROLES)
        env.client.apply(o.secret("sim-new-key"))
        wait_all(env, "Delivered", count, timeout=90)
        books = Books(env, [NS])
        report("revoked-key", {"alerts": count, "waited": waiting, "refused_creates": refused})
        assert (books.created, books.duplicates, books.disagreements()) == (count, 0, [])
        assert_secret_nowhere(env, DEMO_KEY, "sim-new-key")


# ---------------------------------------------------------------------- permanent refusals


@pytest.mark.timeout(120)
def test_a_422_fails_the_delivery_visibly_and_it_retries_only_on_a_spec_change(tmp_path: Path) -> None:
    with bench(tmp_path, rate_limit_per_minute=None, severity_required=True, close_requires_role="closer") as env:
        env.start_operator("--delivery-retry-base", "0.5", "--sweep-interval", "0.5")
        setup_team(env)
        env.client.apply(o.alert("orders"))
        condition = env.wait_reason(ALERTS, NS, "orders", "DeliveryFailed")
        failed = delivery(env, "orders")
        assert failed["state"] == "Failed"
        assert failed["lastError"].startswith("HTTP 422: A severity is required to open an incident (severity_id)")
        assert REQUEST_ID.search(failed["lastError"]) and "severity map" in failed["lastError"]
        assert condition["status"] == "False" and failed["lastError"] in condition["message"]
        wait_for(
            lambda: any(e["type"] == "Warning" and "HTTP 422" in e["message"] for e in env.client.events(NS)),
            what="a Warning event quoting incident.io",
        )
        sweeps_pass(env, 3)
        assert len(env.requests("create_incident")) == 1, "a refusal is not retried in a loop"

        # The destination's spec changes: the delivery goes again, once.
        env.client.apply(o.destination(env.sim.url, severity={"default": "Minor"}))
        opened = wait_for(lambda: (d := delivery(env, "orders")).get("state") == "Open" and d, timeout=30)
        assert len(env.requests("create_incident")) == 2 and "lastError" not in opened

        env.client.patch(o.GV, ALERTS, NS, "orders", {"spec": {"state": "resolved"}})
        refused = wait_for(lambda: (d := delivery(env, "orders")).get("state") == "Failed" and d, what="close refused")
        assert refused["state"] == "Failed" and refused["incidentId"] == opened["incidentId"]
        assert "post-incident flow" in refused["lastError"] and "'closer' role" in refused["lastError"]
        assert "edit the alert or the destination to retry" in refused["lastError"]
        sweeps_pass(env, 3)
        assert len(env.requests("edit_incident")) == 1, "a refused close is not retried in a loop"

        # The alert's spec changes after the key got the role: the close goes again, once.
        env.sim.set_key(DEMO_KEY, name="demo", roles=FULL_ROLES | {"closer"})
        env.client.patch(o.GV, ALERTS, NS, "orders", {"spec": {"description": "closing after the role was granted"}})
        env.wait_reason(ALERTS, NS, "orders", "Closed", timeout=30)
        assert len(env.requests("edit_incident")) == 2
        books = Books(env, [NS])
        assert (books.created, books.duplicates, books.open_incidents(), books.disagreements()) == (1, 0, [], [])
        assert_secret_nowhere(env, DEMO_KEY)

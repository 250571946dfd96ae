"""Secrets (issue 4): across every path a key travels, it appears in no log line, event, status, record or metric."""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from incidentio_operator.standins.simulator import CLOSED_STATUS_ID
from tests.e2e import objects as o
from tests.harness import (
    FULL_ROLES,
    GROUP_VERSION,
    Environment,
    assert_secret_nowhere,
    iter_strings,
    wait_for,
)

DESTINATIONS, RULES, ALERTS = "incidentiodestinations", "alertrules", "dataalerts"
NS = o.NS
FAST = ("--delivery-retry-base", "0.5", "--test-retry-base", "0.5", "--sweep-interval", "2")


def distinctive_key(kind: str) -> str:
    return f"sk-live-SECRET-{kind}-{secrets.token_hex(16)}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclasses.dataclass
class Keys:
    valid: str
    rotated: str
    invalid: str
    viewer: str
    tester: str

    def all(self) -> list[str]:
        return [self.valid, self.rotated, self.invalid, self.viewer, self.tester]


@pytest.fixture
def keys() -> Keys:
    return Keys(*(distinctive_key(kind) for kind in ("valid", "rotated", "invalid", "viewer", "tester")))


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Environment]:
    environment = Environment(tmp_path)
    try:
        yield environment
    finally:
        environment.close()


def forms(key: str) -> list[str]:
    """The key, and the forms it takes on its way: base64 in the Secret, the Authorization header value."""
    return [key, base64.b64encode(key.encode()).decode(), f"Bearer {key}"]


def condition(env: Environment, plural: str, name: str) -> dict[str, Any]:
    return env.condition(plural, NS, name)


def delivery_of(env: Environment, name: str) -> dict[str, Any]:
    deliveries = env.status(ALERTS, NS, name).get("deliveries") or [{}]
    return dict(deliveries[-1])


def run_every_key_path(env: Environment, keys: Keys) -> None:
    """Every place a key is read, used, refused, rotated, revoked, and every incident path around it."""
    env.sim.set_key(keys.valid, name="platform", roles=FULL_ROLES)
    env.sim.set_key(keys.rotated, name="platform-rotated", roles=FULL_ROLES)
    env.sim.set_key(keys.viewer, name="read-only", roles=["viewer"])
    env.sim.set_key(keys.tester, name="tester", roles=FULL_ROLES)
    env.client.apply(o.namespace())

    # An unknown key: 401, and the message says only that.
    env.client.apply(o.secret(keys.invalid))
    env.client.apply(o.destination(env.sim.url))
    refused = env.wait_reason(DESTINATIONS, NS, "incidentio", "Unauthorized")
    assert refused["message"] == "HTTP 401: Unauthorized"

    # A key without the roles to create incidents: 403, naming the permission, not the key.
    env.client.apply(o.secret(keys.viewer))
    forbidden = env.wait_reason(DESTINATIONS, NS, "incidentio", "Forbidden")
    assert forbidden["message"].startswith("HTTP 403: Forbidden") and "incident_creator" in forbidden["message"]

    # The right key.
    env.client.apply(o.secret(keys.valid))
    verified = env.wait_ready(DESTINATIONS, NS, "incidentio")
    assert verified["lastTest"]["identityName"] == "platform"

    # A destination that creates (and closes) a test incident on creation, with its own Secret.
    env.client.apply(o.secret(keys.tester, name="tester-key"))
    env.client.apply(
        o.destination(env.sim.url, name="tester", secret_name="tester-key", on_create="CreateTestIncident")
    )
    env.wait_message(DESTINATIONS, NS, "tester", "Success! Incident created: INC-")
    # And a test on demand, through the annotation.
    env.client.patch(
        o.GV, DESTINATIONS, NS, "tester", {"metadata": {"annotations": {"alerting.armor.dev/test-requested-at": "1"}}}
    )
    wait_for(
        lambda: (env.status(DESTINATIONS, NS, "tester").get("lastTest") or {}).get("requestedAt") == "1",
        what="the requested test",
    )
    assert [i for i in env.incidents(mode="test") if i["creator"]["api_key"]["name"] == "tester"]

    # Alerts delivered, one of them through failures incident.io answers with 503 (more than one call retries).
    env.client.apply(o.rule("everything", ["incidentio", "tester"]))
    env.wait_ready(RULES, NS, "everything")
    env.client.apply(o.alert("one"))
    env.wait_reason(ALERTS, NS, "one", "Delivered")
    env.sim.faults.fail_next(6, status=503, operation="create_incident")
    env.client.apply(o.alert("two"))
    env.wait_reason(ALERTS, NS, "two", "Delivered", timeout=30)
    assert any(r.status == 503 for r in env.requests("create_incident"))

    # A close through 503s, retried.
    env.sim.faults.fail_next(2, status=503, operation="edit_incident")
    env.client.patch(o.GV, ALERTS, NS, "one", {"spec": {"state": "resolved"}})
    env.wait_reason(ALERTS, NS, "one", "Closed", timeout=30)

    # Key rotation: the Secret changes, the destination tests again with the new key, which then opens incidents.
    env.client.apply(o.secret(keys.rotated))
    wait_for(
        lambda: (
            (env.status(DESTINATIONS, NS, "incidentio").get("lastTest") or {}).get("identityName") == "platform-rotated"
        ),
        what="the destination tested with the rotated key",
    )
    env.sim.revoke_key(keys.valid)
    env.client.apply(o.alert("three"))
    env.wait_reason(ALERTS, NS, "three", "Delivered")
    three = delivery_of(env, "three")
    creators = {i["id"]: i["creator"]["api_key"]["name"] for i in env.incidents()}
    assert creators[three["incidentId"]] in ("platform-rotated", "tester")

    # Deleting an alert with open incidents closes them first (the finalizer), with the rotated key.
    opened = {d["incidentId"] for d in env.status(ALERTS, NS, "two")["deliveries"]}
    assert len(opened) == 2
    env.client.delete(o.GV, ALERTS, NS, "two")
    wait_for(lambda: env.get(ALERTS, NS, "two") is None, timeout=30, what="alert two deleted")
    for incident_id in opened:
        assert env.sim.incident(incident_id)["incident_status"]["id"] == CLOSED_STATUS_ID

    # The key revoked while in use: a create answered 401 sends the destination back to its test.
    env.sim.revoke_key(keys.rotated)
    env.client.apply(o.alert("four"))
    env.wait_reason(DESTINATIONS, NS, "incidentio", "Unauthorized", timeout=30)
    wait_for(
        lambda: condition(env, ALERTS, "four").get("reason") in ("WaitingForDestination", "DeliveryFailed"),
        timeout=30,
        what=f"alert four held up by the revoked key (now {condition(env, ALERTS, 'four')})",
    )


def places(env: Environment, metrics: str) -> list[tuple[str, Any]]:
    """Everything a key could leak into, as (where, value)."""
    found: list[tuple[str, Any]] = [("operator log", env.operator_log), ("metrics page", metrics)]
    found.extend((f"event {e['metadata']['name']}", e) for e in env.client.events())
    for plural in (DESTINATIONS, RULES, ALERTS):
        # The whole object: metadata (annotations, managed fields), spec and status.
        found.extend((f"{plural} {b['metadata']['name']}", b) for b in env.client.list(GROUP_VERSION, plural))
    found.extend((f"simulator record {r.operation} {r.path}", dataclasses.asdict(r)) for r in env.sim.requests)
    found.extend((f"incident {i['reference']}", i) for i in env.sim.incidents)
    found.extend((f"kube request {c.method} {c.path}", dataclasses.asdict(c)) for c in env.kube.requests)
    return found


def assert_no_key(env: Environment, keys: Keys, metrics: str) -> None:
    where = places(env, metrics)
    for key in keys.all():
        for text in forms(key):
            for place, value in where:
                strings = [value] if isinstance(value, str) else [str(s) for s in iter_strings(value)]
                assert not any(text in s for s in strings), f"API key ({text[:18]}...) found in {place}"
    assert_secret_nowhere(env, *keys.all())


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_key_anywhere_on_any_path(env: Environment, keys: Keys, log_format: str) -> None:
    port = free_port()
    operator = env.start_operator("--metrics-port", str(port), "--log-format", log_format, *FAST)
    run_every_key_path(env, keys)
    metrics = wait_for(
        lambda: (
            (text := httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
            and "incidentio_operator_incidents_created_total" in text
            and text
        ),
        what="the metrics page",
    )
    assert operator.process.poll() is None, "the operator died"
    log = env.operator_log
    assert "Traceback" not in log
    # The paths really ran: the log and the events talk about them, without the key.
    assert "HTTP 401: Unauthorized" in log or any("HTTP 401" in str(e.get("message")) for e in env.client.events(NS))
    if log_format == "json":
        records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        assert len(records) > 10, "the JSON log has records"
    assert_no_key(env, keys, metrics)

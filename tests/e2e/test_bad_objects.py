"""Bad objects (issue 4): any generated spec of the three kinds is refused by the schema or gets a clear status."""

from __future__ import annotations

import copy
import itertools
import math
import re
import socket
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from incidentio_operator.standins.kubesim import ApiError
from incidentio_operator.standins.simulator import CLOSED_STATUS_ID, INVESTIGATING_STATUS_ID, SEVERITY_MAJOR_ID
from tests.e2e import objects as o
from tests.harness import (
    DEMO_KEY,
    GROUP_VERSION,
    Environment,
    alert_of_incident,
    assert_secret_nowhere,
    scaled,
    wait_for,
)

DESTINATIONS, RULES, ALERTS = "incidentiodestinations", "alertrules", "dataalerts"
# Each kind gets its own namespace, so one kind's examples cannot change what another kind's examples see.
NS_DEST, NS_RULES, NS_ALERTS = "bad-destinations", "bad-rules", "bad-alerts"
KINDS = {
    DESTINATIONS: ("IncidentIoDestination", NS_DEST),
    RULES: ("AlertRule", NS_RULES),
    ALERTS: ("DataAlert", NS_ALERTS),
}
# Stand-ins for the two base URLs a generated destination may use; replaced when the object is applied.
SIM_URL, DEAD_URL = "http://sim.invalid", "http://dead.invalid"
EXAMPLES_PER_KIND = scaled(25, 300)
# Connection tests that cannot reach incident.io are retried from this base, doubling: the only repeat writes.
TEST_RETRY_BASE = 15.0
SETTLE_TIMEOUT = 20.0
# Reasons an alert shows only while the operator is in the middle of calling incident.io.
IN_FLIGHT = ("Delivering", "Closing")


@dataclass
class Seen:
    """One generated object the API accepted, and what the operator made of it."""

    plural: str
    name: str
    reason: str
    body: dict[str, Any]


class Bench:
    """The module's one environment and operator, and what the examples did to them."""

    def __init__(self, env: Environment, dead_url: str) -> None:
        self.env = env
        self.dead_url = dead_url
        self.accepted: list[Seen] = []
        self.refused: Counter[str] = Counter()
        self.names = itertools.count(1)


def unused_loopback_url() -> str:
    """A loopback port nobody listens on: connection refused, never a packet off the machine."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    env = Environment(tmp_path_factory.mktemp("bad-objects"))
    try:
        dead = unused_loopback_url()
        env.start_operator("--test-retry-base", str(TEST_RETRY_BASE), "--incidentio-max-attempts", "2")
        for ns in (NS_DEST, NS_RULES, NS_ALERTS):
            env.client.apply(o.namespace(ns))
            env.client.apply(o.secret(DEMO_KEY, ns=ns))
        for ns in (NS_RULES, NS_ALERTS):
            env.client.apply(o.destination(env.sim.url, ns=ns))
            env.client.apply(o.destination(dead, name="dead", ns=ns))
        # Valid alerts do get incidents: every alert goes to the working destination, critical ones also
        # to the unreachable one (so some alerts wait for a destination, with a reason that says so).
        env.client.apply(o.rule("catch-all", ["incidentio"], ns=NS_ALERTS))
        env.client.apply(o.rule("critical-to-dead", ["dead"], ns=NS_ALERTS, severities=["critical"]))
        for ns in (NS_RULES, NS_ALERTS):
            env.wait_ready(DESTINATIONS, ns, "incidentio", timeout=30)
            env.wait_reason(DESTINATIONS, ns, "dead", "Unreachable", timeout=30)
        env.wait_ready(RULES, NS_ALERTS, "catch-all")
        yield Bench(env, dead)
    finally:
        env.close()


# ---------------------------------------------------------------------------------------------- strategies

# Text as a user or a broken generator may write it: any printable or odd character, no lone surrogates.
ODD = st.text(st.characters(blacklist_categories=("Cs",)), max_size=24)
WORDS = st.sampled_from(["", " ", "*", "prod_*", "[abc", "a[!b]c", "?", "**", "\\", "é☃", "\x00", "-"])
SHORT = st.one_of(ODD, WORDS)
# The same, never empty: for fields with a minimum length.
TEXT = SHORT.filter(bool)
HUGE = st.sampled_from(["x" * 254, "y" * 4001, "☃" * 2049, "z" * 40000])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | SHORT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SHORT, inner, max_size=3),
    max_leaves=8,
)
IDENT = st.from_regex(r"\A[a-z][a-z0-9_]{0,20}\Z")
SEVERITY = st.sampled_from(["info", "warning", "critical"])
EVENT_TYPE = st.one_of(
    st.sampled_from(["schema_change", "freshness_violation", "data_quality", "metric_anomaly"]), IDENT
)


def some(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict with any subset of ``fields``."""
    return st.fixed_dictionaries({}, optional=fields)


DESTINATION_SPEC = st.fixed_dictionaries(
    {
        "apiKeySecretRef": some(
            key=st.sampled_from(["apiKey", "other"]), name=st.sampled_from(["incidentio-key", "missing-secret"])
        ).flatmap(lambda ref: st.just(ref) if "name" in ref else st.just({**ref, "name": "incidentio-key"})),
        "baseURL": st.sampled_from([SIM_URL, DEAD_URL]),
    },
    optional={
        "closedStatusId": st.one_of(st.sampled_from([CLOSED_STATUS_ID, INVESTIGATING_STATUS_ID]), SHORT),
        "incident": some(
            namePrefix=SHORT,
            visibility=st.sampled_from(["public", "private"]),
            mode=st.sampled_from(["standard", "test"]),
            severity=some(
                default=st.sampled_from(["Minor", "Major", SEVERITY_MAJOR_ID, "Catastrophic"]),
                map=st.dictionaries(SEVERITY, st.sampled_from(["Minor", "Critical", "Nope"]), max_size=3),
            ),
            incidentTypeId=SHORT,
            notifyIncidentChannel=st.booleans(),
        ),
        "connectionTest": some(
            onCreate=st.sampled_from(["Verify", "CreateTestIncident"]),
            interval=st.sampled_from(["1h", "30m", "90s", "1m", "2h30m"]),
        ),
        "suspend": st.booleans(),
    },
)
GLOBS = st.lists(TEXT, max_size=3)
RULE_SPEC = st.fixed_dictionaries(
    {
        "destinations": st.lists(
            st.fixed_dictionaries(
                {"name": st.sampled_from(["incidentio", "dead", "missing", "Bad Name"])},
                optional={"namespace": st.sampled_from([NS_RULES, NS_ALERTS, "elsewhere"])},
            ),
            min_size=1,
            max_size=3,
        )
    },
    optional={
        "eventTypes": st.lists(EVENT_TYPE, max_size=3, unique=True),
        "severities": st.lists(SEVERITY, max_size=3, unique=True),
        "scope": some(
            environments=GLOBS,
            databases=GLOBS,
            schemas=some(include=GLOBS, exclude=GLOBS),
            tables=some(include=GLOBS, exclude=GLOBS),
            assetSelector=some(
                matchLabels=st.dictionaries(SHORT, SHORT, max_size=2),
                matchExpressions=st.lists(
                    st.one_of(
                        st.fixed_dictionaries(
                            {
                                "key": TEXT,
                                "operator": st.sampled_from(["In", "NotIn"]),
                                "values": st.lists(SHORT, min_size=1, max_size=2),
                            }
                        ),
                        st.fixed_dictionaries({"key": TEXT, "operator": st.sampled_from(["Exists", "DoesNotExist"])}),
                    ),
                    max_size=2,
                ),
            ),
        ),
        "conditions": some(changeTypes=st.lists(IDENT, max_size=3, unique=True)),
        "suspend": st.booleans(),
    },
)
ALERT_SPEC = st.fixed_dictionaries(
    {
        "title": st.one_of(st.just("Column customer_id removed from orders"), TEXT),
        "eventType": EVENT_TYPE,
        "severity": SEVERITY,
    },
    optional={
        "externalId": SHORT,
        "description": st.one_of(SHORT, st.just("d" * 3999)),
        "state": st.sampled_from(["triggered", "acknowledged", "snoozed", "resolved", "dismissed"]),
        "source": SHORT,
        "asset": some(
            id=SHORT,
            qualifiedName=SHORT,
            environment=SHORT,
            database=SHORT,
            schema=SHORT,
            table=SHORT,
        ),
        "changes": st.lists(
            st.fixed_dictionaries(
                {"type": IDENT}, optional={"column": SHORT, "fromType": SHORT, "toType": SHORT, "description": SHORT}
            ),
            max_size=3,
        ),
        "detectedAt": st.sampled_from(["2026-11-26T10:00:00Z", "2026-11-26T10:00:00.123+02:00", "not a time"]),
    },
)
SPECS = {DESTINATIONS: DESTINATION_SPEC, RULES: RULE_SPEC, ALERTS: ALERT_SPEC}


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place inside a JSON value, the value itself first."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


MUTATIONS = ["garbage", "delete", "null", "empty", "huge", "wrap", "extra", "type"]


def replacement(draw: st.DrawFn, kind: str, current: Any) -> Any:
    """What a mutation puts in place of ``current``."""
    if kind == "garbage":
        return draw(JSON)
    if kind == "null":
        return None
    if kind == "empty":
        return {str: "", list: [], dict: {}}.get(type(current), "")
    if kind == "huge":
        return draw(HUGE)
    if kind == "wrap":
        return [current]
    if kind == "extra":
        return {"unexpected": current}
    return draw(st.sampled_from([0, -1, 1.5, True, "7", [], {}, [[{}]]]))


@st.composite
def mutated(draw: st.DrawFn, spec: st.SearchStrategy[dict[str, Any]]) -> Any:
    """A valid-looking spec with a few random mutations anywhere inside it."""
    body: Any = {"spec": draw(spec)}
    for _ in range(draw(st.integers(0, 3))):
        if "spec" not in body:
            break
        where = draw(st.sampled_from(list(paths(body["spec"], ("spec",)))))
        kind = draw(st.sampled_from(MUTATIONS))
        parent: Any = body
        for step in where[:-1]:
            parent = parent[step]
        last = where[-1]
        current = parent[last]
        if kind == "delete":
            del parent[last]
        elif kind == "extra" and isinstance(current, dict):
            current[draw(SHORT) or "unknownField"] = draw(JSON)
        else:
            parent[last] = replacement(draw, kind, current)
    return body.get("spec")


@st.composite
def generated(draw: st.DrawFn, plural: str) -> dict[str, Any]:
    """An object of the kind: mostly valid with mutations, sometimes a spec of pure noise; maybe an odd name."""
    spec: Any
    shape = draw(st.sampled_from(["valid", "mutated", "valid", "mutated", "noise", "mutated", "no-spec"]))
    if shape == "valid":
        spec = draw(SPECS[plural])
    elif shape == "mutated":
        spec = draw(mutated(SPECS[plural]))
    elif shape == "noise":
        spec = draw(
            st.one_of(JSON, st.dictionaries(st.one_of(SHORT, st.sampled_from(["title", "destinations"])), JSON))
        )
    else:
        spec = None
    kind, ns = KINDS[plural]
    meta: dict[str, Any] = {"namespace": ns}
    if draw(st.integers(0, 9)) == 9:
        meta["name"] = draw(SHORT)  # completed with a unique suffix when applied
    if plural == ALERTS:
        meta["labels"] = draw(st.dictionaries(st.sampled_from(["team", "tier", "Bad Key!"]), SHORT, max_size=2))
    body: dict[str, Any] = {"apiVersion": GROUP_VERSION, "kind": kind, "metadata": meta}
    if shape != "no-spec":
        body["spec"] = spec
    return body


# ---------------------------------------------------------------------------------------------- checks


def loopback_only(body: dict[str, Any], bench: Bench) -> dict[str, Any]:
    """Point a destination at the simulator or the dead loopback port, whatever the generator made of baseURL.

    A missing baseURL would default to the real incident.io, so it is set too; values that are no URL at
    all stay, for the schema to refuse.
    """
    body = copy.deepcopy(body)
    spec = body.get("spec")
    if body["kind"] != "IncidentIoDestination" or not isinstance(spec, dict):
        return body
    url = spec.get("baseURL")
    if url == SIM_URL:
        spec["baseURL"] = bench.env.sim.url
    elif url is None or url == DEAD_URL or (isinstance(url, str) and re.match(r"^https?://", url)):
        spec["baseURL"] = bench.dead_url
    return body


def names_a_field(message: str) -> bool:
    return bool(re.search(r"\b(spec|metadata)(\.[A-Za-z]|\[|:| )", message))


def settled(bench: Bench, plural: str, ns: str, name: str) -> dict[str, Any] | None:
    """The Ready condition, once the status describes the object's current generation and no call is in flight."""
    body = bench.env.get(plural, ns, name) or {}
    status = body.get("status") or {}
    if status.get("observedGeneration") != (body.get("metadata") or {}).get("generation"):
        return None
    ready = next((c for c in status.get("conditions") or () if c.get("type") == "Ready"), None)
    return None if ready is None or ready.get("reason") in IN_FLIGHT else ready


def replace_spec(bench: Bench, plural: str, ns: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """PUT the object with ``body``'s spec, as `kubectl replace` would: on a conflict with the operator's
    own writes, read the object again and retry."""

    def attempt() -> dict[str, Any] | None:
        current = bench.env.get(plural, ns, name)
        assert current is not None, f"{plural} {ns}/{name} disappeared"
        replacement = {k: v for k, v in current.items() if k not in ("spec", "status")}
        if "spec" in body:
            replacement["spec"] = body["spec"]
        try:
            return bench.env.client.update(replacement)
        except ApiError as refused:
            if refused.status == 409:
                return None
            raise

    return wait_for(attempt, timeout=SETTLE_TIMEOUT, what=f"a replace of {plural} {ns}/{name} without a conflict")


def submit(bench: Bench, body: dict[str, Any], *, replace: bool = False) -> dict[str, Any] | None:
    """Create (or replace the spec of) the object; None when the API refused it, naming the field it refused."""
    meta = body["metadata"]
    plural = next(plural for plural, (kind, _) in KINDS.items() if kind == body["kind"])
    try:
        if replace:
            return replace_spec(bench, plural, meta["namespace"], meta["name"], body)
        return bench.env.client.create(body)
    except ApiError as refused:
        assert refused.status in (400, 422), f"refused with {refused.status}: {refused.message}"
        assert names_a_field(refused.message), f"the refusal names no field: {refused.message}"
        bench.refused[body["kind"]] += 1
        return None


def check_reconciled(bench: Bench, plural: str, ns: str, name: str, sent: dict[str, Any]) -> str:
    condition = wait_for(
        lambda: settled(bench, plural, ns, name),
        timeout=SETTLE_TIMEOUT,
        what=f"a current Ready condition on {plural} {ns}/{name}, applied as {sent!r}",
    )
    assert condition.get("status") in ("True", "False", "Unknown"), condition
    assert re.fullmatch(r"[A-Z][A-Za-z]+", str(condition.get("reason") or "")), condition
    assert str(condition.get("message") or "").strip(), condition
    return str(condition["reason"])


@settings(
    max_examples=EXAMPLES_PER_KIND,
    deadline=None,
    database=None,
    # An end-to-end example costs a real reconciliation; shrinking would replay hundreds of them.
    # Every failure message carries the object as it was sent, which is the reproduction.
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
@pytest.mark.parametrize("plural", [DESTINATIONS, RULES, ALERTS])
def test_every_generated_object_is_refused_or_reconciled_to_a_clear_status(
    bench: Bench, data: st.DataObject, plural: str
) -> None:
    body = loopback_only(data.draw(generated(plural), label="object"), bench)
    _, ns = KINDS[plural]
    suffix = next(bench.names)
    meta = body["metadata"]
    meta["name"] = f"{meta['name']}-{suffix}x" if "name" in meta else f"gen-{suffix}"
    name = meta["name"]
    if submit(bench, body) is None:
        return
    reason = check_reconciled(bench, plural, ns, name, body)
    if data.draw(st.integers(0, 3), label="replace the spec") == 0:
        # A second generation: the same checks must hold for an object whose spec changes under the operator.
        again = loopback_only(data.draw(generated(plural), label="replacement"), bench)
        again["metadata"]["name"] = name
        replaced = submit(bench, again, replace=True)
        if replaced is not None:
            body = again
            reason = check_reconciled(bench, plural, ns, name, again)
    bench.accepted.append(Seen(plural, name, reason, body))


def test_after_all_examples_the_operator_is_alive_quiet_and_correct(bench: Bench) -> None:
    env = bench.env
    # Every accepted object still has a clear, current status now that all examples ran (nothing undid it).
    for seen in bench.accepted:
        ns = KINDS[seen.plural][1]
        seen.reason = check_reconciled(bench, seen.plural, ns, seen.name, seen.body)
    accepted = Counter(seen.plural for seen in bench.accepted)
    reasons = Counter(f"{seen.plural}:{seen.reason}" for seen in bench.accepted)
    print(f"FIGURES bad objects: accepted {dict(accepted)}, refused {dict(bench.refused)}, reasons {dict(reasons)}")
    assert bench.accepted and bench.refused, "the generator must produce both accepted and refused objects"
    assert all(accepted[plural] for plural in KINDS), f"some kind had no accepted object: {dict(accepted)}"

    # Never crashes.
    (operator,) = env.operators
    assert operator.process.poll() is None, "the operator process died"
    assert "Traceback" not in env.operator_log
    assert "reconciliation failed" not in env.operator_log

    # Never sends a malformed request: the simulator has no org rules here, so no 400 or 422 is explained.
    malformed = [(r.operation, r.status, r.body) for r in env.sim.requests if r.status in (400, 422)]
    assert not malformed, f"incident.io refused requests as malformed: {malformed[:3]}"

    # No incident for an alert the operator could not understand.
    invalid = {f"{NS_ALERTS}/{s.name}" for s in bench.accepted if s.plural == ALERTS and s.reason == "InvalidSpec"}
    created_for = {alert_of_incident(r.body) for r in env.requests("create_incident") if isinstance(r.body, dict)}
    assert not invalid & created_for, f"incidents were requested for invalid alerts: {sorted(invalid & created_for)}"
    # And valid alerts did get theirs, so the bench exercised the real path.
    delivered = [seen for seen in bench.accepted if seen.plural == ALERTS and seen.reason == "Delivered"]
    assert all(f"{NS_ALERTS}/{seen.name}" in created_for for seen in delivered)

    # Never loops hot: each generated object's writes stay few. An unreachable destination is tested again
    # with doubling backoff, so it may add one write per doubling of the time the module ran.
    patches = Counter(
        (call.resource, call.namespace, call.name) for call in list(env.kube.requests) if call.verb == "patch"
    )
    elapsed = max(call.at for call in env.kube.requests) - min(call.at for call in env.kube.requests)
    retries = math.ceil(math.log2(1 + elapsed / TEST_RETRY_BASE))
    hot = []
    for seen in bench.accepted:
        writes = patches[(seen.plural, KINDS[seen.plural][1], seen.name)]
        allowed = 6 + (retries if seen.plural == DESTINATIONS and seen.reason == "Unreachable" else 0)
        if writes > allowed:
            hot.append((seen.plural, seen.name, seen.reason, writes))
    most = max(patches[(seen.plural, KINDS[seen.plural][1], seen.name)] for seen in bench.accepted)
    print(f"FIGURES bad objects: at most {most} writes to one generated object over {elapsed:.0f}s")
    assert not hot, f"objects written more often than a settled reconciliation needs: {hot}"
    fixture_names = ("incidentio", "dead", "catch-all", "critical-to-dead")
    fixtures = sum(count for (_, _, name), count in patches.items() if name in fixture_names)
    assert fixtures <= 20 + 3 * len(bench.accepted), f"the fixture objects were written {fixtures} times"

    # And the operator is quiet once everything settled: while a probe alert is delivered and the catch-all
    # rule's batched summary catches up with it (two seconds at least), no generated object is written
    # again, except the connection re-tests of unreachable destinations, which back off. The fixture
    # objects the probe concerns (its rules and destination) may take a write or two.
    before = len(env.kube.requests)
    env.client.create(o.alert("quiet-probe", ns=NS_ALERTS, severity="info"))
    env.wait_reason(ALERTS, NS_ALERTS, "quiet-probe", "Delivered")
    alerts = len(env.client.list(GROUP_VERSION, ALERTS, NS_ALERTS))
    wait_for(
        lambda: env.status(RULES, NS_ALERTS, "catch-all").get("matchedAlerts") == alerts,
        what=f"the catch-all rule to count {alerts} alerts",
    )
    window = Counter(
        (call.resource, call.namespace, call.name) for call in list(env.kube.requests)[before:] if call.verb == "patch"
    )
    rewritten = {
        (seen.plural, seen.name): window[(seen.plural, KINDS[seen.plural][1], seen.name)]
        for seen in bench.accepted
        if window[(seen.plural, KINDS[seen.plural][1], seen.name)] and seen.reason != "Unreachable"
    }
    assert not rewritten, f"settled generated objects written again while nothing changed: {rewritten}"
    fixture_writes = {key: count for key, count in window.items() if key[1] in (NS_RULES, NS_ALERTS)}
    assert all(count <= 3 for count in fixture_writes.values()), fixture_writes

    # Nowhere a key.
    assert_secret_nowhere(env, DEMO_KEY)

"""A destination's first burst: its finalizer is written once, however many alerts want it at the same moment."""

from __future__ import annotations

import pytest

from tests.e2e import objects as o
from tests.harness import DEMO_KEY, Environment, put_at_once, wait_for

DESTINATIONS, ALERTS = "incidentiodestinations", "dataalerts"


@pytest.mark.timeout(90)
def test_the_first_alerts_of_a_destination_write_its_finalizer_once_without_conflicts(env: Environment) -> None:
    env.start_operator()
    env.client.apply(o.namespace())
    env.client.apply(o.secret(DEMO_KEY))
    env.client.apply(o.destination(env.sim.url))
    env.client.apply(o.rule("breaking", ["incidentio"]))
    env.wait_ready(DESTINATIONS, o.NS, "incidentio")
    # The first finalizer write is slow, so every alert of the burst wants the finalizer while it is on its way.
    env.kube.delay_next(1, 2.0, verb="patch", resource=DESTINATIONS, subresource="")
    put_at_once(env, [o.alert(f"orders-{i}") for i in range(10)])
    wait_for(lambda: len(env.requests("create_incident")) >= 10, timeout=60, what="ten incidents opened")
    writes = [
        c for c in list(env.kube.requests) if c.verb == "patch" and c.resource == DESTINATIONS and not c.subresource
    ]
    assert [c.status for c in writes] == [200]
    assert "Conflict" not in env.operator_log

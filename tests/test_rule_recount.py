"""A rule's matched-alert count: counted once a full list of the alerts is over, and written only when it changed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import kopf
import pytest

from incidentio_operator.api import ALERTS, API_VERSION, RULES, AlertRule, DataAlert, ObjectRef
from incidentio_operator.controller.metrics import Metrics
from incidentio_operator.controller.noise import NoiseControl
from incidentio_operator.controller.recorder import EventRecorder
from incidentio_operator.controller.rules import RuleReconciler
from incidentio_operator.controller.settings import Settings
from incidentio_operator.controller.store import Store
from incidentio_operator.controller.workqueue import ObjectKey, WorkQueue
from incidentio_operator.kube import KubeClient
from incidentio_operator.offline.schema import load_crds
from incidentio_operator.standins.kubesim import KubeApiStandIn
from incidentio_operator.standins.servers import BackgroundLoop

from .factories import NAMESPACE, NOW, alert_body, rule_body, with_status

RULE = ObjectRef(NAMESPACE, "production-breaking-changes")
DELAY = 0.05


@pytest.fixture
def api(loop: BackgroundLoop) -> Iterator[KubeApiStandIn]:
    stand_in = KubeApiStandIn(crds=load_crds())
    loop.run(stand_in.start())
    stand_in.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    yield stand_in
    loop.run(stand_in.stop())


class Rules:
    """A RuleReconciler over a store, a work queue and the stand-in; ``listing`` plays Resync.listing(ALERTS)."""

    def __init__(self, api: KubeApiStandIn) -> None:
        self.api = api
        self.listing = False
        self.kube = KubeClient(lambda: kopf.ConnectionInfo(server=api.url, token="t"))
        self.store = Store()
        self.queue: WorkQueue[ObjectKey] = WorkQueue()
        settings = Settings(summary_delay=DELAY)
        clock = lambda: NOW  # noqa: E731
        noise = NoiseControl(settings, self.store, self.queue, Metrics(), EventRecorder(self.kube, clock), clock)
        self.rules = RuleReconciler(
            settings, self.store, self.queue, self.kube, clock, noise=noise, alerts_listing=lambda: self.listing
        )
        body = api.put_object(rule_body(RULE.name))
        self.store.rules.upsert(AlertRule.from_body(body), body)

    def first_listing_over(self) -> None:
        self.rules.alerts_listed()

    def add_alerts(self, count: int) -> None:
        for n in range(count):
            body = with_status(alert_body(f"alert-{n}"), {"matchedRules": [RULE.name]})
            self.store.alerts.upsert(DataAlert.from_body(body), body)

    async def due(self) -> bool:
        """Wait until a recount scheduled before now is due, then: did it queue the rule?"""
        # The loop's timers fire in order of their deadlines: once this later one has, the recount's has.
        marker: WorkQueue[ObjectKey] = WorkQueue()
        marker.add_after((ALERTS, ObjectRef(NAMESPACE, "marker")), 2 * DELAY)
        for _ in range(500):
            if marker.depth:
                break
            await asyncio.sleep(0.01)
        assert marker.depth, "the loop ran no timer for 5 s"
        return self.queued()

    def queued(self) -> bool:
        return self.queue.depth == 1

    def patches(self) -> int:
        return self.api.count(verb="patch", resource=RULES)

    def matched(self) -> object:
        stored = self.api.get_object(API_VERSION, RULES, NAMESPACE, RULE.name) or {}
        return (stored.get("status") or {}).get("matchedAlerts")


@pytest.fixture
async def started(api: KubeApiStandIn) -> AsyncIterator[Rules]:
    """Just started: kopf may not have begun listing the alerts yet."""
    made = Rules(api)
    yield made
    made.rules.stop()
    await made.kube.aclose()


@pytest.fixture
def rules(started: Rules) -> Rules:
    started.first_listing_over()
    return started


async def test_a_recount_due_while_the_alerts_are_listed_waits_for_the_end_of_the_listing(rules: Rules) -> None:
    rules.add_alerts(2)
    rules.listing = True
    rules.rules.schedule_recount(RULE)
    assert not await rules.due(), "nothing is counted while the listing goes on"
    rules.add_alerts(3)
    rules.listing = False
    rules.rules.alerts_listed()
    assert await rules.due(), "the listing's end counts"
    await rules.rules.reconcile(RULE)
    assert rules.matched() == 3


async def test_a_rule_asked_to_count_when_a_listing_begins_keeps_its_count_until_it_is_over(rules: Rules) -> None:
    rules.add_alerts(1)
    rules.rules.schedule_recount(RULE)
    assert await rules.due()
    await rules.rules.reconcile(RULE)
    assert rules.matched() == 1
    rules.add_alerts(4)
    rules.rules.schedule_recount(RULE)
    assert await rules.due()
    rules.listing = True  # a relist began after the recount came due, before the rule's turn
    written = rules.patches()
    await rules.rules.reconcile(RULE)
    assert rules.patches() == written, "a partial count is not written"
    rules.listing = False
    rules.rules.alerts_listed()
    assert await rules.due()
    await rules.rules.reconcile(RULE)
    assert rules.matched() == 4


async def test_a_recount_equal_to_the_status_writes_nothing(rules: Rules) -> None:
    rules.add_alerts(3)
    rules.rules.schedule_recount(RULE)
    assert await rules.due()
    await rules.rules.reconcile(RULE)
    assert rules.matched() == 3
    written = rules.patches()
    rules.rules.schedule_recount(RULE)
    assert await rules.due()
    await rules.rules.reconcile(RULE)
    assert rules.patches() == written


async def test_before_the_first_listing_of_the_alerts_is_over_a_recount_waits_for_it(started: Rules) -> None:
    started.add_alerts(2)
    started.rules.schedule_recount(RULE)
    assert not await started.due(), "no count before the first listing"
    started.rules.alerts_listed()
    assert await started.due()
    await started.rules.reconcile(RULE)
    assert started.matched() == 2


async def test_an_alerts_watch_event_ends_the_wait_for_the_first_listing(started: Rules) -> None:
    started.rules.schedule_recount(RULE)  # no alert to list: kopf went straight to watching
    assert not await started.due()
    started.add_alerts(1)
    started.rules.alerts_watched()
    assert await started.due()
    await started.rules.reconcile(RULE)
    assert started.matched() == 1

"""Incidents ended in incident.io (decisions/delivery/ended.py) and the drift checks' read budget."""

from __future__ import annotations

from typing import Any, cast

import pytest

from incidentio_operator.api import DataAlert, Destination
from incidentio_operator.controller.drift import DRIFT_SHARE, TICK, DriftChecker, ReadBudget
from incidentio_operator.controller.metrics import Metrics
from incidentio_operator.controller.store import Store
from incidentio_operator.decisions.delivery.ended import ENDED_REASON, how_it_ended, record_ended
from incidentio_operator.decisions.delivery.model import Delivery, State
from incidentio_operator.incidentio import Account, ApiKey, Priority
from incidentio_operator.incidentio.models import Incident, IncidentStatus
from tests import factories

CLOSED_ID = "01CLOSED"


def incident(category: str, status_id: str = "01OTHER", name: str = "Some status") -> Incident:
    status = IncidentStatus(id=status_id, name=name, category=category, rank=1, description=None)
    return Incident(
        id="01INC",
        reference="INC-7",
        name="[AnomalyArmor] Column removed",
        permalink=None,
        mode="standard",
        visibility="public",
        incident_status=status,
        severity=None,
        summary=None,
        created_at=None,
    )


@pytest.mark.parametrize("category", ["declined", "merged", "canceled"])
def test_every_terminal_category_but_closed_is_named_as_it_ended(category: str) -> None:
    assert how_it_ended(incident(category, name="Gone"), CLOSED_ID) == f"{category} in incident.io (status Gone)"


def test_a_closed_incident_is_ended_whichever_closed_status_it_has() -> None:
    assert how_it_ended(incident("closed", CLOSED_ID, "Closed"), CLOSED_ID) == "closed in incident.io (status Closed)"
    assert how_it_ended(incident("closed", "01WONTFIX", "Won't fix"), CLOSED_ID).startswith("closed in incident.io")


@pytest.mark.parametrize("category", ["triage", "live", "learning", "paused"])
def test_an_incident_in_a_live_category_has_not_ended(category: str) -> None:
    assert how_it_ended(incident(category), CLOSED_ID) == ""


def test_an_incident_that_is_gone_was_deleted() -> None:
    assert how_it_ended(None, CLOSED_ID) == "deleted in incident.io"


def test_an_ended_delivery_is_closed_with_the_reason_and_is_no_longer_retried() -> None:
    failing = Delivery(
        "incidentio",
        1,
        "key",
        State.FAILED,
        incident_id="01INC",
        reference="INC-7",
        last_error="HTTP 422: incident is declined",
        next_attempt_at="2026-12-01T10:00:00Z",
    )
    ended = record_ended(failing, "declined in incident.io (status Declined)", "2026-12-01T09:00:00Z")
    assert ended.state == State.CLOSED and ended.reason == ENDED_REASON
    assert ended.message == "incident INC-7 was declined in incident.io (status Declined)"
    assert (ended.last_error, ended.next_attempt_at, ended.closed_at) == ("", "", "2026-12-01T09:00:00Z")


def test_reads_stay_within_five_percent_of_the_key_however_many_incidents_are_due() -> None:
    refill = 20.0  # incident.io: 1,200 a minute
    budget, now, reads = ReadBudget(refill * DRIFT_SHARE, 0.0), 0.0, 0
    # 1,000 open incidents, all due, asked for every 5 s (the checker's tick) for ten minutes.
    while now < 600.0:
        reads += sum(budget.take(now) for _ in range(1_000))
        now += TICK
    share = refill * DRIFT_SHARE * 600.0  # 600 reads: 5 % of 12,000
    assert share - budget.capacity <= reads <= share + budget.capacity


class _Reads:
    """incident.io as the drift checker sees it: every incident it reads is still open."""

    def __init__(self) -> None:
        self.read: list[str] = []

    async def get_incident(self, account: Account, incident_id: str, *, priority: Priority) -> Incident:
        self.read.append(incident_id)
        return factories.incident(incident_id=incident_id)


class _Keys:
    async def account(self, destination: Destination, *, closing: bool = False) -> Account:
        return Account("http://127.0.0.1:8089", ApiKey("key"))


def _holding(incident_id: str, epoch: int, version: str) -> DataAlert:
    delivery = {"destination": factories.DESTINATION, "epoch": epoch, "state": "Open", "incidentId": incident_id}
    body = factories.alert_body(status={"epoch": epoch, "deliveries": [delivery]})
    body["metadata"]["resourceVersion"] = version
    return DataAlert.from_body(body)


async def test_each_round_reads_the_incidents_the_alerts_hold_now() -> None:
    store, reads, clock = Store(), _Reads(), [0.0]
    spec = {**factories.destination_body()["spec"], "driftCheck": {"interval": "1m"}}
    destination_body = factories.destination_body(spec=spec)
    store.destinations.upsert(Destination.from_body(destination_body), destination_body)
    checker = DriftChecker(
        store,
        cast(Any, reads),
        cast(Any, _Keys()),
        cast(Any, None),
        Metrics(),
        key_refill_per_second=20.0,
        allow_cross_namespace=False,
        monotonic=lambda: clock[0],
    )

    def hold(alert: DataAlert) -> None:
        store.alerts.upsert(alert, {"metadata": {"resourceVersion": alert.resource_version}})

    hold(_holding("01FIRST", 1, "100"))
    assert await checker.check_due() == 0, "first seen open: due a whole interval later"
    clock[0] = 61.0
    assert await checker.check_due() == 1 and reads.read == ["01FIRST"]
    # Closed and triggered again: the next round follows the new status, not what it read before.
    hold(_holding("01SECOND", 2, "101"))
    clock[0] = 122.0
    assert await checker.check_due() == 0
    clock[0] = 183.0
    assert await checker.check_due() == 1 and reads.read == ["01FIRST", "01SECOND"]

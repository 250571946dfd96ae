"""Incidents ended in incident.io (decisions/delivery/ended.py) and the drift checks' read budget."""

from __future__ import annotations

import pytest

from incidentio_operator.controller.drift import DRIFT_SHARE, TICK, ReadBudget
from incidentio_operator.decisions.delivery.ended import ENDED_REASON, how_it_ended, record_ended
from incidentio_operator.decisions.delivery.model import Delivery, State
from incidentio_operator.incidentio.models import Incident, IncidentStatus

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

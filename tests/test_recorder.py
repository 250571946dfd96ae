"""The Event recorder: Events go out in the background, a few at a time, stamped when they happened."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any, cast

from incidentio_operator.controller.recorder import SENDERS, EventRecorder

from .factories import NOW, alert_body


class _Kube:
    """The Kubernetes API as the recorder uses it: each Event post is answered when the test lets it."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, str, datetime.datetime]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.answer = asyncio.Event()

    async def post_event(self, involved: Any, *, type_: str, reason: str, message: str, now: datetime.datetime) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.answer.wait()
        finally:
            self.in_flight -= 1
        self.posted.append((reason, message, now))


async def wait_until(condition: Any) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def test_events_go_out_a_few_at_a_time_each_stamped_when_it_was_posted() -> None:
    kube, clock = _Kube(), [NOW]
    recorder = EventRecorder(cast(Any, kube), lambda: clock[0])
    involved = alert_body()
    for n in range(3 * SENDERS):
        clock[0] = NOW + datetime.timedelta(seconds=n)
        recorder.post(involved, "Normal", "IncidentCreated", f"incident INC-{n} created")
    await wait_until(lambda: kube.in_flight == SENDERS)
    kube.answer.set()
    await wait_until(lambda: len(kube.posted) == 3 * SENDERS)
    assert kube.most_in_flight == SENDERS, "the status writes of the next alerts are not queued behind them"
    # Each Event once, with the moment it was posted (not the later one it was sent at).
    expected = [f"incident INC-{n} created" for n in range(3 * SENDERS)]
    assert sorted(message for _, message, _ in kube.posted) == sorted(expected)
    for _, message, at in kube.posted:
        assert at == NOW + datetime.timedelta(seconds=int(message.split("-")[1].split()[0]))
    await recorder.aclose()


async def test_closing_drops_what_waits() -> None:
    kube = _Kube()
    recorder = EventRecorder(cast(Any, kube), lambda: NOW)
    for n in range(2 * SENDERS):
        recorder.post(alert_body(), "Normal", "IncidentCreated", f"incident INC-{n} created")
    await wait_until(lambda: kube.in_flight == SENDERS)
    await recorder.aclose()
    kube.answer.set()
    await asyncio.sleep(0)
    assert kube.posted == [] and kube.in_flight == 0


async def test_nothing_is_posted_about_nothing() -> None:
    kube = _Kube()
    recorder = EventRecorder(cast(Any, kube), lambda: NOW)
    recorder.post({}, "Normal", "IncidentCreated", "incident INC-1 created")
    await asyncio.sleep(0)
    assert kube.in_flight == 0
    await recorder.aclose()

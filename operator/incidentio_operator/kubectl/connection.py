"""``kubectl armor test DESTINATION``: request a destination's connection test and wait for the operator's answer."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from incidentio_operator.api.common import condition_of
from incidentio_operator.api.destination import TEST_REQUESTED_ANNOTATION
from incidentio_operator.kubectl.cluster import DESTINATIONS, Cluster

# Ready reasons under which the operator runs no test, whatever the annotation says.
UNTESTABLE = {
    "Suspended": "set spec.suspend to false first",
    "InvalidSpec": "fix the spec first",
    "NoAPIKey": "put the API key in the Secret first; the operator tests again by itself when it changes",
}


def request_value(now: datetime.datetime) -> str:
    """A new annotation value: the time to the microsecond, so two requests in one second differ."""
    return now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run_test(
    cluster: Cluster,
    name: str,
    out: TextIO,
    *,
    timeout: float,
    poll_interval: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Annotate, wait up to `timeout` seconds for status.lastTest to answer it, print it.

    Exit status: 0 when the test succeeded, 1 when it failed, could not run or got no answer in time.
    """
    namespace = cluster.namespace
    where = f"IncidentIoDestination {namespace}/{name}"
    body = cluster.get(DESTINATIONS, namespace, name)
    ready = condition_of(body.get("status"), "Ready") or {}
    reason = str(ready.get("reason") or "")
    if reason in UNTESTABLE:
        print(f"{where} cannot be tested: {reason}: {ready.get('message')}; {UNTESTABLE[reason]}", file=out)
        return 1
    requested = request_value(datetime.datetime.now(datetime.UTC))
    cluster.patch(DESTINATIONS, namespace, name, {"metadata": {"annotations": {TEST_REQUESTED_ANNOTATION: requested}}})
    print(f"{where}: connection test requested ({TEST_REQUESTED_ANNOTATION}={requested})", file=out)
    deadline = clock() + timeout
    while True:
        body = cluster.get(DESTINATIONS, namespace, name)
        status = body.get("status") or {}
        last = status.get("lastTest") or {}
        if last.get("requestedAt") == requested:
            return _report(where, last, condition_of(status, "Ready") or {}, out)
        if clock() >= deadline:
            ready = condition_of(status, "Ready") or {}
            print(
                f"{where}: no answer within {timeout:g}s (Ready {ready.get('status', 'Unknown')}: "
                f"{ready.get('reason', '')}); is the operator running? "
                "kubectl -n incidentio-operator get pods",
                file=out,
            )
            return 1
        sleep(poll_interval)


def _report(where: str, last: Mapping[str, Any], ready: Mapping[str, Any], out: TextIO) -> int:
    result = str(last.get("result") or "Failed")
    print(f"{where}: {result} ({last.get('mode', 'Verify')}) at {last.get('time', '?')}", file=out)
    print(f"  {last.get('message', '')}", file=out)
    if last.get("incidentReference"):
        print(f"  test incident: {last['incidentReference']}", file=out)
    print(f"  Ready: {ready.get('status', 'Unknown')} ({ready.get('reason', '')})", file=out)
    return 0 if result == "Succeeded" else 1

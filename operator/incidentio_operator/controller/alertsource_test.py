"""An AlertEvent destination's connection test as it runs: the calls it makes, judged by decisions.alertsource_test.

incident.io has no call that checks an alert source token without sending an event, so ``Verify`` checks
the token is there (and sendable, controller.tokens) and, with an API key, that the alert source exists
and is an HTTP source; ``CreateTestIncident`` also sends a test event, firing then resolved.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from incidentio_operator.api import Destination, DestinationSpec
from incidentio_operator.api.alertsource import ALERT_EVENT_MODE
from incidentio_operator.controller.credentials import Credentials
from incidentio_operator.controller.tokens import AlertSourceTokens
from incidentio_operator.decisions import alertsource_test as judge
from incidentio_operator.decisions.alertevents import connection_test_events
from incidentio_operator.decisions.connection_test import TestResult
from incidentio_operator.incidentio import Account, AlertSource, AlertSourceAccount, IncidentIoClient, IncidentIoError


async def run_alert_source_test(
    client: IncidentIoClient,
    spec: DestinationSpec,
    source: AlertSourceAccount,
    account: Account | None,
    *,
    send_test_event: bool,
    test_key: str,
) -> TestResult:
    """GET /v2/alert_sources/{id} when ``account`` is given; with ``send_test_event``, the test event's pair."""
    wanted = spec.alert_source
    assert wanted is not None
    found: AlertSource | None = None
    if account is not None:
        try:
            found = await client.get_alert_source(account, wanted.config_id)
        except IncidentIoError as error:
            return judge.alert_source_failure(error, wanted)
        wrong = judge.check_alert_source(found, wanted)
        if wrong is not None:
            return wrong
    if not send_test_event:
        return judge.verified(wanted, found)
    firing, resolved = connection_test_events(spec.incident.name_prefix, test_key)
    try:
        await client.create_alert_event(source, firing)
        await client.create_alert_event(source, resolved)
    except IncidentIoError as error:
        return judge.event_failure(error, wanted)
    return judge.verified(wanted, found, test_key)


@dataclass(frozen=True)
class TestSetup:
    """What a destination's connection test runs with: its Secrets' versions, and the test, or why it cannot run.

    ``run(create_test, test_key)`` runs the test; without it ``reason`` and ``message`` say what is
    missing, and ``warn`` that a value is there but unusable (worth a Warning Event). ``status`` holds the
    status fields the test adds (``deliveryMode``, ``alertSource``) and ``last_test`` those it adds to
    ``lastTest`` (``deduplicationKey``); ``run`` fills them in as it learns them.
    """

    secret_version: str
    run: Callable[[bool, str], Awaitable[TestResult]] | None = None
    reason: str = ""
    message: str = ""
    warn: bool = False
    status: dict[str, Any] = field(default_factory=dict)
    last_test: dict[str, Any] = field(default_factory=dict)


async def alert_events_setup(
    client: IncidentIoClient, credentials: Credentials, tokens: AlertSourceTokens, destination: Destination
) -> TestSetup:
    """The test of an AlertEvent destination: its token must be there and not refused; an API key is optional."""
    spec = destination.spec
    assert spec is not None and spec.alert_source is not None
    wanted = spec.alert_source
    read = await tokens.read(destination)
    if read.token is None:
        if read.problem:
            return TestSetup(read.secret_version, reason="InvalidAlertSourceToken", message=read.problem, warn=True)
        message = f"No alert source token in {wanted.token} (spec.alertSource.tokenSecretRef)"
        return TestSetup(read.secret_version, reason="NoAlertSourceToken", message=message)
    if tokens.refused(destination.ref, read):
        refused = judge.token_refused(wanted, None)
        return TestSetup(read.secret_version, reason=refused.reason, message=refused.message, warn=True)
    version, account = read.secret_version, None
    if spec.secret_name:
        key = await credentials.read(destination)
        version = f"{version}/{key.secret_version}"
        if key.api_key is None:
            reason, message = ("InvalidAPIKey", key.problem) if key.problem else ("NoAPIKey", "No API key configured")
            return TestSetup(version, reason=reason, message=message, warn=bool(key.problem))
        account = Account(spec.base_url, key.api_key)
    source = AlertSourceAccount(spec.base_url, wanted.config_id, read.token)
    found: dict[str, Any] = {"configId": wanted.config_id, "tokenVersion": read.secret_version}
    last_test: dict[str, Any] = {}

    async def run(create_test: bool, test_key: str) -> TestResult:
        result = await run_alert_source_test(
            client, spec, source, account, send_test_event=create_test, test_key=test_key
        )
        if result.reason == judge.TOKEN_REFUSED:
            tokens.refuse(destination.ref)
        if result.ok and account is not None:
            found.update(name=result.identity_name, sourceType="http")
        if result.ok and create_test:
            last_test["deduplicationKey"] = test_key
        return result

    return TestSetup(version, run, status={"deliveryMode": ALERT_EVENT_MODE, "alertSource": found}, last_test=last_test)

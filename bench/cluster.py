"""One bench cluster: the e2e harness's stand-in and simulator, a team set up in them, and the operator."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.e2e import objects
from tests.harness import DEMO_KEY, FULL_ROLES, Environment, wait_for

from bench.process import OperatorProcess
from incidentio_operator.standins.simulator import ApiKeyConfig, RecordedRequest, SimulatorConfig

NS = "bench"
DESTINATION = "incidentio"
RULE = "all-schema-changes"
ALERTS = "dataalerts"
ALERTS_PATH = f"/apis/{objects.GV}/namespaces/{NS}/{ALERTS}"
# Marks the bench's own requests in the stand-in's log, so they are never counted as the operator's.
BENCH_MANAGER = "fieldManager=bench"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


class Cluster:
    """An `Environment` with one namespace, Secret, destination and rule, and the operator as a measured process."""

    def __init__(self, workdir: Path, *, rate_limit_per_minute: int | None = None, refill_per_second: float = 20.0):
        workdir.mkdir(parents=True, exist_ok=True)
        config = SimulatorConfig(
            keys={DEMO_KEY: ApiKeyConfig(name="demo", roles=FULL_ROLES)},
            rate_limit_per_minute=rate_limit_per_minute,
            refill_per_second=refill_per_second,
        )
        self.env = Environment(workdir, config)
        self.workdir = workdir
        self.operator: OperatorProcess | None = None
        # The simulator stamps requests with time.monotonic(), the stand-in with time.time(); both run in
        # this process, so one offset taken now maps the first onto the second.
        self.monotonic_to_wall = time.time() - time.monotonic()

    def setup_team(self) -> None:
        client = self.env.client
        client.apply(objects.namespace(NS))
        client.apply(objects.secret(DEMO_KEY, ns=NS))
        client.apply(objects.destination(self.env.sim.url, DESTINATION, NS))
        client.apply(objects.rule(RULE, [DESTINATION], NS, eventTypes=["schema_change"]))

    def start_operator(self, *args: str) -> OperatorProcess:
        self.operator = OperatorProcess(self.env.kubeconfig, self.workdir / "operator.log", args)
        return self.operator

    def wait_team_ready(self, timeout: float = 30.0) -> None:
        self.env.wait_ready("incidentiodestinations", NS, DESTINATION, timeout=timeout)
        self.env.wait_ready("alertrules", NS, RULE, timeout=timeout)

    def close(self) -> None:
        if self.operator is not None:
            self.operator.stop()
        self.env.close()

    # ------------------------------------------------------------------ server-side logs

    def sim_wall(self, request: RecordedRequest) -> float:
        return request.at + self.monotonic_to_wall

    def sim_requests(self, operation: str | None = None, *, ok: bool | None = None) -> list[RecordedRequest]:
        return [
            r
            for r in self.env.sim.requests
            if (operation is None or r.operation == operation) and (ok is None or (r.status < 300) == ok)
        ]

    def operator_kube_calls(self, since: float = 0.0) -> list[Any]:
        """Every stand-in request but the bench's own, from wall time ``since``."""
        return [c for c in list(self.env.kube.requests) if c.at >= since and BENCH_MANAGER not in c.path]

    def bench_kube_calls(self, verb: str) -> list[Any]:
        return [c for c in list(self.env.kube.requests) if c.verb == verb and BENCH_MANAGER in c.path]

    def incident_alerts(self) -> dict[str, str]:
        """Incident ID → the name of the DataAlert it was opened for (the alert's title ends with its name)."""
        return {i["id"]: str(i["name"]).rsplit(" ", 1)[-1] for i in self.env.sim.incidents}

    def wait_incidents(self, *, opened: int | None = None, closed: int | None = None, timeout: float = 120.0) -> None:
        def done() -> bool:
            creates = {r.body["idempotency_key"] for r in self.sim_requests("create_incident", ok=True)}
            edits = {r.path for r in self.sim_requests("edit_incident", ok=True)}
            return (opened is None or len(creates) >= opened) and (closed is None or len(edits) >= closed)

        wait_for(done, timeout=timeout, what=f"{opened} incidents opened, {closed} closed")


def alert_names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i:05d}" for i in range(count)]


def alert_body(name: str) -> dict[str, Any]:
    return objects.alert(name, NS)

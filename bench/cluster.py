"""One bench cluster: the e2e harness's stand-in and simulator, a team set up in them, and the operator."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from tests.e2e import objects
from tests.harness import DEMO_KEY, FULL_ROLES, Environment, wait_for

from bench.process import OperatorProcess
from bench.scrape import free_port
from incidentio_operator.controller.looplag import sample_lag
from incidentio_operator.controller.metrics import LAG_BUCKETS
from incidentio_operator.standins.simulator import ApiKeyConfig, RecordedRequest, SimulatorConfig

NS = "bench"
DESTINATION = "incidentio"
RULE = "all-schema-changes"
ALERTS = "dataalerts"


def alerts_path(namespace: str = NS) -> str:
    return f"/apis/{objects.GV}/namespaces/{namespace}/{ALERTS}"


# Marks the bench's own requests in the stand-in's log, so they are never counted as the operator's.
BENCH_MANAGER = "fieldManager=bench"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


class Cluster:
    """An `Environment` with one namespace, Secret, destination and rule, and the operator as a measured process."""

    def __init__(
        self,
        workdir: Path,
        *,
        rate_limit_per_minute: int | None = None,
        refill_per_second: float = 20.0,
        keys: tuple[str, ...] = (DEMO_KEY,),
    ):
        workdir.mkdir(parents=True, exist_ok=True)
        config = SimulatorConfig(
            # Each key its own account name, so the simulator's log says whose every request was.
            keys={key: ApiKeyConfig(name="demo" if key == DEMO_KEY else key, roles=FULL_ROLES) for key in keys},
            rate_limit_per_minute=rate_limit_per_minute,
            refill_per_second=refill_per_second,
        )
        self.env = Environment(workdir, config)
        self.workdir = workdir
        self.operator: OperatorProcess | None = None
        self.metrics_port = 0
        # The stand-in's and simulator's own loop (in this process): its lag tells a stall of theirs, or of
        # the whole machine, from one of the operator's.
        self.standin_lag = Histogram("standin_loop_lag_seconds", "", buckets=LAG_BUCKETS, registry=CollectorRegistry())
        self._standin_lag_task = self.env.loop.submit(sample_lag(self.standin_lag))
        # The simulator stamps requests with time.monotonic(), the stand-in with time.time(); both run in
        # this process, so one offset taken now maps the first onto the second.
        self.monotonic_to_wall = time.time() - time.monotonic()

    def setup_team(self, namespace: str = NS, key: str = DEMO_KEY, **destination_spec: Any) -> None:
        client = self.env.client
        client.apply(objects.namespace(namespace))
        client.apply(objects.secret(key, ns=namespace))
        destination = objects.destination(self.env.sim.url, DESTINATION, namespace)
        destination["spec"].update(destination_spec)
        client.apply(destination)
        client.apply(objects.rule(RULE, [DESTINATION], namespace, eventTypes=["schema_change"]))

    def start_operator(self, *args: str) -> OperatorProcess:
        # Its own Prometheus endpoint, for the event-loop lag it samples (the last --metrics-port wins).
        self.metrics_port = free_port()
        # Production's Secret polling (the e2e harness polls every second, for tests of key rotation).
        arguments = ("--metrics-port", str(self.metrics_port), "--secret-poll-interval", "30", *args)
        self.operator = OperatorProcess(self.env.kubeconfig, self.workdir / "operator.log", arguments)
        return self.operator

    def wait_team_ready(self, timeout: float = 30.0, namespace: str = NS) -> None:
        self.env.wait_ready("incidentiodestinations", namespace, DESTINATION, timeout=timeout)
        self.env.wait_ready("alertrules", namespace, RULE, timeout=timeout)

    def close(self) -> None:
        self._standin_lag_task.cancel()
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
            # Incident IDs are only unique within an account: several keys may each have their own 01J..01.
            edits = {(r.key_name, r.path) for r in self.sim_requests("edit_incident", ok=True)}
            return (opened is None or len(creates) >= opened) and (closed is None or len(edits) >= closed)

        wait_for(done, timeout=timeout, what=f"{opened} incidents opened, {closed} closed")


def alert_names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i:05d}" for i in range(count)]


def alert_body(name: str, namespace: str = NS) -> dict[str, Any]:
    return objects.alert(name, namespace)

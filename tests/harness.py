"""The end-to-end bench: the API stand-in and the incident.io simulator on loopback, the operator as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from incidentio_operator.offline.schema import load_crds
from incidentio_operator.standins.kubesim import KubeApiStandIn, StandInClient
from incidentio_operator.standins.servers import BackgroundLoop
from incidentio_operator.standins.simulator import ApiKeyConfig, Faults, Simulator, SimulatorConfig
from incidentio_operator.standins.simulator.faults import Fault

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
GROUP_VERSION = "alerting.armor.dev/v1alpha1"
FULL_ROLES = frozenset({"viewer", "incident_creator", "incident_editor"})
# The key examples/secret.yaml carries for the local simulator.
DEMO_KEY = "sim-demo-key"

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], *, timeout: float = 20.0, what: str = "condition") -> T:
    """Poll until ``check`` returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def operator_command(*args: str) -> list[str]:
    """``incidentio-operator run`` over every namespace, with no liveness or metrics port to collide on.

    Secrets are re-read every second (instead of every 30) so that a test sees a fixed or rotated key soon.
    """
    return [
        sys.executable,
        "-m",
        "incidentio_operator",
        "run",
        "--all-namespaces",
        "--liveness",
        "",
        "--metrics-port",
        "0",
        "--secret-poll-interval",
        "1",
        *args,
    ]


def operator_environment(kubeconfig: Path) -> dict[str, str]:
    return {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"}


class Operator:
    """``incidentio-operator run`` as a child process, its output captured to a file."""

    def __init__(self, kubeconfig: Path, log_path: Path, args: Sequence[str] = ()) -> None:
        self.log_path = log_path
        env = operator_environment(kubeconfig)
        command = operator_command("--verbose", *args)
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no flushing; what a crash or an OOM kill looks like."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


class Environment:
    """One cluster stand-in, one incident.io simulator, and the operator processes run against them."""

    def __init__(self, workdir: Path, simulator_config: SimulatorConfig | None = None) -> None:
        self.workdir = workdir
        self.loop = BackgroundLoop("e2e-servers")
        self.kube = KubeApiStandIn(crds=load_crds())
        config = simulator_config or SimulatorConfig(
            keys={DEMO_KEY: ApiKeyConfig(name="demo", roles=FULL_ROLES)}, rate_limit_per_minute=None
        )
        self.sim = Simulator(config)
        self.loop.run(self.kube.start())
        self.loop.run(self.sim.start())
        self.kubeconfig = self.kube.write_kubeconfig(workdir / "kubeconfig")
        self.client = StandInClient(self.kube.url)
        self.operators: list[Operator] = []

    def start_operator(self, *args: str) -> Operator:
        operator = Operator(self.kubeconfig, self.workdir / "operator.log", args)
        self.operators.append(operator)
        return operator

    @property
    def operator_log(self) -> str:
        path = self.workdir / "operator.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for operator in self.operators:
            operator.stop()
        self.client.close()
        self.loop.run(self.sim.stop())
        self.loop.run(self.kube.stop())
        self.loop.close()

    # ------------------------------------------------------------------ objects

    def apply_file(self, path: Path, **replacements: str) -> list[dict[str, Any]]:
        text = path.read_text()
        for old, new in replacements.items():
            text = text.replace(old, new)
        return list(self.client.apply_yaml(text))

    def apply_examples(self) -> None:
        """Every file of examples/ (not later/), the destination pointed at this simulator."""
        base_url = "http://127.0.0.1:8765"
        for name in ("namespace.yaml", "secret.yaml", "destination.yaml", "rules.yaml"):
            self.apply_file(EXAMPLES / name, **{base_url: self.sim.url})
        for path in sorted((EXAMPLES / "alerts").glob("*.yaml")):
            self.apply_file(path)

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.client.get(GROUP_VERSION, plural, namespace, name)

    def status(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        body = self.get(plural, namespace, name) or {}
        return dict(body.get("status") or {})

    def condition(self, plural: str, namespace: str, name: str, kind: str = "Ready") -> dict[str, Any]:
        for condition in self.status(plural, namespace, name).get("conditions") or ():
            if condition.get("type") == kind:
                return dict(condition)
        return {}

    def wait_ready(self, plural: str, namespace: str, name: str, *, timeout: float = 20.0) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            body = self.get(plural, namespace, name) or {}
            status = body.get("status") or {}
            condition = next((c for c in status.get("conditions") or () if c.get("type") == "Ready"), {})
            current = status.get("observedGeneration") == (body.get("metadata") or {}).get("generation")
            return status if current and condition.get("status") == "True" else None

        return wait_for(ready, timeout=timeout, what=f"{plural} {namespace}/{name} Ready")

    def wait_reason(
        self, plural: str, namespace: str, name: str, reason: str, *, timeout: float = 20.0
    ) -> dict[str, Any]:
        return wait_for(
            lambda: (c := self.condition(plural, namespace, name)) and c.get("reason") == reason and c,
            timeout=timeout,
            what=f"{plural} {namespace}/{name} reason {reason} (now {self.condition(plural, namespace, name)})",
        )

    def wait_message(
        self, plural: str, namespace: str, name: str, text: str, *, timeout: float = 20.0
    ) -> dict[str, Any]:
        """Wait until the Ready condition's message contains ``text``."""
        return wait_for(
            lambda: (c := self.condition(plural, namespace, name)) and text in str(c.get("message")) and c,
            timeout=timeout,
            what=f"{plural} {namespace}/{name} message with {text!r} (now {self.condition(plural, namespace, name)})",
        )

    def incidents(self, *, mode: str | None = None) -> list[dict[str, Any]]:
        return [i for i in self.sim.incidents if mode is None or i.get("mode") == mode]

    def requests(self, operation: str) -> list[Any]:
        return [r for r in self.sim.requests if r.operation == operation]


def iter_strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON-like value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from iter_strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from iter_strings(item)


# ---------------------------------------------------------------------- exactly-once bench (issue 4)

# The scenarios of issue 4 run at CI scale by default; INCIDENTIO_FULL=1 runs the full counts.
FULL = os.environ.get("INCIDENTIO_FULL", "") == "1"


def scaled(ci: int, full: int) -> int:
    """The CI count, or the issue's full count when INCIDENTIO_FULL=1."""
    return full if FULL else ci


def alert_of_incident(incident: dict[str, Any]) -> str:
    """``namespace/name`` of the DataAlert an incident was opened for, read from the link back in its summary."""
    summary = str(incident.get("summary") or "")
    marker = "kubectl -n "
    start = summary.find(marker)
    if start < 0:
        return ""
    namespace, _, rest = summary[start + len(marker) :].partition(" get dataalert ")
    return f"{namespace}/{rest.split()[0]}" if rest.split() else ""


class Books:
    """incident.io's incidents set against the DataAlerts' statuses: the figures issue 4 asks for."""

    def __init__(self, env: Environment, namespaces: Sequence[str]) -> None:
        self.incidents = [i for i in env.sim.incidents if i.get("mode") != "test"]
        self.alerts = [
            body for namespace in namespaces for body in env.client.list(GROUP_VERSION, "dataalerts", namespace)
        ]
        per_delivery: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for incident in self.incidents:
            creator = str(((incident.get("creator") or {}).get("api_key") or {}).get("name") or "")
            per_delivery.setdefault((alert_of_incident(incident), creator), []).append(incident)
        self.per_delivery = per_delivery
        self.by_id = {str(i["id"]): i for i in self.incidents}

    @property
    def created(self) -> int:
        return len(self.incidents)

    @property
    def duplicates(self) -> int:
        """Incidents beyond the first for one (alert, destination key); every scenario here has one epoch."""
        return sum(len(found) - 1 for found in self.per_delivery.values())

    def open_incidents(self) -> list[dict[str, Any]]:
        return [i for i in self.incidents if (i.get("incident_status") or {}).get("category") != "closed"]

    def disagreements(self) -> list[str]:
        """Deliveries whose state says something incident.io does not (or that name no incident at all)."""
        problems: list[str] = []
        named: set[str] = set()
        for body in self.alerts:
            meta = body["metadata"]
            for delivery in (body.get("status") or {}).get("deliveries") or ():
                where = f"{meta['namespace']}/{meta['name']} {delivery.get('destination')}#{delivery.get('epoch')}"
                incident_id = str(delivery.get("incidentId") or "")
                state = delivery.get("state")
                if not incident_id:
                    problems.append(f"{where}: state {state} without an incident")
                    continue
                named.add(incident_id)
                incident = self.by_id.get(incident_id)
                if incident is None:
                    problems.append(f"{where}: incident {incident_id} does not exist in incident.io")
                    continue
                category = (incident.get("incident_status") or {}).get("category")
                if (state == "Closed") != (category == "closed"):
                    problems.append(f"{where}: state {state} but incident.io says {category}")
        problems.extend(f"incident {i} is named by no DataAlert" for i in sorted(set(self.by_id) - named))
        return problems


def assert_secret_nowhere(env: Environment, *secrets: str) -> None:
    """No API key in the operator's log, any Event, any custom object's status, or what incident.io recorded."""
    places: list[tuple[str, Any]] = [("operator log", env.operator_log)]
    places.extend((f"event {e['metadata']['name']}", e) for e in env.client.events())
    for plural in ("incidentiodestinations", "alertrules", "dataalerts"):
        for body in env.client.list(GROUP_VERSION, plural):
            places.append((f"{plural} {body['metadata']['name']} status", body.get("status") or {}))
    for request in env.sim.requests:
        places.append((f"simulator record {request.operation}", [request.path, request.body, request.key_name]))
    for secret in secrets:
        assert secret, "an empty secret proves nothing"
        for where, value in places:
            texts = [value] if isinstance(value, str) else list(iter_strings(value))
            assert not any(secret in text for text in texts), f"API key found in {where}"


def rate_in_paced_phase(
    times: Sequence[float], capacity: int, refill_per_second: float, *, since: float = float("-inf")
) -> tuple[float, int, float]:
    """(calls per second, calls, seconds) from the moment, at or after ``since``, a bucket like incident.io's ran dry.

    The bucket is replayed over the accepted calls' times, so the phase starts exactly where a client
    could no longer go faster than the refill; a paced client then sustains about the refill rate.
    """
    ordered = sorted(times)
    tokens, updated = float(capacity), ordered[0] if ordered else 0.0
    for index, at in enumerate(ordered):
        tokens = min(float(capacity), tokens + (at - updated) * refill_per_second) - 1.0
        updated = at
        if tokens < 1.0 and at >= since:
            paced = ordered[index:]
            seconds = paced[-1] - paced[0]
            # n calls span n-1 refill intervals.
            return ((len(paced) - 1) / seconds if seconds > 0 else 0.0), len(paced), seconds
    return 0.0, 0, 0.0


class WatchedFaults(Faults):
    """The simulator's fault plan, noting each fault as its request arrives, so a test knows a call is in flight.

    The simulator records a request only once it is answered; a hung call would be invisible until then.
    """

    def __init__(self) -> None:
        super().__init__()
        self.taken: list[tuple[str, str]] = []

    def take(self, operation: str) -> Fault | None:
        fault = super().take(operation)
        if fault is not None:
            self.taken.append((operation, fault.kind))
        return fault


def watch_faults(env: Environment) -> WatchedFaults:
    faults = WatchedFaults()
    env.sim.faults = faults
    return faults


def put_at_once(env: Environment, objects: Sequence[dict[str, Any]]) -> None:
    """Write many objects in one turn of the stand-in's loop, so the operator meets a burst, not the test's pace."""

    async def write() -> None:
        for obj in objects:
            env.kube.put_object(obj)

    env.loop.run(write(), timeout=120)


def set_state_at_once(env: Environment, namespace: str, names: Sequence[str], state: str) -> None:
    """Move many DataAlerts to ``state`` in one turn of the stand-in's loop (their status left as it is)."""

    async def write() -> None:
        for name in names:
            body = env.kube.get_object(GROUP_VERSION, "dataalerts", namespace, name)
            assert body is not None, name
            body.pop("status", None)
            body["spec"]["state"] = state
            env.kube.put_object(body)

    env.loop.run(write(), timeout=120)

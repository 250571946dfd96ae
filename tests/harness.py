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

from incidentio_operator.kubesim import KubeApiStandIn, StandInClient
from incidentio_operator.schema import load_crds
from incidentio_operator.servers import BackgroundLoop
from incidentio_operator.simulator import ApiKeyConfig, Simulator, SimulatorConfig

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


class Operator:
    """``incidentio-operator run`` as a child process, its output captured to a file."""

    def __init__(self, kubeconfig: Path, log_path: Path, args: Sequence[str] = ()) -> None:
        self.log_path = log_path
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"}
        command = [
            sys.executable,
            "-m",
            "incidentio_operator",
            "run",
            "--all-namespaces",
            "--liveness",
            "",
            "--metrics-port",
            "0",
            "--verbose",
            *args,
        ]
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

"""``incidentio-operator demo``: the whole loop on one machine — API stand-in, simulator, the real operator."""

from __future__ import annotations

import argparse
import datetime
import logging
import signal
import socket
import textwrap
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from incidentio_operator.api.common import API_VERSION, utcnow
from incidentio_operator.commands.demo_alert_events import add_alert_sources, walk_through
from incidentio_operator.offline.schema import crds_dir, load_crds

T = TypeVar("T")
NAMESPACE = "data-platform"
DESTINATION = "incidentio-data-platform"
EXAMPLES_BASE_URL = "http://127.0.0.1:8765"
DEMO_KEY = "sim-demo-key"
KINDS = (
    ("incidentiodestinations", "IncidentIoDestination"),
    ("alertrules", "AlertRule"),
    ("dataalerts", "DataAlert"),
    ("alertblackouts", "AlertBlackout"),
)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="run the whole loop locally: no cluster, no account, no network",
        description=(
            "Start a Kubernetes API stand-in and an incident.io simulator on loopback, apply examples/, run the "
            "real operator against them, and walk through an alert's life: opened once, routed, closed."
        ),
    )
    parser.add_argument("--examples", type=Path, default=crds_dir().parent / "examples", help="the examples folder")
    parser.add_argument(
        "--serve",
        action="store_true",
        help="after the walk-through, keep the simulator and the stand-in running until Ctrl-C",
    )
    parser.add_argument("--port", type=int, default=8765, help="simulator port (the examples point at 8765)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each step")
    parser.add_argument(
        "--mode",
        choices=("incident", "alert-event"),
        default="incident",
        help="deliver as incidents (examples/), or as alert events to an HTTP alert source (examples/alert-events/)",
    )
    parser.set_defaults(func=main)


class Demo:
    """The walk-through: each step applies something, waits for the operator, and shows the result."""

    def __init__(self, args: argparse.Namespace) -> None:
        from incidentio_operator.standins.kubesim import KubeApiStandIn, StandInClient
        from incidentio_operator.standins.servers import BackgroundLoop
        from incidentio_operator.standins.simulator import ApiKeyConfig, Simulator, SimulatorConfig

        self.args = args
        self.examples: Path = args.examples
        self.crds = {crd["spec"]["names"]["plural"]: crd for crd in load_crds()}
        self.servers = BackgroundLoop("demo-servers")
        self.kube = KubeApiStandIn(crds=list(self.crds.values()))
        config = SimulatorConfig(
            keys={
                DEMO_KEY: ApiKeyConfig(
                    name="demo key", roles=frozenset({"viewer", "incident_creator", "incident_editor"})
                )
            }
        )
        add_alert_sources(config)
        self.sim = Simulator(config)
        self.servers.run(self.kube.start())
        self.servers.run(self.sim.start(port=args.port if _port_free(args.port) else 0))
        self.client = StandInClient(self.kube.url)
        self.operator_loop = BackgroundLoop("demo-operator")
        self.stop_flag = threading.Event()
        self.operator: Any = None
        self.namespace = NAMESPACE

    # ------------------------------------------------------------------ output

    @staticmethod
    def say(text: str = "") -> None:
        print(text, flush=True)

    def step(self, title: str) -> None:
        self.say()
        self.say(f"== {title}")

    def command(self, text: str) -> None:
        self.say(f"$ {text}")

    def table(self, plural: str) -> None:
        from incidentio_operator.offline.tables import render

        objects = self.client.list(API_VERSION, plural, self.namespace)
        self.command(f"kubectl -n {self.namespace} get {plural}")
        self.say(render(self.crds[plural], objects, utcnow()))

    # ------------------------------------------------------------------ actions

    def apply(self, relative: str) -> None:
        path = self.examples / relative
        text = path.read_text().replace(EXAMPLES_BASE_URL, self.sim.url)
        self.command(f"kubectl apply -f {path.relative_to(self.examples.parent)}")
        for document in yaml.safe_load_all(text):
            if document:
                self.client.apply(document)
                meta = document.get("metadata") or {}
                self.say(f"{document['kind'].lower()}/{meta.get('name')} applied")

    def wait(self, check: Callable[[], T | None], what: str) -> T:
        deadline = time.monotonic() + self.args.timeout
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            time.sleep(0.05)
        raise RuntimeError(f"timed out after {self.args.timeout:.0f}s waiting for {what}")

    def ready(self, plural: str, name: str, reason: str | None = None) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            body = self.client.get(API_VERSION, plural, self.namespace, name) or {}
            status = body.get("status") or {}
            if status.get("observedGeneration") != (body.get("metadata") or {}).get("generation"):
                return None
            condition: dict[str, Any] = next(
                (c for c in status.get("conditions") or () if c.get("type") == "Ready"), {}
            )
            if reason is not None:
                return body if condition.get("reason") == reason else None
            return body if condition.get("status") == "True" else None

        return self.wait(check, f"{plural}/{name} to be Ready" + (f" ({reason})" if reason else ""))

    def start_operator(self) -> None:
        from incidentio_operator.commands.run import in_process

        self.operator = self.operator_loop.submit(in_process(self.kube.url, "demo", self.stop_flag))

    def close(self) -> None:
        self.stop_flag.set()
        if self.operator is not None:
            try:
                self.operator.result(timeout=15)
            except Exception as exc:  # the walk-through already ended; say why the stop was unclean
                logging.getLogger(__name__).warning("operator stopped uncleanly: %s", exc)
        self.operator_loop.close()
        self.client.close()
        self.servers.run(self.sim.stop())
        self.servers.run(self.kube.stop())
        self.servers.close()

    # ------------------------------------------------------------------ the story

    def run(self) -> None:
        self.say("incidentio-operator demo: a Kubernetes API stand-in and an incident.io simulator on loopback,")
        self.say("the examples/ folder applied to them, and the real operator in between.")
        self.say(f"  Kubernetes API stand-in: {self.kube.url}")
        self.say(f"  incident.io simulator:   {self.sim.url}")
        self.step("1. Install the CRDs and start the operator")
        self.command(f"kubectl apply -k {crds_dir().name}/")
        for plural in self.crds:
            self.say(f"customresourcedefinition.apiextensions.k8s.io/{plural}.alerting.armor.dev created")
        self.command("incidentio-operator run --all-namespaces")
        self.start_operator()
        if self.args.mode == "alert-event":
            walk_through(self)
            self.next_steps()
            return

        self.step("2. An incident.io account: a Secret with the API key, and a destination that tests it")
        for name in ("namespace.yaml", "secret.yaml", "destination.yaml"):
            self.apply(name)
        destination = self.ready("incidentiodestinations", DESTINATION)
        self.table("incidentiodestinations")
        test = destination["status"]["lastTest"]
        self.say(f"connection test: {test['result']}: {test['message']}")
        closed = destination["status"].get("closedStatus") or {}
        self.say(f"closed status: {closed.get('name')} ({closed.get('id')}, category {closed.get('category')})")

        self.step("3. Routing rules naming that destination, and a blackout for the analytics rules")
        self.apply("rules.yaml")
        self.apply("blackout.yaml")
        for name in ("production-breaking-changes", "critical-production-sla", "analytics-quality-office-hours"):
            self.ready("alertrules", name)
        self.ready("alertblackouts", "warehouse-migration")
        self.table("alertrules")
        self.table("alertblackouts")

        self.step("4. A detector reports three alerts")
        for path in sorted((self.examples / "alerts").glob("*.yaml")):
            self.apply(str(path.relative_to(self.examples)))
        orders = self.ready("dataalerts", "orders-column-removed")
        self.ready("dataalerts", "events-freshness")
        self.ready("dataalerts", "dev-column-removed", reason="NoMatchingRule")
        self.table("dataalerts")
        self.wait(
            lambda: self.matched("production-breaking-changes") == 1 and self.matched("critical-production-sla") == 2,
            "the rules to count their matches",
        )
        self.table("alertrules")
        self.say()
        self.say("The production column removal matches BOTH rules, and still opened exactly one incident;")
        self.say("the development change matched no rule, so nobody was paged for it.")
        self.command(f"kubectl -n {NAMESPACE} get dataalert orders-column-removed -o yaml   # status only")
        self.say(_status_yaml(orders))

        self.step("5. What incident.io holds")
        self.incidents()

        self.step("6. The alert resolves: the incident is closed with the destination's closed status")
        self.apply("later/orders-column-removed-resolved.yaml")
        self.ready("dataalerts", "orders-column-removed", reason="Closed")
        self.table("dataalerts")
        self.incidents()
        self.wait(lambda: self.counter("incidentsClosed") == 1, "the destination to count the close")
        self.table("incidentiodestinations")
        counters = self.client.get(API_VERSION, "incidentiodestinations", NAMESPACE, DESTINATION) or {}
        self.say(f"destination counters: {counters.get('status', {}).get('counters')}")
        creates = [r for r in self.sim.requests if r.operation == "create_incident"]
        closes = [r for r in self.sim.requests if r.operation == "edit_incident"]
        self.say()
        self.say(
            f"incident.io calls: {len(creates)} create(s), {len(closes)} close(s) for 3 alerts (2 routed, 1 resolved)."
        )

        self.step("7. The stale table is reported again: the rule's 30-minute cooldown keeps it from paging twice")
        self.apply("later/events-freshness-recheck.yaml")
        recheck = self.ready("dataalerts", "events-freshness-2", reason="Suppressed")
        self.table("dataalerts")
        (held,) = recheck["status"]["deliveries"]
        self.say(f"delivery: {held['state']} ({held['reason']}), in favour of {held['inFavourOf']}: {held['message']}")
        creates = [r for r in self.sim.requests if r.operation == "create_incident"]
        self.say(f"incident.io calls: still {len(creates)} create(s); the suppressed alert is Ready, nothing failed.")

        self.next_steps()

    def next_steps(self) -> None:
        self.step("Next")
        self.say(
            textwrap.dedent("""\
            make test                               run the whole test suite
            incidentio-operator demo --serve        this walk-through, then keep the simulator running
            incidentio-operator simulator --key KEY an incident.io stand-in to point a destination at
            incidentio-operator validate examples/  check a folder of manifests offline, as a CI step
            incidentio-operator route --dir examples examples/alerts/orders-column-removed.yaml
                                                    which rules and destinations an alert would reach
            kubectl apply -k manifests/             install on a real cluster (see README: Install)""")
        )
        if self.args.serve:
            self.say()
            self.say(f"Serving. incident.io simulator: {self.sim.url} (API key: the one in examples/secret.yaml)")
            self.say(f"Kubernetes API stand-in: {self.kube.url}  (KUBECONFIG: {self.kubeconfig()})")
            self.say("Press Ctrl-C to stop.")
            stop = threading.Event()
            # SIGTERM too: `timeout`, containers and process managers stop a server that way.
            for stop_signal in (signal.SIGINT, signal.SIGTERM):
                signal.signal(stop_signal, lambda *_: stop.set())
            stop.wait()
            self.say("stopped")

    def matched(self, rule: str) -> int:
        body = self.client.get(API_VERSION, "alertrules", NAMESPACE, rule) or {}
        return int((body.get("status") or {}).get("matchedAlerts") or 0)

    def counter(self, name: str) -> int:
        body = self.client.get(API_VERSION, "incidentiodestinations", NAMESPACE, DESTINATION) or {}
        return int(((body.get("status") or {}).get("counters") or {}).get(name) or 0)

    def kubeconfig(self) -> Path:
        return self.kube.write_kubeconfig(Path.cwd() / ".demo-kubeconfig")

    def incidents(self) -> None:
        from incidentio_operator.offline.tables import format_rows

        self.command(f"curl -H 'Authorization: Bearer ...' {self.sim.url}/v2/incidents/<id>   # for each")
        rows = [["REFERENCE", "NAME", "STATUS", "SEVERITY", "MODE"]]
        for incident in self.sim.incidents:
            rows.append(
                [
                    str(incident["reference"]),
                    str(incident["name"]),
                    f"{incident['incident_status']['name']} ({incident['incident_status']['category']})",
                    str((incident.get("severity") or {}).get("name", "-")),
                    str(incident["mode"]),
                ]
            )
        self.say(format_rows(rows))
        first = self.sim.incidents[-1] if self.sim.incidents else None
        if first is not None:
            self.say()
            self.say(f"summary of {first['reference']}:")
            self.say(textwrap.indent(str(first.get("summary") or ""), "  | ", lambda _: True))


def _status_yaml(body: Mapping[str, Any]) -> str:
    status = dict(body.get("status") or {})
    status["conditions"] = [c for c in status.get("conditions") or () if c.get("type") == "Ready"]
    return str(yaml.safe_dump({"status": status}, sort_keys=False, width=100)).rstrip()


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main(args: argparse.Namespace) -> int:
    # The operator's own log lines would interleave with the walk-through; keep only problems.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("kopf", "aiohttp", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.ERROR)
    started = time.monotonic()
    demo = Demo(args)
    try:
        demo.run()
    except RuntimeError as exc:
        print(f"demo failed: {exc}", flush=True)
        return 1
    finally:
        demo.close()
    elapsed = datetime.timedelta(seconds=round(time.monotonic() - started))
    print(f"\ndemo finished in {elapsed}", flush=True)
    return 0

"""`kubectl armor`'s error paths and kubeconfig handling against the API stand-in, with no operator running."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from incidentio_operator.api.destination import TEST_REQUESTED_ANNOTATION
from incidentio_operator.kubectl.cli import run
from incidentio_operator.offline.schema import load_crds
from incidentio_operator.standins.kubesim import KubeApiStandIn, StandInClient
from incidentio_operator.standins.servers import BackgroundLoop
from tests.e2e import objects as o

DESTINATIONS, ALERTS = "incidentiodestinations", "dataalerts"
NS = o.NS
SECRET = "sk-live-never-printed"


@pytest.fixture(scope="module")
def loop() -> Iterator[BackgroundLoop]:
    background = BackgroundLoop("kubectl-plugin")
    yield background
    background.close()


def stand_in(loop: BackgroundLoop, *, crds: bool) -> KubeApiStandIn:
    api = KubeApiStandIn(crds=load_crds() if crds else [])
    loop.run(api.start())
    return api


@pytest.fixture
def cluster(loop: BackgroundLoop, tmp_path: Path) -> Iterator[tuple[KubeApiStandIn, Path]]:
    """The stand-in with our CRDs, a team's objects, and a kubeconfig whose context namespace is that team's."""
    api = stand_in(loop, crds=True)
    with StandInClient(api.url) as client:
        client.apply(o.namespace())
        client.apply(o.secret(SECRET))
        client.apply(o.destination("http://127.0.0.1:1"))
        client.apply(o.rule("breaking", ["incidentio"], eventTypes=["schema_change"]))
        client.apply(o.alert("orders"))
    yield api, api.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)
    loop.run(api.stop())


def armor(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


COMMANDS = [("test", "incidentio"), ("why", "orders"), ("incidents",)]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_absent_crds_are_named_and_exit_2(loop: BackgroundLoop, tmp_path: Path, command: tuple[str, ...]) -> None:
    api = stand_in(loop, crds=False)
    try:
        code, out, err = armor(*command, "--kubeconfig", str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    finally:
        loop.run(api.stop())
    assert (code, out) == (2, "")
    assert err == (
        f"kubectl armor {command[0]}: the alerting.armor.dev/v1alpha1 CRDs are not installed in this cluster "
        "(context kubesim): install the operator with kubectl apply -k manifests/\n"
    )


@pytest.mark.parametrize(
    ("command", "verb", "resource"),
    [
        (("test", "incidentio"), "get", DESTINATIONS),
        (("test", "incidentio"), "patch", DESTINATIONS),
        (("why", "orders"), "get", ALERTS),
        (("why", "orders"), "list", "alertrules"),
        (("incidents",), "list", ALERTS),
    ],
    ids=lambda value: value if isinstance(value, str) else value[0],
)
def test_access_denied_is_named_and_exits_2(
    cluster: tuple[KubeApiStandIn, Path], command: tuple[str, ...], verb: str, resource: str
) -> None:
    api, kubeconfig = cluster
    api.fail_next(1, status=403, verb=verb, resource=resource)
    code, out, err = armor(*command, "--kubeconfig", str(kubeconfig))
    assert code == 2
    assert err.startswith(f"kubectl armor {command[0]}: access denied: ")
    assert f"(needs {verb} on {resource}.alerting.armor.dev; check with: kubectl auth can-i {verb} {resource}" in err
    assert SECRET not in out + err


def test_a_missing_object_is_named_and_exits_2(cluster: tuple[KubeApiStandIn, Path]) -> None:
    _, kubeconfig = cluster
    assert armor("test", "nope", "--kubeconfig", str(kubeconfig))[::2] == (
        2,
        f"kubectl armor test: IncidentIoDestination {NS}/nope not found\n",
    )
    assert armor("why", "nope", "--kubeconfig", str(kubeconfig))[::2] == (
        2,
        f"kubectl armor why: DataAlert {NS}/nope not found\n",
    )


def test_kubeconfig_problems_exit_2(cluster: tuple[KubeApiStandIn, Path], tmp_path: Path) -> None:
    _, kubeconfig = cluster
    code, _, err = armor("incidents", "--kubeconfig", str(tmp_path / "missing"))
    assert code == 2 and err.startswith("kubectl armor incidents: cannot use the kubeconfig: ")
    code, _, err = armor("incidents", "--kubeconfig", str(kubeconfig), "--context", "prod")
    assert (code, err) == (2, "kubectl armor incidents: context 'prod' is not in the kubeconfig (contexts: kubesim)\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    unreachable = yaml.safe_load(kubeconfig.read_text())
    unreachable["clusters"][0]["cluster"]["server"] = f"http://127.0.0.1:{closed_port}"
    (tmp_path / "unreachable").write_text(yaml.safe_dump(unreachable))
    code, _, err = armor("incidents", "--kubeconfig", str(tmp_path / "unreachable"))
    assert code == 2
    assert err.startswith(f"kubectl armor incidents: cannot reach the API server http://127.0.0.1:{closed_port}")


def test_the_context_and_its_namespace_are_used_like_kubectl(
    cluster: tuple[KubeApiStandIn, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$KUBECONFIG, --context, the context's namespace, and -n (before or after the command) over it."""
    _, kubeconfig = cluster
    config = yaml.safe_load(kubeconfig.read_text())
    # A second context, current, whose cluster does not exist: only --context reaches the stand-in.
    config["clusters"].append({"name": "elsewhere", "cluster": {"server": "http://127.0.0.1:1"}})
    config["contexts"].append({"name": "elsewhere", "context": {"cluster": "elsewhere", "user": "kubesim"}})
    config["current-context"] = "elsewhere"
    path = tmp_path / "two-contexts"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    code, out, _ = armor("why", "orders", "--context", "kubesim")
    assert code == 0 and out.startswith(f"DataAlert {NS}/orders: ")
    assert armor("why", "orders")[0] == 2
    code, out, err = armor("--context", "kubesim", "why", "orders", "-n", "default")
    assert (code, err) == (2, "kubectl armor why: DataAlert default/orders not found\n")


def test_test_exits_1_when_no_operator_answers_in_time(cluster: tuple[KubeApiStandIn, Path]) -> None:
    api, kubeconfig = cluster
    code, out, err = armor("test", "incidentio", "--kubeconfig", str(kubeconfig), "--timeout", "0.2")
    assert (code, err) == (1, "")
    assert "no answer within 0.2s" in out and "is the operator running?" in out
    # The request stays on the object: the operator answers it once it runs.
    body = api.get_object("alerting.armor.dev/v1alpha1", DESTINATIONS, NS, "incidentio")
    assert body is not None and TEST_REQUESTED_ANNOTATION in body["metadata"]["annotations"]


def test_test_refuses_a_destination_the_operator_would_not_test(cluster: tuple[KubeApiStandIn, Path]) -> None:
    api, kubeconfig = cluster
    with StandInClient(api.url) as client:
        client.patch_status(
            "alerting.armor.dev/v1alpha1",
            DESTINATIONS,
            NS,
            "incidentio",
            {
                "status": {
                    "observedGeneration": 1,
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "False",
                            "reason": "NoAPIKey",
                            "message": "No API key configured",
                            "lastTransitionTime": "2026-11-26T10:00:00Z",
                        }
                    ],
                }
            },
        )
    code, out, _ = armor("test", "incidentio", "--kubeconfig", str(kubeconfig))
    assert code == 1
    assert out.startswith(f"IncidentIoDestination {NS}/incidentio cannot be tested: NoAPIKey: No API key configured;")
    body = api.get_object("alerting.armor.dev/v1alpha1", DESTINATIONS, NS, "incidentio")
    assert body is not None and TEST_REQUESTED_ANNOTATION not in (body["metadata"].get("annotations") or {})


def test_incidents_with_none_open_says_so(cluster: tuple[KubeApiStandIn, Path]) -> None:
    _, kubeconfig = cluster
    assert armor("incidents", "--kubeconfig", str(kubeconfig)) == (0, "No open incidents in any namespace.\n", "")
    assert armor("incidents", "-n", NS, "--kubeconfig", str(kubeconfig))[1] == f"No open incidents in namespace {NS}.\n"


def test_the_plugin_loads_neither_kopf_nor_the_controller() -> None:
    """A client tool: it must not pull in the operator's runtime (kopf, the controller, the kopf handlers)."""
    probe = (
        "import sys, incidentio_operator.kubectl.cli; "
        "print(sorted(m for m in sys.modules if m == 'kopf' or m.startswith(('kopf.', "
        "'incidentio_operator.controller', 'incidentio_operator.handlers'))))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"

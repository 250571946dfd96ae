"""manifests/monitoring/ and the image settings: CRD fields, promtool's checks and unit tests, the dashboard, images."""

from __future__ import annotations

import copy
import json
import os
import pathlib
import re
import shutil
import subprocess
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any

import kubernetes_validate
import pytest
import yaml

from incidentio_operator.controller.metrics import Metrics
from incidentio_operator.offline.schema import ObjectValidator
from tests.test_manifests import (
    KUBERNETES_VERSION,
    MANIFESTS,
    ROOT,
    identity,
    of_kind,
    render,
    render_offline,
    render_with_kubectl,
)

MONITORING = MANIFESTS / "monitoring"
NAMESPACE = "incidentio-operator"
JOB = "incidentio-operator"
DASHBOARD_FILE = MONITORING / "dashboards" / "incidentio-operator.json"
UNIT_TESTS = ROOT / "tests" / "data" / "prometheus" / "alerts.test.yaml"
VENDORED_CRDS = ROOT / "tests" / "data" / "prometheus-operator"
README = ROOT / "README.md"
RUNBOOK = "https://github.com/armor-dev/incidentio-operator/blob/main/README.md#"
IMAGE_NAME = "ghcr.io/armor-dev/incidentio-operator"
# kube-prometheus: critical pages someone now, warning waits for working hours, info is for context.
SEVERITIES = {"critical", "warning", "info"}


# ------------------------------------------------------------------ shared with tests/e2e/test_monitoring.py


def monitoring_objects() -> tuple[dict[str, Any], ...]:
    return render(MONITORING)


def rule_file() -> dict[str, Any]:
    """The PrometheusRule's spec as kustomize renders it: a Prometheus rule file."""
    (rule,) = of_kind(monitoring_objects(), "PrometheusRule")
    return dict(rule["spec"])


def write_rule_file(directory: pathlib.Path) -> pathlib.Path:
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump(rule_file(), sort_keys=False), encoding="utf-8")
    return path


def alerting_rules() -> list[dict[str, Any]]:
    return [rule for group in rule_file()["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard() -> dict[str, Any]:
    """The dashboard as Grafana's sidecar receives it: from the rendered ConfigMap."""
    (config_map,) = of_kind(monitoring_objects(), "ConfigMap")
    loaded: dict[str, Any] = json.loads(config_map["data"][DASHBOARD_FILE.name])
    return loaded


def panel_targets() -> list[tuple[str, str, str]]:
    """(panel title, refId, expr) of every query of the dashboard."""
    return [
        (str(panel["title"]), str(target["refId"]), str(target["expr"]))
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed: `make tools` installs it as root (Debian's prometheus package)")
    return path


# ------------------------------------------------------------------ what the component installs


def test_component_installs_a_service_monitor_the_alerts_and_the_dashboard() -> None:
    objects = monitoring_objects()
    assert sorted(obj["kind"] for obj in objects) == ["ConfigMap", "PrometheusRule", "ServiceMonitor"]
    assert {obj["metadata"]["namespace"] for obj in objects} == {NAMESPACE}
    (config_map,) = of_kind(objects, "ConfigMap")
    # A fixed name (no hash suffix) and the label of kube-prometheus-stack's Grafana sidecar.
    assert config_map["metadata"]["name"] == "incidentio-operator-dashboard"
    assert config_map["metadata"]["labels"] == {"grafana_dashboard": "1"}
    assert config_map["data"] == {DASHBOARD_FILE.name: DASHBOARD_FILE.read_text(encoding="utf-8")}
    kubernetes_validate.validate(config_map, KUBERNETES_VERSION, strict=True)
    # Not part of the default install.
    assert not [obj for obj in render(MANIFESTS) if obj["apiVersion"].startswith("monitoring.coreos.com/")]


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl is not installed: nothing to compare with")
def test_offline_rendering_of_the_component_matches_kubectl() -> None:
    expected = {identity(obj): obj for obj in render_with_kubectl(MONITORING)}
    assert {identity(obj): obj for obj in render_offline(MONITORING)} == expected


def crd_validator(kind: str) -> ObjectValidator:
    for path in sorted(VENDORED_CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        if crd["spec"]["names"]["kind"] == kind:
            return ObjectValidator.from_crd(crd, "v1")
    raise AssertionError(f"no vendored CRD of kind {kind}")


@pytest.mark.parametrize("kind", ["ServiceMonitor", "PrometheusRule"])
def test_uses_only_fields_monitoring_coreos_com_v1_defines(kind: str) -> None:
    (obj,) = of_kind(monitoring_objects(), kind)
    assert obj["apiVersion"] == "monitoring.coreos.com/v1"
    validator = crd_validator(kind)
    assert validator.validate(obj) == []
    assert validator.unknown_fields(obj) == []


def test_the_schema_check_catches_a_field_the_crd_does_not_define() -> None:
    (monitor,) = of_kind(monitoring_objects(), "ServiceMonitor")
    misspelt = copy.deepcopy(monitor)
    misspelt["spec"]["endpoints"][0]["scrapeInterval"] = "30s"
    assert crd_validator("ServiceMonitor").unknown_fields(misspelt) == ["spec.endpoints[0].scrapeInterval"]
    (rule,) = of_kind(monitoring_objects(), "PrometheusRule")
    invalid = copy.deepcopy(rule)
    invalid["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    assert crd_validator("PrometheusRule").validate(invalid)


def test_service_monitor_scrapes_the_metrics_service_as_job_incidentio_operator() -> None:
    (monitor,) = of_kind(monitoring_objects(), "ServiceMonitor")
    (service,) = of_kind(render(MANIFESTS), "Service")
    spec = monitor["spec"]
    labels = service["metadata"]["labels"]
    assert all(labels.get(key) == value for key, value in spec["selector"]["matchLabels"].items())
    assert spec["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    (endpoint,) = spec["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == service["metadata"]["annotations"]["prometheus.io/path"]
    # The Prometheus Operator sets `job` to the value of the Service label jobLabel names.
    assert labels[spec["jobLabel"]] == JOB


def test_alerts_and_dashboard_select_the_job_the_service_monitor_gives() -> None:
    selectors = [str(rule["expr"]) for rule in alerting_rules()] + [expr for _, _, expr in panel_targets()]
    for expr in selectors:
        for metric, matchers in re.findall(r"\b(incidentio_operator_\w+|up)\{([^}]*)\}", expr):
            assert f'job="{JOB}"' in matchers or 'job=~"$job"' in matchers, f"{metric} without the job in {expr}"
    (job,) = [variable for variable in dashboard()["templating"]["list"] if variable["name"] == "job"]
    assert job["current"]["value"] == JOB


def exported_metric_names() -> set[str]:
    metrics = Metrics()
    names = {"up"}
    for family in metrics.registry.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(family.type, [""])
        names.update(family.name + suffix for suffix in suffixes)
    return names


def test_every_metric_the_alerts_and_dashboard_read_is_one_the_operator_exports() -> None:
    exported = exported_metric_names()
    exprs = [str(rule["expr"]) for rule in alerting_rules()] + [expr for _, _, expr in panel_targets()]
    used = {name for expr in exprs for name in re.findall(r"\b(incidentio_operator_\w+|up)\s*[{\[]", expr)}
    assert used and used <= exported, used - exported


# ------------------------------------------------------------------ the alerts


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a README (lower case, punctuation dropped, spaces to hyphens)."""
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, flags=re.MULTILINE):
        anchors.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return anchors


def test_every_alert_says_what_to_do_and_where_the_runbook_is() -> None:
    anchors = github_anchors(README.read_text(encoding="utf-8"))
    rules = alerting_rules()
    assert {rule["alert"] for rule in rules} >= {
        "IncidentioOperatorDown",
        "IncidentioDestinationNotReady",
        "IncidentioDeliveriesFailing",
        "IncidentioDeliveriesBacklogGrowing",
        "IncidentioRateLimited",
        "IncidentioReconcileErrors",
    }
    for rule in rules:
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, rule["alert"]
        assert annotations["runbook_url"] == RUNBOOK + rule["alert"].lower()
        assert rule["alert"].lower() in anchors, f"README has no heading {rule['alert']}"


def test_the_rule_file_promtool_tests_is_the_prometheus_rules_spec(tmp_path: pathlib.Path) -> None:
    tested = yaml.safe_load(write_rule_file(tmp_path).read_text(encoding="utf-8"))
    source = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text(encoding="utf-8"))
    (rendered,) = of_kind(monitoring_objects(), "PrometheusRule")
    assert tested == source["spec"] == rendered["spec"]


def test_promtool_accepts_the_rules(tmp_path: pathlib.Path) -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(write_rule_file(tmp_path))], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerting_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass(tmp_path: pathlib.Path) -> None:
    """Each alert fires on series that should fire it and stays silent on series that should not."""
    write_rule_file(tmp_path)
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    result = subprocess.run(
        [promtool(), "test", "rules", str(tmp_path / UNIT_TESTS.name)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_unit_tests_make_every_alert_fire_and_stay_silent() -> None:
    unit_tests = yaml.safe_load(UNIT_TESTS.read_text(encoding="utf-8"))
    assert unit_tests["rule_files"] == ["rules.yaml"]
    checks = [check for test in unit_tests["tests"] for check in test["alert_rule_test"]]
    for rule in alerting_rules():
        mine = [check for check in checks if check["alertname"] == rule["alert"]]
        assert any(check["exp_alerts"] for check in mine), f"{rule['alert']} is never shown firing"
        assert any(not check["exp_alerts"] for check in mine), f"{rule['alert']} is never shown silent"


# ------------------------------------------------------------------ the dashboard


def test_dashboard_is_a_grafana_dashboard_over_a_chosen_prometheus() -> None:
    board = dashboard()
    assert board["uid"] == "incidentio-operator" and board["title"]
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    panels = board["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        assert len({target["refId"] for target in panel["targets"]}) == len(panel["targets"])
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        covered = {(grid["x"] + dx, grid["y"] + dy) for dx in range(grid["w"]) for dy in range(grid["h"])}
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered


def test_dashboard_has_the_panels_a_platform_team_asks_for() -> None:
    """The issue's list: deliveries by outcome, incidents per destination, incident.io requests, latency and
    codes, rate-limit waits, queue depth, reconcile errors, per-destination readiness."""
    exprs = " ".join(expr for _, _, expr in panel_targets())
    for metric in (
        "incidentio_operator_incidents_created_total",
        "incidentio_operator_incidents_closed_total",
        "incidentio_operator_deliveries_failed_total",
        "incidentio_operator_incidentio_requests_total",
        "incidentio_operator_incidentio_request_duration_seconds_bucket",
        "incidentio_operator_rate_limit_waits_total",
        "incidentio_operator_queue_depth",
        "incidentio_operator_reconcile_errors_total",
        "incidentio_operator_destination_ready",
    ):
        assert metric in exprs, metric


# ------------------------------------------------------------------ the image


def package_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as file:
        version: str = tomllib.load(file)["project"]["version"]
    return version


def deployment_images(objects: Sequence[Mapping[str, Any]]) -> set[str]:
    return {
        container["image"]
        for obj in of_kind(objects, "Deployment")
        for container in obj["spec"]["template"]["spec"]["containers"]
    }


def test_the_release_image_is_tagged_with_the_package_version() -> None:
    assert deployment_images(render(MANIFESTS)) == {f"{IMAGE_NAME}:{package_version()}"}
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["images"] == [{"name": IMAGE_NAME, "newName": IMAGE_NAME, "newTag": package_version()}]


def test_make_image_builds_the_dockerfile_tagged_with_the_package_version() -> None:
    """No Docker engine here: the target is read with `make -n`, which prints the command without running it."""
    if not shutil.which("make"):
        pytest.skip("make is not installed")

    # Not the settings of a `make test` this may run under (-j, --print-directory).
    environment = {key: value for key, value in os.environ.items() if key not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}

    def planned(*variables: str) -> str:
        result = subprocess.run(
            ["make", "--no-print-directory", "-n", "image", *variables],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout.strip()

    assert planned() == f"docker build --tag {IMAGE_NAME}:{package_version()} ."
    assert planned("IMAGE=registry.example.com/team/incidentio-operator") == (
        f"docker build --tag registry.example.com/team/incidentio-operator:{package_version()} ."
    )
    assert (ROOT / "Dockerfile").is_file()


def test_an_overlay_images_entry_points_the_deployment_at_another_image(tmp_path: pathlib.Path) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(MANIFESTS, overlay)],
                "images": [{"name": IMAGE_NAME, "newName": "registry.example.com/team/operator", "newTag": "dev-1"}],
            }
        ),
        encoding="utf-8",
    )
    assert deployment_images(render(overlay)) == {"registry.example.com/team/operator:dev-1"}


def test_kustomize_edit_set_image_in_manifests_points_the_deployment_at_another_image(tmp_path: pathlib.Path) -> None:
    """What `kustomize edit set image NAME=registry.example.com/x:tag` writes: newName and newTag of NAME's entry."""
    copy_root = tmp_path / "repo"
    shutil.copytree(MANIFESTS, copy_root / "manifests")
    shutil.copytree(ROOT / "crds", copy_root / "crds")
    path = copy_root / "manifests" / "kustomization.yaml"
    kustomization = yaml.safe_load(path.read_text(encoding="utf-8"))
    (entry,) = [image for image in kustomization["images"] if image["name"] == IMAGE_NAME]
    entry.update(newName="localhost:5001/incidentio-operator", newTag="0.1.0-dev")
    path.write_text(yaml.safe_dump(kustomization), encoding="utf-8")
    assert deployment_images(render(copy_root / "manifests")) == {"localhost:5001/incidentio-operator:0.1.0-dev"}

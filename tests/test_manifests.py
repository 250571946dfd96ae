"""The install manifests as `kubectl apply -k` renders them: valid for the API server, secure, least-privilege."""

from __future__ import annotations

import copy
import fnmatch
import functools
import pathlib
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import kubernetes_validate
import pytest
import yaml

from incidentio_operator.cli import build_parser
from incidentio_operator.offline.schema import load_crds, validator_for

ROOT = pathlib.Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"
RBAC_FILE = MANIFESTS / "base" / "rbac.yaml"
NAMESPACE = "incidentio-operator"
IMAGE = "ghcr.io/armor-dev/incidentio-operator:0.1.0"
# A Kubernetes release whose strict schemas kubernetes-validate ships; the oldest one we support.
KUBERNETES_VERSION = "1.30.0"

# Every kustomization a user applies, by what it installs.
INSTALLS = {
    "base": MANIFESTS,
    "ha": MANIFESTS / "ha",
    "shard-by-namespace": MANIFESTS / "shard-example" / "by-namespace",
    "shard-by-label": MANIFESTS / "shard-example" / "by-label",
}

# Exactly what the ClusterRole grants, as (API group, resource, verb): a new permission must be added
# here too, on purpose. kopf: CRD discovery, namespace patterns, events, peering; the rest is the product's.
GRANTED = {
    *{("apiextensions.k8s.io", "customresourcedefinitions", verb) for verb in ("list", "watch")},
    *{("", "namespaces", verb) for verb in ("list", "watch")},
    ("", "events", "create"),
    *{
        ("kopf.dev", resource, verb)
        for resource in ("clusterkopfpeerings", "kopfpeerings")
        for verb in ("get", "list", "watch", "patch")
    },
    *{("alerting.armor.dev", "dataalerts", verb) for verb in ("get", "list", "watch", "patch", "delete")},
    *{
        ("alerting.armor.dev", resource, verb)
        for resource in ("alertrules", "alertblackouts")
        for verb in ("get", "list", "watch")
    },
    *{
        ("alerting.armor.dev", f"{plural}/status", verb)
        for plural in ("dataalerts", "incidentiodestinations", "alertrules", "alertblackouts")
        for verb in ("get", "patch", "update")
    },
    *{("alerting.armor.dev", "incidentiodestinations", verb) for verb in ("get", "list", "watch", "patch")},
    ("alerting.armor.dev", "dataalerts/finalizers", "update"),
    ("alerting.armor.dev", "incidentiodestinations/finalizers", "update"),
    ("", "secrets", "get"),
}


# ------------------------------------------------------------------ rendering


@functools.cache
def render(directory: pathlib.Path) -> tuple[dict[str, Any], ...]:
    """The objects `kubectl apply -k directory` would send: kubectl's kustomize when present, else ours."""
    if shutil.which("kubectl"):
        return tuple(render_with_kubectl(directory))
    return tuple(render_offline(directory))


def render_with_kubectl(directory: pathlib.Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def render_offline(directory: pathlib.Path) -> list[dict[str, Any]]:
    """kustomize, as far as these manifests use it: resources, ConfigMap generators, patches, nameSuffix, labels,
    images."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    objects: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            objects.extend(render_offline(path))
        else:
            objects.extend(document for document in yaml.safe_load_all(path.read_text(encoding="utf-8")) if document)
    for generator in kustomization.get("configMapGenerator", []):
        objects.append(_generated_config_map(directory, generator))
    for patch_entry in kustomization.get("patches", []):
        patch = yaml.safe_load((directory / patch_entry["path"]).read_text(encoding="utf-8"))
        targets = [obj for obj in objects if _patch_applies(obj, patch, patch_entry.get("target"))]
        assert len(targets) >= 1, f"{directory}: patch {patch_entry['path']} matches nothing"
        for target in targets:
            _merge(target, patch, keep_name=True)
    suffix = kustomization.get("nameSuffix", "")
    for obj in objects:
        obj["metadata"]["name"] += suffix
    for label_entry in kustomization.get("labels", []):
        for obj in objects:
            _add_labels(obj, label_entry["pairs"], bool(label_entry.get("includeSelectors")))
    for image in kustomization.get("images", []):
        for container in _containers(objects):
            name, _, _ = container["image"].partition(":")
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image['newTag']}"
    return objects


def _generated_config_map(directory: pathlib.Path, generator: Mapping[str, Any]) -> dict[str, Any]:
    """A configMapGenerator's ConfigMap from `files` entries (``path`` or ``key=path``)."""
    options = generator.get("options") or {}
    # kustomize's name suffix is a hash of the content this renderer does not reproduce.
    assert options.get("disableNameSuffixHash"), f"{directory}: set disableNameSuffixHash to render offline"
    data: dict[str, str] = {}
    for entry in generator.get("files", []):
        key, _, path = str(entry).rpartition("=")
        data[key or pathlib.PurePath(path).name] = (directory / path).read_text(encoding="utf-8")
    metadata: dict[str, Any] = {"name": generator["name"]}
    if "namespace" in generator:
        metadata["namespace"] = generator["namespace"]
    if options.get("labels"):
        metadata["labels"] = dict(options["labels"])
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def _patch_applies(obj: Mapping[str, Any], patch: Mapping[str, Any], target: Mapping[str, Any] | None) -> bool:
    if target is None:
        return bool(
            obj["apiVersion"] == patch["apiVersion"]
            and obj["kind"] == patch["kind"]
            and obj["metadata"]["name"] == patch["metadata"]["name"]
        )
    group = obj["apiVersion"].rpartition("/")[0]
    if "group" in target and target["group"] != group:
        return False
    if "kind" in target and target["kind"] != obj["kind"]:
        return False
    labels = obj["metadata"].get("labels") or {}
    for requirement in str(target.get("labelSelector", "")).split(","):
        if requirement:
            key, _, value = requirement.partition("=")
            if labels.get(key) != value:
                return False
    return True


def _merge(base: dict[str, Any], patch: Mapping[str, Any], keep_name: bool = False) -> None:
    """A strategic merge, for the fields these patches touch: maps merge, lists of named items merge by name."""
    for key, value in patch.items():
        if keep_name and key == "metadata":
            continue
        current = base.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            _merge(current, value)
        elif isinstance(current, list) and isinstance(value, list) and _named(current) and _named(value):
            by_name = {item["name"]: item for item in current}
            for item in value:
                if item["name"] in by_name:
                    _merge(by_name[item["name"]], item)
                else:
                    current.append(copy.deepcopy(item))
        else:
            base[key] = copy.deepcopy(value)


def _named(items: Sequence[Any]) -> bool:
    return all(isinstance(item, Mapping) and "name" in item for item in items)


def _add_labels(obj: dict[str, Any], pairs: Mapping[str, str], include_selectors: bool) -> None:
    obj["metadata"].setdefault("labels", {}).update(pairs)
    if include_selectors and obj["kind"] == "Deployment":
        obj["spec"]["selector"]["matchLabels"].update(pairs)
        obj["spec"]["template"]["metadata"].setdefault("labels", {}).update(pairs)


def _containers(objects: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for obj in objects:
        if obj["kind"] == "Deployment":
            yield from obj["spec"]["template"]["spec"]["containers"]


# ------------------------------------------------------------------ helpers


def of_kind(objects: Sequence[Mapping[str, Any]], kind: str) -> list[Mapping[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def identity(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


def operator_container(deployment: Mapping[str, Any]) -> Mapping[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert [container["name"] for container in containers] == ["operator"]
    container: Mapping[str, Any] = containers[0]
    return container


def port_number(container: Mapping[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    numbers = [entry["containerPort"] for entry in container.get("ports", []) if entry.get("name") == port]
    assert numbers, f"no container port named {port!r}"
    number: int = numbers[0]
    return number


def run_args(deployment: Mapping[str, Any]) -> Any:
    container = operator_container(deployment)
    # The image's ENTRYPOINT is the CLI, so `args` are exactly what its parser receives.
    assert "command" not in container
    return build_parser().parse_args(container["args"])


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def installs() -> list[Any]:
    return [pytest.param(directory, id=name) for name, directory in INSTALLS.items()]


def deployments_of_every_install() -> list[Any]:
    return [
        pytest.param(deployment, id=f"{name}/{deployment['metadata']['name']}")
        for name, directory in INSTALLS.items()
        for deployment in of_kind(render(directory), "Deployment")
    ]


# ------------------------------------------------------------------ what is installed


def test_base_installs_everything_the_operator_needs() -> None:
    objects = render(MANIFESTS)
    kinds = sorted(obj["kind"] for obj in objects)
    assert kinds == sorted(
        [
            "Namespace",
            *["CustomResourceDefinition"] * 4,
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Service",
            "Deployment",
        ]
    )
    # The CRDs come from crds/ itself, not from a copy that could drift.
    rendered_crds = sorted(of_kind(objects, "CustomResourceDefinition"), key=lambda crd: crd["metadata"]["name"])
    assert rendered_crds == sorted(load_crds(ROOT / "crds"), key=lambda crd: crd["metadata"]["name"])
    namespaced = [obj for obj in objects if obj["kind"] in {"ServiceAccount", "Service", "Deployment"}]
    assert {obj["metadata"]["namespace"] for obj in namespaced} == {NAMESPACE}
    (namespace,) = of_kind(objects, "Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    # The pod spec meets the restricted Pod Security Standard, so the namespace enforces it.
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("directory", installs())
def test_every_object_is_valid_for_the_api_server(directory: pathlib.Path) -> None:
    objects = render(directory)
    crds = of_kind(objects, "CustomResourceDefinition")
    custom_groups = {crd["spec"]["group"] for crd in crds}
    assert len({identity(obj) for obj in objects}) == len(objects), "two objects with the same identity"
    for obj in objects:
        if obj["apiVersion"].rpartition("/")[0] in custom_groups:
            validator = validator_for(obj["apiVersion"], obj["kind"], crds)
            assert validator is not None, f"{identity(obj)}: no CRD in this install serves it"
            assert validator.validate(obj) == []
            assert validator.unknown_fields(obj) == []
        else:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl is not installed: nothing to compare with")
@pytest.mark.parametrize("directory", installs())
def test_offline_rendering_matches_kubectl(directory: pathlib.Path) -> None:
    """Machines without kubectl render with `render_offline`; it must say what kustomize says."""
    expected = {identity(obj): obj for obj in render_with_kubectl(directory)}
    actual = {identity(obj): obj for obj in render_offline(directory)}
    assert actual == expected


# ------------------------------------------------------------------ the Deployment


@pytest.mark.parametrize("deployment", deployments_of_every_install())
def test_operator_pod_is_locked_down(deployment: Mapping[str, Any]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    container = operator_container(deployment)
    context = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == pod["securityContext"]["runAsUser"] == 10001
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert "privileged" not in context or context["privileged"] is False
    assert context["seccompProfile"] == pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    # The only writable path: an emptyDir, since the root filesystem is read-only.
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == "/tmp"
    assert "emptyDir" in volumes[mount["name"]]
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")


@pytest.mark.parametrize("deployment", deployments_of_every_install())
def test_operator_runs_one_replica_at_a_time(deployment: Mapping[str, Any]) -> None:
    """Two pods of one instance must never overlap: without peering, both would handle every event."""
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert operator_container(deployment)["image"] == IMAGE


@pytest.mark.parametrize("deployment", deployments_of_every_install())
def test_probes_and_ports_match_what_the_operator_serves(deployment: Mapping[str, Any]) -> None:
    container = operator_container(deployment)
    args = run_args(deployment)
    assert args.command == "run"
    assert args.log_format == "json"
    liveness = re.fullmatch(r"http://[^:/]+:(\d+)(/.*)", args.liveness)
    assert liveness is not None, args.liveness
    health_port, health_path = int(liveness.group(1)), liveness.group(2)
    for probe in ("livenessProbe", "readinessProbe"):
        check = container[probe]["httpGet"]
        assert check["path"] == health_path == "/healthz"
        assert port_number(container, check["port"]) == health_port == 8080
    ports = {entry["name"]: entry["containerPort"] for entry in container["ports"]}
    assert ports == {"health": health_port, "metrics": args.metrics_port}
    assert args.metrics_port == 9090


def test_base_deployment_watches_every_namespace_standalone() -> None:
    (deployment,) = of_kind(render(MANIFESTS), "Deployment")
    args = run_args(deployment)
    assert args.all_namespaces is True
    assert args.namespace == []
    assert args.peering is None
    assert args.shard_label == []


@pytest.mark.parametrize("directory", installs())
def test_deployments_do_not_adopt_each_others_pods(directory: pathlib.Path) -> None:
    deployments = of_kind(render(directory), "Deployment")
    for deployment in deployments:
        template_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selects(deployment["spec"]["selector"]["matchLabels"], template_labels)
        for other in deployments:
            if other is not deployment:
                other_labels = other["spec"]["template"]["metadata"]["labels"]
                assert not selects(deployment["spec"]["selector"]["matchLabels"], other_labels)


@pytest.mark.parametrize("directory", installs())
def test_metrics_service_scrapes_every_operator_pod(directory: pathlib.Path) -> None:
    objects = render(directory)
    (service,) = of_kind(objects, "Service")
    assert service["metadata"]["name"] == "incidentio-operator-metrics"
    annotations = service["metadata"]["annotations"]
    (port,) = service["spec"]["ports"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port["port"]) == "9090"
    assert annotations["prometheus.io/path"] == "/metrics"
    for deployment in of_kind(objects, "Deployment"):
        assert selects(service["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"])
        assert port_number(operator_container(deployment), port["targetPort"]) == run_args(deployment).metrics_port


@pytest.mark.parametrize("directory", installs())
def test_pods_run_as_the_bound_service_account(directory: pathlib.Path) -> None:
    objects = render(directory)
    (account,) = of_kind(objects, "ServiceAccount")
    (binding,) = of_kind(objects, "ClusterRoleBinding")
    (role,) = of_kind(objects, "ClusterRole")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": account["metadata"]["namespace"]}
    ]
    # The token is mounted only where it is used: the operator pod asks for it, the account does not default to it.
    assert account["automountServiceAccountToken"] is False
    for deployment in of_kind(objects, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == account["metadata"]["name"]
        assert pod["automountServiceAccountToken"] is True


# ------------------------------------------------------------------ RBAC


def cluster_role() -> Mapping[str, Any]:
    (role,) = of_kind(render(MANIFESTS), "ClusterRole")
    return role


def test_rbac_grants_exactly_what_kopf_and_the_operator_need() -> None:
    granted = {
        (group, resource, verb)
        for rule in cluster_role()["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == GRANTED


def test_rbac_has_no_wildcards() -> None:
    for rule in cluster_role()["rules"]:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, "resourceNames or nonResourceURLs crept in"
        for field in ("apiGroups", "resources", "verbs"):
            assert not any("*" in value for value in rule[field]), rule


def test_secrets_are_read_only() -> None:
    verbs = {verb for rule in cluster_role()["rules"] if "secrets" in rule["resources"] for verb in rule["verbs"]}
    assert verbs == {"get"}, "a Secret is read by name only: listing or watching would stream every Secret"


def test_every_rbac_rule_says_whom_it_serves() -> None:
    """Each rule's comment starts with "framework:" (kopf needs it) or "product:" (our logic needs it)."""
    lines = RBAC_FILE.read_text(encoding="utf-8").splitlines()
    rule_lines = [index for index, line in enumerate(lines) if re.match(r"\s*- apiGroups:", line)]
    assert len(rule_lines) == len(cluster_role()["rules"])
    for index in rule_lines:
        start = index
        while start > 0 and lines[start - 1].strip().startswith("#"):
            start -= 1
        assert start < index, f"rule at line {index + 1} has no comment"
        assert re.match(r"\s*# (framework|product): \S", lines[start]), f"line {start + 1}: {lines[start]!r}"


# ------------------------------------------------------------------ overlays


def test_ha_runs_active_and_standby_through_one_peering() -> None:
    objects = render(INSTALLS["ha"])
    deployments = of_kind(objects, "Deployment")
    assert len(deployments) == 2
    peers = [run_args(deployment) for deployment in deployments]
    assert {args.peering for args in peers} == {"incidentio-operator"}
    # kopf pauses every peer when live peers share a priority: the priorities must differ.
    assert len({args.priority for args in peers}) == len(peers)
    assert all(args.all_namespaces for args in peers)
    # Operators watching every namespace peer through a ClusterKopfPeering, which kopf patches but never creates.
    (peering,) = of_kind(objects, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "incidentio-operator"
    assert peering["apiVersion"] == "kopf.dev/v1"
    crd_names = {crd["metadata"]["name"] for crd in of_kind(objects, "CustomResourceDefinition")}
    assert {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"} <= crd_names
    # The peering group kopf uses is the one the ClusterRole grants.
    assert {("kopf.dev", "clusterkopfpeerings", verb) for verb in ("get", "list", "watch", "patch")} <= GRANTED


def test_namespace_shards_do_not_overlap() -> None:
    deployments = of_kind(render(INSTALLS["shard-by-namespace"]), "Deployment")
    assert len(deployments) == 2
    shards = [run_args(deployment).namespace for deployment in deployments]
    assert all(shards)
    for shard in shards:
        for other in shards:
            if other is not shard:
                for pattern in shard:
                    assert not any(fnmatch.fnmatchcase(name, pattern) for name in other), (pattern, other)


def test_label_shards_split_one_label_by_value() -> None:
    deployments = of_kind(render(INSTALLS["shard-by-label"]), "Deployment")
    shard_labels = [run_args(deployment).shard_label for deployment in deployments]
    assert sorted(shard_labels) == [["alerting.armor.dev/shard=a"], ["alerting.armor.dev/shard=b"]]
    assert all(run_args(deployment).all_namespaces for deployment in deployments)

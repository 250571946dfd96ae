"""Loading Kubernetes manifests from files and folders as a GitOps repository holds them, for offline commands."""

from __future__ import annotations

import copy
import pathlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from incidentio_operator.api.common import GROUP, ObjectRef

YAML_SUFFIXES = (".yaml", ".yml")

# Kustomize's own files describe how to build manifests; they are not objects to apply.
KUSTOMIZE_FILES = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})
KUSTOMIZE_GROUP = "kustomize.config.k8s.io"

# Kinds without a namespace: --default-namespace must not be given to them. Only the common ones matter,
# since the offline commands read namespaces of our kinds and Secrets alone.
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "MutatingWebhookConfiguration",
        "Namespace",
        "PersistentVolume",
        "PriorityClass",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
    }
)


@dataclass(frozen=True)
class Manifest:
    """One Kubernetes object read from a file; cluster-scoped kinds aside, its namespace is always set."""

    source: str
    document: int
    body: Mapping[str, Any]

    @property
    def api_version(self) -> str:
        return str(self.body.get("apiVersion") or "")

    @property
    def kind(self) -> str:
        return str(self.body.get("kind") or "")

    @property
    def group(self) -> str:
        group, _, _ = self.api_version.rpartition("/")
        return group

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef.of(self.body)

    def label(self) -> str:
        """``Kind namespace/name`` as the problem lines print it."""
        ref = self.ref
        name = ref.name or "(no name)"
        return f"{self.kind} {ref.namespace}/{name}" if ref.namespace else f"{self.kind} {name}"


@dataclass(frozen=True)
class LoadProblem:
    """A file that could not be read or parsed: the objects in it were not checked."""

    source: str
    message: str


@dataclass
class ManifestSet:
    manifests: list[Manifest] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def of_kind(self, kind: str, group: str = GROUP) -> list[Manifest]:
        return [manifest for manifest in self.manifests if manifest.kind == kind and manifest.group == group]


def yaml_files(paths: Iterable[str | pathlib.Path]) -> Iterator[pathlib.Path]:
    """The YAML files named, and those below the folders named, in a stable order; hidden folders skipped."""
    for given in paths:
        path = pathlib.Path(given)
        if not path.is_dir():
            yield path
            continue
        found = [
            candidate
            for candidate in path.rglob("*")
            if candidate.suffix in YAML_SUFFIXES
            and candidate.is_file()
            # .git, .github and friends hold workflow files, not manifests.
            and not any(part.startswith(".") for part in candidate.relative_to(path).parts)
        ]
        yield from sorted(found)


def _is_kubernetes_object(document: Any) -> bool:
    return (
        isinstance(document, dict)
        and isinstance(document.get("apiVersion"), str)
        and isinstance(document.get("kind"), str)
        and bool(document["apiVersion"])
        and bool(document["kind"])
    )


def _items(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects of a document: itself, or the items of a ``kind: List`` as kubectl expands them."""
    if document.get("apiVersion") == "v1" and document["kind"].endswith("List") and "items" in document:
        return [item for item in document.get("items") or [] if _is_kubernetes_object(item)]
    return [document]


def _with_namespace(body: dict[str, Any], default_namespace: str) -> dict[str, Any]:
    if body["kind"] in CLUSTER_SCOPED_KINDS:
        return body
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        return body
    if not metadata.get("namespace"):
        body = copy.deepcopy(body)
        body["metadata"]["namespace"] = default_namespace
    return body


def _yaml_error(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is not None:
        return f"YAML syntax error at line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return f"YAML syntax error: {problem}"


def load_text(text: str, source: str, default_namespace: str = "default") -> ManifestSet:
    """The Kubernetes objects of one YAML stream; other documents (no apiVersion or kind) are skipped."""
    loaded = ManifestSet(files=[source])
    documents: list[Any] = []
    try:
        # Parse the whole stream before keeping anything, so a broken file yields a problem, not half its objects.
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        loaded.problems.append(LoadProblem(source, _yaml_error(error)))
        return loaded
    for index, document in enumerate(documents):
        if not _is_kubernetes_object(document):
            continue
        if document["kind"] == "Kustomization" or document["apiVersion"].startswith(KUSTOMIZE_GROUP + "/"):
            continue
        for item in _items(document):
            loaded.manifests.append(Manifest(source, index, _with_namespace(item, default_namespace)))
    return loaded


def load(paths: Sequence[str | pathlib.Path], default_namespace: str = "default") -> ManifestSet:
    """Every Kubernetes object in the given files and, recursively, the YAML files of the given folders."""
    result = ManifestSet()
    for path in yaml_files(paths):
        source = str(path)
        if path.name in KUSTOMIZE_FILES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            result.files.append(source)
            result.problems.append(LoadProblem(source, f"cannot read: {error}"))
            continue
        loaded = load_text(text, source, default_namespace)
        result.files += loaded.files
        result.manifests += loaded.manifests
        result.problems += loaded.problems
    return result

"""``incidentio-operator validate``: offline check of a folder of manifests against the CRDs and each other."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from incidentio_operator.api import GROUP, AlertBlackout, AlertRule, DataAlert, Destination, ObjectRef, SpecError
from incidentio_operator.offline.manifests import CLUSTER_SCOPED_KINDS, Manifest, ManifestSet, load
from incidentio_operator.offline.metadata import metadata_problems
from incidentio_operator.offline.schema import SchemaProblem, load_crds, validator_for
from incidentio_operator.offline.secret_sources import secret_sources
from incidentio_operator.offline.selectors import selector_warnings

Level = Literal["error", "warning"]

DESTINATION_KIND = "IncidentIoDestination"
RULE_KIND = "AlertRule"
ALERT_KIND = "DataAlert"

_PARSERS: dict[str, Callable[[Mapping[str, Any]], SpecError | None]] = {
    DESTINATION_KIND: lambda body: Destination.from_body(body).spec_error,
    RULE_KIND: lambda body: AlertRule.from_body(body).spec_error,
    ALERT_KIND: lambda body: DataAlert.from_body(body).spec_error,
    # Unknown time zones, impossible windows: what a pattern cannot tell.
    "AlertBlackout": lambda body: AlertBlackout.from_body(body).spec_error,
}


@dataclass(frozen=True)
class Problem:
    """One finding, tied to the file and, when it has one, the object it concerns."""

    level: Level
    source: str
    kind: str = ""
    namespace: str = ""
    name: str = ""
    field: str = ""
    message: str = ""

    @classmethod
    def about(cls, level: Level, manifest: Manifest, field: str, message: str) -> Problem:
        ref = manifest.ref
        return cls(level, manifest.source, manifest.kind, ref.namespace, ref.name, field, message)

    @classmethod
    def each(cls, level: Level, manifest: Manifest, problems: Sequence[SchemaProblem]) -> list[Problem]:
        return [cls.about(level, manifest, problem.field, problem.message) for problem in problems]

    def line(self) -> str:
        parts = [f"{self.level}: {self.source}"]
        if self.kind:
            name = self.name or "(no name)"
            parts.append(f"{self.kind} {self.namespace}/{name}" if self.namespace else f"{self.kind} {name}")
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)

    def to_json(self) -> dict[str, str]:
        return {
            "level": self.level,
            "file": self.source,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "field": self.field,
            "message": self.message,
        }


@dataclass
class Report:
    objects: int = 0
    files: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(1 for problem in self.problems if problem.level == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for problem in self.problems if problem.level == "warning")

    def summary(self) -> str:
        return (
            f"{_count(self.objects, 'object')} checked, {_count(self.errors, 'error')}, "
            f"{_count(self.warnings, 'warning')}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "objects": self.objects,
            "files": self.files,
            "errors": self.errors,
            "warnings": self.warnings,
            "problems": [problem.to_json() for problem in self.problems],
        }


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


@dataclass(frozen=True)
class Options:
    # An external reference is fine when another repository or a controller provides the object;
    # --strict is for repositories that must be complete on their own.
    strict: bool = False
    allow_cross_namespace: bool = False


def check(
    manifests: ManifestSet, options: Options = Options(), crds: Sequence[Mapping[str, Any]] | None = None
) -> Report:
    """Every finding about the loaded manifests, grouped by file."""
    report = Report(objects=len(manifests.manifests), files=len(manifests.files))
    report.problems += [Problem("error", problem.source, message=problem.message) for problem in manifests.problems]
    defaulted: dict[int, Mapping[str, Any]] = {}
    for position, manifest in enumerate(manifests.manifests):
        # The API server checks every object's metadata before its kind's own rules, custom or built in.
        namespaced = manifest.kind not in CLUSTER_SCOPED_KINDS
        report.problems += Problem.each("error", manifest, metadata_problems(manifest.body, namespaced))
        if manifest.group != GROUP:
            continue
        body, problems = _check_schema(manifest, crds)
        report.problems += problems
        defaulted[position] = body
    report.problems += _destination_references(manifests, defaulted, options)
    report.problems += _secret_references(manifests, defaulted, options)
    # Grouped by file, as a reviewer reads a pull request; within a file, schema findings come first.
    report.problems.sort(key=lambda problem: problem.source)
    return report


def _check_schema(
    manifest: Manifest, crds: Sequence[Mapping[str, Any]] | None
) -> tuple[Mapping[str, Any], list[Problem]]:
    """The object as the API server would store it, and why the API server would refuse it."""
    validator = validator_for(manifest.api_version, manifest.kind, crds)
    if validator is None:
        message = f"no CRD of {GROUP} serves kind {manifest.kind} at {manifest.api_version}"
        return manifest.body, [Problem.about("error", manifest, "apiVersion", message)]
    problems: list[Problem] = []
    # kubectl's default (strict) field validation refuses fields the schema does not declare.
    for path in validator.unknown_fields(manifest.body):
        problems.append(Problem.about("error", manifest, path, f'unknown field "{path}"'))
    body = validator.apply_defaults(manifest.body)
    schema_problems = validator.validate(body)
    problems += Problem.each("error", manifest, schema_problems)
    if schema_problems:
        return body, problems
    # The operator's own parsing is stricter in places (durations, URLs): report it only for objects
    # the API server would accept, so a user does not read the same mistake twice.
    parse = _PARSERS.get(manifest.kind)
    error = parse(body) if parse is not None else None
    if error is not None:
        problems.append(Problem.about("error", manifest, error.field, error.message))
    # Accepted, but a selector that no label can satisfy silently routes nothing.
    problems += Problem.each("warning", manifest, selector_warnings(validator.schema, body))
    return body, problems


def _external(options: Options) -> Level:
    return "error" if options.strict else "warning"


def _destination_references(
    manifests: ManifestSet, defaulted: Mapping[int, Mapping[str, Any]], options: Options
) -> list[Problem]:
    present = {manifest.ref for manifest in manifests.of_kind(DESTINATION_KIND)}
    problems: list[Problem] = []
    for position, manifest in enumerate(manifests.manifests):
        if manifest.group != GROUP or manifest.kind != RULE_KIND:
            continue
        spec = defaulted.get(position, manifest.body).get("spec")
        references = spec.get("destinations") if isinstance(spec, Mapping) else None
        if not isinstance(references, list):
            continue
        for index, reference in enumerate(references):
            if not isinstance(reference, Mapping) or not isinstance(reference.get("name"), str):
                continue  # the schema check has reported it
            namespace = reference.get("namespace") or manifest.ref.namespace
            target = ObjectRef(str(namespace), reference["name"])
            where = f"spec.destinations[{index}]"
            if target.namespace != manifest.ref.namespace and not options.allow_cross_namespace:
                problems.append(
                    Problem.about(
                        _external(options),
                        manifest,
                        f"{where}.namespace",
                        f"{DESTINATION_KIND} {target} is in another namespace: the operator refuses it unless "
                        "it runs with --allow-cross-namespace",
                    )
                )
            if target not in present:
                problems.append(
                    Problem.about(
                        _external(options),
                        manifest,
                        f"{where}.name",
                        f"{DESTINATION_KIND} {target} is not declared in these files (external?)",
                    )
                )
    return problems


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _secret_references(
    manifests: ManifestSet, defaulted: Mapping[int, Mapping[str, Any]], options: Options
) -> list[Problem]:
    sources = secret_sources(manifests)
    problems: list[Problem] = []
    for position, manifest in enumerate(manifests.manifests):
        if manifest.group != GROUP or manifest.kind != DESTINATION_KIND:
            continue
        spec = _mapping(defaulted.get(position, manifest.body).get("spec"))
        secret_ref = _mapping(spec.get("apiKeySecretRef"))
        name, key = secret_ref.get("name"), secret_ref.get("key") or "apiKey"
        if not isinstance(name, str) or not name or not isinstance(key, str):
            continue  # the schema check has reported it
        # The operator reads the Secret from the destination's own namespace, never from another.
        target = ObjectRef(manifest.ref.namespace, name)
        source = sources.get(target)
        if source is None:
            problems.append(
                Problem.about(
                    _external(options),
                    manifest,
                    "spec.apiKeySecretRef.name",
                    f"Secret {target} is not declared in these files (external?)",
                )
            )
        elif source.keys is not None and key not in source.keys:
            held = ", ".join(sorted(source.keys)) or "no keys"
            problems.append(
                Problem.about(
                    "error",
                    manifest,
                    "spec.apiKeySecretRef.key",
                    f"{source.description} has no key {key!r} (it holds {held}): the destination would report NoAPIKey",
                )
            )
        elif key in source.empty_keys:
            problems.append(
                Problem.about(
                    "error",
                    manifest,
                    "spec.apiKeySecretRef.key",
                    f"{source.description} holds an empty value for {key!r}: the destination would report NoAPIKey",
                )
            )
        elif key in source.unsendable:
            problems.append(
                Problem.about(
                    "error",
                    manifest,
                    "spec.apiKeySecretRef.key",
                    f"{source.description} holds a value for {key!r} that cannot be sent in an HTTP Authorization "
                    f"header: it has {source.unsendable[key]}",
                )
            )
    return problems


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "validate",
        help="check a folder of manifests offline against the CRDs and their references",
        description=(
            "Check the YAML manifests in the given folders (recursively) and files as a GitOps repository holds "
            "them: every object's metadata as the API server checks it (names, namespaces, labels, annotations), "
            "our custom objects against the CRD schemas after defaulting (structure and CEL rules), label "
            "selectors that can never match, AlertRule destinations and destination Secrets against the other "
            "objects, and API keys that cannot be sent (never printing them). Nothing is contacted. "
            "Exit 0 without errors (warnings allowed), 1 with errors, 2 on usage errors."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="a folder (searched recursively) or a YAML file")
    parser.add_argument(
        "--default-namespace",
        default="default",
        metavar="NS",
        help="namespace of objects that name none, as `kubectl apply -n NS` would set (default: %(default)s)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="report references to objects outside these files as errors, not warnings",
    )
    parser.add_argument(
        "--allow-cross-namespace",
        action="store_true",
        help="the operator runs with --allow-cross-namespace: rules may name destinations in other namespaces",
    )
    parser.add_argument("--crds", type=pathlib.Path, metavar="DIR", help="CRD manifests to check against")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    missing = [path for path in args.paths if not pathlib.Path(path).exists()]
    if missing:
        print(f"incidentio-operator validate: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    crds = None
    if args.crds is not None:
        crds = load_crds(args.crds)
        if not crds:
            print(f"incidentio-operator validate: no CustomResourceDefinition in {args.crds}", file=sys.stderr)
            return 2
    manifests = load(args.paths, default_namespace=args.default_namespace)
    report = check(manifests, Options(strict=args.strict, allow_cross_namespace=args.allow_cross_namespace), crds)
    if args.format == "json":
        json.dump(report.to_json(), sys.stdout, indent=2)
        print()
    else:
        for problem in report.problems:
            print(problem.line())
        print(report.summary())
    return 1 if report.errors else 0

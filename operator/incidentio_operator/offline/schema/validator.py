"""One kind at one version as the API server handles it (defaults, pruning, validation), and its look-up."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from incidentio_operator.offline.schema.cel_rules import ABSENT, compile_rules, evaluate_rules
from incidentio_operator.offline.schema.crds import crds_dir, default_crds
from incidentio_operator.offline.schema.defaulting import apply_defaults, prune
from incidentio_operator.offline.schema.problems import SchemaProblem, render_json
from incidentio_operator.offline.schema.structural import StructuralSchema

# Fields every Kubernetes object has that the API server handles itself rather than by the CRD schema.
_OBJECT_FIELDS = ("apiVersion", "kind", "metadata")


class ObjectValidator:
    """The API server's handling of one kind at one version: defaults, pruning and validation."""

    _cache: ClassVar[dict[tuple[int, str | None], tuple[Mapping[str, Any], ObjectValidator]]] = {}

    def __init__(self, kind: str, api_version: str, plural: str, schema: Mapping[str, Any]) -> None:
        self.kind = kind
        self.api_version = api_version
        self.plural = plural
        self.schema = schema
        self._structural = StructuralSchema(schema)
        self._rules = compile_rules(schema)

    @classmethod
    def from_crd(cls, crd: Mapping[str, Any], version: str | None = None) -> ObjectValidator:
        """The validator for `version` of `crd`, by default its storage version; built once per CRD object."""
        key = (id(crd), version)
        cached = cls._cache.get(key)
        # Keyed on identity, so the CRD object is kept alive to stop its id from being reused.
        if cached is not None and cached[0] is crd:
            return cached[1]
        spec = crd["spec"]
        versions = spec["versions"]
        chosen = next(
            (entry for entry in versions if (entry["name"] == version if version else entry.get("storage"))),
            None,
        )
        if chosen is None:
            raise ValueError(f"{crd['metadata']['name']} has no version {version or '(storage)'}")
        validator = cls(
            kind=spec["names"]["kind"],
            api_version=f"{spec['group']}/{chosen['name']}",
            plural=spec["names"]["plural"],
            schema=chosen["schema"]["openAPIV3Schema"],
        )
        cls._cache[key] = (crd, validator)
        return validator

    def apply_defaults(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of `obj` with the schema's defaults filled in, nested defaults included."""
        defaulted = copy.deepcopy(dict(obj))
        apply_defaults(self.schema, defaulted)
        return defaulted

    def prune(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of `obj` without the fields the schema does not know."""
        return self._pruned(obj, [])

    def unknown_fields(self, obj: Mapping[str, Any]) -> list[str]:
        """Paths of the fields `prune` would drop; `kubectl apply` refuses these as unknown fields."""
        dropped: list[str] = []
        self._pruned(obj, dropped)
        return dropped

    def _pruned(self, obj: Mapping[str, Any], dropped: list[str]) -> dict[str, Any]:
        # The API server handles apiVersion, kind and metadata itself, whatever the CRD says about them.
        body = {key: value for key, value in obj.items() if key not in _OBJECT_FIELDS}
        pruned: dict[str, Any] = prune(self.schema, body, "", dropped)
        for key in _OBJECT_FIELDS:
            if key in obj:
                pruned[key] = copy.deepcopy(obj[key])
        return pruned

    def validate(self, obj: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> list[SchemaProblem]:
        """Why the API server would refuse `obj` (created, or updated from `old`); empty if it would not."""
        problems: list[SchemaProblem] = []
        if obj.get("kind") != self.kind:
            problems.append(
                SchemaProblem("kind", f"Invalid value: {render_json(obj.get('kind'))}: must be {self.kind}")
            )
        if obj.get("apiVersion") != self.api_version:
            problems.append(
                SchemaProblem(
                    "apiVersion", f"Invalid value: {render_json(obj.get('apiVersion'))}: must be {self.api_version}"
                )
            )
        structural, blocking = self._structural.problems(obj)
        problems += structural
        if self._rules is None:
            return problems
        # Like the API server, CEL rules only run on an object whose types are right.
        if blocking:
            problems.append(
                SchemaProblem(
                    "",
                    "some validation rules were not checked because the object was invalid; "
                    "correct the existing errors to complete validation",
                )
            )
            return problems
        evaluate_rules(self._rules, obj, old if old is not None else ABSENT, "", problems)
        return problems


def validator_for(
    api_version: str, kind: str, crds: Sequence[Mapping[str, Any]] | None = None
) -> ObjectValidator | None:
    """The validator for objects of `kind` at `api_version`, or None when it is not one of the given CRDs'."""
    group, _, version = api_version.rpartition("/")
    candidates = crds if crds is not None else default_crds(crds_dir())
    for crd in candidates:
        spec = crd.get("spec", {})
        if spec.get("group") != group or spec.get("names", {}).get("kind") != kind:
            continue
        served = [entry["name"] for entry in spec.get("versions", []) if entry.get("served")]
        if version in served:
            return ObjectValidator.from_crd(crd, version)
    return None

"""Regenerates ``openapi-subset.json``: the incident.io operations the product uses, cut from the spec."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

# The project's shared/ folder sits beside the repository (<parent>/main and <parent>/shared).
DEFAULT_SOURCE = Path(__file__).resolve().parents[5] / "shared" / "reference" / "incident-io-openapi.json"
DEFAULT_OUTPUT = Path(__file__).with_name("openapi-subset.json")
RETRIEVED_ON = "2026-11-26"

# (path, method) of every operation the operator and the simulator use.
OPERATIONS: tuple[tuple[str, str], ...] = (
    ("/v1/identity", "get"),
    ("/v1/incident_statuses", "get"),
    ("/v1/severities", "get"),
    ("/v2/incidents", "post"),
    ("/v2/incidents/{id}", "get"),
    ("/v2/incidents/{id}/actions/edit", "post"),
    ("/v2/alert_events/http/{alert_source_config_id}", "post"),
    ("/v2/alert_sources/{id}", "get"),
    ("/v2/heartbeat/{alert_source_config_id}/ping", "post"),
    ("/v2/heartbeat/{alert_source_config_id}/ping", "get"),
    ("/v2/custom_fields", "get"),
    # The spec offers custom field options only in V1 (there is no /v2/custom_field_options).
    ("/v1/custom_field_options", "get"),
)

SCHEMA_REF_PREFIX = "#/components/schemas/"

# The spec declares only success responses; the error bodies are documented in prose (info.description,
# sections "Errors" and "Rate Limits"). These schemas transcribe those examples so the contract tests can
# check the simulator's error envelopes too. They are marked with ``x-documented-in``.
DOCUMENTED_SCHEMAS: dict[str, Any] = {
    "ErrorSourceV1": {
        "x-documented-in": "info.description, section Errors",
        "type": "object",
        "properties": {"field": {"type": "string"}},
        "required": ["field"],
    },
    "ErrorDetailV1": {
        "x-documented-in": "info.description, section Errors",
        "type": "object",
        "properties": {
            "code": {"type": "string"},
            "message": {"type": "string"},
            "source": {"$ref": "#/components/schemas/ErrorSourceV1"},
        },
        "required": ["code", "message"],
    },
    "ErrorResponseV1": {
        "x-documented-in": "info.description, section Errors",
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "status": {"type": "integer"},
            "request_id": {"type": "string"},
            "errors": {
                "type": "array",
                "minItems": 1,
                "items": {"$ref": "#/components/schemas/ErrorDetailV1"},
            },
        },
        "required": ["type", "status", "request_id", "errors"],
    },
    "RateLimitV1": {
        "x-documented-in": "info.description, section Rate Limits",
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "limit": {"type": "integer"},
            "remaining": {"type": "integer"},
            "retry_after": {"type": "string", "format": "date-time"},
        },
        "required": ["name", "limit", "remaining", "retry_after"],
    },
    "TooManyRequestsResponseV1": {
        "x-documented-in": "info.description, section Rate Limits",
        "allOf": [
            {"$ref": "#/components/schemas/ErrorResponseV1"},
            {
                "type": "object",
                "properties": {
                    "type": {"enum": ["too_many_requests"]},
                    "status": {"enum": [429]},
                    "rate_limit": {"$ref": "#/components/schemas/RateLimitV1"},
                },
                "required": ["rate_limit"],
            },
        ],
    },
}


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(SCHEMA_REF_PREFIX):
                yield value.removeprefix(SCHEMA_REF_PREFIX)
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def build_subset(spec: dict[str, Any], source_name: str) -> dict[str, Any]:
    """The subset document: the chosen operations and the transitive closure of the schemas they name."""
    paths: dict[str, dict[str, Any]] = {}
    for path, method in OPERATIONS:
        paths.setdefault(path, {})[method] = spec["paths"][path][method]

    all_schemas: dict[str, Any] = spec["components"]["schemas"]
    wanted: set[str] = set()
    pending = list(_refs(paths))
    while pending:
        name = pending.pop()
        if name in wanted:
            continue
        wanted.add(name)
        pending.extend(_refs(all_schemas[name]))

    schemas = {name: all_schemas[name] for name in sorted(wanted)}
    schemas.update(DOCUMENTED_SCHEMAS)
    return {
        "x-source": {
            "file": source_name,
            "title": spec["info"]["title"],
            "version": spec["info"]["version"],
            "retrieved": RETRIEVED_ON,
            "note": (
                "Operations used by incidentio-operator and every schema they reference. Schemas marked "
                "x-documented-in are transcribed from the spec's prose, which declares no error responses."
            ),
        },
        "openapi": spec["openapi"],
        "info": spec["info"],
        "servers": spec.get("servers", []),
        "paths": paths,
        "components": {"schemas": schemas},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    spec = json.loads(args.source.read_text(encoding="utf-8"))
    subset = build_subset(spec, args.source.name)
    args.output.write_text(json.dumps(subset, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.output} ({len(subset['components']['schemas'])} schemas)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

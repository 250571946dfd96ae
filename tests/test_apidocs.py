"""The committed API reference matches the CRDs, and the CRDs describe every field."""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from incidentio_operator.offline import apidocs
from incidentio_operator.offline.schema import load_crds

API_MD = pathlib.Path(__file__).resolve().parents[1] / "docs" / "api.md"


def fields(schema: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, child in schema.get("properties", {}).items():
        yield f"{path}.{name}", child
        yield from fields(child, f"{path}.{name}")
        for inner in (child.get("items"), child.get("additionalProperties")):
            if isinstance(inner, dict):
                yield from fields(inner, f"{path}.{name}[]")


def all_fields() -> Iterator[tuple[str, Mapping[str, Any]]]:
    for crd in load_crds():
        for version in crd["spec"]["versions"]:
            yield from fields(version["schema"]["openAPIV3Schema"], crd["spec"]["names"]["kind"])


def test_docs_api_md_is_up_to_date() -> None:
    assert API_MD.read_text(encoding="utf-8") == apidocs.render(), (
        "docs/api.md is out of date with crds/: run `make apidocs`"
    )


def test_every_field_in_the_crds_has_a_description() -> None:
    # metadata is the exception: the API server refuses a CRD that describes it.
    found = [(path, node) for path, node in all_fields() if not path.endswith(".metadata") or path.count(".") > 1]
    assert len(found) > 100
    missing = [path for path, node in found if not node.get("description", "").strip()]
    assert missing == []


def test_every_spec_and_status_field_is_in_the_reference() -> None:
    rendered = apidocs.render()
    for path, _ in all_fields():
        field = path.partition(".")[2]
        if field.split(".")[0] in ("spec", "status"):
            assert f"`{field}`" in rendered, field


def test_the_reference_shows_defaults_enums_and_rule_messages() -> None:
    rendered = apidocs.render()
    row = next(line for line in rendered.splitlines() if line.startswith("| `spec.incident.visibility`"))
    assert '`"public"`' in row and "one of `public`, `private`" in row
    assert "a rule needs at least one destination" in rendered
    assert "interval must be a duration such as 30m or 1h, and at least 1m" in rendered


def test_main_writes_to_the_given_path(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "api.md"
    monkeypatch.setattr(sys, "argv", ["apidocs", str(target)])
    apidocs.main()
    assert target.read_text(encoding="utf-8") == apidocs.render()


def test_main_prints_without_a_path(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["apidocs"])
    apidocs.main()
    assert capsys.readouterr().out == apidocs.render()

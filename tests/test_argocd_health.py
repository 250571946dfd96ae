"""Argo CD health checks for the four kinds: each Lua script run on objects as the operator writes them."""

from __future__ import annotations

import copy
import pathlib
import re
import shutil
from collections.abc import Mapping
from typing import Any

import kubernetes_validate
import pytest
import yaml

from incidentio_operator.api.common import ready_conditions
from incidentio_operator.offline import argocd
from incidentio_operator.offline.schema import load_crds, validator_for

try:
    # Argo CD runs health scripts in gopher-lua, a Lua 5.1: test in the same language version.
    from lupa.lua51 import LuaRuntime
except ImportError:  # pragma: no cover - a lupa built without the 5.1 module
    from lupa import LuaRuntime

ROOT = pathlib.Path(__file__).resolve().parents[1]
ARGOCD = ROOT / "manifests" / "argocd"
EXAMPLES = ROOT / "examples"
CRDS = {crd["spec"]["names"]["kind"]: crd for crd in load_crds(ROOT / "crds")}
KINDS = sorted(CRDS)
# The health states Argo CD knows; anything else makes it report the resource as Unknown.
ARGOCD_STATES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
# Globals Argo CD's sandbox does not offer; a script touching them works here but fails there.
UNSAFE_GLOBALS = ("os", "io", "require", "dofile", "loadfile", "load", "loadstring", "debug", "package")


def script(kind: str) -> str:
    return (ARGOCD / f"{kind.lower()}.lua").read_text(encoding="utf-8")


def to_lua(runtime: Any, value: Any) -> Any:
    """A Python value as Argo CD hands it to Lua: maps and lists become tables (lists 1-based)."""
    if isinstance(value, Mapping):
        return runtime.table_from({key: to_lua(runtime, item) for key, item in value.items()})
    if isinstance(value, list):
        return runtime.table_from([to_lua(runtime, item) for item in value])
    return value


def health(kind: str, obj: Mapping[str, Any]) -> tuple[str, str]:
    runtime = LuaRuntime()
    lua_globals = runtime.globals()
    for name in UNSAFE_GLOBALS:
        lua_globals[name] = None
    lua_globals.obj = to_lua(runtime, obj)
    result = runtime.execute(script(kind))
    assert result is not None, "the script must return its health table"
    status, message = result["status"], result["message"]
    assert status in ARGOCD_STATES
    assert isinstance(message, str)
    return status, message


def example(kind: str) -> dict[str, Any]:
    """The first object of `kind` in examples/: a spec the API server accepts."""
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(document, dict) and document.get("kind") == kind:
                return document
    raise AssertionError(f"no {kind} in examples/")


def live(
    kind: str,
    *,
    generation: int = 2,
    observed: int | None = 2,
    ready: bool | None = True,
    progressing: bool = False,
    reason: str = "Delivered",
    message: str = "All good",
    suspend: bool = False,
) -> dict[str, Any]:
    """An object of `kind` as the API server returns it, with the status the operator writes (None: no status)."""
    obj = copy.deepcopy(example(kind))
    obj["metadata"].update(generation=generation, uid="5d9a0f3e-0000-4000-8000-000000000001")
    if suspend:
        obj["spec"]["suspend"] = True
    if ready is not None:
        status: dict[str, Any] = {
            "conditions": ready_conditions(
                ready=ready, reason=reason, message=message, generation=observed, progressing=progressing
            )
        }
        if observed is not None:
            status["observedGeneration"] = observed
        obj["status"] = status
    validator = validator_for(obj["apiVersion"], kind, list(CRDS.values()))
    assert validator is not None
    assert validator.validate(obj) == [], "the sample must be an object the API server would hold"
    return obj


@pytest.mark.parametrize("kind", KINDS)
def test_ready_at_the_current_generation_is_healthy(kind: str) -> None:
    assert health(kind, live(kind, message="Incident INC-123 open")) == ("Healthy", "Incident INC-123 open")


@pytest.mark.parametrize("kind", KINDS)
def test_no_status_yet_is_progressing(kind: str) -> None:
    status, message = health(kind, live(kind, ready=None))
    assert status == "Progressing"
    assert message


@pytest.mark.parametrize("kind", KINDS)
def test_an_older_generation_observed_is_progressing(kind: str) -> None:
    # Ready=True describes generation 2; the spec changed since, so it says nothing yet about generation 3.
    status, message = health(kind, live(kind, generation=3, observed=2))
    assert status == "Progressing"
    assert "3" in message


@pytest.mark.parametrize("kind", KINDS)
def test_conditions_without_observed_generation_are_progressing(kind: str) -> None:
    assert health(kind, live(kind, observed=None))[0] == "Progressing"


@pytest.mark.parametrize("kind", KINDS)
def test_not_ready_while_reconciling_is_progressing(kind: str) -> None:
    obj = live(kind, ready=False, progressing=True, reason="Retrying", message="incident.io answered 503; retrying")
    assert health(kind, obj) == ("Progressing", "incident.io answered 503; retrying")


@pytest.mark.parametrize("kind", KINDS)
def test_stalled_is_degraded(kind: str) -> None:
    obj = live(kind, ready=False, progressing=False, reason="Unauthorized", message="HTTP 401: Unauthorized")
    assert health(kind, obj) == ("Degraded", "HTTP 401: Unauthorized")


@pytest.mark.parametrize("kind", KINDS)
def test_not_ready_without_kstatus_conditions_is_degraded(kind: str) -> None:
    """An object written before Reconciling/Stalled existed, or by hand: Ready=False alone."""
    obj = live(kind, ready=False, message="No API key configured")
    obj["status"]["conditions"] = [c for c in obj["status"]["conditions"] if c["type"] == "Ready"]
    assert health(kind, obj) == ("Degraded", "No API key configured")


@pytest.mark.parametrize("kind", KINDS)
def test_ready_unknown_is_progressing(kind: str) -> None:
    obj = live(kind, ready=False, message="Checking")
    obj["status"]["conditions"] = [
        {**c, "status": "Unknown"} for c in obj["status"]["conditions"] if c["type"] == "Ready"
    ]
    assert health(kind, obj) == ("Progressing", "Checking")


@pytest.mark.parametrize("kind", ["AlertRule", "IncidentIoDestination"])
def test_suspended_is_suspended_not_degraded(kind: str) -> None:
    obj = live(kind, ready=False, progressing=True, reason="Suspended", message="spec.suspend is true", suspend=True)
    assert health(kind, obj)[0] == "Suspended"


@pytest.mark.parametrize("kind", KINDS)
def test_script_is_lua_5_1(kind: str) -> None:
    """gopher-lua has no integer division, bitwise operators or goto (all Lua 5.3); lupa's 5.4 would accept them."""
    code = "\n".join(line.split("--", 1)[0] for line in script(kind).splitlines())
    assert not re.search(r"//|\bgoto\b|<<|>>|&|(?<![~=<>])~(?!=)", code)


def test_argocd_cm_patch_carries_every_script() -> None:
    patch = yaml.safe_load((ARGOCD / "argocd-cm-patch.yaml").read_text(encoding="utf-8"))
    kubernetes_validate.validate(patch, "1.30.0", strict=True)
    assert (patch["kind"], patch["metadata"]["name"], patch["metadata"]["namespace"]) == (
        "ConfigMap",
        "argocd-cm",
        "argocd",
    )
    # Argo CD's key is resource.customizations.health.<group>_<kind>, one per kind, and the text must be
    # the .lua file's, which is what these tests run.
    expected = {f"resource.customizations.health.{CRDS[kind]['spec']['group']}_{kind}": script(kind) for kind in KINDS}
    assert patch["data"] == expected


def test_committed_files_are_what_the_generator_writes() -> None:
    """The scripts and the patch come from one template: a hand edit to any of them fails here."""
    generated = argocd.render(ARGOCD, list(CRDS.values()))
    assert set(generated) == {argocd.script_name(kind) for kind in KINDS} | {argocd.PATCH}
    for name, text in generated.items():
        assert (ARGOCD / name).read_text(encoding="utf-8") == text, f"{name} is out of date: run `make argocd`"


def test_the_generator_writes_into_the_folder_it_is_given(tmp_path: pathlib.Path) -> None:
    shutil.copy(ARGOCD / argocd.TEMPLATE, tmp_path / argocd.TEMPLATE)
    argocd.main([str(tmp_path)])
    for name in [argocd.PATCH, *(argocd.script_name(kind) for kind in KINDS)]:
        assert (tmp_path / name).read_text(encoding="utf-8") == (ARGOCD / name).read_text(encoding="utf-8")


def test_a_kind_whose_crd_has_no_suspend_is_never_suspended() -> None:
    """Whether a script honours spec.suspend follows the CRD, read when the scripts are generated."""
    crd = copy.deepcopy(CRDS["AlertRule"])
    for version in crd["spec"]["versions"]:
        del version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["suspend"]
    generated = argocd.script((ARGOCD / argocd.TEMPLATE).read_text(encoding="utf-8"), crd)
    obj = live("AlertRule", ready=False, progressing=True, message="Retrying", suspend=True)
    runtime = LuaRuntime()
    runtime.globals().obj = to_lua(runtime, obj)
    assert runtime.execute(generated)["status"] == "Progressing"
    runtime.globals().obj = to_lua(runtime, obj)
    assert runtime.execute(script("AlertRule"))["status"] == "Suspended"

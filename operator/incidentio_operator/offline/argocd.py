"""The Argo CD health checks (manifests/argocd/), generated from one Lua template and the CRDs so they cannot drift."""

from __future__ import annotations

import pathlib
import string
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from incidentio_operator.offline.schema import load_crds

COMMAND = "python -m incidentio_operator.offline.argocd manifests/argocd"
TEMPLATE = "health.lua.template"
PATCH = "argocd-cm-patch.yaml"

# Argo CD reads a custom health check from argocd-cm under resource.customizations.health.<group>_<kind>
# (https://argo-cd.readthedocs.io/en/stable/operator-manual/health/#custom-health-checks).
_HEALTH_KEY = "resource.customizations.health.{group}_{kind}"

_PATCH_HEADER = f"""\
# Argo CD health checks for the operator's three kinds: a patch for Argo CD's own argocd-cm ConfigMap.
# Healthy: the operator observed the current generation and Ready is True. Progressing: no status yet,
# an older generation observed, or Ready=False with Reconciling=True. Degraded: Ready=False with
# Stalled=True (or without Reconciling). Suspended: spec.suspend (destinations and rules). The message
# is the Ready condition's. Apply it to the Argo CD installation, e.g. in its kustomization:
#   patches:
#     - path: <this repository>/manifests/argocd/argocd-cm-patch.yaml
# or merge the data keys into the Helm chart's `configs.cm`. Each script is also in its own .lua file
# here. All of them are generated from {TEMPLATE} and crds/ by `make argocd`
# ({COMMAND}): edit the template, not the scripts; tests/test_argocd_health.py runs the scripts and
# checks that every file here is what the generator writes.
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
"""


def script_name(kind: str) -> str:
    """The file of `kind`'s script: `dataalert.lua` for DataAlert."""
    return f"{kind.lower()}.lua"


def _suspendable(crd: Mapping[str, Any]) -> bool:
    """Whether every served version of `crd` has `spec.suspend`: only then can the script trust it."""
    versions = [version for version in crd["spec"]["versions"] if version.get("served")]
    return bool(versions) and all(
        "suspend" in version["schema"]["openAPIV3Schema"]["properties"]["spec"].get("properties", {})
        for version in versions
    )


def script(template: str, crd: Mapping[str, Any]) -> str:
    """The health script of `crd`'s kind: the template with its group, kind and whether it can be suspended."""
    body = string.Template(template).substitute(
        group=crd["spec"]["group"],
        kind=crd["spec"]["names"]["kind"],
        suspendable="true" if _suspendable(crd) else "false",
    )
    return f"-- Generated from {TEMPLATE} by `make argocd`: edit the template, not this file.\n{body}"


def render(folder: pathlib.Path, crds: Sequence[Mapping[str, Any]] | None = None) -> dict[str, str]:
    """Every generated file of `folder` by name: one script per kind of `crds` (default: crds/), and the patch."""
    template = (folder / TEMPLATE).read_text(encoding="utf-8")
    files: dict[str, str] = {}
    patch = _PATCH_HEADER
    for crd in crds if crds is not None else load_crds():
        kind = crd["spec"]["names"]["kind"]
        text = script(template, crd)
        files[script_name(kind)] = text
        # A literal block keeps the script byte for byte; its blank lines need no indentation.
        indented = "".join(f"    {line}" if line.strip() else line for line in text.splitlines(keepends=True))
        patch += f"  {_HEALTH_KEY.format(group=crd['spec']['group'], kind=kind)}: |\n{indented}"
    files[PATCH] = patch
    return files


def main(argv: Sequence[str] | None = None) -> None:
    """Write the generated files into the folder given as the first argument (the one holding the template)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit(f"usage: {COMMAND}")
    folder = pathlib.Path(args[0])
    for name, text in render(folder).items():
        (folder / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

"""Where the CRD manifests are and how they are read: the schemas every offline check starts from."""

from __future__ import annotations

import os
import pathlib
from functools import lru_cache
from typing import Any

import yaml

CRDS_ENV = "INCIDENTIO_OPERATOR_CRDS"


def crds_dir() -> pathlib.Path:
    """The folder holding the CRD manifests: $INCIDENTIO_OPERATOR_CRDS, else the repository's `crds/`."""
    configured = os.environ.get(CRDS_ENV)
    if configured:
        return pathlib.Path(configured)
    return pathlib.Path(__file__).resolve().parents[4] / "crds"


def load_crds(directory: pathlib.Path | None = None) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition in the YAML files of `directory` (default: `crds_dir()`)."""
    folder = directory if directory is not None else crds_dir()
    crds: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
                crds.append(document)
    return crds


@lru_cache(maxsize=8)
def default_crds(directory: pathlib.Path) -> tuple[dict[str, Any], ...]:
    """The CRDs of `directory`, read once per process: the offline commands look them up per object."""
    return tuple(load_crds(directory))

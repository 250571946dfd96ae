"""What the Secrets a folder of manifests declares will hold, as far as can be told offline, never their values."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from incidentio_operator.api.common import ObjectRef
from incidentio_operator.api.secrets import describe_unsendable
from incidentio_operator.offline.manifests import ManifestSet

SEALED_SECRETS_GROUP = "bitnami.com"
EXTERNAL_SECRETS_GROUP = "external-secrets.io"


@dataclass(frozen=True)
class SecretSource:
    """Something in the folder that becomes the Secret in the cluster, and which keys it will hold."""

    description: str
    keys: frozenset[str] | None  # None: cannot tell offline (templates, dataFrom)
    empty_keys: frozenset[str] = frozenset()
    # Why a key's value cannot be sent as an API key, by key: the kind of character and where, never the value.
    unsendable: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Values:
    keys: frozenset[str]
    empty: frozenset[str]
    unsendable: Mapping[str, str]


def secret_sources(manifests: ManifestSet) -> dict[ObjectRef, SecretSource]:
    """The Secrets the folder will create, by the namespace and name they will have in the cluster."""
    sources: dict[ObjectRef, SecretSource] = {}
    for manifest in manifests.manifests:
        ref = manifest.ref
        spec = _mapping(manifest.body.get("spec"))
        if manifest.kind == "Secret" and manifest.api_version == "v1":
            # SOPS leaves key names in clear text and encrypts only the values, so this covers it too.
            values = _secret_values(manifest.body)
            sources[ref] = SecretSource(f"Secret {ref}", values.keys, values.empty, values.unsendable)
        elif manifest.kind == "SealedSecret" and manifest.group == SEALED_SECRETS_GROUP:
            template = _mapping(spec.get("template"))
            name = _mapping(template.get("metadata")).get("name") or ref.name
            sealed = frozenset(_mapping(spec.get("encryptedData"))) | frozenset(_mapping(template.get("data")))
            sources[ObjectRef(ref.namespace, str(name))] = SecretSource(f"SealedSecret {ref}", sealed or None)
        elif manifest.kind == "ExternalSecret" and manifest.group == EXTERNAL_SECRETS_GROUP:
            target = _mapping(spec.get("target"))
            template = _mapping(target.get("template"))
            name = target.get("name") or ref.name
            known: frozenset[str] | None = None
            if not spec.get("dataFrom") and not template.get("templateFrom"):
                fetched = {str(item.get("secretKey")) for item in spec.get("data") or [] if isinstance(item, Mapping)}
                known = frozenset(fetched | set(_mapping(template.get("data"))))
            sources[ObjectRef(ref.namespace, str(name))] = SecretSource(f"ExternalSecret {ref}", known)
    return sources


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _judge(text: str) -> tuple[bool, str | None]:
    """Whether a value is empty once stripped as the operator strips it, and why it cannot be sent, if so."""
    return not text.strip(), describe_unsendable(text)


def _secret_values(body: Mapping[str, Any]) -> _Values:
    """The keys a Secret will hold (stringData merges over data, as the API server does), judged by value."""
    judged: dict[str, tuple[bool, str | None]] = {}
    for key, value in _mapping(body.get("data")).items():
        try:
            raw = base64.b64decode(str(value or ""), validate=True)
        except (binascii.Error, ValueError):
            # Not base64 (SOPS ciphertext, for one): the key is there, its value is not ours to judge.
            judged[str(key)] = (False, None)
            continue
        try:
            judged[str(key)] = _judge(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
            judged[str(key)] = (False, f"a byte that is not UTF-8 at byte {error.start}")
    for key, value in _mapping(body.get("stringData")).items():
        judged[str(key)] = _judge(str(value or ""))
    return _Values(
        keys=frozenset(judged),
        empty=frozenset(key for key, (empty, _) in judged.items() if empty),
        unsendable={key: reason for key, (_, reason) in judged.items() if reason is not None},
    )

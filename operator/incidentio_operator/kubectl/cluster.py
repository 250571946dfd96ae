"""The live cluster as kubectl sees it: the user's kubeconfig and context, our kinds' API, errors a user can act on."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import kubernetes
import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from incidentio_operator.api import GROUP, VERSION

DESTINATIONS, RULES, ALERTS = "incidentiodestinations", "alertrules", "dataalerts"
KINDS = {DESTINATIONS: "IncidentIoDestination", RULES: "AlertRule", ALERTS: "DataAlert"}
# Seconds for one request to the API server, as kubectl's --request-timeout.
REQUEST_TIMEOUT = 30.0


class PluginError(Exception):
    """What the user must fix before the command can answer: kubeconfig, CRDs, access, a missing object."""


class Cluster:
    """Our three kinds on the API server of one kubeconfig context; every failure becomes a PluginError.

    Only custom objects are read or written: no Secret is ever read, so no API key can be printed.
    """

    def __init__(self, api_client: kubernetes.client.ApiClient, namespace: str, context: str) -> None:
        self._api_client = api_client
        self._custom = kubernetes.client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.context = context

    @classmethod
    def connect(cls, kubeconfig: str | None, context: str | None, namespace: str | None) -> Cluster:
        """The kubeconfig as kubectl reads it: --kubeconfig, else $KUBECONFIG (paths joined by ':'), else
        ~/.kube/config; the context named, else the current one; its namespace unless one is given."""
        # Read now: the kubernetes client reads $KUBECONFIG once, when it is imported.
        config_file = kubeconfig or os.environ.get("KUBECONFIG") or None
        try:
            # The kubernetes client's config module has no type hints.
            contexts, current = kubernetes.config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                config_file=config_file
            )
            chosen = next((entry for entry in contexts if entry["name"] == context), None) if context else current
            if chosen is None:
                names = ", ".join(sorted(entry["name"] for entry in contexts)) or "none"
                raise PluginError(f"context {context!r} is not in the kubeconfig (contexts: {names})")
            api_client = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=config_file, context=chosen["name"]
            )
        except (ConfigException, OSError) as error:
            raise PluginError(f"cannot use the kubeconfig: {error}") from None
        default_namespace = str((chosen.get("context") or {}).get("namespace") or "default")
        return cls(api_client, namespace or default_namespace, str(chosen["name"]))

    def close(self) -> None:
        self._api_client.close()  # type: ignore[no-untyped-call]

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        """The object as JSON; NotFound when it does not exist, PluginError for any other failure."""
        return self._call(
            plural,
            "get",
            lambda: self._custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name, _request_timeout=REQUEST_TIMEOUT
            ),
            f"{KINDS[plural]} {namespace}/{name}",
        )

    def find(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist (the CRDs being absent is still an error)."""
        try:
            return self.get(plural, namespace, name)
        except NotFound:
            return None

    def list(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        """Every object of `plural` in `namespace`, or in every namespace when it is None."""
        if namespace is None:
            answer = self._call(
                plural,
                "list",
                lambda: self._custom.list_custom_object_for_all_namespaces(
                    GROUP, VERSION, plural, _request_timeout=REQUEST_TIMEOUT
                ),
                f"{plural} in all namespaces",
            )
        else:
            answer = self._call(
                plural,
                "list",
                lambda: self._custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, _request_timeout=REQUEST_TIMEOUT
                ),
                f"{plural} in namespace {namespace}",
            )
        return list(answer.get("items") or [])

    def patch(self, plural: str, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON merge patch (RFC 7386) of the main resource."""
        return self._call(
            plural,
            "patch",
            lambda: self._custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name, dict(patch), _request_timeout=REQUEST_TIMEOUT
            ),
            f"{KINDS[plural]} {namespace}/{name}",
        )

    def _call(self, plural: str, verb: str, request: Callable[[], object], what: str) -> dict[str, Any]:
        """The request's JSON answer (the client returns custom objects as plain dicts)."""
        try:
            answer = request()
        except ApiException as error:
            raise self._explain(error, plural, verb, what) from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            host = self._api_client.configuration.host
            raise PluginError(f"cannot reach the API server {host} (context {self.context}): {error}") from None
        if not isinstance(answer, dict):
            raise PluginError(f"the API server answered {what} with {type(answer).__name__}, not an object")
        return answer

    def _explain(self, error: ApiException, plural: str, verb: str, what: str) -> PluginError:
        message = _status_message(error)
        if error.status == 401:
            return PluginError(f"the API server did not accept the credentials of context {self.context}: {message}")
        if error.status == 403:
            return PluginError(
                f"access denied: {message} (needs {verb} on {plural}.{GROUP}; "
                f"check with: kubectl auth can-i {verb} {plural}.{GROUP})"
            )
        if error.status == 404:
            if not self._serves(plural):
                return PluginError(
                    f"the {GROUP}/{VERSION} CRDs are not installed in this cluster (context {self.context}): "
                    "install the operator with kubectl apply -k manifests/"
                )
            return NotFound(f"{what} not found")
        return PluginError(f"the API server answered HTTP {error.status} for {what}: {message}")

    def _serves(self, plural: str) -> bool:
        """Whether discovery lists `plural` in our group version: a 404 for a kind nobody installed."""
        try:
            resources = self._custom.get_api_resources(GROUP, VERSION, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as error:
            if error.status == 404:
                return False
            raise self._explain(error, plural, "get", f"discovery of {GROUP}/{VERSION}") from None
        return any(resource.name == plural for resource in resources.resources or ())


class NotFound(PluginError):
    """The object does not exist, though its kind is served."""


def _status_message(error: ApiException) -> str:
    """The message of the API server's Status body, else the HTTP reason."""
    try:
        body = json.loads(error.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(error.reason or f"HTTP {error.status}")

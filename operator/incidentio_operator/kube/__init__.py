"""The operator's own Kubernetes API client: reading Secrets, patching objects and their status, posting Events."""

from incidentio_operator.kube.client import KubeClient, KubeError, resource_path

__all__ = ["KubeClient", "KubeError", "resource_path"]

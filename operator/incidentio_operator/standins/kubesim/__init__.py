"""A Kubernetes API server stand-in on loopback, with the API-server semantics the operator relies on.

Modelled: discovery, CRDs (registered and unregistered live), get/list/watch/create/update/patch/delete
and deletecollection, one global resourceVersion, metadata.generation, status subresources, finalizers
and deletionTimestamp (DELETED events carry the last stored state), schema pruning/defaulting/validation
of custom objects, Secrets' stringData, the namespace lifecycle (creates refused in a terminating
namespace) and the namespace controller (content deleted honouring finalizers, status conditions, the
namespace removed last), the CRD finalizer (a deleted CRD's instances deleted first, honouring their
finalizers), watch replay/bookmarks/timeouts, 410 Expired after compaction for watches and continue
tokens, label and field selectors, pagination, fault injection and request accounting (the object
bodies each response carried).

Not modelled: authentication and RBAC (any token is accepted), admission webhooks, server-side apply,
strategic merge keys (built-ins get merge-patch semantics), garbage collection via ownerReferences,
CRD version conversion beyond rewriting apiVersion, consistent snapshots across list pages, and the
controllers' retry timers (they act again on every change instead).
"""

from .admission import ObjectValidatorLike, SchemaProblemLike, ValidatorFactory
from .client import StandInClient
from .errors import ApiError
from .faults import BodiesSent, RecordedCall, RequestMatch
from .kubeconfig import write_kubeconfig
from .server import KubeApiStandIn, default_validator_factory

__all__ = [
    "ApiError",
    "BodiesSent",
    "KubeApiStandIn",
    "ObjectValidatorLike",
    "RecordedCall",
    "RequestMatch",
    "SchemaProblemLike",
    "StandInClient",
    "ValidatorFactory",
    "default_validator_factory",
    "write_kubeconfig",
]

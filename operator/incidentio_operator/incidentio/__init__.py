"""Everything about incident.io: the API client, its models, errors and client-side rate limiting."""

from incidentio_operator.incidentio.account import Account, ApiKey
from incidentio_operator.incidentio.client import IncidentIoClient, RequestObserver
from incidentio_operator.incidentio.errors import (
    Forbidden,
    IncidentIoError,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
    UnexpectedResponse,
    Unreachable,
    ValidationFailed,
)
from incidentio_operator.incidentio.models import (
    CreateIncidentRequest,
    EditIncidentRequest,
    Identity,
    Incident,
    IncidentStatus,
    Severity,
)
from incidentio_operator.incidentio.ratelimit import RateLimit

__all__ = [
    "Account",
    "ApiKey",
    "CreateIncidentRequest",
    "EditIncidentRequest",
    "Forbidden",
    "Identity",
    "Incident",
    "IncidentIoClient",
    "IncidentIoError",
    "IncidentStatus",
    "NotFound",
    "RateLimit",
    "RateLimited",
    "RequestObserver",
    "ServerError",
    "Severity",
    "Unauthorized",
    "UnexpectedResponse",
    "Unreachable",
    "ValidationFailed",
]

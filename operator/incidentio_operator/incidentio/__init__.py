"""Everything about incident.io: the API client, its models, errors and client-side rate limiting."""

from incidentio_operator.incidentio.account import Account, AlertSourceAccount, AlertSourceToken, ApiKey
from incidentio_operator.incidentio.alertsources import (
    AlertEvent,
    AlertEventAccepted,
    AlertEventStatus,
    AlertSource,
    AlertSourceHeartbeat,
)
from incidentio_operator.incidentio.client import IncidentIoClient, RequestObserver
from incidentio_operator.incidentio.customfields import (
    CustomField,
    CustomFieldEntry,
    CustomFieldEntryPayload,
    CustomFieldOption,
    CustomFieldValue,
    CustomFieldValuePayload,
)
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
    TERMINAL_STATUS_CATEGORIES,
    CreateIncidentRequest,
    EditIncidentRequest,
    Identity,
    Incident,
    IncidentStatus,
    Severity,
)
from incidentio_operator.incidentio.ratelimit import ALERT_SOURCE_RATE_LIMIT, Priority, RateLimit

__all__ = [
    "ALERT_SOURCE_RATE_LIMIT",
    "TERMINAL_STATUS_CATEGORIES",
    "Account",
    "AlertEvent",
    "AlertEventAccepted",
    "AlertEventStatus",
    "AlertSource",
    "AlertSourceAccount",
    "AlertSourceHeartbeat",
    "AlertSourceToken",
    "ApiKey",
    "CreateIncidentRequest",
    "CustomField",
    "CustomFieldEntry",
    "CustomFieldEntryPayload",
    "CustomFieldOption",
    "CustomFieldValue",
    "CustomFieldValuePayload",
    "EditIncidentRequest",
    "Forbidden",
    "Identity",
    "Incident",
    "IncidentIoClient",
    "IncidentIoError",
    "IncidentStatus",
    "NotFound",
    "Priority",
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

"""Who is calling: an API key (Bearer), or an alert source's token (Bearer, Basic or ``?token=``), and its roles."""

from __future__ import annotations

import base64
import binascii
import hmac

from aiohttp import web

from incidentio_operator.standins.simulator.config import AlertSourceConfig, ApiKeyConfig
from incidentio_operator.standins.simulator.envelope import ApiError, error, not_found
from incidentio_operator.standins.simulator.spec import Operation

MISSING = error("missing_authorization_material", "No authorization material provided in request")


def authenticate_key(request: web.Request, keys: dict[str, ApiKeyConfig]) -> ApiKeyConfig:
    """The API key in ``Authorization: Bearer <key>``; 401 in incident.io's envelope otherwise."""
    header = request.headers.get("Authorization", "")
    if not header.strip():
        raise ApiError(401, [MISSING])
    scheme, _, token = header.strip().partition(" ")
    key = keys.get(token.strip()) if scheme.lower() == "bearer" else None
    if key is None:
        raise ApiError(
            401,
            [error("invalid_authorization_material", "The API key provided is not valid, or has been revoked")],
        )
    return key


def authorize(operation: Operation, key: ApiKeyConfig) -> None:
    role = operation.required_role
    if role is not None and role not in key.roles:
        raise ApiError(
            403,
            [error("missing_role", f"This API key is missing the '{role}' role, which {operation.name} requires")],
        )


def authenticate_source(
    request: web.Request, sources: dict[str, AlertSourceConfig], source_type: str
) -> AlertSourceConfig:
    """The alert source named in the path, if the request carries its token; else 404 or 401.

    The spec lets alert events carry the token as ``Authorization: Bearer`` or ``Basic`` ("We support
    either Basic or Bearer authorization with the secret provided on the alert source") or as the
    ``token`` query parameter, and heartbeat pings as Bearer or ``token``. With Basic, the token may
    stand as the password or as the user name (modelled: the spec does not say which).
    """
    source_id = request.match_info["alert_source_config_id"]
    source = sources.get(source_id)
    if source is None or source.source_type != source_type:
        raise not_found(f"No {source_type} alert source with ID {source_id!r}")
    presented = _presented_tokens(request, basic=source_type == "http")
    if not presented:
        raise ApiError(401, [MISSING])
    expected = source.token.encode()
    # Every candidate is compared, so the time taken does not tell which one came close.
    matches = [hmac.compare_digest(candidate.encode(), expected) for candidate in presented]
    if not any(matches):
        raise ApiError(
            401,
            [error("invalid_authorization_material", "The token provided is not valid for this alert source")],
        )
    return source


def _presented_tokens(request: web.Request, *, basic: bool) -> list[str]:
    candidates = [token] if (token := request.query.get("token")) else []
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        candidates.append(credentials)
    elif scheme.lower() == "basic" and basic:
        candidates += _basic_parts(credentials)
    elif scheme:
        # Something was presented, in a form this endpoint does not take: wrong material, not missing.
        candidates.append("")
    return candidates


def _basic_parts(credentials: str) -> list[str]:
    """The user name and password of Basic credentials that are set; [""] (wrong material) when none is."""
    try:
        user, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return [""]
    return [part for part in (password, user) if part] or [""]

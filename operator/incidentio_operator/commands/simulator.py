"""The ``simulator`` subcommand: run the local incident.io stand-in until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import signal
from pathlib import Path
from typing import Any

import yaml

from incidentio_operator.standins.simulator import (
    DEFAULT_ROLES,
    AlertSourceConfig,
    ApiKeyConfig,
    CustomFieldOptionSeed,
    CustomFieldSeed,
    HeartbeatSettings,
    Simulator,
    SimulatorConfig,
)
from incidentio_operator.standins.simulator.config import CUSTOM_FIELD_TYPES
from incidentio_operator.standins.simulator.incidents import crockford

RETRY_AFTER_FORMS = ("seconds", "http-date")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "simulator",
        help="run a local incident.io stand-in",
        description=(
            "Serve the incident.io endpoints the operator uses on a local port. API keys come from --key "
            "and --config; keys given without roles get viewer, incident_creator and incident_editor. "
            "Alert sources and heartbeats come from --alert-source, --heartbeat and --config; custom fields "
            "from --config (alertSources, heartbeats, customFields), else five seeded ones, one of each type."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="KEY[:role,role]",
        help="an API key the simulator accepts (repeatable); named key-1, key-2, ...",
    )
    parser.add_argument(
        "--alert-source",
        action="append",
        default=[],
        metavar="ID:TOKEN",
        help="an HTTP alert source that takes alert events with this token (repeatable)",
    )
    parser.add_argument(
        "--heartbeat",
        action="append",
        default=[],
        metavar="ID:TOKEN[:INTERVAL[:GRACE]]",
        help="a heartbeat source with this token, pinged every INTERVAL seconds (default 60), GRACE seconds late",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="YAML: keys, alertSources, heartbeats, customFields, rateLimitPerMinute, ...",
    )
    parser.add_argument("--no-rate-limit", action="store_true", help="serve every request, however many")
    parser.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> SimulatorConfig:
    """The simulator configuration from the config file, then ``--key`` and ``--no-rate-limit`` on top."""
    config = SimulatorConfig()
    if args.config is not None:
        apply_file(config, yaml.safe_load(args.config.read_text(encoding="utf-8")) or {})
    for number, option in enumerate(args.key, start=1):
        key, _, roles = option.partition(":")
        if not key:
            raise SystemExit("--key needs a key before the roles")
        role_set = frozenset(role for role in roles.split(",") if role) or DEFAULT_ROLES
        config.keys[key] = ApiKeyConfig(name=f"key-{number}", roles=role_set)
    for number, option in enumerate(args.alert_source, start=1):
        source_id, _, token = option.partition(":")
        add_source(config, {"id": source_id, "name": f"alert-source-{number}", "token": token}, "http")
    for number, option in enumerate(args.heartbeat, start=1):
        source_id, token, interval, grace = [*option.split(":"), "", "", ""][:4]
        entry = {"id": source_id, "name": f"heartbeat-{number}", "token": token}
        entry.update({"intervalSeconds": interval or 60, "gracePeriodSeconds": grace or 0})
        add_source(config, entry, "heartbeat")
    if args.no_rate_limit:
        config.rate_limit_per_minute = None
        config.alert_events_per_minute = None
    return config


def add_source(config: SimulatorConfig, entry: dict[str, Any], source_type: str) -> None:
    """An alert source from a config file entry or a flag; SystemExit naming what is missing or wrong."""
    source_id, name, token = (str(entry.get(field) or "") for field in ("id", "name", "token"))
    if not source_id or not token:
        raise SystemExit(f"an alert source needs an id and a token (got id {source_id!r})")
    heartbeat = None
    if source_type == "heartbeat":
        try:
            heartbeat = HeartbeatSettings(
                interval_seconds=int(entry.get("intervalSeconds", 60)),
                grace_period_seconds=int(entry.get("gracePeriodSeconds", 0)),
                failure_threshold=int(entry.get("failureThreshold", 1)),
            )
        except ValueError as problem:
            raise SystemExit(f"heartbeat {source_id}: {problem}") from None
    config.alert_sources[source_id] = AlertSourceConfig(source_id, name or source_id, token, source_type, heartbeat)


def custom_field(entry: dict[str, Any]) -> CustomFieldSeed:
    """A custom field from a config file entry; IDs left out are derived from the names, so they are stable."""
    name = str(entry.get("name") or "")
    field_type = next((known for known in CUSTOM_FIELD_TYPES if known == entry.get("fieldType")), None)
    if not name or field_type is None:
        raise SystemExit(f"custom field {name!r}: needs a name and a fieldType, one of {', '.join(CUSTOM_FIELD_TYPES)}")
    field_id = str(entry.get("id") or _derived_id(name))
    options = tuple(
        CustomFieldOptionSeed(_derived_id(f"{field_id}/{value}"), str(value), number * 10)
        for number, value in enumerate(entry.get("options") or [], start=1)
    )
    if bool(options) != field_type.endswith("_select"):
        raise SystemExit(f"custom field {name!r}: options go with single_select and multi_select fields only")
    return CustomFieldSeed(field_id, name, field_type, str(entry.get("description") or ""), options)


def _derived_id(name: str) -> str:
    return "01H" + crockford(int.from_bytes(hashlib.sha256(name.encode()).digest()[:15], "big"), 23)


def apply_file(config: SimulatorConfig, document: dict[str, Any]) -> None:
    for number, entry in enumerate(document.get("keys") or [], start=1):
        roles = entry.get("roles")
        config.keys[str(entry["key"])] = ApiKeyConfig(
            name=str(entry.get("name") or f"file-key-{number}"),
            roles=frozenset(roles) if roles is not None else DEFAULT_ROLES,
        )
    if "rateLimitPerMinute" in document:
        config.rate_limit_per_minute = document["rateLimitPerMinute"]
    if "refillPerSecond" in document:
        config.refill_per_second = float(document["refillPerSecond"])
    if "retryAfterForm" in document:
        form = document["retryAfterForm"]
        if form not in RETRY_AFTER_FORMS:
            raise SystemExit(f"retryAfterForm must be one of {', '.join(RETRY_AFTER_FORMS)}, not {form!r}")
        config.retry_after_form = form
    for entry in document.get("alertSources") or []:
        add_source(config, entry, str(entry.get("sourceType") or "http"))
    for entry in document.get("heartbeats") or []:
        add_source(config, entry, "heartbeat")
    if "customFields" in document:
        config.custom_fields = [custom_field(entry) for entry in document["customFields"] or []]
    if "alertEventsPerMinute" in document:
        config.alert_events_per_minute = document["alertEventsPerMinute"]
        if config.alert_events_per_minute is not None:
            config.alert_events_refill_per_second = config.alert_events_per_minute / 60
    config.severity_required = bool(document.get("severityRequired", config.severity_required))
    config.close_requires_role = document.get("closeRequiresRole", config.close_requires_role)


async def serve(config: SimulatorConfig, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Ctrl-C, and SIGTERM from a container runtime, both stop the server cleanly; the handlers go in
    # before anything is printed, so a caller that signals as soon as it reads the URL is honoured.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    simulator = Simulator(config)
    await simulator.start(host, port)
    try:
        print(f"incident.io simulator listening on {simulator.url}")
        for name in sorted(key.name for key in config.keys.values()):
            print(f"  API key: {name}")
        for status in config.incident_statuses:
            print(f"  incident status {status.id}  {status.category:<9} {status.name}")
        for severity in config.severities:
            print(f"  severity        {severity.id}  rank {severity.rank}  {severity.name}")
        for field in config.custom_fields:
            options = f": {', '.join(option.value for option in field.options)}" if field.options else ""
            print(f"  custom field    {field.id}  {field.field_type:<13} {field.name}{options}")
        for source in config.alert_sources.values():
            if source.heartbeat is None:
                print(f"  alert source    {source.id}  {source.source_type:<9} {source.name}")
            else:
                every = f"every {source.heartbeat.interval_seconds}s, grace {source.heartbeat.grace_period_seconds}s"
                print(f"  heartbeat       {source.id}  {every}  {source.name}")
        limit, events = config.rate_limit_per_minute, config.alert_events_per_minute
        print(f"  rate limit: {f'{limit}/min per key' if limit is not None else 'off'}", flush=True)
        print(f"  alert events: {f'{events}/min per alert source' if events is not None else 'no limit'}", flush=True)
        await stop.wait()
    finally:
        await simulator.stop()


def run(args: argparse.Namespace) -> int:
    asyncio.run(serve(build_config(args), args.host, args.port))
    return 0

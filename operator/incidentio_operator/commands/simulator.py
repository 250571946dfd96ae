"""The ``simulator`` subcommand: run the local incident.io stand-in until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import Any

import yaml

from incidentio_operator.standins.simulator import DEFAULT_ROLES, ApiKeyConfig, Simulator, SimulatorConfig

RETRY_AFTER_FORMS = ("seconds", "http-date")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "simulator",
        help="run a local incident.io stand-in",
        description=(
            "Serve the incident.io endpoints the operator uses on a local port. API keys come from --key "
            "and --config; keys given without roles get viewer, incident_creator and incident_editor."
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
    parser.add_argument("--config", type=Path, metavar="FILE", help="YAML: keys, rateLimitPerMinute, ...")
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
    if args.no_rate_limit:
        config.rate_limit_per_minute = None
    return config


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
        limit = config.rate_limit_per_minute
        print(f"  rate limit: {f'{limit}/min per key' if limit is not None else 'off'}", flush=True)
        await stop.wait()
    finally:
        await simulator.stop()


def run(args: argparse.Namespace) -> int:
    asyncio.run(serve(build_config(args), args.host, args.port))
    return 0

"""kopf wiring only: importing this package registers every handler with kopf's default registry."""

from incidentio_operator.handlers import alerts, blackouts, destinations, rules, startup

__all__ = ["alerts", "blackouts", "destinations", "rules", "startup"]

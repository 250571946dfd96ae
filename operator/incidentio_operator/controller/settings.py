"""The controller's tunables, set from the command line (``incidentio-operator run``)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    concurrency: int = 32
    allow_cross_namespace: bool = False
    # Every object is looked at again this often, so nothing due is missed even if an event was.
    sweep_interval: float = 60.0
    delivery_retry_base: float = 5.0
    test_retry_base: float = 15.0
    # Each destination re-reads its API key Secret this often (a GET by name): a rotated key is noticed
    # without watching, or holding in memory, any other Secret of the cluster.
    secret_poll_interval: float = 30.0
    # The refill rate of each API key's incident.io rate limit: drift checks use at most 5 % of it.
    rate_limit_refill: float = 20.0
    # Rule and destination statuses summarise many alerts; batch their writes.
    summary_delay: float = 2.0
    # The namespaces the operator watches (kopf patterns); empty means the whole cluster.
    namespaces: tuple[str, ...] = ()
    # An open incident's edit goes once its alert has been quiet this long, at most update_longest after
    # the first change (a burst of spec changes is one edit).
    update_quiet: float = 3.0
    update_longest: float = 30.0
    # Settled DataAlerts that set no spec.ttlSecondsAfterSettled are deleted this long after settling
    # (None: kept).
    settled_alert_ttl: float | None = None

    # Sharding (--shard-label): only DataAlerts carrying every one of these labels are this replica's to
    # route; alerts that leave the shard while holding incidents it opened are still finished by it.
    shard_labels: tuple[tuple[str, str], ...] = ()

    def in_shard(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(key) == value for key, value in self.shard_labels)

    @property
    def owner(self) -> str:
        """This replica's name in the owner label of the alerts it opened incidents for (a label value)."""
        if not self.shard_labels:
            return "all"
        shard = ",".join(f"{key}={value}" for key, value in sorted(self.shard_labels))
        return "shard-" + hashlib.sha256(shard.encode()).hexdigest()[:12]

    @property
    def call_slots(self) -> int:
        """incident.io calls one destination may have in flight at once (the rest of its alerts park)."""
        return max(4, self.concurrency // 4)

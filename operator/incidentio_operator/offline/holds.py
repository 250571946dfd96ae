"""What noise control would do with an alert at a given time, offline: for ``route --at``.

Schedules, blackouts and snoozes depend only on the manifests and the time, so they are evaluated exactly
as the operator does (decisions/suppression). Cooldowns and daily caps depend on the incidents already
opened in the cluster, which an offline tool cannot know: they are named, not evaluated.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence

from incidentio_operator.api import GROUP, AlertBlackout, AlertRule, DataAlert, ObjectRef, format_time
from incidentio_operator.decisions.delivery import destination_label
from incidentio_operator.decisions.routing import Routing
from incidentio_operator.decisions.suppression import Candidate, NoiseFacts, evaluate, format_duration
from incidentio_operator.offline.manifests import ManifestSet


def held_back(
    alert: DataAlert, routing: Routing, rules: Sequence[AlertRule], manifests: ManifestSet, at: datetime.datetime
) -> dict[ObjectRef, str]:
    """Per routed destination the alert would not reach at ``at``: why, as the delivery's message would say."""
    blackouts = [AlertBlackout.from_body(manifest.body) for manifest in manifests.of_kind("AlertBlackout", GROUP)]
    in_namespace = {rule.ref.name: rule for rule in rules if rule.ref.namespace == alert.ref.namespace}
    facts = NoiseFacts(in_namespace, tuple(blackouts))
    held: dict[ObjectRef, str] = {}
    for route in routing.routes:
        label = destination_label(route.destination, alert.ref.namespace)
        verdict = evaluate(Candidate(alert, route.destination, label, 1, route.rules), facts, at)
        if verdict.deliver:
            continue
        until = verdict.deferred_until
        state = f"Deferred until {format_time(until)}" if until else "Suppressed"
        held[route.destination] = f"{state} ({verdict.leading.reason}): {verdict.message}"
    return held


def unknowable(routing: Routing, rules: Mapping[str, AlertRule]) -> list[str]:
    """Notes on the cooldowns and daily caps of the matching rules, which an offline run cannot evaluate."""
    notes = []
    for name in routing.matched_rules:
        spec = rules[name].spec if name in rules else None
        if spec is None:
            continue
        limits = [f"cooldown {format_duration(spec.cooldown)}" if spec.cooldown else ""]
        limits.append(f"maxIncidentsPerDay {spec.max_incidents_per_day}" if spec.max_incidents_per_day else "")
        if any(limits):
            notes.append(
                f"rule {name} has {' and '.join(limit for limit in limits if limit)}: they depend on the incidents "
                "already opened in the cluster, and are not evaluated offline"
            )
    return notes

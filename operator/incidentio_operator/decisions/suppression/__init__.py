"""Pure noise control: schedules, blackouts, cooldowns, daily caps and snoozes, evaluated for one delivery at a time."""

from incidentio_operator.decisions.suppression.evaluate import (
    AdmissionHistory,
    AdmissionKey,
    Candidate,
    Held,
    NoHistory,
    NoiseFacts,
    PastAdmission,
    Reason,
    Verdict,
    cooldown_subject,
    day_of,
    evaluate,
    format_duration,
    rule_time_zone,
)
from incidentio_operator.decisions.suppression.windows import Span, blackout_spans, next_span, open_span, schedule_spans

__all__ = [
    "AdmissionHistory",
    "AdmissionKey",
    "Candidate",
    "Held",
    "NoHistory",
    "NoiseFacts",
    "PastAdmission",
    "Reason",
    "Span",
    "Verdict",
    "blackout_spans",
    "cooldown_subject",
    "day_of",
    "evaluate",
    "format_duration",
    "next_span",
    "open_span",
    "rule_time_zone",
    "schedule_spans",
]

"""The operator's run options, handed from the command line to the startup handler through kopf's memo."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field

from incidentio_operator.api.common import utcnow
from incidentio_operator.controller.settings import Settings


@dataclass(frozen=True)
class RunOptions:
    settings: Settings = field(default_factory=Settings)
    incidentio_timeout: float = 10.0
    incidentio_max_attempts: int = 4
    rate_limit_per_minute: int = 1200
    rate_limit_refill_per_second: float = 20.0
    # Objects per page when a watch (re)starts with a list; 0 lists everything in one response.
    list_page_size: int = 500
    # For tests only: the operator's clock runs this many seconds ahead of (or behind) the system clock, so
    # schedules and cooldowns can be tried at chosen times of day without waiting for them.
    clock_offset: float = 0.0

    def clock(self) -> Callable[[], datetime.datetime]:
        """The one clock every reconciler reads (the system clock, shifted by ``clock_offset``)."""
        if not self.clock_offset:
            return utcnow
        offset = datetime.timedelta(seconds=self.clock_offset)
        return lambda: utcnow() + offset

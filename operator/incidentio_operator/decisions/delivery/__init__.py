"""Pure delivery lifecycle: from an alert, its routes, the destinations and the current status, what to do.

The operator runs one alert in three steps: ``plan`` says which incidents to open or close and
which status to write *before* any call goes out (so the idempotency key and the attempt are on
record if the process dies mid-call); the calls run; ``settle`` folds their outcomes into the
status written afterwards. Neither step does I/O.
"""

from incidentio_operator.decisions.delivery.ended import ENDED_REASON, how_it_ended
from incidentio_operator.decisions.delivery.model import (
    HELD_STATES,
    HISTORY_EPOCHS,
    RETRY_BASE_SECONDS,
    RETRY_MAX_SECONDS,
    Action,
    AlertContext,
    CloseIncident,
    Delivery,
    DeliveryEvent,
    OpenIncident,
    Outcome,
    Plan,
    SendAlertEvent,
    Settlement,
    State,
    closes,
    closing,
    destination_label,
    destination_ref,
    retry_delay,
)
from incidentio_operator.decisions.delivery.plan import close_request, plan
from incidentio_operator.decisions.delivery.record import UpdateIncident, UpdateTiming
from incidentio_operator.decisions.delivery.settle import settle

__all__ = [
    "ENDED_REASON",
    "HELD_STATES",
    "HISTORY_EPOCHS",
    "RETRY_BASE_SECONDS",
    "RETRY_MAX_SECONDS",
    "Action",
    "AlertContext",
    "CloseIncident",
    "Delivery",
    "DeliveryEvent",
    "OpenIncident",
    "Outcome",
    "Plan",
    "SendAlertEvent",
    "Settlement",
    "State",
    "UpdateIncident",
    "UpdateTiming",
    "close_request",
    "closes",
    "closing",
    "destination_label",
    "destination_ref",
    "how_it_ended",
    "plan",
    "retry_delay",
    "settle",
]

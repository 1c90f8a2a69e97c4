"""The edge queue: event log (store), engine (issue/call/recall/no-show/transfer), work profiles, wait estimate."""

from civiq.edge.queue.engine import (
    CounterView,
    QueueEngine,
    QueueError,
    RecallCooldown,
    RecallResult,
    ServiceDef,
    SignIn,
    Ticket,
    TicketStatus,
)
from civiq.edge.queue.estimate import CounterLoad, Departure, estimate_wait_s, mean_service_s
from civiq.edge.queue.profiles import WaitingTicket, choose_next, counters_serving
from civiq.edge.queue.store import EdgeStore, StoreFull

__all__ = [
    "CounterLoad",
    "CounterView",
    "Departure",
    "EdgeStore",
    "QueueEngine",
    "QueueError",
    "RecallCooldown",
    "RecallResult",
    "ServiceDef",
    "SignIn",
    "StoreFull",
    "Ticket",
    "TicketStatus",
    "WaitingTicket",
    "choose_next",
    "counters_serving",
    "estimate_wait_s",
    "mean_service_s",
]

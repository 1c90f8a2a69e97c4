"""Which waiting ticket a counter calls next: the edge's name for :mod:`civiq.workprofile` (the same code the
gateway's load-balancing simulation uses)."""

from civiq.workprofile import (
    NO_PRIORITY,
    PriorityOrder,
    PriorityRule,
    WaitingTicket,
    WorkProfile,
    choose_next,
    counters_serving,
)

__all__ = ["NO_PRIORITY", "PriorityOrder", "PriorityRule", "WaitingTicket", "WorkProfile", "choose_next",
           "counters_serving"]

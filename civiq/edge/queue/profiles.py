"""Which waiting ticket a counter calls next: a pure function of its work profile and the waiting line.

A counter's :class:`~civiq.contract.WorkProfile` is an ordered list of services plus priority rules
("if the oldest ticket of X has waited more than N minutes, take X first"). :func:`choose_next` applies,
in this order:

1. tickets **pinned to this counter** (a transfer to a named counter), oldest first, whatever their service;
2. the **rules**, in the order written: the first rule whose service's oldest (unpinned) ticket has waited
   more than ``over_minutes`` wins, and that oldest ticket is taken. A rule's service need not be in the
   profile's ``services``: a rule is also a permission to help another line under pressure;
3. otherwise the **longest-waiting** unpinned ticket among the profile's ``services``; tickets that entered
   the line at the same instant go in profile order, then in issue order.

Tickets pinned to another counter are never taken. "Waited" is measured from :attr:`WaitingTicket.since`,
the time the ticket entered the line (a transferred ticket keeps its original issue time).

>>> from datetime import UTC, datetime, timedelta
>>> t0 = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
>>> line = [WaitingTicket("A001", "A", t0, 1), WaitingTicket("B001", "B", t0 - timedelta(minutes=25), 2)]
>>> prof = WorkProfile(services=["A"], rules=[PriorityRule(service="B", over_minutes=20)])
>>> choose_next("c1", prof, line, t0).key
'B001'
>>> choose_next("c1", WorkProfile(services=["A"]), line, t0).key
'A001'
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from civiq.contract import PriorityRule, WorkProfile

__all__ = ["WaitingTicket", "choose_next", "counters_serving", "PriorityRule", "WorkProfile"]


@dataclass(frozen=True)
class WaitingTicket:
    """One ticket in the waiting line, as the chooser sees it."""

    key: Hashable  # whatever identifies the ticket for the caller (the engine uses (day, label))
    service: str
    since: datetime  # when it entered the line (original issue time for transfers)
    seq: int  # issue order: the last tie-break, immune to equal timestamps
    pinned_to: str | None = None  # a counter id: only that counter may call it


def _oldest(tickets: Iterable[WaitingTicket]) -> WaitingTicket | None:
    return min(tickets, key=lambda t: (t.since, t.seq), default=None)


def choose_next(counter: str, profile: WorkProfile, waiting: Iterable[WaitingTicket],
                now: datetime) -> WaitingTicket | None:
    """The ticket ``counter`` should call now, or None when nothing it may serve is waiting."""
    line = list(waiting)
    pinned = _oldest(t for t in line if t.pinned_to == counter)
    if pinned is not None:
        return pinned
    free = [t for t in line if t.pinned_to is None]
    for rule in profile.rules:
        oldest = _oldest(t for t in free if t.service == rule.service)
        if oldest is not None and (now - oldest.since).total_seconds() > rule.over_minutes * 60:
            return oldest
    order = {s: i for i, s in reversed(list(enumerate(profile.services)))}
    candidates = [t for t in free if t.service in order]
    return min(candidates, key=lambda t: (t.since, order[t.service], t.seq), default=None)


def counters_serving(service: str, profiles: Mapping[str, WorkProfile]) -> list[str]:
    """Counters whose profile lists ``service`` among its services (rules alone do not count: they only
    apply under pressure, so an estimate must not rely on them)."""
    return [c for c, p in profiles.items() if service in p.services]

"""Which waiting ticket a counter calls next: a pure function of its work profile and the waiting line.

Shared by the edge's queue engine (:mod:`civiq.edge.queue.engine`, which re-exports it from
:mod:`civiq.edge.queue.profiles`) and the gateway's load-balancing simulation
(:mod:`civiq.gateway.balance.simulate`), so the advisor's simulated counters choose exactly as production does.

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

**Priority tickets** (elderly, disabled, pregnant, merit: :attr:`WaitingTicket.priority` is a class id) go
ahead under the center's :class:`PriorityOrder`, within steps 2 and 3 (a pinned ticket still comes first):

* ``first``: among the tickets a step may take, priority tickets come before every normal ticket, oldest
  priority first. With ``max_in_row`` = K > 0, once a counter has called K priority tickets in a row
  (``priority_run``, kept by the engine) its next step-3 choice is the oldest *normal* ticket if one waits,
  so a steady flow of priority citizens never starves the normal line;
* ``boost``: a priority ticket is ranked as if it had entered the line ``boost_minutes`` earlier: it passes
  normal tickets younger than that, never older ones.

A rule (step 2) still triggers on the *real* wait of its service's oldest ticket; it then takes that
service's first ticket in priority order. Ties always end on the issue order: the choice is deterministic.

>>> from datetime import UTC, datetime, timedelta
>>> t0 = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
>>> line = [WaitingTicket("A001", "A", t0, 1), WaitingTicket("B001", "B", t0 - timedelta(minutes=25), 2)]
>>> prof = WorkProfile(services=["A"], rules=[PriorityRule(service="B", over_minutes=20)])
>>> choose_next("c1", prof, line, t0).key
'B001'
>>> choose_next("c1", WorkProfile(services=["A"]), line, t0).key
'A001'
>>> po = PriorityOrder("first")
>>> line2 = [WaitingTicket("A001", "A", t0, 1), WaitingTicket("A002", "A", t0, 2, priority="elderly")]
>>> choose_next("c1", WorkProfile(services=["A"]), line2, t0, po).key
'A002'
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from civiq.contract import PriorityRule, WorkProfile

__all__ = ["PriorityOrder", "WaitingTicket", "choose_next", "counters_serving", "PriorityRule", "WorkProfile"]


@dataclass(frozen=True)
class WaitingTicket:
    """One ticket in the waiting line, as the chooser sees it."""

    key: Hashable  # whatever identifies the ticket for the caller (the engine uses (day, label))
    service: str
    since: datetime  # when it entered the line (original issue time for transfers)
    seq: int  # issue order: the last tie-break, immune to equal timestamps
    pinned_to: str | None = None  # a counter id: only that counter may call it
    priority: str | None = None  # a priority class id (elderly, ...), None for a normal ticket


@dataclass(frozen=True)
class PriorityOrder:
    """How priority tickets go ahead (config ``priority:``; see the module docstring)."""

    rule: Literal["first", "boost"] = "first"
    max_in_row: int = 0  # first: after this many priority calls in a row, a normal one if waiting; 0 = no limit
    boost_minutes: float = 15.0  # boost: minutes of wait credited to a priority ticket

    def rank(self, t: WaitingTicket | object, since: datetime, seq: int) -> tuple[int, datetime]:
        """Sort key head of a ticket (then the caller's tie-breaks): lower goes first."""
        if getattr(t, "priority", None) is None:
            return (1, since)
        if self.rule == "first":
            return (0, since)
        return (1, since - timedelta(minutes=self.boost_minutes))


NO_PRIORITY = PriorityOrder()


def _oldest(tickets: Iterable[WaitingTicket]) -> WaitingTicket | None:
    return min(tickets, key=lambda t: (t.since, t.seq), default=None)


def _first(tickets: Iterable[WaitingTicket], order: PriorityOrder) -> WaitingTicket | None:
    return min(tickets, key=lambda t: (*order.rank(t, t.since, t.seq), t.seq), default=None)


def choose_next(counter: str, profile: WorkProfile, waiting: Iterable[WaitingTicket], now: datetime,
                priority: PriorityOrder | None = None, priority_run: int = 0) -> WaitingTicket | None:
    """The ticket ``counter`` should call now, or None when nothing it may serve is waiting.
    ``priority_run``: priority tickets this counter called in a row just before (for ``max_in_row``)."""
    po = priority or NO_PRIORITY
    line = list(waiting)
    pinned = _oldest(t for t in line if t.pinned_to == counter)
    if pinned is not None:
        return pinned
    free = [t for t in line if t.pinned_to is None]
    for rule in profile.rules:
        mine = [t for t in free if t.service == rule.service]
        oldest = _oldest(mine)
        if oldest is not None and (now - oldest.since).total_seconds() > rule.over_minutes * 60:
            return _first(mine, po)
    order = {s: i for i, s in reversed(list(enumerate(profile.services)))}
    candidates = [t for t in free if t.service in order]
    if po.rule == "first" and po.max_in_row and priority_run >= po.max_in_row:
        normal = [t for t in candidates if t.priority is None]
        candidates = normal or candidates
    return min(candidates, key=lambda t: (*po.rank(t, t.since, t.seq), order[t.service], t.seq), default=None)


def counters_serving(service: str, profiles: Mapping[str, WorkProfile]) -> list[str]:
    """Counters whose profile lists ``service`` among its services (rules alone do not count: they only
    apply under pressure, so an estimate must not rely on them)."""
    return [c for c, p in profiles.items() if service in p.services]

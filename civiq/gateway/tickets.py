"""The gateway's ticket book: what the public ticket page (the QR on a printed ticket) may show.

    >>> from datetime import UTC, datetime
    >>> from civiq.contract import Event, EventType
    >>> book = TicketBook()
    >>> for seq, label in ((1, "A001"), (2, "A002")):
    ...     ts = datetime(2026, 3, 2, 1, seq, tzinfo=UTC)
    ...     book.apply("c1", Event(seq=seq, ts=ts, type=EventType.ticket_issued,
    ...                            data={"ticket": label, "day": "2026-03-02", "service": "A"}))
    >>> book.ahead("c1", "2026-03-02", "A002")
    1
"""

from __future__ import annotations

import threading

from civiq.contract import EventType


class TicketBook:
    """What the public ticket page may show: label, service, state, counter. No personal data exists."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tickets: dict[tuple[str, str, str], dict] = {}  # (center, day, label)

    def apply(self, center: str, ev) -> None:  # noqa: ANN001
        d = ev.data
        label, day = d.get("ticket"), d.get("day")
        if not label or not day:
            return
        key = (center, day, label)
        with self.lock:
            t = self.tickets.setdefault(key, {"ticket": label, "service": d.get("service"), "state": "waiting",
                                              "counter": None, "issued_at": ev.ts.isoformat(),
                                              "priority": d.get("priority")})
            if d.get("priority") and not t.get("priority"):
                t["priority"] = d.get("priority")
            if ev.type == EventType.ticket_called or ev.type == EventType.ticket_recalled:
                t.update(state="called", counter=d.get("counter"))
            elif ev.type == EventType.ticket_completed:
                t.update(state="done")
            elif ev.type == EventType.ticket_no_show:
                t.update(state="no_show")
            elif ev.type == EventType.ticket_transferred:
                t.update(state="waiting", counter=None, service=d.get("to_service") or t["service"])
            elif ev.type == EventType.ticket_held:
                t.update(state="held", counter=d.get("counter"))

    def ahead(self, center: str, day: str, label: str) -> int | None:
        """People before this ticket in its service's line: the earlier tickets of its own kind, and every
        waiting priority ticket before a normal one (priority tickets go first: docs/manager.md). A center on
        the ``boost`` rule may call a normal ticket sooner; the count is then cautious, never hopeful."""
        with self.lock:
            t = self.tickets.get((center, day, label))
            if t is None or t["state"] != "waiting":
                return None
            mine = bool(t.get("priority"))
            return sum(1 for (c, dd, _), o in self.tickets.items()
                       if c == center and dd == day and o["service"] == t["service"] and o["state"] == "waiting"
                       and o is not t and (bool(o.get("priority")) > mine
                                           or (bool(o.get("priority")) == mine and o["issued_at"] < t["issued_at"])))

    def get(self, center: str, day: str, label: str) -> dict | None:
        with self.lock:
            t = self.tickets.get((center, day, label))
            return dict(t) if t else None

    def prune(self, keep_days: set[str]) -> None:
        with self.lock:
            for k in [k for k in self.tickets if k[1] not in keep_days]:
                del self.tickets[k]

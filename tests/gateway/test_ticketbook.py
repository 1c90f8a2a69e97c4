"""The public ticket page's line position: what a citizen reads as "people ahead of you"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from civiq.contract import Event, EventType
from civiq.gateway.tickets import TicketBook

T0 = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
DAY = "2026-12-07"


def issue(book: TicketBook, seq: int, label: str, priority: str | None = None, service: str = "A") -> None:
    data = {"ticket": label, "service": service, "day": DAY}
    if priority:
        data["priority"] = priority
    book.apply("c", Event(seq=seq, ts=T0 + timedelta(minutes=seq), type=EventType.ticket_issued, data=data))


def test_priority_tickets_count_ahead_of_normal_ones() -> None:
    book = TicketBook()
    issue(book, 1, "A001")
    issue(book, 2, "A002")
    issue(book, 3, "A003", priority="elderly")
    issue(book, 4, "A004", priority="disabled")
    issue(book, 5, "B001", service="B", priority="elderly")
    assert book.ahead("c", DAY, "A001") == 2  # the two priority tickets go first
    assert book.ahead("c", DAY, "A002") == 3
    assert book.ahead("c", DAY, "A003") == 0  # the earliest priority ticket is next
    assert book.ahead("c", DAY, "A004") == 1
    assert book.ahead("c", DAY, "B001") == 0  # another service's line
    book.apply("c", Event(seq=6, ts=T0 + timedelta(minutes=6), type=EventType.ticket_called,
                          data={"ticket": "A003", "service": "A", "day": DAY, "counter": "c1",
                                "priority": "elderly"}))
    assert book.ahead("c", DAY, "A001") == 1
    assert book.ahead("c", DAY, "A003") is None  # called: no longer in the line

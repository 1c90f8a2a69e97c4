"""Report periods: a local day, an ISO week (Monday to Sunday) or a calendar month, in the center's time zone.

>>> p = period_of("week", "2026-12-05")     # a Saturday
>>> p.label, p.first.isoformat(), p.last.isoformat()
('2026-W49', '2026-11-30', '2026-12-06')
>>> s, u = p.bounds("Asia/Ho_Chi_Minh")
>>> s.isoformat(), u.isoformat()
('2026-11-29T17:00:00+00:00', '2026-12-06T17:00:00+00:00')
>>> period_of("month", "2026-02-14").label
'2026-02'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from civiq.errors import GatewayError

PERIODS = ("day", "week", "month")


class PeriodError(GatewayError, ValueError):
    """A period or date that cannot be used; the message says why."""


@dataclass(frozen=True)
class Period:
    kind: str  # day, week, month
    first: date  # the first local day in the period
    end: date  # the day after the last one (exclusive)

    @property
    def last(self) -> date:
        return self.end - timedelta(days=1)

    @property
    def label(self) -> str:
        if self.kind == "day":
            return self.first.isoformat()
        if self.kind == "week":
            y, w, _ = self.first.isocalendar()
            return f"{y}-W{w:02d}"
        return f"{self.first.year}-{self.first.month:02d}"

    def bounds(self, tz: str) -> tuple[datetime, datetime]:
        """UTC start (inclusive) and end (exclusive): local midnight of ``first`` and of ``end``."""
        z = ZoneInfo(tz)
        return (datetime.combine(self.first, time(0), z).astimezone(UTC),
                datetime.combine(self.end, time(0), z).astimezone(UTC))

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.end - self.first).days)]

    def to_json(self, tz: str) -> dict[str, str]:
        since, until = self.bounds(tz)
        return {"kind": self.kind, "label": self.label, "first": self.first.isoformat(),
                "last": self.last.isoformat(), "since": since.isoformat(), "until": until.isoformat(), "tz": tz}


def parse_day(value: str | date) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise PeriodError(f"date {value!r} must be a day like 2026-12-05") from None


def period_of(kind: str, day: str | date) -> Period:
    """The period of ``kind`` (day, week, month) that contains local day ``day``."""
    d = parse_day(day)
    if kind == "day":
        return Period("day", d, d + timedelta(days=1))
    if kind == "week":
        first = d - timedelta(days=d.weekday())
        return Period("week", first, first + timedelta(days=7))
    if kind == "month":
        first = d.replace(day=1)
        end = first.replace(year=first.year + 1, month=1) if first.month == 12 else first.replace(month=first.month + 1)
        return Period("month", first, end)
    raise PeriodError(f"period {kind!r} must be one of {', '.join(PERIODS)}")

"""What the web layer needs from the rest of the gateway: the :class:`GatewayView` protocol.

The web layer never imports the live state, the series store, the alert engine or the advisor directly. The
gateway wires one object that implements this protocol (:class:`civiq.gateway.web.memory.MemoryView` is an
in-memory one, used by the tests and a good base for the real adapter). Every method is synchronous and is
called from a worker thread, so it may do blocking I/O (SQLite, MQTT publish). Returned dicts must be
JSON-ready (str/int/float/bool/None, lists, dicts; timestamps as ISO 8601 strings).

Shapes (the same as :class:`civiq.gateway.state.LiveState` returns, plus a few optional keys):

* ``overview()`` rows: ``center, name, waiting, longest_wait_s, counters_open, counters_total, nodes_online,
  nodes_offline, nodes_unknown, devices_failing, devices_degraded, served_today, issued_today, stale``.
* ``center(id)``: ``center, name, stale, queue_ts, services{sid: {waiting, oldest_wait_s, eta_s,
  served_today, issued_today, name?}}, counters{cid: {state, ticket, services, served_today, per_hour?}},
  nodes[...], devices[...]``.
* ``devices(center|None)``: node dicts ``center, node, status, reason, last_seen, host{}, outbox{pending,
  oldest_s}, devices[{id, kind, model, state, detail, since}]``.
* ``alerts(center|None)``: active alerts ``key, center, node, device, kind, severity, summary (both
  languages), title_vi, title_en, since, acked_by, acked_at``; ``silences(center|None)``: ``id, center, node, until, reason, user``.
* ``history(...)``: ``[(ts_iso, value), ...]`` in time order; ``daily(center, days)``:
  ``[{day, issued, served, avg_wait_s, max_wait_s}]`` oldest first.
* ``advice(center)``: None or ``{id, summary, reason, changes[{counter, before[...], after[...]}],
  expected{longest_wait_before_s, longest_wait_after_s, text}}``. Should be cheap (the last advice computed).
* ``report(center, period, day, clerk, lang)``: the report of :func:`civiq.gateway.reports.compute.compute`
  (docs/reports.md); ``ratings(center, since, until, clerk)``: rating rows of
  :func:`civiq.gateway.reports.ratings.rating_rows`. Both from the stored event log.
* ``public_ticket(center, day, label)``: None or ``{ticket, service, service_name?, center_name?, state (waiting, called,
  done, no_show, unknown), ahead (int|None), eta_s (float|None), counter (str|None)}``. No personal data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from civiq.contract import CounterCmd
from civiq.errors import GatewayError

JSON = dict[str, Any]

#: metric names the history endpoint accepts (the store may hold more).
HISTORY_METRICS = ("waiting", "longest_wait_s", "served", "issued", "counters_open", "eta_s")


class ViewError(GatewayError):
    """A request the gateway refused on its own grounds (unknown counter, node offline...).

    ``status`` is the HTTP status to answer with (404 unknown thing, 409 conflict, 503 cannot reach).
    """

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


class GatewayView(Protocol):
    def version(self) -> int:
        """A number that grows whenever anything shown on a page may have changed."""

    def overview(self) -> list[JSON]:
        """One row per center, sorted by center id."""

    def center(self, center: str) -> JSON | None:
        """One center's live state; None for an unknown center."""

    def devices(self, center: str | None) -> list[JSON]:
        """Nodes (with their devices) of one center, or of every center."""

    def alerts(self, center: str | None) -> list[JSON]:
        """Active alerts, newest first."""

    def silences(self, center: str | None) -> list[JSON]:
        """Maintenance silences still in force."""

    def history(self, center: str, metric: str, since: datetime, until: datetime) -> list[tuple[str, float]]:
        """Time series points; raise ``ViewError(..., 404)`` for an unknown metric."""

    def daily(self, center: str, days: int) -> list[JSON]:
        """Per-day totals of the last ``days`` local days."""

    def advice(self, center: str) -> JSON | None:
        """The advisor's current advice for a center, or None."""

    def apply_advice(self, center: str, advice_id: str, user: str) -> JSON:
        """Push the advice as the center's policy; returns ``{policy_version}``; ViewError when stale."""

    def public_ticket(self, center: str, day: str, label: str) -> JSON | None:
        """A ticket as a citizen may see it; None when unknown."""

    def report(self, center: str, period: str, day: str, clerk: str | None = None, lang: str = "vi") -> JSON:
        """The center's report for the ``period`` (day, week, month) holding local ``day``; ``clerk``: only
        that clerk's work. ViewError(400) for a bad period or date."""

    def ratings(self, center: str, since: datetime, until: datetime, clerk: str | None = None) -> list[JSON]:
        """Every rating of the center with ``since <= ts < until``, oldest first (``clerk``: theirs only)."""

    def command_result(self, center: str, cmd_id: str) -> JSON | None:
        """The edge's answer to a command sent by :meth:`send_counter_command` (None while pending)."""

    def audit(self, center: str, day: str) -> list[JSON]:
        """The day's out-of-order actions (out-of-order calls, holds, call backs, priority tickets), oldest
        first, each as :func:`civiq.gateway.state.recent_item` makes it."""

    def send_counter_command(self, center: str, cmd: CounterCmd, user: str) -> JSON:
        """Relay a counter command to the edge that owns the counter; returns ``{id, node}``."""

    def acknowledge(self, key: str, user: str) -> bool:
        """Acknowledge an active alert; False when there is no such alert."""

    def silence(self, center: str, node: str | None, until: datetime, reason: str, user: str) -> JSON:
        """Silence alerts of a center (or one node) until ``until``; returns the silence."""

"""The real :class:`~civiq.gateway.web.view.GatewayView`: the web layer's window on a running gateway.

Live parts come from :class:`LiveState` (inherited from :class:`MemoryView`); alerts and silences from the
:class:`AlertEngine`; history and daily totals from the :class:`SeriesStore`; advice from the advisor's last
run; public tickets from the gateway's ticket book; counter commands and policies go out through the ingest's
MQTT client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from civiq.clock import local_day
from civiq.contract import CounterCmd
from civiq.gateway.alerts.conditions import KINDS
from civiq.gateway.alerts.engine import AlertError
from civiq.gateway.web.memory import MemoryView
from civiq.gateway.web.view import HISTORY_METRICS, JSON, ViewError

if TYPE_CHECKING:
    from civiq.clock import Clock
    from civiq.gateway.alerts.engine import AlertEngine
    from civiq.gateway.balance.advisor import Advice
    from civiq.gateway.state import LiveState
    from civiq.gateway.store.series import SeriesStore
    from civiq.gateway.tickets import TicketBook

# web metric name -> (store metric, key): the center-level series
_METRICS = {"waiting": ("waiting_total", ""), "longest_wait_s": ("longest_wait_s", ""),
            "counters_open": ("counters_open", ""), "served": ("served", None), "eta_s": ("eta_s", None)}
# "issued" has no minute series: it is counted from the stored ticket.issued events (see history())


def _dur(seconds: float, lang: str) -> str:
    """``45 giây`` / ``12 phút`` (vi), ``45 s`` / ``12 min`` (en): waits under a minute are not "0 minutes"."""
    if seconds < 59.5:
        return f"{seconds:.0f} {'giây' if lang == 'vi' else 's'}"
    return f"{seconds / 60:.0f} {'phút' if lang == 'vi' else 'min'}"


def advice_json(center: str, advice: Advice, current: dict[str, list[str]]) -> JSON:
    """The advice as the center page shows it; ``current``: each counter's services now."""
    changes = []
    if advice.policy is not None:
        for cid, prof in advice.policy.counters.items():
            changes.append({"counter": cid, "before": current.get(cid, []), "after": list(prof.services),
                            "rules": [{"service": r.service, "over_minutes": r.over_minutes}
                                      for r in prof.rules]})
    said = {a.reason for a in advice.actions}  # the staff actions have a list of their own
    reasons_vi = " ".join(r.vi for r in advice.reasons if r not in said)
    reasons_en = " ".join(r.en for r in advice.reasons if r not in said)
    before_s, after_s = advice.mean_wait_s_current, advice.mean_wait_s_recommended
    out: JSON = {
        "id": f"{center}-{int(advice.at.timestamp())}",
        "summary": ("Đề xuất phân công lại quầy / Reassign counters" if advice.change
                    else "Giữ phân công hiện tại / Keep the current assignment"),
        "summary_vi": "Đề xuất phân công lại quầy" if advice.change else "Giữ phân công hiện tại",
        "summary_en": "Reassign counters" if advice.change else "Keep the current assignment",
        "reason": reasons_vi + (" / " + reasons_en if reasons_en else ""),
        "reason_vi": reasons_vi, "reason_en": reasons_en,
        "change": advice.change,
        "changes": changes,
        # the page labels these "longest wait": the advisor's 95th-percentile wait of the worst service
        "expected": {"longest_wait_before_s": round(max((p.p95_wait_s for p in advice.current.values()),
                                                        default=0.0), 1),
                     "longest_wait_after_s": round(max((p.p95_wait_s for p in advice.recommended.values()),
                                                       default=0.0), 1),
                     "mean_wait_before_s": round(before_s, 1), "mean_wait_after_s": round(after_s, 1),
                     "text": f"chờ trung bình {_dur(before_s, 'vi')} → {_dur(after_s, 'vi')} / "
                             f"mean wait {_dur(before_s, 'en')} → {_dur(after_s, 'en')}"},
        "services": {s: {"arrivals_per_h": round(p.arrivals_per_h, 1), "mean_wait_s": round(p.mean_wait_s, 1),
                         "utilization": round(p.utilization, 2)} for s, p in advice.current.items()},
    }
    # staff actions (open a counter, move a skilled clerk, extend hours): the page shows its language's text
    out["actions"] = [{"kind": a.kind, "counter": a.counter, "service": a.service, "services": list(a.services),
                       "minutes": a.minutes, "p95_before_s": a.p95_wait_s_before, "p95_after_s": a.p95_wait_s_after,
                       "text_vi": a.reason.vi, "text_en": a.reason.en} for a in advice.actions]
    if advice.open_counter is not None:
        oc = advice.open_counter
        out["open_counter"] = {"counter": oc.counter, "services": list(oc.profile.services),
                               "mean_wait_s_before": round(oc.mean_wait_s_before, 1),
                               "mean_wait_s_after": round(oc.mean_wait_s_after, 1)}
    return out


class GatewayAdapter(MemoryView):
    """The view over explicit collaborators (no gateway object): the live ``state``, the ``store``, the alert
    engine, the ticket book, ``send_command(center, node, name, cmd)`` (the ingest's MQTT client) and
    ``push_policy(center, policy) -> nodes``."""

    def __init__(self, state: LiveState, clock: Clock, *, store: SeriesStore, alerts: AlertEngine,
                 tickets: TicketBook, send_command: Callable[..., Any],
                 push_policy: Callable[[str, Any], list[str]]) -> None:
        super().__init__(state, clock)
        self._store = store
        self._alerts = alerts
        self._tickets = tickets
        self._send_command = send_command
        self._push_policy = push_policy
        self.report_store = store
        self._advice_objs: dict[str, Any] = {}
        self._alock = threading.Lock()

    def center(self, center: str) -> JSON | None:
        """The live center; service names come from the edge's birth (the id when it named none)."""
        c = self.state.center(center, self.clock.now())
        if c is not None:
            names = self.service_names.get(center, {})  # an operator's override, if any
            for sid, s in c["services"].items():
                s["name"] = names.get(sid) or s.get("name") or sid
        return c

    def set_advice(self, center: str, advice: Advice) -> None:
        c = self.state.center(center) or {}
        current = {cid: list(v.get("services", [])) for cid, v in (c.get("counters") or {}).items()}
        with self._alock:
            self._advice_objs[center] = advice
        self.put_advice(center, advice_json(center, advice, current))

    # ------------------------------------------------------------------------------------ alerts
    def alerts(self, center: str | None) -> list[JSON]:
        """Active alerts, newest first; ``title_vi`` / ``title_en``: what it is, for a page in one language (the
        ``summary`` says it in both, with where)."""
        rows = [dict(a.model_dump(mode="json"), title_vi=KINDS[a.kind][1], title_en=KINDS[a.kind][2])
                for a in self._alerts.active() if center is None or a.center == center]
        return sorted(rows, key=lambda a: a.get("since") or "", reverse=True)

    def silences(self, center: str | None) -> list[JSON]:
        return [s.model_dump(mode="json") for s in self._alerts.silences() if center is None or s.center == center]

    def acknowledge(self, key: str, user: str) -> bool:
        try:
            self._alerts.acknowledge(key, user)
        except AlertError:
            return False
        self.bump()
        return True

    def silence(self, center: str, node: str | None, until: datetime, reason: str, user: str) -> JSON:
        try:
            s = self._alerts.silence(center, node, until=until, reason=reason, user=user)
        except AlertError as e:
            raise ViewError(str(e), 400) from None
        self.bump()
        return s.model_dump(mode="json")

    # ------------------------------------------------------------------------------------ history
    def history(self, center: str, metric: str, since: datetime, until: datetime) -> list[tuple[str, float]]:
        if metric not in HISTORY_METRICS:
            raise ViewError(f"unknown metric {metric!r}", 404)
        if metric == "issued":
            return self._issued(center, since, until)
        store_metric, key = _METRICS[metric]
        series = self._store.series(center, store_metric, key=key, since=since, until=until)
        if key is None:  # per service/counter: sum them per minute
            acc: dict[datetime, float] = {}
            for pts in series.values():
                for t, v in pts:
                    acc[t] = acc.get(t, 0.0) + v
            pts = sorted(acc.items())
        else:
            pts = series.get(key, [])
        return [(t.isoformat(), v) for t, v in pts]

    def _issued(self, center: str, since: datetime, until: datetime) -> list[tuple[str, float]]:
        """Tickets issued so far that local day, per minute with issues (like ``served``: a daily total)."""
        store = self._store
        start = store.day_bounds(local_day(since, store.tz))[0]
        per_minute: dict[datetime, float] = {}
        day, count = None, 0
        for e in store.events_between(center, start, until, types=["ticket.issued"]):
            d = local_day(e.ts, store.tz)
            day, count = d, (count + 1 if d == day else 1)
            minute = e.ts.replace(second=0, microsecond=0)
            if minute >= since.replace(second=0, microsecond=0):
                per_minute[minute] = float(count)
        return [(t.isoformat(), v) for t, v in sorted(per_minute.items())]

    def audit(self, center: str, day: str) -> list[JSON]:
        """From the stored events (every node, the whole day), not only the recent list."""
        from civiq.contract import Event
        from civiq.gateway.state import is_audited, recent_item

        store = self._store
        start, end = store.day_bounds(day)
        out = []
        for e in store.events_between(center, start, end, types=["ticket.called", "ticket.held", "ticket.issued"]):
            item = recent_item(e.node, Event(seq=e.seq, ts=e.ts, type=e.type, data=e.data))
            if item is not None and is_audited(item):
                out.append(item)
        return out

    def daily(self, center: str, days: int) -> list[JSON]:
        now = self.clock.now()
        out = []
        for d in range(days - 1, -1, -1):
            day = local_day(now - timedelta(days=d))
            s = self._store.daily_summary(center, day)
            out.append({"day": day, "issued": s.get("issued", 0), "served": s.get("served", 0),
                        "avg_wait_s": s.get("avg_wait_s"), "max_wait_s": s.get("max_wait_s"),
                        "priority_issued": s.get("priority_issued", 0),
                        "avg_wait_priority_s": s.get("avg_wait_priority_s"),
                        "out_of_order": s.get("out_of_order", 0), "held": s.get("held", 0)})
        return out

    # ------------------------------------------------------------------------------------ actions
    def apply_advice(self, center: str, advice_id: str, user: str) -> JSON:
        adv = self.advices.get(center)
        with self._alock:
            obj = self._advice_objs.get(center)
        if adv is None or adv.get("id") != advice_id or obj is None:
            raise ViewError("this advice is no longer current; reload the page", 409)
        if obj.policy is None:
            raise ViewError("this advice keeps the current assignment: nothing to apply", 409)
        nodes = self._push_policy(center, obj.policy)
        if not nodes:
            raise ViewError(f"center {center} has no node to send the policy to", 503)
        self.applied.append((center, advice_id, user))
        self.bump()
        return {"policy_version": obj.policy.version}

    def send_counter_command(self, center: str, cmd: CounterCmd, user: str) -> JSON:
        c = self.state.center(center)
        if c is None or cmd.counter not in c["counters"]:
            raise ViewError(f"center {center} has no counter {cmd.counter!r}", 404)
        node = c["counters"][cmd.counter].get("node")
        if not node:
            raise ViewError(f"no node owns counter {cmd.counter}", 503)
        self._send_command(center, node, "counter", cmd)
        return {"id": cmd.id, "node": node}

    def public_ticket(self, center: str, day: str, label: str) -> JSON | None:
        t = self._tickets.get(center, day, label)
        if t is None:
            return None
        c = self.state.center(center) or {}
        svc = (c.get("services") or {}).get(t["service"] or "", {})
        ahead = self._tickets.ahead(center, day, label)
        if ahead is None and t["state"] == "waiting":
            ahead = svc.get("waiting")
        eta = ticket_eta_s(svc.get("eta_s"), ahead, svc.get("waiting")) if t["state"] == "waiting" else None
        counter = t["counter"]
        return {"ticket": t["ticket"], "service": t["service"], "service_name": svc.get("name"),
                "center_name": c.get("name"), "state": t["state"], "ahead": ahead,
                "eta_s": eta, "counter": counter,
                "counter_name": self.state.counter_name(center, counter) if counter else None}


def ticket_eta_s(line_eta_s: float | None, ahead: int | None, waiting: int | None) -> float | None:
    """One waiting ticket's ETA from its line's.

    The edge's ``eta_s`` for a service is the wait of someone joining the line now, with all ``waiting``
    people ahead: ``(waiting + r) / rate``, ``r`` being half a service when every counter is busy. A ticket
    with ``ahead`` people before it waits ``(ahead + r) / rate``; taking ``r = 0.5`` (the cautious case):

    >>> ticket_eta_s(1300.0, 2, 6)     # third in a line of six
    500.0
    >>> ticket_eta_s(None, 2, 6) is None   # unknown stays unknown
    True
    """
    if line_eta_s is None or ahead is None:
        return None
    if not waiting or ahead >= waiting:
        return line_eta_s
    return round(line_eta_s * (ahead + 0.5) / (waiting + 0.5), 1)

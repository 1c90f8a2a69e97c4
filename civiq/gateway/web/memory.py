"""An in-memory :class:`~civiq.gateway.web.view.GatewayView` over a live state.

The live parts (overview, center, devices) come from a :class:`~civiq.gateway.state.LiveState` fed with real
contract models; alerts, history, advice, public tickets and commands are held in plain lists and dicts that
tests (and ``civiq demo``) fill by hand. The real gateway adapter can subclass it and override the parts that
come from the series store, the alert engine and the advisor.

>>> from datetime import UTC, datetime
>>> from civiq.contract import QueueSnapshot, ServiceQueue
>>> v = MemoryView()
>>> t = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
>>> v.state.apply_queue("hcm-q1", "pi-1", QueueSnapshot(ts=t, day="2026-01-05",
...     services={"A": ServiceQueue(waiting=3)}), t)
True
>>> v.overview()[0]["waiting"]
3
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime
from typing import Any

from civiq.clock import Clock, SystemClock, local_day
from civiq.contract import CounterCmd
from civiq.gateway.state import LiveState, is_audited
from civiq.gateway.web.view import JSON, ViewError


class MemoryView:
    def __init__(self, state: LiveState | None = None, clock: Clock | None = None) -> None:
        self.state = state or LiveState()
        self.clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._version = 0
        self.service_names: dict[str, dict[str, str]] = {}  # center -> service id -> display name
        self.active_alerts: dict[str, JSON] = {}
        self.silence_list: list[JSON] = []
        self.series: dict[tuple[str, str], list[tuple[str, float]]] = {}
        self.days: dict[str, list[JSON]] = {}
        self.advices: dict[str, JSON] = {}
        self.tickets: dict[tuple[str, str, str], JSON] = {}
        self.commands: list[tuple[str, CounterCmd, str]] = []
        self.applied: list[tuple[str, str, str]] = []
        self.policy_version = 0
        self.report_store: Any = None  # a SeriesStore holding the event log reports are computed from

    # ------------------------------------------------------------------------------------ test helpers
    def bump(self) -> None:
        """Tell watchers that something held here (not in the live state) changed."""
        with self._lock:
            self._version += 1

    def add_alert(self, alert: JSON) -> None:
        self.active_alerts[alert["key"]] = {"acked_by": None, "acked_at": None, "device": None, **alert}
        self.bump()

    def put_ticket(self, center: str, day: str, label: str, **fields: Any) -> None:
        self.tickets[(center, day, label)] = {"ticket": label, **fields}
        self.bump()

    def put_advice(self, center: str, advice: JSON) -> None:
        self.advices[center] = advice
        self.bump()

    # ------------------------------------------------------------------------------------ GatewayView
    def version(self) -> int:
        with self._lock:
            return self.state.version + self._version

    def overview(self) -> list[JSON]:
        return self.state.overview(self.clock.now())

    def center(self, center: str) -> JSON | None:
        c = self.state.center(center, self.clock.now())
        if c is not None:
            names = self.service_names.get(center, {})
            for sid, s in c["services"].items():
                s["name"] = names.get(sid, sid)
        return c

    def devices(self, center: str | None) -> list[JSON]:
        out = []
        for c, n in self.state.nodes():
            if center is None or c == center:
                node = self.state.node(c, n)
                if node is not None:
                    out.append(node)
        return out

    def alerts(self, center: str | None) -> list[JSON]:
        rows = [a for a in self.active_alerts.values() if center is None or a["center"] == center]
        return sorted(rows, key=lambda a: a.get("since") or "", reverse=True)

    def silences(self, center: str | None) -> list[JSON]:
        now = self.clock.now().isoformat()
        return [s for s in self.silence_list if s["until"] > now and (center is None or s["center"] == center)]

    def history(self, center: str, metric: str, since: datetime, until: datetime) -> list[tuple[str, float]]:
        a, b = since.isoformat(), until.isoformat()
        return [(t, v) for t, v in self.series.get((center, metric), []) if a <= t <= b]

    def daily(self, center: str, days: int) -> list[JSON]:
        return self.days.get(center, [])[-days:]

    def command_result(self, center: str, cmd_id: str) -> JSON | None:
        return self.state.cmd_result(center, cmd_id)

    def audit(self, center: str, day: str) -> list[JSON]:
        rows = [x for x in self.state.recent(center) if is_audited(x)
                and local_day(datetime.fromisoformat(x["ts"]), self.state.tz) == day]
        return sorted(rows, key=lambda x: (x["ts"], x["node"], x["seq"]))

    def advice(self, center: str) -> JSON | None:
        return self.advices.get(center)

    def apply_advice(self, center: str, advice_id: str, user: str) -> JSON:
        adv = self.advices.get(center)
        if adv is None or adv.get("id") != advice_id:
            raise ViewError("this advice is no longer current; reload the page", 409)
        self.policy_version += 1
        self.applied.append((center, advice_id, user))
        self.bump()
        return {"policy_version": self.policy_version}

    def public_ticket(self, center: str, day: str, label: str) -> JSON | None:
        return self.tickets.get((center, day, label))

    def names(self, center: str) -> JSON:
        """Display names for reports: the births' (LiveState.names), an operator's service names first."""
        n = self.state.names(center)
        n["services"].update(self.service_names.get(center, {}))
        return n

    def report(self, center: str, period: str, day: str, clerk: str | None = None, lang: str = "vi") -> JSON:
        from civiq.gateway.reports import PeriodError, compute, period_of

        try:
            p = period_of(period, day)
        except PeriodError as e:
            raise ViewError(str(e), 400) from None
        store = self.report_store
        tz = store.tz if store is not None else self.state.tz
        events = []
        if store is not None:
            from civiq.gateway.reports.compute import TYPES

            since, until = p.bounds(tz)
            events = store.events_between(center, since, until, types=TYPES)
        return compute(events, p, self.names(center), center=center, tz=tz, clerk=clerk, lang=lang)

    def ratings(self, center: str, since: datetime, until: datetime, clerk: str | None = None) -> list[JSON]:
        from civiq.gateway.reports import ratings_from_store

        if self.report_store is None:
            return []
        return ratings_from_store(self.report_store, center, since, until, self.names(center), clerk=clerk)

    def send_counter_command(self, center: str, cmd: CounterCmd, user: str) -> JSON:
        c = self.state.center(center)
        if c is None or cmd.counter not in c["counters"]:
            raise ViewError(f"center {center} has no counter {cmd.counter!r}", 404)
        self.commands.append((center, cmd, user))
        return {"id": cmd.id, "node": c["counters"][cmd.counter]["node"]}

    def acknowledge(self, key: str, user: str) -> bool:
        a = self.active_alerts.get(key)
        if a is None:
            return False
        a["acked_by"], a["acked_at"] = user, self.clock.now().isoformat()
        self.bump()
        return True

    def silence(self, center: str, node: str | None, until: datetime, reason: str, user: str) -> JSON:
        s = {"id": uuid.uuid4().hex[:12], "center": center, "node": node, "until": until.isoformat(),
             "reason": reason, "user": user}
        self.silence_list.append(s)
        self.bump()
        return s


def sample_view(clock: Clock | None = None) -> MemoryView:
    """A view with two believable centers (one healthy, one with a failing printer and an offline node),
    history, daily totals, advice, an alert and a public ticket. For demos, screenshots and tests."""
    from datetime import timedelta

    from civiq.clock import local_day
    from civiq.contract import (
        CounterState,
        DeviceHealth,
        DeviceInfo,
        Health,
        HostHealth,
        OutboxHealth,
        QueueSnapshot,
        ServiceQueue,
        Status,
    )

    v = MemoryView(clock=clock)
    now = v.clock.now()
    day = local_day(now)
    st = v.state
    st.set_center_name("hcm-q1", "Phường Bến Thành")
    st.set_center_name("hcm-q3", "Phường Võ Thị Sáu")
    v.service_names["hcm-q1"] = {"A": "Đất đai", "B": "Hộ tịch", "C": "Kinh doanh", "D": "BHXH"}
    v.service_names["hcm-q3"] = {"A": "Đất đai", "B": "Hộ tịch"}
    devices = [DeviceInfo(id="printer-1", kind="printer"), DeviceInfo(id="display-1", kind="display", counter="1"),
               DeviceInfo(id="keypad-1", kind="keypad", counter="1")]
    for center, node in (("hcm-q1", "pi-1"), ("hcm-q3", "pi-1"), ("hcm-q3", "pi-2")):
        st.apply_status(center, node, Status(online=True, bdseq=1, ts=now, version="0.1.0", devices=devices,
                                             counters={"1": "Quầy 1 - Đất đai"}), now)
    st.apply_queue("hcm-q1", "pi-1", QueueSnapshot(ts=now, day=day, services={
        "A": ServiceQueue(waiting=12, oldest_wait_s=1740, eta_s=2100, served_today=41, issued_today=53),
        "B": ServiceQueue(waiting=4, oldest_wait_s=420, eta_s=480, served_today=66, issued_today=70),
        "C": ServiceQueue(waiting=0, served_today=18, issued_today=18),
        "D": ServiceQueue(waiting=7, oldest_wait_s=960, eta_s=None, served_today=22, issued_today=29),
    }, counters={
        "1": CounterState(state="open", ticket="A042", services=["A"], served_today=21),
        "2": CounterState(state="open", ticket="A043", services=["A", "C"], served_today=20),
        "3": CounterState(state="open", ticket="B067", services=["B"], served_today=38),
        "4": CounterState(state="break", ticket=None, services=["B", "D"], served_today=28),
        "5": CounterState(state="closed", ticket=None, services=["D"], served_today=0),
    }), now)
    st.apply_queue("hcm-q3", "pi-1", QueueSnapshot(ts=now, day=day, services={
        "A": ServiceQueue(waiting=3, oldest_wait_s=300, eta_s=600, served_today=25, issued_today=28),
        "B": ServiceQueue(waiting=1, oldest_wait_s=60, eta_s=120, served_today=31, issued_today=32),
    }, counters={
        "1": CounterState(state="open", ticket="A026", services=["A", "B"], served_today=30),
        "2": CounterState(state="open", ticket="B032", services=["B", "A"], served_today=26),
    }), now)
    host = HostHealth(cpu_temp_c=51.2, load1=0.32, mem_used_pct=41, disk_used_pct=37, uptime_s=86400)
    st.apply_health("hcm-q1", "pi-1", Health(ts=now, host=host, devices=[
        DeviceHealth(id="printer-1", kind="printer", state="ok"),
        DeviceHealth(id="display-1", kind="display", state="ok"),
        DeviceHealth(id="keypad-1", kind="keypad", state="ok")]), now)
    st.apply_health("hcm-q3", "pi-1", Health(ts=now, host=host, outbox=OutboxHealth(pending=3), devices=[
        DeviceHealth(id="printer-1", kind="printer", state="failed", detail="printer is out of paper"),
        DeviceHealth(id="display-1", kind="display", state="degraded", detail="display display-1 (Modbus address 1 on /dev/civiq-rs485) reports failed LEDs (status 0x0002)"),
        DeviceHealth(id="keypad-1", kind="keypad", state="ok")]), now)
    st.apply_status("hcm-q3", "pi-2", Status(online=False, bdseq=1), now)
    v.add_alert({"key": "hcm-q3/pi-1/printer-1/printer_paper_out", "center": "hcm-q3", "node": "pi-1",
                 "device": "printer-1", "kind": "printer_paper_out", "severity": "critical",
                 "summary": "Máy in hết giấy / Printer out of paper: hcm-q3/pi-1/printer-1",
                 "title_vi": "Máy in hết giấy", "title_en": "Printer out of paper",
                 "since": (now - timedelta(minutes=12)).isoformat()})
    v.add_alert({"key": "hcm-q3/pi-2/node_offline", "center": "hcm-q3", "node": "pi-2", "kind": "node_offline",
                 "severity": "critical", "summary": "Mất kết nối máy trạm / Edge node offline: hcm-q3/pi-2",
                 "title_vi": "Mất kết nối máy trạm", "title_en": "Edge node offline",
                 "since": (now - timedelta(minutes=3)).isoformat()})
    for center, base in (("hcm-q1", 14.0), ("hcm-q3", 4.0)):
        pts = []
        for i in range(0, 90, 3):  # the last 1.5 h, every 3 minutes
            t = now - timedelta(minutes=90 - i)
            pts.append((t.isoformat(), float(round(base * (0.6 + 0.5 * ((i * 7) % 13) / 13 + i / 180)))))
        v.series[(center, "waiting")] = pts
        v.days[center] = [
            {"day": local_day(now - timedelta(days=k)), "issued": int(base * 14 + k * 9) + 40,
             "served": int(base * 13 + k * 9) + 36, "avg_wait_s": 600 + 30 * k, "max_wait_s": 2400}
            for k in range(6, -1, -1)]
    v.put_advice("hcm-q1", {
        "id": "adv-1", "summary": "Quầy 3 nhận thêm hồ sơ Đất đai",
        "reason": "Đất đai chờ 29 phút; Hộ tịch chỉ chờ 7 phút.",
        "changes": [{"counter": "3", "before": ["B"], "after": ["A", "B"]}],
        "expected": {"longest_wait_before_s": 1740, "longest_wait_after_s": 1080,
                     "mean_wait_before_s": 900, "mean_wait_after_s": 45,
                     "text": "Thời gian chờ lâu nhất giảm khoảng 11 phút."},
        "actions": [{"kind": "open", "counter": "5", "service": None, "services": ["A"], "minutes": None,
                     "p95_before_s": 2040, "p95_after_s": 1080,
                     "text_vi": "Mở quầy 5 (dịch vụ A): 95% người chờ dưới 34 → 18 phút (giảm 16 phút).",
                     "text_en": "Open counter 5 (A): p95 wait 34 → 18 min (16 min less)."}]})
    v.put_ticket("hcm-q1", day, "A051", service="A", service_name="Đất đai", center_name="Phường Bến Thành", state="waiting", ahead=8,
                 eta_s=1500, counter=None)
    return v

"""A believable event log of one center, for tests, the bench and screenshots of the report page.

:func:`sample_events` makes, for each local day, tickets on two nodes (pi-1 rates on a 5-level pad, pi-2 on a
4-level one) going through every path the reports count: issued (some with a priority class), called (with
``wait_s``), no-show, transferred and called again, held and called back (``from_hold``, ``wait_s`` null),
completed (``service_s``, sometimes a ``dossier``), rated (with reasons for low scores), counter work by a
signed-in clerk or by nobody (counter 4), and a few broken or repeated ratings that a report must ignore.
Deterministic for a seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from civiq.contract import Event, EventType, ServiceInfo, Status

SERVICES = {"A": "Đất đai", "B": "Hộ tịch", "C": "Kinh doanh"}
COUNTERS = {"1": "Quầy 1 - Đất đai", "2": "Quầy 2 - Hộ tịch", "3": "Quầy 3 - Kinh doanh", "4": "Quầy 4 - Tổng hợp"}
CLERKS = {"c01": "Nguyễn Thị Lan", "c02": "Trần Văn Minh", "c03": "Lê Thu Hà"}
COUNTER_CLERK = {"1": "c01", "2": "c02", "3": "c03", "4": None}  # nobody signs in at counter 4
COUNTER_SERVICE = {"1": "A", "2": "B", "3": "C", "4": "B"}
REASONS = {"slow": "Chờ lâu", "attitude": "Thái độ chưa tốt", "unclear": "Hướng dẫn chưa rõ"}
NODE_SCALE = {"pi-1": 5, "pi-2": 4}
NODE_COUNTERS = {"pi-1": ("1", "2"), "pi-2": ("3", "4")}


@dataclass
class _Node:
    events: list[tuple[datetime, EventType, dict[str, Any]]] = field(default_factory=list)
    numbers: dict[str, int] = field(default_factory=dict)


def birth(center: str = "hcm-q1", name: str = "Phường Bến Thành", node: str = "pi-1") -> Status:
    """The birth a center's edge would send: names of services, counters, clerks and rating reasons."""
    return Status(online=True, bdseq=1, center_name=name,
                  services={k: ServiceInfo(name_vi=v) for k, v in SERVICES.items()}, counters=dict(COUNTERS),
                  clerks=dict(CLERKS), rating_scale=NODE_SCALE.get(node, 5),
                  rating_reasons={k: ServiceInfo(name_vi=v) for k, v in REASONS.items()})


def names(center_name: str = "Phường Bến Thành") -> dict[str, Any]:
    """The names :func:`birth` gives, as :meth:`LiveState.names` returns them."""
    return {"center_name": center_name, "services": dict(SERVICES), "counters": dict(COUNTERS),
            "clerks": dict(CLERKS), "reasons": dict(REASONS)}


def sample_events(days: list[date], per_day: int = 120, seed: int = 7,
                  tz: str = "Asia/Ho_Chi_Minh") -> list[tuple[str, Event]]:
    """``(node, Event)`` pairs, each node's seqs gap-free from 1 in time order."""
    rng = random.Random(seed)
    z = ZoneInfo(tz)
    nodes = {n: _Node() for n in NODE_SCALE}
    for d in days:
        day = d.isoformat()
        for nd in nodes.values():
            nd.numbers.clear()
        opening = datetime.combine(d, time(7, 30), z)
        for _ in range(per_day):
            counter = rng.choice(list(COUNTER_CLERK))
            node = next(n for n, cs in NODE_COUNTERS.items() if counter in cs)
            nd = nodes[node]
            service = COUNTER_SERVICE[counter]
            num = nd.numbers[service] = nd.numbers.get(service, 0) + 1
            label = f"{service}{num:03d}"
            t0 = opening + timedelta(seconds=rng.randint(0, 8 * 3600))
            prio = "elderly" if rng.random() < 0.1 else None
            base = {"ticket": label, "service": service, "day": day}
            issued = {**base, "number": num, "ahead": rng.randint(0, 9), "eta_s": 300.0}
            if prio:
                issued.update(priority=prio, by="kiosk")
            nd.events.append((t0, EventType.ticket_issued, issued))
            who = COUNTER_CLERK[counter]
            work = {"clerk": who} if who else {}
            wait = float(rng.choice([rng.randint(20, 600), rng.randint(600, 1500), rng.randint(1500, 2900)]))
            tc = t0 + timedelta(seconds=wait)
            called = {**base, "counter": counter, "wait_s": wait, "recalls": 0, **work}
            if prio:
                called["priority"] = prio
            nd.events.append((tc, EventType.ticket_called, called))
            r = rng.random()
            svc_s = float(rng.randint(60, 1200))
            if r < 0.08:
                nd.events.append((tc + timedelta(seconds=60), EventType.ticket_no_show,
                                  {**base, "counter": counter, "service_s": 60.0, "recalls": 1, "reason": "staff",
                                   **work}))
                continue
            tend = tc + timedelta(seconds=svc_s)
            if r < 0.13:  # sent to another counter's line, called there
                other = rng.choice([c for c in NODE_COUNTERS[node] if c != counter])
                to = COUNTER_SERVICE[other]
                nd.events.append((tend, EventType.ticket_transferred,
                                  {**base, "counter": counter, "service_s": svc_s, "to_service": to,
                                   "to_counter": other, **work}))
                counter, service, who = other, to, COUNTER_CLERK[other]
                work = {"clerk": who} if who else {}
                base = {**base, "service": service}
                w2 = float(rng.randint(30, 900))
                tc = tend + timedelta(seconds=w2)
                nd.events.append((tc, EventType.ticket_called,
                                  {**base, "counter": counter, "wait_s": w2, "recalls": 0, **work}))
                svc_s = float(rng.randint(60, 900))
                tend = tc + timedelta(seconds=svc_s)
            elif r < 0.18:  # held for a missing paper, called back later
                held_s = float(rng.randint(30, 200))
                nd.events.append((tc + timedelta(seconds=held_s), EventType.ticket_held,
                                  {**base, "counter": counter, "service_s": held_s, "by": "keypad:k1", **work}))
                tc = tc + timedelta(seconds=held_s + rng.randint(300, 1200))
                nd.events.append((tc, EventType.ticket_called,
                                  {**base, "counter": counter, "wait_s": None, "recalls": 0, "from_hold": True,
                                   "held_s": 500.0, "held_at": counter, "by": "keypad:k1", **work}))
                svc_s = float(rng.randint(60, 600))
                tend = tc + timedelta(seconds=svc_s)
            done = {**base, "counter": counter, "service_s": svc_s, **work}
            if rng.random() < 0.4:
                done["dossier"] = f"H29.22-{d:%y%m%d}-{rng.randint(1, 9999):04d}"
            nd.events.append((tend, EventType.ticket_completed, done))
            if rng.random() < 0.7:
                scale = NODE_SCALE[node]
                score = rng.choice([scale, scale, scale, scale - 1, scale - 1, 2, 1] if rng.random() < 0.9 else [3])
                reasons = rng.sample(sorted(REASONS), rng.randint(1, 2)) if score <= scale - 2 else []
                rated = {**base, "counter": counter, "score": score, "scale": scale, "reasons": reasons,
                         "clerk": who, "by": "pad:r1"}
                if "dossier" in done and rng.random() < 0.5:
                    rated["dossier"] = done["dossier"]
                tr = tend + timedelta(seconds=rng.randint(3, 25))
                nd.events.append((tr, EventType.ticket_rated, rated))
                if rng.random() < 0.02:  # a second rating of the same ticket: not counted
                    nd.events.append((tr + timedelta(seconds=2), EventType.ticket_rated, dict(rated, score=1)))
            if rng.random() < 0.01:  # a broken rating (score off the scale): not counted
                nd.events.append((tend + timedelta(seconds=30), EventType.ticket_rated,
                                  {**base, "counter": counter, "score": 9, "scale": 5, "reasons": [], "clerk": who}))
    out: list[tuple[str, Event]] = []
    for node, nd in nodes.items():
        nd.events.sort(key=lambda x: x[0])
        for i, (ts, et, data) in enumerate(nd.events, start=1):
            out.append((node, Event(seq=i, ts=ts.astimezone(ZoneInfo("UTC")), type=et, clock="synced", data=data)))
    return out

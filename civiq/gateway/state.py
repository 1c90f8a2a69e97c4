"""The gateway's live state: every center, node, device, service queue and counter, in memory.

:class:`LiveState` is a pure model (no I/O, no clock of its own: every ``apply_*`` gets ``now``). The ingest
feeds it validated contract models; the web layer, the alert engine and the balancer read it. Reads return
plain dicts (JSON-ready) built under a lock, so they can be served as they are.

Node status rules (docs/mqtt.md, "offline is detected, not guessed"):

* a birth (``Status(online=True, bdseq=B)``) makes the node online with birth ``bdseq`` B;
* a death (Last Will or clean stop, ``online=False``) with ``bdseq`` **lower** than the current birth's is a
  stale will from an earlier connection (it can arrive after the new birth) and is **ignored**;
* a node silent for longer than the heartbeat timeout becomes offline with reason ``heartbeat``; a node
  whose birth promised ``alive_s`` and has been silent for ``silence_timeout(alive_s)`` becomes offline with
  reason ``silent`` (:meth:`LiveState.mark_silent`, timed by the ingest in real time); in both cases any
  traffic from the node brings it back (a death needs a new birth instead);
* while the gateway itself has lost the broker (``mark_stale(True)``) every node shows ``unknown`` with
  ``stale: true``: we do not know, which is not the same as offline.

>>> from datetime import UTC, datetime
>>> from civiq.contract import Status
>>> s = LiveState()
>>> t = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
>>> _ = s.apply_status("hcm-q1", "pi-1", Status(online=True, bdseq=4), t)
>>> _ = s.apply_status("hcm-q1", "pi-1", Status(online=False, bdseq=3), t)   # stale will: ignored
>>> s.node("hcm-q1", "pi-1")["status"]
'online'

Change notifications: ``state.version`` grows on every change and ``subscribe(fn)`` calls
``fn(Change)`` after each one, in the thread that applied it (the ingest's writer thread): an asyncio
consumer should hop with ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from civiq.clock import DEFAULT_TZ, local_day
from civiq.contract import (
    CmdResult,
    DeviceState,
    Event,
    EventType,
    Health,
    QueueSnapshot,
    Status,
)
from civiq.listeners import subscribe

DEVICE_STATE_CODE = {"ok": 0, "degraded": 1, "failed": 2, "offline": 3}
FAILING = ("failed", "offline")
CMD_RESULTS_MAX = 200
RECENT_MAX = 40  # recent calls kept per center (the center page's list)
# the events in a center's recent list: calls, recalls and holds, and the issue of a priority ticket
RECENT_TYPES = (EventType.ticket_called, EventType.ticket_recalled, EventType.ticket_held, EventType.ticket_issued)
_RECENT_FLAGS = ("priority", "out_of_order", "from_hold", "by", "held_at", "clerk")
# events that say who works at a counter: a sign-in or sign-out, and every counter-work event (it has
# ``clerk`` while someone is signed in there, else no such key: docs/mqtt.md)
CLERK_EVENTS = frozenset({EventType.clerk_signed_in, EventType.clerk_signed_out, EventType.ticket_called,
                          EventType.ticket_recalled, EventType.ticket_held, EventType.ticket_no_show,
                          EventType.ticket_completed, EventType.ticket_transferred, EventType.counter_opened,
                          EventType.counter_closed, EventType.counter_break})


def is_audited(item: dict[str, Any]) -> bool:
    """An action out of the line's normal order: an out-of-order call, a hold, a call back, a priority issue."""
    return bool(item.get("out_of_order") or item.get("from_hold") or item.get("type") == "ticket.held"
                or (item.get("type") == "ticket.issued" and item.get("priority")))


def recent_item(node: str, event: Event) -> dict[str, Any] | None:
    """One line of the recent list (JSON-ready), or None for an event that has no place in it."""
    d = event.data
    if event.type not in RECENT_TYPES or (event.type == EventType.ticket_issued and not d.get("priority")):
        return None
    item: dict[str, Any] = {"ts": _iso(_utc(event.ts)), "node": node, "seq": event.seq, "type": str(event.type),
                            "ticket": str(d.get("ticket", ""))[:16], "service": d.get("service"),
                            "counter": d.get("counter")}
    for k in _RECENT_FLAGS:
        v = d.get(k)
        if v not in (None, False, ""):
            item[k] = v if isinstance(v, bool) else str(v)[:80]
    return item


@dataclass(frozen=True)
class Change:
    """What changed: ``kind`` is one of node, queue, health, event, devices, stale, cmd_result."""

    version: int
    kind: str
    center: str | None
    node: str | None


@dataclass
class DeviceRec:
    id: str
    kind: str
    model: str = ""
    state: str = "unknown"  # ok/degraded/failed/offline as reported; unknown before any health
    detail: str = ""
    since: datetime | None = None  # when the state last changed (edge time)
    counter: str | None = None  # the counter it serves (from the birth); None: the hall's


@dataclass
class NodeRec:
    center: str
    node: str
    online: bool | None = None  # None: never heard a status
    reason: str = ""  # birth, will, clean, heartbeat, silent, traffic
    bdseq: int | None = None
    version: str | None = None
    config_hash: str | None = None
    born_at: datetime | None = None
    changed_at: datetime | None = None
    last_seen: datetime | None = None  # gateway time of the last message from this node
    grace_from: datetime | None = None  # heartbeat counts from here if later (set when we reconnect)
    last_seq: int = 0
    host: dict[str, Any] = field(default_factory=dict)
    outbox_pending: int = 0
    outbox_oldest_s: float = 0.0
    health_ts: datetime | None = None
    queue: QueueSnapshot | None = None
    devices: dict[str, DeviceRec] = field(default_factory=dict)


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts else None


def _dt(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s) if s else None


class LiveState:
    """Thread-safe in-memory model of every center. All mutators return True when something changed."""

    def __init__(self, tz: str = DEFAULT_TZ) -> None:
        self.tz = tz
        self.version = 0
        self.stale = False
        self._nodes: dict[tuple[str, str], NodeRec] = {}
        self._names: dict[str, str] = {}
        self._service_names: dict[str, dict[str, str]] = {}  # center -> service id -> display name
        self._counter_names: dict[str, dict[str, str]] = {}  # center -> counter id -> display name
        self._recent: dict[str, list[dict[str, Any]]] = {}  # center -> recent calls, newest first
        self._priority_names: dict[str, dict[str, dict[str, str]]] = {}  # center -> class id -> name_vi/name_en
        self._clerk_names: dict[str, dict[str, str]] = {}  # center -> clerk id -> name (from the birth)
        # center -> counter -> every service its staff can serve / its configured profile (the advisor's inputs)
        self._skills: dict[str, dict[str, list[str]]] = {}
        self._home: dict[str, dict[str, dict[str, Any]]] = {}
        # center -> counter -> {"clerk": id or None, "ts": iso, "seq": n}: who works there, by the latest event
        self._clerk_at: dict[str, dict[str, dict[str, Any]]] = {}
        self._reason_names: dict[str, dict[str, str]] = {}  # center -> rating reason id -> name_vi
        self._cmd_results: dict[str, dict[str, Any]] = {}  # command id -> the edge's answer (insertion order)
        self._lock = threading.RLock()
        self._listeners: list[Callable[[Change], None]] = []

    # ------------------------------------------------------------------------------------- notifications
    def subscribe(self, fn: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``fn(change)`` after every change; returns a function that unsubscribes."""
        return subscribe(self._lock, self._listeners, fn)

    def _changed(self, kind: str, center: str | None, node: str | None) -> None:
        with self._lock:
            self.version += 1
            change = Change(self.version, kind, center, node)
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn(change)
            except Exception:  # noqa: BLE001 - a broken listener must not break ingest
                pass

    def _rec(self, center: str, node: str) -> NodeRec:
        rec = self._nodes.get((center, node))
        if rec is None:
            rec = self._nodes[(center, node)] = NodeRec(center, node)
        return rec

    def _seen(self, rec: NodeRec, now: datetime) -> bool:
        """Any traffic proves life: a node offline only for its silence comes back (returns True then)."""
        rec.last_seen = now
        if rec.online is False and rec.reason in ("heartbeat", "silent"):
            rec.online, rec.reason, rec.changed_at = True, "traffic", now
            return True
        return False

    def apply_alive(self, center: str, node: str, bdseq: int, now: datetime) -> bool:
        """An ``alive`` beat. Returns True when it brought the node back online (it had gone silent).

        A beat for a node with no birth yet, or from another connection than the current birth's (``bdseq``
        differs), is ignored: it never revives a node whose current connection died.
        """
        with self._lock:
            rec = self._nodes.get((center, node))
            if rec is None or (rec.bdseq is not None and rec.bdseq != bdseq):
                return False
            back = self._seen(rec, now)
        if back:
            self._changed("node", center, node)
        return back

    def mark_silent(self, center: str, node: str, now: datetime) -> bool:
        """Declare an online node offline for its silence (reason ``silent``). False if it was not online
        or the gateway is stale (the silence may be ours)."""
        with self._lock:
            rec = self._nodes.get((center, node))
            if self.stale or rec is None or not rec.online:
                return False
            rec.online, rec.reason, rec.changed_at = False, "silent", now
        self._changed("node", center, node)
        return True

    def set_center_name(self, center: str, name: str) -> None:
        """Display name of a center (from the province's registry, or the edge's birth)."""
        with self._lock:
            self._names[center] = name
        self._changed("center", center, None)

    def service_name(self, center: str, service: str) -> str | None:
        """The Vietnamese display name of a service, as the center's edge named it in its birth."""
        with self._lock:
            return self._service_names.get(center, {}).get(service)

    def counter_name(self, center: str, counter: str) -> str | None:
        """A counter's display name ("Quầy 3 - Đất đai"), as the center's edge named it in its birth."""
        with self._lock:
            return self._counter_names.get(center, {}).get(counter)

    def names(self, center: str) -> dict[str, Any]:
        """Every display name the center's births gave: ``center_name``, ``services``, ``counters``,
        ``clerks``, ``reasons`` (rating reasons), as plain dicts id -> Vietnamese name (for reports)."""
        with self._lock:
            return {"center_name": self._names.get(center),
                    "services": dict(self._service_names.get(center, {})),
                    "counters": dict(self._counter_names.get(center, {})),
                    "clerks": dict(self._clerk_names.get(center, {})),
                    "reasons": dict(self._reason_names.get(center, {}))}

    def balance_config(self, center: str) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
        """What the center's births said for load balancing: counter -> every service its staff can serve,
        and counter -> its configured work profile (``{"services": [...], "rules": [...]}``); empty for an edge
        that does not send them."""
        with self._lock:
            return ({k: list(v) for k, v in self._skills.get(center, {}).items()},
                    {k: dict(v) for k, v in self._home.get(center, {}).items()})

    # ------------------------------------------------------------------------------------- mutators
    def apply_status(self, center: str, node: str, status: Status, now: datetime) -> bool:
        """Birth or death. Returns False for a stale death (bdseq older than the current birth)."""
        with self._lock:
            rec = self._rec(center, node)
            if status.online:
                rec.online, rec.reason = True, "birth"
                rec.bdseq = status.bdseq
                rec.version, rec.config_hash = status.version, status.config_hash
                rec.born_at = _utc(status.ts) if status.ts else now
                rec.changed_at, rec.last_seen = now, now
                if status.center_name:  # the birth names the center and its services (contract v1)
                    self._names[center] = status.center_name
                if status.services:
                    names = self._service_names.setdefault(center, {})
                    names.update({sid: s.name_vi for sid, s in status.services.items() if s.name_vi})
                if status.counters:
                    self._counter_names.setdefault(center, {}).update(status.counters)
                if status.clerks:
                    self._clerk_names[center] = dict(status.clerks)
                if status.counter_skills:
                    self._skills.setdefault(center, {}).update(
                        {k: list(v) for k, v in status.counter_skills.items()})
                if status.counter_profiles:
                    self._home.setdefault(center, {}).update(
                        {k: p.model_dump(mode="json") for k, p in status.counter_profiles.items()})
                if status.rating_reasons:
                    self._reason_names.setdefault(center, {}).update(
                        {k: v.name_vi for k, v in status.rating_reasons.items() if v.name_vi})
                if status.priority_classes:
                    self._priority_names.setdefault(center, {}).update(
                        {k: {"name_vi": v.name_vi, "name_en": v.name_en} for k, v in status.priority_classes.items()})
                known = rec.devices
                rec.devices = {}
                for d in status.devices:
                    old = known.get(d.id)
                    rec.devices[d.id] = DeviceRec(
                        d.id, d.kind, d.model, old.state if old else "unknown",
                        old.detail if old else "", old.since if old else None, d.counter)
            else:
                if rec.bdseq is not None and status.bdseq < rec.bdseq:
                    return False  # a will from an older connection, arriving after the new birth
                rec.online = False
                rec.reason = "clean" if status.clean else "will"
                rec.bdseq = status.bdseq
                rec.changed_at = now
        self._changed("node", center, node)
        return True

    def apply_event(self, center: str, node: str, event: Event, now: datetime) -> bool:
        """A new (already de-duplicated) event: device faults, counter open/close, last seq."""
        kind = "event"
        with self._lock:
            rec = self._rec(center, node)
            self._seen(rec, now)
            rec.last_seq = max(rec.last_seq, event.seq)
            ts = _utc(event.ts)
            data = event.data
            if event.type in (EventType.device_fault, EventType.device_recovered):
                dev_id = str(data.get("device", ""))
                if dev_id:
                    dev = rec.devices.get(dev_id) or DeviceRec(dev_id, str(data.get("kind", "")))
                    # replayed events keep their original ts: never let an old one undo newer news
                    if dev.since is None or ts >= dev.since:
                        state = str(data.get("state") or ("ok" if event.type == EventType.device_recovered
                                                          else "failed"))
                        dev.state = state if state in DEVICE_STATE_CODE else "failed"
                        dev.detail = str(data.get("detail", ""))[:200]
                        dev.since = ts
                        rec.devices[dev_id] = dev
                        kind = "devices"
            if event.type in CLERK_EVENTS:
                self._apply_clerk(center, event, ts)
            item = recent_item(node, event)
            if item is not None:
                self._add_recent(center, item)
        self._changed(kind, center, node)
        return True

    def _apply_clerk(self, center: str, event: Event, ts: datetime) -> None:
        """Who works at the event's counter, if this event is newer than what we know (a replayed old event
        never undoes newer news): a sign-in names the clerk, a sign-out clears it, a work event says ``clerk``
        or (no key) nobody."""
        counter = event.data.get("counter")
        if not isinstance(counter, str) or not counter:
            return
        at = self._clerk_at.setdefault(center, {})
        known = at.get(counter)
        key = (_iso(ts) or "", event.seq)
        if known is not None and (known["ts"], known["seq"]) > key:
            return
        clerk = event.data.get("clerk")
        if event.type == EventType.clerk_signed_out:
            clerk = None
        at[counter] = {"clerk": str(clerk)[:64] if clerk else None, "ts": key[0], "seq": event.seq}

    def clerk_name(self, center: str, clerk: str) -> str | None:
        """A clerk's name ("Nguyễn Thị Lan"), as the center's edge named them in its birth."""
        with self._lock:
            return self._clerk_names.get(center, {}).get(clerk)

    def _add_recent(self, center: str, item: dict[str, Any]) -> None:
        """Keep the newest RECENT_MAX, newest first; a replayed event (same node and seq) is not added twice."""
        lst = self._recent.setdefault(center, [])
        if any(x["node"] == item["node"] and x["seq"] == item["seq"] for x in lst):
            return
        lst.append(item)
        lst.sort(key=lambda x: (x["ts"], x["node"], x["seq"]), reverse=True)
        del lst[RECENT_MAX:]

    def apply_cmd_result(self, center: str, node: str, result: CmdResult, now: datetime) -> None:
        """Keep the answer to a command (the last CMD_RESULTS_MAX), so the page that sent it can show
        whether the edge did it or why not (e.g. a recall inside the cooldown)."""
        with self._lock:
            self._cmd_results[result.id] = {
                "id": result.id, "center": center, "node": node, "cmd": result.cmd, "ok": result.ok,
                "error": result.error, "data": dict(result.data), "received": _iso(now)}
            while len(self._cmd_results) > CMD_RESULTS_MAX:
                self._cmd_results.pop(next(iter(self._cmd_results)))
        self._changed("cmd_result", center, node)

    def cmd_result(self, center: str, cmd_id: str) -> dict[str, Any] | None:
        """The edge's answer to command ``cmd_id`` of ``center``; None while none came (yet)."""
        with self._lock:
            r = self._cmd_results.get(cmd_id)
            return dict(r) if r is not None and r["center"] == center else None

    def recent(self, center: str) -> list[dict[str, Any]]:
        """The center's recent calls, recalls, holds and priority tickets, newest first (see :func:`recent_item`)."""
        with self._lock:
            return [dict(x) for x in self._recent.get(center, [])]

    def apply_queue(self, center: str, node: str, snap: QueueSnapshot, now: datetime) -> bool:
        """Replace the node's queue snapshot (an older snapshot than the one held is ignored)."""
        with self._lock:
            rec = self._rec(center, node)
            self._seen(rec, now)
            if rec.queue is not None and _utc(snap.ts) < _utc(rec.queue.ts):
                return False
            rec.queue = snap
            rec.last_seq = max(rec.last_seq, snap.last_seq)
        self._changed("queue", center, node)
        return True

    def apply_health(self, center: str, node: str, health: Health, now: datetime) -> bool:
        """Host numbers, outbox backlog and each device's state."""
        with self._lock:
            rec = self._rec(center, node)
            self._seen(rec, now)
            ts = _utc(health.ts)
            if rec.health_ts is not None and ts < rec.health_ts:
                return False
            rec.health_ts = ts
            rec.host = health.host.model_dump(mode="json")
            rec.outbox_pending, rec.outbox_oldest_s = health.outbox.pending, health.outbox.oldest_s
            for d in health.devices:
                dev = rec.devices.get(d.id) or DeviceRec(d.id, d.kind)
                state = str(d.state)
                if dev.state != state:
                    dev.since = ts
                dev.kind, dev.state, dev.detail = d.kind, state, d.detail
                rec.devices[d.id] = dev
        self._changed("health", center, node)
        return True

    def check_heartbeats(self, now: datetime, timeout_s: float) -> list[tuple[str, str]]:
        """Mark online nodes silent for more than ``timeout_s`` offline (reason ``heartbeat``).

        Returns the ``(center, node)`` pairs that just went offline. Does nothing while stale: the silence
        is ours, not theirs.
        """
        gone: list[tuple[str, str]] = []
        with self._lock:
            if self.stale:
                return gone
            for key, rec in self._nodes.items():
                if not rec.online or rec.last_seen is None:
                    continue
                ref = max(rec.last_seen, rec.grace_from) if rec.grace_from else rec.last_seen
                if (now - ref).total_seconds() > timeout_s:
                    rec.online, rec.reason, rec.changed_at = False, "heartbeat", now
                    gone.append(key)
        for center, node in gone:
            self._changed("node", center, node)
        return gone

    def mark_stale(self, stale: bool, now: datetime | None = None) -> None:
        """The gateway lost (True) or regained (False) its broker.

        On regaining it, every node's heartbeat restarts at ``now`` (a full timeout of grace), and the
        retained statuses the broker re-sends on subscribe correct the rest.
        """
        with self._lock:
            if self.stale == stale:
                return
            self.stale = stale
            if not stale and now is not None:
                for rec in self._nodes.values():
                    rec.grace_from = now
        self._changed("stale", None, None)

    def forget_node(self, center: str, node: str) -> bool:
        """Remove a decommissioned node."""
        with self._lock:
            gone = self._nodes.pop((center, node), None) is not None
        if gone:
            self._changed("node", center, node)
        return gone

    # ------------------------------------------------------------------------------------- read models
    def _status(self, rec: NodeRec) -> str:
        if self.stale or rec.online is None:
            return "unknown"
        return "online" if rec.online else "offline"

    def nodes(self) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(self._nodes)

    def centers(self) -> list[str]:
        with self._lock:
            return sorted({c for c, _ in self._nodes})

    def node(self, center: str, node: str) -> dict[str, Any] | None:
        """One node: status, reason, bdseq, versions, host health, outbox, devices. None if unknown."""
        with self._lock:
            rec = self._nodes.get((center, node))
            return None if rec is None else self._node_dict(rec)

    def _node_dict(self, rec: NodeRec) -> dict[str, Any]:
        return {
            "center": rec.center,
            "node": rec.node,
            "status": self._status(rec),
            "stale": self.stale,
            "reason": rec.reason,
            "bdseq": rec.bdseq,
            "version": rec.version,
            "config_hash": rec.config_hash,
            "born_at": _iso(rec.born_at),
            "changed_at": _iso(rec.changed_at),
            "last_seen": _iso(rec.last_seen),
            "last_seq": rec.last_seq,
            "host": dict(rec.host),
            "outbox": {"pending": rec.outbox_pending, "oldest_s": rec.outbox_oldest_s},
            "devices": [
                {"id": d.id, "kind": d.kind, "model": d.model, "state": d.state, "detail": d.detail,
                 "since": _iso(d.since), "state_code": DEVICE_STATE_CODE.get(d.state), "counter": d.counter,
                 "counter_name": (self._counter_names.get(rec.center, {}).get(d.counter) or d.counter)
                 if d.counter else None}
                for d in sorted(rec.devices.values(), key=lambda d: d.id)
            ],
        }

    def _center_nodes(self, center: str) -> list[NodeRec]:
        return [r for (c, _), r in sorted(self._nodes.items()) if c == center]

    def center(self, center: str, now: datetime | None = None) -> dict[str, Any] | None:
        """One center: ``services`` (waiting, oldest_wait_s, eta_s, served/issued today), ``counters``
        (state, ticket, services, served_today, ``clerk`` and ``clerk_name``: who is signed in), ``clerks``
        (clerk id -> name), ``nodes`` (as :meth:`node`), ``devices`` (flat, with node).
        ``now`` (optional) lets the summary drop a snapshot from a previous local day."""
        with self._lock:
            recs = self._center_nodes(center)
            if not recs:
                return None
            services: dict[str, dict[str, Any]] = {}
            counters: dict[str, dict[str, Any]] = {}
            snap_ts: datetime | None = None
            for rec in recs:
                q = rec.queue
                if q is None:
                    continue
                snap_ts = max(snap_ts, _utc(q.ts)) if snap_ts else _utc(q.ts)
                today = now is None or q.day == local_day(now, self.tz)
                for sid, s in q.services.items():
                    services[sid] = {
                        "waiting": s.waiting, "oldest_wait_s": s.oldest_wait_s, "eta_s": s.eta_s,
                        "served_today": s.served_today if today else 0,
                        "issued_today": s.issued_today if today else 0, "node": rec.node,
                        "priority_waiting": s.priority_waiting, "priority_by_class": dict(s.priority_by_class),
                        "held": s.held,
                    }
                    name = self._service_names.get(center, {}).get(sid)
                    if name:
                        services[sid]["name"] = name
                for cid, cs in q.counters.items():
                    counters[cid] = {
                        "state": str(cs.state), "ticket": cs.ticket, "services": list(cs.services),
                        "served_today": cs.served_today if today else 0, "node": rec.node,
                        "priority": cs.priority, "held": list(cs.held),
                        "rules": [r.model_dump(mode="json") for r in cs.rules],
                    }
                    cname = self._counter_names.get(center, {}).get(cid)
                    if cname:
                        counters[cid]["name"] = cname
                    clerk = self._clerk_at.get(center, {}).get(cid, {}).get("clerk")
                    counters[cid]["clerk"] = clerk
                    counters[cid]["clerk_name"] = self._clerk_names.get(center, {}).get(clerk) if clerk else None
            nodes = [self._node_dict(r) for r in recs]
            devices = [dict(d, node=n["node"], node_status=n["status"]) for n in nodes for d in n["devices"]]
            return {
                "center": center,
                "name": self._names.get(center),
                "stale": self.stale,
                "queue_ts": _iso(snap_ts),
                "services": services,
                "counters": counters,
                "nodes": nodes,
                "devices": devices,
                "recent": [dict(x) for x in self._recent.get(center, [])],
                "priority_classes": {k: dict(v) for k, v in self._priority_names.get(center, {}).items()},
                "clerks": dict(self._clerk_names.get(center, {})),
            }

    def overview(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """One summary row per center, sorted by id: waiting total, longest wait, counters open, nodes
        online/offline/unknown, devices failing (failed or offline, on nodes not offline) and degraded,
        served and issued today."""
        with self._lock:
            rows = []
            for center in self.centers():
                c = self.center(center, now)
                assert c is not None
                svc = c["services"].values()
                ctr = c["counters"].values()
                status = [n["status"] for n in c["nodes"]]
                live_devices = [d for d in c["devices"] if d["node_status"] != "offline"]
                rows.append({
                    "center": center,
                    "name": c["name"],
                    "stale": self.stale,
                    "waiting": sum(s["waiting"] for s in svc),
                    "longest_wait_s": max((s["oldest_wait_s"] for s in svc if s["waiting"]), default=0.0),
                    "counters_open": sum(1 for x in ctr if x["state"] == "open"),
                    "counters_total": len(c["counters"]),
                    "nodes_online": status.count("online"),
                    "nodes_offline": status.count("offline"),
                    "nodes_unknown": status.count("unknown"),
                    "devices_failing": sum(1 for d in live_devices if d["state"] in FAILING),
                    "devices_degraded": sum(1 for d in live_devices if d["state"] == "degraded"),
                    "served_today": sum(s["served_today"] for s in svc),
                    "issued_today": sum(s["issued_today"] for s in svc),
                    "queue_ts": c["queue_ts"],
                })
            return rows

    def node_counts(self) -> dict[str, int]:
        """``{"online": n, "offline": n, "unknown": n}`` over every node (for /metrics)."""
        with self._lock:
            out = {"online": 0, "offline": 0, "unknown": 0}
            for rec in self._nodes.values():
                out[self._status(rec)] += 1
            return out

    def device_state(self, center: str, node: str, device: str) -> str | None:
        with self._lock:
            rec = self._nodes.get((center, node))
            dev = rec.devices.get(device) if rec else None
            return dev.state if dev else None

    # ------------------------------------------------------------------------------------- persistence
    def to_json(self) -> str:
        """Everything needed to restore the state after a restart (see :meth:`from_json`)."""
        with self._lock:
            nodes = []
            for rec in self._nodes.values():
                nodes.append({
                    "center": rec.center, "node": rec.node, "online": rec.online, "reason": rec.reason,
                    "bdseq": rec.bdseq, "version": rec.version, "config_hash": rec.config_hash,
                    "born_at": _iso(rec.born_at), "changed_at": _iso(rec.changed_at),
                    "last_seen": _iso(rec.last_seen), "last_seq": rec.last_seq, "host": rec.host,
                    "outbox_pending": rec.outbox_pending, "outbox_oldest_s": rec.outbox_oldest_s,
                    "health_ts": _iso(rec.health_ts),
                    "queue": rec.queue.model_dump(mode="json") if rec.queue else None,
                    "devices": [
                        {"id": d.id, "kind": d.kind, "model": d.model, "state": d.state, "detail": d.detail,
                         "since": _iso(d.since), "counter": d.counter} for d in rec.devices.values()
                    ],
                })
            return json.dumps({"format": 1, "names": self._names, "service_names": self._service_names,
                               "counter_names": self._counter_names, "nodes": nodes, "recent": self._recent,
                               "priority_names": self._priority_names, "clerk_names": self._clerk_names,
                               "clerk_at": self._clerk_at, "reason_names": self._reason_names,
                               "skills": self._skills, "home_profiles": self._home},
                              ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str, tz: str = DEFAULT_TZ) -> LiveState:
        """Restore a saved state. It comes back **stale** (``unknown`` everywhere) until the ingest is
        connected again and calls ``mark_stale(False)``: what we saved may no longer be true.
        Raises ValueError on a document that is not a saved state."""
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict) or doc.get("format") != 1:
                raise ValueError("not a saved civiq gateway state (format 1)")
            s = cls(tz)
            s._names = dict(doc.get("names") or {})
            s._service_names = {c: dict(v) for c, v in (doc.get("service_names") or {}).items()}
            s._counter_names = {c: dict(v) for c, v in (doc.get("counter_names") or {}).items()}
            s._recent = {c: [dict(x) for x in v][:RECENT_MAX] for c, v in (doc.get("recent") or {}).items()}
            s._priority_names = {c: {k: dict(x) for k, x in v.items()}
                                 for c, v in (doc.get("priority_names") or {}).items()}
            s._clerk_names = {c: dict(v) for c, v in (doc.get("clerk_names") or {}).items()}
            s._clerk_at = {c: {k: dict(x) for k, x in v.items()} for c, v in (doc.get("clerk_at") or {}).items()}
            s._reason_names = {c: dict(v) for c, v in (doc.get("reason_names") or {}).items()}
            s._skills = {c: {k: list(x) for k, x in v.items()} for c, v in (doc.get("skills") or {}).items()}
            s._home = {c: {k: dict(x) for k, x in v.items()} for c, v in (doc.get("home_profiles") or {}).items()}
            for n in doc["nodes"]:
                rec = NodeRec(
                    n["center"], n["node"], online=n["online"], reason=n["reason"], bdseq=n["bdseq"],
                    version=n["version"], config_hash=n["config_hash"], born_at=_dt(n["born_at"]),
                    changed_at=_dt(n["changed_at"]), last_seen=_dt(n["last_seen"]), last_seq=n["last_seq"],
                    host=n["host"], outbox_pending=n["outbox_pending"], outbox_oldest_s=n["outbox_oldest_s"],
                    health_ts=_dt(n["health_ts"]),
                    queue=QueueSnapshot.model_validate(n["queue"]) if n["queue"] else None,
                )
                for d in n["devices"]:
                    rec.devices[d["id"]] = DeviceRec(d["id"], d["kind"], d["model"], d["state"], d["detail"],
                                                     _dt(d["since"]), d.get("counter"))
                s._nodes[(rec.center, rec.node)] = rec
        except (KeyError, TypeError, json.JSONDecodeError) as e:
            raise ValueError(f"saved state is damaged: {e!r}") from None
        s.stale = True
        return s


__all__ = ["Change", "LiveState", "DEVICE_STATE_CODE", "DeviceState", "is_audited", "recent_item"]

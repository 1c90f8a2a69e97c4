"""Alert conditions: what is wrong right now, derived from what the edges report.

A :class:`Condition` is one fact about one thing ("printer-1 on pi-1 is out of paper"), either ``active``
(the problem is there) or not (it is known to be fine). The alert engine turns the stream of conditions into
incidents and notifications; this module only maps edge payloads to conditions and is pure (no I/O, no clock).

``conditions_from_health`` emits, for each thing a Health message tells us about, an active or an inactive
condition. Where the message does not tell (the printer reports only its first problem; a metric is missing),
the condition is left out, which means "unknown, leave it as it was" to the engine.

>>> from datetime import UTC, datetime
>>> from civiq.contract import DeviceHealth, Health
>>> h = Health(ts=datetime(2026, 1, 5, tzinfo=UTC),
...            devices=[DeviceHealth(id="printer-1", kind="printer", state="failed",
...                                  detail="printer is out of paper")])
>>> [(c.kind, c.active) for c in conditions_from_health("hcm-q1", "pi-1", h) if c.device]
[('printer_paper_out', True), ('device_offline', False), ('device_failed', False)]
>>> node_condition("hcm-q1", "pi-1", online=False, reason="last will").key
'hcm-q1/pi-1/node_offline'
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from civiq.contract import ClockQuality, DeviceHealth, DeviceState, Health

Severity = Literal["info", "warning", "critical"]
Kind = Literal[
    "node_offline",
    "printer_paper_out",
    "printer_paper_near_end",
    "printer_cover_open",
    "device_offline",
    "device_failed",
    "display_not_answering",
    "outbox_backlog",
    "clock_skew",
    "disk_almost_full",
    "cpu_hot",
]

#: kind -> (default severity, Vietnamese title, English title)
KINDS: dict[str, tuple[Severity, str, str]] = {
    "node_offline": ("critical", "Mất kết nối máy trạm", "Edge node offline"),
    "printer_paper_out": ("critical", "Máy in hết giấy", "Printer out of paper"),
    "printer_paper_near_end": ("warning", "Máy in sắp hết giấy", "Printer paper near end"),
    "printer_cover_open": ("critical", "Nắp máy in đang mở", "Printer cover open"),
    "device_offline": ("critical", "Thiết bị không phản hồi", "Device offline"),
    "device_failed": ("critical", "Thiết bị bị lỗi", "Device failed"),
    "display_not_answering": ("critical", "Bảng hiển thị không phản hồi", "Display not answering"),
    "outbox_backlog": ("warning", "Dữ liệu tồn đọng chưa gửi được", "Outbox backlog: data not reaching the gateway"),
    "clock_skew": ("warning", "Đồng hồ máy trạm bị lệch", "Edge clock skewed"),
    "disk_almost_full": ("warning", "Ổ đĩa máy trạm sắp đầy", "Edge disk almost full"),
    "cpu_hot": ("warning", "CPU máy trạm quá nóng", "Edge CPU too hot"),
}

#: kinds produced from Health messages (for ``AlertEngine.resolve_missing(..., kinds=HEALTH_KINDS)``)
HEALTH_KINDS: frozenset[str] = frozenset(KINDS) - {"node_offline"}


class Condition(BaseModel):
    """One problem, present (``active``) or known to be absent, on a node or one of its devices."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(min_length=1, max_length=300)
    center: str = Field(min_length=1)
    node: str = Field(min_length=1)
    device: str | None = None
    kind: Kind
    severity: Severity
    active: bool
    summary: str
    detail: str = ""


class Thresholds(BaseModel):
    """Limits above which a host metric becomes a condition. Defaults suit a Raspberry Pi 4 in a center."""

    outbox_pending_max: int = Field(default=1000, ge=0, description="events waiting to leave the edge")
    outbox_oldest_s_max: float = Field(default=300, ge=0, description="age of the oldest unsent event")
    clock_offset_s_max: float = Field(default=5.0, gt=0, description="|edge clock - true time|")
    disk_used_pct_max: float = Field(default=90, gt=0, le=100)
    cpu_temp_c_max: float = Field(default=80, gt=0)


def condition_key(center: str, node: str, device: str | None, kind: str) -> str:
    """``center/node/kind`` or ``center/node/device/kind``: stable across restarts, readable in a list."""
    return "/".join(p for p in (center, node, device, kind) if p)


def title(kind: str) -> str:
    """Both languages: ``"Máy in hết giấy / Printer out of paper"``."""
    _, vi, en = KINDS[kind]
    return f"{vi} / {en}"


def make(center: str, node: str, device: str | None, kind: str, active: bool, detail: str = "",
         severity: Severity | None = None) -> Condition:
    """Build a condition with its key, default severity and bilingual summary."""
    if kind not in KINDS:
        raise ValueError(f"unknown alert kind {kind!r}; known kinds: {', '.join(KINDS)}")
    where = "/".join(p for p in (center, node, device) if p)
    return Condition(
        key=condition_key(center, node, device, kind), center=center, node=node, device=device, kind=kind,
        severity=severity or KINDS[kind][0], active=active, summary=f"{title(kind)}: {where}", detail=detail,
    )


def node_condition(center: str, node: str, online: bool, reason: str = "") -> Condition:
    """The node_offline condition of one edge node (active when it is offline)."""
    return make(center, node, None, "node_offline", not online, reason)


# ------------------------------------------------------------------------------------------ printer text
# The edge printer driver says "printer is out of paper", "printer cover is open", "paper near end"; other
# firmware says "paper out", "PAPER_END", "cover open". Match loosely on words, not on one exact sentence.
_PAPER_OUT = re.compile(r"out of paper|paper[ _-]?out|no paper|paper[ _-]?empty|stopped by paper end")
_NEAR_END = re.compile(r"near[ _-]?end|paper[ _-]?low|low[ _-]?paper")
_COVER = re.compile(r"cover[ _-]?(is[ _-]?)?open")


def _printer(center: str, node: str, d: DeviceHealth) -> list[Condition]:
    text = d.detail.lower()
    mk = lambda kind, active: make(center, node, d.id, kind, active, d.detail)  # noqa: E731
    if d.state == DeviceState.offline:
        # it does not answer: its paper and cover are unknown, leave those as they were
        return [mk("device_offline", True)]
    if d.state == DeviceState.ok:
        return [mk(k, False) for k in ("printer_paper_out", "printer_paper_near_end", "printer_cover_open",
                                       "device_offline", "device_failed")]
    out, near, cover = bool(_PAPER_OUT.search(text)), bool(_NEAR_END.search(text)), bool(_COVER.search(text))
    answered = [mk("device_offline", False)]
    if out:
        # the printer reports only its first problem: cover state unknown; "near end" is left as it was so
        # going straight from ok to out raises one alert, not two
        return [mk("printer_paper_out", True), *answered, mk("device_failed", False)]
    if cover:
        return [mk("printer_cover_open", True), *answered, mk("device_failed", False)]
    if near:
        return [mk("printer_paper_near_end", True), mk("printer_paper_out", False),
                mk("printer_cover_open", False), *answered, mk("device_failed", False)]
    if d.state == DeviceState.failed:
        return [mk("device_failed", True), *answered]
    # degraded for a reason we do not alert on
    return [*answered, mk("device_failed", False)]


def _device(center: str, node: str, d: DeviceHealth) -> list[Condition]:
    if d.kind == "printer":
        return _printer(center, node, d)
    offline_kind = "display_not_answering" if d.kind == "display" else "device_offline"
    return [
        make(center, node, d.id, offline_kind, d.state == DeviceState.offline, d.detail),
        make(center, node, d.id, "device_failed", d.state == DeviceState.failed, d.detail),
    ]


def conditions_from_health(center: str, node: str, health: Health,
                           thresholds: Thresholds | None = None) -> list[Condition]:
    """Map one Health message of ``center/node`` to conditions (active and inactive). Pure."""
    t = thresholds or Thresholds()
    out: list[Condition] = []
    for d in health.devices:
        out.extend(_device(center, node, d))

    ob = health.outbox
    backlog = ob.pending > t.outbox_pending_max or ob.oldest_s > t.outbox_oldest_s_max
    out.append(make(center, node, None, "outbox_backlog", backlog,
                    f"{ob.pending} events waiting, oldest {ob.oldest_s:.0f} s"))

    h = health.host
    off = h.clock_offset_s
    skew = h.clock == ClockQuality.suspect or (off is not None and abs(off) > t.clock_offset_s_max)
    why = f"clock {h.clock.value}" + (f", offset {off:+.1f} s" if off is not None else "")
    out.append(make(center, node, None, "clock_skew", skew, why))

    if h.disk_used_pct is not None:
        out.append(make(center, node, None, "disk_almost_full", h.disk_used_pct > t.disk_used_pct_max,
                        f"disk {h.disk_used_pct:.0f}% used"))
    if h.cpu_temp_c is not None:
        out.append(make(center, node, None, "cpu_hot", h.cpu_temp_c > t.cpu_temp_c_max,
                        f"CPU {h.cpu_temp_c:.0f} °C"))
    return out

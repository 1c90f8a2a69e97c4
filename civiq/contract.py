"""The wire contract between edge agents and the gateway: topics and payload models, version 1.

Both :mod:`civiq.edge` and :mod:`civiq.gateway` import this module and nothing of each other. Every MQTT
payload is JSON produced by ``model.model_dump_json()`` and read with :func:`parse_payload`, which never
raises anything but :class:`ContractError`. docs/mqtt.md documents the same content for other implementers.

Topics::

    civiq/v1/<center>/<node>/status        edge -> gw   QoS1 retained  Status (birth / will / clean stop)
    civiq/v1/<center>/<node>/event         edge -> gw   QoS1           Event (one per message, seq gap-free)
    civiq/v1/<center>/<node>/queue         edge -> gw   QoS1 retained  QueueSnapshot
    civiq/v1/<center>/<node>/health        edge -> gw   QoS1           Health
    civiq/v1/<center>/<node>/alive         edge -> gw   QoS1           Alive (every birth.alive_s seconds)
    civiq/v1/<center>/<node>/cmd/<name>    gw -> edge   QoS1 (policy retained)  Command models below
    civiq/v1/<center>/<node>/cmd_result    edge -> gw   QoS1           CmdResult
    civiq/v1/<center>/<node>/availability  gw -> all    QoS1 retained  Availability (the gateway's verdict)
    civiq/v1/gateway/<id>/status           gw -> all    QoS1 retained  GatewayStatus
    civiq/v1/gateway/<id>/probe            gw -> itself QoS1           Probe (measures its own ingest lag)
    civiq/v1/alerts/<center>               gw -> all    QoS1           AlertMessage

>>> t = topic("hcm-q1", "pi-1", "event")
>>> t
'civiq/v1/hcm-q1/pi-1/event'
>>> parse_topic(t)
TopicParts(center='hcm-q1', node='pi-1', leaf='event', cmd=None)
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from civiq.errors import CiviqError

VERSION = "v1"
ROOT = f"civiq/{VERSION}"
MAX_PAYLOAD_BYTES = 256 * 1024
ID_RE = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_ID = re.compile(ID_RE)

Ident = Annotated[str, Field(pattern=ID_RE, description="lower-case id: letters, digits, '-' and '_'")]


class ContractError(CiviqError, ValueError):
    """A payload or topic that does not follow the contract. The message says why, in words."""


# --------------------------------------------------------------------------------------------- topics
class TopicParts(NamedTuple):
    center: str
    node: str
    leaf: str
    cmd: str | None


EDGE_LEAVES = ("status", "event", "queue", "health", "alive", "cmd_result")
COMMANDS = ("policy", "rebirth", "display", "test_print", "counter")


def topic(center: str, node: str, leaf: str) -> str:
    for part, value in (("center", center), ("node", node)):
        if not _ID.match(value):
            raise ContractError(f"{part} id {value!r} must be lower-case letters, digits, '-' or '_'")
    return f"{ROOT}/{center}/{node}/{leaf}"


def cmd_topic(center: str, node: str, name: str) -> str:
    return topic(center, node, f"cmd/{name}")


def gateway_status_topic(gateway_id: str) -> str:
    return f"{ROOT}/gateway/{gateway_id}/status"


def gateway_probe_topic(gateway_id: str) -> str:
    return f"{ROOT}/gateway/{gateway_id}/probe"


def availability_topic(center: str, node: str) -> str:
    """Where the gateway publishes its retained online/offline verdict on a node (:class:`Availability`).

    >>> availability_topic("hcm-q1", "pi-1")
    'civiq/v1/hcm-q1/pi-1/availability'
    """
    return topic(center, node, "availability")


def alert_topic(center: str) -> str:
    return f"{ROOT}/alerts/{center}"


EDGE_SUBSCRIPTIONS = [f"{ROOT}/+/+/{leaf}" for leaf in EDGE_LEAVES]


def parse_topic(t: str) -> TopicParts:
    """Split an edge topic; raises :class:`ContractError` on anything else."""
    parts = t.split("/")
    if len(parts) < 5 or parts[0] != "civiq" or parts[1] != VERSION:
        raise ContractError(f"not a civiq {VERSION} topic: {t!r}")
    center, node = parts[2], parts[3]
    if center in ("gateway", "alerts"):
        raise ContractError(f"not an edge topic: {t!r}")
    if not (_ID.match(center) and _ID.match(node)):
        raise ContractError(f"bad center or node id in topic {t!r}")
    if len(parts) == 5 and parts[4] in EDGE_LEAVES:
        return TopicParts(center, node, parts[4], None)
    if len(parts) == 6 and parts[4] == "cmd" and parts[5] in COMMANDS:
        return TopicParts(center, node, "cmd", parts[5])
    raise ContractError(f"unknown topic leaf in {t!r}")


# --------------------------------------------------------------------------------------------- models
class Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=False)

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=False).encode()


class ClockQuality(StrEnum):
    synced = "synced"  # NTP says the clock is synchronised
    unsynced = "unsynced"  # no proof of sync, but plausible
    suspect = "suspect"  # jumped or implausible (e.g. 1970 after boot without RTC)


class DeviceState(StrEnum):
    ok = "ok"
    degraded = "degraded"  # works, needs attention soon (paper near end)
    failed = "failed"  # present but cannot do its job (paper out, cover open, bus shorted)
    offline = "offline"  # does not answer at all (unplugged)


class DeviceInfo(Model):
    id: Ident
    kind: str  # printer, display, keypad, dispenser, qrboard, speaker, ratingpad
    model: str = ""
    counter: str | None = None  # the counter it serves (displays, keypads, rating pads); None: the hall's


class ServiceInfo(Model):
    name_vi: str
    name_en: str = ""


class Status(Model):
    """Birth (online) or death (offline). The Last Will carries only ``online`` and ``bdseq``.

    A birth also names the center and its services, so the gateway can show names without a config of its own.
    """

    online: bool
    bdseq: int = Field(ge=0)
    ts: datetime | None = None
    version: str | None = None
    config_hash: str | None = None
    devices: list[DeviceInfo] = []
    center_name: str | None = None
    services: dict[str, ServiceInfo] = {}
    counters: dict[str, str] = {}  # counter id -> its name ("Quầy 1 - Đất đai")
    priority_classes: dict[str, ServiceInfo] = {}  # priority class id -> its names ("Người cao tuổi")
    clerks: dict[str, str] = {}  # clerk id -> the name shown in reports ("Nguyễn Thị Lan"); staff, not citizens
    rating_scale: int | None = Field(default=None, ge=4, le=5)  # None: this center has no rating
    rating_reasons: dict[str, ServiceInfo] = {}  # reason id -> its names ("Chờ lâu"), offered for low scores
    # the load-balancing advisor's inputs (older edges leave them empty): every service a counter's staff can
    # serve (config profile + ``skills``), and each counter's configured work profile (services and rules)
    counter_skills: dict[str, list[str]] = {}
    counter_profiles: dict[str, WorkProfile] = {}
    clean: bool = False  # a death sent on purpose (clean stop), not a will
    # Birth only: while connected, this node publishes at least every ``alive_s`` seconds (an ``Alive`` when
    # it has nothing else to say). A gateway may declare it offline after ``silence_timeout(alive_s)`` of
    # silence, without waiting for the broker's keepalive and Last Will. None: an edge that makes no promise.
    alive_s: float | None = Field(default=None, gt=0, le=3600)


def silence_timeout(alive_s: float) -> float:
    """Seconds of silence after which a node that promised ``alive_s`` is offline: three beats + 0.5 s.

    Two lost or late beats never cry wolf; with ``alive_s`` = keepalive / 2 (what civiq edges announce) the
    node is declared offline 1.5 x keepalive + 0.5 s after its last message, about when the broker's own
    keepalive rule would, but without depending on when the broker gets round to publishing the will.

    >>> silence_timeout(2.5)
    8.0
    """
    return 3 * alive_s + 0.5


class EventType(StrEnum):
    ticket_issued = "ticket.issued"
    ticket_called = "ticket.called"
    ticket_recalled = "ticket.recalled"
    ticket_no_show = "ticket.no_show"
    ticket_transferred = "ticket.transferred"
    ticket_completed = "ticket.completed"
    ticket_held = "ticket.held"
    counter_opened = "counter.opened"
    counter_closed = "counter.closed"
    counter_break = "counter.break"
    device_fault = "device.fault"
    device_recovered = "device.recovered"
    policy_applied = "policy.applied"
    clock_jump = "clock.jump"
    ticket_rated = "ticket.rated"
    clerk_signed_in = "clerk.signed_in"
    clerk_signed_out = "clerk.signed_out"


class Event(Model):
    """One fact from the edge. ``seq`` is per node, starts at 1, gap-free and never reused.

    ``data`` depends on ``type``:

    * ``ticket.issued``: ``ticket`` (e.g. "A001"), ``service``, ``number``, ``day``, ``ahead``, ``eta_s``;
      ``priority`` (a priority class id, e.g. "elderly") only when the ticket has one, and then ``by``
      (what issued it: ``dispenser``, ``keypad:<id>``, ``kiosk``, ``api``, ``sim``) when known
    * ``ticket.called`` / ``ticket.recalled``: ``ticket``, ``service``, ``counter``, ``wait_s``, ``recalls``;
      ``priority`` when the ticket has one. A call the clerk chose out of the line's order (a specific
      ticket) has ``out_of_order: true``; a call of a held ticket has ``from_hold: true``; both carry
      ``by``: who asked (``keypad:<id>``, ``api``, ``gateway:<command id>``), so every such call is audited
    * ``ticket.held``: ``ticket``, ``service``, ``counter`` (where it was parked), ``service_s``, ``by``;
      ``priority`` when it has one. The ticket leaves the counter and the line until a ``from_hold`` call
    * ``ticket.no_show`` / ``ticket.completed``: ``ticket``, ``service``, ``counter``, ``service_s``
      (a held ticket still parked at the end of its day: ``ticket.no_show`` with ``reason: "day_end"``);
      ``ticket.completed`` has ``dossier`` when the clerk entered the one-stop dossier code (e.g.
      "H29.22-241205-0001"; at most 40 characters), else no such key
    * ``ticket.transferred``: ``ticket``, ``service``, ``to_service``, ``to_counter``
    * ``counter.opened`` / ``counter.closed`` / ``counter.break``: ``counter``
    * ``device.fault`` / ``device.recovered``: ``device``, ``kind``, ``state``, ``detail``
    * ``policy.applied``: ``version``
    * ``ticket.rated``: ``ticket``, ``service``, ``counter``, ``day`` (the ticket's day), ``score`` (1 to
      ``scale``; higher is better), ``scale`` (4 or 5), ``reasons`` (reason ids, may be empty), ``clerk``
      (who served it; null when nobody was signed in), ``by`` (``pad:<id>``, ``keys:<id>``, ``page``,
      ``api``, ``sim``), ``dossier`` when the completion had one. At most one per (``day``, ``ticket``)
    * ``clerk.signed_in`` / ``clerk.signed_out``: ``counter``, ``clerk``, ``by``; a sign-out has ``reason``:
      ``manual``, ``counter_closed``, ``signed_in_elsewhere`` or ``day_end``

    Every event about a counter's work (``ticket.called`` / ``recalled`` / ``held`` / ``no_show`` /
    ``completed`` / ``transferred``, ``counter.*``) has ``clerk`` (a clerk id) while a clerk is signed in at
    that counter, else no such key. No personal data of citizens is ever in an event.
    """

    seq: int = Field(ge=1)
    ts: datetime
    type: EventType
    clock: ClockQuality = ClockQuality.unsynced
    data: dict[str, Any] = {}


def satisfied(score: int, scale: int) -> bool:
    """Whether a rating counts as satisfied: the top two levels of a 5-level scale ("Hài lòng", "Rất hài
    lòng"), the top two of a 4-level one. docs/reports.md maps this to Decision 766/QĐ-TTg's indicator.

    >>> satisfied(4, 5), satisfied(3, 5), satisfied(3, 4), satisfied(2, 4)
    (True, False, True, False)
    """
    return score >= scale - 1


class ServiceQueue(Model):
    waiting: int = Field(ge=0)
    oldest_wait_s: float = Field(ge=0, default=0)
    eta_s: float | None = None  # None = unknown: we do not guess
    served_today: int = Field(ge=0, default=0)
    issued_today: int = Field(ge=0, default=0)
    # added with priority tickets (older edges leave the defaults): waiting tickets with a priority class
    # (included in ``waiting``), by class id; and tickets of this service parked (held) at a counter
    priority_waiting: int = Field(ge=0, default=0)
    priority_by_class: dict[str, int] = {}
    held: int = Field(ge=0, default=0)


class CounterStateName(StrEnum):
    open = "open"
    closed = "closed"
    on_break = "break"


class CounterState(Model):
    state: CounterStateName
    ticket: str | None = None
    services: list[str] = []
    served_today: int = Field(ge=0, default=0)
    priority: str | None = None  # the priority class of the ticket in hand, if it has one
    held: list[str] = []  # tickets parked at this counter, oldest first (older edges: always empty)
    rules: list[PriorityRule] = []  # the priority rules of its profile in force (older edges: always empty)


class QueueSnapshot(Model):
    ts: datetime
    day: str
    services: dict[str, ServiceQueue] = {}
    counters: dict[str, CounterState] = {}
    last_seq: int = Field(ge=0, default=0)


class HostHealth(Model):
    cpu_temp_c: float | None = None
    load1: float | None = None
    mem_used_pct: float | None = None
    disk_used_pct: float | None = None
    disk_free_mb: float | None = None
    clock_offset_s: float | None = None
    clock: ClockQuality = ClockQuality.unsynced
    uptime_s: float | None = None


class DeviceHealth(Model):
    id: Ident
    kind: str
    state: DeviceState
    detail: str = ""


class OutboxHealth(Model):
    pending: int = Field(ge=0)
    oldest_s: float = Field(ge=0, default=0)


class Alive(Model):
    """A node's "still here" while it has nothing else to send. ``bdseq``: its current connection's birth."""

    bdseq: int = Field(ge=0)


class Health(Model):
    ts: datetime
    host: HostHealth = HostHealth()
    devices: list[DeviceHealth] = []
    outbox: OutboxHealth = OutboxHealth(pending=0)


# --------------------------------------------------------------------------------------------- policy
class PriorityRule(Model):
    """"If the oldest ticket of ``service`` has waited more than ``over_minutes``, take it first"."""

    service: str
    over_minutes: float = Field(gt=0)


class WorkProfile(Model):
    """The ordered services a counter serves, and its priority rules."""

    services: list[str] = Field(min_length=1)
    rules: list[PriorityRule] = []


Status.model_rebuild()
CounterState.model_rebuild()


class Policy(Model):
    """Work profiles pushed by the gateway. ``version`` grows; the edge ignores older ones."""

    version: int = Field(ge=1)
    issued_at: datetime | None = None
    counters: dict[str, WorkProfile] = {}
    reason: str = ""


# --------------------------------------------------------------------------------------------- commands
class Command(Model):
    id: str = Field(min_length=1, max_length=64)


class PolicyCmd(Command):
    policy: Policy


class RebirthCmd(Command):
    """Republish birth, queue snapshot and health; with ``from_seq``, also re-send every logged event from
    that seq on (the gateway saw a gap the outbox can no longer fill: e.g. acked by a broker that then lost it)."""

    from_seq: int | None = Field(default=None, ge=1)


class DisplayCmd(Command):
    device: str | None = None  # None: every display
    text: str = Field(max_length=64)
    seconds: float = Field(default=10, gt=0, le=3600)


class TestPrintCmd(Command):
    printer: str | None = None


class CounterCmd(Command):
    """An action at a counter, as its keypad would do it; the edge answers with a :class:`CmdResult`.

    ``call``: call ``ticket`` (a waiting or held label, e.g. "B012") now, out of the line's order;
    ``hold``: park the ticket in hand (the citizen steps aside: a missing paper, a photocopy);
    ``call_held``: call a held ticket back (``ticket``, or the oldest held at this counter when absent);
    ``sign_in`` (``clerk``) / ``sign_out``: who works at the counter; ``complete`` may carry ``dossier``.
    The resulting events carry ``by: "gateway:<id>"`` (audit). Older edges answer ``ok: false``.
    """

    counter: str
    action: Literal["next", "recall", "no_show", "complete", "open", "close", "break", "transfer",
                    "call", "hold", "call_held", "sign_in", "sign_out"]
    to_service: str | None = None
    to_counter: str | None = None
    ticket: str | None = Field(default=None, min_length=1, max_length=16)
    clerk: str | None = Field(default=None, pattern=ID_RE)
    dossier: str | None = Field(default=None, min_length=1, max_length=40)


COMMAND_MODELS: dict[str, type[Command]] = {
    "policy": PolicyCmd,
    "rebirth": RebirthCmd,
    "display": DisplayCmd,
    "test_print": TestPrintCmd,
    "counter": CounterCmd,
}


class CmdResult(Model):
    id: str
    cmd: str
    ok: bool
    error: str | None = None
    data: dict[str, Any] = {}


class GatewayStatus(Model):
    online: bool
    ts: datetime | None = None


class Probe(Model):
    """A gateway's message to itself. When it comes back, everything received before it has been seen."""

    sent: float  # the sender's monotonic clock (meaningful only to the process that sent it)


class Availability(Model):
    """The gateway's verdict on a node, retained on ``civiq/v1/<center>/<node>/availability`` whenever it
    changes: ``state`` is ``online`` or ``offline`` (the payload Home Assistant's ``availability`` and
    Zigbee2MQTT's ``<device>/availability`` use); ``reason``: birth, traffic, clean, will, heartbeat, silent.

    >>> Availability(state="offline", reason="silent").to_json()
    b'{"state":"offline","reason":"silent","ts":null}'
    """

    state: Literal["online", "offline"]
    reason: str = ""
    ts: datetime | None = None


class AlertMessage(Model):
    """Published by the gateway on ``civiq/v1/alerts/<center>`` for each alert transition."""

    key: str
    center: str
    node: str
    device: str | None = None
    kind: str
    severity: Literal["info", "warning", "critical"] = "warning"
    state: Literal["firing", "resolved"]
    summary: str
    ts: datetime
    note: str = ""  # flapping, stable, reminder, after_silence
    notification_id: int | None = None  # receivers may drop repeats (delivery is at least once)


LEAF_MODELS: dict[str, type[Model]] = {
    "status": Status,
    "event": Event,
    "queue": QueueSnapshot,
    "health": Health,
    "alive": Alive,
    "cmd_result": CmdResult,
}


def model_for(parts: TopicParts) -> type[Model]:
    if parts.leaf == "cmd":
        assert parts.cmd is not None
        return COMMAND_MODELS[parts.cmd]
    return LEAF_MODELS[parts.leaf]


M = TypeVar("M", bound=BaseModel)
INT64 = 2**63
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


class _BadNumber(ValueError):
    pass


def _no_constant(name: str) -> float:
    raise _BadNumber(f"payload has {name}: numbers must be finite")


def _finite_float(text: str) -> float:
    v = float(text)
    if math.isinf(v):
        raise _BadNumber(f"payload has the number {text[:20]}, which is out of range")
    return v


def _int64(text: str) -> int:
    if len(text) > 20:
        raise _BadNumber(f"payload has an integer of {len(text)} digits: at most 64 bits")
    v = int(text)
    if not -INT64 <= v < INT64:
        raise _BadNumber(f"payload has the integer {text}: at most 64 bits")
    return v


def _has_lone_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def parse_payload(model: type[M], payload: bytes | str) -> M:
    """Validate a JSON payload; raise :class:`ContractError` with a readable reason on any problem."""
    if isinstance(payload, bytes | bytearray):
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise ContractError(f"payload of {len(payload)} bytes is over the {MAX_PAYLOAD_BYTES} limit")
        try:
            text = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ContractError(f"payload is not UTF-8 ({e.reason} at byte {e.start})") from None
    else:
        text = payload
    try:
        raw = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_int64)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ContractError(f"payload is not JSON: {e}") from None
    except _BadNumber as e:
        raise ContractError(str(e)) from None
    if _SURROGATE.search(text) and _has_lone_surrogate(raw):
        raise ContractError("payload has a lone UTF-16 surrogate escape (\\udXXX): not valid Unicode text")
    if not isinstance(raw, dict):
        raise ContractError(f"payload must be a JSON object, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "(root)"
        raise ContractError(f"{model.__name__}: field '{where}': {first['msg']}") from None

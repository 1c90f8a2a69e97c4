"""What travels from the MQTT link to the writer and on to the sinks and the change hooks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from civiq.contract import ContractError


@dataclass
class Applied:
    """What the ingest just applied (passed to ``on_change`` after the batch was committed).

    ``leaf``: status, event, queue, health, alive, cmd_result, heartbeat (node timed out; ``model`` None,
    or the seconds of silence when an ``alive_s`` promise was broken) or stale (the gateway lost/regained
    its broker; center/node empty, ``model`` is True/False).
    ``new``: False for a duplicate event or a stale will (the state did not change); for ``alive``, True
    only when the beat brought a silent node back.
    ``model``: the contract payload; for event, queue and health the fast struct of
    :mod:`civiq.gateway.ingest.decode` (same field names as the pydantic model).
    """

    leaf: str
    center: str
    node: str
    model: Any
    received: datetime
    new: bool = True


@dataclass(slots=True)
class Item:
    """One received message (or a control item: ``stale``, ``probe``) on its way through the writer.

    ``new`` is decided by the first sink that can tell: the series store for events (a duplicate is not
    new), the live state for status, queue, health and alive."""

    leaf: str
    center: str
    node: str
    model: Any
    received: datetime
    ack: tuple[int, int, int] | None = None  # (mid, qos, connection generation) to ack after commit
    mono: float = 0.0  # real monotonic time of arrival on paho's thread (the silence watch)
    new: bool = True


@dataclass
class Malformed:
    topic: str
    reason: str
    detail: str
    received: datetime


def reason_of(e: ContractError) -> str:
    """The ``civiq_gw_malformed_total`` reason of a contract error."""
    msg = str(e)
    if msg.startswith("payload of"):
        return "too_large"
    if "not UTF-8" in msg:
        return "utf8"
    if "not JSON" in msg or "must be a JSON object" in msg:
        return "json"
    return "schema"


@dataclass
class Batch:
    """The items the writer applies in one store transaction, and what the sinks made of them."""

    items: list[Item]
    applied: list[Applied] = field(default_factory=list)
    births: bool = False  # a birth was applied (the state is saved at once: its names feed reports)

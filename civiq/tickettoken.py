"""Unguessable public ticket tokens: the QR printed on a ticket points at ``<gateway>/t/<token>``.

The token carries the ticket's center, local day and label in the clear (none of it is personal data)
followed by a truncated ``HMAC-SHA256(center_key, "center|day|label")``, both URL-safe base64, joined by
``.``. Each center has its own key, derived from the gateway's secret (:func:`center_key`): the operator
gives it to that center's edge agent (``civiq gateway ticket-key CENTER`` prints it; the edge reads it from
``center.ticket_key_file``), so the edge prints tokens the gateway can check, a leaked edge key exposes
one center only, and the gateway needs no table of issued tokens. Shared by edge and gateway.

>>> tok = ticket_token(b"s" * 32, "hcm-q1", "2026-01-05", "A001")
>>> verify_ticket_token(b"s" * 32, tok)
TicketRef(center='hcm-q1', day='2026-01-05', label='A001')
>>> verify_ticket_token(b"x" * 32, tok) is None
True
>>> token_with_key(center_key(b"s" * 32, "hcm-q1"), "hcm-q1", "2026-01-05", "A001") == tok
True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import NamedTuple

MAC_BYTES = 12  # 96 bits: unguessable, and the QR stays small
_CENTER = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LABEL = re.compile(r"^[A-Za-z0-9-]{1,16}$")


class TicketRef(NamedTuple):
    center: str
    day: str
    label: str


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def center_key(secret: bytes, center: str) -> bytes:
    """The key one center's edge signs its tickets with, derived from the gateway's secret."""
    return hmac.new(secret, f"civiq-ticket-key|{center}".encode(), hashlib.sha256).digest()


def ticket_mac(secret: bytes, center: str, day: str, label: str) -> str:
    """The truncated HMAC part alone: ``HMAC-SHA256(center_key, center|day|label)[:12]``, URL-safe base64."""
    return key_mac(center_key(secret, center), center, day, label)


def key_mac(key: bytes, center: str, day: str, label: str) -> str:
    msg = f"{center}|{day}|{label}".encode()
    return _b64(hmac.new(key, msg, hashlib.sha256).digest()[:MAC_BYTES])


def token_with_key(key: bytes, center: str, day: str, label: str) -> str:
    """What the edge prints: the token made with its center key (see :func:`center_key`)."""
    if not (_CENTER.match(center) and _DAY.match(day) and _LABEL.match(label)):
        raise ValueError(f"cannot make a ticket token for {center!r} {day!r} {label!r}")
    payload = _b64(f"{center}|{day}|{label}".encode())
    return f"{payload}.{key_mac(key, center, day, label)}"


def ticket_token(secret: bytes, center: str, day: str, label: str) -> str:
    """The token for ``/t/<token>`` made from the gateway's secret; raises ValueError on bad ids."""
    return token_with_key(center_key(secret, center), center, day, label)


def verify_ticket_token(secret: bytes, token: str) -> TicketRef | None:
    """The ticket a token names, or None when it is malformed or its MAC is wrong."""
    if len(token) > 200 or token.count(".") != 1:
        return None
    payload, mac = token.split(".")
    try:
        text = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    parts = text.split("|")
    if len(parts) != 3:
        return None
    center, day, label = parts
    if not (_CENTER.match(center) and _DAY.match(day) and _LABEL.match(label)):
        return None
    if not hmac.compare_digest(mac, ticket_mac(secret, center, day, label)):
        return None
    return TicketRef(center, day, label)


verify = verify_ticket_token

"""One error root per side: everything civiq raises on purpose is a :class:`CiviqError`; the Pi agent's are
:class:`EdgeError`, the gateway's :class:`GatewayError`; the shared kernel's (the wire contract, config files)
derive from :class:`CiviqError` directly. Each class keeps its older built-in base too (``QueueError`` is still
a ``ValueError``, ``StoreFull`` an ``OSError``), so existing ``except`` clauses keep working.

    >>> from civiq.edge.queue.engine import QueueError
    >>> issubclass(QueueError, EdgeError) and issubclass(QueueError, ValueError)
    True
    >>> from civiq.yamlconf import ConfigError
    >>> issubclass(ConfigError, CiviqError) and not issubclass(ConfigError, EdgeError)
    True

A command can stop on any of them with one line and no traceback: ``except CiviqError as e: print(e)``.
"""

from __future__ import annotations

__all__ = ["CiviqError", "EdgeError", "GatewayError"]


class CiviqError(Exception):
    """The root of every error civiq raises on purpose (bad input, a refused operation, a device fault)."""


class EdgeError(CiviqError):
    """An error of the Raspberry Pi agent (``civiq.edge``): queue, store, devices, voice."""


class GatewayError(CiviqError):
    """An error of the gateway (``civiq.gateway``): settings, alerts, advice, reports, web."""
